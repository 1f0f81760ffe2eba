// The registry client's pure logic: challenges, the credentials file, manifests and platforms.
#include <gtest/gtest.h>

#include <string>

#include "cache/digest.h"
#include "cache/manifest.h"
#include "cache/registry_auth.h"
#include "cache/registry_http.h"
#include "tests/support/test_env.h"

namespace sandrun::cache {
namespace {

using testing::TempDir;
using testing::write_file;

// ---- WWW-Authenticate ---------------------------------------------------------------------

TEST(RegistryChallenge, BearerParametersAreReadWithTheirQuotesRemoved) {
  auto c = parse_challenges(
      R"(Bearer realm="https://auth.example.test/token",service="registry.example.test",scope="repository:team/x:pull")");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].scheme, "bearer");
  EXPECT_EQ(c[0].param("realm"), "https://auth.example.test/token");
  EXPECT_EQ(c[0].param("service"), "registry.example.test");
  EXPECT_EQ(c[0].param("scope"), "repository:team/x:pull");
}

TEST(RegistryChallenge, SeveralChallengesAndUnquotedValuesAreSeparated) {
  auto c = parse_challenges(R"(Basic realm="my realm", Bearer realm=x , service=reg, error=insufficient_scope)");
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].scheme, "basic");
  EXPECT_EQ(c[0].param("realm"), "my realm");
  EXPECT_EQ(c[1].scheme, "bearer");
  EXPECT_EQ(c[1].param("realm"), "x");
  EXPECT_EQ(c[1].param("service"), "reg");
  EXPECT_EQ(c[1].param("error"), "insufficient_scope");
}

TEST(RegistryChallenge, BackslashEscapesInQuotedValuesAreUndone) {
  auto c = parse_challenges(R"(BEARER Realm="a \"quoted\" \\ realm, with comma",scope="s")");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].scheme, "bearer");
  EXPECT_EQ(c[0].param("realm"), R"(a "quoted" \ realm, with comma)");
  EXPECT_EQ(c[0].param("scope"), "s");
}

TEST(RegistryChallenge, Token68FormIsKeptAndTheNextChallengeStillParsed) {
  auto c = parse_challenges("Negotiate abc123==, Basic realm=r");
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].scheme, "negotiate");
  EXPECT_EQ(c[0].param(""), "abc123==");
  EXPECT_EQ(c[1].param("realm"), "r");
}

TEST(RegistryChallenge, EmptyOrJunkHeaderYieldsWhatCouldBeRead) {
  EXPECT_TRUE(parse_challenges("").empty());
  EXPECT_TRUE(parse_challenges("   ").empty());
  auto c = parse_challenges("Basic realm=\"unterminated");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].param("realm"), "unterminated");
}

TEST(RegistryChallenge, TokenAnswerGivesTokenOrElseAccessToken) {
  EXPECT_EQ(*parse_token_response(R"({"token":"t1","access_token":"t2"})"), "t1");
  EXPECT_EQ(*parse_token_response(R"({"access_token":"t2","expires_in":60})"), "t2");
  EXPECT_EQ(parse_token_response("{}").error().message(), "the answer has no \"token\" or \"access_token\"");
  EXPECT_EQ(parse_token_response("<html>").error().message(), "the answer is not a JSON object");
}

// ---- credentials file -----------------------------------------------------------------------

TEST(RegistryAuthFile, ExplicitPathThenRegistryAuthFileThenDockerConfigThenHome) {
  EXPECT_EQ(auth_file_path("/x.json", "/a.json", "/dc", "/home/u"), "/x.json");
  EXPECT_EQ(auth_file_path("", "/a.json", "/dc", "/home/u"), "/a.json");
  EXPECT_EQ(auth_file_path("", nullptr, "/dc", "/home/u"), "/dc/config.json");
  EXPECT_EQ(auth_file_path("", "", "", "/home/u"), "/home/u/.docker/config.json");
}

TEST(RegistryAuthFile, EveryKeyFormDockerWritesMatchesTheHost) {
  for (std::string key : {"127.0.0.1:5000", "https://127.0.0.1:5000", "http://127.0.0.1:5000",
                          "https://127.0.0.1:5000/v1/"}) {
    std::string json = R"({"auths":{")" + key + R"(":{"auth":")" + base64_encode("alice:pa:ss") + R"("}}})";
    auto c = parse_credentials(json, "127.0.0.1:5000", "/f.json");
    ASSERT_TRUE(c) << key << ": " << c.error().message();
    EXPECT_EQ(c->username, "alice") << key;
    EXPECT_EQ(c->password, "pa:ss") << key;  // only the first ':' separates
  }
}

