// The malformed-request corpus (corpus/*.http, made by corpus/make_corpus.py) against a real
// daemon: each request is answered 4xx or its connection closed, and the daemon goes on.
#include <dirent.h>
#include <sys/socket.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "tests/api/serve_fixture.h"

namespace sandrun::testing {
namespace {

std::vector<std::string> corpus_files() {
  std::vector<std::string> out;
  if (DIR* d = ::opendir(SANDRUN_TEST_API_CORPUS)) {
    while (dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name.size() > 5 && name.ends_with(".http")) out.push_back(std::string(SANDRUN_TEST_API_CORPUS) + "/" + name);
    }
    ::closedir(d);
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST_F(ServeTest, MalformedCorpusIsAnswered4xxOrClosed) {
  const auto files = corpus_files();
  ASSERT_GE(files.size(), 50u) << SANDRUN_TEST_API_CORPUS;
  start();
  for (const std::string& file : files) {
    int fd = connect_unix(socket());
    ASSERT_GE(fd, 0) << file << ": the daemon stopped answering";
    send_all(fd, read_file(file));
    ::shutdown(fd, SHUT_WR);  // the end of the input: an incomplete request ends there
    const std::string raw = read_to_eof(fd, std::chrono::seconds(20));
    ::close(fd);
    for (const HttpReply& r : parse_replies(raw)) {
      EXPECT_TRUE(r.status >= 400 && r.status < 500) << file << ": " << r.status << " " << r.body;
    }
    if (!raw.empty()) {
      EXPECT_TRUE(raw.starts_with("HTTP/1.1 4")) << file << ": " << raw.substr(0, 200);
    }
  }
  EXPECT_TRUE(serving());
  CommandResult r = stop();
  EXPECT_EQ(r.status, 0) << r.err;
}

// Variants generated from a few valid requests, each made invalid one way: a create body cut
// short at every byte, each field of it given each wrong JSON type, names Docker refuses, a
// control byte in each part of the request line and header, Content-Length values that are
// not numbers; each under the unversioned path and three API versions.
std::vector<std::string> generated_requests() {
  using nlohmann::json;
  std::vector<std::string> bodies;
  const json valid = {{"Image", "busybox"},
                      {"Cmd", {"true"}},
                      {"Env", {"A=1"}},
                      {"Labels", {{"a", "b"}}},
                      {"HostConfig", {{"Memory", 67108864}, {"Binds", {"/tmp:/x"}}}}};
  const std::string text = valid.dump();
  for (size_t n = 1; n < text.size(); ++n) bodies.push_back(text.substr(0, n));
  // Wrong types (Cmd and Entrypoint also take a string, as Docker's do: not among these).
  const std::vector<std::pair<std::string, std::vector<json>>> fields = {
      {"/Image", {5, true, json::array(), json::object()}},
      {"/Cmd", {5, true, json::object()}},
      {"/Entrypoint", {5, true, json::object()}},
      {"/Env", {5, "A=1", true, json::object()}},
      {"/WorkingDir", {5, true, json::array(), json::object()}},
      {"/User", {5, true, json::array(), json::object()}},
      {"/Labels", {5, "a=b", true, json::array({1})}},
      {"/Tty", {5, "yes", json::array(), json::object()}},
      {"/OpenStdin", {5, "yes", json::array(), json::object()}},
      {"/ExposedPorts", {5, "80/tcp", true, json::array({1})}},
      {"/HostConfig", {5, "x", true, json::array()}},
      {"/HostConfig/Memory", {"64m", true, json::array(), json::object()}},
      {"/HostConfig/Binds", {5, "/tmp:/x", true, json::object()}},
      {"/HostConfig/AutoRemove", {5, "yes", json::array(), json::object()}},
      {"/HostConfig/NetworkMode", {5, true, json::array(), json::object()}},
      {"/HostConfig/CapAdd", {5, true, json::object()}},
      {"/HostConfig/PortBindings", {5, "80", true, json::array({1})}},
  };
  for (const auto& [pointer, wrongs] : fields) {
    for (const json& w : wrongs) {
      json b = valid;
      b[json::json_pointer(pointer)] = w;
      bodies.push_back(b.dump());
    }
  }
  std::vector<std::string> out;
  const std::vector<std::string> versions = {"", "/v1.24", "/v1.41", "/v1.43"};
  auto post = [](const std::string& target, const std::string& body) {
    return "POST " + target + " HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body;
  };
  for (const std::string& v : versions) {
    for (const std::string& b : bodies) out.push_back(post(v + "/containers/create", b));
    for (const char* name : {"-x", ".x", "_x", "a b", "a/b", "a%2Fb", "x!", "x@y", "x%00", "%2E%2E", "x:y", "x*"})
      out.push_back(post(v + "/containers/create?name=" + name, text));
    // A control byte in the method, the target, the version, a header's name and its value.
    for (int c = 1; c < 0x20; ++c) {
      if (c == '\t' || c == '\n' || c == '\r') continue;
      const std::string x(1, static_cast<char>(c));
      out.push_back("GE" + x + "T " + v + "/_ping HTTP/1.1\r\nHost: docker\r\n\r\n");
      out.push_back("GET " + v + "/_p" + x + "ing HTTP/1.1\r\nHost: docker\r\n\r\n");
      out.push_back("GET " + v + "/_ping HTTP/1" + x + ".1\r\nHost: docker\r\n\r\n");
      out.push_back("GET " + v + "/_ping HTTP/1.1\r\nHo" + x + "st: docker\r\n\r\n");
      out.push_back("GET " + v + "/_ping HTTP/1.1\r\nHost: doc" + x + "ker\r\n\r\n");
    }
    for (const char* cl : {"-1", "+5", "0x10", "1e3", "5 5", "abc", "18446744073709551616", "5,6", ""})
      out.push_back("POST " + v + "/containers/create HTTP/1.1\r\nHost: docker\r\nContent-Length: " +
                    std::string(cl) + "\r\n\r\n{}");
  }
  return out;
}

TEST_F(ServeTest, AThousandGeneratedMalformedRequestsAreAnswered4xx) {
  const auto requests = generated_requests();
  ASSERT_GE(requests.size() + corpus_files().size(), 1000u);
  start();
  size_t answered = 0;
  for (size_t i = 0; i < requests.size(); ++i) {
    int fd = connect_unix(socket());
    ASSERT_GE(fd, 0) << "request " << i << ": the daemon stopped answering";
    send_all(fd, requests[i]);
    ::shutdown(fd, SHUT_WR);
    const std::string raw = read_to_eof(fd, std::chrono::seconds(20));
    ::close(fd);
    const auto replies = parse_replies(raw);
    for (const HttpReply& r : replies) {
      EXPECT_TRUE(r.status >= 400 && r.status < 500) << "request " << i << " " << requests[i].substr(0, 300)
                                                     << ": " << r.status << " " << r.body;
    }
    if (!raw.empty()) {
      EXPECT_TRUE(raw.starts_with("HTTP/1.1 4")) << requests[i].substr(0, 300) << ": " << raw.substr(0, 200);
    }
    answered += !replies.empty();
  }
  // A field of the wrong type is named.
  auto env = request_json(socket(), "POST", "/containers/create", R"({"Image":"busybox","Cmd":["true"],"Env":"A=1"})");
  EXPECT_EQ(env.status, 400);
  EXPECT_EQ(env.body, "{\"message\":\"Env: expected an array\"}\n");
  auto binds = request_json(socket(), "POST", "/containers/create",
                            R"({"Image":"busybox","Cmd":["true"],"HostConfig":{"Binds":"/tmp:/x"}})");
  EXPECT_EQ(binds.status, 400);
  EXPECT_EQ(binds.body, "{\"message\":\"HostConfig.Binds: expected an array\"}\n");
  // Most get an answer that says what was wrong, not a bare close.
  EXPECT_GE(answered, requests.size() * 9 / 10);
  EXPECT_EQ(get(socket(), "/containers/json?all=1").body, "[]\n") << "a malformed create made a container";
  EXPECT_TRUE(serving());
  CommandResult r = stop();
  EXPECT_EQ(r.status, 0) << r.err;
}

}  // namespace
}  // namespace sandrun::testing
