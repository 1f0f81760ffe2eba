// The pty master of a container's terminal: received from the child, resized.
#include "sandbox/terminal.h"

#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>

#include <cerrno>
#include <cstring>

#include "sandbox/sys/fd_passing.h"

namespace sandrun::sandbox {

Result<UniqueFd> receive_terminal(int sock) {
  char byte = 0;
  int fd = -1;
  size_t nfds = 0;
  bool truncated = false;
  if (sys::recv_fds(sock, &byte, 1, &fd, 1, &nfds, &truncated) < 0) return Error::sys("receive the container's terminal");
  return nfds ? UniqueFd(fd) : UniqueFd();
}

Result<void> resize_terminal(int master, TtySize size) {
  struct winsize ws = {};
  ws.ws_row = size.rows;
  ws.ws_col = size.cols;
  if (::ioctl(master, TIOCSWINSZ, &ws) < 0) return Error::sys("resize the terminal to {}x{}", size.cols, size.rows);
  return {};
}

}  // namespace sandrun::sandbox
