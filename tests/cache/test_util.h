// Helpers shared by the cache tests: directory listings and stat shortcuts.
#pragma once

#include <sys/stat.h>

#include <algorithm>
#include <string>
#include <vector>

#include "tests/support/host_state.h"

namespace sandrun::testing {

// Names in `dir` (sorted, without . and ..); empty when it does not exist.
inline std::vector<std::string> list_dir(const std::string& dir) { return dir_entries(dir); }

inline struct stat lstat_of(const std::string& path) {
  struct stat st = {};
  if (::lstat(path.c_str(), &st) < 0) st.st_mode = 0;
  return st;
}

}  // namespace sandrun::testing
