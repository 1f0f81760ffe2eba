// The daemon stopped and restarted under its containers (issue 16, scenario 5): SIGTERM and
// kill -9, with and without --live-restore, 20 containers, and a container's output through
// the gap. "Nothing left" is what sandrun made: mounts under the root, loop devices backing
// files there, the root's cgroup runs (dead runs' and live-restore ones), processes in them.
#include <dirent.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "tests/api/serve_fixture.h"
#include "tests/support/host_state.h"

namespace sandrun::testing {
namespace {

using nlohmann::json;

constexpr int kContainers = 20;

class ServeRestoreTest : public ServeTest {
 protected:
  void SetUp() override {
    ServeTest::SetUp();
    require_docker();
  }
  void TearDown() override {
    ServeTest::TearDown();
    // What a failed test left running (a live restore outlives its daemon): ended by cleanup.
    run_command({sandrun_bin(), "--root", root(), "cleanup"});
  }
  void kill_daemon() {
    daemon_->signal(SIGKILL);
    daemon_->finish();
    daemon_.reset();
  }
  // The cgroup directories of this root's live-restore containers, any hierarchy.
  std::vector<std::string> live_cgroup_runs() {
    const std::string prefix = "live-" + state_tag(root()) + "-";
    std::vector<std::string> bases = {"/sys/fs/cgroup/sandrun"};
    for (const auto& h : dir_entries("/sys/fs/cgroup")) bases.push_back("/sys/fs/cgroup/" + h + "/sandrun");
    std::vector<std::string> out;
    for (const auto& base : bases) {
      for (const auto& run : dir_entries(base)) {
        if (run.starts_with(prefix)) out.push_back(base + "/" + run);
      }
    }
    return out;
  }
  // Processes whose cgroup is one of this root's (a daemon's run "<pid>-<start>-<tag>", or a
  // live-restore container's "live-<tag>-...").
  std::vector<std::string> processes_in_our_cgroups() {
    const std::string tag = state_tag(root());
    std::vector<std::string> out;
    for (const auto& pid : dir_entries("/proc")) {
      if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
      std::ifstream f("/proc/" + pid + "/cgroup");
      std::string line;
      while (std::getline(f, line)) {
        if (line.find("/sandrun/") != std::string::npos &&
            (line.find("/sandrun/live-" + tag) != std::string::npos || line.find("-" + tag + "/") != std::string::npos)) {
          out.push_back(pid + ": " + line);
          break;
        }
      }
    }
    return out;
  }
  void expect_nothing_left(const std::string& when) {
    EXPECT_TRUE(mounts_under(root()).empty()) << when << ": mounts left under " << root();
    EXPECT_TRUE(loop_devices_under(root()).empty()) << when << ": loop devices left";
    EXPECT_TRUE(stale_cgroup_runs(state_tag(root())).empty()) << when << ": cgroups of dead runs left";
    EXPECT_TRUE(live_cgroup_runs().empty()) << when << ": live-restore cgroups left";
    const auto procs = processes_in_our_cgroups();
    EXPECT_TRUE(procs.empty()) << when << ": processes left: " << (procs.empty() ? "" : procs.front());
    for (const auto& slot : dir_entries(root() + "/slots")) {
      EXPECT_FALSE(slot_locked(root() + "/slots/" + slot)) << when << ": " << slot;
    }
  }
  void start_many(const std::string& marker) {
    for (int i = 0; i < kContainers; ++i) out_of({"run", "-d", "--name", "c" + std::to_string(i), "busybox", "sleep", marker});
    ASSERT_TRUE(eventually([&] { return count_processes(marker) == kContainers; }, kStartTimeout))
        << count_processes(marker) << " of " << kContainers << " run";
  }
  static int count_processes(const std::string& marker) {
    int n = 0;
    for (const auto& pid : dir_entries("/proc")) {
      if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
      std::ifstream f("/proc/" + pid + "/cmdline");
      std::string cmd((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
      if (cmd == std::string("sleep\0", 6) + marker + std::string("\0", 1)) ++n;
    }
    return n;
  }
  std::string states() { return out_of({"ps", "-a", "--format", "{{.Names}} {{.State}}"}); }
  static std::string all_named(const std::string& state) {
    std::vector<std::string> lines;
    for (int i = 0; i < kContainers; ++i) lines.push_back("c" + std::to_string(i) + " " + state);
    std::sort(lines.begin(), lines.end());
    std::string out;
    for (const auto& l : lines) out += l + "\n";
    return out;
  }
  static std::string sorted_lines(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    std::sort(lines.begin(), lines.end());
    std::string out;
    for (const auto& l : lines) out += l + "\n";
    return out;
  }
};

TEST_F(ServeRestoreTest, SigtermWithLiveRestoreLeavesContainersRunningAndTheNextDaemonAdoptsThem) {
  start({"--live-restore"});
  EXPECT_EQ(out_of({"info", "--format", "{{.LiveRestoreEnabled}}"}), "true\n");
  out_of({"run", "-d", "--name", "kept", "-p", "127.0.0.1::8080", "--health-cmd", "true", "--health-interval", "1s",
          "busybox", "sleep", "47311"});
  ASSERT_TRUE(eventually([] { return count_processes("47311") == 1; }, kStartTimeout));
  const std::string port = out_of({"port", "kept", "8080"});
  ASSERT_TRUE(port.starts_with("127.0.0.1:")) << port;
  auto r = stop();
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("\"kept\""), std::string::npos) << r.err;
  EXPECT_EQ(count_processes("47311"), 1) << "SIGTERM with --live-restore stopped the container";
  std::set<std::string> runs;  // one per hierarchy (cgroup v1), the same name in each
  for (const auto& dir : live_cgroup_runs()) runs.insert(dir.substr(dir.rfind('/') + 1));
  EXPECT_EQ(runs.size(), 1u) << "the container's own cgroup run";

  start({"--live-restore"});
  EXPECT_EQ(out_of({"ps", "--format", "{{.Names}} {{.State}} {{.Ports}}"}).substr(0, 13), "kept running ");
  EXPECT_EQ(out_of({"port", "kept", "8080"}), port) << "its port is published again on the same host port";
  // Its cgroup is its own again: an exec joins it (at the root of the container's cgroup
  // namespace; outside the cgroup its path would climb out with "/.."), and top lists it.
  const std::string cgroups = out_of({"exec", "kept", "cat", "/proc/self/cgroup"});
  EXPECT_NE(cgroups.find(":/\n"), std::string::npos) << cgroups;
  EXPECT_EQ(cgroups.find("/.."), std::string::npos) << "an exec into the adopted container is outside its cgroup:\n"
                                                    << cgroups;
  EXPECT_NE(out_of({"top", "kept"}).find("sleep 47311"), std::string::npos);
  // Its health checks go on.
  EXPECT_TRUE(eventually([&] { return docker({"inspect", "--format", "{{.State.Health.Status}}", "kept"}).out == "healthy\n"; },
                         kStartTimeout))
      << docker({"inspect", "--format", "{{json .State}}", "kept"}).out;
  // Stopped as any other: SIGTERM reaches sleep through init, whose exit status is recorded.
  EXPECT_EQ(out_of({"stop", "-t", "10", "kept"}), "kept\n");
  EXPECT_EQ(count_processes("47311"), 0);
  EXPECT_EQ(out_of({"inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", "kept"}), "exited 143\n");
  out_of({"rm", "kept"});
  r = stop();
  EXPECT_EQ(r.status, 0) << r.err;
  expect_nothing_left("after the adopted container's removal");
}

// A user network's namespace goes with the daemon that made it (and the containers' links into
// it): the next daemon makes it again and the containers it adopts join it again, so they reach
// each other, and new containers reach them, by name and alias.
TEST_F(ServeRestoreTest, AdoptedContainersJoinTheirNetworksAgain) {
  start({"--live-restore"});
  out_of({"network", "create", "n1"});
  out_of({"run", "-d", "--name", "web", "--network", "n1", "--network-alias", "www", "busybox", "sh", "-c",
          "echo hello >/tmp/i.html; exec httpd -f -p 80 -h /tmp"});
  out_of({"run", "-d", "--name", "cli", "--network", "n1", "busybox", "sleep", "47314"});
  ASSERT_TRUE(eventually([&] { return docker({"exec", "cli", "wget", "-qO-", "http://web/i.html"}).out == "hello\n"; },
                         kStartTimeout));
  auto r = stop();
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(count_processes("47314"), 1) << "SIGTERM with --live-restore stopped the container";

  start({"--live-restore"});
  EXPECT_EQ(out_of({"exec", "cli", "wget", "-qO-", "http://web/i.html"}), "hello\n");
  EXPECT_EQ(out_of({"exec", "cli", "wget", "-qO-", "http://www/i.html"}), "hello\n");
  EXPECT_EQ(out_of({"run", "--rm", "--network", "n1", "busybox", "wget", "-qO-", "http://web/i.html"}), "hello\n");
  EXPECT_EQ(sorted_lines(out_of({"network", "inspect", "n1", "--format",
                                 "{{range .Containers}}{{.Name}}\n{{end}}"})),
            "\ncli\nweb\n");
  // One address each on the network, the one the network shows: the old links' addresses do
  // not linger in the container (their namespace's teardown by the kernel comes later).
  for (const std::string name : {"web", "cli"}) {
    const std::string addrs = out_of({"exec", name, "ip", "-o", "-4", "addr", "show", "scope", "global"});
    EXPECT_EQ(std::count(addrs.begin(), addrs.end(), '\n'), 1) << name << ":\n" << addrs;
    const std::string shown = out_of({"inspect", "--format", "{{.NetworkSettings.Networks.n1.IPAddress}}", name});
    EXPECT_NE(addrs.find("inet " + shown.substr(0, shown.size() - 1) + "/"), std::string::npos) << addrs << shown;
  }
  const std::string hosts = out_of({"exec", "web", "cat", "/etc/hosts"});
  EXPECT_NE(hosts.find("\tcli "), std::string::npos) << hosts;
  EXPECT_NE(hosts.find("\tweb www "), std::string::npos) << hosts;
  // They leave it as usual.
  out_of({"rm", "-f", "web", "cli"});
  out_of({"network", "rm", "n1"});
  r = stop();
  EXPECT_EQ(r.status, 0) << r.err;
  expect_nothing_left("after the adopted containers' removal");
}

TEST_F(ServeRestoreTest, KilledDaemonWithoutLiveRestoreLeavesNothingAfterCleanupAndTheNextStart) {
  start();
  EXPECT_EQ(out_of({"info", "--format", "{{.LiveRestoreEnabled}}"}), "false\n");
  start_many("47312");
  kill_daemon();
  // Its containers die with it (their init follows the daemon); cleanup sweeps the rest.
  auto c = run_command({sandrun_bin(), "--root", root(), "cleanup"});
  EXPECT_EQ(c.status, 0) << c.err;
  EXPECT_TRUE(eventually([] { return count_processes("47312") == 0; }, kStartTimeout));
  expect_nothing_left("after cleanup");
  start();
  EXPECT_EQ(sorted_lines(states()), all_named("exited"));
  EXPECT_EQ(out_of({"inspect", "--format", "{{.State.ExitCode}} {{.State.Error}}", "c7"}), "255 the daemon that ran it stopped\n");
  EXPECT_EQ(stop().status, 0);
  expect_nothing_left("after the next daemon");
}

TEST_F(ServeRestoreTest, KilledLiveRestoreDaemonsContainersAreAdoptedByTheNextAndStopAsUsual) {
  start({"--live-restore"});
  start_many("47313");
  kill_daemon();
  EXPECT_EQ(count_processes("47313"), kContainers) << "containers died with a --live-restore daemon";
  start({"--live-restore"});
  EXPECT_EQ(sorted_lines(states()), all_named("running"));
  EXPECT_EQ(out_of({"stop", "-t", "10", "c3"}), "c3\n");
  EXPECT_EQ(out_of({"inspect", "--format", "{{.State.ExitCode}}", "c3"}), "143\n");
  EXPECT_EQ(count_processes("47313"), kContainers - 1);
  // A forced removal kills what runs (SIGKILL through the pidfd) and tears it down.
  std::vector<std::string> rm{"rm", "-f"};
  for (int i = 0; i < kContainers; ++i) rm.push_back("c" + std::to_string(i));
  docker(rm);
  EXPECT_EQ(states(), "");
  EXPECT_EQ(count_processes("47313"), 0);
  EXPECT_EQ(stop().status, 0);
  expect_nothing_left("after removing the adopted containers");
}

TEST_F(ServeRestoreTest, ADaemonWithoutLiveRestoreEndsWhatALiveRestoreLeft) {
  start({"--live-restore"});
  start_many("47314");
  kill_daemon();
  EXPECT_EQ(count_processes("47314"), kContainers);
  start();
  EXPECT_TRUE(eventually([] { return count_processes("47314") == 0; }, kStartTimeout));
  EXPECT_EQ(sorted_lines(states()), all_named("exited"));
  EXPECT_EQ(stop().status, 0);
  expect_nothing_left("after a daemon without --live-restore");
}

TEST_F(ServeRestoreTest, OutputWrittenThroughTheGapIsAllInTheLogInOrder) {
  start({"--live-restore"});
  // A counter every 50 ms for about 6 s; the daemon is killed after the first numbers and
  // comes back 2 s later.
  out_of({"run", "-d", "--name", "count", "busybox", "sh", "-c",
          "i=0; while [ $i -lt 120 ]; do echo $i; i=$((i+1)); sleep 0.05; done; echo done >&2"});
  ASSERT_TRUE(eventually([&] { return docker({"logs", "count"}).out.find("5\n") != std::string::npos; }, kStartTimeout));
  kill_daemon();
  ::usleep(2'000'000);
  start({"--live-restore"});
  EXPECT_EQ(out_of({"wait", "count"}), "0\n");
  std::string expected;
  for (int i = 0; i < 120; ++i) expected += std::to_string(i) + "\n";
  auto logs = docker({"logs", "count"});
  EXPECT_EQ(logs.out, expected);
  EXPECT_EQ(logs.err, "done\n");
  out_of({"rm", "count"});
  EXPECT_EQ(stop().status, 0);
  expect_nothing_left("after the counter");
}

}  // namespace
}  // namespace sandrun::testing
