// The pty master of a container's terminal: received from the child, resized.
#include "sandbox/terminal.h"

#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>

#include <cerrno>
#include <cstring>

namespace sandrun::sandbox {

Result<UniqueFd> receive_terminal(int sock) {
  char byte = 0;
  struct iovec iov = {&byte, 1};
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  struct msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do {
    n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return Error::sys("receive the container's terminal");
  UniqueFd master;
  for (struct cmsghdr* h = CMSG_FIRSTHDR(&msg); h; h = CMSG_NXTHDR(&msg, h)) {
    if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS || h->cmsg_len != CMSG_LEN(sizeof(int))) continue;
    int fd;
    std::memcpy(&fd, CMSG_DATA(h), sizeof fd);
    master.reset(fd);
  }
  return master;
}

Result<void> resize_terminal(int master, TtySize size) {
  struct winsize ws = {};
  ws.ws_row = size.rows;
  ws.ws_col = size.cols;
  if (::ioctl(master, TIOCSWINSZ, &ws) < 0) return Error::sys("resize the terminal to {}x{}", size.cols, size.rows);
  return {};
}

}  // namespace sandrun::sandbox
