// The daemon's containers in their cgroups, on whichever cgroup version the machine has: the
// memory limit and its OOM kill, stats read from the cgroup, execs and `top` placed in and read
// from the container's cgroup, and no cgroup left after. Raw requests only (no docker CLI), so
// that ci/test-cgroup2.sh runs these in its cgroup v2 VM too (label cgroup2); the host runs
// them on cgroup v1.
#include <algorithm>

#include <nlohmann/json.hpp>

#include "tests/api/serve_fixture.h"
#include "tests/support/host_state.h"

namespace sandrun::testing {
namespace {

using nlohmann::json;

class ServeCgroupTest : public ServeTest {
 protected:
  // Creates and starts a container named `name` from `body`; its id.
  std::string run(const std::string& name, const std::string& body) {
    auto made = request_json(socket(), "POST", "/v1.41/containers/create?name=" + name, body);
    EXPECT_EQ(made.status, 201) << made.body;
    if (made.status != 201) return "";
    const std::string id = json::parse(made.body)["Id"];
    auto started = request_json(socket(), "POST", "/v1.41/containers/" + id + "/start", "");
    EXPECT_EQ(started.status, 204) << started.body;
    return id;
  }
  json inspect(const std::string& id) {
    auto r = get(socket(), "/v1.41/containers/" + id + "/json");
    EXPECT_EQ(r.status, 200) << r.body;
    return r.status == 200 ? json::parse(r.body) : json::object();
  }
  // The raw bytes of a request whose answer is a stream (an exec's output): until the daemon
  // closes the connection.
  std::string stream_of(const std::string& method, const std::string& path, const std::string& body) {
    int fd = connect_unix(socket());
    if (fd < 0) return "";
    send_all(fd, method + " " + path + " HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n"
                 "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
    std::string raw = read_to_eof(fd, kStartTimeout);
    ::close(fd);
    return raw;
  }
};

// /proc/PID/cgroup of a host process.
std::string cgroup_of(pid_t pid) {
  return read_file("/proc/" + std::to_string(pid) + "/cgroup");
}

TEST_F(ServeCgroupTest, AMemoryLimitsOomKillIsOomKilledWithExitCode137) {
  start();
  const std::string id = run("hog", R"({"Image": "busybox", "Cmd": ["sh", "-c", "x=aaaaaaaa; while true; do x=$x$x; done"],
                                        "HostConfig": {"Memory": 8388608, "NetworkMode": "none"}})");
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(eventually([&] { return inspect(id)["State"]["Status"] == "exited"; }, 2 * kStartTimeout))
      << inspect(id).dump();
  const json state = inspect(id)["State"];
  EXPECT_EQ(state["OOMKilled"], true) << state.dump();
  EXPECT_EQ(state["ExitCode"], 137) << state.dump();
  EXPECT_EQ(inspect(id)["HostConfig"]["Memory"], 8388608);
  EXPECT_EQ(request_json(socket(), "DELETE", "/containers/" + id, "").status, 204);
  stop_and_expect_nothing_left();
}

TEST_F(ServeCgroupTest, StatsTopAndExecsAreTheContainersOwnCgroup) {
  start();
  const std::string id = run("tt", R"({"Image": "busybox", "Cmd": ["sleep", "47330"],
                                       "HostConfig": {"Memory": 67108864, "PidsLimit": 50, "NetworkMode": "none"}})");
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(eventually([&] { return inspect(id)["State"]["Pid"] != 0; }, kStartTimeout));
  const pid_t init = inspect(id)["State"]["Pid"];
  const std::string cgroup = cgroup_of(init);
  ASSERT_FALSE(cgroup.empty());

  // Stats come from the container's cgroup: its limit, some memory and CPU used, its processes.
  auto st = get(socket(), "/containers/tt/stats?stream=false");
  ASSERT_EQ(st.status, 200) << st.body;
  const json stats = json::parse(st.body);
  EXPECT_EQ(stats["memory_stats"]["limit"], 67108864) << st.body;
  EXPECT_GT(stats["memory_stats"]["usage"].get<uint64_t>(), 0u) << st.body;
  EXPECT_GT(stats["cpu_stats"]["cpu_usage"]["total_usage"].get<uint64_t>(), 0u) << st.body;
  EXPECT_GE(stats["pids_stats"]["current"].get<uint64_t>(), 1u) << st.body;
  EXPECT_EQ(stats["pids_stats"]["limit"], 50) << st.body;

  // An exec runs in the container's cgroup (the host sees the same one as the container's
  // first process) at the root of its cgroup namespace.
  auto made = request_json(socket(), "POST", "/containers/tt/exec",
                           R"({"Cmd": ["cat", "/proc/self/cgroup"], "AttachStdout": true, "AttachStderr": true})");
  ASSERT_EQ(made.status, 201) << made.body;
  const std::string seen = stream_of("POST", "/exec/" + json::parse(made.body)["Id"].get<std::string>() + "/start",
                                     R"({"Detach": false, "Tty": false})");
  EXPECT_NE(seen.find("0::/\n"), std::string::npos) << seen;
  EXPECT_EQ(seen.find("/.."), std::string::npos) << "the exec is outside the container's cgroup:\n" << seen;

  made = request_json(socket(), "POST", "/containers/tt/exec", R"({"Cmd": ["sleep", "47331"]})");
  ASSERT_EQ(made.status, 201) << made.body;
  const std::string eid = json::parse(made.body)["Id"];
  ASSERT_EQ(request_json(socket(), "POST", "/exec/" + eid + "/start", R"({"Detach": true})").status, 200);
  ASSERT_TRUE(eventually([&] { return json::parse(get(socket(), "/exec/" + eid + "/json").body)["Pid"] != 0; },
                         kStartTimeout));
  const pid_t exec_pid = json::parse(get(socket(), "/exec/" + eid + "/json").body)["Pid"];
  EXPECT_EQ(cgroup_of(exec_pid), cgroup);
  // `top` lists the cgroup's processes: the first process and the exec.
  auto top = get(socket(), "/containers/tt/top");
  ASSERT_EQ(top.status, 200) << top.body;
  std::vector<std::string> commands;
  const json listed = json::parse(top.body);
  for (const auto& p : listed["Processes"]) commands.push_back(p.back().get<std::string>());
  EXPECT_NE(std::find(commands.begin(), commands.end(), "sleep 47330"), commands.end()) << top.body;
  EXPECT_NE(std::find(commands.begin(), commands.end(), "sleep 47331"), commands.end()) << top.body;

  // Removed with its container: the cgroup goes too.
  EXPECT_EQ(request_json(socket(), "DELETE", "/containers/tt?force=1", "").status, 204);
  EXPECT_EQ(get(socket(), "/containers/tt/json").status, 404);
  stop_and_expect_nothing_left();
}

}  // namespace
}  // namespace sandrun::testing
