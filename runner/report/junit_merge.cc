// The JUnit files of jobs, merged into the report by streaming (see junit_merge.h).
#include "runner/report/junit_merge.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <vector>

#include "runner/report/report_junit.h"
#include "runner/report/xml_lib.h"
#include "sandbox/sys/fs.h"

namespace sandrun::runner {
namespace {

// No network, no DTD loaded, no entity substituted (no XML_PARSE_NOENT, DTDLOAD, DTDATTR or
// DTDVALID), no XML_PARSE_HUGE: libxml2's own limits hold (10 MB per text node, entity
// amplification checks). The file comes from inside a container.
constexpr int kReaderOptions = XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA;

std::string_view str(const xmlChar* s) { return s ? reinterpret_cast<const char*>(s) : ""; }

double number(const std::string& s) {
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  return end && end != s.c_str() ? v : 0;
}

// One xmlTextReader over one file, with the first error it reported.
class Reader {
 public:
  static Result<std::unique_ptr<Reader>> open(const std::string& path) {
    auto fd = SANDRUN_TRY(fs::open_path(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK));
    struct stat st{};
    if (::fstat(fd.get(), &st) != 0) return Error::sys("{}", path);
    if (!S_ISREG(st.st_mode)) return Error::msg("not a regular file");
    if (st.st_size > kMaxMergedJunit) return Error::msg("larger than {} bytes", kMaxMergedJunit);
    auto r = std::unique_ptr<Reader>(new Reader(std::move(fd)));
    r->r_ = xml().xmlReaderForFd(r->fd_.get(), path.c_str(), nullptr, kReaderOptions);
    if (!r->r_) return Error::msg("cannot read it as XML");
    xml().xmlTextReaderSetStructuredErrorHandler(r->r_, &Reader::on_error, r.get());
    return r;
  }
  ~Reader() {
    if (r_) xml().xmlFreeTextReader(r_);
  }

  // The next node: true, false at the end; an error when the XML is not well-formed.
  Result<bool> next() {
    int rc = xml().xmlTextReaderRead(r_);
    if (rc == 1) return true;
    if (rc == 0 && error_.empty()) return false;
    return Error::msg("not well-formed XML: {}", error_.empty() ? "parse error" : error_);
  }
  int type() const { return xml().xmlTextReaderNodeType(r_); }
  int depth() const { return xml().xmlTextReaderDepth(r_); }
  std::string_view name() const { return str(xml().xmlTextReaderConstName(r_)); }
  std::string_view value() const { return str(xml().xmlTextReaderConstValue(r_)); }
  bool empty() const { return xml().xmlTextReaderIsEmptyElement(r_) == 1; }
  bool element(std::string_view n) const { return type() == XML_READER_TYPE_ELEMENT && name() == n; }

  // The element's attributes (namespace declarations included), with the entity references
  // of their values dropped, not substituted.
  std::vector<std::pair<std::string, std::string>> attributes() {
    std::vector<std::pair<std::string, std::string>> out;
    const int n = xml().xmlTextReaderAttributeCount(r_);
    for (int i = 0; i < n; ++i) {
      if (xml().xmlTextReaderMoveToAttributeNo(r_, i) != 1) break;
      std::pair<std::string, std::string> a{std::string(name()), {}};
      while (xml().xmlTextReaderReadAttributeValue(r_) == 1) {
        if (type() == XML_READER_TYPE_TEXT) a.second += value();
      }
      out.push_back(std::move(a));
    }
    xml().xmlTextReaderMoveToElement(r_);
    return out;
  }

 private:
  explicit Reader(UniqueFd fd) : fd_(std::move(fd)) {}
  static void on_error(void* self, xmlErrorPtr e) {
    auto* r = static_cast<Reader*>(self);
    if (!e || e->level < XML_ERR_ERROR || !r->error_.empty()) return;
    std::string why = e->message ? e->message : "parse error";
    while (!why.empty() && why.back() == '\n') why.pop_back();
    r->error_ = fmt::format("{}:{}: {}", e->line, e->int2, why);
  }

