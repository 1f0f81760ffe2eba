// The image caps of the host file and the layer seal, through the sandrun binary: a bomb
// imported under the operator's max_image_bytes stops with a message naming the cap and leaves
// nothing; a layer edited on disk is refused by `exec` and `run` until `image verify` repairs
// the store.
#include "tests/cache/oci_builder.h"
#include "tests/runner/cli_fixture.h"
#include "tests/support/rootfs.h"

namespace sandrun::testing {
namespace {

class ImageBoundsCliTest : public CliTest {
 protected:
  std::string host_file(const std::string& toml) {
    const std::string path = tmp_ / "sandrun.toml";
    write_file(path, toml);
    return path;
  }
  void expect_store_empty() {
    for (const char* dir : {"/layers/sha256", "/blobs/sha256", "/seals", "/tmp"})
      EXPECT_EQ(dir_entries(root() + dir), std::vector<std::string>{}) << dir;
  }
};

TEST_F(ImageBoundsCliTest, ABombStopsAtTheHostFilesCapAndLeavesNothing) {
  const std::string bomb = tmp_ / "bomb.tar.zst";
  write_file(bomb, TarBuilder().file("zeros", std::string(16 << 20, '\0')).build(Compression::zstd));
  const std::string config = host_file("[policy]\nmax_image_bytes = \"4MiB\"\n");
  auto r = sandrun({"--config", config, "image", "import", "--rootfs", bomb, "bomb:1"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err.rfind("sandrun: import " + bomb + ": layer entry \"zeros\": the image unpacks to more than 4 MiB, its "
                        "cap per image\n  hint: a decompression bomb",
                        0),
            0u)
      << r.err;
  expect_store_empty();
  // Without the host file the default cap (64 GiB) lets a 16 MiB image in.
  const std::string small = tmp_ / "small.tar.gz";
  write_file(small, TarBuilder().file("zeros", std::string(16 << 20, '\0')).build(Compression::gzip));
  auto ok = sandrun({"image", "import", "--rootfs", small, "small:1"});
  EXPECT_EQ(ok.status, 0) << ok.err;
}

TEST_F(ImageBoundsCliTest, ALayerEditedOnDiskIsRefusedByExecUntilVerifyRepairsIt) {
  const std::string rootfs = tmp_ / "rootfs";
  ASSERT_EQ(make_busybox_rootfs(rootfs), "");
  ASSERT_EQ(import_rootfs(rootfs, "tools:1"), "");
  const auto layers = dir_entries(root() + "/layers/sha256");
  ASSERT_EQ(layers.size(), 1u);
  // A file truncated on disk (a crash while the cache was written, a full disk).
  const std::string passwd = root() + "/layers/sha256/" + layers[0] + "/etc/passwd";
  ASSERT_EQ(::truncate(passwd.c_str(), 3), 0);
  auto r = sandrun({"exec", "--image", "tools:1", "--", "cat", "/etc/passwd"});
  EXPECT_EQ(r.status, 125);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("layer sha256:" + layers[0] + " was changed on disk since it was unpacked"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("hint: run `sandrun image verify` (it removes damaged layers), then import or pull the image "
                       "again"),
            std::string::npos)
      << r.err;
  auto verify = sandrun({"image", "verify"});
  EXPECT_NE(verify.status, 0);
  ASSERT_EQ(import_rootfs(rootfs, "tools:1"), "");
  auto again = sandrun({"exec", "--image", "tools:1", "--", "cat", "/etc/passwd"});
  EXPECT_EQ(again.status, 0) << again.err;
  EXPECT_NE(again.out.find("root:"), std::string::npos);
  expect_nothing_left();
}

}  // namespace
}  // namespace sandrun::testing