TEST(RegistryAuthFile, AnotherPortOrHostDoesNotMatch) {
  std::string json = R"({"auths":{"127.0.0.1:5001":{"auth":")" + base64_encode("a:b") +
                     R"("},"127.0.0.1":{"auth":")" + base64_encode("c:d") + R"("}}})";
  auto c = parse_credentials(json, "127.0.0.1:5000", "/f.json");
  ASSERT_TRUE(c);
  EXPECT_FALSE(c->present());
}

TEST(RegistryAuthFile, UsernameAndPasswordFieldsAreReadToo) {
  auto c = parse_credentials(R"({"auths":{"reg.test":{"username":"u","password":"p"}}})", "reg.test", "/f");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->username, "u");
  EXPECT_EQ(c->password, "p");
}

TEST(RegistryAuthFile, MissingFileMeansAnonymous) {
  TempDir dir;
  auto c = load_credentials(dir / "none.json", "reg.test");
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_FALSE(c->present());
  EXPECT_EQ(c->source, dir / "none.json");
}

TEST(RegistryAuthFile, MalformedFileIsAnErrorNamingIt) {
  TempDir dir;
  write_file(dir / "config.json", "{\"auths\": ");
  auto c = load_credentials(dir / "config.json", "reg.test");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().message(),
            dir / "config.json" + ": not a JSON object (expected Docker's config.json format)");
  auto bad = parse_credentials(R"({"auths":{"reg.test":{"auth":"not base64!"}}})", "reg.test", "/f.json");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message(), "/f.json: auths entry \"reg.test\": \"auth\" is not base64");
  auto no_colon = parse_credentials(R"({"auths":{"reg.test":{"auth":")" + base64_encode("nocolon") + R"("}}})",
                                    "reg.test", "/f.json");
  ASSERT_FALSE(no_colon);
  EXPECT_EQ(no_colon.error().message(),
            "/f.json: auths entry \"reg.test\": \"auth\" is not base64 of user:password");
}

TEST(RegistryAuthFile, CredentialHelpersAreNotedForTheirHostOnly) {
  std::string json = R"({"credHelpers":{"reg.test":"pass"},"auths":{}})";
  EXPECT_EQ(parse_credentials(json, "reg.test", "/f")->helper, "docker-credential-pass");
  EXPECT_EQ(parse_credentials(json, "other.test", "/f")->helper, "");
  // A credsStore applies to every host that has no usable "auths" entry.
  std::string store = R"({"credsStore":"secretservice","auths":{"reg.test":{}, "b.test":{"auth":")" +
                      base64_encode("u:p") + R"("}}})";
  EXPECT_EQ(parse_credentials(store, "reg.test", "/f")->helper, "docker-credential-secretservice");
  EXPECT_TRUE(parse_credentials(store, "b.test", "/f")->present());
}

TEST(RegistryAuthFile, Base64RoundTripsAndRejectsForeignCharacters) {
  for (std::string s : {"", "a", "ab", "abc", "abcd", "user:pässword\x01"})
    EXPECT_EQ(base64_decode(base64_encode(s)), s);
  EXPECT_EQ(base64_encode("user:pass"), "dXNlcjpwYXNz");
  EXPECT_FALSE(base64_decode("a b"));
}

// ---- manifests ----------------------------------------------------------------------------

const std::string kDigestA = "sha256:" + std::string(64, 'a');
const std::string kDigestB = "sha256:" + std::string(64, 'b');
const std::string kDigestC = "sha256:" + std::string(64, 'c');

std::string entry(const std::string& digest, const std::string& platform_json) {
  return R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" + digest +
         R"(","size":100,"platform":)" + platform_json + "}";
}

std::string index_json() {
  return R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[)" +
         entry(kDigestA, R"({"os":"linux","architecture":"amd64"})") + "," +
         entry(kDigestB, R"({"os":"linux","architecture":"arm64","variant":"v8"})") + "," +
         entry(kDigestC, R"({"os":"unknown","architecture":"unknown"})") + "]}";
}

