// Tests of networks, published ports and services in the job file: what parses, and the exact
// errors users read.
#include <gtest/gtest.h>

#include "config/job_file.h"
#include "tests/config/parse_helpers.h"

namespace sandrun::config {
namespace {

using std::chrono::milliseconds;
using Argv = std::vector<std::string>;
using Env = std::vector<std::pair<std::string, std::string>>;

const char* const kServiceKeys =
    "image, run, command, env, workdir, volumes, memory, cpus, cpuset, pids, nofile, disk, disk_inodes, log_max, user, "
    "ports, ready, init, "
    "pull, seccomp, cap_add, cap_drop, no_new_privs, read_only_rootfs";

// --- networks and ports ---

TEST(NetworkTest, PrivateNetworkIsAccepted) {
  auto f = parse_ok("[jobs.t]\nrun = \"true\"\nnetwork = \"private\"\n");
  ASSERT_EQ(f.jobs.size(), 1u);
  EXPECT_EQ(f.jobs[0].network, Network::private_);
}

TEST(NetworkTest, PortsAreParsedWithTheirPositions) {
  auto f = parse_ok(R"(
[jobs.web]
run = "serve"
ports = ["8080:80", "127.0.0.1:0:5432", "[::1]:9000:9000/tcp"]
)");
  ASSERT_EQ(f.jobs.size(), 1u);
  const auto& ports = f.jobs[0].ports;
  ASSERT_EQ(ports.size(), 3u);
  EXPECT_EQ(ports[0].host_ip, "0.0.0.0");
  EXPECT_EQ(ports[0].host_port, 8080);
  EXPECT_EQ(ports[0].container_port, 80);
  expect_pos(ports[0].pos, 3, 10);
  EXPECT_EQ(ports[1].host_ip, "127.0.0.1");
  EXPECT_EQ(ports[1].host_port, 0);
  EXPECT_EQ(ports[1].text, "127.0.0.1:0:5432");
  expect_pos(ports[1].pos, 3, 21);
  EXPECT_EQ(ports[2].host_ip, "::1");
  expect_pos(f.jobs[0].where("ports"), 3, 9);
}

TEST(NetworkTest, PortErrorsNameTheElement) {
  EXPECT_EQ(job_err(R"(ports = ["8080:80", "8080:99999"])"),
            R"(jobs.toml:2:21: jobs.unit.ports[1]: invalid port "8080:99999": container port must be 1-65535)");
  EXPECT_EQ(job_err(R"(ports = ["53:53/udp"])"),
            R"(jobs.toml:2:10: jobs.unit.ports[0]: invalid port "53:53/udp": only TCP ports are published)");
  EXPECT_EQ(job_err(R"(ports = [8080])"),
            R"(jobs.toml:2:10: jobs.unit.ports[0]: expected a string like "8080:80", got integer)");
  EXPECT_EQ(job_err(R"(ports = "8080:80")"),
            R"(jobs.toml:2:9: jobs.unit.ports: expected an array of strings like ["8080:80", "127.0.0.1:0:5432"], got string)");
}

TEST(NetworkTest, TheSameHostPortTwiceIsRefused) {
  EXPECT_EQ(job_err(R"(ports = ["8080:80", "127.0.0.1:8080:81"])"),
            R"(jobs.toml:2:21: jobs.unit.ports[1]: host port 127.0.0.1:8080 is already published by )"
            R"(jobs.unit.ports[0] ("8080:80"))");
  EXPECT_EQ(job_err(R"(ports = ["[::1]:8080:80", "[0:0::1]:8080:81"])"),
            R"(jobs.toml:2:27: jobs.unit.ports[1]: host port [0:0::1]:8080 is already published by )"
            R"(jobs.unit.ports[0] ("[::1]:8080:80"))");
  // Port 0 twice is two free ports; two addresses of one port do not clash.
  auto f = parse_ok(R"(
[jobs.t]
run = "true"
ports = ["0:80", "81", "127.0.0.1:8080:82", "127.0.0.2:8080:83", "[::1]:8080:84"]
)");
  ASSERT_EQ(f.jobs.size(), 1u);
  EXPECT_EQ(f.jobs[0].ports.size(), 5u);
}

TEST(NetworkTest, PortsWithTheHostNetworkAreRefused) {
  EXPECT_EQ(parse_err("[jobs.t]\nrun = \"true\"\nnetwork = \"host\"\nports = [\"8080:80\"]\n"),
            R"(jobs.toml:4:9: jobs.t.ports: cannot publish ports with network = "host": nothing to forward, )"
            "the container is on the host's network");
  // Also when the network is inherited.
  EXPECT_EQ(parse_err("[defaults]\nnetwork = \"host\"\n[jobs.t]\nrun = \"true\"\nports = [\"80\"]\n"),
            R"(jobs.toml:5:9: jobs.t.ports: cannot publish ports with network = "host": nothing to forward, )"
            "the container is on the host's network");
}

TEST(NetworkTest, PortsAndServicesAreNotDefaults) {
  EXPECT_EQ(parse_err("[defaults]\nports = [\"80\"]\n[jobs.t]\nrun = \"true\"\n"),
            "jobs.toml:2:1: defaults.ports: not allowed in [defaults]; set ports in each [jobs.NAME] that "
            "uses it");
  EXPECT_EQ(parse_err("[defaults.services.redis]\nimage = \"redis\"\n[jobs.t]\nrun = \"true\"\n"),
            "jobs.toml:1:11: defaults.services: not allowed in [defaults]; set services in each [jobs.NAME] "
            "that uses it");
}

// --- services ---

TEST(ServicesTest, TheIssuesExampleParses) {
  auto f = parse_ok(R"(
[jobs.integration]
image = "127.0.0.1:5000/ci/python:3.11"
run = "pytest -q"
network = "private"

[jobs.integration.services.redis]
image = "127.0.0.1:5000/library/redis:7"
command = ["redis-server", "--save", ""]
ready = { run = "redis-cli ping", interval = "200ms", timeout = "20s" }
)");
  ASSERT_EQ(f.jobs.size(), 1u);
  const JobSpec& job = f.jobs[0];
  EXPECT_EQ(job.network, Network::private_);
  ASSERT_EQ(job.services.size(), 1u);
  const ServiceSpec& redis = job.services[0];
  EXPECT_EQ(redis.spec.name, "redis");
  EXPECT_EQ(redis.spec.base_name, "integration");
  EXPECT_EQ(redis.spec.image, "127.0.0.1:5000/library/redis:7");
  EXPECT_EQ(redis.spec.command, (Argv{"redis-server", "--save", ""}));
  EXPECT_EQ(redis.spec.network, Network::private_);
  expect_pos(redis.spec.pos, 6, 1);
  expect_pos(redis.spec.image_pos, 7, 9);
  ASSERT_TRUE(redis.ready);
  EXPECT_EQ(redis.ready->command, (Argv{"/bin/sh", "-c", "redis-cli ping"}));
  EXPECT_EQ(redis.ready->interval, milliseconds(200));
  EXPECT_EQ(redis.ready->timeout, milliseconds(20'000));
  expect_pos(redis.ready->pos, 9, 9);
}

TEST(ServicesTest, ServicesKeepTheOrderWrittenInEitherSyntax) {
  auto f = parse_ok(R"(
[jobs.t]
run = "true"
services = { zz = { image = "redis:7" }, aa = { image = "postgres:16", ports = ["5432"] } }

[jobs.u]
run = "true"
[jobs.u.services.web]
image = "nginx"
[jobs.u.services.db]
image = "postgres"
)");
  ASSERT_EQ(f.jobs.size(), 2u);
  ASSERT_EQ(f.jobs[0].services.size(), 2u);
  EXPECT_EQ(f.jobs[0].services[0].spec.name, "zz");
  EXPECT_EQ(f.jobs[0].services[1].spec.name, "aa");
  EXPECT_EQ(f.jobs[0].services[1].spec.ports.at(0).container_port, 5432);
  expect_pos(f.jobs[0].services[0].spec.pos, 3, 14);
  ASSERT_EQ(f.jobs[1].services.size(), 2u);
  EXPECT_EQ(f.jobs[1].services[0].spec.name, "web");
  EXPECT_EQ(f.jobs[1].services[1].spec.name, "db");
}

TEST(ServicesTest, AServiceTakesAContainersKeysAndNothingFromDefaults) {
  auto f = parse_ok(R"(
[defaults]
memory = "1GiB"
env = { CI = "1" }
pull = "never"

[jobs.t]
run = "true"

[jobs.t.services.db]
image = "postgres:16"
run = "postgres -D /data"
env = { POSTGRES_PASSWORD = "x" }
workdir = "/data"
user = "999:999"
memory = "256MiB"
cpus = 0.5
cpuset = "0"
pids = 100
nofile = 4096
ports = ["127.0.0.1:0:5432"]
pull = "always"
seccomp = "unconfined"
cap_add = ["NET_ADMIN"]
cap_drop = ["ALL"]
no_new_privs = false
read_only_rootfs = true
init = false
)");
  ASSERT_EQ(f.jobs.size(), 1u);
  const JobSpec& db = f.jobs[0].services.at(0).spec;
  EXPECT_EQ(db.command, (Argv{"/bin/sh", "-c", "postgres -D /data"}));
  EXPECT_EQ(db.env, (Env{{"POSTGRES_PASSWORD", "x"}}));
  EXPECT_EQ(db.workdir, "/data");
  EXPECT_EQ(db.user, "999:999");
  EXPECT_EQ(db.limits.memory, uint64_t{256} << 20);
  EXPECT_EQ(db.limits.cpus, 0.5);
  EXPECT_EQ(db.limits.cpuset, "0");
  EXPECT_EQ(db.limits.pids, 100u);
  EXPECT_EQ(db.nofile, (std::pair<uint64_t, uint64_t>(4096, 4096)));
  EXPECT_EQ(db.ports.at(0).host_ip, "127.0.0.1");
  EXPECT_EQ(db.pull, PullPolicy::always);
  EXPECT_EQ(db.seccomp, "unconfined");
  EXPECT_EQ(config::names_of(db.cap_add), (Argv{"NET_ADMIN"}));
  EXPECT_EQ(config::names_of(db.cap_drop), (Argv{"ALL"}));
  EXPECT_FALSE(db.no_new_privs);
  EXPECT_TRUE(db.read_only_rootfs);
  EXPECT_FALSE(db.init);
  EXPECT_FALSE(f.jobs[0].services[0].ready);
  expect_pos(db.where("memory"), 15, 10);

  // Without its own values, a service has the built-in ones, not [defaults]'.
  auto g = parse_ok(R"(
[defaults]
memory = "1GiB"
env = { CI = "1" }
pull = "never"
[jobs.t]
run = "true"
services.redis.image = "redis:7"
)");
  ASSERT_EQ(g.jobs.size(), 1u);
  const JobSpec& redis = g.jobs[0].services.at(0).spec;
  EXPECT_FALSE(redis.limits.memory);
  EXPECT_TRUE(redis.env.empty());
  EXPECT_EQ(redis.pull, PullPolicy::missing);
  EXPECT_TRUE(redis.command.empty());  // the image's own command
}

TEST(ServicesTest, ReadyDefaultsAndCommandForm) {
  auto f = parse_ok(R"(
[jobs.t]
run = "true"
[jobs.t.services.pg]
image = "postgres"
ready = { command = ["pg_isready", "-h", "localhost"] }
)");
  ASSERT_EQ(f.jobs.size(), 1u);
  const auto& ready = f.jobs[0].services.at(0).ready;
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->command, (Argv{"pg_isready", "-h", "localhost"}));
  EXPECT_EQ(ready->interval, milliseconds(1000));
  EXPECT_EQ(ready->timeout, milliseconds(60'000));
}

TEST(ServicesTest, UnknownServiceKeysListTheServiceKeys) {
  EXPECT_EQ(parse_err(R"(
[jobs.integration]
run = "true"
[jobs.integration.services.redis]
imgae = "redis"
)"),
            std::string(R"(jobs.toml:4:1: jobs.integration.services.redis: unknown key "imgae" (did you )"
                        R"(mean "image"?); expected one of: )") + kServiceKeys);
  EXPECT_EQ(parse_err(R"(
[jobs.integration]
run = "true"
[jobs.integration.services.redis]
image = "redis"
workspace = "."
)"),
            std::string(R"(jobs.toml:5:1: jobs.integration.services.redis: unknown key "workspace"; expected )"
                        R"(one of: )") + kServiceKeys);
}

TEST(ServicesTest, TimeoutAndNetworkBelongToTheJob) {
  EXPECT_EQ(parse_err("[jobs.t]\nrun = \"true\"\n[jobs.t.services.redis]\nimage = \"redis\"\ntimeout = \"1m\"\n"),
            "jobs.toml:5:1: jobs.t.services.redis.timeout: not allowed in a service: services run until the "
            "job ends; ready.timeout bounds how long one may take to get ready");
  EXPECT_EQ(parse_err("[jobs.t]\nrun = \"true\"\n[jobs.t.services.redis]\nimage = \"redis\"\nnetwork = \"host\"\n"),
            "jobs.toml:5:1: jobs.t.services.redis.network: not allowed in a service: services share the job's "
            "network namespace; set network on the job");
}

TEST(ServicesTest, ServiceValueErrorsPointIntoTheServiceTable) {
  EXPECT_EQ(parse_err("[jobs.t]\nrun = \"true\"\n[jobs.t.services.redis]\nimage = \"redis\"\nmemory = \"1KiB\"\n"),
            "jobs.toml:5:10: jobs.t.services.redis.memory: 1 KiB is below the minimum of 4 MiB");
  EXPECT_EQ(parse_err("[jobs.t]\nrun = \"true\"\n[jobs.t.services.redis]\nimage = \"redis\"\nports = [\"x\"]\n"),
            R"(jobs.toml:5:10: jobs.t.services.redis.ports[0]: invalid port "x": expected [IP:]HOST_PORT:)"
            R"(CONTAINER_PORT like "8080:80" or "127.0.0.1:0:5432", or a CONTAINER_PORT like "80")");
  EXPECT_EQ(parse_err("[jobs.t]\nrun = \"true\"\n[jobs.t.services.redis]\nimage = \"redis\"\nrun = \"a\"\n"
                      "command = [\"b\"]\n"),
            "jobs.toml:6:1: jobs.t.services.redis: set either run or command, not both");
}

TEST(ServicesTest, AServiceNeedsAnImage) {
  EXPECT_EQ(parse_err("[jobs.t]\nrun = \"true\"\n[jobs.t.services.redis]\nrun = \"redis-server\"\n"),
            "jobs.toml:3:1: jobs.t.services.redis: no image; set image = \"...\" (the service's image, like "
            "\"redis:7\")");
}

TEST(ServicesTest, ServiceNamesAreHostNames) {
  EXPECT_EQ(parse_err("[jobs.t]\nrun = \"true\"\n[jobs.t.services.my_db]\nimage = \"pg\"\n"),
            "jobs.toml:3:18: jobs.t.services: invalid service name \"my_db\": it becomes a host name: use "
            "letters, digits and '-' (starting with a letter or digit), at most 63 characters");
  EXPECT_EQ(parse_err("[jobs.t]\nrun = \"true\"\nservices = { -db = { image = \"pg\" } }\n"),
            "jobs.toml:3:14: jobs.t.services: invalid service name \"-db\": it becomes a host name: use "
            "letters, digits and '-' (starting with a letter or digit), at most 63 characters");
  EXPECT_EQ(parse_err("[jobs.t]\nrun = \"true\"\nservices = { " + std::string(64, 'a') + " = { image = \"pg\" } }\n"),
            "jobs.toml:3:14: jobs.t.services: invalid service name \"" + std::string(64, 'a') +
                "\": it becomes a host name: use letters, digits and '-' (starting with a letter or digit), "
                "at most 63 characters");
  EXPECT_EQ(parse_err("[jobs.t]\nrun = \"true\"\nservices = { localhost = { image = \"pg\" } }\n"),
            "jobs.toml:3:14: jobs.t.services: invalid service name \"localhost\": localhost is the job's own "
            "loopback");
  EXPECT_EQ(parse_err("[jobs.t]\nrun = \"true\"\nservices = { db = { image = \"pg\" }, DB = { image = \"pg\" } }\n"),
            "jobs.toml:3:37: jobs.t.services.DB: \"db\" and \"DB\" are the same host name");
  EXPECT_EQ(parse_err("[jobs.t]\nrun = \"true\"\nservices = { db = \"pg\" }\n"),
            "jobs.toml:3:14: jobs.t.services.db: expected a table like [jobs.t.services.db] with image = "
            "\"...\", got string");
  EXPECT_EQ(parse_err("[jobs.t]\nrun = \"true\"\nservices = [\"pg\"]\n"),
            "jobs.toml:3:12: jobs.t.services: expected a table of services like [jobs.t.services.redis], got "
            "array");
}

TEST(ServicesTest, ReadyErrorsPointIntoTheReadyTable) {
  auto err = [](std::string_view ready) {
    return parse_err(fmt::format("[jobs.integration]\nrun = \"true\"\n[jobs.integration.services.redis]\n"
                                 "image = \"redis\"\nready = {}\n", ready));
  };
  EXPECT_EQ(err(R"({ run = "redis-cli ping", interval = "often" })"),
            R"(jobs.toml:5:46: jobs.integration.services.redis.ready.interval: invalid duration "often": )"
            R"(expected a number and a unit (ms, s, m, h) like "90s" or "10m")");
  EXPECT_EQ(err(R"({ run = "redis-cli ping", intervall = "1s" })"),
            R"(jobs.toml:5:35: jobs.integration.services.redis.ready: unknown key "intervall" (did you mean )"
            R"("interval"?); expected one of: run, command, interval, timeout)");
  EXPECT_EQ(err(R"({ interval = "1s" })"),
            R"(jobs.toml:5:9: jobs.integration.services.redis.ready: no check; set run = "..." (a shell )"
            R"(command) or command = [...] (an argv array) that exits 0 once the service is ready)");
  EXPECT_EQ(err(R"({ run = "a", command = ["b"] })"),
            "jobs.toml:5:22: jobs.integration.services.redis.ready: set either run or command, not both");
  EXPECT_EQ(err(R"({ run = "a", interval = "30s", timeout = "20s" })"),
            "jobs.toml:5:33: jobs.integration.services.redis.ready.interval: the interval (30s) is longer "
            "than the timeout (20s)");
  EXPECT_EQ(err(R"({ run = "a", timeout = "500ms" })"),
            "jobs.toml:5:32: jobs.integration.services.redis.ready.timeout: the interval (1s) is longer "
            "than the timeout (500ms)");
  EXPECT_EQ(err(R"("redis-cli ping")"),
            R"(jobs.toml:5:9: jobs.integration.services.redis.ready: expected a table like )"
            R"({ run = "redis-cli ping", interval = "1s" }, got string)");
  EXPECT_EQ(err(R"({ run = "" })"), "jobs.toml:5:17: jobs.integration.services.redis.ready.run: is empty");
  // As its own table: positions are those of its lines.
  EXPECT_EQ(parse_err(R"(
[jobs.integration]
run = "true"
[jobs.integration.services.redis]
image = "redis"
[jobs.integration.services.redis.ready]
run = "redis-cli ping"
interval = "0s"
)"),
            R"(jobs.toml:7:12: jobs.integration.services.redis.ready.interval: invalid duration "0s": )"
            "must be greater than 0");
}

TEST(ServicesTest, HostNetworkRefusesServices) {
  EXPECT_EQ(parse_err("[jobs.t]\nrun = \"true\"\nnetwork = \"host\"\n[jobs.t.services.redis]\nimage = \"redis\"\n"),
            R"(jobs.toml:4:9: jobs.t.services: not allowed with network = "host": services share the job's )"
            R"(own network namespace; use network = "private" or "none")");
}

TEST(ServicesTest, AHostPortIsPublishedOncePerJobServicesIncluded) {
  EXPECT_EQ(parse_err(R"(
[jobs.web]
run = "true"
ports = ["8080:80"]
[jobs.web.services.api]
image = "api"
ports = ["127.0.0.1:8080:80"]
)"),
            R"(jobs.toml:6:10: jobs.web.services.api.ports[0]: host port 127.0.0.1:8080 is already published )"
            R"(by jobs.web.ports[0] ("8080:80"))");
  // The same container port in two jobs' services is the point: each job has its own namespace.
  auto f = parse_ok(R"(
[jobs.a]
run = "true"
services.redis = { image = "redis", ports = ["6379"] }
[jobs.b]
run = "true"
services.redis = { image = "redis", ports = ["6379"] }
)");
  EXPECT_EQ(f.jobs.size(), 2u);
}

TEST(ServicesTest, ServicesOfAMatrixJobAreExpandedWithIt) {
  auto f = parse_ok(R"(
[jobs.t]
run = "pytest"
matrix = { redis = ["6", "7"] }
[jobs.t.services.cache]
image = "redis:${{ matrix.redis }}"
command = ["redis-server", "--port", "63${{ matrix.redis }}9"]
env = { V = "${{ matrix.redis }}" }
ready = { run = "redis-cli -p 63${{matrix.redis}}9 ping" }
)");
  ASSERT_EQ(f.jobs.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    const std::string v = i == 0 ? "6" : "7";
    const ServiceSpec& cache = f.jobs[i].services.at(0);
    EXPECT_EQ(cache.spec.name, "cache");
    EXPECT_EQ(cache.spec.base_name, f.jobs[i].name);
    EXPECT_EQ(cache.spec.image, "redis:" + v);
    EXPECT_EQ(cache.spec.command, (Argv{"redis-server", "--port", "63" + v + "9"}));
    EXPECT_EQ(cache.spec.env, (Env{{"V", v}}));
    EXPECT_EQ(cache.ready->command, (Argv{"/bin/sh", "-c", "redis-cli -p 63" + v + "9 ping"}));
  }
  EXPECT_EQ(f.jobs[0].name, "t (redis=6)");
  EXPECT_EQ(parse_err(R"(
[jobs.t]
run = "true"
matrix = { v = ["1"] }
[jobs.t.services.cache]
image = "redis:${{ matrix.vv }}"
)"),
            R"(jobs.toml:5:9: jobs.t.services.cache.image: unknown matrix key "vv" in "${{ matrix.vv }}"; )"
            "the matrix has: v");
  EXPECT_EQ(parse_err("[jobs.t]\nrun = \"true\"\n[jobs.t.services.c]\nimage = \"r:${{ matrix.v }}\"\n"),
            R"(jobs.toml:4:9: jobs.t.services.c.image: "${{ matrix.v }}": the job has no matrix)");
}

}  // namespace
}  // namespace sandrun::config
