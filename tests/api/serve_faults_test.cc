// The daemon under faults (issue 16, scenario 5): a hundred clients at once within its -j budget,
// clients killed or stalled mid-attach, and nothing of theirs left behind (its fd count).
#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <thread>

#include <nlohmann/json.hpp>

#include "tests/api/serve_fixture.h"

namespace sandrun::testing {
namespace {

using nlohmann::json;

class ServeFaultsTest : public CleanStopServeTest {
 protected:
  void SetUp() override {
    CleanStopServeTest::SetUp();
    require_docker();
  }
  // The daemon's open fds (`sockets_only`: its connections and listener).
  size_t daemon_fds(bool sockets_only = false) {
    size_t n = 0;
    const std::string dir = "/proc/" + std::to_string(daemon_->pid()) + "/fd";
    if (DIR* d = ::opendir(dir.c_str())) {
      while (dirent* e = ::readdir(d)) {
        if (e->d_name[0] == '.') continue;
        char target[256] = {};
        const ssize_t len = ::readlink((dir + "/" + e->d_name).c_str(), target, sizeof target - 1);
        n += !sockets_only || (len > 0 && std::string_view(target, static_cast<size_t>(len)).starts_with("socket:"));
      }
      ::closedir(d);
    }
    return n;
  }
  // The fd count once it has settled (the same three times, 300 ms apart): a container's
  // teardown closes its files a moment after its removal is answered.
  size_t settled_fds() {
    size_t last = daemon_fds(), same = 0;
    for (int i = 0; i < 100 && same < 2; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      const size_t now = daemon_fds();
      same = now == last ? same + 1 : 0;
      last = now;
    }
    return last;
  }
  bool running(const std::string& name) {
    auto r = get(socket(), "/containers/" + name + "/json");
    return r.status == 200 && json::parse(r.body, nullptr, false).value("/State/Running"_json_pointer, false);
  }
};

// Docker's multiplexed stream, split: stdout and stderr.
std::pair<std::string, std::string> demux(const std::string& s) {
  std::string out, err;
  size_t pos = 0;
  while (s.size() - pos >= 8) {
    const auto* h = reinterpret_cast<const unsigned char*>(s.data() + pos);
    const size_t n = (size_t{h[4]} << 24) | (size_t{h[5]} << 16) | (size_t{h[6]} << 8) | h[7];
    if (s.size() - pos - 8 < n) break;
    (h[0] == 2 ? err : out) += s.substr(pos + 8, n);
    pos += 8 + n;
  }
  return {out, err};
}

// One request on its own connection, answered within `timeout` (a start over the budget is
// answered only when its turn comes).
HttpReply call(const std::string& socket, const std::string& method, const std::string& path,
               const std::string& body = "", std::chrono::seconds timeout = std::chrono::seconds(600)) {
  int fd = connect_unix(socket);
  if (fd < 0) return {};
  send_all(fd, method + " " + path + " HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n" +
                   (body.empty() ? "" : "Content-Type: application/json\r\n") +
                   "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
  const std::string raw = read_to_eof(fd, timeout);
  ::close(fd);
  auto replies = parse_replies(raw);
  return replies.empty() ? HttpReply{} : replies.front();
}

constexpr int kClients = 100;
constexpr int kLines = 40;
constexpr int kBudget = 4;

// One client: create, start (answered when its turn has come), then its logs followed to the
// end. Returns what it saw ("" with the reason on a failure).
std::string one_client(const std::string& socket, int i, std::string* error) {
  const std::string script = "i=1; while [ $i -le " + std::to_string(kLines) + " ]; do echo c" + std::to_string(i) +
                             " line $i; i=$((i+1)); done; echo c" + std::to_string(i) + " done >&2; sleep 0.3";
  const json create = {{"Image", "busybox"}, {"Cmd", {"sh", "-c", script}}};
  auto made = call(socket, "POST", "/v1.41/containers/create?name=many" + std::to_string(i), create.dump());
  if (made.status != 201) return *error = "create: " + std::to_string(made.status) + " " + made.body, "";
  const std::string id = json::parse(made.body)["Id"];
  auto started = call(socket, "POST", "/v1.41/containers/" + id + "/start");
  if (started.status != 204) return *error = "start: " + std::to_string(started.status) + " " + started.body, "";
  auto logs = call(socket, "GET", "/v1.41/containers/" + id + "/logs?follow=1&stdout=1&stderr=1");
  if (logs.status != 200) return *error = "logs: " + std::to_string(logs.status) + " " + logs.body, "";
  auto [out, err] = demux(logs.body);
  if (err != "c" + std::to_string(i) + " done\n") return *error = "stderr: " + err, "";
  return out;
}

TEST_F(ServeFaultsTest, AHundredClientsAtOnceGetEveryLineInOrderWithinTheJobsBudget) {
  start({"-j", std::to_string(kBudget)});
  std::vector<std::string> outputs(kClients), errors(kClients);
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i)
    clients.emplace_back([&, i] { outputs[i] = one_client(socket(), i, &errors[i]); });
  for (auto& t : clients) t.join();
  for (int i = 0; i < kClients; ++i) {
    std::string want;
    for (int l = 1; l <= kLines; ++l) want += "c" + std::to_string(i) + " line " + std::to_string(l) + "\n";
    EXPECT_EQ(errors[i], "") << "client " << i;
    EXPECT_EQ(outputs[i], want) << "client " << i;
  }
  // The engine's events, replayed: never more than the budget between a start and its die.
  const std::string until = std::to_string(::time(nullptr) + 1);
  auto events = get(socket(), "/events?since=0&until=" + until + "&filters=%7B%22type%22%3A%5B%22container%22%5D%7D");
  ASSERT_EQ(events.status, 200);
  int now = 0, most = 0, starts = 0, dies = 0;
  size_t pos = 0;
  while (pos < events.body.size()) {
    size_t nl = events.body.find('\n', pos);
    if (nl == std::string::npos) nl = events.body.size();
    const auto ev = json::parse(events.body.substr(pos, nl - pos), nullptr, false);
    pos = nl + 1;
    if (!ev.is_object()) continue;
    const std::string action = ev.value("Action", std::string());
    if (action == "start") ++starts, most = std::max(most, ++now);
    if (action == "die") ++dies, --now;
  }
  EXPECT_EQ(starts, kClients);
  EXPECT_EQ(dies, kClients);
  EXPECT_LE(most, kBudget) << "more containers ran at once than serve -j " << kBudget;
  EXPECT_GE(most, 2) << "the containers never ran side by side";
  EXPECT_TRUE(serving());
  auto r = stop();
  EXPECT_EQ(r.status, 0) << r.err;
  // The daemon said why the others waited.
  EXPECT_NE(r.err.find("waits for its turn to start (-j 4: 4 running,"), std::string::npos);
}

TEST_F(ServeFaultsTest, AStartOverTheBudgetStaysCreatedUntilItsTurnAndAStopGivesItUp) {
  start({"-j", "1"});
  out_of({"run", "-d", "--name", "first", "busybox", "sleep", "86631"});
  out_of({"create", "--name", "second", "busybox", "echo", "my turn"});
  Background waiting(docker_argv({"start", "second"}));
  // Its start is not answered while the first runs; it says created.
  std::this_thread::sleep_for(std::chrono::seconds(1));
  EXPECT_EQ(out_of({"inspect", "--format", "{{.State.Status}}", "second"}), "created\n");
  EXPECT_EQ(::kill(waiting.pid(), 0), 0) << "docker start returned while over the budget";
  out_of({"stop", "-t", "0", "first"});
  auto started = waiting.finish();
  EXPECT_EQ(started.status, 0) << started.err;
  EXPECT_EQ(started.out, "second\n");
  EXPECT_EQ(out_of({"wait", "second"}), "0\n");
  EXPECT_EQ(out_of({"logs", "second"}), "my turn\n");
  // A queued start that is stopped never runs, and its client hears why.
  out_of({"start", "first"});
  out_of({"create", "--name", "third", "busybox", "echo", "never"});
  Background queued(docker_argv({"start", "third"}));
  std::this_thread::sleep_for(std::chrono::seconds(1));
  EXPECT_EQ(out_of({"stop", "third"}), "third\n");
  auto given_up = queued.finish();
  EXPECT_NE(given_up.status, 0);
  EXPECT_NE(given_up.err.find("container stopped before its turn to start came"), std::string::npos) << given_up.err;
  EXPECT_EQ(out_of({"inspect", "--format", "{{.State.Status}}", "third"}), "created\n");
  out_of({"rm", "-f", "first", "second", "third"});
  auto r = stop();
  EXPECT_EQ(r.status, 0) << r.err;
}

TEST_F(ServeFaultsTest, AClientKilledMidAttachLeavesTheContainerRunningAndNothingOpen) {
  start();
  // The daemon's fds once it has served two containers at once: what it opens once and keeps
  // (each container slot's lock and pid files, made as needed) is open then.
  out_of({"run", "-d", "--name", "warm", "busybox", "sleep", "86633"});
  out_of({"run", "--rm", "busybox", "true"});
  out_of({"rm", "-f", "warm"});
  const size_t base = settled_fds();
  const size_t base_sockets = daemon_fds(true);
  out_of({"run", "-d", "--name", "ticker", "busybox", "sh", "-c", "while true; do echo tick; sleep 0.1; done"});
  Background attach(docker_argv({"attach", "ticker"}));
  Background run_i(docker_argv({"run", "-i", "--name", "inter", "busybox", "sleep", "86632"}));
  ASSERT_TRUE(eventually([&] { return running("inter"); }, kStartTimeout));
  // Both clients connected: the attach's stream, and run -i's attach and wait.
  ASSERT_TRUE(eventually([&] { return daemon_fds(true) >= base_sockets + 3; }, kStartTimeout))
      << daemon_fds(true) << " sockets, " << base_sockets << " before";
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  attach.signal(SIGKILL);
  run_i.signal(SIGKILL);
  attach.finish();
  run_i.finish();
  EXPECT_TRUE(serving());
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_TRUE(running("ticker")) << "a vanished attach client stopped a detached container";
  EXPECT_TRUE(running("inter")) << "a vanished run -i client stopped its container";
  out_of({"rm", "-f", "ticker", "inter"});
  EXPECT_TRUE(eventually([&] { return settled_fds() == base; }, kStartTimeout))
      << "the daemon holds " << daemon_fds() << " fds, " << base << " before";
  auto r = stop();
  EXPECT_EQ(r.status, 0) << r.err;
}

TEST_F(ServeFaultsTest, AClientThatStopsReadingAFloodIsDroppedAndOthersAreServed) {
  start();
  out_of({"run", "--rm", "busybox", "true"});
  const size_t base = settled_fds();
  const std::string id =
      out_of({"run", "-d", "--name", "flood", "busybox", "sh", "-c",
                  "while true; do echo floodfloodfloodfloodfloodfloodfloodfloodfloodfloodfloodfloodflood; done"})
          .substr(0, 64);
  // Attached, never read from again.
  int fd = connect_unix(socket());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(send_all(fd, "POST /v1.41/containers/" + id +
                               "/attach?stream=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\n"
                               "Upgrade: tcp\r\nContent-Length: 0\r\n\r\n"));
  // Meanwhile the daemon answers others at once, again and again, and the flood goes on.
  for (int i = 0; i < 20; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_TRUE(serving());
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
  }
  EXPECT_TRUE(running("flood"));
  // It was dropped: the daemon closed its end (EOF after whatever was buffered).
  std::string got;
  char buf[65536];
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  bool closed = false;
  while (!closed && std::chrono::steady_clock::now() < end) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) closed = true;
    else if (got.size() < 1024) got.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  EXPECT_TRUE(closed) << "the stalled client is still served";
  EXPECT_TRUE(got.starts_with("HTTP/1.1 101 UPGRADED")) << got.substr(0, 100);
  EXPECT_TRUE(running("flood"));
  out_of({"rm", "-f", "flood"});
  EXPECT_TRUE(eventually([&] { return settled_fds() == base; }, kStartTimeout))
      << "the daemon holds " << daemon_fds() << " fds, " << base << " before";
  auto r = stop();
  EXPECT_EQ(r.status, 0) << r.err;
}

}  // namespace
}  // namespace sandrun::testing
