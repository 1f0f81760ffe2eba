// Loading libxml2 on first use (see xml_lib.h for why).
#include "runner/report/xml_lib.h"

#include "sandbox/sys/dl.h"

namespace sandrun::runner {
namespace {

XmlLib g_lib;
// RTLD_LOCAL: libxml2's symbols (and ICU's) stay out of the global namespace.
sys::SharedLib g_so("libxml2.so.2", "libxml2", "libxml2");

}  // namespace

Result<void> load_xml_lib() {
  return g_so.load([](sys::SharedLib& so) {
#define SANDRUN_XML_RESOLVE(name) so.resolve(g_lib.name, #name);
    SANDRUN_XML_FUNCTIONS(SANDRUN_XML_RESOLVE)
#undef SANDRUN_XML_RESOLVE
    if (so.ok()) g_lib.xmlInitParser();
  });
}

const XmlLib& xml() { return g_lib; }

}  // namespace sandrun::runner
