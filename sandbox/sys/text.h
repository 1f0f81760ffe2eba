// Text shown on a terminal: control characters made visible, so that what a job prints or
// names never drives the terminal (titles, clearing, cursor moves, hyperlinks).
#pragma once

#include <string>
#include <string_view>

namespace sandrun {

// `text` with every control character written as an escape: C0 (but tab) and DEL as "\x1b",
// C1 (U+0080-U+009F) as "\u009b", and a byte that is not part of valid UTF-8 as "\xff".
// With `keep_newlines`, '\n' stays (a message of several lines). Printable text, UTF-8
// included, is returned unchanged (and without a copy being built).
std::string terminal_safe(std::string_view text, bool keep_newlines = false);

// The first control character of `text` (C0 including tab and newline, DEL, C1 in UTF-8), as
// its position; npos when there is none. For names, which must hold none.
size_t find_control(std::string_view text);

}  // namespace sandrun
