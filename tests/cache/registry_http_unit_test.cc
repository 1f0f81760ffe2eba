// The registry client's HTTP handling against an in-process HTTP fixture standing in for a
// registry: what a real docker-registry cannot be made to do (redirects to storage, lying
// about sizes and digests), and the exact requests of the bearer token flow.
#include <fcntl.h>
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <set>
#include <thread>

#include "cache/digest.h"
#include "cache/registry.h"
#include "cache/registry_auth.h"
#include "tests/support/http_fixture.h"
#include "tests/support/host_state.h"
#include "tests/support/test_env.h"

namespace sandrun::cache {
namespace {

using testing::HttpExchange;
using testing::HttpFixture;
using testing::HttpReply;
using testing::TempDir;

HttpReply reply(int status, std::string reason, std::string body = "",
                std::vector<std::pair<std::string, std::string>> headers = {}) {
  return HttpReply{status, std::move(reason), std::move(headers), std::move(body)};
}

// A fake registry for repository team/x: one manifest (tag "1"), its config and layer blobs.
struct FakeRegistry {
  std::string config = R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}})";
  std::string layer = std::string(100000, 'L');
  std::string manifest;
  Descriptor config_desc, layer_desc;
  // What the blob route answers instead of the blob, when set.
  std::function<HttpReply(const HttpExchange&)> blob_override;
  std::string required_auth;  // the Authorization every request must carry, else a 401
  std::string challenge;      // the WWW-Authenticate of that 401

  FakeRegistry() {
    config_desc = {std::string(media::kOciConfig), sha256_of(config), config.size()};
    layer_desc = {std::string(media::kOciLayer), sha256_of(layer), layer.size()};
    manifest = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":")" +
               config_desc.media_type + R"(","digest":")" + config_desc.digest + R"(","size":)" +
               std::to_string(config.size()) + R"(},"layers":[{"mediaType":")" + layer_desc.media_type +
               R"(","digest":")" + layer_desc.digest + R"(","size":)" + std::to_string(layer.size()) + "}]}";
  }

  HttpReply handle(const HttpExchange& ex) {
    if (!required_auth.empty() && ex.header("authorization") != required_auth)
      return reply(401, "Unauthorized",
                   R"({"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]})",
                   {{"WWW-Authenticate", challenge}});
    if (ex.target == "/v2/team/x/manifests/1")
      return reply(200, "OK", manifest, {{"Content-Type", std::string(media::kOciManifest)}});
    if (ex.target.rfind("/v2/team/x/blobs/", 0) == 0) {
      if (blob_override) return blob_override(ex);
      std::string digest = ex.target.substr(17);
      if (digest == config_desc.digest) return reply(200, "OK", config);
      if (digest == layer_desc.digest) return reply(200, "OK", layer);
    }
    return reply(404, "Not Found", R"({"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]})");
  }
};

class RegistryHttpFixture : public ::testing::Test {
 protected:
  FakeRegistry fake;
  HttpFixture server{[this](const HttpExchange& ex) { return fake.handle(ex); }};
  TempDir dir;

  std::string ref_text() const { return server.authority() + "/team/x:1"; }
  RegistryClient client(RegistryOptions options = {}) {
    if (options.insecure_hosts.empty()) options.insecure_hosts = {"127.0.0.1"};
    if (options.auth_file.empty()) options.auth_file = dir / "config.json";
    auto c = RegistryClient::create(*parse_ref(ref_text()), std::move(options));
    EXPECT_TRUE(c) << c.error().render();
    return c.take();
  }
  void write_credentials(const std::string& host, const std::string& user, const std::string& pass) {
    testing::write_file(dir / "config.json",
                        R"({"auths":{")" + host + R"(":{"auth":")" + base64_encode(user + ":" + pass) + R"("}}})");
  }
};

TEST(RegistryClientCreate, NameWithoutRegistryHostIsRefused) {
  auto c = RegistryClient::create(*parse_ref("team/x:1"));
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().message(),
            "image \"team/x:1\" has no registry host; sandrun pulls only from a named registry (e.g. "
            "127.0.0.1:5000/team/x:1)");
}

TEST_F(RegistryHttpFixture, RegistryErrorsNameTheRequestAndTheRegistrysMessage) {
  auto c = RegistryClient::create(*parse_ref(server.authority() + "/team/x:2"),
                                  {.insecure_hosts = {server.authority()}, .auth_file = dir / "none.json"});
  ASSERT_TRUE(c);
  auto m = c->resolve();
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().message(), "pull " + server.authority() +
                                      "/team/x:2: GET /v2/team/x/manifests/2: 404 Not Found: manifest unknown");
}

