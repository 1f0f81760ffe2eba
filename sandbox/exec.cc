// Exec::start: a new process in a running container; its environment and how it ended.
#include "sandbox/exec.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "sandbox/capabilities.h"
#include "sandbox/exec_plan.h"
#include "sandbox/seccomp_filter.h"
#include "sandbox/sys/fs.h"
#include "sandbox/sys/syscalls.h"
#include "sandbox/userns.h"

namespace sandrun::sandbox {
namespace {

struct Ends {
  UniqueFd ours;
  UniqueFd child;
};

Result<Ends> make_pipe(const char* what, bool child_reads) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) < 0) return Error::sys("create the exec's {} pipe", what);
  if (child_reads) return Ends{UniqueFd(fds[1]), UniqueFd(fds[0])};
  return Ends{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

// Everything the child's plan points into.
struct Strings {
  std::vector<std::string> argv, env;
  std::vector<char*> argv_ptrs, env_ptrs;
  std::string workdir, path;
  std::vector<gid_t> groups;
};

void flatten(const ContainerPlan& plan, const ExecTarget& target, const ExecSpec& spec, Strings& s, ExecChildPlan& c) {
  s.argv = spec.argv;
  s.env = exec_env(plan, target.start_env, spec.env);
  for (auto& a : s.argv) s.argv_ptrs.push_back(a.data());
  s.argv_ptrs.push_back(nullptr);
  for (auto& e : s.env) {
    s.env_ptrs.push_back(e.data());
    if (e.starts_with("PATH=")) s.path = e.substr(5);
  }
  s.env_ptrs.push_back(nullptr);
  s.workdir = spec.workdir.empty() ? plan.workdir : spec.workdir;
  s.groups = spec.user ? spec.user->groups : plan.groups;
  c.argv = s.argv_ptrs.data();
  c.envp = s.env_ptrs.data();
  c.path = s.path.c_str();
  c.workdir = s.workdir.c_str();
  c.uid = spec.user ? spec.user->uid : plan.uid;
  c.gid = spec.user ? spec.user->gid : plan.gid;
  c.groups = s.groups.data();
  c.ngroups = s.groups.size();
  const Hardening& h = plan.hardening;
  c.capabilities = h.capabilities;
  c.last_cap = last_capability();
  c.no_new_privs = h.no_new_privs;
  c.seccomp = h.seccomp ? h.seccomp->prog() : nullptr;
  c.core_limit = h.core_limit;
  if (h.nofile) {
    c.set_nofile = true;
    c.nofile_soft = h.nofile->first;
    c.nofile_hard = h.nofile->second;
  }
  c.ns_flags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWCGROUP | (plan.new_net ? CLONE_NEWNET : 0);
  if (plan.userns.enabled) {
    c.ns_flags |= CLONE_NEWUSER;
    c.userns = true;
    c.userns_setgroups = userns::setgroups_allowed(plan.userns);
  }
}

Result<void> check_spec(const ExecSpec& spec) {
  if (spec.argv.empty() || spec.argv[0].empty()) return Error::msg("an exec needs a command");
  if (!spec.workdir.empty() && spec.workdir[0] != '/')
    return Error::msg("the exec's working directory {:?} is not an absolute path", spec.workdir);
  if (spec.tty && (spec.tty->rows == 0 || spec.tty->cols == 0))
    return Error::msg("the exec's terminal size {}x{} is empty", spec.tty->cols, spec.tty->rows);
  return {};
}

// Clones the child into the container's PID namespace: the calling thread enters it for the
// clone (setns of a PID namespace sets the one for children of this thread only) and goes back.
Result<sys::Child> clone_into(const ExecTarget& target, const ExecChildPlan& plan) {
  UniqueFd home = SANDRUN_TRY(fs::open_path("/proc/thread-self/ns/pid", O_RDONLY));
  if (::setns(target.pidfd, CLONE_NEWPID) < 0) {
    const int err = errno;
    if (err == ESRCH) return Error::msg("the container (pid {}) is not running", target.pid);
    auto e = Error::sys_code(err, "enter the PID namespace of the container (pid {})", target.pid);
    if (err == EPERM) e.hint("entering a running container needs root");
    return e;
  }
  int pidfd = -1;
  struct clone_args args = {};
  args.flags = CLONE_PIDFD;
  args.pidfd = reinterpret_cast<uint64_t>(&pidfd);
  args.exit_signal = SIGCHLD;
  if (target.cgroup_dir_fd >= 0) {
    args.flags |= CLONE_INTO_CGROUP;
    args.cgroup = static_cast<uint64_t>(target.cgroup_dir_fd);
  }
  // No handler of ours may run in the child: everything stays blocked until it resets them.
  uint64_t all = ~0ULL, old = 0;
  sys::sigprocmask_all(SIG_SETMASK, &all, &old);
  const long pid = sys::clone3(&args);
  if (pid == 0) run_exec_child(plan);
  const int clone_errno = errno;
  // A thread left there would put every later child of it into the container.
  if (::setns(home.get(), CLONE_NEWPID) < 0) ::abort();
  sys::sigprocmask_all(SIG_SETMASK, &old, nullptr);
  if (pid < 0) {
    auto e = Error::sys_code(clone_errno, "clone the exec's process into the container (pid {})", target.pid);
    if (clone_errno == EBUSY || clone_errno == EOPNOTSUPP) e.hint("the container's cgroup takes no process now");
    return e;
  }
  return sys::Child::adopt(static_cast<pid_t>(pid), UniqueFd(pidfd), "the exec's process");
}

}  // namespace

