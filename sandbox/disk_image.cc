// Per-slot file systems: a sparse ext4 image on a self-clearing loop device.
#include "sandbox/disk_image.h"

#include <fcntl.h>
#include <linux/loop.h>
#include <linux/major.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <mutex>

#include "sandbox/sys/fs.h"
#include "sandbox/sys/process.h"
#include "sandbox/sys/unique_fd.h"

namespace sandrun::sandbox {
namespace {

constexpr const char* kMke2fsHint = "install e2fsprogs (mke2fs), which the disk limit's file systems are made with";

// mke2fs on the image file, its complaints kept for the message.
Result<void> make_fs(const std::string& image, DiskSize size) {
  sys::SpawnOptions o;
  o.path = "mke2fs";
  // No journal (a container's writable layer needs no crash consistency: it is emptied after
  // every container), no blocks reserved for online growth (zeroed: 4 MiB of an 8 GiB image,
  // against 120 KiB for all the rest) nor for root, the inode tables left unzeroed (the
  // sparse file reads as zeros), no discard of a file that is all holes anyway.
  o.args = {"mke2fs", "-q", "-F", "-t", "ext4", "-O", "^has_journal,^resize_inode", "-m", "0", "-N", std::to_string(size.inodes),
            "-E", "lazy_itable_init=1,nodiscard", image};
  auto run = sys::run_captured(o, /*with_stderr=*/true);
  if (!run) {
    Error e = std::move(run).error();
    if (e.code() == ENOENT) e.hint(kMke2fsHint);
    return std::move(e.wrap(fmt::format("make the file system of {}", image)));
  }
  if (!WIFEXITED(run->status) || WEXITSTATUS(run->status) != 0) {
    std::string said = std::move(run->output);
    while (!said.empty() && (said.back() == '\n' || said.back() == ' ')) said.pop_back();
    return Error::msg("mke2fs {} failed (status {}): {}", image, run->status, said);
  }
  return {};
}

// A free loop device bound to `backing` (autoclear), open read-write. Another process may
// take the number LOOP_CTL_GET_FREE gave before LOOP_CONFIGURE: then it asks again.
Result<UniqueFd> attach_loop(int backing, const std::string& image, std::string& device) {
  UniqueFd control(::open("/dev/loop-control", O_RDWR | O_CLOEXEC));
  if (!control) return Error::sys("open /dev/loop-control").hint("the disk limit needs loop devices (modprobe loop)");
  for (int attempt = 0; attempt < 32; ++attempt) {
    const int n = ::ioctl(control.get(), LOOP_CTL_GET_FREE);
    if (n < 0) return Error::sys("find a free loop device (/dev/loop-control)");
    device = "/dev/loop" + std::to_string(n);
    UniqueFd dev(::open(device.c_str(), O_RDWR | O_CLOEXEC));
    if (!dev) {
      if (errno == ENOENT) continue;  // not yet made by devtmpfs: ask again
      return Error::sys("open {}", device);
    }
    struct loop_config config;
    std::memset(&config, 0, sizeof config);
    config.fd = static_cast<uint32_t>(backing);
    config.info.lo_flags = LO_FLAGS_AUTOCLEAR;
    // Shown by losetup and in /sys/block/loopN/loop/backing_file: whose image this is.
    std::strncpy(reinterpret_cast<char*>(config.info.lo_file_name), image.c_str(), LO_NAME_SIZE - 1);
    if (::ioctl(dev.get(), LOOP_CONFIGURE, &config) == 0) return dev;
    if (errno != EBUSY) return Error::sys("attach {} to {} (LOOP_CONFIGURE)", image, device);
  }
  return Error::msg("attach {} to a loop device: every free one was taken by others first", image);
}

// The template of this size: made by mke2fs once (into a private name, then renamed, so a
// racing sandrun finds a whole one or none), reused by every later slot and process.
Result<std::string> template_for(const std::string& templates, DiskSize size) {
  const std::string path = fmt::format("{}/ext4-{}-{}.img", templates, size.bytes, size.inodes);
  if (::access(path.c_str(), F_OK) == 0) return path;
  // One maker per process (the slots of a run start on several threads at once); other
  // processes use their own temp name.
  static std::mutex making;
  std::lock_guard<std::mutex> hold(making);
  if (::access(path.c_str(), F_OK) == 0) return path;
  if (::mkdir(templates.c_str(), 0700) < 0 && errno != EEXIST) return Error::sys("create {}", templates);
  const std::string tmp = fmt::format("{}.{}.tmp", path, ::getpid());
  {
    auto file = SANDRUN_TRY(fs::open_path(tmp, O_RDWR | O_CREAT | O_TRUNC | O_NOFOLLOW, 0600));
    if (::ftruncate(file.get(), static_cast<off_t>(size.bytes)) < 0) {
      Error e = Error::sys("size {}", tmp);
      ::unlink(tmp.c_str());
      return e;
    }
  }
  if (auto r = make_fs(tmp, size); !r) {
    ::unlink(tmp.c_str());
    return std::move(r).error();
  }
  if (::rename(tmp.c_str(), path.c_str()) < 0) {
    Error e = Error::sys("rename {} to {}", tmp, path);
    ::unlink(tmp.c_str());
    return e;
  }
  return path;
}

// Copies the template's data extents into `out` (sized like it, holes left as holes): what
// mke2fs wrote is about 200 KiB of an 8 GiB image, so this takes well under a millisecond.
Result<void> copy_sparse(const std::string& from, int out) {
  auto in = SANDRUN_TRY(fs::open_path(from, O_RDONLY | O_NOFOLLOW));
  struct stat st;
  if (::fstat(in.get(), &st) < 0) return Error::sys("stat {}", from);
  if (::ftruncate(out, st.st_size) < 0) return Error::sys("size a copy of {}", from);
  off_t pos = 0;
  while (pos < st.st_size) {
    off_t data = ::lseek(in.get(), pos, SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) break;  // only a hole is left
      return Error::sys("find the data of {}", from);
    }
    off_t hole = ::lseek(in.get(), data, SEEK_HOLE);
    if (hole < 0) return Error::sys("find the holes of {}", from);
    off_t in_off = data, out_off = data;
    while (in_off < hole) {
      const ssize_t n = ::copy_file_range(in.get(), &in_off, out, &out_off, static_cast<size_t>(hole - in_off), 0);
      if (n < 0) return Error::sys("copy {}", from);
      if (n == 0) return Error::msg("copy {}: it ended early", from);
    }
    pos = hole;
  }
  return {};
}

Result<void> attach_and_mount(const std::string& image, const std::string& target) {
  auto backing = SANDRUN_TRY(fs::open_path(image, O_RDWR | O_NOFOLLOW));
  std::string device;
  auto loop = SANDRUN_TRY(attach_loop(backing.get(), image, device));
  // The mount holds the loop device from here; closing ours then leaves the mount its only
  // user, so the unmount clears it (LO_FLAGS_AUTOCLEAR).
  if (::mount(device.c_str(), target.c_str(), "ext4", MS_NODEV | MS_NOSUID | MS_NOATIME,
              "discard,noinit_itable,nobarrier") < 0) {
    return Error::sys("mount {} ({}) on {}", device, image, target);
  }
  return {};
}

}  // namespace

