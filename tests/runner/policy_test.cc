// The operator's host file (--config) through the sandrun binary: each [policy] key refuses what
// it forbids, through a job file and through `exec` flags, naming both lines, and the same job
// runs without a policy; host [defaults], ceilings, bad host files.
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tests/runner/cli_fixture.h"
#include "tests/runner/doctor_lines.h"

namespace sandrun::testing {
namespace {

using nlohmann::json;

class PolicyTest : public CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    // "Without a policy" means no --config and no host file at the default place.
    struct stat st;
    SANDRUN_REQUIRE(::stat("/etc/sandrun/sandrun.toml", &st) != 0,
                    "/etc/sandrun/sandrun.toml exists on this host: the tests need a host without a policy");
  }

  std::string policy(const std::string& toml) {
    const std::string path = tmp_ / "sandrun.toml";
    write_file(path, toml);
    return path;
  }
  CommandResult with(const std::string& config, std::vector<std::string> args) {
    args.insert(args.begin(), {"--config", config});
    return sandrun(args);
  }
  json spec(const CommandResult& r) {
    EXPECT_EQ(r.status, 0) << r.err;
    return json::parse(r.out, nullptr, false);
  }
};

// One policy key: the policy line that forbids, the job file line that asks, the exec flags that
// ask, and how the refusal reads.
struct Case {
  const char* name;
  std::string policy_line;  // after [policy]: line 2
  std::string job_line;     // after [jobs.a] and run: line 3
  std::vector<std::string> flags;
  std::string refusal;      // the message after "where: "
  std::string suffix = "";  // "[0]" for an element
  int element = 0;          // the column offset of the element from the value
  bool runs = true;         // allowed without a policy, it runs and passes
};

// The test's name in ctest's list, instead of the bytes of the struct.
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

std::string key_of(const std::string& line) { return line.substr(0, line.find(' ')); }
int value_column(const std::string& line) { return static_cast<int>(line.find('=')) + 3; }

class PolicyKeyTest : public PolicyTest, public ::testing::WithParamInterface<Case> {
 protected:
  void SetUp() override {
    PolicyTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    write_file(tmp_ / "allow.json", R"({"defaultAction": "SCMP_ACT_ALLOW"})");
  }
  std::string subst(std::string s) {
    for (size_t at; (at = s.find("@TMP")) != std::string::npos;) s.replace(at, 4, tmp_.path());
    return s;
  }
};

TEST_P(PolicyKeyTest, RefusedByAPolicyThroughTheJobFile) {
  const Case& c = GetParam();
  const std::string pol = policy("[policy]\n" + subst(c.policy_line) + "\n");
  const std::string job_line = subst(c.job_line);
  const std::string file = jobs("[jobs.a]\nrun = \"true\"\n" + job_line + "\n");
  auto r = with(pol, {"run", file, "--progress", "plain"});
  EXPECT_EQ(r.status, 2) << r.err;
  const std::string where = fmt::format("{}:3:{}: jobs.a.{}{}: ", file, value_column(job_line) + c.element,
                                        key_of(job_line), c.suffix);
  const std::string policy_at = fmt::format("({}:2:{}: {} = ", pol, value_column(c.policy_line), key_of(c.policy_line));
  EXPECT_EQ(r.err.rfind("sandrun: " + where + subst(c.refusal), 0), 0u) << r.err;
  EXPECT_NE(r.err.find(policy_at), std::string::npos) << r.err;
  EXPECT_EQ(log("a"), "");  // nothing ran
}

TEST_P(PolicyKeyTest, AllowedWithoutAPolicyThroughTheJobFile) {
  const Case& c = GetParam();
  const std::string file = jobs("[jobs.a]\nrun = \"true\"\n" + subst(c.job_line) + "\n");
  auto r = sandrun({"run", file, "--progress", "plain"});
  if (c.runs) {
    EXPECT_EQ(r.status, 0) << r.err;
  } else {
    EXPECT_EQ(r.err.find("policy"), std::string::npos) << r.err;
  }
  expect_nothing_left();
}

