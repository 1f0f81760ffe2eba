// Helpers shared by the cache tests: directory listings and stat shortcuts.
#pragma once

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <string>
#include <vector>

namespace sandrun::testing {

// Names in `dir` (sorted, without . and ..); empty when it does not exist.
inline std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (struct dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") out.push_back(n);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

inline struct stat lstat_of(const std::string& path) {
  struct stat st = {};
  if (::lstat(path.c_str(), &st) < 0) st.st_mode = 0;
  return st;
}

}  // namespace sandrun::testing
