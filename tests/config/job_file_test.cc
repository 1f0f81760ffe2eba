// Tests of the TOML job file parser: happy paths, inheritance, and every error's exact text.
#include <gtest/gtest.h>

#include <cerrno>

#include "config/job_file.h"
#include "tests/config/parse_helpers.h"
#include "tests/support/test_env.h"

namespace sandrun::config {
namespace {

using std::chrono::milliseconds;
using Env = std::vector<std::pair<std::string, std::string>>;
using Argv = std::vector<std::string>;

// --- happy paths ---

TEST(JobFileTest, RunBecomesAShellCommandAndDefaultsApply) {
  auto f = parse_ok(R"(
[jobs.hello]
run = "echo hi"
)");
  ASSERT_EQ(f.jobs.size(), 1u);
  const JobSpec& j = f.jobs[0];
  EXPECT_EQ(f.path, "jobs.toml");
  EXPECT_EQ(f.dir, "/repo");
  EXPECT_EQ(j.name, "hello");
  expect_pos(j.pos, 1, 1);
  EXPECT_EQ(j.command, (Argv{"/bin/sh", "-c", "echo hi"}));
  EXPECT_EQ(j.image, "busybox");
  expect_pos(j.image_pos, 1, 1);
  EXPECT_TRUE(j.env.empty());
  EXPECT_FALSE(j.workdir || j.workspace || j.timeout || j.user);
  EXPECT_FALSE(j.limits.memory || j.limits.cpus || j.limits.pids);
  EXPECT_TRUE(j.volumes.empty());
  EXPECT_EQ(j.network, Network::none);
  EXPECT_TRUE(j.init);
}

TEST(JobFileTest, CommandArrayIsTheArgv) {
  auto f = parse_ok(R"(
[jobs.hello]
command = ["echo", "hi there", ""]
)");
  ASSERT_EQ(f.jobs.size(), 1u);
  EXPECT_EQ(f.jobs[0].command, (Argv{"echo", "hi there", ""}));
}

TEST(JobFileTest, EveryKeyIsParsed) {
  auto f = parse_ok(R"(
[jobs.all]
image = "alpine:3.19"
run = "make test"
env = { A = "1" }
workdir = "/src"
workspace = "."
volumes = ["./cache:/cache:ro", "/data:/data"]
timeout = "1h30m"
memory = "512MiB"
cpus = 1.5
pids = 1024
user = "1000:1000"
network = "host"
init = false
)");
  ASSERT_EQ(f.jobs.size(), 1u);
  const JobSpec& j = f.jobs[0];
  EXPECT_EQ(j.image, "alpine:3.19");
  expect_pos(j.image_pos, 2, 9);
  EXPECT_EQ(j.env, (Env{{"A", "1"}}));
  EXPECT_EQ(j.workdir, "/src");
  EXPECT_EQ(j.workspace, "/repo");
  ASSERT_EQ(j.volumes.size(), 2u);
  EXPECT_EQ(j.volumes[0].source, "/repo/cache");
  EXPECT_EQ(j.volumes[0].target, "/cache");
  EXPECT_TRUE(j.volumes[0].readonly);
  EXPECT_EQ(j.volumes[1].source, "/data");
  EXPECT_FALSE(j.volumes[1].readonly);
  EXPECT_EQ(j.timeout, milliseconds(5'400'000));
  EXPECT_EQ(j.limits.memory, 512u << 20);
  EXPECT_EQ(j.limits.cpus, 1.5);
  EXPECT_EQ(j.limits.pids, 1024u);
  EXPECT_EQ(j.user, "1000:1000");
  EXPECT_EQ(j.network, Network::host);
  EXPECT_FALSE(j.init);
}

TEST(JobFileTest, NumbersAndStringsAreAcceptedWhereDocumented) {
  auto f = parse_ok(R"(
[jobs.a]
run = "x"
memory = 8388608
cpus = "0.5"
[jobs.b]
run = "x"
cpus = 2
)");
  ASSERT_EQ(f.jobs.size(), 2u);
  EXPECT_EQ(f.jobs[0].limits.memory, 8u << 20);
  EXPECT_EQ(f.jobs[0].limits.cpus, 0.5);
  EXPECT_EQ(f.jobs[1].limits.cpus, 2.0);
}

TEST(JobFileTest, JobsKeepFileOrderWhateverTheirSyntax) {
  auto f = parse_ok(R"(
[jobs.zeta]
run = "1"
[jobs.alpha]
run = "2"
[jobs]
mid = { run = "3" }
dotted.run = "4"
[jobs."b.c"]
run = "5"
)");
  ASSERT_EQ(f.jobs.size(), 5u);
  EXPECT_EQ(f.jobs[0].name, "zeta");
  EXPECT_EQ(f.jobs[1].name, "alpha");
  EXPECT_EQ(f.jobs[2].name, "mid");
  EXPECT_EQ(f.jobs[3].name, "dotted");
  EXPECT_EQ(f.jobs[4].name, "b.c");
  expect_pos(f.jobs[0].pos, 1, 1);
  expect_pos(f.jobs[2].pos, 6, 1);  // an inline job is placed at its name
  expect_pos(f.jobs[3].pos, 7, 1);
  expect_pos(f.jobs[4].pos, 8, 1);
}

TEST(JobFileTest, DefaultsAreInheritedAndOverridden) {
  auto f = parse_ok(R"(
[defaults]
image = "alpine"
timeout = "10m"
volumes = ["/a:/a"]

[jobs.one]
run = "true"

[jobs.two]
run = "true"
image = "debian"
timeout = "90s"
volumes = ["/b:/b"]
)");
  ASSERT_EQ(f.jobs.size(), 2u);
  const JobSpec& one = f.jobs[0];
  const JobSpec& two = f.jobs[1];
  EXPECT_EQ(one.image, "alpine");
  expect_pos(one.image_pos, 2, 9);
  EXPECT_EQ(one.timeout, milliseconds(600'000));
  expect_pos(one.where("timeout"), 3, 11);
  ASSERT_EQ(one.volumes.size(), 1u);
  EXPECT_EQ(one.volumes[0].target, "/a");
  EXPECT_EQ(two.image, "debian");
  expect_pos(two.image_pos, 11, 9);
  EXPECT_EQ(two.timeout, milliseconds(90'000));
  expect_pos(two.where("timeout"), 12, 11);
  ASSERT_EQ(two.volumes.size(), 1u);  // a job's volumes replace the defaults'
  EXPECT_EQ(two.volumes[0].target, "/b");
}

TEST(JobFileTest, DefaultsMayComeAfterTheJobs) {
  auto f = parse_ok(R"(
[jobs.one]
run = "true"
[defaults]
image = "alpine"
)");
  ASSERT_EQ(f.jobs.size(), 1u);
  EXPECT_EQ(f.jobs[0].image, "alpine");
}

TEST(JobFileTest, EnvMergesDefaultsFirstInFileOrderThenTheJobsNewKeys) {
  auto f = parse_ok(R"(
[defaults]
env = { ZED = "z", CI = "true", ALPHA = "a" }

[jobs.unit]
run = "true"
env = { NEW = "n", CI = "false", AAA = "x" }

[jobs.plain]
run = "true"
)");
  ASSERT_EQ(f.jobs.size(), 2u);
  EXPECT_EQ(f.jobs[0].env,
            (Env{{"ZED", "z"}, {"CI", "false"}, {"ALPHA", "a"}, {"NEW", "n"}, {"AAA", "x"}}));
  expect_pos(f.jobs[0].where("env"), 6, 7);
  EXPECT_EQ(f.jobs[1].env, (Env{{"ZED", "z"}, {"CI", "true"}, {"ALPHA", "a"}}));
  expect_pos(f.jobs[1].where("env"), 2, 7);
}

TEST(JobFileTest, EnvValuesOfOtherScalarTypesBecomeText) {
  auto f = parse_ok(R"(
[jobs.unit]
run = "true"
[jobs.unit.env]
INT = 1
FLOAT = 1.5
BOOL = true
OFF = false
EMPTY = ""
)");
  ASSERT_EQ(f.jobs.size(), 1u);
  EXPECT_EQ(f.jobs[0].env,
            (Env{{"INT", "1"}, {"FLOAT", "1.5"}, {"BOOL", "true"}, {"OFF", "false"}, {"EMPTY", ""}}));
}

TEST(JobFileTest, RelativeHostPathsResolveAgainstTheBaseDir) {
  auto r = parse_job_file(doc(R"(
[jobs.unit]
run = "true"
workspace = "./src/../app"
volumes = ["cache:/cache", "../shared:/shared:rw", "/abs:/abs/./sub/"]
)"), "ci/jobs.toml", "/home/u/repo/ci");
  ASSERT_TRUE(r.ok()) << r.error().message();
  const JobSpec& j = r->jobs[0];
  EXPECT_EQ(r->dir, "/home/u/repo/ci");
  EXPECT_EQ(j.workspace, "/home/u/repo/ci/app");
  ASSERT_EQ(j.volumes.size(), 3u);
  EXPECT_EQ(j.volumes[0].source, "/home/u/repo/ci/cache");
  EXPECT_EQ(j.volumes[1].source, "/home/u/repo/shared");
  EXPECT_EQ(j.volumes[2].source, "/abs");
  EXPECT_EQ(j.volumes[2].target, "/abs/sub");
}

TEST(JobFileTest, KeyPosRecordsWhereEachValueWasWritten) {
  auto f = parse_ok(R"(
[defaults]
memory = "64MiB"
[jobs.unit]
run = "true"
  workspace = "."
)");
  ASSERT_EQ(f.jobs.size(), 1u);
  const JobSpec& j = f.jobs[0];
  expect_pos(j.pos, 3, 1);
  expect_pos(j.where("memory"), 2, 10);  // inherited: the defaults' position
  expect_pos(j.where("run"), 4, 7);
  expect_pos(j.where("workspace"), 5, 15);
  expect_pos(j.where("user"), 3, 1);  // not set: the job's header
  EXPECT_EQ(j.key_pos.size(), 3u);
}

TEST(JobFileTest, LoadReadsTheFileAndUsesItsDirectory) {
  sandrun::testing::TempDir tmp;
  sandrun::testing::write_file(tmp / "jobs.toml", "[jobs.unit]\nrun = \"true\"\nworkspace = \"w\"\n");
  auto r = load_job_file(tmp / "jobs.toml");
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->path, tmp / "jobs.toml");
  EXPECT_EQ(r->dir, tmp.path());
  ASSERT_EQ(r->jobs.size(), 1u);
  EXPECT_EQ(r->jobs[0].workspace, tmp / "w");
  EXPECT_EQ(r->jobs[0].pos.str(), tmp / "jobs.toml:1:1");
}

// --- errors ---

TEST(JobFileTest, MissingFileIsAnErrnoError) {
  sandrun::testing::TempDir tmp;
  std::string path = tmp / "jobs.toml";
  auto r = load_job_file(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ENOENT);
  EXPECT_EQ(r.error().message(), "cannot read job file " + path + ": No such file or directory");
}

TEST(JobFileTest, SyntaxErrorNamesThePositionAndTomlsDescription) {
  EXPECT_EQ(parse_err("[jobs.unit]\nrun = \n"),
            "jobs.toml:2:7: invalid TOML: Error while parsing key-value pair: expected value, saw '\\n'");
  EXPECT_EQ(parse_err("[jobs.unit]\nrun = \"a\"\nrun = \"b\"\n"),
            "jobs.toml:3:7: invalid TOML: Error while parsing key-value pair: cannot redefine "
            "existing string 'run'");
}

TEST(JobFileTest, UnknownJobKeyListsTheKeysAndSuggestsACloseOne) {
  const std::string keys =
      "image, run, command, env, workdir, workspace, volumes, timeout, memory, cpus, cpuset, "
      "pids, nofile, disk, disk_inodes, log_max, user, network, ports, services, init, pull, seccomp, cap_add, cap_drop, "
      "no_new_privs, read_only_rootfs, userns, needs, matrix, retries, allow_failure, caches, artifacts, "
      "artifacts_archive, artifacts_when, artifacts_max_size, artifacts_max_files, junit";
  EXPECT_EQ(job_err(R"(imgae = "busybox")"),
            R"(jobs.toml:2:1: jobs.unit: unknown key "imgae" (did you mean "image"?); expected one of: )" + keys);
  EXPECT_EQ(job_err(R"(colour = "red")"),
            R"(jobs.toml:2:1: jobs.unit: unknown key "colour"; expected one of: )" + keys);
}

TEST(JobFileTest, UnknownDefaultsKeyListsTheDefaultsKeys) {
  EXPECT_EQ(parse_err(R"(
[defaults]
timout = "1m"
[jobs.unit]
run = "true"
)"),
            R"(jobs.toml:2:1: defaults: unknown key "timout" (did you mean "timeout"?); expected one )"
            "of: image, env, workdir, workspace, volumes, timeout, memory, cpus, cpuset, pids, "
            "nofile, disk, disk_inodes, log_max, user, network, init, pull, seccomp, cap_add, cap_drop, no_new_privs, "
            "read_only_rootfs, userns, retries, allow_failure, caches, artifacts, artifacts_archive, "
            "artifacts_when, artifacts_max_size, artifacts_max_files, junit");
}

TEST(JobFileTest, CommandsCannotBeDefaults) {
  EXPECT_EQ(parse_err("[defaults]\nrun = \"make\"\n[jobs.unit]\nrun = \"true\"\n"),
            "jobs.toml:2:1: defaults.run: not allowed in [defaults]; set run or command in each "
            "[jobs.NAME]");
  EXPECT_EQ(parse_err("[defaults]\ncommand = [\"make\"]\n"),
            "jobs.toml:2:1: defaults.command: not allowed in [defaults]; set run or command in "
            "each [jobs.NAME]");
}

TEST(JobFileTest, UnknownTopLevelKey) {
  EXPECT_EQ(parse_err("[jbos.unit]\nrun = \"true\"\n"),
            R"(jobs.toml:1:2: unknown key "jbos" (did you mean "jobs"?); expected "defaults", "jobs", "cache" or "fail_fast")");
  EXPECT_EQ(parse_err("name = \"ci\"\n"),
            R"(jobs.toml:1:1: unknown key "name"; expected "defaults", "jobs", "cache" or "fail_fast")");
}

TEST(JobFileTest, CacheMaxSizeIsASizeAndTheOnlyCacheKey) {
  auto f = parse_job_file("[cache]\nmax_size = \"20GiB\"\n[jobs.unit]\nrun = \"true\"\n", "jobs.toml", "/tmp");
  ASSERT_TRUE(f.ok()) << f.error().message();
  EXPECT_EQ(f->cache_max_size, std::optional<uint64_t>(20ull << 30));
  EXPECT_FALSE(parse_job_file("[jobs.unit]\nrun = \"true\"\n", "jobs.toml", "/tmp")->cache_max_size.has_value());
  EXPECT_EQ(parse_err("[cache]\nmax_size = 20\n[jobs.unit]\nrun = \"true\"\n"),
            R"(jobs.toml:2:12: cache.max_size: expected a size like "20GiB", got integer)");
  EXPECT_EQ(parse_err("[cache]\nmax_size = \"lots\"\n[jobs.unit]\nrun = \"true\"\n").rfind("jobs.toml:2:12: cache.max_size: ", 0), 0u);
  EXPECT_EQ(parse_err("[cache]\nmaxsize = \"1GiB\"\n[jobs.unit]\nrun = \"true\"\n"),
            R"(jobs.toml:2:1: cache: unknown key "maxsize"; expected "max_size")");
}

TEST(JobFileTest, WrongTypesNameTheExpectedFormAndTheActualType) {
  EXPECT_EQ(job_err("timeout = 10"),
            R"(jobs.toml:2:11: jobs.unit.timeout: expected a string like "90s", got integer)");
  EXPECT_EQ(job_err("image = 3.5"),
            R"(jobs.toml:2:9: jobs.unit.image: expected a string like "busybox" or "alpine:3.19", got float)");
  EXPECT_EQ(job_err("env = [\"A=1\"]"),
            R"(jobs.toml:2:7: jobs.unit.env: expected a table like { NAME = "value" }, got array)");
  EXPECT_EQ(job_err("workdir = 1979-05-27"),
            R"(jobs.toml:2:11: jobs.unit.workdir: expected a string (an absolute container path) like "/src", got date/time)");
  EXPECT_EQ(job_err("workspace = true"),
            R"(jobs.toml:2:13: jobs.unit.workspace: expected a string (a host directory) like "." or a table )"
            R"(like { path = ".", mode = "ro" }, got boolean)");
  EXPECT_EQ(job_err("volumes = \"/a:/a\""),
            R"(jobs.toml:2:11: jobs.unit.volumes: expected an array of strings like ["./cache:/cache:ro"], got string)");
  EXPECT_EQ(job_err("memory = 1.5"),
            R"(jobs.toml:2:10: jobs.unit.memory: expected a string like "512MiB" or an integer number of bytes, got float)");
  EXPECT_EQ(job_err("cpus = true"),
            R"(jobs.toml:2:8: jobs.unit.cpus: expected a number like 1.5 or a string like "1.5", got boolean)");
  EXPECT_EQ(job_err("pids = \"100\""),
            R"(jobs.toml:2:8: jobs.unit.pids: expected an integer like 1024, got string)");
  EXPECT_EQ(job_err("user = 1000"),
            R"(jobs.toml:2:8: jobs.unit.user: expected a string like "1000:1000" or "nobody", got integer)");
  EXPECT_EQ(job_err("network = false"),
            R"(jobs.toml:2:11: jobs.unit.network: expected a string, "none", "private" or "host", got boolean)");
  EXPECT_EQ(job_err("init = \"yes\""),
            R"(jobs.toml:2:8: jobs.unit.init: expected true or false, got string)");
  EXPECT_EQ(parse_err("[jobs.unit]\nrun = [\"make\"]\n"),
            R"(jobs.toml:2:7: jobs.unit.run: expected a string (a shell command; use command = [...] for an argv array), got array)");
  EXPECT_EQ(parse_err("[jobs.unit]\ncommand = \"make\"\n"),
            R"(jobs.toml:2:11: jobs.unit.command: expected an array of strings like ["make", "test"], got string)");
}

TEST(JobFileTest, BadValuesCarryTheValueSyntaxMessage) {
  EXPECT_EQ(job_err(R"(timeout = "ten")"),
            R"(jobs.toml:2:11: jobs.unit.timeout: invalid duration "ten": expected a number and a unit (ms, s, m, h) like "90s" or "10m")");
  EXPECT_EQ(job_err(R"(timeout = "0s")"),
            R"(jobs.toml:2:11: jobs.unit.timeout: invalid duration "0s": must be greater than 0)");
  EXPECT_EQ(job_err(R"(memory = "12XB")"),
            R"(jobs.toml:2:10: jobs.unit.memory: invalid size "12XB": expected a number and a unit (B, KiB, MiB, GiB, TiB) like "512MiB")");
  EXPECT_EQ(job_err(R"(memory = "4KiB")"),
            R"(jobs.toml:2:10: jobs.unit.memory: 4 KiB is below the minimum of 4 MiB)");
  EXPECT_EQ(job_err(R"(memory = 4096)"),
            R"(jobs.toml:2:10: jobs.unit.memory: 4 KiB is below the minimum of 4 MiB)");
  EXPECT_EQ(job_err(R"(memory = -1)"),
            R"(jobs.toml:2:10: jobs.unit.memory: -1 is below the minimum of 4 MiB)");
  EXPECT_EQ(job_err(R"(cpus = "abc")"),
            R"(jobs.toml:2:8: jobs.unit.cpus: invalid cpus "abc": expected a number of CPUs greater than 0, like 0.5 or 2)");
  EXPECT_EQ(job_err(R"(cpus = 0)"),
            R"(jobs.toml:2:8: jobs.unit.cpus: invalid cpus 0: expected a number of CPUs greater than 0, like 0.5 or 2)");
  EXPECT_EQ(job_err(R"(cpus = -0.5)"),
            R"(jobs.toml:2:8: jobs.unit.cpus: invalid cpus -0.5: expected a number of CPUs greater than 0, like 0.5 or 2)");
  EXPECT_EQ(job_err(R"(cpus = inf)"),
            R"(jobs.toml:2:8: jobs.unit.cpus: invalid cpus inf: expected a number of CPUs greater than 0, like 0.5 or 2)");
  EXPECT_EQ(job_err(R"(pids = 0)"), R"(jobs.toml:2:8: jobs.unit.pids: must be at least 1, got 0)");
  EXPECT_EQ(job_err(R"(network = "bridge")"),
            R"(jobs.toml:2:11: jobs.unit.network: invalid network "bridge": expected "none", "private" or "host")");
  EXPECT_EQ(job_err(R"(pull = "sometimes")"),
            R"(jobs.toml:2:8: jobs.unit.pull: invalid pull policy "sometimes": expected "never", "missing" or "always")");
  EXPECT_EQ(job_err(R"(pull = true)"),
            R"(jobs.toml:2:8: jobs.unit.pull: expected a string, "never", "missing" or "always", got boolean)");
  EXPECT_EQ(job_err(R"(workdir = "src")"),
            R"(jobs.toml:2:11: jobs.unit.workdir: container path "src" must be absolute)");
  EXPECT_EQ(job_err(R"(workdir = "")"), R"(jobs.toml:2:11: jobs.unit.workdir: is empty)");
  EXPECT_EQ(job_err(R"(workspace = "")"), R"(jobs.toml:2:13: jobs.unit.workspace: is empty)");
  EXPECT_EQ(job_err(R"(image = " ")"), R"(jobs.toml:2:9: jobs.unit.image: is empty)");
  EXPECT_EQ(job_err(R"(user = "")"), R"(jobs.toml:2:8: jobs.unit.user: is empty)");
  EXPECT_EQ(job_err(R"(user = "a:b:c")"),
            R"(jobs.toml:2:8: jobs.unit.user: invalid user "a:b:c": expected USER[:GROUP] like "1000:1000" or "nobody")");
  EXPECT_EQ(job_err(R"(user = "1000:")"),
            R"(jobs.toml:2:8: jobs.unit.user: invalid user "1000:": expected USER[:GROUP] like "1000:1000" or "nobody")");
  EXPECT_EQ(parse_ok("[jobs.unit]\nrun = \"x\"\nuser = \"nobody\"\n").jobs.at(0).user, "nobody");
}

TEST(JobFileTest, DefaultsValuesAreCheckedInTheirOwnScope) {
  EXPECT_EQ(parse_err("[defaults]\ntimeout = \"soon\"\n[jobs.unit]\nrun = \"true\"\n"),
            R"(jobs.toml:2:11: defaults.timeout: invalid duration "soon": expected a number and a unit (ms, s, m, h) like "90s" or "10m")");
  EXPECT_EQ(parse_err("defaults = 1\n[jobs.unit]\nrun = \"true\"\n"),
            "jobs.toml:1:12: defaults: expected a table like [defaults], got integer");
}

TEST(JobFileTest, VolumeErrorsNameTheElement) {
  EXPECT_EQ(job_err(R"(volumes = ["/a:/a", "a:b"])"),
            R"(jobs.toml:2:21: jobs.unit.volumes[1]: volume "a:b": container path "b" must be absolute)");
  EXPECT_EQ(job_err(R"(volumes = ["x"])"),
            R"(jobs.toml:2:12: jobs.unit.volumes[0]: invalid volume "x": expected HOST:CONTAINER[:ro|:rw])");
  EXPECT_EQ(job_err(R"(volumes = ["/a\u0000:/a"])"),
            R"(jobs.toml:2:12: jobs.unit.volumes[0]: must not contain a NUL character)");
  EXPECT_EQ(job_err(R"(volumes = [1])"),
            R"(jobs.toml:2:12: jobs.unit.volumes[0]: expected a string like "./cache:/cache:ro", got integer)");
  EXPECT_EQ(job_err(R"(volumes = ["/a:/c", "/b:/c/:ro"])"),
            R"(jobs.toml:2:21: jobs.unit.volumes[1]: container path "/c" is already used by volumes[0])");
}

TEST(JobFileTest, EnvErrorsNameTheVariable) {
  EXPECT_EQ(job_err(R"(env = { "A=B" = "1" })"),
            R"(jobs.toml:2:9: jobs.unit.env: invalid variable name "A=B": must not contain '=')");
  EXPECT_EQ(job_err(R"(env = { "" = "1" })"),
            R"(jobs.toml:2:9: jobs.unit.env: invalid variable name "": must not be empty)");
  EXPECT_EQ(job_err(R"(env = { A = [1] })"),
            R"(jobs.toml:2:13: jobs.unit.env.A: expected a string, number or boolean, got array)");
  EXPECT_EQ(job_err(R"(env = { "A B" = { x = 1 } })"),
            R"(jobs.toml:2:17: jobs.unit.env."A B": expected a string, number or boolean, got table)");
  EXPECT_EQ(job_err(R"(env = { A = "x\u0000y" })"),
            R"(jobs.toml:2:13: jobs.unit.env.A: must not contain a NUL character)");
}

TEST(JobFileTest, DuplicateJobHeaderIsNamed) {
  EXPECT_EQ(parse_err(R"(
[jobs.unit]
run = "a"

[jobs.lint]
run = "b"

[jobs.unit]
run = "c"
)"),
            R"(jobs.toml:7:1: duplicate job "unit": [jobs.unit] is already defined)");
}

TEST(JobFileTest, DuplicateJobAcrossTableAndInlineSyntaxIsNamed) {
  // inline first, header second
  EXPECT_EQ(parse_err("[jobs]\nunit = { run = \"a\" }\n\n[jobs.unit]\nrun = \"b\"\n"),
            R"(jobs.toml:4:1: duplicate job "unit": [jobs.unit] is already defined)");
  // header first, inline second
  EXPECT_EQ(parse_err("[jobs.unit]\nrun = \"a\"\n[jobs]\n  unit = { run = \"b\" }\n"),
            R"(jobs.toml:4:3: duplicate job "unit": [jobs.unit] is already defined)");
  // header first, dotted keys second
  EXPECT_EQ(parse_err("[jobs.unit]\nrun = \"a\"\n[jobs]\nunit.run = \"b\"\n"),
            R"(jobs.toml:4:1: duplicate job "unit": [jobs.unit] is already defined)");
  // dotted keys at the top level first, header second
  EXPECT_EQ(parse_err("jobs.unit.run = \"a\"\n[jobs.unit]\nrun = \"b\"\n"),
            R"(jobs.toml:2:1: duplicate job "unit": [jobs.unit] is already defined)");
  // inline first, then a sub-table of it
  EXPECT_EQ(parse_err("[jobs]\nunit = { run = \"a\" }\n[jobs.unit.env]\nA = \"1\"\n"),
            R"(jobs.toml:3:1: duplicate job "unit": [jobs.unit] is already defined)");
  // inline first, then a sub-table of it, at the end of the file and indented
  EXPECT_EQ(parse_err("[jobs]\nunit = { run = \"a\" }\n  [jobs.unit.env]"),
            R"(jobs.toml:3:3: duplicate job "unit": [jobs.unit] is already defined)");
  // inline first, then dotted keys into it
  EXPECT_EQ(parse_err("[jobs]\nunit = { run = \"a\" }\nunit.env.A = \"1\"\n"),
            R"(jobs.toml:3:1: duplicate job "unit": [jobs.unit] is already defined)");
  EXPECT_EQ(parse_err("jobs.unit = { run = \"a\" }\njobs.unit.image = \"x\"\n"),
            R"(jobs.toml:2:1: duplicate job "unit": [jobs.unit] is already defined)");
  // two inline definitions
  EXPECT_EQ(parse_err("jobs.unit = { run = \"a\" }\njobs.unit = { run = \"b\" }\n"),
            R"(jobs.toml:2:1: duplicate job "unit": [jobs.unit] is already defined)");
  // a name that needs quoting
  EXPECT_EQ(parse_err("[jobs.\"a.b\"]\nrun = \"a\"\n[jobs.\"a.b\"]\nrun = \"b\"\n"),
            R"(jobs.toml:3:1: duplicate job "a.b": [jobs."a.b"] is already defined)");
}

TEST(JobFileTest, RedefinitionsInsideAJobStayTomlErrors) {
  EXPECT_EQ(parse_err("[jobs.unit]\nrun = \"a\"\nenv.A = \"1\"\n[jobs.unit.env]\nB = \"2\"\n"),
            "jobs.toml:4:1: invalid TOML: Error while parsing table header: cannot redefine "
            "existing table 'jobs.unit.env'");
  EXPECT_EQ(parse_err("jobs.unit.run = \"a\"\njobs.unit.run = \"b\"\n"),
            "jobs.toml:2:17: invalid TOML: Error while parsing key-value pair: cannot redefine "
            "existing string 'jobs.unit.run'");
  EXPECT_EQ(parse_err("[jobs]\n[jobs]\n"),
            "jobs.toml:2:1: invalid TOML: Error while parsing table header: cannot redefine "
            "existing table 'jobs'");
}

TEST(JobFileTest, JobNeedsExactlyOneOfRunAndCommand) {
  EXPECT_EQ(parse_err("# unit tests\n\n[jobs.unit]\nimage = \"alpine\"\n"),
            R"(jobs.toml:3:1: jobs.unit: no command; set run = "..." (a shell string) or command = [...] (an argv array))");
  EXPECT_EQ(parse_err("[jobs.unit]\nrun = \"a\"\nimage = \"x\"\ncommand = [\"a\"]\n"),
            "jobs.toml:4:1: jobs.unit: set either run or command, not both");
  EXPECT_EQ(parse_err("[jobs.unit]\ncommand = [\"a\"]\nrun = \"a\"\n"),
            "jobs.toml:3:1: jobs.unit: set either run or command, not both");
}

TEST(JobFileTest, EmptyCommandsAreRefused) {
  EXPECT_EQ(parse_err("[jobs.unit]\n\n\nrun = \"\"\n"), "jobs.toml:4:7: jobs.unit.run: is empty");
  EXPECT_EQ(parse_err("[jobs.unit]\nrun = \"  \\n\\t\"\n"), "jobs.toml:2:7: jobs.unit.run: is empty");
  EXPECT_EQ(parse_err("[jobs.unit]\ncommand = []\n"), "jobs.toml:2:11: jobs.unit.command: is empty");
  EXPECT_EQ(parse_err("[jobs.unit]\ncommand = [\"a\", 1]\n"),
            "jobs.toml:2:17: jobs.unit.command[1]: expected a string, got integer");
  EXPECT_EQ(parse_err("[jobs.unit]\ncommand = [\"\", \"x\"]\n"),
            "jobs.toml:2:12: jobs.unit.command[0]: is empty");
  EXPECT_EQ(parse_err("[jobs.unit]\nrun = \"a\\u0000b\"\n"),
            "jobs.toml:2:7: jobs.unit.run: must not contain a NUL character");
}

TEST(JobFileTest, AFileWithoutJobsIsAnError) {
  const char* expected = R"(jobs.toml: no jobs; add a [jobs.NAME] table with a run = "..." command)";
  EXPECT_EQ(parse_err(""), expected);
  EXPECT_EQ(parse_err("# nothing\n[jobs]\n"), expected);
  EXPECT_EQ(parse_err("[defaults]\nimage = \"alpine\"\n"), expected);
}

TEST(JobFileTest, JobNamesAreChecked) {
  EXPECT_EQ(parse_err("# jobs\n\n[jobs.\"a b\"]\nrun = \"x\"\n"),
            R"(jobs.toml:3:1: invalid job name "a b": use letters, digits, '_', '-' and '.' (starting with a letter, digit or '_'), at most 63 characters)");
  std::string long_name(64, 'x');
  EXPECT_EQ(parse_err(fmt::format("[jobs]\n{} = {{ run = \"x\" }}\n", long_name)),
            fmt::format("jobs.toml:2:1: invalid job name \"{}\": use letters, digits, '_', '-' and "
                        "'.' (starting with a letter, digit or '_'), at most 63 characters",
                        long_name));
}

TEST(JobFileTest, JobsMustBeATableOfTables) {
  EXPECT_EQ(parse_err("[[jobs]]\nrun = \"x\"\n"),
            "jobs.toml:1:1: jobs: expected a table of jobs like [jobs.NAME], got array");
  EXPECT_EQ(parse_err("jobs = \"x\"\n"),
            "jobs.toml:1:8: jobs: expected a table of jobs like [jobs.NAME], got string");
  EXPECT_EQ(parse_err("[jobs]\nunit = \"make\"\n"),
            "jobs.toml:2:1: jobs.unit: expected a table like [jobs.unit], got string");
}

}  // namespace
}  // namespace sandrun::config
