// Tests of the operator's host file parser (config/host_config.h): [policy] and [defaults],
// their values with positions, and errors with file:line:column.
#include <gtest/gtest.h>

#include "config/host_config.h"
#include "tests/config/parse_helpers.h"

namespace sandrun::config {
namespace {

constexpr const char* kFile = "/etc/sandrun/sandrun.toml";

HostConfig host_ok(std::string_view text) {
  auto r = parse_host_config(doc(text), kFile);
  EXPECT_TRUE(r.ok()) << r.error().message();
  return r.ok() ? r.take() : HostConfig{};
}

std::string host_err(std::string_view text) {
  auto r = parse_host_config(doc(text), kFile);
  EXPECT_FALSE(r.ok());
  return r.ok() ? "(no error)" : r.error().message();
}

TEST(HostConfigTest, AnEmptyFileIsNoPolicyAndNoDefaults) {
  const HostConfig c = host_ok("");
  EXPECT_EQ(c.path, kFile);
  EXPECT_FALSE(c.policy.bind_paths);
  EXPECT_FALSE(c.policy.cap_add);
  EXPECT_FALSE(c.policy.network_host);
  EXPECT_FALSE(c.policy.max_memory);
  EXPECT_FALSE(c.policy.registries);
  EXPECT_FALSE(c.defaults.timeout);
  EXPECT_TRUE(c.defaults.key_pos.empty());
}

TEST(HostConfigTest, EveryPolicyKeyWithItsPosition) {
  const HostConfig c = host_ok(R"(
[policy]
bind_paths = ["/srv/ci/", "/home/runner/work/../work"]
cap_add = ["NET_ADMIN", "CAP_SYS_PTRACE"]
seccomp_unconfined = false
seccomp_profiles = false
network_host = false
no_new_privs_off = false
userns_off = true
max_memory = "8GiB"
max_cpus = 4
max_pids = 4096
max_nofile = 65536
max_timeout = "2h"
registries = ["127.0.0.1:5000", "ghcr.io"]
)");
  const Policy& p = c.policy;
  EXPECT_EQ(*p.bind_paths.value, (std::vector<std::string>{"/srv/ci", "/home/runner/work"}));  // normalised
  EXPECT_EQ(p.bind_paths.pos.str(), "/etc/sandrun/sandrun.toml:2:14");
  EXPECT_EQ(*p.cap_add.value, (std::vector<std::string>{"NET_ADMIN", "CAP_SYS_PTRACE"}));
  EXPECT_EQ(p.cap_add.pos.str(), "/etc/sandrun/sandrun.toml:3:11");
  EXPECT_EQ(p.seccomp_unconfined.value, false);
  EXPECT_EQ(p.seccomp_profiles.value, false);
  EXPECT_EQ(p.network_host.value, false);
  EXPECT_EQ(p.network_host.pos.str(), "/etc/sandrun/sandrun.toml:6:16");
  EXPECT_EQ(p.no_new_privs_off.value, false);
  EXPECT_EQ(p.userns_off.value, true);
  EXPECT_EQ(p.max_memory.value, uint64_t{8} << 30);
  EXPECT_EQ(p.max_cpus.value, 4.0);
  EXPECT_EQ(p.max_pids.value, 4096u);
  EXPECT_EQ(p.max_nofile.value, 65536u);
  EXPECT_EQ(p.max_timeout.value, std::chrono::hours(2));
  EXPECT_EQ(*p.registries.value, (std::vector<std::string>{"127.0.0.1:5000", "ghcr.io"}));
  EXPECT_EQ(p.registries.pos.str(), "/etc/sandrun/sandrun.toml:14:14");
}

TEST(HostConfigTest, TheImageCapsTakeSizesAndCounts) {
  const HostConfig c = host_ok(R"(
[policy]
max_image_bytes = "8GiB"
max_image_entries = 100000
max_layer_bytes = 1048576
max_layer_entries = 5000
)");
  const Policy& p = c.policy;
  EXPECT_EQ(p.max_image_bytes.value, uint64_t{8} << 30);
  EXPECT_EQ(p.max_image_bytes.pos.str(), "/etc/sandrun/sandrun.toml:2:19");
  EXPECT_EQ(p.max_image_entries.value, 100000u);
  EXPECT_EQ(p.max_layer_bytes.value, 1048576u);
  EXPECT_EQ(p.max_layer_entries.value, 5000u);
  EXPECT_EQ(host_err("[policy]\nmax_image_bytes = 0\n"),
            "/etc/sandrun/sandrun.toml:2:19: policy.max_image_bytes: must be at least 1 byte, got 0");
  EXPECT_EQ(host_err("[policy]\nmax_image_entries = -1\n"),
            "/etc/sandrun/sandrun.toml:2:21: policy.max_image_entries: must be at least 1, got -1");
  EXPECT_EQ(host_err("[policy]\nmax_layer_bytes = \"lots\"\n").rfind("/etc/sandrun/sandrun.toml:2:19: policy.max_layer_bytes: "
                                                                      "invalid size \"lots\"", 0), 0u);
}

TEST(HostConfigTest, CapAddTakesABoolean) {
  EXPECT_EQ(*host_ok("[policy]\ncap_add = false\n").policy.cap_add.value, std::vector<std::string>{});
  EXPECT_EQ(*host_ok("[policy]\ncap_add = true\n").policy.cap_add.value, std::vector<std::string>{"ALL"});
}

TEST(HostConfigTest, DefaultsTakeTheResourceKeysOfAJob) {
  const HostConfig c = host_ok(R"(
[defaults]
timeout = "30m"
memory = "2GiB"
cpus = 1.5
pids = 512
nofile = "1024:4096"
)");
  EXPECT_EQ(c.defaults.timeout, std::chrono::minutes(30));
  EXPECT_EQ(c.defaults.limits.memory, uint64_t{2} << 30);
  EXPECT_EQ(c.defaults.limits.cpus, 1.5);
  EXPECT_EQ(c.defaults.limits.pids, 512u);
  EXPECT_EQ(c.defaults.nofile, std::make_pair(uint64_t{1024}, uint64_t{4096}));
  EXPECT_EQ(c.defaults.where("memory").str(), "/etc/sandrun/sandrun.toml:3:10");
}

TEST(HostConfigTest, TheDiskLimitHasDefaultsAndCeilings) {
  const HostConfig c = host_ok("[defaults]\ndisk = \"2GiB\"\ndisk_inodes = 50000\n[policy]\nmax_disk = \"4GiB\"\n"
                               "max_disk_inodes = 100000\n");
  EXPECT_EQ(c.defaults.limits.disk, uint64_t{2} << 30);
  EXPECT_EQ(c.defaults.limits.disk_inodes, 50000u);
  EXPECT_EQ(c.defaults.where("disk").str(), "/etc/sandrun/sandrun.toml:2:8");
  EXPECT_EQ(c.policy.max_disk.value, uint64_t{4} << 30);
  EXPECT_EQ(c.policy.max_disk.pos.str(), "/etc/sandrun/sandrun.toml:5:12");
  EXPECT_EQ(c.policy.max_disk_inodes.value, 100000u);
  EXPECT_EQ(host_err("[policy]\nmax_disk = \"1MiB\"\n"),
            "/etc/sandrun/sandrun.toml:2:12: policy.max_disk: 1 MiB is below the minimum of 16 MiB");
  EXPECT_EQ(host_err("[defaults]\ndisk = 0\n"), "/etc/sandrun/sandrun.toml:2:8: defaults.disk: 0 B is below the minimum of 16 MiB");
  EXPECT_EQ(host_err("[defaults]\ndisk_inodes = 0\n"),
            "/etc/sandrun/sandrun.toml:2:15: defaults.disk_inodes: must be at least 1, got 0");
}

TEST(HostConfigTest, ErrorsNameFileLineAndKey) {
  EXPECT_EQ(host_err("[policy]\nbind_path = [\"/srv\"]\n"),
            "/etc/sandrun/sandrun.toml:2:1: policy: unknown key \"bind_path\" (did you mean \"bind_paths\"?); "
            "expected one of: bind_paths, cap_add, seccomp_unconfined, seccomp_profiles, network_host, "
            "no_new_privs_off, userns_off, max_memory, max_cpus, max_pids, max_nofile, max_timeout, max_disk, "
            "max_disk_inodes, max_log, max_job_file, registries, max_image_bytes, max_image_entries, max_layer_bytes, "
            "max_layer_entries");
  EXPECT_EQ(host_err("[policy]\nbind_paths = [\"srv/ci\"]\n"),
            "/etc/sandrun/sandrun.toml:2:15: policy.bind_paths[0]: host path \"srv/ci\" must be absolute");
  EXPECT_EQ(host_err("[policy]\nbind_paths = \"/srv\"\n"),
            "/etc/sandrun/sandrun.toml:2:14: policy.bind_paths: expected an array of strings like [\"/srv/ci\"], "
            "got string");
  EXPECT_EQ(host_err("[policy]\nnetwork_host = \"no\"\n"),
            "/etc/sandrun/sandrun.toml:2:16: policy.network_host: expected true or false, got string");
  EXPECT_EQ(host_err("[policy]\ncap_add = 1\n"),
            "/etc/sandrun/sandrun.toml:2:11: policy.cap_add: expected true, false or an array of strings like "
            "[\"NET_ADMIN\"], got integer");
  EXPECT_EQ(host_err("[policy]\nmax_memory = \"lots\"\n"),
            "/etc/sandrun/sandrun.toml:2:14: policy.max_memory: invalid size \"lots\": expected a number and a "
            "unit (B, KiB, MiB, GiB, TiB) like \"512MiB\"");
  EXPECT_EQ(host_err("[policy]\nmax_pids = 0\n"), "/etc/sandrun/sandrun.toml:2:12: policy.max_pids: must be at least 1, got 0");
  EXPECT_EQ(host_err("[policy]\nregistries = [\"ghcr.io/team\"]\n"),
            "/etc/sandrun/sandrun.toml:2:15: policy.registries[0]: \"ghcr.io/team\" is not a registry host: expected "
            "HOST or HOST:PORT, like \"ghcr.io\"");
  EXPECT_EQ(host_err("[defaults]\nimage = \"alpine\"\n"),
            "/etc/sandrun/sandrun.toml:2:1: defaults: unknown key \"image\"; expected one of: timeout, memory, cpus, "
            "pids, nofile, disk, disk_inodes, log_max, artifacts_max_size, artifacts_max_files");
  EXPECT_EQ(host_err("[defaults]\ntimout = \"1m\"\n"),
            "/etc/sandrun/sandrun.toml:2:1: defaults: unknown key \"timout\" (did you mean \"timeout\"?); expected "
            "one of: timeout, memory, cpus, pids, nofile, disk, disk_inodes, log_max, artifacts_max_size, "
            "artifacts_max_files");
  EXPECT_EQ(host_err("[defaults]\ntimeout = \"ten\"\n"),
            "/etc/sandrun/sandrun.toml:2:11: defaults.timeout: invalid duration \"ten\": expected a number and a unit "
            "(ms, s, m, h) like \"90s\" or \"10m\"");
  EXPECT_EQ(host_err("[polcy]\n"),
            "/etc/sandrun/sandrun.toml:1:2: unknown key \"polcy\" (did you mean \"policy\"?); expected \"policy\" or "
            "\"defaults\"");
  EXPECT_EQ(host_err("policy = 1\n"), "/etc/sandrun/sandrun.toml:1:10: policy: expected a table like [policy], got integer");
  EXPECT_EQ(host_err("[policy\n").rfind("/etc/sandrun/sandrun.toml:1:", 0), 0u);
}

TEST(HostConfigTest, AMissingFileIsAnErrorNamingIt) {
  auto r = load_host_config("/nonexistent/sandrun.toml");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().render(), "cannot read host file /nonexistent/sandrun.toml: No such file or directory");
}

// examples/sandrun.toml is the recommended policy of docs/security.md: it must parse and keep
// every relaxation off.
TEST(HostConfigTest, TheRecommendedPolicyParsesAndAllowsNoRelaxation) {
  auto r = load_host_config(SANDRUN_EXAMPLE_HOST_CONFIG);
  ASSERT_TRUE(r.ok()) << r.error().message();
  const Policy& p = r->policy;
  EXPECT_EQ(*p.cap_add.value, std::vector<std::string>{});
  for (const Rule<bool>* rule : {&p.seccomp_unconfined, &p.seccomp_profiles, &p.network_host, &p.no_new_privs_off,
                                 &p.userns_off}) {
    EXPECT_EQ(rule->value, false) << rule->pos.str();
  }
  EXPECT_TRUE(p.bind_paths && p.max_memory && p.max_cpus && p.max_pids && p.max_nofile && p.max_timeout && p.registries);
  EXPECT_TRUE(r->defaults.timeout && r->defaults.limits.memory);
}

}  // namespace
}  // namespace sandrun::config
