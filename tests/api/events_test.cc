// The engine's event bus and GET /events: Docker's JSON, its filters and times, replay with
// since/until, followers told as events happen and let go when they leave.
#include <gtest/gtest.h>

#include <poll.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <thread>

#include "runner/api/api_socket.h"
#include "runner/api/event_routes.h"
#include "tests/api/api_client.h"
#include "tests/support/test_env.h"

namespace sandrun::runner::api {
namespace {

using namespace sandrun::testing;

EngineEvent ev(std::string type, std::string action, std::string id, std::map<std::string, std::string> attrs = {},
               int64_t t = 0) {
  return EngineEvent{std::move(type), std::move(action), std::move(id), std::move(attrs), t};
}

TEST(EventBusTest, SubscribersAreToldInOrderAndMayLeaveFromTheirCall) {
  EventBus bus;
  std::vector<std::string> seen;
  uint64_t a = 0;
  a = bus.subscribe([&](const EngineEvent& e) {
    seen.push_back("a:" + e.action);
    bus.unsubscribe(a);
  });
  bus.subscribe([&](const EngineEvent& e) { seen.push_back("b:" + e.action); });
  bus.publish(ev("container", "create", "1"));
  bus.publish(ev("container", "start", "1"));
  EXPECT_EQ(seen, (std::vector<std::string>{"a:create", "b:create", "b:start"}));
  std::vector<std::string> past;
  bus.replay(0, INT64_MAX, [&](const EngineEvent& e) { past.push_back(e.action); });
  EXPECT_EQ(past, (std::vector<std::string>{"create", "start"}));
  for (size_t i = 0; i < EventBus::kKept + 10; ++i) bus.publish(ev("volume", "create", std::to_string(i)));
  size_t kept = 0;
  bus.replay(0, INT64_MAX, [&](const EngineEvent&) { ++kept; });
  EXPECT_EQ(kept, EventBus::kKept);
}

TEST(EventJsonTest, ContainerEventsCarryDockersOldAndNewFields) {
  const auto j = nlohmann::json::parse(
      event_json(ev("container", "die", "abc", {{"exitCode", "3"}, {"image", "busybox"}, {"name", "x"}}, 1'700'000'000'123'456'789)));
  EXPECT_EQ(j["status"], "die");
  EXPECT_EQ(j["id"], "abc");
  EXPECT_EQ(j["from"], "busybox");
  EXPECT_EQ(j["Type"], "container");
  EXPECT_EQ(j["Action"], "die");
  EXPECT_EQ(j["Actor"]["ID"], "abc");
  EXPECT_EQ(j["Actor"]["Attributes"]["exitCode"], "3");
  EXPECT_EQ(j["scope"], "local");
  EXPECT_EQ(j["time"], 1'700'000'000);
  EXPECT_EQ(j["timeNano"], 1'700'000'000'123'456'789);
  const auto n = nlohmann::json::parse(event_json(ev("network", "create", "n1", {{"name", "net"}})));
  EXPECT_FALSE(n.contains("status"));
  EXPECT_EQ(n["Type"], "network");
}

TEST(EventFilterTest, EveryKeyAppliesAndAnyValueOfAKey) {
  const auto e = ev("container", "health_status: healthy", "0123456789abcdef", {{"name", "db"}, {"image", "redis"}, {"tier", "x"}});
  EXPECT_TRUE(event_matches(e, {}));
  EXPECT_TRUE(event_matches(e, {{"type", {"network", "container"}}}));
  EXPECT_FALSE(event_matches(e, {{"type", {"network"}}}));
  EXPECT_TRUE(event_matches(e, {{"event", {"health_status"}}}));
  EXPECT_TRUE(event_matches(e, {{"container", {"db"}}, {"image", {"redis"}}}));
  EXPECT_TRUE(event_matches(e, {{"container", {"0123456789ab"}}}));  // a short id
  EXPECT_FALSE(event_matches(e, {{"container", {"other"}}}));
  EXPECT_TRUE(event_matches(e, {{"label", {"tier=x"}}}));
  EXPECT_FALSE(event_matches(e, {{"label", {"tier=y"}}}));
}

TEST(EventTimeTest, UnixSecondsRfc3339AndDurationsAreRead) {
  const int64_t now = 1'800'000'000'000'000'000;
  EXPECT_EQ(parse_event_time("1700000000", now).value(), 1'700'000'000'000'000'000);
  EXPECT_EQ(parse_event_time("1700000000.5", now).value(), 1'700'000'000'500'000'000);
  EXPECT_EQ(parse_event_time("2023-11-14T22:13:20Z", now).value(), 1'700'000'000'000'000'000);
  EXPECT_EQ(parse_event_time("2023-11-14T23:13:20.25+01:00", now).value(), 1'700'000'000'250'000'000);
  EXPECT_EQ(parse_event_time("10m", now).value(), now - 600'000'000'000);
  EXPECT_EQ(parse_event_time("1h30m", now).value(), now - 5'400'000'000'000);
  EXPECT_FALSE(parse_event_time("yesterday", now));
  EXPECT_FALSE(parse_event_time("", now));
}

// The route on a real server and loop; "/publish/TYPE/ACTION/ID" publishes from the loop thread.
class EventRouteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    socket_ = dir_.path() + "/api.sock";
    auto sock = open_api_socket(socket_, std::nullopt, false);
    ASSERT_TRUE(sock) << sock.error().message();
    routes_ = std::make_unique<EventRoutes>(loop_, bus_);
    auto server = Server::start(loop_, std::move(sock->fd), [this](Exchange& ex) { handle(ex); }, ServerOptions{});
    ASSERT_TRUE(server) << server.error().message();
    server_ = std::move(*server);
    thread_ = std::thread([this] { loop_.run(); });
  }
  void TearDown() override {
    get(socket_, "/quit");
    thread_.join();
  }
  void handle(Exchange& ex) {
    auto parsed = parse_target(ex.request().target);
    const Target& t = std::get<Target>(parsed);
    if (t.path == "/quit") {
      ex.reply(Response::json("{}"));
      routes_.reset();
      server_->close(nullptr);
    } else if (t.path.starts_with("/publish/")) {
      std::vector<std::string> parts;
      for (size_t i = 9, j; i <= t.path.size(); i = j + 1) {
        j = t.path.find('/', i);
        if (j == std::string::npos) j = t.path.size();
        parts.push_back(t.path.substr(i, j - i));
      }
      bus_.publish(ev(parts[0], parts[1], parts[2], {{"name", parts[2]}}));
      followers_ = routes_->followers();
      ex.reply(Response::json("{}"));
    } else {
      const Match m = match_route(ex.request().method, t.path);
      routes_->handle(ex, Call{*m.route, t, m.params});
    }
  }
  std::vector<nlohmann::json> lines(const std::string& body) {
    std::vector<nlohmann::json> out;
    size_t i = 0;
    for (size_t j; (j = body.find('\n', i)) != std::string::npos; i = j + 1)
      out.push_back(nlohmann::json::parse(body.substr(i, j - i)));
    return out;
  }

  TempDir dir_;
  std::string socket_;
  Loop loop_;
  EventBus bus_;
  std::unique_ptr<EventRoutes> routes_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
  std::atomic<size_t> followers_{0};
};

TEST_F(EventRouteTest, AFollowerGetsTheMatchingEventsAsTheyHappenAndIsLetGoWhenItLeaves) {
  int fd = connect_unix(socket_);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(send_all(fd, "GET /v1.41/events?filters=%7B%22type%22%3A%5B%22container%22%5D%7D HTTP/1.1\r\nHost: d\r\n\r\n"));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  get(socket_, "/publish/network/create/n1");
  get(socket_, "/publish/container/start/c1");
  EXPECT_EQ(followers_, 1u);
  std::string raw;
  char buf[4096];
  for (int i = 0; i < 50 && raw.find("c1") == std::string::npos; ++i) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) == 1) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n > 0) raw.append(buf, static_cast<size_t>(n));
    }
  }
  EXPECT_NE(raw.find("Transfer-Encoding: chunked"), std::string::npos);
  EXPECT_NE(raw.find("\"Action\":\"start\""), std::string::npos) << raw;
  EXPECT_EQ(raw.find("n1"), std::string::npos) << "a network event passed a type=container filter";
  ::close(fd);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  get(socket_, "/publish/container/die/c1");
  EXPECT_EQ(followers_, 0u) << "the follower that left was not let go";
}

TEST_F(EventRouteTest, SinceAndUntilInThePastReplayAndEnd) {
  get(socket_, "/publish/container/create/c1");
  get(socket_, "/publish/volume/create/v1");
  const auto r = get(socket_, "/events?since=0&until=" + std::to_string(EventBus::now_ns() / 1'000'000'000 + 1));
  // until is 1 s ahead: the stream ends by itself once it has passed.
  ASSERT_EQ(r.status, 200);
  const auto l = lines(r.body);
  ASSERT_EQ(l.size(), 2u) << r.body;
  EXPECT_EQ(l[0]["Actor"]["ID"], "c1");
  EXPECT_EQ(l[1]["Type"], "volume");
  const auto bad = get(socket_, "/events?since=yesterday");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("since"), std::string::npos);
  EXPECT_EQ(get(socket_, "/events?filters=%7B%22nope%22%3A%5B%22x%22%5D%7D").status, 400);
}

}  // namespace
}  // namespace sandrun::runner::api
