// Pulls from a real docker-registry on 127.0.0.1: anonymous, by digest, through an index, with
// a tampered blob, several blobs at once, and over TLS.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <set>
#include <thread>

#include "cache/digest.h"
#include "cache/registry.h"
#include "cache/registry_http.h"
#include "tests/cache/registry_images.h"

namespace sandrun::testing {
namespace {

using cache::Descriptor;
using cache::RegistryClient;
using cache::RegistryOptions;

class RegistryPull : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    SANDRUN_REQUIRE(RegistryServer::available(&why), why);
    std::string err;
    reg = RegistryServer::start(server_options(), &err);
    ASSERT_TRUE(reg) << err;
    ASSERT_EQ(reg->push(images.dir.path(), "app", "team/app:1"), "");
  }
  virtual RegistryServer::Options server_options() const { return {}; }

  Result<RegistryClient> client(const std::string& ref, RegistryOptions options = {}) {
    if (options.insecure_hosts.empty() && !reg->options().tls) options.insecure_hosts = {reg->host()};
    if (options.auth_file.empty()) options.auth_file = home / "config.json";
    return RegistryClient::create(*cache::parse_ref(reg->host() + "/" + ref), std::move(options));
  }

  TestImages images;
  TempDir home;
  std::unique_ptr<RegistryServer> reg;
};

TEST_F(RegistryPull, AnonymousPullGivesTheManifestAndEveryBlobAsPushed) {
  auto c = client("team/app:1");
  ASSERT_TRUE(c) << c.error().render();
  auto m = c->resolve();
  ASSERT_TRUE(m) << m.error().render();
  EXPECT_EQ(m->digest, images.app.digest);  // skopeo pushed the manifest bytes unchanged
  EXPECT_EQ(m->bytes, images.blob(images.app.digest));
  EXPECT_EQ(m->media_type, cache::media::kOciManifest);
  EXPECT_EQ(m->index_digest, "");
  ASSERT_EQ(m->layers.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(m->layers[i].media_type, images.layers[i].media_type);
    EXPECT_EQ(m->layers[i].size, images.layers[i].bytes.size());
    std::string got;
    auto r = c->fetch_blob(m->layers[i], collect(&got));
    ASSERT_TRUE(r) << r.error().render();
    EXPECT_EQ(digest_of(got), digest_of(images.layers[i].bytes)) << "layer " << i;
  }
  auto config = c->fetch_config(m->config);
  ASSERT_TRUE(config) << config.error().render();
  EXPECT_EQ(cache::sha256_of(*config), m->config.digest);
}

TEST_F(RegistryPull, ByDigestGivesTheSameManifest) {
  auto m = client("team/app@" + images.app.digest)->resolve();
  ASSERT_TRUE(m) << m.error().render();
  EXPECT_EQ(m->digest, images.app.digest);
  EXPECT_EQ(m->layers.size(), 3u);
}

TEST_F(RegistryPull, UnknownDigestOrTagIsNotFound) {
  std::string wrong = "sha256:" + std::string(64, '0');
  auto m = client("team/app@" + wrong)->resolve();
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().message(), "pull " + reg->host() + "/team/app@" + wrong + ": GET /v2/team/app/manifests/" +
                                     wrong + ": 404 Not Found: manifest unknown");
  auto tag = client("team/app:2")->resolve();
  ASSERT_FALSE(tag);
  EXPECT_EQ(tag.error().message(),
            "pull " + reg->host() + "/team/app:2: GET /v2/team/app/manifests/2: 404 Not Found: manifest unknown");
}

TEST_F(RegistryPull, IndexResolvesToAmd64ByDefaultAndToArm64WhenAsked) {
  ASSERT_EQ(reg->push(images.dir.path(), "multi", "team/multi:1", /*all=*/true), "");
  auto m = client("team/multi:1")->resolve();
  ASSERT_TRUE(m) << m.error().render();
  EXPECT_EQ(m->digest, images.amd64.digest);
  EXPECT_EQ(m->index_digest, images.multi.digest);
  auto arm = client("team/multi:1", {.platform = "linux/arm64"})->resolve();
  ASSERT_TRUE(arm) << arm.error().render();
  EXPECT_EQ(arm->digest, images.arm64.digest);
  std::string got;
  ASSERT_TRUE(client("team/multi:1")->fetch_blob(arm->layers[0], collect(&got)));
  EXPECT_EQ(cache::sha256_of(got), arm->layers[0].digest);
  // The index by its digest resolves the same way.
  auto by_digest = client("team/multi@" + images.multi.digest)->resolve();
  ASSERT_TRUE(by_digest) << by_digest.error().render();
  EXPECT_EQ(by_digest->digest, images.amd64.digest);
}

TEST_F(RegistryPull, PlatformMissingFromTheIndexListsTheAvailableOnes) {
  ASSERT_EQ(reg->push(images.dir.path(), "multi", "team/multi:1", /*all=*/true), "");
  auto m = client("team/multi:1", {.platform = "linux/riscv64"})->resolve();
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().message(), "pull " + reg->host() + "/team/multi:1: index " + images.multi.digest +
                                     ": the index has no manifest for linux/riscv64 (available: linux/amd64, "
                                     "linux/arm64/v8)");
  EXPECT_EQ(m.error().hint_text(), "choose one with --platform");
}

