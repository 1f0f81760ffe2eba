// Pure logic of the runner: line splitting, status texts, env merging, users, hostnames.
#include <string>
#include <vector>

#include "runner/report/output.h"
#include "runner/engine/resolve.h"
#include "runner/report/summary.h"
#include "sandbox/sys/fs.h"
#include "sandbox/sys/text.h"
#include "tests/support/test_env.h"

namespace sandrun::testing {
namespace {

using runner::JobResult;
using namespace std::chrono_literals;

std::vector<std::string> split_all(runner::LineSplitter& s, const std::vector<std::string>& chunks) {
  std::vector<std::string> lines;
  for (const auto& c : chunks) s.feed(c, [&](std::string_view l, runner::LinePart) { lines.emplace_back(l); });
  return lines;
}

TEST(LineSplitterTest, JoinsLinesAcrossChunksAndKeepsTheUnfinishedRest) {
  runner::LineSplitter s;
  EXPECT_EQ(split_all(s, {"a\nb", "c\n\nd"}), (std::vector<std::string>{"a", "bc", ""}));
  EXPECT_TRUE(s.has_partial());
  EXPECT_EQ(s.flush(), "d");
  EXPECT_FALSE(s.has_partial());
}

TEST(LineSplitterTest, CutsOverlongLinesWithoutLosingBytes) {
  runner::LineSplitter s(4);
  EXPECT_EQ(split_all(s, {"abcdefghij\nxy"}), (std::vector<std::string>{"abcd", "efgh", "ij"}));
  EXPECT_EQ(s.flush(), "xy");
}

// Issue 15 item 2: a long line comes in parts, each marked; the last part of a line is not
// "partial", every part after the first is "continued".
TEST(LineSplitterTest, MarksThePartsOfALongLine) {
  runner::LineSplitter s(4);
  std::vector<std::string> seen;
  auto emit = [&](std::string_view l, runner::LinePart p) {
    seen.push_back(fmt::format("{}{}{}", p.continued ? "+" : "", l, p.partial ? "..." : ""));
  };
  s.feed("abcdefghij\nxy\nlongerline", emit);
  EXPECT_EQ(seen, (std::vector<std::string>{"abcd...", "+efgh...", "+ij", "xy", "long...", "+erli..."}));
  runner::LinePart last;
  EXPECT_EQ(s.flush(&last), "ne");
  EXPECT_TRUE(last.continued);
  EXPECT_FALSE(last.partial);
  EXPECT_EQ(runner::kMaxLinePart, 16u * 1024);
}

// Issue 15 item 11: escape sequences, C1 controls and broken UTF-8 become visible text.
TEST(TerminalSafeTest, EscapesControlSequencesAndKeepsPrintableText) {
  EXPECT_EQ(terminal_safe("\x1b]0;PWNED-TITLE\x07\x1b[2J"), "\\x1b]0;PWNED-TITLE\\x07\\x1b[2J");
  EXPECT_EQ(terminal_safe("plain text, caf\xc3\xa9 \xe2\x9c\x93\ttab"), "plain text, caf\xc3\xa9 \xe2\x9c\x93\ttab");
  EXPECT_EQ(terminal_safe("a\rb\x7f\x08"), "a\\x0db\\x7f\\x08");
  EXPECT_EQ(terminal_safe("csi \xc2\x9b" "2J raw \x9b" "2J"), "csi \\u009b2J raw \\x9b2J");
  EXPECT_EQ(terminal_safe("one\ntwo"), "one\\x0atwo");
  EXPECT_EQ(terminal_safe("one\ntwo", /*keep_newlines=*/true), "one\ntwo");
  EXPECT_EQ(terminal_safe("\xf0\x9f\x98\x80 \xc0\xaf"), "\xf0\x9f\x98\x80 \\xc0\\xaf");  // overlong '/' refused
  EXPECT_EQ(find_control("name"), std::string_view::npos);
  EXPECT_EQ(find_control("na\nme"), 2u);
  EXPECT_EQ(find_control("x\xc2\x85"), 1u);
}

JobResult result(JobResult::Status st, int code = 0, int sig = 0) {
  JobResult r;
  r.name = "j";
  r.status = st;
  r.exit_code = code;
  r.signal = sig;
  r.timeout = 10s;
  r.duration = 1234ms;
  return r;
}

TEST(SummaryTest, StatusTextsNameTheCause) {
  using S = JobResult::Status;
  EXPECT_EQ(runner::status_text(result(S::passed)), "passed");
  EXPECT_EQ(runner::status_text(result(S::failed, 3)), "failed: exit 3");
  EXPECT_EQ(runner::status_text(result(S::signaled, 0, 11)), "failed: signal SIGSEGV");
  EXPECT_EQ(runner::status_text(result(S::timed_out)), "killed: timed out after 10s");
  auto oom = result(S::oom_killed, 0, 9);
  oom.memory_limit = 256ull << 20;
  EXPECT_EQ(runner::status_text(oom), "killed: out of memory (limit 256 MiB)");
  auto bomb = result(S::timed_out);
  bomb.pids_limit = 64;
  bomb.pids_limit_hit = true;
  EXPECT_EQ(runner::status_text(bomb), "killed: timed out after 10s (pids limit 64 reached)");
  auto failed = result(S::failed, 2);
  failed.pids_limit = 64;
  failed.pids_limit_hit = true;
  EXPECT_EQ(runner::status_text(failed), "failed: exit 2 (pids limit 64 reached)");
  EXPECT_EQ(runner::status_text(result(S::setup_failed)), "setup failed");
  EXPECT_EQ(runner::status_text(result(S::exec_failed, 127)), "failed: command not found");
  EXPECT_EQ(runner::status_text(result(S::exec_failed, 126)), "failed: cannot execute");
  EXPECT_EQ(runner::status_text(result(S::cancelled)), "cancelled");
  EXPECT_EQ(runner::status_text(result(S::not_started)), "not started");
}

TEST(SummaryTest, TableAlignsColumnsAndCountsOutcomes) {
  using S = JobResult::Status;
  auto a = result(S::passed);
  a.name = "build";
  auto b = result(S::failed, 3);
  b.name = "unit-tests";
  b.duration = 95ms;
  auto c = result(S::not_started);
  c.name = "deploy";
  EXPECT_EQ(runner::summary_table({a, b, c}, 1520ms, false),
            "JOB         STATUS          TIME\n"
            "build       passed          1.23s\n"
            "unit-tests  failed: exit 3  95ms\n"
            "deploy      not started     -\n"
            "3 jobs: 1 passed, 1 failed, 1 cancelled in 1.52s\n");
  EXPECT_EQ(runner::format_elapsed(125'000ms), "2m05s");
}

TEST(ResolveTest, HostnamesKeepLettersDigitsAndDashes) {
  EXPECT_EQ(runner::hostname_for("unit"), "unit");
  EXPECT_EQ(runner::hostname_for("unit_tests.v2"), "unit-tests-v2");
  EXPECT_EQ(runner::hostname_for("__"), "sandrun");
  EXPECT_EQ(runner::hostname_for(std::string(80, 'a')).size(), 63u);
}

TEST(ResolveTest, EnvIsTheImagesThenDefaultsThenTheJobsOverrides) {
  auto env = runner::merge_env({"PATH=/opt/bin", "LANG=C"}, {{"LANG", "C.UTF-8"}, {"CI", "true"}}, "unit", "/root");
  EXPECT_EQ(env, (std::vector<std::string>{"PATH=/opt/bin", "LANG=C.UTF-8", "HOSTNAME=unit", "HOME=/root", "CI=true"}));
  auto bare = runner::merge_env({}, {}, "h", "");
  EXPECT_EQ(bare[0], "PATH=" + std::string(runner::kDefaultPath));
  EXPECT_EQ(bare[2], "HOME=/");
}

class UserTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::mkdirs(tmp_ / "top/etc").ok());
    ASSERT_TRUE(fs::mkdirs(tmp_ / "base/etc").ok());
    write_file(tmp_ / "top/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n# comment\nci:x:1000:1001:CI:/home/ci:/bin/sh\n");
    write_file(tmp_ / "top/etc/group", "root:x:0:\nci:x:1001:\ndocker:x:998:ci,other\nwheel:x:10:ci\n");
    write_file(tmp_ / "base/etc/passwd", "ghost:x:7:7::/:/bin/sh\n");
    layers_ = {tmp_ / "top", tmp_ / "base"};
  }
  TempDir tmp_;
  std::vector<std::string> layers_;
};

TEST_F(UserTest, NamesResolveFromTheTopMostLayersPasswdWithSupplementaryGroups) {
  auto u = runner::resolve_user("ci", layers_);
  ASSERT_TRUE(u.ok()) << u.error().message();
  EXPECT_EQ(u->uid, 1000u);
  EXPECT_EQ(u->gid, 1001u);
  EXPECT_EQ(u->groups, (std::vector<gid_t>{998, 10}));
  EXPECT_EQ(u->home, "/home/ci");
  // The lower layer's passwd is hidden by the upper one.
  EXPECT_EQ(runner::resolve_user("ghost", layers_).error().message(), "no user \"ghost\" in the image's /etc/passwd");
}

TEST_F(UserTest, NumbersAndGroupsWork) {
  auto u = runner::resolve_user("4242:docker", layers_);
  ASSERT_TRUE(u.ok()) << u.error().message();
  EXPECT_EQ(u->uid, 4242u);
  EXPECT_EQ(u->gid, 998u);
  auto v = runner::resolve_user("1000", layers_);
  EXPECT_EQ(v->gid, 1001u);
  EXPECT_EQ(runner::resolve_user("ci:nogroup", layers_).error().message(), "no group \"nogroup\" in the image's /etc/group");
  EXPECT_EQ(runner::resolve_user("a:b:c", layers_).error().message(),
            "invalid user \"a:b:c\": expected USER[:GROUP] like \"1000:1000\" or \"nobody\"");
}

TEST_F(UserTest, AnImagesPasswdSymlinkCannotReadHostFiles) {
  ASSERT_EQ(::unlink((tmp_ / "top/etc/passwd").c_str()), 0);
  // An absolute link resolves inside the layer (where there is no such file), never on the host.
  ASSERT_EQ(::symlink("/etc/passwd", (tmp_ / "top/etc/passwd").c_str()), 0);
  EXPECT_FALSE(runner::resolve_user("root", {tmp_ / "top"}).ok());
}

}  // namespace
}  // namespace sandrun::testing
