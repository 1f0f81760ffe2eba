// Loading libarchive on first use (see archive_lib.h for why).
#include "cache/archive_lib.h"

#include "sandbox/sys/dl.h"

namespace sandrun::cache {
namespace {

ArchiveLib g_lib;
// RTLD_LOCAL: its symbols (and libxml2's) stay out of the global namespace.
sys::SharedLib g_so("libarchive.so.13", "libarchive", "libarchive13");

}  // namespace

Result<void> load_archive_lib() {
  return g_so.load([](sys::SharedLib& so) {
#define SANDRUN_ARCHIVE_RESOLVE(name) so.resolve(g_lib.name, #name);
    SANDRUN_ARCHIVE_FUNCTIONS(SANDRUN_ARCHIVE_RESOLVE)
#undef SANDRUN_ARCHIVE_RESOLVE
  });
}

const ArchiveLib& arc() { return g_lib; }

const char* archive_text(struct archive* a) {
  const char* s = g_lib.archive_error_string ? g_lib.archive_error_string(a) : nullptr;
  return s ? s : "unknown error";
}

}  // namespace sandrun::cache
