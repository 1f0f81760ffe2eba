// The table of well-known causes behind system errors.
#include "sandbox/sys/hints.h"

#include <cerrno>

namespace sandrun {

std::string hint_for_errno(int code) {
  switch (code) {
    case ENOSPC:
      // Which file system is full is the path's: sandrun's state is under --root, a run's logs
      // and reports under --out (their own errors say so).
      return "the file system holding that path is full";
    case EMFILE:
      return "too many open files: raise `ulimit -n` or run fewer jobs at once (-j)";
    default:
      return "";
  }
}

}  // namespace sandrun
