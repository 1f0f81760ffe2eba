// The container's terminal, made by the child between clone and exec (a container's first
// process, an exec): a pty of the container's own devpts, so that `tty` names /dev/pts/N as
// the container sees it, whose master goes to sandrun over a socket. Async-signal-safe only.
// Built without sanitizers, as child.cc (see sandbox/CMakeLists.txt).
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/vfs.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "sandbox/child_internal.h"
#include "sandbox/sys/fd_passing.h"

namespace sandrun::sandbox {
namespace {

// Hands the master to sandrun (SCM_RIGHTS, one byte).
int send_master(int sock, int master) {
  const char byte = 't';
  return sys::send_fds(sock, &byte, 1, &master, 1) == 1 ? 0 : -1;
}

}  // namespace

int open_terminal(int sock, uint16_t rows, uint16_t cols) {
  // The container's /dev/pts (its own devpts instance) as this root shows it; never through a
  // symlink the image or the container put there.
  int master = sys::openat2(AT_FDCWD, "/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC, 0,
                            RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
  if (master < 0) return -1;
  auto fail = [master] {
    const int saved = errno;
    ::close(master);
    errno = saved;
    return -1;
  };
  // A running container's root could have put another file system there: only a devpts
  // master is a terminal's master.
  struct statfs fs;
  if (::fstatfs(master, &fs) < 0) return fail();
  if (fs.f_type != DEVPTS_SUPER_MAGIC) {
    errno = ENOTTY;
    return fail();
  }
  int unlock = 0;
  if (::ioctl(master, TIOCSPTLCK, &unlock) < 0) return fail();
  // The peer by the master's own devpts mount, not by a path the container controls.
  const int slave = ::ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave < 0) return fail();
  struct winsize ws = {};
  ws.ws_row = rows;
  ws.ws_col = cols;
  if (::ioctl(slave, TIOCSWINSZ, &ws) < 0 || send_master(sock, master) < 0) {
    const int saved = errno;
    ::close(slave);
    errno = saved;
    return fail();
  }
  ::close(master);
  // We lead a session of our own (setsid) with no terminal: this one becomes ours, and the
  // command's, which inherits it as 0, 1 and 2.
  if (::ioctl(slave, TIOCSCTTY, 0) < 0) {
    const int saved = errno;
    ::close(slave);
    errno = saved;
    return -1;
  }
  return slave;
}

}  // namespace sandrun::sandbox