TEST_F(RegistryHttpFixture, BearerTokenIsFetchedWithTheFilesCredentialsOnceAndReused) {
  HttpFixture token_server([](const HttpExchange& ex) {
    if (ex.header("authorization") != "Basic " + base64_encode("alice:s3cret"))
      return reply(401, "Unauthorized");
    return reply(200, "OK", R"({"access_token":"tok-1","expires_in":300})");
  });
  fake.required_auth = "Bearer tok-1";
  fake.challenge = "Bearer realm=\"" + token_server.url("/token") + "\",service=\"fake registry\"";
  write_credentials(server.authority(), "alice", "s3cret");
  RegistryClient c = client();
  auto m = c.resolve();
  ASSERT_TRUE(m) << m.error().render();
  std::string layer;
  ASSERT_TRUE(c.fetch_blob(m->layers[0], [&](std::string_view d) -> Result<void> {
    layer.append(d);
    return {};
  }));
  EXPECT_EQ(layer, fake.layer);
  auto tokens = token_server.requests();
  ASSERT_EQ(tokens.size(), 1u);  // cached for the blob
  EXPECT_EQ(tokens[0].target, "/token?service=fake%20registry&scope=repository%3Ateam%2Fx%3Apull");
  // The registry saw the anonymous try, then the token every time.
  auto seen = server.requests();
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].header("authorization"), "");
  EXPECT_EQ(seen[1].header("authorization"), "Bearer tok-1");
  EXPECT_EQ(seen[2].header("authorization"), "Bearer tok-1");
}

TEST_F(RegistryHttpFixture, RefusedTokenRequestSaysWhoseCredentialsWereRefused) {
  HttpFixture token_server([](const HttpExchange&) { return reply(401, "Unauthorized"); });
  fake.required_auth = "Bearer never";
  fake.challenge = "Bearer realm=\"" + token_server.url("/token") + "\"";
  write_credentials(server.authority(), "alice", "wrong");
  auto m = client().resolve();
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().message(), "pull " + ref_text() + ": token from " + token_server.url("/token") +
                                      ": 401 Unauthorized (credentials for " + server.authority() + " from " +
                                      dir / "config.json" + " were refused)");
}

TEST_F(RegistryHttpFixture, RedirectedBlobReachesStorageWithoutTheCredentials) {
  HttpFixture storage([&](const HttpExchange&) { return reply(200, "OK", fake.layer); });
  fake.required_auth = "Basic " + base64_encode("alice:s3cret");
  fake.challenge = "Basic realm=\"fake\"";
  fake.blob_override = [&](const HttpExchange&) {
    return reply(307, "Temporary Redirect", "", {{"Location", storage.url("/bucket/blob?signature=x")}});
  };
  write_credentials(server.authority(), "alice", "s3cret");
  RegistryClient c = client();
  std::string got;
  auto r = c.fetch_blob(fake.layer_desc, [&](std::string_view d) -> Result<void> {
    got.append(d);
    return {};
  });
  ASSERT_TRUE(r) << r.error().render();
  EXPECT_EQ(got, fake.layer);
  auto at_storage = storage.requests();
  ASSERT_EQ(at_storage.size(), 1u);
  EXPECT_EQ(at_storage[0].target, "/bucket/blob?signature=x");
  EXPECT_EQ(at_storage[0].header("authorization"), "");
  EXPECT_EQ(server.requests().back().header("authorization"), fake.required_auth);
}

TEST_F(RegistryHttpFixture, RedirectToPlainHttpOfAnotherHostIsRefused) {
  HttpFixture storage([&](const HttpExchange&) { return reply(200, "OK", fake.layer); });
  fake.blob_override = [&](const HttpExchange&) {
    return reply(302, "Found", "", {{"Location", storage.url("/bucket/blob")}});
  };
  RegistryClient c = client({.insecure_hosts = {server.authority()}});
  auto r = c.fetch_blob(fake.layer_desc, [](std::string_view) -> Result<void> { return {}; });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "pull " + ref_text() + ": GET /v2/team/x/blobs/" + fake.layer_desc.digest +
                                     ": refusing plain HTTP to " + storage.authority() +
                                     ": only --insecure-registry hosts are reached without TLS");
  EXPECT_TRUE(storage.requests().empty());
}

TEST_F(RegistryHttpFixture, BlobLongerThanItsDescriptorIsCutOff) {
  fake.blob_override = [&](const HttpExchange&) { return reply(200, "OK", fake.layer + "extra"); };
  size_t delivered = 0;
  auto r = client().fetch_blob(fake.layer_desc, [&](std::string_view d) -> Result<void> {
    delivered += d.size();
    return {};
  });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "pull " + ref_text() + ": blob " + fake.layer_desc.digest +
                                     ": larger than the 100000 bytes its descriptor says");
  EXPECT_LE(delivered, fake.layer.size());
}

TEST_F(RegistryHttpFixture, ShortBlobIsASizeMismatch) {
  fake.blob_override = [&](const HttpExchange&) { return reply(200, "OK", "abc"); };
  auto r = client().fetch_blob(fake.layer_desc, [](std::string_view) -> Result<void> { return {}; });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "pull " + ref_text() + ": blob " + fake.layer_desc.digest +
                                     ": size mismatch (got 3 bytes, expected 100000)");
}

