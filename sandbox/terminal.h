// A container's terminal, sandrun's side: the pty master the child sends from the container's
// own /dev/pts (child_tty.cc), its size.
#pragma once

#include <cstdint>

#include "sandbox/sys/result.h"
#include "sandbox/sys/unique_fd.h"

namespace sandrun::sandbox {

struct TtySize {
  uint16_t rows = 24;
  uint16_t cols = 80;
  bool operator==(const TtySize&) const = default;
};

// Waits for the master on `sock` (sandrun's end; the child's end must be closed here already):
// the child sends it before it execs. End-of-file: the child failed first (its status record
// says why) and an invalid fd is returned.
Result<UniqueFd> receive_terminal(int sock);

// TIOCSWINSZ on the master: the command gets SIGWINCH.
Result<void> resize_terminal(int master, TtySize size);

}  // namespace sandrun::sandbox
