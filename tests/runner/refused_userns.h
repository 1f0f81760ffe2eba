// Running sandrun as an unprivileged user where user namespaces are refused, on any host: the
// answer of a host whose sysctls forbid them (user.max_user_namespaces=0,
// kernel.unprivileged_userns_clone=0), whatever this host's own answer is.
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "sandbox/sys/fs.h"
#include "sandbox/sys/unique_fd.h"
#include "tests/support/test_env.h"

namespace sandrun::testing {

namespace refused_userns_detail {

inline bool write_text(const std::string& path, const std::string& text) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  return fd && ::write(fd.get(), text.data(), text.size()) == static_cast<ssize_t>(text.size());
}

inline std::string read_all(int fd) {
  ::lseek(fd, 0, SEEK_SET);
  auto text = fs::read_fd(fd);
  return text ? *text : std::string();
}

}  // namespace refused_userns_detail

// Runs argv (argv[0] an absolute path) as uid and gid `id`, without supplementary groups, with
// exactly `env` as its environment, in a user namespace of the test's own: `id` is mapped to
// itself there (so files keep their owners) and user.max_user_namespaces is 0, so any user
// namespace created from it fails with ENOSPC, as on a host that forbids them. The namespace
// goes with the process. Needs root (to map `id`). On a host whose own
// user.max_user_namespaces is 0 there is no namespace to make, nor any need for one.
inline CommandResult run_where_user_namespaces_are_refused(uid_t id, const std::vector<std::string>& argv,
                                                          const std::vector<std::string>& env) {
  using refused_userns_detail::read_all;
  using refused_userns_detail::write_text;
  CommandResult res;
  // Everything the child needs, prepared before the fork (the child only makes system calls).
  std::vector<std::string> args = argv, envs = env;
  std::vector<char*> cargv, cenv;
  for (auto& a : args) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  for (auto& e : envs) cenv.push_back(e.data());
  cenv.push_back(nullptr);
  UniqueFd out(::memfd_create("refused-userns-out", MFD_CLOEXEC));
  UniqueFd err(::memfd_create("refused-userns-err", MFD_CLOEXEC));
  int ready[2], go[2];
  if (!out || !err || ::pipe2(ready, O_CLOEXEC) < 0) {
    res.err = "memfd or pipe failed";
    return res;
  }
  if (::pipe2(go, O_CLOEXEC) < 0) {
    ::close(ready[0]);
    ::close(ready[1]);
    res.err = "pipe failed";
    return res;
  }
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(ready[0]);
    ::close(go[1]);
    // Where even root may not create one (this host's user.max_user_namespaces is 0), the host
    // itself gives the answer: the command runs as `id` without a namespace of ours.
    char own = 1;
    if (::unshare(CLONE_NEWUSER) < 0) {
      if (errno != ENOSPC) ::_exit(120);
      own = 0;
    }
    char c = 0;
    if (::write(ready[1], &own, 1) != 1 || ::read(go[0], &c, 1) != 1) ::_exit(121);  // the parent writes our maps
    // Full capabilities in the new namespace until the ids change: its own limit is ours to set.
    int fd = own ? ::open("/proc/sys/user/max_user_namespaces", O_WRONLY | O_CLOEXEC) : -2;
    if (fd == -1 || (fd >= 0 && ::write(fd, "0\n", 2) != 2)) ::_exit(122);
    if (fd >= 0) ::close(fd);
    if (::setgroups(0, nullptr) < 0 || ::setresgid(id, id, id) < 0 || ::setresuid(id, id, id) < 0) ::_exit(123);
    ::prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);  // as after an exec by the user itself
    int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null < 0 || ::dup2(null, 0) < 0 || ::dup2(out.get(), 1) < 0 || ::dup2(err.get(), 2) < 0) ::_exit(124);
    ::execve(cargv[0], cargv.data(), cenv.data());
    ::_exit(127);
  }
  ::close(ready[1]);
  ::close(go[0]);
  UniqueFd release(go[1]);
  if (pid < 0) {
    ::close(ready[0]);
    res.err = "fork failed";
    return res;
  }
  char own = 0;
  const bool ready_read = ::read(ready[0], &own, 1) == 1;
  ::close(ready[0]);
  const std::string map = std::to_string(id) + " " + std::to_string(id) + " 1\n";
  const std::string proc = "/proc/" + std::to_string(pid);
  if (ready_read && (!own || (write_text(proc + "/uid_map", map) && write_text(proc + "/gid_map", map)))) {
    (void)!::write(release.get(), &own, 1);
  }
  release.reset();
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  res.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  res.out = read_all(out.get());
  res.err = read_all(err.get());
  if (res.status >= 120 && res.status <= 124 && res.err.empty()) {
    res.err = "setting up the user namespace failed at step " + std::to_string(res.status - 120);
  }
  return res;
}

}  // namespace sandrun::testing