TEST_P(PolicyKeyTest, RefusedByAPolicyThroughExecFlags) {
  const Case& c = GetParam();
  const std::string pol = policy("[policy]\n" + subst(c.policy_line) + "\n");
  std::vector<std::string> args = {"exec"};
  for (const auto& f : c.flags) args.push_back(subst(f));
  args.insert(args.end(), {"--", "true"});
  auto r = with(pol, args);
  EXPECT_EQ(r.status, 125) << r.err;
  EXPECT_EQ(r.err.rfind("sandrun: exec: " + subst(c.flags.front()), 0), 0u) << r.err;
  EXPECT_NE(r.err.find(subst(c.refusal)), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(fmt::format("({}:2:{}: {} = ", pol, value_column(c.policy_line), key_of(c.policy_line))),
            std::string::npos)
      << r.err;
}

TEST_P(PolicyKeyTest, AllowedWithoutAPolicyThroughExecFlags) {
  const Case& c = GetParam();
  std::vector<std::string> args = {"exec"};
  for (const auto& f : c.flags) args.push_back(subst(f));
  args.insert(args.end(), {"--", "true"});
  auto r = sandrun(args);
  if (c.runs) {
    EXPECT_EQ(r.status, 0) << r.err;
  } else {
    EXPECT_EQ(r.err.find("policy"), std::string::npos) << r.err;
  }
  expect_nothing_left();
}

INSTANTIATE_TEST_SUITE_P(
    EachKey, PolicyKeyTest,
    ::testing::Values(
        Case{"bind_paths", "bind_paths = [\"/srv/ci-none\"]", "volumes = [\"/:/host:ro\"]", {"-v", "/:/host:ro"},
             "host path / is outside the policy's bind_paths", "[0]"},
        Case{"cap_add", "cap_add = [\"NET_ADMIN\"]", "cap_add = [\"SYS_ADMIN\"]", {"--cap-add", "SYS_ADMIN"},
             "capability CAP_SYS_ADMIN is not allowed by the policy", "[0]", 1},
        Case{"seccomp_unconfined", "seccomp_unconfined = false", "seccomp = \"unconfined\"",
             {"--security-opt", "seccomp=unconfined"}, "seccomp = \"unconfined\" is not allowed by the policy"},
        Case{"seccomp_profiles", "seccomp_profiles = false", "seccomp = \"@TMP/allow.json\"",
             {"--security-opt", "seccomp=@TMP/allow.json"},
             "a seccomp profile file (@TMP/allow.json) is not allowed by the policy"},
        Case{"network_host", "network_host = false", "network = \"host\"", {"--network", "host"},
             "network = \"host\" is not allowed by the policy"},
        Case{"no_new_privs_off", "no_new_privs_off = false", "no_new_privs = false",
             {"--security-opt", "no-new-privileges=false"}, "no_new_privs = false is not allowed by the policy"},
        Case{"userns_off", "userns_off = false", "userns = false", {"--userns=false"},
             "userns = false is not allowed by the policy"},
        Case{"max_memory", "max_memory = \"64MiB\"", "memory = \"128MiB\"", {"--memory", "128MiB"},
             "memory = 128 MiB is above the policy's max_memory"},
        Case{"max_cpus", "max_cpus = 0.5", "cpus = 1", {"--cpus", "1"}, "cpus = 1 is above the policy's max_cpus"},
        Case{"max_pids", "max_pids = 100", "pids = 200", {"--pids-limit", "200"},
             "pids = 200 is above the policy's max_pids"},
        Case{"max_nofile", "max_nofile = 512", "nofile = 1024", {"--ulimit", "nofile=1024"},
             "nofile hard limit 1024 is above the policy's max_nofile"},
        Case{"max_timeout", "max_timeout = \"1m\"", "timeout = \"2m\"", {"--timeout", "2m"},
             "timeout = \"2m\" is above the policy's max_timeout"},
        // Allowed without a policy, it is pulled: from a port nothing listens on, so the pull
        // fails, but not by a policy.
        Case{"registries", "registries = [\"127.0.0.1:5000\"]", "image = \"127.0.0.1:9/team/x:1\"",
             {"--image", "127.0.0.1:9/team/x:1"},
             "registry 127.0.0.1:9 of image \"127.0.0.1:9/team/x:1\" is not among the policy's registries", "", 0,
             false}),
    [](const ::testing::TestParamInfo<Case>& info) { return std::string(info.param.name); });

