// Helpers shared by the job file tests: parse a document, get its jobs or its one error.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "config/job_file.h"

namespace sandrun::config {

// The test documents start on the line after R"( for readability; drop that first newline so
// line numbers in the expectations match what is written.
inline std::string_view doc(std::string_view text) {
  if (!text.empty() && text[0] == '\n') text.remove_prefix(1);
  return text;
}

inline JobFile parse_ok(std::string_view text) {
  auto r = parse_job_file(doc(text), "jobs.toml", "/repo");
  EXPECT_TRUE(r.ok()) << r.error().message();
  return r.ok() ? r.take() : JobFile{};
}

inline std::string parse_err(std::string_view text) {
  auto r = parse_job_file(doc(text), "jobs.toml", "/repo");
  EXPECT_FALSE(r.ok());
  if (r.ok()) return "(no error)";
  EXPECT_EQ(r.error().code(), 0);
  return r.error().message();
}

// One job `unit` with `line` as its second line: errors point at line 2.
inline std::string job_err(std::string_view line) {
  return parse_err(fmt::format("[jobs.unit]\n{}\nrun = \"true\"\n", line));
}

inline SourcePos at(int line, int column) { return SourcePos{"jobs.toml", line, column}; }

inline void expect_pos(const SourcePos& pos, int line, int column) {
  EXPECT_EQ(pos.str(), at(line, column).str());
}

}  // namespace sandrun::config
