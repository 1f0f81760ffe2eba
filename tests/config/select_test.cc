// Tests of job selection: names, base names, --only globs, the needs closure and --shard I/N.
#include <gtest/gtest.h>

#include <set>

#include "config/job_file.h"
#include "tests/config/parse_helpers.h"

namespace sandrun::config {
namespace {

using Names = std::vector<std::string>;

// fetch <- build <- {unit, package}; lint alone; docs alone; the matrix `e2e` needs build.
constexpr std::string_view kFile = R"(
[jobs.fetch]
run = "true"
[jobs.lint]
run = "true"
[jobs.build]
needs = ["fetch"]
run = "true"
[jobs.unit]
needs = ["build"]
run = "true"
[jobs.docs]
run = "true"
[jobs.e2e]
matrix = { os = ["linux", "musl"] }
needs = ["build"]
run = "true"
[jobs.style]
run = "true"
[jobs.package]
needs = ["unit"]
run = "true"
)";

Names names_of(const std::vector<JobSpec>& jobs) {
  Names out;
  for (const JobSpec& j : jobs) out.push_back(j.name);
  return out;
}

Names select(const Selection& sel) {
  auto jobs = select_jobs(parse_ok(kFile), sel);
  EXPECT_TRUE(jobs.ok()) << jobs.error().message();
  return jobs.ok() ? names_of(*jobs) : Names{};
}

std::string select_err(const Selection& sel) {
  auto jobs = select_jobs(parse_ok(kFile), sel);
  EXPECT_FALSE(jobs.ok());
  return jobs.ok() ? "(no error)" : jobs.error().message();
}

TEST(SelectTest, NoSelectionIsEveryJobInFileOrder) {
  EXPECT_EQ(select({}), (Names{"fetch", "lint", "build", "unit", "docs", "e2e (os=linux)", "e2e (os=musl)",
                               "style", "package"}));
}

TEST(SelectTest, ANameBringsTheJobsItNeedsInFileOrder) {
  EXPECT_EQ(select({.names = {"package"}}), (Names{"fetch", "build", "unit", "package"}));
  EXPECT_EQ(select({.names = {"lint", "unit"}}), (Names{"fetch", "lint", "build", "unit"}));
}

TEST(SelectTest, ABaseNameSelectsEveryCombinationAndAFullNameOne) {
  EXPECT_EQ(select({.names = {"e2e"}}), (Names{"fetch", "build", "e2e (os=linux)", "e2e (os=musl)"}));
  EXPECT_EQ(select({.names = {"e2e (os=musl)"}}), (Names{"fetch", "build", "e2e (os=musl)"}));
}

TEST(SelectTest, OnlyGlobsMatchExpandedNames) {
  EXPECT_EQ(select({.only = {"*(os=linux)"}}), (Names{"fetch", "build", "e2e (os=linux)"}));
  EXPECT_EQ(select({.only = {"l*", "d*"}}), (Names{"lint", "docs"}));
  // Names and patterns both restrict.
  EXPECT_EQ(select({.names = {"e2e"}, .only = {"*musl*"}}), (Names{"fetch", "build", "e2e (os=musl)"}));
}

TEST(SelectTest, UnknownNamesAndEmptyPatternsAreErrors) {
  EXPECT_EQ(select_err({.names = {"biuld"}}),
            R"(unknown job "biuld" (did you mean "build"?); the jobs are: fetch, lint, build, unit, docs, e2e, style, package)");
  EXPECT_EQ(select_err({.names = {"deploy"}}),
            R"(unknown job "deploy"; the jobs are: fetch, lint, build, unit, docs, e2e, style, package)");
  EXPECT_EQ(select_err({.only = {"x*"}}),
            R"(--only "x*" matches no job; the jobs are: fetch, lint, build, unit, docs, e2e (os=linux), e2e (os=musl), style, package)");
}

TEST(SelectTest, ShardsAreDisjointCoverEveryJobAndKeepNeedsTogether) {
  // Components in file order of their first job: {fetch, build, unit, e2e x2, package}, {lint},
  // {docs}, {style}; round-robin over 3 shards.
  Names s1 = select({.shard_index = 1, .shard_count = 3});
  Names s2 = select({.shard_index = 2, .shard_count = 3});
  Names s3 = select({.shard_index = 3, .shard_count = 3});
  EXPECT_EQ(s1, (Names{"fetch", "build", "unit", "e2e (os=linux)", "e2e (os=musl)", "style", "package"}));
  EXPECT_EQ(s2, (Names{"lint"}));
  EXPECT_EQ(s3, (Names{"docs"}));
  std::multiset<std::string> all(s1.begin(), s1.end());
  all.insert(s2.begin(), s2.end());
  all.insert(s3.begin(), s3.end());
  Names every = select({});
  EXPECT_EQ(all, std::multiset<std::string>(every.begin(), every.end()));
}

TEST(SelectTest, ShardingAppliesToTheSelectionAndMayBeEmpty) {
  EXPECT_EQ(select({.names = {"lint", "docs"}, .shard_index = 2, .shard_count = 2}), (Names{"docs"}));
  EXPECT_EQ(select({.names = {"lint"}, .shard_index = 2, .shard_count = 2}), Names{});
}

TEST(SelectTest, ParseShardTakesIOfN) {
  auto ok = parse_shard("2/5");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, std::pair(2u, 5u));
  EXPECT_EQ(*parse_shard("1/1"), std::pair(1u, 1u));
  for (std::string_view bad : {"0/5", "6/5", "x", "2/0", "2/", "/5", "-1/5", "2/5/1", " 2/5", "99999999999/1"}) {
    auto r = parse_shard(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().message(),
              fmt::format("invalid shard \"{}\": expected I/N with 1 <= I <= N, like 2/5", bad));
  }
}

}  // namespace
}  // namespace sandrun::config
