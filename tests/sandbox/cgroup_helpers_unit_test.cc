// Unit tests of the cgroup backends' helpers (cgroup_internal.h): CPU lists, sizes, run names
// and mountinfo lines.
#include <unistd.h>

#include <gtest/gtest.h>

#include "sandbox/cgroup_internal.h"

namespace sandrun::sandbox::cgroup {
namespace {

constexpr uint64_t MiB = 1 << 20;

TEST(CgroupHelpers, CpuListsBytesAndRunNames) {
  using namespace detail;
  EXPECT_EQ(parse_cpu_list("0-1,3\n"), (std::vector<unsigned>{0, 1, 3}));
  EXPECT_FALSE(parse_cpu_list("3-1"));
  EXPECT_FALSE(parse_cpu_list(""));
  EXPECT_EQ(format_cpu_list({0, 1, 2, 5, 7, 8}), "0-2,5,7-8");
  EXPECT_EQ(format_bytes(4 * MiB), "4 MiB");
  EXPECT_EQ(format_bytes(2ull << 30), "2 GiB");
  EXPECT_EQ(format_bytes(1536), "1536 bytes");
  EXPECT_EQ(cpu_quota_usec(1.5), 150000u);
  auto r = parse_run_name("123-456-tag");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->pid, 123);
  EXPECT_EQ(r->start, 456u);
  EXPECT_TRUE(parse_run_name("999999999-1"));
  EXPECT_FALSE(parse_run_name("abc"));
  EXPECT_FALSE(parse_run_name("1-"));
  EXPECT_FALSE(parse_run_name("1-2-"));
  EXPECT_FALSE(parse_run_name("0-5"));
}

TEST(CgroupHelpers, RunIdNamesThisLiveProcess) {
  using namespace detail;
  const std::string id = run_id();
  EXPECT_EQ(id.substr(0, id.find('-')), std::to_string(::getpid()));
  auto r = parse_run_name(id);
  ASSERT_TRUE(r);
  EXPECT_GT(r->start, 0u);
  EXPECT_TRUE(run_alive(*r));
  EXPECT_FALSE(run_alive(RunName{r->pid, r->start + 1}));
  EXPECT_FALSE(run_alive(RunName{999999999, 1}));
}

TEST(CgroupHelpers, MountinfoFieldsAfterOptionalOnes) {
  auto m = detail::parse_mountinfo(
      "35 31 0:32 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:15 master:2 - cgroup cgroup rw,cpu,cpuacct\n"
      "41 31 0:38 / /mnt/with\\040blank rw - cgroup2 cgroup2 rw\n");
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0].point, "/sys/fs/cgroup/cpu,cpuacct");
  EXPECT_EQ(m[0].fstype, "cgroup");
  EXPECT_EQ(m[0].super_options, (std::vector<std::string>{"rw", "cpu", "cpuacct"}));
  EXPECT_EQ(m[1].point, "/mnt/with blank");
  EXPECT_EQ(m[1].fstype, "cgroup2");
}

}  // namespace
}  // namespace sandrun::sandbox::cgroup