  UniqueFd fd_;
  xmlTextReaderPtr r_ = nullptr;
  std::string error_;
};

using Attrs = std::vector<std::pair<std::string, std::string>>;

// An attribute's value, "" when it is absent.
std::string attr(const Attrs& attrs, std::string_view name) {
  for (const auto& [n, v] : attrs)
    if (n == name) return v;
  return {};
}

// Sets an attribute the producer left out or empty.
void complete(Attrs& attrs, std::string_view name, const std::string& value) {
  for (auto& [n, v] : attrs) {
    if (n != name) continue;
    if (v.empty()) v = value;
    return;
  }
  attrs.emplace_back(std::string(name), value);
}

// A suite as the reader passes it: its attributes, and what its testcases add up to.
struct Suite {
  Attrs attrs;
  JunitCounts cases;
  // The counts the report states: the suite's own attributes where given, else the cases'.
  JunitCounts stated() const {
    auto pick = [&](const char* n, size_t counted) {
      std::string v = attr(attrs, n);
      return v.empty() ? counted : static_cast<size_t>(number(v));
    };
    JunitCounts c{pick("tests", cases.tests), pick("failures", cases.failures), pick("errors", cases.errors),
                  pick("skipped", cases.skipped), 0};
    std::string t = attr(attrs, "time");
    c.time = t.empty() ? cases.time : number(t);
    return c;
  }
};

// Follows one file's suites: the depth they are at (0 under a <testsuite> root, 1 under a
// <testsuites> root), decided by the root element.
class SuiteWalker {
 public:
  explicit SuiteWalker(Reader& r) : r_(r) {}

  // Moves to the next suite's start: true, or false past the last one.
  Result<bool> to_next_suite() {
    while (SANDRUN_TRY(r_.next())) {
      if (r_.type() != XML_READER_TYPE_ELEMENT) continue;
      if (depth_ < 0) {
        if (r_.name() == "testsuite") depth_ = 0;
        else if (r_.name() == "testsuites") depth_ = 1;
        else return Error::msg("not a JUnit report (its root element is <{}>)", r_.name());
      }
      if (r_.depth() == depth_ && r_.name() == "testsuite") return true;
    }
    if (depth_ < 0) return Error::msg("not a JUnit report (it has no root element)");
    return false;
  }
  int depth() const { return depth_; }

  // Reads the suite the reader is at to its end, counting its testcases.
  Result<Suite> read_suite() {
    Suite s{r_.attributes(), {}};
    if (r_.empty()) return s;
    bool in_case = false;
    while (SANDRUN_TRY(r_.next())) {
      const int d = r_.depth() - depth_;
      if (r_.type() == XML_READER_TYPE_END_ELEMENT && d == 0) return s;
      if (r_.type() != XML_READER_TYPE_ELEMENT) continue;
      if (d == 1) {
        in_case = r_.name() == "testcase";
        if (!in_case) continue;
        ++s.cases.tests;
        s.cases.time += number(attr(r_.attributes(), "time"));
      } else if (d == 2 && in_case) {
        if (r_.name() == "failure") ++s.cases.failures;
        if (r_.name() == "error") ++s.cases.errors;
        if (r_.name() == "skipped") ++s.cases.skipped;
      }
    }
    return Error::msg("not well-formed XML: the file ends inside a <testsuite>");
  }

