// The image formats users bring, end to end through the CLI: an OCI layout made by umoci with a
// deleted file and an opaque directory, the same image as skopeo writes it to a docker-save
// archive and an OCI archive, and an image of 100 layers; each imported and run.
#include <fmt/format.h>

#include "tests/cache/oci_builder.h"
#include "tests/runner/cli_fixture.h"
#include "tests/support/rootfs.h"

namespace sandrun::testing {
namespace {

// What the three-layer image must show: /data/gone deleted by layer 2, /opq made opaque by
// layer 3 (its old file hidden), /etc/motd from layer 1.
constexpr const char* kLook = "find /data /opq | sort; cat /etc/motd";
constexpr const char* kExpected = "/data\n/data/keep\n/data/two\n/opq\n/opq/new\nmotd\n";

class ImageFormatsTest : public CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    SANDRUN_REQUIRE(run_command({"umoci", "--version"}).status == 0, "needs umoci (apt-get install umoci)");
    SANDRUN_REQUIRE(run_command({"skopeo", "--version"}).status == 0, "needs skopeo (apt-get install skopeo)");
  }

  void sh(const std::string& script) {
    auto r = run_command({"sh", "-ec", script});
    ASSERT_EQ(r.status, 0) << script << "\n" << r.err;
  }

  // An OCI layout at tmp_/L with tags v1 (busybox + files), v2 (data/gone deleted, data/two
  // added: umoci writes the whiteout) and v3 (a raw layer that makes /opq opaque).
  void make_umoci_layout() {
    const std::string L = tmp_ / "L", B = tmp_ / "B";
    sh(fmt::format("umoci init --layout {0}; umoci new --image {0}:base; umoci unpack --image {0}:base {1} >/dev/null", L, B));
    ASSERT_EQ(make_busybox_rootfs(B + "/rootfs"), "");
    sh(fmt::format("cd {0}/rootfs; mkdir -p data opq; echo keep > data/keep; echo gone > data/gone; "
                   "echo old > opq/old; echo motd > etc/motd",
                   B));
    sh(fmt::format("umoci repack --image {0}:v1 {1}; rm -rf {1}; umoci unpack --image {0}:v1 {1} >/dev/null", L, B));
    sh(fmt::format("rm {0}/rootfs/data/gone; echo two > {0}/rootfs/data/two", B));
    sh(fmt::format("umoci repack --image {0}:v2 {1}; rm -rf {1}", L, B));
    const std::string raw = tmp_ / "raw";
    sh(fmt::format("mkdir -p {0}/opq; touch {0}/opq/.wh..wh..opq; echo new > {0}/opq/new; "
                   "tar -C {0} -cf {1}/l3.tar opq; umoci raw add-layer --image {2}:v2 --tag v3 {1}/l3.tar",
                   raw, tmp_.path(), L));
  }

  CommandResult look(const std::string& image) { return sandrun({"exec", "--image", image, "--", "sh", "-c", kLook}); }
};

TEST_F(ImageFormatsTest, AnUmociLayoutWithAWhiteoutAndAnOpaqueDirRunsWithExactlyItsFiles) {
  make_umoci_layout();
  // The layout holds four tags: without a name sandrun cannot tell which to import.
  auto unnamed = sandrun({"image", "import", tmp_ / "L"});
  EXPECT_EQ(unnamed.status, 1);
  EXPECT_NE(unnamed.err.find("has a tag but no name"), std::string::npos) << unnamed.err;
  auto imp = sandrun({"image", "import", tmp_ / "L", "team/umoci:v3"});
  ASSERT_EQ(imp.status, 0) << imp.err;
  EXPECT_EQ(imp.out.rfind("imported team/umoci:v3 (", 0), 0u) << imp.out;
  EXPECT_NE(imp.out.find(", 3 layers, "), std::string::npos) << imp.out;
  auto r = look("team/umoci:v3");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, kExpected);
  // v2 is another image of the same layout: its first two layers are already here.
  auto v2 = sandrun({"image", "import", tmp_ / "L", "team/umoci:v2"});
  ASSERT_EQ(v2.status, 0) << v2.err;
  EXPECT_NE(v2.out.find("2 already in the cache"), std::string::npos) << v2.out;
  EXPECT_EQ(look("team/umoci:v2").out, "/data\n/data/keep\n/data/two\n/opq\n/opq/old\nmotd\n");
  expect_nothing_left();
}

TEST_F(ImageFormatsTest, TheSameImageFromSkopeosDockerArchiveAndOciArchiveRunsTheSame) {
  make_umoci_layout();
  const std::string docker = tmp_ / "saved.tar", oci = tmp_ / "oci.tar";
  sh(fmt::format("skopeo copy -q oci:{0}:v3 docker-archive:{1}:127.0.0.1:5000/team/saved:1", tmp_ / "L", docker));
  sh(fmt::format("skopeo copy -q oci:{0}:v3 oci-archive:{1}:127.0.0.1:5000/team/oci:1", tmp_ / "L", oci));
  auto d = sandrun({"image", "import", docker});
  ASSERT_EQ(d.status, 0) << d.err;
  EXPECT_EQ(d.out.rfind("imported 127.0.0.1:5000/team/saved:1 (", 0), 0u) << d.out;
  EXPECT_EQ(look("127.0.0.1:5000/team/saved:1").out, kExpected);
  auto o = sandrun({"image", "import", oci});
  ASSERT_EQ(o.status, 0) << o.err;
  EXPECT_EQ(o.out.rfind("imported 127.0.0.1:5000/team/oci:1 (", 0), 0u) << o.out;
  EXPECT_EQ(look("127.0.0.1:5000/team/oci:1").out, kExpected);
  expect_nothing_left();
}

// More layers than fit in one mount option string as paths: 100 layers of one file each, on a
// busybox base, run with a writable layer, a read-only root and a remapped root.
TEST_F(ImageFormatsTest, AnImageOfAHundredLayersRuns) {
  const std::string base = tmp_ / "base";
  ASSERT_EQ(make_busybox_rootfs(base), "");
  sh(fmt::format("tar -C {} -cf {} .", base, tmp_ / "base.tar"));
  OciImageBuilder b;
  b.layer(read_file(tmp_ / "base.tar"), Compression::gzip);
  for (int i = 1; i < 100; ++i) b.layer(TarBuilder().file(fmt::format("l/{:03}", i), std::to_string(i)).build(), Compression::none);
  b.write_oci(tmp_ / "many", "team/many:1");
  auto imp = sandrun({"image", "import", tmp_ / "many"});
  ASSERT_EQ(imp.status, 0) << imp.err;
  EXPECT_NE(imp.out.find(", 100 layers, "), std::string::npos) << imp.out;
  const std::vector<std::string> cmd = {"sh", "-c", "ls /l | wc -l; echo $(cat /l/001) $(cat /l/099)"};
  for (const std::vector<std::string>& flags :
       {std::vector<std::string>{}, {"--read-only"}, {"--userns"}}) {
    std::vector<std::string> args = {"exec", "--image", "team/many:1"};
    args.insert(args.end(), flags.begin(), flags.end());
    args.push_back("--");
    args.insert(args.end(), cmd.begin(), cmd.end());
    auto r = sandrun(args);
    EXPECT_EQ(r.status, 0) << (flags.empty() ? "" : flags[0]) << ": " << r.err;
    EXPECT_EQ(r.out, "99\n1 99\n") << (flags.empty() ? "" : flags[0]);
  }
  expect_nothing_left();
}

}  // namespace
}  // namespace sandrun::testing
