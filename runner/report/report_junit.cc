// The JUnit XML report, built and merged with libxml2.
#include "runner/report/report_junit.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>

#include "runner/engine/artifacts.h"
#include "runner/report/report_json.h"
#include "runner/engine/resolve.h"
#include "runner/report/summary.h"
#include "runner/report/xml_lib.h"
#include "sandbox/sys/fs.h"
#include "sandbox/sys/log.h"

namespace sandrun::runner {
namespace {

// A merged file larger than this is left out: a report, not a data dump.
constexpr off_t kMaxMergedFile = 64 << 20;

struct DocFree {
  void operator()(xmlDoc* d) const { xml().xmlFreeDoc(d); }
};
using Doc = std::unique_ptr<xmlDoc, DocFree>;

const xmlChar* x(const char* s) { return reinterpret_cast<const xmlChar*>(s); }
const xmlChar* x(const std::string& s) { return x(s.c_str()); }

void set(xmlNode* n, const char* name, const std::string& value) { xml().xmlSetProp(n, x(name), x(xml_safe(value))); }

xmlNode* child(xmlNode* parent, const char* name, const std::string& text = {}) {
  return xml().xmlNewTextChild(parent, nullptr, x(name), text.empty() ? nullptr : x(xml_safe(text)));
}

std::string seconds(std::chrono::milliseconds d) { return fmt::format("{:.3f}", static_cast<double>(d.count()) / 1000.0); }

// ISO 8601 without a zone (UTC), as JUnit consumers expect: 2026-12-01T22:38:38.
std::string timestamp(std::chrono::system_clock::time_point t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec);
}

std::string hostname() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  return buf;
}

struct Counts {
  size_t tests = 0, failures = 0, errors = 0, skipped = 0;
  double time = 0;
};

void set_counts(xmlNode* n, const Counts& c) {
  set(n, "tests", std::to_string(c.tests));
  set(n, "failures", std::to_string(c.failures));
  set(n, "errors", std::to_string(c.errors));
  set(n, "skipped", std::to_string(c.skipped));
  set(n, "time", fmt::format("{:.3f}", c.time));
}

bool is(const xmlNode* n, const char* name) {
  return n->type == XML_ELEMENT_NODE && std::strcmp(reinterpret_cast<const char*>(n->name), name) == 0;
}

// An attribute's value (without the allocation of xmlGetProp, whose xmlFree is a variable
// that dlsym does not hand out as a function).
std::string prop(xmlNode* n, const char* name) {
  xmlAttr* a = xml().xmlHasProp(n, x(name));
  std::string v;
  for (xmlNode* t = a ? a->children : nullptr; t; t = t->next) {
    if (t->content) v += reinterpret_cast<const char*>(t->content);
  }
  return v;
}

double number(const std::string& s) {
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  return end && end != s.c_str() ? v : 0;
}

// The testcase for one job: the outcome as JUnit consumers count it.
void add_testcase(xmlNode* suite, const JobResult& r, Counts& c) {
  using S = JobResult::Status;
  xmlNode* tc = child(suite, "testcase");
  set(tc, "name", r.name);
  set(tc, "classname", "sandrun");
  set(tc, "time", seconds(r.duration));
  ++c.tests;
  const std::string status = summary_status(r);
  if (r.ok()) {
    // passed
  } else if (r.status == S::skipped || r.status == S::not_started || r.status == S::cancelled || r.counts_as_passed()) {
    // Did not run, or failed where the job file allows it: neither fails the report.
    set(child(tc, "skipped"), "message", status);
    ++c.skipped;
  } else if (r.status == S::setup_failed) {
    xmlNode* e = child(tc, "error", r.message);
    set(e, "message", r.message.empty() ? status : status + ": " + r.message);
    set(e, "type", std::string(status_name(r.status)));
    ++c.errors;
  } else {
    xmlNode* f = child(tc, "failure", r.message);
    set(f, "message", status);
    set(f, "type", std::string(status_name(r.status)));
    ++c.failures;
  }
  if (!r.output_tail.empty()) {
    std::string out;
    for (const auto& l : r.output_tail) out += l + "\n";
    child(tc, "system-out", out);
  }
}

