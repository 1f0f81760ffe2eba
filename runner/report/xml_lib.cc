// Loading libxml2 on first use (see xml_lib.h for why).
#include "runner/report/xml_lib.h"

#include <dlfcn.h>

#include <mutex>
#include <string>

namespace sandrun::runner {
namespace {

XmlLib g_lib;
std::once_flag g_once;
std::string g_error;

void load() {
  // RTLD_LOCAL: libxml2's symbols (and ICU's) stay out of the global namespace.
  void* h = ::dlopen("libxml2.so.2", RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char* why = ::dlerror();
    g_error = why ? why : "dlopen failed";
    return;
  }
#define SANDRUN_XML_RESOLVE(name)                                      \
  g_lib.name = reinterpret_cast<decltype(&::name)>(::dlsym(h, #name)); \
  if (!g_lib.name) {                                                   \
    g_error = "libxml2.so.2 has no " #name;                            \
    return;                                                            \
  }
  SANDRUN_XML_FUNCTIONS(SANDRUN_XML_RESOLVE)
#undef SANDRUN_XML_RESOLVE
  g_lib.xmlInitParser();
}

}  // namespace

Result<void> load_xml_lib() {
  std::call_once(g_once, load);
  if (!g_error.empty())
    return Error::msg("cannot load libxml2: {}", g_error).hint("install it with: apt-get install libxml2");
  return {};
}

const XmlLib& xml() { return g_lib; }

}  // namespace sandrun::runner