TEST_F(RegistryPull, TamperedBlobFailsWithADigestMismatch) {
  const cache::Descriptor layer{images.layers[1].media_type, cache::sha256_of(images.layers[1].bytes),
                                images.layers[1].bytes.size()};
  std::string data = read_file(reg->blob_data_path(layer.digest));
  ASSERT_EQ(digest_of(data), digest_of(images.layers[1].bytes));
  data[data.size() / 2] ^= 0x5a;  // same size, other bytes
  write_file(reg->blob_data_path(layer.digest), data);
  std::string got;
  auto r = client("team/app:1")->fetch_blob(layer, collect(&got));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "pull " + reg->host() + "/team/app:1: blob " + layer.digest +
                                     ": digest mismatch (got " + cache::sha256_of(data) + ")");
}

// Established TCP connections of this machine to 127.0.0.1:port (the client's ends).
int connections_to(int port) {
  std::ifstream f("/proc/net/tcp");
  std::string line;
  int n = 0;
  std::getline(f, line);  // header
  char want[16];
  std::snprintf(want, sizeof want, "0100007F:%04X", port);
  while (std::getline(f, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote, state;
    fields >> slot >> local >> remote >> state;
    if (remote == want && state == "01") ++n;
  }
  return n;
}

TEST_F(RegistryPull, SeveralBlobsAtOnceStreamOverSeveralConnectionsInTheCallingThread) {
  auto c = client("team/app:1");
  auto m = c->resolve();
  ASSERT_TRUE(m) << m.error().render();
  std::vector<std::string> got(3);
  int open_at_first_byte = 0;
  const auto caller = std::this_thread::get_id();
  std::vector<std::pair<Descriptor, cache::BlobSink>> blobs;
  for (int i = 0; i < 3; ++i) {
    blobs.emplace_back(m->layers[i], [&, i](std::string_view d) -> Result<void> {
      EXPECT_EQ(std::this_thread::get_id(), caller);
      if (!open_at_first_byte) open_at_first_byte = connections_to(reg->port());
      got[i].append(d);
      return {};
    });
  }
  auto r = c->fetch_blobs(std::move(blobs), 3);
  ASSERT_TRUE(r) << r.error().render();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(digest_of(got[i]), digest_of(images.layers[i].bytes)) << i;
  // All three were requested before the first byte arrived, each on its own connection.
  EXPECT_EQ(open_at_first_byte, 3);
}

TEST_F(RegistryPull, FirstFailureOfSeveralBlobsIsReturned) {
  auto c = client("team/app:1");
  auto m = c->resolve();
  ASSERT_TRUE(m);
  Descriptor missing = m->layers[0];
  missing.digest = "sha256:" + std::string(64, '1');
  std::vector<std::pair<Descriptor, cache::BlobSink>> blobs;
  std::string sink0, sink1;
  blobs.emplace_back(missing, collect(&sink0));
  blobs.emplace_back(m->layers[1], collect(&sink1));
  auto r = c->fetch_blobs(std::move(blobs));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "pull " + reg->host() + "/team/app:1: GET /v2/team/app/blobs/" + missing.digest +
                                     ": 404 Not Found: blob unknown to registry");
}

TEST_F(RegistryPull, PlainHttpRegistryIsNeverAskedOverHttpUnlessInsecure) {
  auto c = client("team/app:1", {.insecure_hosts = {"127.0.0.2"}});  // not this registry
  auto m = c->resolve();
  ASSERT_FALSE(m);
  // curl tried TLS and got an HTTP answer back: OpenSSL's "wrong version number".
  EXPECT_EQ(m.error().message().rfind("pull " + reg->host() + "/team/app:1: GET /v2/team/app/manifests/1: ", 0), 0u)
      << m.error().message();
  EXPECT_NE(m.error().message().find("SSL"), std::string::npos) << m.error().message();
  EXPECT_EQ(m.error().hint_text(), cache::tls_hint(reg->host()));
}

class RegistryTls : public RegistryPull {
  RegistryServer::Options server_options() const override { return {.tls = true}; }
};

TEST_F(RegistryTls, TestCaFileMakesHttpsWork) {
  auto m = client("team/app:1", {.ca_file = reg->ca_file()})->resolve();
  ASSERT_TRUE(m) << m.error().render();
  EXPECT_EQ(m->digest, images.app.digest);
  std::string got;
  ASSERT_TRUE(client("team/app:1", {.ca_file = reg->ca_file()})->fetch_blob(m->layers[0], collect(&got)));
  EXPECT_EQ(digest_of(got), digest_of(images.layers[0].bytes));
}

TEST_F(RegistryTls, WithoutTheCaTheCertificateIsRefusedWithAHint) {
  auto m = client("team/app:1")->resolve();
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().message(), "pull " + reg->host() + "/team/app:1: GET /v2/team/app/manifests/1: SSL "
                                     "certificate problem: unable to get local issuer certificate");
  EXPECT_EQ(m.error().hint_text(),
            "for a registry on this machine that serves plain HTTP, pass --insecure-registry " + reg->host() +
                "; for one whose certificate comes from a private CA, pass that CA's certificate with "
                "--registry-ca FILE");
}

}  // namespace
}  // namespace sandrun::testing
