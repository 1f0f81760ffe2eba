// `sandrun image import|ls|rm`, `--help` on every command, `version`.
#include "sandbox/sys/fs.h"
#include "tests/runner/cli_fixture.h"
#include "tests/support/rootfs.h"

namespace sandrun::testing {
namespace {

class ImageCliTest : public CliTest {};

TEST_F(ImageCliTest, ImportListRunAndRemoveARootfsTarball) {
  std::string rootfs = tmp_ / "rootfs";
  ASSERT_EQ(make_busybox_rootfs(rootfs), "");
  std::string tarball = tmp_ / "rootfs.tar.gz";
  ASSERT_EQ(run_command({"tar", "-C", rootfs, "-czf", tarball, "."}).status, 0);

  auto imp = sandrun({"image", "import", "--rootfs", tarball, "tools:1"});
  ASSERT_EQ(imp.status, 0) << imp.err;
  EXPECT_EQ(imp.out.rfind("imported tools:1 (", 0), 0u) << imp.out;

  auto ls = sandrun({"image", "ls"});
  EXPECT_EQ(ls.status, 0);
  EXPECT_EQ(ls.out.rfind("IMAGE    ID            LAYERS        SIZE  CREATED\ntools:1  ", 0), 0u) << ls.out;

  auto run = sandrun({"exec", "--image", "tools:1", "--", "probe", "hostname"});
  EXPECT_EQ(run.status, 0) << run.err;
  EXPECT_EQ(run.out, "exec\n");

  auto rm = sandrun({"image", "rm", "tools:1"});
  EXPECT_EQ(rm.status, 0) << rm.err;
  EXPECT_EQ(rm.out, "removed tools:1 (1 layer deleted)\n");
  EXPECT_EQ(sandrun({"image", "ls"}).out.find("tools:1"), std::string::npos);
  EXPECT_EQ(dir_entries(root() + "/layers/sha256"), std::vector<std::string>{});
  EXPECT_EQ(sandrun({"exec", "--image", "tools:1", "--", "true"}).status, 125);
}

TEST_F(ImageCliTest, ImportingSomethingThatIsNotATarballFailsAndLeavesNothing) {
  write_file(tmp_ / "notes.txt", "not a tarball\n");
  auto r = sandrun({"image", "import", "--rootfs", tmp_ / "notes.txt", "bad"});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("Unrecognized archive format"), std::string::npos) << r.err;
  // Without --rootfs it must be an image layout or archive, and the error says what else to use.
  auto guess = sandrun({"image", "import", tmp_ / "notes.txt"});
  EXPECT_EQ(guess.status, 1);
  EXPECT_NE(guess.err.find("Unrecognized archive format"), std::string::npos) << guess.err;
  EXPECT_EQ(dir_entries(root() + "/layers/sha256"), std::vector<std::string>{});
  EXPECT_EQ(dir_entries(root() + "/tmp"), std::vector<std::string>{});
}

TEST_F(ImageCliTest, RemovingAnUnknownImageFails) {
  auto r = sandrun({"image", "rm", "ghost"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, "sandrun: image \"ghost:latest\" not found\n");
}

TEST_F(ImageCliTest, EveryCommandHasHelp) {
  for (const auto& args : std::vector<std::vector<std::string>>{{"--help"},
                                                                {"run", "--help"},
                                                                {"exec", "--help"},
                                                                {"image", "--help"},
                                                                {"image", "import", "--help"},
                                                                {"image", "ls", "--help"},
                                                                {"image", "rm", "--help"},
                                                                {"cleanup", "--help"},
                                                                {"version", "--help"}}) {
    auto r = sandrun(args);
    EXPECT_EQ(r.status, 0) << args[0];
    EXPECT_NE(r.out.find("Usage:"), std::string::npos) << args[0] << ": " << r.out;
  }
}

TEST_F(ImageCliTest, VersionAndUsageErrors) {
  auto v = sandrun({"version"});
  EXPECT_EQ(v.status, 0);
  EXPECT_EQ(v.out.rfind("sandrun 0.1.0 (libuv ", 0), 0u) << v.out;
  EXPECT_EQ(sandrun({}).status, 2);
  EXPECT_EQ(sandrun({"frobnicate"}).status, 2);
}

}  // namespace
}  // namespace sandrun::testing
