// `sandrun serve` through its socket: the system routes, Docker's errors, the bounds, the
// socket's mode and group, a second daemon, SIGTERM, vanished clients.
#include <grp.h>
#include <sys/stat.h>
#include <sys/socket.h>

#include <nlohmann/json.hpp>

#include "tests/api/serve_fixture.h"

namespace sandrun::testing {
namespace {

using nlohmann::json;

std::string request(const std::string& method, const std::string& path, const std::string& extra = "") {
  return method + " " + path + " HTTP/1.1\r\nHost: docker\r\n" + extra + "\r\n";
}

TEST_F(ServeTest, PingAnswersGetAndHeadWithDockersHeaders) {
  start();
  for (const char* method : {"GET", "HEAD"}) {
    HttpReply r = get(socket(), "/_ping", method);
    EXPECT_EQ(r.status, 200) << method;
    EXPECT_EQ(r.body, method == std::string("GET") ? "OK" : "") << method;
    EXPECT_EQ(r.headers["content-length"], "2") << method;
    EXPECT_EQ(r.headers["api-version"], "1.47") << method;
    EXPECT_EQ(r.headers["docker-experimental"], "false") << method;
    EXPECT_EQ(r.headers["ostype"], "linux") << method;
    EXPECT_EQ(r.headers["cache-control"], "no-cache, no-store, must-revalidate") << method;
    EXPECT_EQ(r.headers["pragma"], "no-cache") << method;
  }
  EXPECT_EQ(get(socket(), "/v1.24/_ping").status, 200);
}

TEST_F(ServeTest, VersionAnswersVersionedAndUnversionedPaths) {
  start();
  for (const char* path : {"/version", "/v1.43/version"}) {
    HttpReply r = get(socket(), path);
    ASSERT_EQ(r.status, 200) << path;
    EXPECT_EQ(r.headers["content-type"], "application/json");
    json j = json::parse(r.body);
    EXPECT_EQ(j["ApiVersion"], "1.47");
    EXPECT_EQ(j["MinAPIVersion"], "1.24");
    EXPECT_EQ(j["Os"], "linux");
    EXPECT_FALSE(j["Version"].get<std::string>().empty());
    EXPECT_FALSE(j["KernelVersion"].get<std::string>().empty());
    EXPECT_EQ(j["Components"][0]["Name"], "Engine");
  }
}

TEST_F(ServeTest, InfoTellsTheRootTheHostAndTheImages) {
  // One image in the cache before the daemon starts: Images counts it.
  ASSERT_EQ(::mkdir((tmp_ / "rootfs").c_str(), 0755), 0);
  write_file(tmp_ / "rootfs/hello", "hi\n");
  ASSERT_EQ(run_command({"tar", "-C", tmp_ / "rootfs", "-cf", tmp_ / "rootfs.tar", "."}).status, 0);
  auto imp = run_sandrun(root(), {"image", "import", "--rootfs", tmp_ / "rootfs.tar", "one:1"});
  ASSERT_EQ(imp.status, 0) << imp.err;
  start();
  HttpReply r = get(socket(), "/v1.43/info");
  ASSERT_EQ(r.status, 200) << r.body;
  json j = json::parse(r.body);
  EXPECT_EQ(j["DockerRootDir"], root());
  EXPECT_GT(j["NCPU"].get<int>(), 0);
  EXPECT_GT(j["MemTotal"].get<uint64_t>(), 0u);
  EXPECT_EQ(j["Images"], 1);
  EXPECT_EQ(j["Containers"], 0);
  EXPECT_EQ(j["Driver"], "overlay");
  EXPECT_EQ(j["OSType"], "linux");
  EXPECT_EQ(j["CgroupDriver"], "cgroupfs");
  EXPECT_TRUE(j["CgroupVersion"] == "1" || j["CgroupVersion"] == "2") << j["CgroupVersion"];
  EXPECT_EQ(j["DefaultRuntime"], "sandrun");
  EXPECT_EQ(j["ID"].get<std::string>().size(), 36u);
  const auto opts = j["SecurityOptions"].dump();
  EXPECT_NE(opts.find("name=userns"), std::string::npos) << opts;
  EXPECT_NE(opts.find("name=no-new-privileges"), std::string::npos) << opts;
  // The engine's ID stays with the root.
  EXPECT_EQ(j["ID"], json::parse(get(socket(), "/info").body)["ID"]);
}

TEST_F(ServeTest, UnknownRoutesAre404AndDockerRoutesOutsideSandrunsScope501) {
  start();
  HttpReply r = get(socket(), "/v1.43/nothing/here");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body, "{\"message\":\"page not found\"}\n");
  r = get(socket(), "/_ping", "POST");
  EXPECT_EQ(r.status, 404);
  auto replies = roundtrip(socket(), request("PUT", "/v1.43/containers/abc/archive?path=/", "Content-Type: application/x-tar\r\n"
                                                                                 "Content-Length: 2\r\nConnection: close\r\n") + "{}");
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].status, 404);  // served (docker cp): the container is missing
  EXPECT_EQ(replies[0].body, "{\"message\":\"No such container: abc\"}\n");
  r = get(socket(), "/exec/abc/json");  // served: an exec that does not exist
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body, "{\"message\":\"No such exec instance: abc\"}\n");
  r = get(socket(), "/v1.43/swarm");
  EXPECT_EQ(r.status, 501);
  EXPECT_EQ(r.body, "{\"message\":\"GET /swarm is not supported by sandrun\"}\n");
}