TEST(RegistryManifest, IndexResolvesToTheWantedPlatform) {
  EXPECT_EQ(select_platform(index_json(), *parse_platform("linux/amd64"))->digest, kDigestA);
  EXPECT_EQ(select_platform(index_json(), *parse_platform("linux/arm64"))->digest, kDigestB);
  // arm64's variant v8 is the default: asking for it or not makes no difference.
  EXPECT_EQ(select_platform(index_json(), *parse_platform("linux/arm64/v8"))->digest, kDigestB);
}

TEST(RegistryManifest, MissingPlatformListsTheAvailableOnes) {
  auto r = select_platform(index_json(), *parse_platform("linux/s390x"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "the index has no manifest for linux/s390x (available: linux/amd64, linux/arm64/v8)");
  EXPECT_EQ(r.error().hint_text(), "choose one with --platform");
}

TEST(RegistryManifest, InvalidPlatformIsRefused) {
  for (std::string p : {"linux", "linux/", "/amd64", "a/b/c/d"}) {
    auto r = parse_platform(p);
    ASSERT_FALSE(r) << p;
    EXPECT_EQ(r.error().message(),
              "invalid platform \"" + p + "\": expected os/architecture[/variant], e.g. linux/amd64");
  }
}

TEST(RegistryManifest, MediaTypeComesFromTheFieldThenTheHeaderThenTheShape) {
  std::string type;
  EXPECT_EQ(*classify_manifest(index_json(), "text/plain", &type), ManifestKind::index);
  EXPECT_EQ(type, media::kOciIndex);
  EXPECT_EQ(*classify_manifest(R"({"schemaVersion":2,"layers":[]})",
                               "application/vnd.docker.distribution.manifest.v2+json; charset=utf-8", &type),
            ManifestKind::image);
  EXPECT_EQ(type, media::kDockerManifest);
  EXPECT_EQ(*classify_manifest(R"({"schemaVersion":2,"config":{},"layers":[]})", "application/json", &type),
            ManifestKind::image);
  EXPECT_EQ(type, media::kOciManifest);
}

TEST(RegistryManifest, SchemaOneIsRefusedWithAReason) {
  std::string type;
  auto r = classify_manifest(R"({"schemaVersion":1,"name":"x","fsLayers":[]})",
                             "application/vnd.docker.distribution.manifest.v1+prettyjws", &type);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(),
            "the manifest is Docker's deprecated schema 1 "
            "(application/vnd.docker.distribution.manifest.v1+json), which sandrun does not pull");
  EXPECT_EQ(r.error().hint_text(), "push the image again with a current docker or skopeo (schema 2 or OCI)");
}

std::string image_manifest(const std::string& layer) {
  return R"({"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" +
         kDigestA + R"(","size":10},"layers":[)" + layer + "]}";
}

TEST(RegistryManifest, EveryTarLayerKindIsAccepted) {
  for (auto type : {media::kOciLayer, media::kOciLayerGzip, media::kOciLayerZstd, media::kDockerLayerGzip}) {
    std::string m = image_manifest(R"({"mediaType":")" + std::string(type) + R"(","digest":")" + kDigestB +
                                   R"(","size":5})");
    auto r = parse_image_manifest(m, media::kOciManifest);
    ASSERT_TRUE(r) << type << ": " << r.error().message();
    ASSERT_EQ(r->layers.size(), 1u);
    EXPECT_EQ(r->layers[0].media_type, type);
    EXPECT_EQ(r->layers[0].size, 5u);
    EXPECT_EQ(r->config.digest, kDigestA);
    EXPECT_EQ(r->digest, sha256_of(m));
  }
}

