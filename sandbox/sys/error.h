// The one error type of sandrun: an errno-like code plus a chain of context.
#pragma once

#include <cerrno>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

namespace sandrun {

// An Error carries the errno that caused it (0 when there was none) and a chain of context,
// innermost first. It renders outermost first, like
//   job "unit": sandbox setup failed: mount overlay on /run/x/root: Invalid argument
// Build it at the failing call (Error::sys captures errno at once), wrap it on the way up.
class Error {
 public:
  Error() = default;

  // A failed system call: captures errno now, before anything else can change it.
  template <typename... Args>
  static Error sys(fmt::format_string<Args...> format, Args&&... args) {
    const int saved = errno;
    return Error(saved, fmt::format(format, std::forward<Args>(args)...));
  }
  // A failed system call whose errno the caller already holds.
  template <typename... Args>
  static Error sys_code(int code, fmt::format_string<Args...> format, Args&&... args) {
    return Error(code, fmt::format(format, std::forward<Args>(args)...));
  }
  // A failure with no errno: a bad value, a broken file, a refused request.
  template <typename... Args>
  static Error msg(fmt::format_string<Args...> format, Args&&... args) {
    return Error(0, fmt::format(format, std::forward<Args>(args)...));
  }

  // Adds an outer context: "sandbox setup failed" around "mount overlay on X".
  Error& wrap(std::string context) &;
  Error wrap(std::string context) &&;

  // Attaches advice a user can act on; rendered on its own line after the message.
  Error& hint(std::string text) &;
  Error hint(std::string text) &&;

  int code() const { return code_; }
  const std::string& hint_text() const { return hint_; }
  // The full chain, outermost first, ending with strerror(code) when there is a code.
  std::string message() const;
  // message() plus, when known, the hint on a second line.
  std::string render() const;

 private:
  Error(int code, std::string text) : code_(code) { chain_.push_back(std::move(text)); }

  int code_ = 0;
  std::vector<std::string> chain_;  // innermost first
  std::string hint_;
};

// The text of an errno value (thread-safe strerror).
std::string errno_text(int code);

}  // namespace sandrun
