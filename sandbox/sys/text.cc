// Making text safe for a terminal.
#include "sandbox/sys/text.h"

#include <fmt/format.h>

namespace sandrun {
namespace {

// The length of the valid UTF-8 sequence at text[i] (1 for ASCII), 0 when it is not one.
size_t utf8_length(std::string_view text, size_t i) {
  const auto b = static_cast<unsigned char>(text[i]);
  if (b < 0x80) return 1;
  size_t n = 0;
  unsigned cp = 0;
  if ((b & 0xE0) == 0xC0) {
    n = 2, cp = b & 0x1F;
  } else if ((b & 0xF0) == 0xE0) {
    n = 3, cp = b & 0x0F;
  } else if ((b & 0xF8) == 0xF0) {
    n = 4, cp = b & 0x07;
  } else {
    return 0;
  }
  if (i + n > text.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    const auto c = static_cast<unsigned char>(text[i + k]);
    if ((c & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (c & 0x3F);
  }
  // Overlong forms, surrogates and code points past U+10FFFF are not UTF-8.
  static constexpr unsigned kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

bool is_c0(unsigned char b, bool keep_newlines) {
  if (b == '\t') return false;
  if (b == '\n') return !keep_newlines;
  return b < 0x20 || b == 0x7F;
}

// U+0080-U+009F, encoded C2 80 - C2 9F.
bool is_c1(std::string_view text, size_t i) {
  return static_cast<unsigned char>(text[i]) == 0xC2 && i + 1 < text.size() &&
         static_cast<unsigned char>(text[i + 1]) >= 0x80 && static_cast<unsigned char>(text[i + 1]) <= 0x9F;
}

// Printable ASCII only (the common case): nothing to escape.
bool printable_ascii(std::string_view text) {
  for (const char ch : text) {
    const auto b = static_cast<unsigned char>(ch);
    if (b < 0x20 || b >= 0x7F) return false;  // a control, or beyond ASCII: the careful pass decides
  }
  return true;
}

}  // namespace

std::string terminal_safe(std::string_view text, bool keep_newlines) {
  if (printable_ascii(text)) return std::string(text);
  std::string out;
  out.reserve(text.size() + 16);
  for (size_t i = 0; i < text.size();) {
    const auto b = static_cast<unsigned char>(text[i]);
    if (b < 0x80) {
      if (is_c0(b, keep_newlines)) {
        out += fmt::format("\\x{:02x}", b);
      } else {
        out += static_cast<char>(b);
      }
      ++i;
      continue;
    }
    if (is_c1(text, i)) {
      out += fmt::format("\\u{:04x}", static_cast<unsigned char>(text[i + 1]));
      i += 2;
      continue;
    }
    const size_t n = utf8_length(text, i);
    if (n == 0) {
      out += fmt::format("\\x{:02x}", b);
      ++i;
      continue;
    }
    out.append(text.substr(i, n));
    i += n;
  }
  return out;
}

size_t find_control(std::string_view text) {
  for (size_t i = 0; i < text.size(); ++i) {
    const auto b = static_cast<unsigned char>(text[i]);
    if (b < 0x20 || b == 0x7F || is_c1(text, i)) return i;
  }
  return std::string_view::npos;
}

}  // namespace sandrun
