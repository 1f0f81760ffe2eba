// A blocking harness that starts real sandboxes on a busybox root and collects everything.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "sandbox/sandbox.h"
#include "tests/support/host_state.h"
#include "tests/support/test_env.h"

namespace sandrun::testing {

// A container plan with where this test starts it (fresh dirs under the temp dir).
struct TestPlan : sandbox::ContainerPlan {
  sandbox::Placement place;
};

struct SandboxRun {
  bool started = false;          // Sandbox::start succeeded
  std::string start_error;
  sandbox::Outcome outcome;
  std::string out;
  std::string err;
  std::chrono::milliseconds elapsed{0};
};

class SandboxFixture : public ::testing::Test {
 protected:
  void SetUp() override;
  // A spec on the shared busybox layer with a fresh upper/work/root under the temp dir.
  TestPlan spec(std::vector<std::string> argv);
  // Starts, then (optionally, after `signal_after`) signals, and collects until the end.
  SandboxRun run(const TestPlan& spec, int signal = 0,
                 std::chrono::milliseconds signal_after = std::chrono::milliseconds(0));
  SandboxRun sh(const std::string& script, bool init = true);

  TempDir tmp_;
  std::string layer_;
  int next_ = 0;
};

}  // namespace sandrun::testing
