// The table of well-known causes behind system errors.
#include "sandbox/sys/hints.h"

#include <cerrno>

namespace sandrun {

std::string hint_for_errno(int code) {
  switch (code) {
    case ENOSPC:
      return "the disk holding sandrun's state directory is full (see --root)";
    case EMFILE:
      return "too many open files: raise `ulimit -n` or run fewer jobs at once (-j)";
    default:
      return "";
  }
}

}  // namespace sandrun
