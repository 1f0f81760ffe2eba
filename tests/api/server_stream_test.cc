// The Engine API server's streamed and hijacked answers (server.h's Exchange), with a real loop
// and socket and a handler of the test's own: chunked parts in order and the connection kept
// for the next request, backpressure (send() says "full", on_drain resumes, nothing lost),
// a client that goes mid-stream (on_gone), and a hijacked connection carrying raw bytes both
// ways with input's end seen.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include <poll.h>
#include <sys/socket.h>

#include "runner/api/api_socket.h"
#include "runner/api/server.h"
#include "tests/api/api_client.h"
#include "tests/support/test_env.h"

namespace sandrun::runner::api {
namespace {

using namespace sandrun::testing;

constexpr size_t kBound = 256 << 10;  // the connection's output bound in these tests

// The server has closed the connection (a read returns 0 at once), not a timeout ending the read.
bool closed_by_server(int fd) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, 0) != 1) return false;
  char c;
  return ::read(fd, &c, 1) == 0;
}

struct Flood {
  Exchange* ex = nullptr;
  size_t sent = 0;
  size_t fulls = 0;
  void pump() {
    const std::string part(32 << 10, 'x');
    while (sent < (8u << 20)) {
      sent += part.size();
      if (!ex->send(part)) {
        ++fulls;
        return;  // on_drain calls pump() again
      }
    }
    ex->end();
  }
};

class ServerStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    socket_ = dir_.path() + "/api.sock";
    auto sock = open_api_socket(socket_, std::nullopt, false);
    ASSERT_TRUE(sock) << sock.error().message();
    ServerOptions o;
    o.output_bytes = kBound;
    auto server = Server::start(loop_, std::move(sock->fd), [this](Exchange& ex) { handle(ex); }, o);
    ASSERT_TRUE(server) << server.error().message();
    server_ = std::move(*server);
    thread_ = std::thread([this] { loop_.run(); });
  }
  void TearDown() override {
    if (thread_.joinable()) {
      get(socket_, "/quit");
      thread_.join();
    }
  }

  void handle(Exchange& ex) {
    const std::string& t = ex.request().target;
    if (t == "/quit") {
      ex.reply(Response::json("{}"));
      server_->close(nullptr);
    } else if (t == "/stream") {
      ex.begin_stream(Response::json("first;"));
      ex.send("second;");
      ex.send("");  // nothing: no empty chunk (it would end the body)
      ex.send("third");
      ex.end();
    } else if (t == "/quiet") {
      ex.begin_stream(Response::json(""));
      ex.on_gone([this] { gone_ = true; });
    } else if (t == "/flood") {
      flood_.ex = &ex;
      ex.begin_stream(Response::json(""));
      ex.on_drain([this] { flood_.pump(); });
      flood_.pump();
    } else if (t == "/hijack") {
      Exchange* e = &ex;
      Response head;
      head.content_type = "application/vnd.docker.raw-stream";
      ex.hijack(
          head,
          [e](std::string_view in) {
            e->send("echo:" + std::string(in));
            if (in.find("quit") != std::string_view::npos) e->end();
          },
          [e] {
            e->send("input ended");
            e->end();
          });
    } else {
      ex.reply(Response::error(404, "page not found"));
    }
  }

  TempDir dir_;
  std::string socket_;
  Loop loop_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
  std::atomic<bool> gone_{false};
  Flood flood_;
};

TEST_F(ServerStreamTest, AStreamedBodyComesInOrderAndTheConnectionServesTheNextRequest) {
  const auto replies = roundtrip(socket_,
                                 "GET /stream HTTP/1.1\r\nHost: d\r\n\r\n"
                                 "GET /nope HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n");
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_EQ(replies[0].status, 200);
  EXPECT_EQ(replies[0].headers.at("transfer-encoding"), "chunked");
  EXPECT_EQ(replies[0].headers.count("content-length"), 0u);
  EXPECT_EQ(replies[0].body, "first;second;third");
  EXPECT_EQ(replies[1].status, 404);
}

TEST_F(ServerStreamTest, ASlowReaderIsFedWithinTheBoundAndLosesNothing) {
  int fd = connect_unix(socket_);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(send_all(fd, "GET /flood HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n"));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the server fills its bound meanwhile
  const std::string raw = read_to_eof(fd);
  ::close(fd);
  const auto replies = parse_replies(raw);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].body.size(), 8u << 20);
  EXPECT_EQ(replies[0].body.find_first_not_of('x'), std::string::npos);
  EXPECT_GT(flood_.fulls, 0u) << "send() never said the connection was full";
}

TEST_F(ServerStreamTest, AClientThatGoesMidStreamIsSeenAtOnce) {
  int fd = connect_unix(socket_);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(send_all(fd, "GET /quiet HTTP/1.1\r\nHost: d\r\n\r\n"));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(gone_);
  ::close(fd);
  for (int i = 0; i < 200 && !gone_; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_TRUE(gone_) << "the exchange of a client that closed was not told";
}

TEST_F(ServerStreamTest, AHijackedConnectionCarriesRawBytesBothWaysUntilTheEnd) {
  int fd = connect_unix(socket_);
  ASSERT_GE(fd, 0);
  // Input sent with the request, before the answer, is not lost.
  ASSERT_TRUE(send_all(fd, "POST /hijack HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\nearly"));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_TRUE(send_all(fd, "quit"));
  const std::string raw = read_to_eof(fd, std::chrono::seconds(10));
  EXPECT_TRUE(closed_by_server(fd)) << "end() did not close the hijacked connection";
  ::close(fd);
  ASSERT_TRUE(raw.starts_with("HTTP/1.1 101 UPGRADED\r\n")) << raw;
  EXPECT_NE(raw.find("Upgrade: tcp\r\n"), std::string::npos);
  EXPECT_NE(raw.find("Content-Type: application/vnd.docker.raw-stream\r\n"), std::string::npos);
  const std::string body = raw.substr(raw.find("\r\n\r\n") + 4);
  EXPECT_EQ(body, "echo:earlyecho:quit");
}

TEST_F(ServerStreamTest, AHijackedClientsEndOfInputReachesTheHandler) {
  int fd = connect_unix(socket_);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(send_all(fd, "POST /hijack HTTP/1.1\r\nHost: d\r\n\r\n"));  // no upgrade: 200, raw until close
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_TRUE(send_all(fd, "abc"));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ::shutdown(fd, SHUT_WR);
  const std::string raw = read_to_eof(fd, std::chrono::seconds(10));
  EXPECT_TRUE(closed_by_server(fd)) << "end() did not close the hijacked connection";
  ::close(fd);
  ASSERT_TRUE(raw.starts_with("HTTP/1.1 200 OK\r\n")) << raw;
  EXPECT_EQ(raw.find("Content-Length"), std::string::npos);
  EXPECT_EQ(raw.substr(raw.find("\r\n\r\n") + 4), "echo:abcinput ended");
}

}  // namespace
}  // namespace sandrun::runner::api