TEST_F(PolicyTest, AWorkspaceOutsideBindPathsIsRefusedFullyResolved) {
  const std::string pol = policy("[policy]\nbind_paths = [\"" + tmp_.path() + "/ok\"]\n");
  ASSERT_EQ(::mkdir((tmp_ / "ok").c_str(), 0755), 0);
  ASSERT_EQ(::mkdir((tmp_ / "ok/deep").c_str(), 0755), 0);
  // `..` climbing out of the checkout: the job file's directory is under ok/deep.
  const std::string up = jobs("[jobs.a]\nrun = \"true\"\nworkspace = \"../../../../../../../../../etc\"\n", "ok/deep/up.toml");
  auto r = with(pol, {"run", up});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err, fmt::format("sandrun: {}:3:13: jobs.a.workspace: host path /etc is outside the policy's bind_paths "
                               "({}:2:14: bind_paths = [\"{}/ok\"])\n",
                               up, pol, tmp_.path()));
  // A symlink in the allowed tree that points at /.
  ASSERT_EQ(::symlink("/", (tmp_ / "ok/root").c_str()), 0);
  const std::string link = jobs("[jobs.a]\nrun = \"true\"\nworkspace = \"root\"\n", "ok/link.toml");
  r = with(pol, {"run", link});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err, fmt::format("sandrun: {}:3:13: jobs.a.workspace: host path / (resolved from {}/ok/root) is outside "
                               "the policy's bind_paths ({}:2:14: bind_paths = [\"{}/ok\"])\n",
                               link, tmp_.path(), pol, tmp_.path()));
  // The same through a volume and through exec -v.
  const std::string vol = jobs("[jobs.a]\nrun = \"true\"\nvolumes = [\"root/etc:/x:ro\"]\n", "ok/vol.toml");
  r = with(pol, {"run", vol});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("jobs.a.volumes[0]: host path /etc (resolved from " + tmp_.path() + "/ok/root/etc) is outside"),
            std::string::npos)
      << r.err;
  r = with(pol, {"exec", "-v", tmp_.path() + "/ok/root:/host", "--", "true"});
  EXPECT_EQ(r.status, 125);
  EXPECT_EQ(r.err.rfind("sandrun: exec: -v " + tmp_.path() + "/ok/root:/host: host path / (resolved from", 0), 0u)
      << r.err;
  // What lies under a bind path is bound, as resolved.
  write_file(tmp_ / "ok/deep/data.txt", "inside\n");
  const std::string in = jobs("[jobs.a]\nrun = \"cat /workspace/data.txt /v/data.txt\"\nworkspace = \".\"\n"
                              "volumes = [\"../deep:/v:ro\"]\n",
                              "ok/deep/in.toml");
  r = with(pol, {"run", in, "--progress", "plain"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("[a] inside\n[a] inside\n"), std::string::npos) << r.out;
  expect_nothing_left();
}

