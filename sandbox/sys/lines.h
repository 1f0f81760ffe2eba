// for_each_line: the one line splitter for text read from files and programs.
#pragma once

#include <string_view>
#include <type_traits>
#include <utility>

namespace sandrun::sys {

// Calls f(line) for each line of `text`, without its '\n'. A last line without '\n' is a line;
// a text that ends with '\n' has no empty line after it; an empty text has none. '\r' is kept
// (a caller that reads CRLF text strips it). Empty lines are passed on. When f returns bool,
// false stops the walk, and for_each_line returns false; otherwise it returns true.
template <typename F>
bool for_each_line(std::string_view text, F&& f) {
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    const std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if constexpr (std::is_same_v<std::invoke_result_t<F&, std::string_view>, bool>) {
      if (!f(line)) return false;
    } else {
      f(line);
    }
  }
  return true;
}

}  // namespace sandrun::sys
