// Loading libcurl on first use (see curl_lib.h for why).
#include "cache/curl_lib.h"

#include <dlfcn.h>

#include <mutex>
#include <string>

namespace sandrun::cache {
namespace {

CurlLib g_lib;
std::once_flag g_once;
std::string g_error;

void load() {
  // RTLD_LOCAL: libcurl's symbols (and its TLS library's) stay out of the global namespace,
  // so they never collide with the libcrypto linked statically into sandrun.
  void* h = ::dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char* why = ::dlerror();
    g_error = why ? why : "dlopen failed";
    return;
  }
#define SANDRUN_CURL_RESOLVE(name)                                     \
  g_lib.name = reinterpret_cast<decltype(&::name)>(::dlsym(h, #name)); \
  if (!g_lib.name) {                                                   \
    g_error = "libcurl.so.4 has no " #name;                            \
    return;                                                            \
  }
  SANDRUN_CURL_FUNCTIONS(SANDRUN_CURL_RESOLVE)
#undef SANDRUN_CURL_RESOLVE
  // Not thread-safe in old libcurls, hence here under call_once. Never cleaned up: other
  // threads may still hold handles when the process exits.
  if (CURLcode rc = g_lib.curl_global_init(CURL_GLOBAL_DEFAULT); rc != CURLE_OK)
    g_error = std::string("curl_global_init: ") + g_lib.curl_easy_strerror(rc);
}

}  // namespace

Result<void> load_curl_lib() {
  std::call_once(g_once, load);
  if (!g_error.empty())
    return Error::msg("cannot load libcurl: {}", g_error).hint("install it with: apt-get install libcurl4");
  return {};
}

const CurlLib& curl() { return g_lib; }

}  // namespace sandrun::cache