// Counts a merged suite's testcases, for the attributes its producer left out.
Counts count_cases(xmlNode* suite) {
  Counts c;
  for (xmlNode* tc = suite->children; tc; tc = tc->next) {
    if (!is(tc, "testcase")) continue;
    ++c.tests;
    c.time += number(prop(tc, "time"));
    for (xmlNode* k = tc->children; k; k = k->next) {
      if (is(k, "failure")) ++c.failures;
      if (is(k, "error")) ++c.errors;
      if (is(k, "skipped")) ++c.skipped;
    }
  }
  return c;
}

// Copies a producer's <testsuite> into the report, completing the attributes the schema
// requires where the producer left them out (a testcase's time and classname too); returns
// its counts.
Counts merge_suite(xmlDoc* doc, xmlNode* root, xmlNode* suite, const std::string& fallback_name,
                   const std::string& fallback_time) {
  xmlNode* copy = xml().xmlDocCopyNode(suite, doc, 1);
  xml().xmlAddChild(root, copy);
  for (xmlNode* tc = copy->children; tc; tc = tc->next) {
    if (!is(tc, "testcase")) continue;
    if (prop(tc, "time").empty()) set(tc, "time", "0");
    if (prop(tc, "classname").empty()) set(tc, "classname", prop(copy, "name").empty() ? fallback_name : prop(copy, "name"));
  }
  const Counts cases = count_cases(copy);
  Counts c;
  auto attr = [&](const char* name, size_t counted) {
    std::string v = prop(copy, name);
    if (v.empty()) set(copy, name, std::to_string(counted));
    return v.empty() ? counted : static_cast<size_t>(number(v));
  };
  c.tests = attr("tests", cases.tests);
  c.failures = attr("failures", cases.failures);
  c.errors = attr("errors", cases.errors);
  c.skipped = attr("skipped", cases.skipped);
  std::string t = prop(copy, "time");
  if (t.empty()) set(copy, "time", fmt::format("{:.3f}", cases.time));
  c.time = t.empty() ? cases.time : number(t);
  if (prop(copy, "name").empty()) set(copy, "name", fallback_name);
  if (prop(copy, "timestamp").empty()) set(copy, "timestamp", fallback_time);
  return c;
}

// Reads one JUnit file a job produced (never following a symbolic link out of its artifacts).
Result<Doc> read_report(const std::string& path) {
  struct stat st{};
  if (::lstat(path.c_str(), &st) != 0) return Error::sys("{}", path);
  if (!S_ISREG(st.st_mode)) return Error::msg("not a regular file");
  if (st.st_size > kMaxMergedFile) return Error::msg("larger than {} bytes", kMaxMergedFile);
  auto text = SANDRUN_TRY(fs::read_file(path));
  // No network, no entities, no DTD: the file comes from inside a container.
  Doc doc(xml().xmlReadMemory(text.data(), static_cast<int>(text.size()), path.c_str(), nullptr,
                        XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING));
  if (!doc) {
    const xmlError* e = xml().xmlGetLastError();
    std::string why = e && e->message ? e->message : "parse error";
    while (!why.empty() && why.back() == '\n') why.pop_back();
    return Error::msg("not well-formed XML: {}", why);
  }
  return doc;
}

// Merges the job's JUnit artifacts; a file that cannot be merged is a warning.
void merge_job(xmlDoc* doc, xmlNode* root, const JunitInput& in, const JobResult& r, Counts& total,
               std::vector<std::string>& warnings, const std::string& when) {
  if (r.index >= in.jobs.size()) return;
  const JunitJob& job = in.jobs[r.index];
  if (job.junit.empty()) return;
  for (const auto& artifact : r.artifacts) {
    bool wanted = false;
    for (const auto& g : job.junit) wanted = wanted || glob_match(g, artifact);
    if (!wanted) continue;
    auto warn = [&](const std::string& why) { warnings.push_back(fmt::format("job {:?}: junit {}: {}", r.name, artifact, why)); };
    auto parsed = read_report(in.artifacts_dir + "/" + job.file_name + "/" + artifact);
    if (!parsed) {
      warn(parsed.error().message());
      continue;
    }
    xmlNode* top = xml().xmlDocGetRootElement(parsed->get());
    const std::string fallback = r.name + ": " + artifact;
    auto add = [&](xmlNode* suite) {
      Counts c = merge_suite(doc, root, suite, fallback, when);
      total.tests += c.tests, total.failures += c.failures, total.errors += c.errors, total.skipped += c.skipped;
      total.time += c.time;
    };
    if (top && is(top, "testsuite")) {
      add(top);
    } else if (top && is(top, "testsuites")) {
      for (xmlNode* n = top->children; n; n = n->next) {
        if (is(n, "testsuite")) add(n);
      }
    } else {
      warn(fmt::format("not a JUnit report (its root element is <{}>)", top ? reinterpret_cast<const char*>(top->name) : ""));
    }
  }
}

}  // namespace

