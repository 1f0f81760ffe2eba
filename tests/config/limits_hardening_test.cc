// Tests of the limit and hardening keys of the job file: cpuset, nofile, seccomp, capabilities,
// no_new_privs, read_only_rootfs and userns; their forms, errors and inheritance.
#include <gtest/gtest.h>

#include "config/job_file.h"
#include "tests/config/parse_helpers.h"

namespace sandrun::config {
namespace {

using Names = std::vector<std::string>;
using Nofile = std::pair<uint64_t, uint64_t>;

// --- limits ---

TEST(JobFileLimitsTest, UnsetLimitsStayUnsetForTheRunnerToDefault) {
  const JobSpec j = parse_ok("[jobs.unit]\nrun = \"true\"\n").jobs.at(0);
  EXPECT_FALSE(j.limits.cpuset);
  EXPECT_FALSE(j.nofile);
  EXPECT_FALSE(j.limits.pids);  // the runner applies kDefaultPids
  EXPECT_EQ(kDefaultPids, 1024u);
}

TEST(JobFileLimitsTest, CpusetIsKeptAsWrittenOnceItsSyntaxIsChecked) {
  const JobSpec j = parse_ok("[jobs.unit]\nrun = \"true\"\ncpuset = \"0-1,3\"\n").jobs.at(0);
  EXPECT_EQ(j.limits.cpuset, "0-1,3");
  expect_pos(j.where("cpuset"), 3, 10);
}

TEST(JobFileLimitsTest, CpusetErrors) {
  EXPECT_EQ(job_err("cpuset = 3"),
            R"(jobs.toml:2:10: jobs.unit.cpuset: expected a string like "0-3" or "0,2", got integer)");
  EXPECT_EQ(job_err(R"(cpuset = "0-1, 3")"),
            R"(jobs.toml:2:10: jobs.unit.cpuset: invalid cpuset "0-1, 3": expected CPU numbers and ranges like "0-3" or "0,2,4-7")");
  EXPECT_EQ(job_err(R"(cpuset = "")"),
            R"(jobs.toml:2:10: jobs.unit.cpuset: invalid cpuset "": expected CPU numbers and ranges like "0-3" or "0,2,4-7")");
  EXPECT_EQ(job_err(R"(cpuset = "3-1")"),
            R"(jobs.toml:2:10: jobs.unit.cpuset: invalid cpuset "3-1": range 3-1 ends before it starts)");
  EXPECT_EQ(job_err(R"(cpuset = "0,1024")"),
            R"(jobs.toml:2:10: jobs.unit.cpuset: invalid cpuset "0,1024": CPU 1024 is above the maximum of 1023)");
}

TEST(JobFileLimitsTest, NofileIsAnIntegerOrSoftColonHard) {
  auto f = parse_ok(R"(
[jobs.a]
run = "true"
nofile = 4096
[jobs.b]
run = "true"
nofile = "1024:4096"
[jobs.c]
run = "true"
nofile = "2048"
[jobs.d]
run = "true"
nofile = 2147483584
)");
  ASSERT_EQ(f.jobs.size(), 4u);
  EXPECT_EQ(f.jobs[0].nofile, (Nofile{4096, 4096}));
  expect_pos(f.jobs[0].where("nofile"), 3, 10);
  EXPECT_EQ(f.jobs[1].nofile, (Nofile{1024, 4096}));
  EXPECT_EQ(f.jobs[2].nofile, (Nofile{2048, 2048}));
  EXPECT_EQ(f.jobs[3].nofile, (Nofile{kMaxNofile, kMaxNofile}));
}

TEST(JobFileLimitsTest, NofileErrors) {
  EXPECT_EQ(job_err("nofile = 1.5"),
            R"(jobs.toml:2:10: jobs.unit.nofile: expected an integer like 4096 or a string like "1024:4096", got float)");
  EXPECT_EQ(job_err("nofile = [1, 2]"),
            R"(jobs.toml:2:10: jobs.unit.nofile: expected an integer like 4096 or a string like "1024:4096", got array)");
  EXPECT_EQ(job_err("nofile = 0"), "jobs.toml:2:10: jobs.unit.nofile: invalid nofile 0: must be at least 1");
  EXPECT_EQ(job_err("nofile = -5"), "jobs.toml:2:10: jobs.unit.nofile: invalid nofile -5: must be at least 1");
  EXPECT_EQ(job_err("nofile = 2147483585"),
            "jobs.toml:2:10: jobs.unit.nofile: invalid nofile 2147483585: too large (the maximum is 2147483584)");
  EXPECT_EQ(job_err(R"(nofile = "4096:1024")"),
            R"(jobs.toml:2:10: jobs.unit.nofile: invalid nofile "4096:1024": the soft limit 4096 is above the hard limit 1024)");
  EXPECT_EQ(job_err(R"(nofile = "0:10")"),
            R"(jobs.toml:2:10: jobs.unit.nofile: invalid nofile "0:10": must be at least 1)");
  EXPECT_EQ(job_err(R"(nofile = "1024:")"),
            R"(jobs.toml:2:10: jobs.unit.nofile: invalid nofile "1024:": expected SOFT[:HARD] numbers of open files, like "4096" or "1024:4096")");
  EXPECT_EQ(job_err(R"(nofile = "1:2\u0000")"),
            "jobs.toml:2:10: jobs.unit.nofile: must not contain a NUL character");
}

// --- hardening ---

TEST(JobFileHardeningTest, DefaultsAreDockersProfileAndNoNewPrivileges) {
  const JobSpec j = parse_ok("[jobs.unit]\nrun = \"true\"\n").jobs.at(0);
  EXPECT_EQ(j.seccomp, "default");
  EXPECT_TRUE(j.cap_add.empty());
  EXPECT_TRUE(j.cap_drop.empty());
  EXPECT_TRUE(j.no_new_privs);
  EXPECT_FALSE(j.read_only_rootfs);
  EXPECT_EQ(j.userns, std::nullopt);
  EXPECT_EQ(j.key_pos.size(), 1u);  // run only
}

TEST(JobFileHardeningTest, EveryHardeningKeyIsParsedWithItsPosition) {
  auto f = parse_ok(R"(
[jobs.unit]
run = "true"
seccomp = "profiles/ci.json"
cap_add = ["NET_ADMIN", "SYS_PTRACE"]
cap_drop = [
  "ALL",
]
no_new_privs = false
read_only_rootfs = true
userns = false
)");
  ASSERT_EQ(f.jobs.size(), 1u);
  const JobSpec& j = f.jobs[0];
  EXPECT_EQ(j.seccomp, "/repo/profiles/ci.json");
  expect_pos(j.where("seccomp"), 3, 11);
  EXPECT_EQ(config::names_of(j.cap_add), (Names{"NET_ADMIN", "SYS_PTRACE"}));
  ASSERT_EQ(j.cap_add.size(), 2u);
  expect_pos(j.cap_add[0].pos, 4, 12);
  expect_pos(j.cap_add[1].pos, 4, 25);
  expect_pos(j.where("cap_add"), 4, 11);
  EXPECT_EQ(config::names_of(j.cap_drop), (Names{"ALL"}));
  ASSERT_EQ(j.cap_drop.size(), 1u);
  expect_pos(j.cap_drop[0].pos, 6, 3);
  EXPECT_FALSE(j.no_new_privs);
  expect_pos(j.where("no_new_privs"), 8, 16);
  EXPECT_TRUE(j.read_only_rootfs);
  expect_pos(j.where("read_only_rootfs"), 9, 20);
  EXPECT_EQ(j.userns, false);
  expect_pos(j.where("userns"), 10, 10);
}

TEST(JobFileHardeningTest, SeccompTakesDefaultUnconfinedOrAPathNextToTheJobFile) {
  auto r = parse_job_file(doc(R"(
[jobs.a]
run = "true"
seccomp = "unconfined"
[jobs.b]
run = "true"
seccomp = "../profiles/./strict.json"
[jobs.c]
run = "true"
seccomp = "/etc/sandrun/p.json"
[jobs.d]
run = "true"
seccomp = "./default"
)"), "ci/jobs.toml", "/home/u/repo/ci");
  ASSERT_TRUE(r.ok()) << r.error().message();
  ASSERT_EQ(r->jobs.size(), 4u);
  EXPECT_EQ(r->jobs[0].seccomp, "unconfined");
  EXPECT_EQ(r->jobs[1].seccomp, "/home/u/repo/profiles/strict.json");
  EXPECT_EQ(r->jobs[2].seccomp, "/etc/sandrun/p.json");
  EXPECT_EQ(r->jobs[3].seccomp, "/home/u/repo/ci/default");
}

TEST(JobFileHardeningTest, SeccompErrors) {
  EXPECT_EQ(job_err(R"(seccomp = "")"),
            R"(jobs.toml:2:11: jobs.unit.seccomp: invalid seccomp profile "": expected "default", "unconfined" or the path of a profile file)");
  EXPECT_EQ(job_err("seccomp = false"),
            R"(jobs.toml:2:11: jobs.unit.seccomp: expected a string, "default", "unconfined" or a profile path, got boolean)");
  EXPECT_EQ(job_err(R"(seccomp = "a\u0000")"),
            "jobs.toml:2:11: jobs.unit.seccomp: must not contain a NUL character");
}

TEST(JobFileHardeningTest, CapabilityErrorsNameTheElement) {
  EXPECT_EQ(job_err(R"(cap_add = "NET_ADMIN")"),
            R"(jobs.toml:2:11: jobs.unit.cap_add: expected an array of strings like ["NET_ADMIN"], got string)");
  EXPECT_EQ(job_err(R"(cap_drop = ["ALL", 1])"),
            R"(jobs.toml:2:20: jobs.unit.cap_drop[1]: expected a string like "NET_ADMIN", got integer)");
  EXPECT_EQ(job_err(R"(cap_add = ["NET_ADMIN", ""])"),
            R"(jobs.toml:2:25: jobs.unit.cap_add[1]: invalid capability "": expected a name like "NET_ADMIN" or "ALL")");
  EXPECT_EQ(job_err(R"(cap_drop = ["A\u0000"])"),
            "jobs.toml:2:13: jobs.unit.cap_drop[0]: must not contain a NUL character");
  // Names are the runner's to check; here any non-empty string is kept, as written.
  auto f = parse_ok("[jobs.unit]\nrun = \"true\"\ncap_add = [\"net_admin\", \"NOT_A_CAP\"]\ncap_drop = []\n");
  EXPECT_EQ(config::names_of(f.jobs.at(0).cap_add), (Names{"net_admin", "NOT_A_CAP"}));
  EXPECT_TRUE(f.jobs.at(0).cap_drop.empty());
  expect_pos(f.jobs.at(0).where("cap_drop"), 4, 12);
}

TEST(JobFileHardeningTest, BooleanKeysRefuseOtherTypes) {
  EXPECT_EQ(job_err(R"(no_new_privs = "no")"),
            "jobs.toml:2:16: jobs.unit.no_new_privs: expected true or false, got string");
  EXPECT_EQ(job_err("read_only_rootfs = 1"),
            "jobs.toml:2:20: jobs.unit.read_only_rootfs: expected true or false, got integer");
  EXPECT_EQ(job_err(R"(userns = "auto")"), "jobs.toml:2:10: jobs.unit.userns: expected true or false, got string");
}

// --- [defaults] ---

TEST(JobFileHardeningTest, DefaultsAreInheritedAndAJobsValueReplacesThem) {
  auto f = parse_ok(R"(
[defaults]
cpuset = "0"
nofile = "1024:2048"
seccomp = "p.json"
cap_add = ["CHOWN"]
cap_drop = ["ALL"]
no_new_privs = false
read_only_rootfs = true
userns = true

[jobs.one]
run = "true"

[jobs.two]
run = "true"
cap_drop = ["NET_RAW", "MKNOD"]
cap_add = []
nofile = 64
no_new_privs = true
userns = false
)");
  ASSERT_EQ(f.jobs.size(), 2u);
  const JobSpec& one = f.jobs[0];
  EXPECT_EQ(one.limits.cpuset, "0");
  EXPECT_EQ(one.nofile, (Nofile{1024, 2048}));
  EXPECT_EQ(one.seccomp, "/repo/p.json");
  EXPECT_EQ(config::names_of(one.cap_add), (Names{"CHOWN"}));
  EXPECT_EQ(config::names_of(one.cap_drop), (Names{"ALL"}));
  ASSERT_EQ(one.cap_drop.size(), 1u);
  expect_pos(one.cap_drop[0].pos, 6, 13);  // inherited: where [defaults] wrote it
  expect_pos(one.where("cap_drop"), 6, 12);
  EXPECT_FALSE(one.no_new_privs);
  EXPECT_TRUE(one.read_only_rootfs);
  EXPECT_EQ(one.userns, true);
  expect_pos(one.where("userns"), 9, 10);

  const JobSpec& two = f.jobs[1];
  EXPECT_EQ(config::names_of(two.cap_drop), (Names{"NET_RAW", "MKNOD"}));  // replaced, not merged
  ASSERT_EQ(two.cap_drop.size(), 2u);
  expect_pos(two.cap_drop[0].pos, 16, 13);
  expect_pos(two.cap_drop[1].pos, 16, 24);
  EXPECT_TRUE(two.cap_add.empty());  // an empty list clears the defaults'
  expect_pos(two.where("cap_add"), 17, 11);
  EXPECT_EQ(two.nofile, (Nofile{64, 64}));
  EXPECT_TRUE(two.no_new_privs);
  EXPECT_EQ(two.userns, false);
  EXPECT_EQ(two.limits.cpuset, "0");
  EXPECT_EQ(two.seccomp, "/repo/p.json");
  EXPECT_TRUE(two.read_only_rootfs);
}

TEST(JobFileHardeningTest, DefaultsErrorsAreInTheDefaultsScope) {
  EXPECT_EQ(parse_err("[defaults]\ncap_add = [1]\n[jobs.unit]\nrun = \"true\"\n"),
            R"(jobs.toml:2:12: defaults.cap_add[0]: expected a string like "NET_ADMIN", got integer)");
  EXPECT_EQ(parse_err("[defaults]\nnofile = \"2:1\"\n[jobs.unit]\nrun = \"true\"\n"),
            R"(jobs.toml:2:10: defaults.nofile: invalid nofile "2:1": the soft limit 2 is above the hard limit 1)");
  EXPECT_EQ(parse_err("[defaults]\ncpuset = \"x\"\n[jobs.unit]\nrun = \"true\"\n"),
            R"(jobs.toml:2:10: defaults.cpuset: invalid cpuset "x": expected CPU numbers and ranges like "0-3" or "0,2,4-7")");
  EXPECT_EQ(parse_err("[defaults]\nuserns = 1\n[jobs.unit]\nrun = \"true\"\n"),
            "jobs.toml:2:10: defaults.userns: expected true or false, got integer");
}

// --- unknown keys ---

// The part of an unknown-key error before the list of keys.
std::string suggestion_for(std::string_view line) {
  std::string e = job_err(line);
  return e.substr(0, e.find(';'));
}

TEST(JobFileHardeningTest, OtherToolsNamesAndTyposSuggestTheKey) {
  EXPECT_EQ(suggestion_for("cap-add = []"), R"(jobs.toml:2:1: jobs.unit: unknown key "cap-add" (did you mean "cap_add"?))");
  EXPECT_EQ(suggestion_for("capdrop = []"), R"(jobs.toml:2:1: jobs.unit: unknown key "capdrop" (did you mean "cap_drop"?))");
  EXPECT_EQ(suggestion_for("read_only = true"),
            R"(jobs.toml:2:1: jobs.unit: unknown key "read_only" (did you mean "read_only_rootfs"?))");
  EXPECT_EQ(suggestion_for("read-only = true"),
            R"(jobs.toml:2:1: jobs.unit: unknown key "read-only" (did you mean "read_only_rootfs"?))");
  EXPECT_EQ(suggestion_for("no-new-privileges = true"),
            R"(jobs.toml:2:1: jobs.unit: unknown key "no-new-privileges" (did you mean "no_new_privs"?))");
  EXPECT_EQ(suggestion_for(R"(cpuset-cpus = "0")"),
            R"(jobs.toml:2:1: jobs.unit: unknown key "cpuset-cpus" (did you mean "cpuset"?))");
  EXPECT_EQ(suggestion_for("ulimits = 10"), R"(jobs.toml:2:1: jobs.unit: unknown key "ulimits" (did you mean "nofile"?))");
  EXPECT_EQ(suggestion_for("pids_limit = 10"), R"(jobs.toml:2:1: jobs.unit: unknown key "pids_limit" (did you mean "pids"?))");
  EXPECT_EQ(suggestion_for("security_opt = []"),
            R"(jobs.toml:2:1: jobs.unit: unknown key "security_opt" (did you mean "seccomp"?))");
  EXPECT_EQ(suggestion_for("no_new_priv = true"),
            R"(jobs.toml:2:1: jobs.unit: unknown key "no_new_priv" (did you mean "no_new_privs"?))");
  EXPECT_EQ(suggestion_for("entrypoint = []"), R"(jobs.toml:2:1: jobs.unit: unknown key "entrypoint" (did you mean "command"?))");
  EXPECT_EQ(suggestion_for("privileged = true"), R"(jobs.toml:2:1: jobs.unit: unknown key "privileged")");
  // [defaults] takes no command: no suggestion of one.
  std::string e = parse_err("[defaults]\nentrypoint = []\n[jobs.unit]\nrun = \"true\"\n");
  EXPECT_EQ(e.substr(0, e.find(';')), R"(jobs.toml:2:1: defaults: unknown key "entrypoint")");
}

}  // namespace
}  // namespace sandrun::config