TEST_F(ServeTest, VersionsOutOfRangeAre400InDockersWords) {
  start();
  HttpReply r = get(socket(), "/v1.48/version");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body, "{\"message\":\"client version 1.48 is too new. Maximum supported API version is 1.47\"}\n");
  r = get(socket(), "/v1.12/info");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body, "{\"message\":\"client version 1.12 is too old. Minimum supported API version is 1.24, please "
                    "upgrade your client to a newer version\"}\n");
}

TEST_F(ServeTest, MalformedRequestIs400AndTheDaemonStillServes) {
  start();
  auto replies = roundtrip(socket(), "GET /_ping HTTP/1.1\r\nHost docker\r\n\r\n");
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].status, 400);
  EXPECT_EQ(replies[0].headers["connection"], "close");
  EXPECT_NE(replies[0].body.find("malformed HTTP request"), std::string::npos) << replies[0].body;
  EXPECT_TRUE(serving());
}

TEST_F(ServeTest, BodyOverTheCapIs413) {
  start();
  // Declared: refused before any body byte is read.
  auto replies = roundtrip(socket(), request("POST", "/containers/create", "Content-Length: 16777217\r\n"));
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].status, 413);
  EXPECT_EQ(replies[0].body, "{\"message\":\"request body is larger than 16 MiB\"}\n");
  // Chunked: refused once the chunks pass the cap.
  int fd = connect_unix(socket());
  ASSERT_GE(fd, 0);
  send_all(fd, request("POST", "/containers/create", "Transfer-Encoding: chunked\r\n"));
  const std::string chunk = "100000\r\n" + std::string(1 << 20, 'x') + "\r\n";
  for (int i = 0; i < 17 && send_all(fd, chunk); ++i) {
  }
  replies = parse_replies(read_to_eof(fd));
  ::close(fd);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].status, 413);
  EXPECT_TRUE(serving());
}

TEST_F(ServeTest, HeaderFloodIs431) {
  start();
  std::string flood;
  for (int i = 0; i < 2000; ++i) flood += "X-Flood-" + std::to_string(i) + ": " + std::string(40, 'a') + "\r\n";
  auto replies = roundtrip(socket(), request("GET", "/_ping", flood));
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].status, 431);
  replies = roundtrip(socket(), request("GET", "/_ping", "X-Long: " + std::string(100000, 'a') + "\r\n"));
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].status, 431);
  EXPECT_TRUE(serving());
}

TEST_F(ServeTest, KeepAliveAnswersPipelinedRequestsInOrder) {
  start();
  const std::string two = request("GET", "/_ping") + request("GET", "/v1.43/version", "Connection: close\r\n");
  auto replies = roundtrip(socket(), two);
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_EQ(replies[0].body, "OK");
  EXPECT_EQ(replies[0].headers.count("connection"), 0u);
  EXPECT_EQ(json::parse(replies[1].body)["ApiVersion"], "1.47");
  // Chunked bodies on a kept-alive connection: the next request follows the last chunk.
  const std::string chunked = request("POST", "/containers/create", "Transfer-Encoding: chunked\r\n") +
                              "2\r\n{}\r\n0\r\n\r\n" + request("HEAD", "/_ping", "Connection: close\r\n");
  replies = roundtrip(socket(), chunked, {false, true});
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_EQ(replies[0].status, 400);  // the chunked body was read: it names no image
  EXPECT_EQ(replies[0].body, "{\"message\":\"Image: a container needs an image\"}\n");
  EXPECT_EQ(replies[1].status, 200);
}

TEST_F(ServeTest, SocketIsOwnerOnlyByDefault) {
  start();
  EXPECT_EQ(file_mode(socket()), 0600u);
  EXPECT_EQ(file_mode(tmp_ / "run"), 0700u);
}

