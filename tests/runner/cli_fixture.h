// A fixture for tests that drive the sandrun binary: a private state root and job files.
#pragma once

#include <unistd.h>

#include <string>
#include <vector>

#include "tests/support/host_state.h"
#include "tests/support/test_env.h"

namespace sandrun::testing {

class CliTest : public ::testing::Test {
 protected:
  // The temp dir is the tests' checkout (`workspace = "."`): owned by a CI user, as a runner's is.
  void SetUp() override {
    SANDRUN_REQUIRE_ROOT();
    give_to_checkout_owner(tmp_.path());
  }

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
  // Tars the directory `rootfs` and imports it as image `ref`; "" or what went wrong.
  std::string import_rootfs(const std::string& rootfs, const std::string& ref) {
    const std::string tarball = tmp_ / "rootfs.tar";
    auto tar = run_command({"tar", "-C", rootfs, "-cf", tarball, "."});
    if (tar.status != 0) return "tar: " + tar.err;
    auto imp = sandrun({"image", "import", "--rootfs", tarball, ref});
    return imp.status == 0 ? "" : "import: " + imp.err;
  }
  std::string log(const std::string& job) { return read_file(tmp_ / (".sandrun/logs/" + job + ".log")); }

  // Nothing of any run remains: every container slot is idle (unlocked, its writable layer
  // empty, no pid recorded, no file system of its own), no loop device, nothing is mounted under the state root, no cgroup of a finished
  // run exists, no container runs.
  void expect_nothing_left(const std::vector<std::vector<std::string>>& processes = {}) {
    for (const auto& k : dir_entries(root() + "/slots")) {
      std::string slot = root() + "/slots/" + k;
      EXPECT_EQ(dir_entries(slot + "/disk/upper"), std::vector<std::string>{}) << slot;
      EXPECT_EQ(dir_entries(slot + "/disk/work"), std::vector<std::string>{}) << slot;
      EXPECT_EQ(dir_entries(slot + "/disk/cow"), std::vector<std::string>{}) << slot;
      EXPECT_NE(::access((slot + "/disk.img").c_str(), F_OK), 0) << slot;  // the slot's file system
      // "-": released; empty: never claimed (a start that failed before its clone).
      const std::string record = read_file(slot + "/pid").substr(0, 1);
      EXPECT_TRUE(record == "-" || record.empty()) << slot << ": " << record;
      EXPECT_FALSE(slot_locked(slot)) << slot;
    }
    EXPECT_EQ(mounts_under(root()), std::vector<std::string>{});
    EXPECT_EQ(loop_devices_under(root()), std::vector<std::string>{});
    EXPECT_EQ(stale_cgroup_runs(state_tag(root())), std::vector<std::string>{});
    for (const auto& p : processes) EXPECT_FALSE(host_has_process(p)) << p.at(0) << " " << p.at(1);
  }
  // Slots whose pid record names a container (a run is using them, or died using them).
  size_t busy_slots() {
    size_t n = 0;
    for (const auto& k : dir_entries(root() + "/slots")) n += read_file(root() + "/slots/" + k + "/pid").substr(0, 1) != "-";
    return n;
  }

  TempDir tmp_;
};

}  // namespace sandrun::testing
