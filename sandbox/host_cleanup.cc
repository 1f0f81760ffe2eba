// Killing the processes and detaching the mounts a dead sandrun left on the host.
#include "sandbox/host_cleanup.h"

#include <poll.h>
#include <signal.h>
#include <sys/mount.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "sandbox/proc.h"
#include "sandbox/sys/error.h"
#include "sandbox/sys/fs.h"
#include "sandbox/sys/syscalls.h"
#include "sandbox/sys/unique_fd.h"

namespace sandrun::sandbox {

bool kill_recorded_process(pid_t pid, unsigned long long start_time) {
  if (pid <= 0) return false;
  // Open the pidfd first, then check the start time: if they match, the pidfd is that process.
  UniqueFd pidfd(sys::pidfd_open(pid));
  if (!pidfd) return false;
  auto stat = read_proc_stat(pid);
  if (!stat || stat->start_time != start_time) return false;
  if (stat->state == 'Z') return false;  // already dead; its parent's parent reaps it
  if (sys::pidfd_send_signal(pidfd.get(), SIGKILL) < 0) return false;
  struct pollfd p = {pidfd.get(), POLLIN, 0};
  ::poll(&p, 1, 5000);
  return true;
}

bool kill_process_named(pid_t pid, std::initializer_list<std::string_view> names) {
  if (pid <= 1) return false;
  UniqueFd pidfd(sys::pidfd_open(pid));
  // The pidfd pins the process: if it is still alive after reading its name, the name was
  // that process's, not a later one's with a reused pid.
  auto comm = fs::read_file("/proc/" + std::to_string(pid) + "/comm");
  const bool named = comm && std::any_of(names.begin(), names.end(),
                                         [&](std::string_view n) { return comm->rfind(n, 0) == 0; });
  if (!pidfd || !named || sys::pidfd_send_signal(pidfd.get(), 0) != 0) return false;
  return sys::pidfd_send_signal(pidfd.get(), SIGKILL) == 0;
}

size_t unmount_beneath(const std::string& prefix, std::vector<std::string>& failures) {
  std::vector<std::string> mounts;
  std::ifstream f("/proc/self/mountinfo");
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream ls(line);
    std::string id, parent, dev, root, mnt;
    ls >> id >> parent >> dev >> root >> mnt;
    if (mnt == prefix || mnt.rfind(prefix + "/", 0) == 0) mounts.push_back(mnt);
  }
  std::sort(mounts.begin(), mounts.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
  size_t removed = 0;
  for (const auto& m : mounts) {
    if (::umount2(m.c_str(), MNT_DETACH) == 0) {
      ++removed;
    } else {
      failures.push_back(fmt::format("unmount {}: {}", m, errno_text(errno)));
    }
  }
  return removed;
}

}  // namespace sandrun::sandbox
