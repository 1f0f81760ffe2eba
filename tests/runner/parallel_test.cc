// Parallelism is real: containers of one run overlap in time (run alone: it measures time).
#include "tests/runner/cli_fixture.h"

namespace sandrun::testing {
namespace {

using namespace std::chrono_literals;

class ParallelTest : public CliTest {};

std::string sleepers(int n) {
  std::string toml;
  for (int i = 0; i < n; ++i) toml += "[jobs.s" + std::to_string(i) + "]\nrun = \"sleep 1\"\n";
  return toml;
}

TEST_F(ParallelTest, EightOneSecondJobsTakeAboutOneSecondWithJ8AndFourWithJ2) {
  std::string file = jobs(sleepers(8));
  auto wide = sandrun({"run", "-j", "8", file});
  ASSERT_EQ(wide.status, 0) << wide.err;
  EXPECT_LT(wide.elapsed, 2500ms);
  auto narrow = sandrun({"run", "-j", "2", file});
  ASSERT_EQ(narrow.status, 0) << narrow.err;
  EXPECT_GE(narrow.elapsed, 4000ms);
  EXPECT_LT(narrow.elapsed, 6000ms);
}

}  // namespace
}  // namespace sandrun::testing
