// Loading libcurl on first use (see curl_lib.h for why).
#include "cache/curl_lib.h"

#include <string>

#include "sandbox/sys/dl.h"

namespace sandrun::cache {
namespace {

CurlLib g_lib;
// RTLD_LOCAL: libcurl's symbols (and its TLS library's) stay out of the global namespace, so
// they never collide with the libcrypto linked statically into sandrun.
sys::SharedLib g_so("libcurl.so.4", "libcurl", "libcurl4");

}  // namespace

Result<void> load_curl_lib() {
  return g_so.load([](sys::SharedLib& so) {
#define SANDRUN_CURL_RESOLVE(name) so.resolve(g_lib.name, #name);
    SANDRUN_CURL_FUNCTIONS(SANDRUN_CURL_RESOLVE)
#undef SANDRUN_CURL_RESOLVE
    if (!so.ok()) return;
    // Not thread-safe in old libcurls, hence here, run once. Never cleaned up: other threads
    // may still hold handles when the process exits.
    if (CURLcode rc = g_lib.curl_global_init(CURL_GLOBAL_DEFAULT); rc != CURLE_OK)
      so.fail(std::string("curl_global_init: ") + g_lib.curl_easy_strerror(rc));
  });
}

const CurlLib& curl() { return g_lib; }

}  // namespace sandrun::cache
