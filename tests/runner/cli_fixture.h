// A fixture for tests that drive the sandrun binary: a private state root and job files.
#pragma once

#include <string>
#include <vector>

#include "tests/support/host_state.h"
#include "tests/support/test_env.h"

namespace sandrun::testing {

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override { SANDRUN_REQUIRE_ROOT(); }

  std::string root() const { return tmp_ / "root"; }
  // Writes a job file into the temp dir and returns its path.
  std::string jobs(const std::string& toml, const std::string& name = "jobs.toml") {
    std::string path = tmp_ / name;
    write_file(path, toml);
    return path;
  }
  CommandResult sandrun(const std::vector<std::string>& args, const std::vector<std::string>& env = {}) {
    return run_sandrun(root(), args, env);
  }
  std::string log(const std::string& job) { return read_file(tmp_ / (".sandrun/logs/" + job + ".log")); }

  // Nothing of any run remains: no run dir, no mount under the state root, no container.
  void expect_nothing_left(const std::vector<std::vector<std::string>>& processes = {}) {
    EXPECT_EQ(dir_entries(root() + "/run"), std::vector<std::string>{});
    EXPECT_EQ(mounts_under(root()), std::vector<std::string>{});
    for (const auto& p : processes) EXPECT_FALSE(host_has_process(p)) << p.at(0) << " " << p.at(1);
  }

  TempDir tmp_;
};

}  // namespace sandrun::testing
