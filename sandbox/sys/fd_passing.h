// Passing fds over a Unix socket (SCM_RIGHTS), both ways. System calls and the stack only, no
// allocation and no locks: the child between clone and exec uses them too.
#pragma once

#include <sys/types.h>

#include <cstddef>

namespace sandrun::sys {

// The most fds one message carries (the kernel's SCM_MAX_FD).
inline constexpr size_t kMaxPassedFds = 253;

// Sends `len` bytes of `data` with `nfds` fds (none when 0; at most kMaxPassedFds) in one
// message, never raising SIGPIPE, retrying EINTR. Returns what sendmsg(2) returned (errno set
// when it is < 0; -1 with EINVAL for too many fds).
ssize_t send_fds(int sock, const void* data, size_t len, const int* fds, size_t nfds);

// Receives one message: at most `len` bytes into `data`, and its fds (close-on-exec) into `fds`,
// their count in *nfds, retrying EINTR; `flags` adds to recvmsg(2)'s (MSG_DONTWAIT). A message
// whose data or fds did not fit (more fds than `max_fds`, or than kMaxPassedFds) sets *truncated
// and closes every fd it brought (*nfds is then 0). Returns what recvmsg(2) returned.
ssize_t recv_fds(int sock, void* data, size_t len, int* fds, size_t max_fds, size_t* nfds, bool* truncated,
                 int flags = 0);

}  // namespace sandrun::sys
