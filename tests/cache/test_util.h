// Helpers shared by the cache tests: directory listings and stat shortcuts.
#pragma once

#include <sys/stat.h>

#include <algorithm>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <optional>

#include "cache/store.h"
#include "tests/support/host_state.h"
#include "tests/support/test_env.h"

namespace sandrun::testing {

// Names in `dir` (sorted, without . and ..); empty when it does not exist.
inline std::vector<std::string> list_dir(const std::string& dir) { return dir_entries(dir); }

// A store in a fresh temp dir, for the tests of cache/.
class StoreFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = cache::Store::open(dir_ / "store");
    ASSERT_TRUE(s.ok()) << s.error().message();
    store_.emplace(std::move(*s));
  }
  std::string root() const { return dir_ / "store"; }
  std::string path(const std::string& p) const { return dir_ / ("store/" + p); }

  TempDir dir_;
  std::optional<cache::Store> store_;
};

inline struct stat lstat_of(const std::string& path) {
  struct stat st = {};
  if (::lstat(path.c_str(), &st) < 0) st.st_mode = 0;
  return st;
}

}  // namespace sandrun::testing
