// Tests of the CI keys of the job file: needs, matrix, retries, workspace, caches, artifacts, junit.
#include <gtest/gtest.h>

#include "config/job_file.h"
#include "tests/config/parse_helpers.h"

namespace sandrun::config {
namespace {

using Env = std::vector<std::pair<std::string, std::string>>;
using Argv = std::vector<std::string>;
using Names = std::vector<std::string>;

Names names_of(const JobFile& f) {
  Names out;
  for (const JobSpec& j : f.jobs) out.push_back(j.name);
  return out;
}

// --- needs ---

TEST(NeedsTest, ADagOfSixJobsParsesWithItsNeeds) {
  auto f = parse_ok(R"(
[jobs.fetch]
run = "true"
[jobs.build]
needs = ["fetch"]
run = "make"
[jobs.unit]
needs = ["build"]
run = "true"
[jobs.lint]
needs = ["fetch"]
run = "true"
[jobs.integration]
needs = ["build", "unit"]
run = "true"
[jobs.package]
needs = ["integration", "lint"]
run = "true"
)");
  ASSERT_EQ(names_of(f), (Names{"fetch", "build", "unit", "lint", "integration", "package"}));
  EXPECT_TRUE(f.jobs[0].needs.empty());
  EXPECT_EQ(config::names_of(f.jobs[1].needs), (Names{"fetch"}));
  EXPECT_EQ(config::names_of(f.jobs[2].needs), (Names{"build"}));
  EXPECT_EQ(config::names_of(f.jobs[3].needs), (Names{"fetch"}));
  EXPECT_EQ(config::names_of(f.jobs[4].needs), (Names{"build", "unit"}));
  EXPECT_EQ(config::names_of(f.jobs[5].needs), (Names{"integration", "lint"}));
  ASSERT_EQ(f.jobs[4].needs.size(), 2u);
  expect_pos(f.jobs[4].needs[0].pos, 13, 10);
  expect_pos(f.jobs[4].needs[1].pos, 13, 19);
  EXPECT_EQ(f.jobs[4].base_name, "integration");
}

TEST(NeedsTest, ANeedOnAMatrixJobIsANeedOnEachCombination) {
  auto f = parse_ok(R"toml(
[jobs.build]
matrix = { cc = ["gcc", "clang"] }
run = "true"
[jobs.ship]
needs = ["build"]
run = "true"
[jobs.gcc_only]
needs = ["build (cc=gcc)"]
run = "true"
)toml");
  ASSERT_EQ(f.jobs.size(), 4u);
  EXPECT_EQ(config::names_of(f.jobs[2].needs), (Names{"build (cc=gcc)", "build (cc=clang)"}));
  ASSERT_EQ(f.jobs[2].needs.size(), 2u);
  expect_pos(f.jobs[2].needs[1].pos, 5, 10);
  EXPECT_EQ(config::names_of(f.jobs[3].needs), (Names{"build (cc=gcc)"}));
}

TEST(NeedsTest, AnUnknownNeedIsAnErrorAtItsElement) {
  EXPECT_EQ(parse_err(R"(
[jobs.build]
run = "make"
[jobs.test]
needs = ["build", "biuld"]
run = "true"
)"),
            R"(jobs.toml:4:19: jobs.test.needs[1]: unknown job "biuld" (did you mean "build"?))");
  EXPECT_EQ(parse_err(R"(
[jobs.build]
run = "make"
[jobs.test]
needs = ["deploy"]
run = "true"
)"),
            R"(jobs.toml:4:10: jobs.test.needs[0]: unknown job "deploy"; the jobs are: build, test)");
}

TEST(NeedsTest, AJobCannotNeedItself) {
  EXPECT_EQ(parse_err("[jobs.a]\nneeds = [\"a\"]\nrun = \"true\"\n"),
            "jobs.toml:2:10: jobs.a.needs[0]: a job cannot need itself");
}

TEST(NeedsTest, ACycleIsReportedAtTheNeedThatClosesIt) {
  EXPECT_EQ(parse_err(R"(
[jobs.a]
needs = ["b"]
run = "true"
[jobs.b]
needs = ["c"]
run = "true"
[jobs.c]
needs = ["a"]
run = "true"
)"),
            "jobs.toml:8:10: jobs.c.needs[0]: cycle: c -> a -> b -> c");
}

TEST(NeedsTest, ACycleThroughAMatrixJobNamesItsCombinations) {
  EXPECT_EQ(parse_err(R"(
[jobs.a]
matrix = { cc = ["gcc"] }
needs = ["b"]
run = "true"
[jobs.b]
needs = ["a"]
run = "true"
)"),
            "jobs.toml:6:10: jobs.b.needs[0]: cycle: b -> a (cc=gcc) -> b");
}

TEST(NeedsTest, AJobMayNeedOneWrittenAfterIt) {
  auto f = parse_ok("[jobs.test]\nneeds = [\"build\"]\nrun = \"true\"\n[jobs.build]\nrun = \"make\"\n");
  ASSERT_EQ(f.jobs.size(), 2u);
  EXPECT_EQ(config::names_of(f.jobs[0].needs), (Names{"build"}));
}

TEST(NeedsTest, NeedsMustBeAnArrayOfDistinctNames) {
  EXPECT_EQ(job_err(R"(needs = "build")"),
            R"(jobs.toml:2:9: jobs.unit.needs: expected an array of job names like ["build"], got string)");
  EXPECT_EQ(job_err(R"(needs = ["a", "a"])"),
            R"(jobs.toml:2:15: jobs.unit.needs[1]: "a" is already listed in needs[0])");
}

TEST(NeedsTest, NeedsAndMatrixAreNotDefaults) {
  EXPECT_EQ(parse_err("[defaults]\nneeds = [\"a\"]\n[jobs.a]\nrun = \"true\"\n"),
            "jobs.toml:2:1: defaults.needs: not allowed in [defaults]; set needs in each [jobs.NAME] "
            "that uses it");
  EXPECT_EQ(parse_err("[defaults]\nmatrix = { a = [1] }\n[jobs.a]\nrun = \"true\"\n"),
            "jobs.toml:2:1: defaults.matrix: not allowed in [defaults]; set matrix in each [jobs.NAME] "
            "that uses it");
}

// --- matrix ---

TEST(MatrixTest, TwoByThreeMinusOneExcludeIsFiveJobs) {
  auto f = parse_ok(R"(
[jobs.unit]
matrix = { cc = ["gcc", "clang"], opt = ["-O0", "-O2", "-O3"], exclude = [{ cc = "clang", opt = "-O0" }] }
run = "${{ matrix.cc }} ${{matrix.opt}} -c x.c"
env = { CC = "${{ matrix.cc }}", MATRIX_CC = "mine" }
image = "builder:${{ matrix.cc }}"
workdir = "/src/${{ matrix.cc }}"
)");
  EXPECT_EQ(names_of(f), (Names{"unit (cc=gcc, opt=-O0)", "unit (cc=gcc, opt=-O2)", "unit (cc=gcc, opt=-O3)",
                                "unit (cc=clang, opt=-O2)", "unit (cc=clang, opt=-O3)"}));
  ASSERT_EQ(f.jobs.size(), 5u);
  const JobSpec& j = f.jobs[3];
  EXPECT_EQ(j.base_name, "unit");
  EXPECT_EQ(j.matrix, (Env{{"cc", "clang"}, {"opt", "-O2"}}));
  EXPECT_EQ(j.command, (Argv{"/bin/sh", "-c", "clang -O2 -c x.c"}));
  EXPECT_EQ(j.env, (Env{{"CC", "clang"}, {"MATRIX_CC", "clang"}, {"MATRIX_OPT", "-O2"}}));
  EXPECT_EQ(j.image, "builder:clang");
  EXPECT_EQ(j.workdir, "/src/clang");
  expect_pos(j.pos, 1, 1);
  EXPECT_EQ(f.jobs[0].command, (Argv{"/bin/sh", "-c", "gcc -O0 -c x.c"}));
}

TEST(MatrixTest, ValuesOfOtherScalarTypesBecomeTextAndCommandElementsAreSubstituted) {
  auto f = parse_ok(R"(
[jobs.t]
matrix = { "py-version" = [3.12, 3], debug = [true] }
command = ["python${{ matrix.py-version }}", "--debug=${{ matrix.debug }}"]
)");
  ASSERT_EQ(f.jobs.size(), 2u);
  EXPECT_EQ(f.jobs[0].name, "t (py-version=3.12, debug=true)");
  EXPECT_EQ(f.jobs[1].command, (Argv{"python3", "--debug=true"}));
  EXPECT_EQ(f.jobs[1].env, (Env{{"MATRIX_PY_VERSION", "3"}, {"MATRIX_DEBUG", "true"}}));
}

// The example of GitHub's documentation of jobs.<id>.strategy.matrix.include.
TEST(MatrixTest, IncludeExtendsMatchingCombinationsOrAddsANewOne) {
  auto f = parse_ok(R"(
[jobs.t]
matrix = { fruit = ["apple", "pear"], animal = ["cat", "dog"], include = [{ color = "green" }, { color = "pink", animal = "cat" }, { fruit = "apple", shape = "circle" }, { fruit = "banana" }, { fruit = "banana", animal = "cat" }] }
run = "echo ${{ matrix.fruit }}"
)");
  EXPECT_EQ(names_of(f), (Names{"t (fruit=apple, animal=cat, color=pink, shape=circle)",
                                "t (fruit=apple, animal=dog, color=green, shape=circle)",
                                "t (fruit=pear, animal=cat, color=pink)", "t (fruit=pear, animal=dog, color=green)",
                                "t (fruit=banana)", "t (fruit=banana, animal=cat)"}));
}

TEST(MatrixTest, AnIncludeOnlyMatrixIsItsEntries) {
  auto f = parse_ok(R"(
[jobs.t]
matrix = { include = [{ os = "linux" }, { os = "musl", experimental = true }] }
run = "true"
)");
  EXPECT_EQ(names_of(f), (Names{"t (os=linux)", "t (os=musl, experimental=true)"}));
}

TEST(MatrixTest, ABaseNameKeepsTheNameRuleButCombinationsMayBeLonger) {
  std::string base(60, 'x');
  auto f = parse_ok("[jobs." + base + "]\nmatrix = { compiler = [\"gcc\"] }\nrun = \"true\"\n");
  ASSERT_EQ(f.jobs.size(), 1u);
  EXPECT_EQ(f.jobs[0].name, base + " (compiler=gcc)");
}

TEST(MatrixTest, BadMatricesAreRefusedAtTheirPosition) {
  EXPECT_EQ(job_err("matrix = [\"gcc\"]"),
            R"(jobs.toml:2:10: jobs.unit.matrix: expected a table like { cc = ["gcc", "clang"] }, got array)");
  EXPECT_EQ(job_err("matrix = { cc = [] }"),
            "jobs.toml:2:17: jobs.unit.matrix.cc: is empty; list at least one value");
  EXPECT_EQ(job_err("matrix = { cc = \"gcc\" }"),
            R"(jobs.toml:2:17: jobs.unit.matrix.cc: expected an array of values like ["gcc", "clang"], got string)");
  EXPECT_EQ(job_err("matrix = { cc = [\"gcc\", \"gcc\"] }"),
            R"(jobs.toml:2:25: jobs.unit.matrix.cc[1]: "gcc" is already listed in cc[0])");
  EXPECT_EQ(job_err("matrix = { cc = [[1]] }"),
            "jobs.toml:2:18: jobs.unit.matrix.cc[0]: expected a string, number or boolean, got array");
  EXPECT_EQ(job_err("matrix = { cc = [\"gcc\"], exclude = [{ cc = \"gcc\" }] }"),
            "jobs.toml:2:10: jobs.unit.matrix: expands to no jobs: exclude removes every combination");
  EXPECT_EQ(job_err("matrix = { cc = [1], CC = [2] }"),
            R"(jobs.toml:2:10: jobs.unit.matrix: keys "cc" and "CC" would both set MATRIX_CC)");
  EXPECT_EQ(job_err("matrix = {}"),
            R"(jobs.toml:2:10: jobs.unit.matrix: is empty; expected keys with lists of values like { cc = ["gcc", "clang"] })");
}

TEST(MatrixTest, ExcludeNamesMatrixKeysAndValues) {
  EXPECT_EQ(job_err(R"(matrix = { compiler = ["gcc", "clang"], exclude = [{ compilr = "gcc" }] })"),
            R"(jobs.toml:2:54: jobs.unit.matrix.exclude[0]: unknown matrix key "compilr" (did you mean "compiler"?); the matrix has: compiler)");
  EXPECT_EQ(job_err(R"(matrix = { compiler = ["gcc", "clang"], exclude = [{ compiler = "clagn" }] })"),
            R"(jobs.toml:2:54: jobs.unit.matrix.exclude[0].compiler: "clagn" is not a value of compiler (did you mean "clang"?); its values are: gcc, clang)");
  EXPECT_EQ(job_err(R"(matrix = { cc = ["gcc"], exclude = "x" })"),
            R"(jobs.toml:2:36: jobs.unit.matrix.exclude: expected an array of tables like [{ cc = "clang" }], got string)");
}

TEST(MatrixTest, AtMost256CombinationsPerJob) {
  std::string values = "[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17]";
  EXPECT_EQ(job_err("matrix = { a = " + values + ", b = " + values + " }"),
            "jobs.toml:2:10: jobs.unit.matrix: has more than 256 combinations; split the job");
  auto f = parse_ok("[jobs.unit]\nmatrix = { a = [" + std::string("1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16") +
                    "], b = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16] }\nrun = \"true\"\n");
  EXPECT_EQ(f.jobs.size(), 256u);
}

TEST(MatrixTest, SubstitutionErrorsNameTheValue) {
  EXPECT_EQ(parse_err(R"(
[jobs.unit]
matrix = { compiler = ["gcc"] }
run = "${{ matrix.compilr }} -c x.c"
)"),
            R"(jobs.toml:3:7: jobs.unit.run: unknown matrix key "compilr" in "${{ matrix.compilr }}" (did you mean "compiler"?); the matrix has: compiler)");
  EXPECT_EQ(parse_err(R"(
[jobs.unit]
run = "echo ${{ github.sha }}"
)"),
            R"(jobs.toml:2:7: jobs.unit.run: invalid substitution "${{ github.sha }}": expected ${{ matrix.NAME }})");
  EXPECT_EQ(parse_err(R"(
[jobs.unit]
command = ["echo", "${{ matrix.cc }}"]
)"),
            R"(jobs.toml:2:11: jobs.unit.command[1]: "${{ matrix.cc }}": the job has no matrix)");
  EXPECT_EQ(parse_err(R"(
[defaults]
env = { CC = "${{ matrix.cc }" }
[jobs.unit]
run = "true"
)"),
            R"(jobs.toml:2:7: defaults.env.CC (for jobs.unit): invalid substitution "${{ matrix.cc }": expected ${{ matrix.NAME }})");
}

// --- retries, failures, workspace, caches, artifacts, junit ---

TEST(CiKeysTest, RetriesAllowFailureAndFailFast) {
  auto f = parse_ok(R"(
fail_fast = true
[defaults]
retries = 2
[jobs.a]
run = "true"
allow_failure = true
[jobs.b]
run = "true"
retries = 0
)");
  EXPECT_TRUE(f.fail_fast);
  EXPECT_EQ(f.jobs[0].retries, 2u);
  EXPECT_TRUE(f.jobs[0].allow_failure);
  EXPECT_EQ(f.jobs[1].retries, 0u);
  EXPECT_FALSE(f.jobs[1].allow_failure);
  EXPECT_FALSE(parse_ok("[jobs.a]\nrun = \"true\"\n").fail_fast);
  EXPECT_EQ(job_err("retries = 11"), "jobs.toml:2:11: jobs.unit.retries: must be from 0 to 10, got 11");
  EXPECT_EQ(job_err("retries = \"2\""),
            "jobs.toml:2:11: jobs.unit.retries: expected an integer from 0 to 10, got string");
  EXPECT_EQ(job_err("allow_failure = 1"),
            "jobs.toml:2:17: jobs.unit.allow_failure: expected true or false, got integer");
  EXPECT_EQ(parse_err("fail_fast = \"yes\"\n[jobs.a]\nrun = \"true\"\n"),
            "jobs.toml:1:13: fail_fast: expected true or false, got string");
  EXPECT_EQ(parse_err("[defaults]\nfail_fast = true\n[jobs.a]\nrun = \"true\"\n"),
            "jobs.toml:2:1: defaults.fail_fast: not allowed in [defaults]; fail_fast is a top-level key "
            "(write it before the first [table])");
}

TEST(CiKeysTest, WorkspaceIsAStringOrATableWithAMode) {
  auto f = parse_ok(R"(
[defaults]
workspace = { path = "src", mode = "overlay" }
[jobs.a]
run = "true"
[jobs.b]
run = "true"
workspace = "."
[jobs.c]
run = "true"
workspace = { path = "/data" }
)");
  EXPECT_EQ(f.jobs[0].workspace, "/repo/src");
  EXPECT_EQ(f.jobs[0].workspace_mode, WorkspaceMode::overlay);
  EXPECT_EQ(f.jobs[1].workspace, "/repo");
  EXPECT_EQ(f.jobs[1].workspace_mode, WorkspaceMode::rw);
  EXPECT_EQ(f.jobs[2].workspace, "/data");
  EXPECT_EQ(f.jobs[2].workspace_mode, WorkspaceMode::rw);
  EXPECT_EQ(job_err(R"(workspace = { mode = "ro" })"),
            R"(jobs.toml:2:13: jobs.unit.workspace: no path; expected a table like { path = ".", mode = "overlay" })");
  EXPECT_EQ(job_err(R"(workspace = { path = ".", mode = "cow" })"),
            R"(jobs.toml:2:34: jobs.unit.workspace.mode: invalid mode "cow": expected "rw", "ro" or "overlay")");
  EXPECT_EQ(job_err(R"(workspace = { path = ".", ro = true })"),
            R"(jobs.toml:2:27: jobs.unit.workspace: unknown key "ro"; expected "path" or "mode")");
}

TEST(CiKeysTest, CachesAreContainerPathsListedOnce) {
  auto f = parse_ok("[jobs.a]\nrun = \"true\"\ncaches = [\"~/.cache/pip\", \"/ccache/\"]\n");
  EXPECT_EQ(f.jobs[0].caches, (Names{"~/.cache/pip", "/ccache"}));
  EXPECT_EQ(job_err(R"(caches = ["~/.cache/pip", "/ccache/", "/ccache"])"),
            R"(jobs.toml:2:39: jobs.unit.caches[2]: cache path "/ccache" is already listed in caches[1])");
  EXPECT_EQ(job_err(R"(caches = ["build"])"),
            R"(jobs.toml:2:11: jobs.unit.caches[0]: cache path "build" must be absolute or start with "~/")");
  EXPECT_EQ(job_err(R"(caches = ["/"])"),
            R"(jobs.toml:2:11: jobs.unit.caches[0]: cache path "/" must name a directory below /)");
  EXPECT_EQ(job_err(R"(caches = ["~/"])"),
            R"(jobs.toml:2:11: jobs.unit.caches[0]: cache path "~/" must name a directory below the home directory)");
  EXPECT_EQ(job_err(R"(caches = ["/a/../etc"])"),
            R"(jobs.toml:2:11: jobs.unit.caches[0]: cache path "/a/../etc" must not contain "..")");
}

TEST(CiKeysTest, ArtifactsAndJunitAreGlobs) {
  auto f = parse_ok(R"(
[defaults]
artifacts_max_size = "100MiB"
[jobs.a]
run = "true"
artifacts = ["build/*.log", "test-results/**/*.xml", "/tmp/x.txt"]
artifacts_archive = true
artifacts_when = "on_failure"
junit = "test-results/*.xml"
[jobs.b]
run = "true"
junit = ["a/*.xml", "b/*.xml"]
)");
  const Artifacts& a = f.jobs[0].artifacts;
  EXPECT_EQ(a.patterns, (Names{"build/*.log", "test-results/**/*.xml", "/tmp/x.txt"}));
  EXPECT_TRUE(a.archive);
  EXPECT_EQ(a.when, ArtifactsWhen::on_failure);
  EXPECT_EQ(a.max_size, 100u << 20);
  EXPECT_EQ(f.jobs[0].junit, (Names{"test-results/*.xml"}));
  EXPECT_EQ(f.jobs[1].junit, (Names{"a/*.xml", "b/*.xml"}));
  EXPECT_EQ(f.jobs[1].artifacts.when, ArtifactsWhen::always);
  EXPECT_FALSE(f.jobs[1].artifacts.archive);
  EXPECT_EQ(job_err(R"(artifacts = ["ok", "../up"])"),
            R"(jobs.toml:2:20: jobs.unit.artifacts[1]: "../up" must not contain "..")");
  EXPECT_EQ(job_err(R"(artifacts = [""])"), R"(jobs.toml:2:14: jobs.unit.artifacts[0]: is empty)");
  EXPECT_EQ(job_err(R"(artifacts_when = "sometimes")"),
            R"(jobs.toml:2:18: jobs.unit.artifacts_when: invalid value "sometimes": expected "always", "on_failure" or "on_success")");
  EXPECT_EQ(job_err(R"(artifacts_max_size = "0")"),
            "jobs.toml:2:22: jobs.unit.artifacts_max_size: must be greater than 0");
  EXPECT_EQ(job_err(R"(junit = "/abs/*.xml")"),
            R"(jobs.toml:2:9: jobs.unit.junit: "/abs/*.xml" must be relative (to the job's artifacts))");
  EXPECT_EQ(job_err(R"(junit = 1)"),
            R"(jobs.toml:2:9: jobs.unit.junit: expected a string like "test-results/*.xml" or an array of such strings, got integer)");
}

}  // namespace
}  // namespace sandrun::config