 private:
  Reader& r_;
  int depth_ = -1;
};

void start_tag(std::string& out, std::string_view name, const Attrs& attrs, bool empty) {
  out += '<';
  out += name;
  for (const auto& [n, v] : attrs) {
    out += ' ';
    out += n;
    out += "=\"";
    xml_escape(out, v, /*attribute=*/true);
    out += '"';
  }
  out += empty ? "/>" : ">";
}

// Completes a suite's start tag with what the lookahead read of it found.
void complete_suite(Attrs& attrs, const Suite& ahead, const std::string& fallback_name,
                    const std::string& fallback_time) {
  complete(attrs, "name", fallback_name);
  complete(attrs, "tests", std::to_string(ahead.cases.tests));
  complete(attrs, "failures", std::to_string(ahead.cases.failures));
  complete(attrs, "errors", std::to_string(ahead.cases.errors));
  complete(attrs, "skipped", std::to_string(ahead.cases.skipped));
  complete(attrs, "time", fmt::format("{:.3f}", ahead.cases.time));
  complete(attrs, "timestamp", fallback_time);
}

}  // namespace

void xml_escape(std::string& out, std::string_view text, bool attribute) {
  for (char c : xml_safe(text)) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += attribute ? "&quot;" : "\""; break;
      case '\n': out += attribute ? "&#10;" : "\n"; break;
      case '\r': out += "&#13;"; break;
      case '\t': out += attribute ? "&#9;" : "\t"; break;
      default: out += c;
    }
  }
}

Result<JunitCounts> scan_junit(const std::string& path) {
  SANDRUN_TRY(load_xml_lib());
  auto reader = SANDRUN_TRY(Reader::open(path));
  SuiteWalker walk(*reader);
  JunitCounts total;
  while (SANDRUN_TRY(walk.to_next_suite())) total.add(SANDRUN_TRY(walk.read_suite()).stated());
  return total;
}

// Two readers over the file: `r` copies it node by node; `ahead` reads each suite to its end
// first, for the counts its start tag needs. Memory: two readers' current nodes, and one
// pending piece of output, however large the file.
Result<void> copy_junit(const std::string& path, const std::string& fallback_name, const std::string& fallback_time,
                        const JunitSink& out) {
  SANDRUN_TRY(load_xml_lib());
  auto r = SANDRUN_TRY(Reader::open(path));
  auto ahead_reader = SANDRUN_TRY(Reader::open(path));
  SuiteWalker walk(*r), ahead(*ahead_reader);
  std::string piece;
  auto flush = [&]() -> Result<void> {
    if (piece.size() < (64 << 10)) return {};
    SANDRUN_TRY(out(piece));
    piece.clear();
    return {};
  };
  while (SANDRUN_TRY(walk.to_next_suite())) {
    if (!SANDRUN_TRY(ahead.to_next_suite())) return Error::msg("{} changed while it was merged", path);
    const Suite next = SANDRUN_TRY(ahead.read_suite());
    Attrs attrs = r->attributes();
    const std::string suite_name = attr(attrs, "name").empty() ? fallback_name : attr(attrs, "name");
    complete_suite(attrs, next, fallback_name, fallback_time);
    piece += "\n  ";
    start_tag(piece, "testsuite", attrs, r->empty());
    if (r->empty()) continue;
    const int base = walk.depth();
    while (SANDRUN_TRY(r->next())) {
      const int d = r->depth() - base;
      const int type = r->type();
      if (type == XML_READER_TYPE_END_ELEMENT) {
        piece += "</";
        piece += r->name();
        piece += '>';
        if (d == 0) break;
      } else if (type == XML_READER_TYPE_ELEMENT) {
        Attrs a = r->attributes();
        if (d == 1 && r->name() == "testcase") {
          complete(a, "time", "0");
          complete(a, "classname", suite_name);
        }
        start_tag(piece, r->name(), a, r->empty());
      } else if (type == XML_READER_TYPE_TEXT || type == XML_READER_TYPE_CDATA ||
                 type == XML_READER_TYPE_WHITESPACE || type == XML_READER_TYPE_SIGNIFICANT_WHITESPACE) {
        xml_escape(piece, r->value(), /*attribute=*/false);
      }
      // Entity references, comments, processing instructions and DTDs are dropped.
      SANDRUN_TRY(flush());
    }
  }
  if (!piece.empty()) SANDRUN_TRY(out(piece));
  return {};
}

}  // namespace sandrun::runner
