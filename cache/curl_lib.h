// libcurl, loaded on first use: only registry pulls need it, and linking it would make every
// `sandrun exec` load libcurl and its TLS, HTTP/2 and IDN libraries at start.
#pragma once

#include <curl/curl.h>

#include "sandbox/sys/result.h"

namespace sandrun::cache {

#define SANDRUN_CURL_FUNCTIONS(X)                                                          \
  X(curl_global_init) X(curl_easy_init) X(curl_easy_cleanup) X(curl_easy_setopt)           \
  X(curl_easy_getinfo) X(curl_easy_strerror) X(curl_slist_append) X(curl_slist_free_all)   \
  X(curl_multi_init) X(curl_multi_cleanup) X(curl_multi_add_handle)                        \
  X(curl_multi_remove_handle) X(curl_multi_perform) X(curl_multi_poll)                     \
  X(curl_multi_info_read) X(curl_multi_strerror)

// The libcurl functions sandrun uses, resolved from libcurl.so.4.
struct CurlLib {
#define SANDRUN_CURL_MEMBER(name) decltype(&::name) name = nullptr;
  SANDRUN_CURL_FUNCTIONS(SANDRUN_CURL_MEMBER)
#undef SANDRUN_CURL_MEMBER
};

// Loads libcurl and runs curl_global_init (once, thread-safe). Every registry entry point
// calls this first and returns its error: a host without libcurl4 still runs containers.
Result<void> load_curl_lib();
// The loaded functions; only valid after load_curl_lib() succeeded.
const CurlLib& curl();

}  // namespace sandrun::cache
