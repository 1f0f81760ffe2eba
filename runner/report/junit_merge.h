// Merging the JUnit files jobs produced into the --junit report, streamed: libxml2's
// xmlTextReader holds one node at a time, so memory stays bounded whatever a file holds.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "sandbox/sys/result.h"

namespace sandrun::runner {

// A suite's (or a report's) counts, as JUnit consumers read them.
struct JunitCounts {
  size_t tests = 0, failures = 0, errors = 0, skipped = 0;
  double time = 0;
  void add(const JunitCounts& o) {
    tests += o.tests, failures += o.failures, errors += o.errors, skipped += o.skipped;
    time += o.time;
  }
};

// Where merged text goes, piece by piece.
using JunitSink = std::function<Result<void>(std::string_view)>;

// A merged file larger than this is left out: a report, not a data dump.
inline constexpr off_t kMaxMergedJunit = 64 << 20;

// Reads a job's JUnit file through (a regular file, never through a symlink, at most
// kMaxMergedJunit bytes) and returns the counts of its suites: a suite's own attribute where
// it has one, else what its testcases add up to. Fails when it is not well-formed ("not
// well-formed XML: ...") or not JUnit ("not a JUnit report (its root element is <html>)").
// No DTD is loaded, no entity substituted, nothing fetched from the network.
Result<JunitCounts> scan_junit(const std::string& path);

// Writes the file's <testsuite> elements (the root one, or the children of a <testsuites>
// root) to `out`, completing what the schema requires where the producer left it out: a
// suite's name (`fallback_name`), timestamp (`fallback_time`), counts and time; a testcase's
// time and classname. DTDs, entity references, comments and processing instructions are
// dropped, text and attributes re-escaped: the output is well-formed whatever the input.
// Call it only on a file scan_junit accepted.
Result<void> copy_junit(const std::string& path, const std::string& fallback_name, const std::string& fallback_time,
                        const JunitSink& out);

// Appends `text` to `out` escaped as XML character data (`attribute`: as an attribute value in
// double quotes), after xml_safe.
void xml_escape(std::string& out, std::string_view text, bool attribute);

}  // namespace sandrun::runner
