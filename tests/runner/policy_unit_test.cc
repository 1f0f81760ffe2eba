// The host file applied to jobs without running them (runner/engine/policy.h): registries,
// ceilings of unset limits, host defaults for services and rootless hosts, the host file's own
// consistency.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include "runner/engine/policy.h"

namespace sandrun::runner {
namespace {

config::HostConfig host(std::string_view text) {
  auto r = config::parse_host_config(text, "/etc/sandrun/sandrun.toml");
  EXPECT_TRUE(r.ok()) << r.error().message();
  return r.ok() ? r.take() : config::HostConfig{};
}

config::JobSpec job(std::string image = "busybox") {
  config::JobSpec j;
  j.name = "unit";
  j.image = std::move(image);
  j.image_pos = {"jobs.toml", 2, 9};
  return j;
}

TEST(PolicyUnitTest, WithoutAHostFileTheJobIsUnchanged) {
  config::JobSpec j = job();
  j.network = config::Network::host;
  auto r = apply_host_config(j, config::HostConfig{}, {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->network, config::Network::host);
  EXPECT_FALSE(r->timeout);
  EXPECT_TRUE(r->key_pos.empty());
}

TEST(PolicyUnitTest, RegistriesMatchHostAndPortOrAHostOnAnyPort) {
  const auto c = host("[policy]\nregistries = [\"127.0.0.1:5000\", \"Registry.Example.com\"]\n");
  EXPECT_TRUE(apply_host_config(job("127.0.0.1:5000/team/x:1"), c, {}).ok());
  EXPECT_TRUE(apply_host_config(job("registry.example.com/team/x:1"), c, {}).ok());
  EXPECT_TRUE(apply_host_config(job("registry.example.com:8443/team/x:1"), c, {}).ok());
  EXPECT_TRUE(apply_host_config(job("busybox"), c, {}).ok());  // the cache's own: no registry
  EXPECT_TRUE(apply_host_config(job("team/builder:1"), c, {}).ok());
  auto other_port = apply_host_config(job("127.0.0.1:5001/team/x:1"), c, {});
  ASSERT_FALSE(other_port.ok());
  EXPECT_EQ(other_port.error().message(),
            "jobs.toml:2:9: jobs.unit.image: registry 127.0.0.1:5001 of image \"127.0.0.1:5001/team/x:1\" is not among "
            "the policy's registries (/etc/sandrun/sandrun.toml:2:14: registries = [\"127.0.0.1:5000\", "
            "\"Registry.Example.com\"])");
  EXPECT_FALSE(apply_host_config(job("ghcr.io/team/x:1"), c, {}).ok());
}

TEST(PolicyUnitTest, CeilingsOfUnsetLimitsAndWhereTheyCameFrom) {
  const auto c = host("[policy]\nmax_cpus = 0.25\nmax_pids = 2000\nmax_timeout = \"1h\"\nmax_nofile = 64\n");
  auto r = apply_host_config(job(), c, {});
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->limits.cpus, 0.25);  // below the CPUs sandrun may use
  EXPECT_EQ(r->where("cpus").str(), "/etc/sandrun/sandrun.toml:2:12");
  EXPECT_FALSE(r->limits.pids);     // 2000 is above the default 1024, which stays
  EXPECT_EQ(r->timeout, std::chrono::hours(1));
  struct rlimit own;
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &own), 0);
  if (own.rlim_max > 64) {
    ASSERT_TRUE(r->nofile);
    EXPECT_EQ(r->nofile->second, 64u);
    EXPECT_LE(r->nofile->first, 64u);
  }
  // A CPU ceiling above what sandrun may use leaves cpus unset: the job cannot exceed it anyway.
  EXPECT_FALSE(apply_host_config(job(), host("[policy]\nmax_cpus = 100000\n"), {})->limits.cpus);
}

TEST(PolicyUnitTest, HostDefaultsFillOnlyWhatIsUnset) {
  const auto c = host("[defaults]\ntimeout = \"10m\"\nmemory = \"64MiB\"\npids = 300\n");
  config::JobSpec j = job();
  j.limits.memory = uint64_t{128} << 20;  // an exec flag: no key_pos, still the job's own
  auto r = apply_host_config(j, c, {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->limits.memory, uint64_t{128} << 20);
  EXPECT_EQ(r->limits.pids, 300u);
  EXPECT_EQ(r->where("pids").str(), "/etc/sandrun/sandrun.toml:4:8");
  EXPECT_EQ(r->timeout, std::chrono::minutes(10));
  // A service has no timeout; a host without cgroups takes no limit defaults.
  auto svc = apply_host_config(job(), c, {.cgroups = true, .service = true});
  EXPECT_FALSE(svc->timeout);
  EXPECT_EQ(svc->limits.pids, 300u);
  auto rootless = apply_host_config(job(), c, {.cgroups = false});
  EXPECT_FALSE(rootless->limits.memory);
  EXPECT_FALSE(rootless->limits.pids);
  EXPECT_EQ(rootless->timeout, std::chrono::minutes(10));
}

TEST(PolicyUnitTest, TheHostFileIsCheckedAgainstItself) {
  auto bad_cap = check_host_config(host("[policy]\ncap_add = [\"NET_ADMIN\", \"SYS_ADMN\"]\n"));
  ASSERT_FALSE(bad_cap.ok());
  EXPECT_EQ(bad_cap.error().message(),
            "/etc/sandrun/sandrun.toml:2:11: policy.cap_add: unknown capability \"SYS_ADMN\" (did you mean "
            "CAP_SYS_ADMIN?)");
  auto above = check_host_config(host("[policy]\nmax_timeout = \"1h\"\n[defaults]\ntimeout = \"2h\"\n"));
  ASSERT_FALSE(above.ok());
  EXPECT_EQ(above.error().message(),
            "/etc/sandrun/sandrun.toml:4:11: defaults.timeout: timeout = \"2h\" is above the policy's max_timeout "
            "(/etc/sandrun/sandrun.toml:2:15: max_timeout = \"1h\")");
  EXPECT_TRUE(check_host_config(host("[policy]\ncap_add = true\nmax_memory = \"1GiB\"\n[defaults]\nmemory = \"1GiB\"\n")).ok());
  EXPECT_EQ(policy_summary(host("[policy]\nnetwork_host = false\n")), "policy: network_host; defaults: none");
}

}  // namespace
}  // namespace sandrun::runner
