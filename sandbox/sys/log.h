// The library's logging sink: modules log through it, the runner decides where it goes.
#pragma once

#include <functional>
#include <string_view>

#include <fmt/format.h>

namespace sandrun::log {

enum class Level { debug, info, warn, error };

using Sink = std::function<void(Level, std::string_view)>;

// Installs the sink (the default writes "sandrun: warning: ..." lines to stderr, and debug
// lines only when SANDRUN_DEBUG is set). Never a job's stdout or stderr.
void set_sink(Sink sink);
// Drops (false) or keeps (true, the default) info-level lines, whatever the sink. `exec` drops
// them: its stderr belongs to the command, and only warnings and errors may join it.
void set_show_info(bool show);
void write(Level level, std::string_view text);
bool debug_enabled();

template <typename... Args>
void debug(fmt::format_string<Args...> f, Args&&... args) {
  if (debug_enabled()) write(Level::debug, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void info(fmt::format_string<Args...> f, Args&&... args) {
  write(Level::info, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void warn(fmt::format_string<Args...> f, Args&&... args) {
  write(Level::warn, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace sandrun::log
