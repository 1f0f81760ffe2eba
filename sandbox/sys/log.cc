// The default logging sink and its switch.
#include "sandbox/sys/log.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <string>

#include "sandbox/sys/text.h"

namespace sandrun::log {
namespace {

std::mutex g_mutex;
Sink g_sink;
std::atomic<bool> g_show_info{true};

void default_sink(Level level, std::string_view text) {
  std::string line = "sandrun: ";
  switch (level) {
    case Level::debug: line += "debug: "; break;
    case Level::warn: line += "warning: "; break;
    case Level::error: line += "error: "; break;
    case Level::info: break;
  }
  // Messages name paths, images and jobs as written: never raw to a terminal.
  line += terminal_safe(text, /*keep_newlines=*/true);
  line += '\n';
  ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
}

}  // namespace

void set_sink(Sink sink) {
  std::lock_guard lock(g_mutex);
  g_sink = std::move(sink);
}

bool debug_enabled() {
  static const bool enabled = [] {
    const char* v = std::getenv("SANDRUN_DEBUG");
    return v && *v && std::string(v) != "0";
  }();
  return enabled;
}

void set_show_info(bool show) { g_show_info = show; }

void write(Level level, std::string_view text) {
  if (level == Level::debug && !debug_enabled()) return;
  if (level == Level::info && !g_show_info) return;
  std::lock_guard lock(g_mutex);
  if (g_sink) {
    g_sink(level, text);
  } else {
    default_sink(level, text);
  }
}

}  // namespace sandrun::log
