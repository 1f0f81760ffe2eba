// Image reference parsing: names, tags, registry ports, and the errors users read.
#include <gtest/gtest.h>

#include "cache/store.h"

namespace sandrun::cache {
namespace {

void expect_ref(std::string_view text, const std::string& name, const std::string& tag) {
  auto r = parse_ref(text);
  ASSERT_TRUE(r.ok()) << text << ": " << r.error().message();
  EXPECT_EQ(r->name, name) << text;
  EXPECT_EQ(r->tag, tag) << text;
}

std::string error_of(std::string_view text) {
  auto r = parse_ref(text);
  return r.ok() ? "(accepted)" : r.error().message();
}

TEST(RefTest, BareNameMeansLatest) { expect_ref("busybox", "busybox", "latest"); }

TEST(RefTest, NameWithPathAndTag) {
  expect_ref("team/builder:1.4", "team/builder", "1.4");
  expect_ref("a_b-c/d.e__f:V1_x.y-z", "a_b-c/d.e__f", "V1_x.y-z");
}

TEST(RefTest, ColonBeforeLastSlashIsARegistryPort) {
  expect_ref("127.0.0.1:5000/team/builder:1.4", "127.0.0.1:5000/team/builder", "1.4");
  expect_ref("localhost:5000/x", "localhost:5000/x", "latest");
  expect_ref("ghcr.io/owner/img", "ghcr.io/owner/img", "latest");
}

TEST(RefTest, StrayCharactersAreRefused) {
  EXPECT_EQ(error_of("Bad Name"),
            R"(invalid image reference "Bad Name": name component "Bad Name" must be lowercase )"
            R"(letters, digits and . _ - (starting and ending with a letter or digit))");
  EXPECT_NE(error_of("UPPER").find(R"(invalid image reference "UPPER": name component)"),
            std::string::npos);
  EXPECT_NE(error_of("a//b").find("name component \"\""), std::string::npos);
  EXPECT_NE(error_of("-a").find("name component \"-a\""), std::string::npos);
  EXPECT_NE(error_of("a/../b").find("name component \"..\""), std::string::npos);
  EXPECT_EQ(error_of(""), R"(invalid image reference "": empty name)");
  EXPECT_EQ(error_of("bad host:1/x"),
            R"(invalid image reference "bad host:1/x": invalid registry host "bad host:1")");
}

TEST(RefTest, BadTagsAreRefused) {
  const std::string tag_rule =
      "must be 1 to 128 letters, digits and _ . - (not starting with . or -)";
  EXPECT_EQ(error_of("a:"), R"(invalid image reference "a:": tag "" )" + tag_rule);
  EXPECT_EQ(error_of("a:-x"), R"(invalid image reference "a:-x": tag "-x" )" + tag_rule);
  EXPECT_EQ(error_of("a:b c"), R"(invalid image reference "a:b c": tag "b c" )" + tag_rule);
  expect_ref("a:" + std::string(128, 't'), "a", std::string(128, 't'));
  EXPECT_NE(error_of("a:" + std::string(129, 't')), "(accepted)");
}

TEST(RefTest, DigestReferencesNameAManifest) {
  const std::string d = "sha256:" + std::string(64, 'a');
  auto r = parse_ref("127.0.0.1:5000/team/builder@" + d);
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->name, "127.0.0.1:5000/team/builder");
  EXPECT_EQ(r->tag, "");
  EXPECT_EQ(r->digest, d);
  EXPECT_EQ(r->str(), "127.0.0.1:5000/team/builder@" + d);
  EXPECT_EQ(error_of("busybox@sha256:0123"),
            R"(invalid image reference "busybox@sha256:0123": digest "sha256:0123" must be sha256: )"
            R"(and 64 lowercase hex digits)");
  EXPECT_EQ(error_of("busybox:1@" + d),
            "invalid image reference \"busybox:1@" + d + "\": a reference has a tag or a digest, not both");
  EXPECT_NE(error_of("Bad@" + d).find("name component \"Bad\""), std::string::npos);
}

TEST(RefTest, RegistryAndRepositoryAreSplitOffTheName) {
  auto split = [](std::string_view text) {
    auto r = parse_ref(text);
    EXPECT_TRUE(r.ok()) << text;
    return r->registry() + " | " + r->repository();
  };
  EXPECT_EQ(split("127.0.0.1:5000/team/builder:1.4"), "127.0.0.1:5000 | team/builder");
  EXPECT_EQ(split("localhost/x"), "localhost | x");
  EXPECT_EQ(split("ghcr.io/owner/img"), "ghcr.io | owner/img");
  EXPECT_EQ(split("team/builder"), " | team/builder");  // local only: no default registry
  EXPECT_EQ(split("busybox"), " | busybox");
}

}  // namespace
}  // namespace sandrun::cache
