// Starting, signalling and reaping a container; interpreting how it ended.
#include "sandbox/sandbox.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <vector>

#include "sandbox/cgroup.h"
#include "sandbox/dev_nodes.h"
#include "sandbox/init_binary.h"
#include "sandbox/plan.h"
#include "sandbox/sys/fd_passing.h"
#include "sandbox/sys/fs.h"
#include "sandbox/sys/syscalls.h"
#include "sandbox/userns.h"

// sandbox/clone_vm.S: clone3 for a child that runs fn(arg) on its own stack in our memory.
extern "C" long sandrun_clone3_vm(struct clone_args* args, size_t size, int (*fn)(void*), void* arg);

namespace sandrun::sandbox {
namespace {

constexpr size_t kStackSize = 256 * 1024;

struct Pipe {
  UniqueFd read;
  UniqueFd write;
};

Result<Pipe> make_pipe(const char* what) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) < 0) return Error::sys("create {} pipe", what);
  return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

// A SOCK_SEQPACKET pair: `read` stays with sandrun, `write` goes to the child.
Result<Pipe> make_socket_pair(const char* what) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) return Error::sys("create the {} socket", what);
  return Pipe{UniqueFd(sv[0]), UniqueFd(sv[1])};
}

Error clone_error(int err) {
  auto e = Error::sys_code(err, "clone into new namespaces");
  switch (err) {
    case EPERM:
      e.hint("creating namespaces needs root (CAP_SYS_ADMIN); run sandrun as root");
      break;
    case ENOSPC:
      e.hint("a namespace limit is reached: see /proc/sys/user/max_*_namespaces");
      break;
    case EAGAIN:
      e.hint("the process limit is reached (ulimit -u, or pids.max of sandrun's cgroup)");
      break;
    default:
      break;
  }
  return e;
}

// The child's stack. A vfork-style parent is suspended until its child execs or exits, so one
// stack per thread serves every clone that thread makes, one after the other.
Result<char*> child_stack() {
  constexpr size_t kSize = kStackSize;
  struct Stack {
    void* base = MAP_FAILED;
    ~Stack() {
      if (base != MAP_FAILED) ::munmap(base, kSize);
    }
  };
  thread_local Stack stack;
  if (stack.base == MAP_FAILED) {
    stack.base = ::mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack.base == MAP_FAILED) return Error::sys("allocate the container's setup stack");
  }
  return static_cast<char*>(stack.base);
}

// With a remapped root the container's root must own the writable layer (the overlay's "/")
// and the overlay's work dir (overlayfs uses them with the mounter's credentials). Slots are
// reset to host root after each container, so this is done at every start.
Result<void> give_layer_to_container_root(const ContainerPlan& spec, const Placement& place,
                                          const std::vector<Bind>& binds) {
  const uid_t uid = *userns::to_host(spec.userns.uid_map, 0);
  const gid_t gid = *userns::to_host(spec.userns.gid_map, 0);
  if (uid == ::geteuid() && gid == ::getegid()) return {};  // rootless: ours already
  for (const std::string& dir : {place.upper_dir, place.work_dir}) {
    if (::chown(dir.c_str(), uid, gid) < 0) return Error::sys("chown {} to the container's root {}:{}", dir, uid, gid);
  }
  // What overlayfs left in its work dir (empty, mode 000) must be removable by the new mounter.
  for (const char* sub : {"/work", "/index"}) {
    const std::string path = place.work_dir + sub;
    if (::chown(path.c_str(), uid, gid) < 0 && errno != ENOENT) return Error::sys("chown {}", path);
  }
  // The copy-on-write volumes' upper and work dirs likewise (the upper dir is the volume's
  // root: it takes the lower dir's owner and mode at the first copy-up).
  for (const Bind& b : binds) {
    if (!b.overlay()) continue;
    for (const std::string& dir : {b.overlay_upper, b.overlay_work}) {
      if (::chown(dir.c_str(), uid, gid) < 0) return Error::sys("chown {} to the container's root {}:{}", dir, uid, gid);
    }
  }
  return {};
}