Result<void> mount_disk_image(const std::string& image, const std::string& target, DiskSize size,
                              const std::string& templates) {
  SANDRUN_TRY(remove_disk_image(image, target));
  // Twice at most: a template that does not mount (damaged, half-written by a crash before the
  // rename could not be, but a hand edit could) is made again.
  for (int attempt = 0;; ++attempt) {
    const std::string from = SANDRUN_TRY(template_for(templates, size));
    {
      auto file = SANDRUN_TRY(fs::open_path(image, O_RDWR | O_CREAT | O_TRUNC | O_NOFOLLOW, 0600));
      if (auto r = copy_sparse(from, file.get()); !r) {
        ::unlink(image.c_str());
        // `sandrun cleanup` removed the template meanwhile: make it again.
        if (attempt == 0 && r.error().code() == ENOENT) continue;
        return std::move(r).error();
      }
    }
    auto mounted = attach_and_mount(image, target);
    if (mounted) return {};
    ::unlink(image.c_str());
    // EINVAL: not an ext4 the kernel accepts (the template is damaged).
    if (attempt > 0 || mounted.error().code() != EINVAL) return std::move(mounted).error();
    ::unlink(from.c_str());
  }
}

bool is_mount_point(const std::string& path) {
  struct stat st, parent;
  if (::stat(path.c_str(), &st) < 0 || ::stat((path + "/..").c_str(), &parent) < 0) return false;
  return st.st_dev != parent.st_dev;
}

namespace {

// While the loop device `dev` is still bound to `image` (its sysfs backing_file names it).
bool loop_still_bound(dev_t dev, const std::string& image) {
  const std::string path = fmt::format("/sys/dev/block/{}:{}/loop/backing_file", major(dev), minor(dev));
  auto bound = fs::read_file(path);
  return bound && bound->starts_with(image);
}

}  // namespace

Result<void> remove_disk_image(const std::string& image, const std::string& target) {
  // The loop devices of the mounts there: the lazy unmount leaves each to the kernel, which
  // releases it (autoclear) once the last mount namespace that saw the file system is gone, a
  // moment after the container's last process. Waited for below, so that nothing of the
  // container is left when its teardown returns.
  std::vector<dev_t> devices;
  // Any number of mounts stacked there (a crashed run's, ours).
  for (int i = 0; i < 16 && is_mount_point(target); ++i) {
    struct stat st;
    if (::stat(target.c_str(), &st) == 0 && major(st.st_dev) == LOOP_MAJOR) devices.push_back(st.st_dev);
    if (::umount2(target.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) < 0) return Error::sys("unmount {}", target);
  }
  if (::unlink(image.c_str()) < 0 && errno != ENOENT) return Error::sys("remove {}", image);
  for (dev_t dev : devices) {
    // Bounded: a process that still holds the file system (one that escaped its cgroup's kill
    // cannot, but a debugger could) must not hang the teardown; the kernel clears it later.
    for (int i = 0; i < 400 && loop_still_bound(dev, image); ++i) ::usleep(5000);
  }
  return {};
}

Result<DiskFree> disk_free(const std::string& path) {
  struct statvfs st;
  if (::statvfs(path.c_str(), &st) < 0) return Error::sys("statvfs {}", path);
  return DiskFree{static_cast<uint64_t>(st.f_bavail) * st.f_frsize, static_cast<uint64_t>(st.f_favail)};
}

bool loop_disks_available(std::string* why) {
  UniqueFd control(::open("/dev/loop-control", O_RDWR | O_CLOEXEC));
  if (!control) {
    if (why) *why = fmt::format("/dev/loop-control: {}", errno_text(errno));
    return false;
  }
  for (const char* dir : {"/usr/sbin/", "/sbin/", "/usr/local/sbin/", "/usr/bin/", "/bin/"}) {
    if (::access((std::string(dir) + "mke2fs").c_str(), X_OK) == 0) return true;
  }
  if (why) *why = "mke2fs (e2fsprogs) is not installed";
  return false;
}

}  // namespace sandrun::sandbox
