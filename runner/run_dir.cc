// Run directories: creation with a lock, per-container dirs, and the sweep of dead runs.
#include "runner/run_dir.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <random>
#include <sstream>

#include "sandbox/sys/fs.h"
#include "sandbox/sys/log.h"
#include "sandbox/sys/syscalls.h"

namespace sandrun::runner {
namespace {

std::string new_run_id() {
  std::random_device rd;
  return fmt::format("{:x}-{:04x}", static_cast<unsigned>(::getpid()), rd() & 0xffff);
}

// Kills a dead run's container if the recorded pid still names the same process.
bool kill_recorded(const std::string& pid_file) {
  auto text = fs::read_file(pid_file);
  if (!text) return false;
  std::istringstream in(*text);
  pid_t pid = 0;
  unsigned long long start = 0;
  if (!(in >> pid >> start) || pid <= 0) return false;
  // Open the pidfd first, then check the start time: if they match, the pidfd is that process.
  int pidfd = sys::pidfd_open(pid);
  if (pidfd < 0) return false;
  UniqueFd owner(pidfd);
  if (process_start_time(pid) != start) return false;
  // A zombie is already dead (its parent, sandrun, is gone and init reaps it).
  auto stat = fs::read_file("/proc/" + std::to_string(pid) + "/stat");
  if (stat) {
    size_t close = stat->rfind(')');
    if (close != std::string::npos && close + 2 < stat->size() && (*stat)[close + 2] == 'Z') return false;
  }
  if (sys::pidfd_send_signal(pidfd, SIGKILL) < 0) return false;
  struct pollfd p = {pidfd, POLLIN, 0};
  ::poll(&p, 1, 5000);
  return true;
}

std::vector<std::string> mounts_beneath(const std::string& prefix) {
  std::vector<std::string> out;
  std::ifstream f("/proc/self/mountinfo");
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream ls(line);
    std::string id, parent, dev, root, mnt;
    ls >> id >> parent >> dev >> root >> mnt;
    if (mnt == prefix || mnt.rfind(prefix + "/", 0) == 0) out.push_back(mnt);
  }
  // Deepest first.
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
  return out;
}

void sweep_one(const std::string& dir, const std::string& id, SweepReport& report) {
  DIR* d = ::opendir(dir.c_str());
  if (d) {
    while (struct dirent* e = ::readdir(d)) {
      if (e->d_name[0] == '.') continue;
      std::string pid_file = dir + "/" + e->d_name + "/pid";
      if (fs::exists(pid_file) && kill_recorded(pid_file)) ++report.processes_killed;
    }
    ::closedir(d);
  }
  for (const auto& m : mounts_beneath(dir)) {
    if (::umount2(m.c_str(), MNT_DETACH) == 0) {
      ++report.mounts_removed;
    } else {
      report.failures.push_back(fmt::format("unmount {}: {}", m, errno_text(errno)));
    }
  }
  if (auto r = fs::remove_tree(dir); !r) {
    report.failures.push_back(r.error().message());
    return;
  }
  report.runs.push_back(id);
}

}  // namespace

unsigned long long process_start_time(pid_t pid) {
  auto text = fs::read_file("/proc/" + std::to_string(pid) + "/stat");
  if (!text) return 0;
  // The command name (field 2) may contain spaces and parentheses: skip past the last ')'.
  size_t close = text->rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream in(text->substr(close + 2));
  std::string field;
  for (int i = 3; i <= 22; ++i) {
    if (!(in >> field)) return 0;
  }
  return std::stoull(field);
}

Result<RunDir> RunDir::create(const std::string& state_root) {
  std::string runs = state_root + "/run";
  SANDRUN_TRY(fs::mkdirs(runs, 0700));
  RunDir rd;
  for (int attempt = 0; attempt < 16; ++attempt) {
    rd.id_ = new_run_id();
    rd.path_ = runs + "/" + rd.id_;
    if (::mkdir(rd.path_.c_str(), 0700) == 0) break;
    if (errno != EEXIST) return Error::sys("create run directory {}", rd.path_);
    rd.path_.clear();
  }
  if (rd.path_.empty()) return Error::msg("cannot pick a unique run directory under {}", runs);
  auto lock = fs::lock_file(rd.path_ + "/lock", /*exclusive=*/true, /*wait=*/false);
  if (!lock) {
    (void)fs::remove_tree(rd.path_);
    return std::move(lock.error().wrap("lock the run directory"));
  }
  rd.lock_ = std::move(*lock);
  return rd;
}

RunDir::~RunDir() {
  if (!path_.empty() && !removed_ && lock_) {
    auto r = remove();
    if (!r) log::warn("cannot remove run directory {}: {}", path_, r.error().message());
  }
}

Result<ContainerDirs> RunDir::make_container(size_t n) const {
  ContainerDirs c;
  c.dir = path_ + "/" + std::to_string(n);
  c.upper = c.dir + "/upper";
  c.work = c.dir + "/work";
  c.root = c.dir + "/root";
  if (::mkdir(c.dir.c_str(), 0700) < 0) return Error::sys("create {}", c.dir);
  for (const auto* p : {&c.upper, &c.work, &c.root}) {
    if (::mkdir(p->c_str(), 0755) < 0) return Error::sys("create {}", *p);
  }
  return c;
}

Result<void> RunDir::record_pid(const ContainerDirs& dirs, pid_t pid) const {
  std::string text = fmt::format("{} {}\n", pid, process_start_time(pid));
  auto fd = SANDRUN_TRY(fs::open_path(dirs.dir + "/pid", O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0600));
  return fs::write_all(fd.get(), text);
}

Result<void> RunDir::remove() {
  removed_ = true;
  auto r = fs::remove_tree(path_);
  lock_.reset();
  return r;
}

SweepReport sweep_dead_runs(const std::string& state_root) {
  SweepReport report;
  std::string runs = state_root + "/run";
  DIR* d = ::opendir(runs.c_str());
  if (!d) return report;
  std::vector<std::string> ids;
  while (struct dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') ids.emplace_back(e->d_name);
  }
  ::closedir(d);
  for (const auto& id : ids) {
    std::string dir = runs + "/" + id;
    if (!fs::is_dir(dir)) continue;
    // Held while sweeping, so that two sweeping processes never work on the same run.
    UniqueFd lock(::open((dir + "/lock").c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW));
    if (!lock) {
      // A run creates its lock right after its directory: give a lock-less directory a
      // minute before calling it dead.
      struct stat st;
      if (::stat(dir.c_str(), &st) == 0 && ::time(nullptr) - st.st_mtime < 60) continue;
    } else if (::flock(lock.get(), LOCK_EX | LOCK_NB) < 0) {
      continue;  // alive
    }
    sweep_one(dir, id, report);
  }
  return report;
}

}  // namespace sandrun::runner
