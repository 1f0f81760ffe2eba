// Pulls from a real docker-registry with authentication: htpasswd (Basic) and token auth
// (Bearer JWTs from a TokenServer whose certificate is the registry's rootcertbundle).
#include <gtest/gtest.h>

#include "cache/registry.h"
#include "cache/registry_auth.h"
#include "tests/cache/registry_images.h"

namespace sandrun::testing {
namespace {

using cache::RegistryClient;
using Auth = RegistryServer::Auth;

class RegistryAuth : public ::testing::Test {
 protected:
  void start(RegistryServer::Options options) {
    std::string why;
    SANDRUN_REQUIRE(RegistryServer::available(&why), why);
    std::string err;
    reg = RegistryServer::start(options, &err);
    ASSERT_TRUE(reg) << err;
    ASSERT_EQ(reg->push(images.dir.path(), "app", "team/app:1"), "");
  }
  // A Docker config.json with `user:password` for the registry, under the key form given.
  void login(const std::string& user, const std::string& password, const std::string& key_prefix = "") {
    write_file(home / "config.json", R"({"auths":{")" + key_prefix + reg->host() + R"(":{"auth":")" +
                                         cache::base64_encode(user + ":" + password) + R"("}}})");
  }
  Result<cache::PulledManifest> resolve() {
    auto c = RegistryClient::create(*cache::parse_ref(reg->host() + "/team/app:1"),
                                    {.insecure_hosts = {"127.0.0.1"}, .auth_file = home / "config.json"});
    if (!c) return std::move(c).error();
    return c->resolve();
  }
  std::string prefix() const { return "pull " + reg->host() + "/team/app:1: "; }

  TestImages images;
  TempDir home;
  std::unique_ptr<RegistryServer> reg;
};

TEST_F(RegistryAuth, BasicAuthWithTheConfigFilesCredentialsPulls) {
  ASSERT_NO_FATAL_FAILURE(start({.auth = Auth::htpasswd}));
  if (IsSkipped()) return;
  login(reg->options().user, reg->options().password, "https://");
  auto c = RegistryClient::create(*cache::parse_ref(reg->host() + "/team/app:1"),
                                  {.insecure_hosts = {reg->host()}, .auth_file = home / "config.json"});
  ASSERT_TRUE(c) << c.error().render();
  auto m = c->resolve();
  ASSERT_TRUE(m) << m.error().render();
  EXPECT_EQ(m->digest, images.app.digest);
  std::vector<std::pair<cache::Descriptor, cache::BlobSink>> blobs;
  std::vector<std::string> got(m->layers.size());
  for (size_t i = 0; i < m->layers.size(); ++i) blobs.emplace_back(m->layers[i], collect(&got[i]));
  ASSERT_TRUE(c->fetch_blobs(std::move(blobs)));
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(digest_of(got[i]), digest_of(images.layers[i].bytes));
}

TEST_F(RegistryAuth, BasicAuthWithAWrongPasswordSaysTheCredentialsWereRefused) {
  ASSERT_NO_FATAL_FAILURE(start({.auth = Auth::htpasswd}));
  if (IsSkipped()) return;
  login(reg->options().user, "wrong");
  auto m = resolve();
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().message(), prefix() + "GET /v2/team/app/manifests/1: 401 Unauthorized: authentication "
                                            "required (credentials for " + reg->host() + " from " +
                                            home / "config.json" + " were refused)");
}

TEST_F(RegistryAuth, BasicAuthWithoutCredentialsSaysWhereToPutThem) {
  ASSERT_NO_FATAL_FAILURE(start({.auth = Auth::htpasswd}));
  if (IsSkipped()) return;
  auto m = resolve();
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().message(), prefix() + "GET /v2/team/app/manifests/1: 401 Unauthorized: authentication "
                                            "required (no credentials for " + reg->host() + " in " +
                                            home / "config.json" + ")");
  EXPECT_EQ(m.error().hint_text(),
            "log in with docker login " + reg->host() + " or add them to " + home / "config.json");
}

TEST_F(RegistryAuth, CredentialHelperIsReportedOnlyWhenTheRegistryAsks) {
  ASSERT_NO_FATAL_FAILURE(start({.auth = Auth::htpasswd}));
  if (IsSkipped()) return;
  write_file(home / "config.json", R"({"credHelpers":{")" + reg->host() + R"(":"pass"}})");
  auto m = resolve();
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().message(), prefix() + "GET /v2/team/app/manifests/1: 401 Unauthorized: authentication "
                                            "required (credentials for " + reg->host() +
                                            " are kept by the credential helper docker-credential-pass that " +
                                            home / "config.json" + " names, which sandrun does not run)");
}

TEST_F(RegistryAuth, BearerTokenFromTheTokenServerPullsAndIsReusedForBlobs) {
  ASSERT_NO_FATAL_FAILURE(start({.auth = Auth::token}));
  if (IsSkipped()) return;
  int tokens_for_push = reg->token_server()->tokens_issued();
  size_t requests_for_push = reg->token_server()->requests().size();
  login(reg->options().user, reg->options().password);
  auto c = RegistryClient::create(*cache::parse_ref(reg->host() + "/team/app:1"),
                                  {.insecure_hosts = {"127.0.0.1"}, .auth_file = home / "config.json"});
  ASSERT_TRUE(c);
  auto m = c->resolve();
  ASSERT_TRUE(m) << m.error().render() << "\n" << reg->log();
  EXPECT_EQ(m->digest, images.app.digest);
  std::string got;
  ASSERT_TRUE(c->fetch_blob(m->layers[2], collect(&got)));
  EXPECT_EQ(digest_of(got), digest_of(images.layers[2].bytes));
  auto config = c->fetch_config(m->config);
  ASSERT_TRUE(config) << config.error().render();
  // One token for the manifest, the blob and the config, asked for with the file's credentials.
  EXPECT_EQ(reg->token_server()->tokens_issued(), tokens_for_push + 1);
  auto requests = reg->token_server()->requests();
  ASSERT_EQ(requests.size(), requests_for_push + 1);
  EXPECT_EQ(requests.back().header("authorization"),
            "Basic " + cache::base64_encode(reg->options().user + ":" + reg->options().password));
  EXPECT_NE(requests.back().target.find("scope=repository%3Ateam%2Fapp%3Apull"), std::string::npos)
      << requests.back().target;
}

TEST_F(RegistryAuth, BearerTokenRefusedForAWrongPasswordSaysSo) {
  ASSERT_NO_FATAL_FAILURE(start({.auth = Auth::token}));
  if (IsSkipped()) return;
  login(reg->options().user, "wrong");
  auto m = resolve();
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().message(), prefix() + "token from " + reg->token_server()->realm() +
                                     ": 401 Unauthorized: invalid username or password (credentials for " +
                                     reg->host() + " from " + home / "config.json" + " were refused)");
}

TEST_F(RegistryAuth, AnonymousBearerTokenPullsWhenTheTokenServerAllowsIt) {
  ASSERT_NO_FATAL_FAILURE(start({.auth = Auth::token, .anonymous_pull = true}));
  if (IsSkipped()) return;
  auto m = resolve();
  ASSERT_TRUE(m) << m.error().render();
  EXPECT_EQ(m->digest, images.app.digest);
  EXPECT_EQ(reg->token_server()->requests().back().header("authorization"), "");
}

}  // namespace
}  // namespace sandrun::testing
