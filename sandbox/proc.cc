// Reading a process's root, network namespace, state and start time through /proc.
#include "sandbox/proc.h"

#include <fcntl.h>

#include <sstream>
#include <string>

#include "sandbox/sys/fs.h"
#include "sandbox/sys/syscalls.h"

namespace sandrun::sandbox {

Result<UniqueFd> open_container_root(pid_t pid, int pidfd) {
  const std::string path = fmt::format("/proc/{}/root", pid);
  int fd = ::open(path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Error::sys("open the container's root {}", path);
  UniqueFd root(fd);
  // The pid could have been reused before the open; the pidfd cannot. Still alive now means
  // /proc/PID was ours when it was opened.
  if (sys::pidfd_send_signal(pidfd, 0) < 0) return Error::sys("the container's init (pid {}) is gone", pid);
  return root;
}

Result<UniqueFd> open_container_netns(pid_t pid, int pidfd) {
  const std::string path = fmt::format("/proc/{}/ns/net", pid);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Error::sys("open the container's network namespace {}", path);
  UniqueFd netns(fd);
  if (sys::pidfd_send_signal(pidfd, 0) < 0) return Error::sys("the container's init (pid {}) is gone", pid);
  return netns;
}

std::optional<ProcStat> read_proc_stat(pid_t pid) {
  auto text = fs::read_file("/proc/" + std::to_string(pid) + "/stat");
  if (!text) return std::nullopt;
  // The command name (field 2) may contain spaces and parentheses: skip past the last ')'.
  size_t close = text->rfind(')');
  if (close == std::string::npos || close + 2 >= text->size()) return std::nullopt;
  ProcStat st;
  st.state = (*text)[close + 2];
  std::istringstream in(text->substr(close + 2));
  std::string field;
  for (int i = 3; i <= 22; ++i) {
    if (!(in >> field)) return std::nullopt;
  }
  st.start_time = std::stoull(field);
  return st;
}

unsigned long long process_start_time(pid_t pid) {
  auto st = read_proc_stat(pid);
  return st ? st->start_time : 0;
}

}  // namespace sandrun::sandbox