TEST_F(PolicyTest, CapAddListsWhatMayBeAddedAndDefaultsMayAlwaysBeRestored) {
  const std::string pol = policy("[policy]\ncap_add = false\n");
  // Docker's default capabilities add nothing: restoring one after cap_drop is no escalation.
  auto r = with(pol, {"exec", "--cap-drop", "ALL", "--cap-add", "CHOWN", "--", "true"});
  EXPECT_EQ(r.status, 0) << r.err;
  r = with(pol, {"exec", "--cap-add", "ALL", "--", "true"});
  EXPECT_EQ(r.status, 125);
  EXPECT_EQ(r.err, fmt::format("sandrun: exec: --cap-add ALL: capability ALL is not allowed by the policy ({}:2:11: "
                               "cap_add = false)\n",
                               pol));
  const std::string allowed = policy("[policy]\ncap_add = [\"NET_ADMIN\"]\n");
  r = with(allowed, {"exec", "--cap-add", "net_admin", "--", "true"});
  EXPECT_EQ(r.status, 0) << r.err;
  const std::string all = policy("[policy]\ncap_add = true\n");
  r = with(all, {"exec", "--cap-add", "ALL", "--", "true"});
  EXPECT_EQ(r.status, 0) << r.err;
  expect_nothing_left();
}

TEST_F(PolicyTest, AServiceGoesThroughThePolicyToo) {
  const std::string pol = policy("[policy]\nbind_paths = [\"/srv/ci-none\"]\n");
  const std::string file = jobs(R"([jobs.a]
run = "true"
[jobs.a.services.db]
image = "busybox"
volumes = ["/:/host"]
)");
  auto r = with(pol, {"run", file});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find(file + ":5:11: jobs.db.volumes[0]: host path / is outside the policy's bind_paths"),
            std::string::npos)
      << r.err;
}

TEST_F(PolicyTest, HostDefaultsApplyToWhatAJobDoesNotSet) {
  const std::string pol = policy("[defaults]\nmemory = \"64MiB\"\npids = 300\ntimeout = \"1s\"\n");
  const std::string file = jobs("[jobs.a]\nrun = \"true\"\n[jobs.b]\nrun = \"true\"\nmemory = \"128MiB\"\ntimeout = \"5m\"\n");
  json s = spec(with(pol, {"run", file, "--print-spec"}));
  EXPECT_EQ(s["policy"], pol);
  EXPECT_EQ(s["jobs"][0]["limits"]["memory"], "64 MiB");
  EXPECT_EQ(s["jobs"][0]["limits"]["pids"], 300);
  EXPECT_EQ(s["jobs"][0]["timeout"], "1s");
  EXPECT_EQ(s["jobs"][1]["limits"]["memory"], "128 MiB");  // the job's own key wins
  EXPECT_EQ(s["jobs"][1]["timeout"], "5m");
  // The job file's [defaults] win over the host's.
  const std::string own = jobs("[defaults]\nmemory = \"96MiB\"\n[jobs.a]\nrun = \"true\"\n", "own.toml");
  s = spec(with(pol, {"run", own, "--print-spec"}));
  EXPECT_EQ(s["jobs"][0]["limits"]["memory"], "96 MiB");
  EXPECT_EQ(s["jobs"][0]["limits"]["pids"], 300);
  // And so do exec's flags.
  s = spec(with(pol, {"exec", "--dry-run", "--memory", "80MiB", "--", "true"}));
  EXPECT_EQ(s["jobs"][0]["limits"]["memory"], "80 MiB");
  EXPECT_EQ(s["jobs"][0]["timeout"], "1s");
  // The host's timeout is enforced.
  const std::string slow = jobs("[jobs.slow]\nrun = \"sleep 10\"\n", "slow.toml");
  auto r = with(pol, {"run", slow, "--progress", "plain"});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("killed: timed out after 1s"), std::string::npos) << r.out;
  // Without a host file: none of it.
  s = spec(sandrun({"run", file, "--print-spec"}));
  EXPECT_TRUE(s["policy"].is_null());
  EXPECT_TRUE(s["jobs"][0]["limits"]["memory"].is_null());
  EXPECT_EQ(s["jobs"][0]["limits"]["pids"], 1024);
  expect_nothing_left();
}

