// Pulling from a real registry (Debian's docker-registry on 127.0.0.1) through the CLI:
// anonymous, basic auth, by digest; a second pull transfers nothing; a tampered blob fails the
// pull and leaves nothing; 50 jobs of a missing image pull it once; two processes pulling one
// image download it once; `pull = "never"`.
#include <fmt/format.h>

#include <regex>

#include "tests/cache/oci_builder.h"
#include "tests/runner/cli_fixture.h"
#include "tests/support/registry_server.h"
#include "tests/support/rootfs.h"

namespace sandrun::testing {
namespace {

class PullTest : public CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    std::string why;
    SANDRUN_REQUIRE(RegistryServer::available(&why), why);
    // A busybox base and two small layers on it.
    const std::string base = tmp_ / "base";
    ASSERT_EQ(make_busybox_rootfs(base), "");
    ASSERT_EQ(run_command({"tar", "-C", base, "-cf", tmp_ / "base.tar", "."}).status, 0);
    builder_.layer(read_file(tmp_ / "base.tar"), Compression::gzip)
        .layer(TarBuilder().file("app/version", "1").build(), Compression::zstd)
        .layer(TarBuilder().file("app/.wh.version", "").file("app/name", "app").build(), Compression::gzip)
        .cmd({"cat", "/app/name"});
    builder_.write_oci(tmp_ / "layout", "v1");
  }

  std::unique_ptr<RegistryServer> start(RegistryServer::Options options = {}) {
    std::string err;
    auto reg = RegistryServer::start(options, &err);
    EXPECT_TRUE(reg) << err;
    if (reg) EXPECT_EQ(reg->push(tmp_ / "layout", "v1", "team/app:1"), "");
    return reg;
  }
  // Blob downloads the registry served so far.
  static size_t blob_gets(const RegistryServer& reg) {
    const std::string log = reg.log();
    size_t n = 0;
    for (size_t pos = 0; (pos = log.find("\"GET /v2/team/app/blobs/", pos)) != std::string::npos; ++pos) ++n;
    return n;
  }
  CommandResult pull(const RegistryServer& reg, const std::string& ref, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"image", "pull", "--insecure-registry", reg.host()};
    args.insert(args.end(), extra.begin(), extra.end());
    args.push_back(ref);
    return sandrun(args);
  }

  OciImageBuilder builder_;
};

TEST_F(PullTest, AnonymousThenByDigestAndASecondPullTransfersNothing) {
  auto reg = start();
  ASSERT_TRUE(reg);
  const std::string ref = reg->host() + "/team/app:1";
  auto first = pull(*reg, ref);
  ASSERT_EQ(first.status, 0) << first.err;
  EXPECT_NE(first.out.find("pulled " + ref + " (sha256:"), std::string::npos) << first.out;
  EXPECT_NE(first.out.find("3 layers downloaded, 0 already here"), std::string::npos) << first.out;
  const size_t gets = blob_gets(*reg);
  EXPECT_EQ(gets, 4u);  // the config and three layers, once each
  auto run = sandrun({"exec", "--image", ref, "--", "sh", "-c", "cat /app/name; ls /app"});
  EXPECT_EQ(run.status, 0) << run.err;
  EXPECT_EQ(run.out, "appname\n");  // /app/version deleted by the top layer's whiteout
  // Again: only the manifest is asked for.
  auto second = pull(*reg, ref);
  ASSERT_EQ(second.status, 0) << second.err;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(second.out, m, std::regex("is up to date \\((sha256:[0-9a-f]{64})\\)"))) << second.out;
  EXPECT_EQ(blob_gets(*reg), gets);
  // By digest, into another cache: a record without a tag, that runs.
  const std::string by_digest = reg->host() + "/team/app@" + m[1].str();
  auto other = run_sandrun(tmp_ / "root2", {"image", "pull", "--insecure-registry", reg->host(), by_digest});
  ASSERT_EQ(other.status, 0) << other.err;
  EXPECT_NE(other.out.find("pulled " + by_digest + " ("), std::string::npos) << other.out;
  auto ls = run_sandrun(tmp_ / "root2", {"image", "ls"});
  EXPECT_NE(ls.out.find(by_digest), std::string::npos) << ls.out;
  EXPECT_EQ(run_sandrun(tmp_ / "root2", {"exec", "--image", by_digest}).out, "app");
  EXPECT_EQ(run_sandrun(tmp_ / "root2", {"cleanup"}).status, 0);
  expect_nothing_left();
}

TEST_F(PullTest, BasicAuthUsesTheCredentialsFileAndAWrongPasswordIsRefused) {
  auto reg = start({.auth = RegistryServer::Auth::htpasswd});
  ASSERT_TRUE(reg);
  const std::string ref = reg->host() + "/team/app:1";
  auto creds = [&](const std::string& password) {
    const std::string file = tmp_ / ("auth-" + password + ".json");
    write_file(file, fmt::format(R"({{"auths": {{"{}": {{"username": "sandrun", "password": "{}"}}}}}})", reg->host(), password));
    return file;
  };
  auto none = pull(*reg, ref, {"--auth-file", tmp_ / "missing.json"});
  EXPECT_EQ(none.status, 1);
  EXPECT_NE(none.err.find("401 Unauthorized"), std::string::npos) << none.err;
  EXPECT_NE(none.err.find("no credentials for " + reg->host()), std::string::npos) << none.err;
  auto wrong = pull(*reg, ref, {"--auth-file", creds("nope")});
  EXPECT_EQ(wrong.status, 1);
  EXPECT_NE(wrong.err.find("credentials for " + reg->host() + " from " + (tmp_ / "auth-nope.json") + " were refused"),
            std::string::npos) << wrong.err;
  EXPECT_EQ(dir_entries(root() + "/layers/sha256"), std::vector<std::string>{});
  auto right = pull(*reg, ref, {"--auth-file", creds("pull-secret")});
  ASSERT_EQ(right.status, 0) << right.err;
  EXPECT_NE(right.out.find("3 layers downloaded"), std::string::npos) << right.out;
  expect_nothing_left();
}

