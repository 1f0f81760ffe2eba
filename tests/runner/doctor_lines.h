// The items of `sandrun doctor`'s text report, for the tests that read it.
#pragma once

#include <string>

namespace sandrun::testing {

// The status and the detail of item `name` in the text report ("ok       cgroup.pids  usable: ...").
struct Line {
  std::string status, detail;
};
inline Line line_of(const std::string& out, const std::string& name) {
  size_t pos = 0;
  while (pos < out.size()) {
    size_t nl = out.find('\n', pos);
    std::string line = out.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    if (line.size() > 9 && line.compare(9, name.size() + 1, name + " ") == 0) {
      size_t d = line.find_first_not_of(' ', 9 + name.size());
      return {line.substr(0, line.find(' ')), d == std::string::npos ? "" : line.substr(d)};
    }
    if (nl == std::string::npos) break;
    pos = nl + 1;
  }
  return {};
}

}  // namespace sandrun::testing