TEST_F(PolicyTest, CeilingsBecomeTheLimitsOfAJobThatSetsNone) {
  const std::string pol = policy("[policy]\nmax_memory = \"256MiB\"\nmax_pids = 100\nmax_timeout = \"5m\"\n");
  const std::string file = jobs("[jobs.a]\nrun = \"true\"\n[jobs.b]\nrun = \"true\"\nmemory = \"128MiB\"\npids = 50\n");
  json s = spec(with(pol, {"run", file, "--print-spec"}));
  EXPECT_EQ(s["jobs"][0]["limits"]["memory"], "256 MiB");
  EXPECT_EQ(s["jobs"][0]["limits"]["pids"], 100);
  EXPECT_EQ(s["jobs"][0]["timeout"], "5m");
  EXPECT_EQ(s["jobs"][1]["limits"]["memory"], "128 MiB");
  EXPECT_EQ(s["jobs"][1]["limits"]["pids"], 50);
}

TEST_F(PolicyTest, BadHostFilesAreRefusedWithFileAndLine) {
  const std::string file = jobs("[jobs.a]\nrun = \"true\"\n");
  const std::string typo = policy("[policy]\nnetwork_hots = false\n");
  auto r = with(typo, {"run", file});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err.rfind("sandrun: --config: " + typo + ":2:1: policy: unknown key \"network_hots\" (did you mean "
                                                        "\"network_host\"?)",
                        0),
            0u)
      << r.err;
  const std::string cap = policy("[policy]\ncap_add = [\"NET_ADMN\"]\n");
  r = with(cap, {"exec", "--", "true"});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err, "sandrun: " + cap + ":2:11: policy.cap_add: unknown capability \"NET_ADMN\" (did you mean "
                                       "CAP_NET_ADMIN?)\n");
  const std::string above = policy("[policy]\nmax_memory = \"1GiB\"\n[defaults]\nmemory = \"2GiB\"\n");
  r = with(above, {"run", file});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err, "sandrun: " + above + ":4:10: defaults.memory: memory = 2 GiB is above the policy's max_memory (" +
                       above + ":2:14: max_memory = \"1 GiB\")\n");
  const std::string toml = policy("[policy\n");
  r = with(toml, {"run", file});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err.rfind("sandrun: --config: " + toml + ":1:", 0), 0u) << r.err;
}

TEST_F(PolicyTest, AMissingConfigFileIsAnError) {
  const std::string file = jobs("[jobs.a]\nrun = \"true\"\n");
  auto r = with(tmp_ / "nope.toml", {"run", file});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err, "sandrun: --config: cannot read host file " + tmp_ / "nope.toml" + ": No such file or directory\n");
  r = with(tmp_ / "nope.toml", {"exec", "--", "true"});
  EXPECT_EQ(r.status, 2);
}

TEST_F(PolicyTest, DoctorSaysWhichHostFileIsInEffect) {
  auto r = sandrun({"doctor"});
  EXPECT_EQ(line_of(r.out, "policy").status, "ok") << r.out;
  EXPECT_EQ(line_of(r.out, "policy").detail,
            "no host file (/etc/sandrun/sandrun.toml does not exist): no policy, every documented job key is allowed");
  const std::string pol = policy("[policy]\nnetwork_host = false\nbind_paths = []\n[defaults]\ntimeout = \"1h\"\n");
  r = with(pol, {"doctor"});
  EXPECT_EQ(line_of(r.out, "policy").detail, pol + " (policy: bind_paths, network_host; defaults: timeout)") << r.out;
  const std::string bad = policy("[policy]\nnetwork_host = 1\n");
  r = with(bad, {"doctor"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(line_of(r.out, "policy").status, "missing") << r.out;
  EXPECT_EQ(line_of(r.out, "policy").detail,
            "--config: " + bad + ":2:16: policy.network_host: expected true or false, got integer");
}

}  // namespace
}  // namespace sandrun::testing