TEST_F(PullTest, ATamperedBlobFailsWithADigestMismatchAndLeavesNothing) {
  auto reg = start();
  ASSERT_TRUE(reg);
  // Flip one byte of the zstd layer in the registry's own storage.
  const std::string manifest = run_command({"skopeo", "inspect", "--raw", "--tls-verify=false",
                                            "docker://" + reg->host() + "/team/app:1"}).out;
  std::smatch m;
  std::string rest = manifest;
  std::vector<std::string> digests;
  while (std::regex_search(rest, m, std::regex("\"digest\":\\s*\"(sha256:[0-9a-f]{64})\""))) {
    digests.push_back(m[1]);
    rest = m.suffix();
  }
  ASSERT_EQ(digests.size(), 4u) << manifest;
  const std::string blob = reg->blob_data_path(digests[2]);
  std::string data = read_file(blob);
  data[data.size() / 2] ^= 0x20;
  write_file(blob, data);
  auto r = pull(*reg, reg->host() + "/team/app:1");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("blob " + digests[2] + ": digest mismatch (got sha256:"), std::string::npos) << r.err;
  for (const char* dir : {"/layers/sha256", "/blobs/sha256", "/tmp"})
    EXPECT_EQ(dir_entries(root() + dir), std::vector<std::string>{}) << dir;
  EXPECT_EQ(sandrun({"image", "ls"}).out.find("team/app"), std::string::npos);
  expect_nothing_left();
}

TEST_F(PullTest, FiftyJobsOfOneMissingImagePullItOnce) {
  auto reg = start();
  ASSERT_TRUE(reg);
  std::string toml = fmt::format("[defaults]\nimage = \"{}/team/app:1\"\n", reg->host());
  for (int i = 0; i < 50; ++i) toml += fmt::format("[jobs.j{}]\ncommand = [\"cat\", \"/app/name\"]\n", i);
  auto r = sandrun({"run", "-j", "8", "--insecure-registry", reg->host(), jobs(toml)});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("50 jobs: 50 passed"), std::string::npos) << r.out;
  size_t pulled = 0;
  for (size_t pos = 0; (pos = r.err.find("sandrun: pulled ", pos)) != std::string::npos; ++pos) ++pulled;
  EXPECT_EQ(pulled, 1u) << r.err;
  EXPECT_EQ(blob_gets(*reg), 4u);
  EXPECT_EQ(log("j49"), "app");
  expect_nothing_left();
}

TEST_F(PullTest, TwoProcessesPullingOneImageDownloadItOnce) {
  auto reg = start();
  ASSERT_TRUE(reg);
  const std::string ref = reg->host() + "/team/app:1";
  std::vector<std::unique_ptr<Background>> both;
  for (int i = 0; i < 2; ++i) {
    both.push_back(std::make_unique<Background>(
        std::vector<std::string>{sandrun_bin(), "--root", root(), "image", "pull", "--insecure-registry", reg->host(), ref}));
  }
  std::string outs;
  for (auto& p : both) {
    auto r = p->finish();
    EXPECT_EQ(r.status, 0) << r.err;
    outs += r.out;
  }
  EXPECT_NE(outs.find("3 layers downloaded"), std::string::npos) << outs;
  EXPECT_NE(outs.find("is up to date"), std::string::npos) << outs;
  EXPECT_EQ(blob_gets(*reg), 4u);
  EXPECT_EQ(dir_entries(root() + "/tmp"), std::vector<std::string>{});
  expect_nothing_left();
}

TEST_F(PullTest, PullNeverRefusesAMissingImageAndAlwaysNeedsARegistry) {
  auto reg = start();
  ASSERT_TRUE(reg);
  auto never = sandrun(
      {"run", jobs(fmt::format("[jobs.a]\nimage = \"{}/team/app:1\"\npull = \"never\"\nrun = \"true\"\n", reg->host()))});
  EXPECT_EQ(never.status, 2);
  EXPECT_NE(never.err.find(fmt::format("jobs.a.image: image \"{0}/team/app:1\" is not in the image cache (pull = "
                                       "\"never\"); pull it with: sandrun image pull {0}/team/app:1",
                                       reg->host())),
            std::string::npos)
      << never.err;
  EXPECT_EQ(blob_gets(*reg), 0u);
  auto always = sandrun({"run", jobs("[jobs.a]\nimage = \"busybox\"\npull = \"always\"\nrun = \"true\"\n")});
  EXPECT_EQ(always.status, 2);
  EXPECT_NE(always.err.find("pull = \"always\" needs a registry in the image name"), std::string::npos) << always.err;
  expect_nothing_left();
}

}  // namespace
}  // namespace sandrun::testing
