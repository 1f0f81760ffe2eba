// Container slots: claimed with a lock, emptied after each container, swept after a crash.
#include "runner/engine/slots.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "config/job_file.h"
#include "sandbox/host_cleanup.h"
#include "sandbox/proc.h"
#include "sandbox/sys/fs.h"
#include "sandbox/sys/log.h"

namespace sandrun::runner {
namespace {

// The fixed size of a pid record (see Slot::pid).
constexpr size_t kRecordSize = 48;

Result<void> write_record(const Slot& slot, std::string_view text) {
  char buf[kRecordSize];
  std::memset(buf, ' ', sizeof buf);
  buf[sizeof buf - 1] = '\n';
  std::memcpy(buf, text.data(), std::min(text.size(), sizeof buf - 1));
  if (::pwrite(slot.pid.get(), buf, sizeof buf, 0) != static_cast<ssize_t>(sizeof buf))
    return Error::sys("write the pid record of container slot {}", slot.dir);
  return {};
}

// True when the record at `fd` says the slot is clean (or it was never written).
bool record_clean(int fd) {
  char c = 0;
  ssize_t n = ::pread(fd, &c, 1, 0);
  return n <= 0 || c == '-';
}

Result<UniqueFd> lock_slot(const std::string& dir) {
  auto fd = fs::open_path(dir + "/lock", O_RDWR | O_CREAT | O_NOFOLLOW, 0600);
  if (!fd) return std::move(fd).error();
  if (::flock(fd->get(), LOCK_EX | LOCK_NB) < 0) return Error::sys("lock {}", dir);
  return fd;
}

// Kills the recorded container if the pid still names the same, live process.
bool kill_recorded(int pid_fd) {
  char buf[64] = {};
  ssize_t n = ::pread(pid_fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return false;
  std::istringstream in(std::string(buf, static_cast<size_t>(n)));
  pid_t pid = 0;
  unsigned long long start = 0;
  if (!(in >> pid >> start) || pid <= 0) return false;
  return sandbox::kill_recorded_process(pid, start);
}

bool dir_is_empty(const std::string& path) {
  DIR* d = ::opendir(path.c_str());
  if (!d) return true;
  bool empty = true;
  while (struct dirent* e = ::readdir(d)) {
    if (std::string_view n = e->d_name; n != "." && n != "..") {
      empty = false;
      break;
    }
  }
  ::closedir(d);
  return empty;
}

bool is_dirty(const Slot& s) {
  return !record_clean(s.pid.get()) || !dir_is_empty(s.upper) || !dir_is_empty(s.ws_upper) || !dir_is_empty(s.cow);
}

// A slot whose pid record says clean (see Slot::pid) and that has no file system image left
// needs no lock to be left alone.
bool looks_clean(const std::string& dir) {
  UniqueFd fd(::open((dir + "/pid").c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  return fd && record_clean(fd.get()) && !fs::exists(dir + "/disk.img");
}

// The writable dirs in disk_dir (again after a file system is mounted or unmounted there).
Result<void> make_dirs(const Slot& s) {
  for (const auto* p : {&s.disk_dir, &s.upper, &s.work, &s.ws_upper, &s.ws_work}) {
    if (::mkdir(p->c_str(), 0755) < 0 && errno != EEXIST) return Error::sys("create {}", *p);
  }
  return {};
}

// Resets the upper dir itself: it is the container's "/", whose owner, mode and xattrs a
// container may have changed.
Result<void> reset_root(int fd) {
  // Ours: host root, or the rootless caller (who cannot chown and is the container's root).
  if (::fchown(fd, ::geteuid(), ::getegid()) < 0 || ::fchmod(fd, 0755) < 0) return Error::sys("reset the owner and mode of {}", fs::fd_path(fd));
  char names[4096];
  ssize_t n = ::flistxattr(fd, names, sizeof names);
  for (ssize_t off = 0; n > 0 && off < n; off += static_cast<ssize_t>(std::strlen(names + off)) + 1) {
    if (::fremovexattr(fd, names + off) < 0 && errno != ENODATA) return Error::sys("remove xattr {} of {}", names + off, fs::fd_path(fd));
  }
  return {};
}

// The copy-on-write volumes' dirs: the overlay workspace's (kept, reset like the upper dir:
// Sandbox::start gives it the checkout's owner and mode) and the caches' (<slot>/cow, removed).
Result<void> clear_volumes(const Slot& slot) {
  auto upper = SANDRUN_TRY(fs::open_path(slot.ws_upper, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
  SANDRUN_TRY(fs::clear_dir(upper.get()).wrap(fmt::format("empty {}", slot.ws_upper)));
  SANDRUN_TRY(reset_root(upper.get()));
  auto work = SANDRUN_TRY(fs::open_path(slot.ws_work, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
  SANDRUN_TRY(fs::clear_dir(work.get()).wrap(fmt::format("empty {}", slot.ws_work)));
  if (::fchown(work.get(), ::geteuid(), ::getegid()) < 0) return Error::sys("reset {}", slot.ws_work);
  if (fs::exists(slot.cow)) SANDRUN_TRY(fs::remove_tree(slot.cow));
  return {};
}

Result<Slot> open_slot(const std::string& dir) {
  Slot s;
  s.dir = dir;
  s.disk_dir = dir + "/disk";
  s.disk_image = dir + "/disk.img";
  s.disk_templates = std::filesystem::path(dir).parent_path().parent_path() / "disk-templates";
  s.upper = s.disk_dir + "/upper";
  s.work = s.disk_dir + "/work";
  s.ws_upper = s.disk_dir + "/ws-upper";
  s.ws_work = s.disk_dir + "/ws-work";
  s.cow = s.disk_dir + "/cow";
  s.dev = dir + "/dev";
  s.lock = SANDRUN_TRY(lock_slot(dir));
  SANDRUN_TRY(make_dirs(s));
  s.pid = SANDRUN_TRY(fs::open_path(dir + "/pid", O_RDWR | O_CREAT | O_NOFOLLOW, 0600));
  return s;
}

// Makes a slot of a dead run clean: its container killed, its mounts gone, its layer emptied.
void clean_dead_slot(Slot& s, SweepReport& report) {
  if (kill_recorded(s.pid.get())) ++report.processes_killed;
  report.mounts_removed += sandbox::unmount_beneath(s.dir, report.failures);
  // The slot's file system (if any) went with its mounts: empty what is beneath instead.
  s.disk.reset();
  if (auto r = make_dirs(s); !r) {
    report.failures.push_back(r.error().message());
    return;
  }
  if (auto r = SlotPool::clear(s); !r) {
    report.failures.push_back(r.error().message());
    return;
  }
  ++report.slots_cleaned;
}

std::vector<std::string> slot_names(const std::string& slots_dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(slots_dir.c_str());
  if (!d) return out;
  while (struct dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (!n.empty() && n.find_first_not_of("0123456789") == std::string_view::npos) out.emplace_back(n);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return std::stoul(a) < std::stoul(b); });
  return out;
}

}  // namespace

SlotPool::SlotPool(std::string state_root) : root_(std::move(state_root)), mount_point_(root_ + "/mnt") {}

// The slots' file systems go with the pool, on every way out of a run that unwinds.
SlotPool::~SlotPool() {
  for (auto& s : slots_) {
    if (auto r = remove_disk(*s); !r) log::warn("{}", r.error().message());
  }
}

Result<void> SlotPool::reserve(size_t count) {
  SANDRUN_TRY(fs::mkdirs(root_ + "/slots", 0700));
  SANDRUN_TRY(fs::mkdirs(mount_point_, 0700));
  while (slots_.size() < count) free_.push_back(SANDRUN_TRY(claim()));
  return {};
}

Result<Slot*> SlotPool::claim() {
  const std::string slots = root_ + "/slots";
  for (unsigned long k = 0;; ++k) {
    const std::string dir = slots + "/" + std::to_string(k);
    if (::mkdir(dir.c_str(), 0700) < 0 && errno != EEXIST) return Error::sys("create container slot {}", dir);
    auto slot = open_slot(dir);
    if (!slot) {
      if (slot.error().code() == EWOULDBLOCK) continue;  // used by a live sandrun
      return std::move(slot.error().wrap("claim a container slot"));
    }
    if (is_dirty(*slot)) {
      SweepReport report;
      clean_dead_slot(*slot, report);
      if (!report.failures.empty()) {
        log::warn("container slot {} of a dead run cannot be cleaned, skipping it: {}", dir, report.failures[0]);
        continue;
      }
    }
    slots_.push_back(std::make_unique<Slot>(std::move(*slot)));
    return slots_.back().get();
  }
}

Result<Slot*> SlotPool::adopt(const std::string& dir) {
  if (std::filesystem::path(dir).parent_path() != std::filesystem::path(root_) / "slots")
    return Error::msg("container slot {} is not under {}/slots", dir, root_);
  auto slot = open_slot(dir);
  if (!slot) return std::move(slot.error().wrap("adopt container slot " + dir));
  slots_.push_back(std::make_unique<Slot>(std::move(*slot)));
  return slots_.back().get();
}

void SlotPool::forget(Slot* slot) {
  std::erase_if(free_, [slot](Slot* s) { return s == slot; });
  std::erase_if(slots_, [slot](const auto& s) { return s.get() == slot; });
}

Slot* SlotPool::acquire(bool grow) {
  if (!free_.empty()) {
    Slot* s = free_.back();
    free_.pop_back();
    return s;
  }
  if (!grow) return nullptr;
  auto s = claim();
  if (!s) {
    log::warn("{}", s.error().message());
    return nullptr;
  }
  return *s;
}

void SlotPool::release(Slot* slot) { free_.push_back(slot); }

void SlotPool::discard(Slot* slot) {
  std::erase_if(slots_, [slot](const auto& s) { return s.get() == slot; });
}

Result<void> SlotPool::mark_claimed(Slot& slot) { return write_record(slot, "claimed"); }

Result<void> SlotPool::record_pid(Slot& slot, pid_t pid) {
  return write_record(slot, fmt::format("{} {}", pid, sandbox::process_start_time(pid)));
}

Result<void> SlotPool::clear(Slot& slot) {
  auto upper = SANDRUN_TRY(fs::open_path(slot.upper, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
  SANDRUN_TRY(fs::clear_dir(upper.get()).wrap(fmt::format("empty {}", slot.upper)));
  SANDRUN_TRY(reset_root(upper.get()));
  // A volatile overlay cannot be mounted on its work dir again until it is emptied
  // (ContainerPlan::volatile_upper). Emptied for every overlay: overlayfs would remove and make
  // its work/work again at the next mount anyway.
  auto work = SANDRUN_TRY(fs::open_path(slot.work, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
  SANDRUN_TRY(fs::clear_dir(work.get()).wrap(fmt::format("empty {}", slot.work)));
  SANDRUN_TRY(clear_volumes(slot));
  return write_record(slot, "-");
}

SweepReport sweep_slots(const std::string& state_root, bool remove) {
  SweepReport report;
  const std::string slots = state_root + "/slots";
  for (const auto& name : slot_names(slots)) {
    const std::string dir = slots + "/" + name;
    if (!remove && looks_clean(dir)) continue;
    auto slot = open_slot(dir);
    if (!slot) {
      if (slot.error().code() != EWOULDBLOCK) report.failures.push_back(slot.error().message());
      continue;  // EWOULDBLOCK: a live sandrun uses it
    }
    if (is_dirty(*slot)) clean_dead_slot(*slot, report);
    if (auto r = SlotPool::remove_disk(*slot); !r) {
      report.failures.push_back(r.error().message());
      continue;
    } else if (*r) {
      ++report.disks_removed;
    }
    if (remove && !is_dirty(*slot)) {
      // Removed while still locked, so no other sandrun claims it meanwhile.
      if (auto r = fs::remove_tree(dir); r) {
        ++report.slots_removed;
      } else {
        report.failures.push_back(r.error().message());
      }
    }
  }
  // The disk limit's templates (a few hundred KiB each) go with the idle slots; a sandrun that
  // copies one meanwhile makes it again (sandbox::mount_disk_image).
  if (remove && fs::exists(state_root + "/disk-templates")) {
    if (auto r = fs::remove_tree(state_root + "/disk-templates"); !r) report.failures.push_back(r.error().message());
  }
  return report;
}

Result<void> SlotPool::prepare_disk(Slot& slot, const sandbox::DiskLimit& limit) {
  if (!limit.enforced) return {};
  const sandbox::DiskSize size{limit.bytes, limit.inodes};
  if (slot.disk == size) return {};
  slot.disk.reset();
  SANDRUN_TRY(sandbox::mount_disk_image(slot.disk_image, slot.disk_dir, size, slot.disk_templates)
                  .wrap(fmt::format("give container slot {} its disk limit ({}, {} files)", slot.dir,
                                    config::format_size(size.bytes), size.inodes)));
  slot.disk = size;
  return make_dirs(slot);
}

Result<bool> SlotPool::remove_disk(Slot& slot) {
  const bool had = slot.disk || fs::exists(slot.disk_image) || sandbox::is_mount_point(slot.disk_dir);
  if (!had) return false;
  slot.disk.reset();
  SANDRUN_TRY(sandbox::remove_disk_image(slot.disk_image, slot.disk_dir));
  SANDRUN_TRY(make_dirs(slot));
  return true;
}

std::string SlotPool::disk_full(const Slot& slot) {
  if (!slot.disk) return "";
  auto free = sandbox::disk_free(slot.disk_dir);
  if (!free) return "";
  // A write fails with ENOSPC while ext4 still shows some space available (what it holds back
  // for the metadata of delayed allocations: 700 KiB of a 64 MiB disk after a dd): "full" is
  // within 2% of the size (at least 1 MiB, at most 16 MiB), or no inode left.
  const uint64_t slack = std::clamp<uint64_t>(slot.disk->bytes / 50, uint64_t{1} << 20, uint64_t{16} << 20);
  if (free->bytes <= slack) return fmt::format("disk limit reached ({})", config::format_size(slot.disk->bytes));
  if (free->inodes == 0) return fmt::format("disk limit reached ({} files)", slot.disk->inodes);
  return "";
}

sandbox::Placement placement_for(const Slot& slot, const std::string& mount_point, const sandbox::ContainerPlan& plan) {
  sandbox::Placement place;
  place.root_dir = mount_point;
  place.upper_dir = slot.upper;
  place.work_dir = slot.work;
  place.dev_dir = slot.dev;
  // One workspace layer per slot: a plan has at most one copy-on-write bind (the workspace);
  // a second would be refused by the sandbox (placed_binds) for lack of a layer.
  for (const auto& b : plan.binds) {
    if (b.copy_on_write) {
      place.cow_layers.emplace_back(slot.ws_upper, slot.ws_work);
      break;
    }
  }
  return place;
}

}  // namespace sandrun::runner