// The root of an overlay takes its owner and mode from the upper dir: a copy-on-write volume
// shows the host dir's, so a job's user that may write to the checkout may write to its view.
// With a remapped root and an idmapped lower (Bind::owner_is_root: the workspace), the lower's
// owner shows as the job's user, whose host id gets the upper dir.
Result<void> match_volume_roots(const ContainerPlan& spec, const std::vector<Bind>& binds) {
  for (const Bind& b : binds) {
    if (!b.overlay()) continue;
    struct stat st;
    if (::stat(b.source.c_str(), &st) < 0) return Error::sys("volume source {}", b.source);
    // Rootless, the upper dir is the caller's, who is the container's root: nothing to give.
    // As root with an idmapped lower (Bind::owner_is_root), the lower's owner shows as the
    // job's user (plan.cc owner_map_ns): the upper dir is that user's host id.
    uid_t uid = st.st_uid;
    gid_t gid = st.st_gid;
    bool give = !spec.userns.enabled || ::geteuid() == 0;
    if (spec.userns.enabled && b.owner_is_root) {
      uid = userns::to_host(spec.userns.uid_map, spec.uid).value_or(uid);
      gid = userns::to_host(spec.userns.gid_map, spec.gid).value_or(gid);
    }
    if (give && ::chown(b.overlay_upper.c_str(), uid, gid) < 0) return Error::sys("chown {}", b.overlay_upper);
    if (::chmod(b.overlay_upper.c_str(), st.st_mode & 07777) < 0) return Error::sys("chmod {}", b.overlay_upper);
  }
  return {};
}

// Releases the user-namespace child once its maps are written: one message on `sock`, or
// as many as it takes to send it `dirs` as idmapped mounts made with its own user namespace
// (ChildPlan::own_ns_fds): the maps of the mounts of its image are then its own maps, and no
// other user namespace is made for them.
Result<void> release_child(int sock, pid_t pid, const std::vector<std::string>& dirs) {
  std::vector<UniqueFd> trees;
  if (!dirs.empty()) {
    UniqueFd ns(::open(fmt::format("/proc/{}/ns/user", pid).c_str(), O_RDONLY | O_CLOEXEC));
    if (!ns) return Error::sys("open the user namespace of the container (pid {})", pid);
    trees.reserve(dirs.size());
    for (const auto& dir : dirs) trees.push_back(SANDRUN_TRY(userns::idmapped_tree(dir, ns.get(), 0)));
  }
  size_t sent = 0;
  do {
    const size_t count = std::min(trees.size() - sent, kFdsPerMessage);
    const char byte = '1';
    std::vector<int> fds;
    for (size_t i = 0; i < count; ++i) fds.push_back(trees[sent + i].get());
    if (sys::send_fds(sock, &byte, 1, fds.data(), count) != 1) return Error::sys("release the container (pid {})", pid);
    sent += count;
  } while (sent < trees.size());
  return {};
}

// Until the kernel clears `released` (CLONE_CHILD_CLEARTID: at the child's exec or exit, when
// it lets go of our memory), that child may still run on our memory and this thread's errno
// and stack: the cloning thread waits here, as a CLONE_VFORK parent sleeps. The futex word
// goes from 1 to 0 once; a FUTEX_WAIT that finds 0 (EAGAIN) writes errno only after the child
// has let go. Signals stay blocked meanwhile, so no handler runs on this thread either.
void wait_until_released(const uint32_t* released) {
  while (__atomic_load_n(released, __ATOMIC_ACQUIRE) != 0)
    ::syscall(SYS_futex, released, FUTEX_WAIT, 1, nullptr, nullptr, 0);
}

// Placement::survive_parent: the pipes hold what the container writes while no daemon reads
// (as much as the host's pipe-max-size lets, up to 1 MiB each), and init holds their read ends
// so that they outlive the daemon.
Result<void> keep_pipes_for_init(ChildPlan& plan, bool with_init, const Pipe& out, const Pipe& err, const Pipe& status) {
  if (!with_init || !out.read) return Error::msg("a container that outlives sandrun needs its init and output pipes (no terminal)");
  int size = 1 << 20;
  if (auto max = fs::read_file("/proc/sys/fs/pipe-max-size")) size = std::min(size, std::max(4096, std::atoi(max->c_str())));
  for (const Pipe* p : {&out, &err}) {
    if (::fcntl(p->write.get(), F_SETPIPE_SZ, size) < 0)
      return Error::sys("grow the container's output pipe {} to {} bytes", fs::fd_path(p->write.get()), size);
  }
  plan.survive_parent = true;
  plan.keep_fds[0] = out.read.get();
  plan.keep_fds[1] = err.read.get();
  plan.keep_fds[2] = status.read.get();
  return {};
}

}  // namespace