TEST_F(RegistryHttpFixture, SinkErrorStopsTheTransferAndIsReturned) {
  int calls = 0;
  auto r = client().fetch_blob(fake.layer_desc, [&](std::string_view) -> Result<void> {
    ++calls;
    return Error::msg("disk full");
  });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "pull " + ref_text() + ": disk full");
  EXPECT_EQ(calls, 1);
}

TEST_F(RegistryHttpFixture, ManifestNotMatchingTheRegistrysDigestHeaderIsRefused) {
  HttpFixture liar([&](const HttpExchange&) {
    return reply(200, "OK", fake.manifest,
                 {{"Content-Type", std::string(media::kOciManifest)},
                  {"Docker-Content-Digest", "sha256:" + std::string(64, '0')}});
  });
  auto c = RegistryClient::create(*parse_ref(liar.authority() + "/team/x:1"),
                                  {.insecure_hosts = {"127.0.0.1"}, .auth_file = dir / "none.json"});
  auto m = c->resolve();
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().message(), "pull " + liar.authority() + "/team/x:1: GET /v2/team/x/manifests/1: the "
                                     "registry says the manifest is sha256:" + std::string(64, '0') +
                                     " but its bytes are " + sha256_of(fake.manifest));
}

TEST_F(RegistryHttpFixture, CancelledPullStopsWithCancelled) {
  std::atomic<bool> cancel{true};
  auto m = client({.cancel = &cancel}).resolve();
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().message(), "pull " + ref_text() + ": GET /v2/team/x/manifests/1: cancelled");
}

TEST_F(RegistryHttpFixture, ParallelFetchCallsEverySinkInTheCallingThread) {
  RegistryClient c = client();
  std::vector<std::pair<Descriptor, BlobSink>> blobs;
  std::map<std::string, std::string> got;
  std::set<std::thread::id> threads;
  for (const Descriptor& d : {fake.config_desc, fake.layer_desc, fake.config_desc}) {
    std::string* out = &got[d.digest + std::to_string(blobs.size())];
    blobs.emplace_back(d, [out, &threads](std::string_view data) -> Result<void> {
      threads.insert(std::this_thread::get_id());
      out->append(data);
      return {};
    });
  }
  auto r = c.fetch_blobs(std::move(blobs), 3);
  ASSERT_TRUE(r) << r.error().render();
  EXPECT_EQ(got[fake.config_desc.digest + "0"], fake.config);
  EXPECT_EQ(got[fake.layer_desc.digest + "1"], fake.layer);
  EXPECT_EQ(got[fake.config_desc.digest + "2"], fake.config);
  EXPECT_EQ(threads, std::set<std::thread::id>{std::this_thread::get_id()});
}

// The fds of this process a child would inherit (fd 0-2 aside), as "fd -> target".
std::set<std::string> inheritable_fds() {
  std::set<std::string> out;
  for (const std::string& name : testing::dir_entries("/proc/self/fd")) {
    int fd = std::stoi(name);
    int flags = ::fcntl(fd, F_GETFD);
    if (fd <= 2 || flags < 0 || (flags & FD_CLOEXEC)) continue;
    char target[256] = {};
    ssize_t n = ::readlink(("/proc/self/fd/" + name).c_str(), target, sizeof target - 1);
    out.insert(name + " -> " + std::string(target, n > 0 ? static_cast<size_t>(n) : 0));
  }
  return out;
}

// The new fds a child would inherit while `c` fetches the fake layer.
std::set<std::string> inheritable_during_fetch(RegistryClient& c, const Descriptor& blob) {
  std::set<std::string> before = inheritable_fds();
  std::set<std::string> during;
  auto r = c.fetch_blob(blob, [&](std::string_view) -> Result<void> {
    for (const std::string& fd : inheritable_fds())
      if (!before.count(fd)) during.insert(fd);
    return {};
  });
  EXPECT_TRUE(r) << r.error().render();
  return during;
}

TEST_F(RegistryHttpFixture, EveryDescriptorOpenedForAPullIsCloseOnExec) {
  RegistryClient c = client();
  EXPECT_EQ(inheritable_during_fetch(c, fake.layer_desc), std::set<std::string>{});
}

TEST_F(RegistryHttpFixture, EveryDescriptorOpenedForAPullByHostNameIsCloseOnExec) {
  // A name, not an address: resolved by the client with getaddrinfo and handed to curl
  // (libcurl 7.88's resolver thread would signal over a socketpair without SOCK_CLOEXEC).
  std::string host = "localhost:" + std::to_string(server.port());
  auto c = RegistryClient::create(*parse_ref(host + "/team/x:1"),
                                  {.insecure_hosts = {"localhost"}, .auth_file = dir / "none.json"});
  ASSERT_TRUE(c) << c.error().render();
  EXPECT_EQ(inheritable_during_fetch(*c, fake.layer_desc), std::set<std::string>{});
  auto m = c->resolve();
  ASSERT_TRUE(m) << m.error().render();
  EXPECT_EQ(m->layers.size(), 1u);
}

}  // namespace
}  // namespace sandrun::cache