TEST_F(ServeTest, GroupMakesTheSocket0660WithThatGroup) {
  start({"--group", "nogroup"});
  const group* g = ::getgrnam("nogroup");
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(file_mode(socket()), 0660u);
  EXPECT_EQ(file_gid(socket()), g->gr_gid);
  EXPECT_EQ(file_mode(tmp_ / "run"), 0710u);
  EXPECT_EQ(file_gid(tmp_ / "run"), g->gr_gid);
}

TEST_F(ServeTest, MissingGroupIsRefused) {
  auto r = run_sandrun(root(), {"serve", "--socket", socket(), "--group", "no-such-group-sandrun"});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("--group no-such-group-sandrun: no such group"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("sandrun never edits /etc/group"), std::string::npos) << r.err;
  EXPECT_FALSE(fs_exists(socket()));
}

TEST_F(ServeTest, SecondDaemonIsRefusedOnTheSameSocketOrRoot) {
  start();
  auto r = run_sandrun(tmp_ / "root2", {"serve", "--socket", socket()});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("another daemon answers on " + socket()), std::string::npos) << r.err;
  r = run_sandrun(root(), {"serve", "--socket", tmp_ / "run/other.sock"});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("another sandrun serve owns --root " + root()), std::string::npos) << r.err;
  EXPECT_TRUE(serving());
}

TEST_F(ServeTest, StaleSocketIsReplaced) {
  start();
  daemon_->signal(SIGKILL);
  daemon_->finish();
  daemon_.reset();
  ASSERT_TRUE(fs_exists(socket()));  // a killed daemon leaves its socket
  start();
  EXPECT_TRUE(serving());
}

TEST_F(ServeTest, SigtermRemovesTheSocketAndExits0) {
  start();
  int idle = connect_unix(socket());  // an open connection does not hold the daemon
  ASSERT_GE(idle, 0);
  CommandResult r = stop();
  ::close(idle);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_FALSE(fs_exists(socket()));
  EXPECT_NE(r.err.find("SIGTERM: stopping the daemon"), std::string::npos) << r.err;
}

TEST_F(ServeTest, SigintStopsItTheSameWay) {
  start();
  daemon_->signal(SIGINT);
  CommandResult r = daemon_->finish();
  daemon_.reset();
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_FALSE(fs_exists(socket()));
  EXPECT_NE(r.err.find("SIGINT: stopping the daemon"), std::string::npos) << r.err;
  // The root is free again: the next daemon starts on it.
  start();
  EXPECT_TRUE(serving());
}

TEST_F(ServeTest, VanishedClientsCostNothing) {
  start();
  // Mid-request: half a request line, then gone.
  int fd = connect_unix(socket());
  send_all(fd, "GET /_pi");
  ::close(fd);
  // Mid-body, with a reset instead of a close.
  fd = connect_unix(socket());
  send_all(fd, request("POST", "/containers/create", "Content-Length: 1000\r\n") + "{\"Image\":");
  linger l{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  ::close(fd);
  // Many pipelined requests whose answers are never read.
  fd = connect_unix(socket());
  std::string many;
  for (int i = 0; i < 2000; ++i) many += request("GET", "/version");
  send_all(fd, many);
  ::close(fd);
  EXPECT_TRUE(serving());
}

TEST_F(ServeTest, AClientThatDoesNotReadIsNotReadEither) {
  start();
  // 20,000 pipelined requests (about 9 MB of answers) sent by a thread while nobody reads the
  // answers: the daemon stops reading this client, and still serves others.
  int fd = connect_unix(socket());
  ASSERT_GE(fd, 0);
  int buf = 4096;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
  std::string many;
  for (int i = 0; i < 20000; ++i) many += request("GET", "/version");
  ::fcntl(fd, F_SETFL, O_NONBLOCK);
  size_t sent = 0;
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (sent < many.size() && std::chrono::steady_clock::now() < end) {
    ssize_t n = ::send(fd, many.data() + sent, many.size() - sent, MSG_NOSIGNAL);
    if (n > 0) sent += static_cast<size_t>(n);
    else ::usleep(10'000);
  }
  EXPECT_LT(sent, many.size()) << "the daemon read everything from a client that reads nothing";
  EXPECT_TRUE(serving());
  ::close(fd);  // gone without reading: its queued answers go with it
  EXPECT_TRUE(serving());
}

TEST_F(ServeTest, DockerPyTalksToIt) {
  SANDRUN_REQUIRE(run_command({"python3", "-c", "import docker"}).status == 0, "needs python3-docker");
  start();
  auto r = run_command({"python3", "-c",
                        "import docker; c=docker.DockerClient(base_url='unix://" + socket() +
                            "'); print(c.ping(), c.version()['ApiVersion'], c.info()['DockerRootDir'])"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "True 1.47 " + root() + "\n");
}

}  // namespace
}  // namespace sandrun::testing