Result<Sandbox> Sandbox::start(const ContainerPlan& spec, const Placement& place, const cgroup::Group* group) {
  const bool with_init = spec.init || spec.hold_after_exit || spec.socket_factory;
  auto prepared = SANDRUN_TRY(PreparedPlan::make(spec, place, with_init));
  const std::vector<Bind> binds = SANDRUN_TRY(placed_binds(spec, place));
  ChildPlan& plan = prepared->plan();
  if (with_init) plan.init_fd = SANDRUN_TRY(init_memfd());
  UniqueFd factory[2];
  if (spec.socket_factory) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) return Error::sys("create the socket factory");
    factory[0].reset(sv[0]);
    factory[1].reset(sv[1]);
    plan.factory_fd = factory[1].get();
  }
  // The slot's own device nodes, checked and reset, as one read-only mount for the child. The
  // container's stdin is that null too: an fd of the host's /dev/null would let its root
  // chmod the host's node through /proc/self/fd/0. Rootless sandrun cannot mknod; its
  // container's root cannot change the host's nodes either (they belong to host root).
  UniqueFd dev_tree;
  UniqueFd devnull;
  if (::geteuid() == 0) {
    if (place.dev_dir.empty()) return Error::msg("the container's placement has no device directory");
    dev_tree = SANDRUN_TRY(device_tree(place.dev_dir));
    plan.dev_tree = dev_tree.get();
    devnull.reset(::openat(dev_tree.get(), "null", O_RDONLY | O_CLOEXEC));
    if (!devnull) return Error::sys("open {}/null", place.dev_dir);
  } else {
    devnull = SANDRUN_TRY(fs::open_path("/dev/null", O_RDONLY));
  }
  Pipe out, err, in, tty;
  if (place.tty) {
    tty = SANDRUN_TRY(make_socket_pair("terminal"));
    plan.tty_socket = tty.write.get();
    plan.tty_rows = place.tty->rows;
    plan.tty_cols = place.tty->cols;
  } else {
    out = SANDRUN_TRY(make_pipe("stdout"));
    err = SANDRUN_TRY(make_pipe("stderr"));
    if (place.stdin_pipe) in = SANDRUN_TRY(make_pipe("stdin"));
  }
  auto status = SANDRUN_TRY(make_pipe("status"));
  if (place.survive_parent) SANDRUN_TRY(keep_pipes_for_init(plan, with_init, out, err, status));
  plan.stdin_fd = in.read ? in.read.get() : devnull.get();
  plan.stdout_fd = out.write.get();
  plan.stderr_fd = err.write.get();
  plan.status_fd = status.write.get();
  Pipe sync;  // user namespace: a message releases the child once its maps are written (release_child)
  uint32_t released = 1;  // user namespace: cleared by the kernel once the child lets go of our memory
  if (spec.userns.enabled) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) return Error::sys("create the user namespace's release socket");
    sync = Pipe{UniqueFd(sv[0]), UniqueFd(sv[1])};
    plan.userns_sync = sync.read.get();
    plan.userns_sync_parent = sync.write.get();
    SANDRUN_TRY(give_layer_to_container_root(spec, place, binds));
  }
  SANDRUN_TRY(match_volume_roots(spec, binds));

  int pidfd = -1;
  struct clone_args args = {};
  args.flags = CLONE_VM | CLONE_VFORK | CLONE_PIDFD | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC |
               CLONE_NEWUTS | (spec.new_net && place.netns_fd < 0 ? CLONE_NEWNET : 0);
  if (spec.userns.enabled) {
    // The child waits for its maps, which this thread writes: it shares our memory as a
    // vfork child does (no page tables copied, no copy-on-write faults in sandrun after),
    // but this thread goes on after the clone, writes the maps, releases the child, and only
    // then waits as vfork would have (wait_until_released).
    args.flags = (args.flags & ~static_cast<uint64_t>(CLONE_VFORK)) | CLONE_NEWUSER | CLONE_CHILD_CLEARTID;
    args.child_tid = reinterpret_cast<uint64_t>(&released);
  }
  args.pidfd = reinterpret_cast<uint64_t>(&pidfd);
  args.exit_signal = SIGCHLD;
  args.stack = reinterpret_cast<uint64_t>(SANDRUN_TRY(child_stack()));
  args.stack_size = kStackSize;
  if (group && group->clone_into_fd() >= 0) {
    args.flags |= CLONE_INTO_CGROUP;
    args.cgroup = static_cast<uint64_t>(group->clone_into_fd());
  } else if (group) {
    plan.cgroup_procs = group->procs_fds().data();
    plan.ncgroup_procs = group->procs_fds().size();
  }

  // Joining a job's network namespace: the child inherits this thread's, so this thread
  // enters it for the clone and goes back at once (setns of a network namespace affects only
  // the calling thread).
  UniqueFd home_netns;
  if (place.netns_fd >= 0) {
    home_netns = SANDRUN_TRY(fs::open_path("/proc/thread-self/ns/net", O_RDONLY));
    if (::setns(place.netns_fd, CLONE_NEWNET) < 0)
      return Error::sys("enter the job's network namespace {}", fs::fd_path(place.netns_fd));
  }
  // No signal handler of ours may run in the child: block everything across the clone.
  uint64_t all = ~0ULL, old = 0;
  sys::sigprocmask_all(SIG_SETMASK, &all, &old);
  // posix_spawn-style: the child shares our memory (no page tables are copied, which was the
  // biggest cost of a fork-style clone) and this thread sleeps until the child has exec'd or
  // exited (with a user namespace, once it has written the maps). The child only reads
  // `plan` and writes its own stack.
  long pid = sandrun_clone3_vm(&args, sizeof args, child_entry, &plan);
  // A thread left in the job's namespace would open every later socket there.
  if (home_netns && ::setns(home_netns.get(), CLONE_NEWNET) < 0) ::abort();
  Result<void> mapped;
  if (spec.userns.enabled && pid > 0) {
    mapped = userns::write_maps(static_cast<pid_t>(pid), spec.userns);
    if (mapped) mapped = release_child(sync.write.get(), static_cast<pid_t>(pid), prepared->own_ns_trees());
    if (!mapped) mapped = std::move(mapped.error().wrap("set up the container's user namespace"));
    sync.write.reset();  // on a failure the child reads end-of-file and exits
    wait_until_released(&released);
  }
  sys::sigprocmask_all(SIG_SETMASK, &old, nullptr);
  if (pid < 0) {
    Error e = clone_error(static_cast<int>(-pid));
    if (spec.userns.enabled && (pid == -EPERM || pid == -ENOSPC || pid == -EUSERS)) e.hint(userns::enable_hint());
    return e;
  }

  Sandbox sb;
  sb.child_ = sys::Child::adopt(static_cast<pid_t>(pid), UniqueFd(pidfd), "the container's init");
  if (tty.read) {
    // The child has exec'd or exited: its master is waiting in the socket, or it failed first.
    tty.write.reset();
    auto master = receive_terminal(tty.read.get());
    if (!master) return std::move(master).error();
    sb.terminal_ = std::move(*master);
  }
  sb.stdin_ = std::move(in.write);
  sb.stdout_ = std::move(out.read);
  sb.stderr_ = std::move(err.read);
  sb.status_ = std::move(status.read);
  sb.factory_ = std::move(factory[0]);
  if (!mapped) return std::move(mapped).error();  // the child exited; sb kills and reaps it
  return sb;
}

Sandbox::Sandbox(Sandbox&& other) noexcept = default;
Sandbox& Sandbox::operator=(Sandbox&& other) noexcept = default;
Sandbox::~Sandbox() = default;

Result<void> Sandbox::signal(int sig) { return child_.signal(sig); }
Result<std::optional<int>> Sandbox::try_reap() { return child_.try_reap(); }
Result<int> Sandbox::wait() { return child_.wait(); }

void StatusDecoder::feed(const char* data, size_t size) {
  partial_.append(data, size);
  size_t off = 0;
  while (partial_.size() - off >= sizeof(StatusRecord)) {
    StatusRecord rec;
    std::memcpy(&rec, partial_.data() + off, sizeof rec);
    records_.push_back(rec);
    off += sizeof rec;
  }
  partial_.erase(0, off);
}

bool StatusDecoder::exited() const {
  for (const auto& r : records_) {
    if (r.kind == static_cast<uint32_t>(RecordKind::exited)) return true;
  }
  return false;
}

bool StatusDecoder::started() const {
  for (const auto& r : records_) {
    if (r.kind == static_cast<uint32_t>(RecordKind::started)) return true;
  }
  return false;
}

}  // namespace sandrun::sandbox