TEST(RegistryManifest, ForeignUnknownAndUrlLayersAreRefused) {
  auto layer = [](const std::string& type, const std::string& extra = "") {
    return image_manifest(R"({"mediaType":")" + type + R"(","digest":")" + kDigestB + R"(","size":5)" + extra + "}");
  };
  auto foreign = parse_image_manifest(layer("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"), "");
  EXPECT_EQ(foreign.error().message(),
            "layer 1 (" + kDigestB + "): foreign (non-distributable) layer of type "
            "\"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip\": sandrun pulls only layers "
            "the registry itself serves");
  auto urls = parse_image_manifest(layer(std::string(media::kOciLayerGzip), R"(,"urls":["https://x.test/l"])"), "");
  EXPECT_EQ(urls.error().message(), "layer 1 (" + kDigestB + ") must be downloaded from other URLs (a foreign "
                                    "layer), which sandrun does not do");
  auto helm = parse_image_manifest(layer("application/vnd.cncf.helm.chart.content.v1.tar+gzip"), "");
  EXPECT_EQ(helm.error().message(), "layer 1 (" + kDigestB + "): layer media type "
                                    "\"application/vnd.cncf.helm.chart.content.v1.tar+gzip\" is not a tar, "
                                    "tar+gzip or tar+zstd layer");
}

TEST(RegistryManifest, ArtifactConfigsAndForeignDigestsAreRefused) {
  std::string artifact = R"({"schemaVersion":2,"config":{"mediaType":"application/vnd.cncf.helm.config.v1+json",)"
                         R"("digest":")" + kDigestA + R"(","size":10},"layers":[]})";
  EXPECT_EQ(parse_image_manifest(artifact, "").error().message(),
            "config media type \"application/vnd.cncf.helm.config.v1+json\" is not an image config (an "
            "artifact, not an image?)");
  std::string sha512 = image_manifest(R"({"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha512:ab","size":5})");
  EXPECT_EQ(parse_image_manifest(sha512, "").error().message(),
            "layer 1 has digest \"sha512:ab\": only sha256 digests are supported");
  std::string bad = image_manifest(R"({"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:../x","size":5})");
  EXPECT_EQ(parse_image_manifest(bad, "").error().message(), "layer 1 has an invalid digest \"sha256:../x\"");
}

TEST(RegistryManifest, MediaTypesAreCheckedWhereTheyBelong) {
  // An index entry must say a manifest type: a layer's or a config's is refused.
  std::string layer_entry = R"({"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.layer.v1.tar",)"
                            R"("digest":")" + kDigestA + R"(","size":100,"platform":{"os":"linux","architecture":"amd64"}}]})";
  EXPECT_EQ(select_platform(layer_entry, *parse_platform("linux/amd64")).error().message(),
            "index entry 0 for linux/amd64 has media type \"application/vnd.oci.image.layer.v1.tar\", not an image "
            "manifest's");
  // The type a descriptor promises must be the document's own.
  EXPECT_TRUE(check_manifest_descriptor("", "application/vnd.oci.image.manifest.v1+json").ok());
  EXPECT_TRUE(check_manifest_descriptor("application/vnd.docker.distribution.manifest.v2+json",
                                        "application/vnd.docker.distribution.manifest.v2+json")
                  .ok());
  EXPECT_EQ(check_manifest_descriptor("application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json")
                .error()
                .message(),
            "descriptor media type \"application/vnd.oci.image.index.v1+json\" does not match the document's "
            "\"application/vnd.oci.image.manifest.v1+json\"");
  EXPECT_EQ(check_manifest_descriptor("application/vnd.oci.image.config.v1+json", "application/vnd.oci.image.manifest.v1+json")
                .error()
                .message(),
            "descriptor media type \"application/vnd.oci.image.config.v1+json\" is not an image index or manifest type");
  // A config typed as a layer.
  std::string layer_config = R"({"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.layer.v1.tar",)"
                             R"("digest":")" + kDigestA + R"(","size":10},"layers":[]})";
  EXPECT_EQ(parse_image_manifest(layer_config, "").error().message(),
            "config media type \"application/vnd.oci.image.layer.v1.tar\" is not an image config (an artifact, not an "
            "image?)");
}

// ---- HTTP helpers ---------------------------------------------------------------------------

TEST(RegistryHttpText, StatusReasonAndRegistryMessagesAreRendered) {
  EXPECT_EQ(http_status_text(404, "Not Found",
                             R"({"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]})"),
            "404 Not Found: manifest unknown");
  EXPECT_EQ(http_status_text(401, "", R"({"errors":[{"code":"UNAUTHORIZED"},{"message":"b"}]})"),
            "401 Unauthorized: UNAUTHORIZED; b");
  EXPECT_EQ(http_status_text(502, "", "<html>bad gateway</html>"), "502 Bad Gateway");
  EXPECT_EQ(http_status_text(599, "", ""), "599");
}

TEST(RegistryHttpText, AuthorityAndEscapingOfUrls) {
  EXPECT_EQ(url_authority("https://User:pw@Reg.Test:5000/v2/x?y"), "reg.test:5000");
  EXPECT_EQ(url_authority("http://127.0.0.1:5000"), "127.0.0.1:5000");
  EXPECT_EQ(url_escape("repository:team/x:pull"), "repository%3Ateam%2Fx%3Apull");
  EXPECT_EQ(url_escape("a-b_c.d~e f"), "a-b_c.d~e%20f");
}

}  // namespace
}  // namespace sandrun::cache
