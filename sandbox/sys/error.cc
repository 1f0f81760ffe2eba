// Rendering and wrapping of sandrun::Error.
#include "sandbox/sys/error.h"

#include <cstring>

#include "sandbox/sys/hints.h"

namespace sandrun {

Error& Error::wrap(std::string context) & {
  chain_.push_back(std::move(context));
  return *this;
}

Error Error::wrap(std::string context) && {
  chain_.push_back(std::move(context));
  return std::move(*this);
}

Error& Error::hint(std::string text) & {
  hint_ = std::move(text);
  return *this;
}

Error Error::hint(std::string text) && {
  hint_ = std::move(text);
  return std::move(*this);
}

std::string Error::message() const {
  std::string out;
  for (auto it = chain_.rbegin(); it != chain_.rend(); ++it) {
    if (it->empty()) continue;
    if (!out.empty()) out += ": ";
    out += *it;
  }
  if (code_ != 0) {
    if (!out.empty()) out += ": ";
    out += errno_text(code_);
  }
  return out;
}

std::string Error::render() const {
  std::string out = message();
  std::string advice = hint_;
  if (advice.empty() && code_ != 0) advice = hint_for_errno(code_);
  if (!advice.empty()) out += "\n  hint: " + advice;
  return out;
}

std::string errno_text(int code) {
  char buf[256];
  // GNU strerror_r returns a pointer that may or may not be buf.
  const char* text = strerror_r(code, buf, sizeof buf);
  return text;
}

}  // namespace sandrun
