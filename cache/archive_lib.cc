// Loading libarchive on first use (see archive_lib.h for why).
#include "cache/archive_lib.h"

#include <dlfcn.h>

#include <mutex>

namespace sandrun::cache {
namespace {

ArchiveLib g_lib;
std::once_flag g_once;
std::string g_error;

void load() {
  // RTLD_LOCAL: its symbols (and libxml2's) stay out of the global namespace.
  void* h = ::dlopen("libarchive.so.13", RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char* why = ::dlerror();
    g_error = why ? why : "dlopen failed";
    return;
  }
#define SANDRUN_ARCHIVE_RESOLVE(name)                                                \
  g_lib.name = reinterpret_cast<decltype(&::name)>(::dlsym(h, #name));               \
  if (!g_lib.name) {                                                                 \
    g_error = "libarchive.so.13 has no " #name;                                      \
    return;                                                                          \
  }
  SANDRUN_ARCHIVE_FUNCTIONS(SANDRUN_ARCHIVE_RESOLVE)
#undef SANDRUN_ARCHIVE_RESOLVE
}

}  // namespace

Result<void> load_archive_lib() {
  std::call_once(g_once, load);
  if (!g_error.empty()) {
    return Error::msg("cannot load libarchive: {}", g_error).hint("install it with: apt-get install libarchive13");
  }
  return {};
}

const ArchiveLib& arc() { return g_lib; }

const char* archive_text(struct archive* a) {
  const char* s = g_lib.archive_error_string ? g_lib.archive_error_string(a) : nullptr;
  return s ? s : "unknown error";
}

}  // namespace sandrun::cache