std::vector<std::string> exec_env(const ContainerPlan& plan, const std::vector<std::string>& start_env,
                                  const std::vector<std::string>& overrides) {
  std::vector<std::string> env = plan.env;
  for (const auto* list : {&start_env, &overrides}) {
    for (const std::string& e : *list) {
      const std::string name = e.substr(0, e.find('=') + 1);
      auto same = std::find_if(env.begin(), env.end(), [&](const std::string& x) { return x.starts_with(name); });
      if (same != env.end()) {
        *same = e;
      } else {
        env.push_back(e);
      }
    }
  }
  return env;
}

Result<Exec> Exec::start(const ContainerPlan& plan, const ExecTarget& target, const ExecSpec& spec) {
  SANDRUN_TRY(check_spec(spec));
  if (target.pidfd < 0) return Error::msg("the container is not running");
  ExecChildPlan c;
  Strings strings;
  flatten(plan, target, spec, strings, c);
  c.pidfd = target.pidfd;
  c.cgroup_procs = target.cgroup_procs.data();
  c.ncgroup_procs = target.cgroup_procs.size();
  // PID 1's root, then a check that the pid still names it (not a reused number).
  UniqueFd root(::open(fmt::format("/proc/{}/root", target.pid).c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root || sys::pidfd_send_signal(target.pidfd, 0) < 0)
    return Error::msg("the container (pid {}) is not running", target.pid);
  c.root_fd = root.get();

  Ends out, err, in, status = SANDRUN_TRY(make_pipe("status", false));
  UniqueFd tty_ours, tty_child;
  if (spec.tty) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) return Error::sys("create the exec's terminal socket");
    tty_ours.reset(sv[0]);
    tty_child.reset(sv[1]);
    c.tty_socket = tty_child.get();
    c.tty_rows = spec.tty->rows;
    c.tty_cols = spec.tty->cols;
  } else {
    out = SANDRUN_TRY(make_pipe("stdout", false));
    err = SANDRUN_TRY(make_pipe("stderr", false));
    if (spec.stdin_pipe) in = SANDRUN_TRY(make_pipe("stdin", true));
  }
  c.stdout_fd = out.child.get();
  c.stderr_fd = err.child.get();
  c.stdin_fd = in.child.get();
  c.status_fd = status.child.get();

  Exec ex;
  ex.child_ = SANDRUN_TRY(clone_into(target, c));
  tty_child.reset();  // the child's copies stay with it: end-of-file once it has exec'd or exited
  if (tty_ours) {
    auto master = receive_terminal(tty_ours.get());
    if (!master) return std::move(master).error();  // ex kills and reaps the child
    ex.terminal_ = std::move(*master);
  }
  ex.stdout_ = std::move(out.ours);
  ex.stderr_ = std::move(err.ours);
  ex.stdin_ = std::move(in.ours);
  ex.status_ = std::move(status.ours);
  return ex;
}

Exec::Exec(Exec&&) noexcept = default;
Exec& Exec::operator=(Exec&&) noexcept = default;
Exec::~Exec() = default;

Outcome interpret_exec(const ContainerPlan& plan, const ExecSpec& spec, const std::vector<StatusRecord>& records,
                       int wait_status) {
  Outcome out;
  for (const auto& r : records) {
    const auto kind = static_cast<RecordKind>(r.kind);
    if (kind != RecordKind::setup_failed && kind != RecordKind::exec_failed) continue;
    const std::string cmd = spec.argv.empty() ? "" : spec.argv[0];
    const auto stage = static_cast<Stage>(r.stage);
    out.kind = kind == RecordKind::setup_failed ? Outcome::Kind::setup_failed : Outcome::Kind::exec_failed;
    out.code = kind == RecordKind::setup_failed ? 1 : (r.value == ENOENT ? 127 : 126);
    const uid_t uid = spec.user ? spec.user->uid : plan.uid;
    const gid_t gid = spec.user ? spec.user->gid : plan.gid;
    const std::string workdir = spec.workdir.empty() ? plan.workdir : spec.workdir;
    if (kind == RecordKind::exec_failed && r.value == ENOENT) {
      out.error = Error::msg("exec in container {:?}: command not found: {:?}", plan.name, cmd)
                      .hint("the container's PATH is searched");
    } else if (kind == RecordKind::exec_failed) {
      out.error = Error::sys_code(r.value, "exec in container {:?}: cannot execute {:?}", plan.name, cmd);
    } else if (stage == Stage::workdir) {
      out.error = Error::sys_code(r.value, "exec in container {:?}: working directory {}", plan.name, workdir);
    } else if (stage == Stage::set_uid || stage == Stage::set_gid || stage == Stage::set_groups) {
      out.error = Error::sys_code(r.value, "exec in container {:?}: switch to user {}:{}", plan.name, uid, gid);
    } else {
      out.error = describe_failure(plan, Placement{}, r).wrap(fmt::format("exec in container {:?}", plan.name));
    }
    return out;
  }
  if (WIFSIGNALED(wait_status)) {
    out.kind = Outcome::Kind::signaled;
    out.signal = WTERMSIG(wait_status);
  } else {
    out.kind = Outcome::Kind::exited;
    out.code = WEXITSTATUS(wait_status);
  }
  return out;
}

}  // namespace sandrun::sandbox
