// The JUnit XML report: our suite built with libxml2, the jobs' JUnit files streamed in.
#include "runner/report/report_junit.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>

#include "runner/engine/artifacts.h"
#include "runner/report/junit_merge.h"
#include "runner/report/report_json.h"
#include "runner/engine/resolve.h"
#include "runner/report/summary.h"
#include "runner/report/xml_lib.h"
#include "sandbox/sys/fs.h"
#include "sandbox/sys/log.h"

namespace sandrun::runner {
namespace {

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

using Counts = JunitCounts;

void set_counts(xmlNode* n, const Counts& c) {
  set(n, "tests", std::to_string(c.tests));
  set(n, "failures", std::to_string(c.failures));
  set(n, "errors", std::to_string(c.errors));
  set(n, "skipped", std::to_string(c.skipped));
  set(n, "time", fmt::format("{:.3f}", c.time));
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
  if (!r.artifacts_truncated.empty()) child(tc, "system-err", "artifacts truncated: " + r.artifacts_truncated);
}

// Where the report goes: a string (junit_report) or a file written as it is made
// (write_junit), which can be cut back to a mark when a merged file fails half-way.
class Out {
 public:
  explicit Out(int fd = -1) : fd_(fd) {}
  Result<void> write(std::string_view text) {
    buf_ += text;
    return fd_ >= 0 && buf_.size() >= (1 << 20) ? flush() : Result<void>{};
  }
  uint64_t mark() const { return written_ + buf_.size(); }
  Result<void> rewind(uint64_t mark) {
    if (mark >= written_) {
      buf_.resize(mark - written_);
      return {};
    }
    buf_.clear();
    if (::ftruncate(fd_, static_cast<off_t>(mark)) < 0 || ::lseek(fd_, static_cast<off_t>(mark), SEEK_SET) < 0)
      return Error::sys("truncate {}", fs::fd_path(fd_));
    written_ = mark;
    return {};
  }
  Result<void> flush() {
    if (fd_ < 0 || buf_.empty()) return {};
    SANDRUN_TRY(fs::write_all(fd_, buf_));
    written_ += buf_.size();
    buf_.clear();
    return {};
  }
  std::string& text() { return buf_; }

 private:
  int fd_;
  std::string buf_;
  uint64_t written_ = 0;
};

// A job's JUnit file that scan_junit accepted, to be copied into the report.
struct Merged {
  std::string path, fallback_name;
};

// Pass 1: every job's JUnit files read through; those that are JUnit are kept, with their
// counts added to `total`; the others are warnings.
std::vector<Merged> scan_jobs(const JunitInput& in, const std::vector<JobResult>& results, Counts& total,
                              std::vector<std::string>& warnings) {
  std::vector<Merged> merged;
  for (const auto& r : results) {
    if (r.index >= in.jobs.size() || in.jobs[r.index].junit.empty()) continue;
    const JunitJob& job = in.jobs[r.index];
    for (const auto& artifact : r.artifacts) {
      bool wanted = false;
      for (const auto& g : job.junit) wanted = wanted || glob_match(g, artifact);
      if (!wanted) continue;
      const std::string path = in.artifacts_dir + "/" + job.file_name + "/" + artifact;
      auto counts = scan_junit(path);
      if (!counts) {
        warnings.push_back(fmt::format("job {:?}: junit {}: {}", r.name, shorten_path(artifact), counts.error().message()));
        continue;
      }
      total.add(*counts);
      merged.push_back({path, r.name + ": " + artifact});
    }
  }
  return merged;
}

// Our suite, one testcase per job, made with libxml2's tree (its size is that of the results).
Result<std::string> our_suite(const JunitInput& in, const std::vector<JobResult>& results, const std::string& when,
                              Counts& ours) {
  Doc doc(xml().xmlNewDoc(x("1.0")));
  xmlNode* suite = xml().xmlNewDocNode(doc.get(), nullptr, x("testsuite"), nullptr);
  xml().xmlDocSetRootElement(doc.get(), suite);
  set(suite, "name", in.suite_name);
  for (const auto& r : results) add_testcase(suite, r, ours);
  ours.time = static_cast<double>(in.wall.count()) / 1000.0;
  set_counts(suite, ours);
  set(suite, "timestamp", when);
  set(suite, "hostname", hostname());
  doc->encoding = xml().xmlStrdup(x("UTF-8"));  // characters as they are, not as references
  xmlBuffer* buf = xml().xmlBufferCreate();
  xml().xmlNodeDump(buf, doc.get(), suite, 1, 1);
  std::string text = reinterpret_cast<const char*>(xml().xmlBufferContent(buf));
  xml().xmlBufferFree(buf);
  return text;
}

// The whole report into `out`: our suite, then each job's files, streamed.
Result<void> build_report(const JunitInput& in, const std::vector<JobResult>& results, Out& out,
                          std::vector<std::string>& warnings) {
  SANDRUN_TRY(load_xml_lib());
  const std::string when = timestamp(in.started);
  Counts ours;
  const std::string suite = SANDRUN_TRY(our_suite(in, results, when, ours));
  Counts total = ours;
  const std::vector<Merged> merged = scan_jobs(in, results, total, warnings);
  std::string head = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"";
  xml_escape(head, in.suite_name, /*attribute=*/true);
  head += fmt::format("\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{:.3f}\">\n  ", total.tests,
                      total.failures, total.errors, total.skipped, total.time);
  SANDRUN_TRY(out.write(head));
  SANDRUN_TRY(out.write(suite));
  for (const auto& m : merged) {
    const uint64_t mark = out.mark();
    auto copied = copy_junit(m.path, m.fallback_name, when, [&](std::string_view piece) { return out.write(piece); });
    if (!copied) {
      // Changed since it was read (the counts above then overstate): nothing half-written.
      warnings.push_back(fmt::format("junit {}: {}", shorten_path(m.path), copied.error().message()));
      SANDRUN_TRY(out.rewind(mark));
    }
  }
  return out.write("\n</testsuites>\n");
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
  JunitReport report;
  Out out;
  SANDRUN_TRY(build_report(in, results, out, report.warnings));
  report.xml = std::move(out.text());
  return report;
}

// Written beside `path` as it is made, then renamed over it: its size is not held in memory.
Result<void> write_junit(const std::string& path, const JunitInput& input, const std::vector<JobResult>& results) {
  const std::string tmp = fmt::format("{}.tmp.{}", path, ::getpid());
  auto fd = SANDRUN_TRY(fs::open_path(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0644).wrap("--junit"));
  std::vector<std::string> warnings;
  Out out(fd.get());
  auto written = build_report(input, results, out, warnings);
  if (written) written = out.flush();
  if (written && ::fsync(fd.get()) < 0) written = Error::sys("fsync {}", tmp);
  if (written && ::rename(tmp.c_str(), path.c_str()) < 0) written = Error::sys("rename {} to {}", tmp, path);
  if (!written) {
    ::unlink(tmp.c_str());
    return std::move(written.error().wrap(fmt::format("--junit: write {}", path)));
  }
  for (const auto& w : warnings) log::warn("{}", w);
  return {};
}

}  // namespace sandrun::runner
