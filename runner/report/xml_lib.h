// libxml2, loaded on first use: only --junit needs it, and linking it would make every sandrun
// load libxml2 and ICU (and with ICU a shared libstdc++) at start, as cache/curl_lib.h avoids
// for libcurl.
#pragma once

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>
#include <libxml/xmlreader.h>

#include "sandbox/sys/result.h"

namespace sandrun::runner {

#define SANDRUN_XML_FUNCTIONS(X)                                                                  \
  X(xmlInitParser) X(xmlNewDoc) X(xmlNewDocNode) X(xmlDocSetRootElement) X(xmlSetProp)            \
  X(xmlNewTextChild) X(xmlFreeDoc) X(xmlBufferCreate) X(xmlBufferFree)                           \
  X(xmlBufferContent) X(xmlNodeDump) X(xmlStrdup) X(xmlReaderForFd) X(xmlFreeTextReader)                 \
  X(xmlTextReaderRead) X(xmlTextReaderNodeType) X(xmlTextReaderDepth) X(xmlTextReaderConstName)           \
  X(xmlTextReaderConstValue) X(xmlTextReaderIsEmptyElement) X(xmlTextReaderAttributeCount)                \
  X(xmlTextReaderMoveToAttributeNo) X(xmlTextReaderReadAttributeValue) X(xmlTextReaderMoveToElement)      \
  X(xmlTextReaderSetStructuredErrorHandler)

// The libxml2 functions sandrun uses, resolved from libxml2.so.2.
struct XmlLib {
#define SANDRUN_XML_MEMBER(name) decltype(&::name) name = nullptr;
  SANDRUN_XML_FUNCTIONS(SANDRUN_XML_MEMBER)
#undef SANDRUN_XML_MEMBER
};

// Loads libxml2 and initialises its parser (once, thread-safe).
Result<void> load_xml_lib();
// The loaded functions; only valid after load_xml_lib() succeeded.
const XmlLib& xml();

}  // namespace sandrun::runner
