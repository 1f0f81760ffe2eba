// The daemon's -j budget (runner/engine/start_budget.h): places, the queue's order, withdrawal.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "runner/engine/start_budget.h"

namespace sandrun::runner {
namespace {

TEST(StartBudget, StartsOverTheBudgetWaitTheirTurnInOrder) {
  StartBudget b(2);
  std::vector<std::string> ran;
  for (const char* id : {"a", "b", "c", "d"}) b.admit(id, [&ran, id] { ran.push_back(id); });
  EXPECT_EQ(ran, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(b.in_use(), 2u);
  EXPECT_EQ(b.waiting(), 2u);
  EXPECT_TRUE(b.queued("c"));
  b.release();
  EXPECT_EQ(ran, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(b.in_use(), 2u);
  b.release();
  b.release();
  EXPECT_EQ(ran, (std::vector<std::string>{"a", "b", "c", "d"}));
  EXPECT_EQ(b.in_use(), 1u);
  EXPECT_EQ(b.waiting(), 0u);
}

TEST(StartBudget, AWithdrawnStartNeverRunsAndKeepsNoPlace) {
  StartBudget b(1);
  std::vector<std::string> ran;
  for (const char* id : {"a", "b", "c"}) b.admit(id, [&ran, id] { ran.push_back(id); });
  EXPECT_TRUE(b.withdraw("b"));
  EXPECT_FALSE(b.withdraw("b"));
  EXPECT_FALSE(b.withdraw("a")) << "a runs: it is not queued";
  b.release();
  EXPECT_EQ(ran, (std::vector<std::string>{"a", "c"}));
}

TEST(StartBudget, NoLimitRunsEveryStartAtOnce) {
  StartBudget b(0);
  int ran = 0;
  for (int i = 0; i < 100; ++i) b.admit(std::to_string(i), [&] { ++ran; });
  EXPECT_EQ(ran, 100);
  EXPECT_EQ(b.waiting(), 0u);
}

TEST(StartBudget, APlaceReleasedFromInsideAStartGoesToTheNext) {
  StartBudget b(1);
  std::vector<std::string> ran;
  b.admit("a", [&] { ran.push_back("a"); });
  b.admit("b", [&] {
    ran.push_back("b");
    b.release();  // b could not start: its place is handed on at once
  });
  b.admit("c", [&] { ran.push_back("c"); });
  b.release();
  EXPECT_EQ(ran, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(b.in_use(), 1u);
}

}  // namespace
}  // namespace sandrun::runner