std::string xml_safe(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  for (size_t i = 0; i < n;) {
    uint32_t cp = 0;
    size_t len = 0;
    if (s[i] < 0x80) {
      cp = s[i], len = 1;
    } else if ((s[i] & 0xE0) == 0xC0) {
      cp = s[i] & 0x1F, len = 2;
    } else if ((s[i] & 0xF0) == 0xE0) {
      cp = s[i] & 0x0F, len = 3;
    } else if ((s[i] & 0xF8) == 0xF0) {
      cp = s[i] & 0x07, len = 4;
    }
    bool valid = len > 0 && i + len <= n;
    for (size_t k = 1; valid && k < len; ++k) {
      valid = (s[i + k] & 0xC0) == 0x80;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8 either.
    static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    valid = valid && cp >= kMin[len] && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
    if (!valid) {
      out += "\xEF\xBF\xBD";  // U+FFFD
      ++i;
      continue;
    }
    const bool allowed = cp == 0x9 || cp == 0xA || cp == 0xD || (cp >= 0x20 && cp != 0xFFFE && cp != 0xFFFF);
    if (allowed) out.append(text.substr(i, len));
    i += len;
  }
  return out;
}

JunitInput junit_input(const std::string& job_file, const std::string& artifacts_dir, const std::vector<JobPlan>& plans) {
  JunitInput in;
  const size_t slash = job_file.rfind('/');
  in.suite_name = "sandrun: " + (slash == std::string::npos ? job_file : job_file.substr(slash + 1));
  in.artifacts_dir = artifacts_dir;
  for (const auto& p : plans) in.jobs.push_back({p.file_name.empty() ? file_name_for(p.name) : p.file_name, p.junit});
  in.started = std::chrono::system_clock::now();
  return in;
}

Result<JunitReport> junit_report(const JunitInput& in, const std::vector<JobResult>& results) {
  SANDRUN_TRY(load_xml_lib());
  JunitReport report;
  Doc doc(xml().xmlNewDoc(x("1.0")));
  xmlNode* root = xml().xmlNewDocNode(doc.get(), nullptr, x("testsuites"), nullptr);
  xml().xmlDocSetRootElement(doc.get(), root);
  set(root, "name", in.suite_name);
  const std::string when = timestamp(in.started);

  xmlNode* suite = child(root, "testsuite");
  set(suite, "name", in.suite_name);
  Counts ours;
  for (const auto& r : results) add_testcase(suite, r, ours);
  ours.time = static_cast<double>(in.wall.count()) / 1000.0;
  set_counts(suite, ours);
  set(suite, "timestamp", when);
  set(suite, "hostname", hostname());
  Counts total = ours;
  for (const auto& r : results) merge_job(doc.get(), root, in, r, total, report.warnings, when);
  set_counts(root, total);

  doc->encoding = xml().xmlStrdup(x("UTF-8"));  // characters as they are, not as references
  xmlBuffer* buf = xml().xmlBufferCreate();
  xml().xmlNodeDump(buf, doc.get(), root, 0, 1);
  report.xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  report.xml += reinterpret_cast<const char*>(xml().xmlBufferContent(buf));
  report.xml += "\n";
  xml().xmlBufferFree(buf);
  return report;
}

Result<void> write_junit(const std::string& path, const JunitInput& input, const std::vector<JobResult>& results) {
  auto report = SANDRUN_TRY(junit_report(input, results).wrap("--junit"));
  for (const auto& w : report.warnings) log::warn("{}", w);
  return fs::write_file_atomic(path, report.xml).wrap(fmt::format("--junit: write {}", path));
}

}  // namespace sandrun::runner
