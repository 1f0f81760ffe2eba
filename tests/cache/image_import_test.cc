// Importing OCI image layouts and docker-save archives: every layer, digest and config field;
// layers shared and reused; names; platforms; tampering refused with nothing committed.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cache/digest.h"
#include "cache/store.h"
#include "sandbox/sys/fs.h"
#include "tests/cache/oci_builder.h"
#include "tests/cache/test_util.h"
#include "tests/support/test_env.h"

namespace sandrun::cache {
namespace {

using sandrun::testing::Compression;
using sandrun::testing::list_dir;
using sandrun::testing::OciImageBuilder;
using sandrun::testing::read_file;
using sandrun::testing::TarBuilder;
using sandrun::testing::write_file;

class ImageImportTest : public sandrun::testing::StoreFixture {
 protected:
  std::vector<ImportedImage> import(const std::string& from, const std::string& name = "", const std::string& platform = "") {
    auto r = store_->import_archive(from, name, ImportOptions{platform, 2});
    EXPECT_TRUE(r.ok()) << r.error().message();
    return r.ok() ? std::move(*r) : std::vector<ImportedImage>{};
  }
  // The error as sandrun prints it: message, then the hint on its own line.
  std::string import_error(const std::string& from, const std::string& name = "", const std::string& platform = "") {
    auto r = store_->import_archive(from, name, ImportOptions{platform, 2});
    return r.ok() ? "(imported)" : r.error().render();
  }
  void expect_store_empty() {
    EXPECT_TRUE(list_dir(path("layers/sha256")).empty());
    EXPECT_TRUE(list_dir(path("blobs/sha256")).empty());
    EXPECT_TRUE(list_dir(path("tmp")).empty());
    EXPECT_TRUE(store_->list()->empty());
  }
  // Three layers: a base, one that adds, one that changes a file of the base.
  static OciImageBuilder three_layers() {
    OciImageBuilder b;
    b.layer(TarBuilder().dir("bin").file("bin/tool", "v1", 0755).file("etc/motd", "base").build(), Compression::gzip)
        .layer(TarBuilder().file("usr/share/doc/readme", "docs").build(), Compression::zstd)
        .layer(TarBuilder().file("bin/tool", "v2", 0755).build(), Compression::none)
        .env({"PATH=/bin", "MODE=test"})
        .entrypoint({"/bin/tool"})
        .cmd({"--help"})
        .workdir("/work")
        .user("1000:1000");
    return b;
  }

};

TEST_F(ImageImportTest, AnOciLayoutImportsEveryLayerWithItsDigestsAndTheConfig) {
  OciImageBuilder b = three_layers();
  const std::string manifest_digest = b.write_oci(dir_ / "layout", "team/tool:1");
  auto images = import(dir_ / "layout");
  ASSERT_EQ(images.size(), 1u);
  const ImageRecord& r = images[0].record;
  EXPECT_EQ(r.ref(), "team/tool:1");
  EXPECT_EQ(r.manifest_digest, manifest_digest);
  EXPECT_EQ(r.manifest_media_type, "application/vnd.oci.image.manifest.v1+json");
  EXPECT_EQ(r.id, sandrun::testing::sha256_hex_digest(b.config()));
  ASSERT_EQ(r.layers.size(), 3u);
  const char* types[] = {"application/vnd.oci.image.layer.v1.tar+gzip", "application/vnd.oci.image.layer.v1.tar+zstd",
                         "application/vnd.oci.image.layer.v1.tar"};
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(r.layers[i].diff_id, b.diff_ids()[i]);
    EXPECT_EQ(r.layers[i].media_type, types[i]);
    EXPECT_EQ(sha256_of(read_file(path("blobs/sha256/" + std::string(digest_hex(r.layers[i].blob_digest))))),
              r.layers[i].blob_digest);
  }
  EXPECT_EQ(read_file(store_->layer_path(r.layers[0].diff_id) + "/bin/tool"), "v1");
  EXPECT_EQ(read_file(store_->layer_path(r.layers[2].diff_id) + "/bin/tool"), "v2");
  EXPECT_EQ(r.config.env, (std::vector<std::string>{"PATH=/bin", "MODE=test"}));
  EXPECT_EQ(r.config.entrypoint, std::vector<std::string>{"/bin/tool"});
  EXPECT_EQ(r.config.cmd, std::vector<std::string>{"--help"});
  EXPECT_EQ(r.config.working_dir, "/work");
  EXPECT_EQ(r.config.user, "1000:1000");
  EXPECT_EQ(images[0].stats.layers_unpacked, 3u);
  // The manifest and config are stored as they came: the image can be saved unchanged.
  EXPECT_EQ(sha256_of(read_file(path("blobs/sha256/" + std::string(digest_hex(r.manifest_digest))))), manifest_digest);
  EXPECT_TRUE(list_dir(path("tmp")).empty());
}

TEST_F(ImageImportTest, ASecondImportReadsNoLayerAndASharedLayerIsStoredOnce) {
  OciImageBuilder a = three_layers();
  a.write_oci(dir_ / "a", "team/a:1");
  import(dir_ / "a");
  auto again = import(dir_ / "a");
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].stats.layers_unpacked, 0u);
  EXPECT_EQ(again[0].stats.layers_reused, 3u);
  EXPECT_EQ(again[0].stats.bytes_read, 0u);
  // Another image on the same base: only its own layer is read.
  OciImageBuilder b;
  b.layer(TarBuilder().dir("bin").file("bin/tool", "v1", 0755).file("etc/motd", "base").build(), Compression::gzip)
      .layer(TarBuilder().file("other", "x").build(), Compression::gzip);
  b.write_oci(dir_ / "b", "team/b:1");
  auto bi = import(dir_ / "b");
  ASSERT_EQ(bi.size(), 1u);
  EXPECT_EQ(bi[0].stats.layers_reused, 1u);
  EXPECT_EQ(bi[0].stats.layers_unpacked, 1u);
  EXPECT_EQ(list_dir(path("layers/sha256")).size(), 4u);
  EXPECT_EQ(store_->list()->size(), 2u);
}

TEST_F(ImageImportTest, AnOciLayoutTarImportsLikeItsDirectory) {
  three_layers().write_oci(dir_ / "layout", "team/tool:1");
  sandrun::testing::tar_directory(dir_ / "layout", dir_ / "layout.tar");
  auto images = import(dir_ / "layout.tar");
  ASSERT_EQ(images.size(), 1u);
  EXPECT_EQ(images[0].record.ref(), "team/tool:1");
  EXPECT_EQ(images[0].record.layers.size(), 3u);
  EXPECT_TRUE(list_dir(path("tmp")).empty());
}

TEST_F(ImageImportTest, ALayoutThatNamesOnlyATagNeedsAName) {
  three_layers().write_oci(dir_ / "layout", "1.0");
  EXPECT_EQ(import_error(dir_ / "layout"),
            "import " + (dir_ / "layout") +
                ": its image \"1.0\" has a tag but no name; name it: sandrun image import FILE NAME[:TAG]");
  auto images = import(dir_ / "layout", "team/tool:1.0");
  ASSERT_EQ(images.size(), 1u);
  EXPECT_EQ(images[0].record.ref(), "team/tool:1.0");
}

TEST_F(ImageImportTest, AnIndexOfPlatformsGivesTheHostsImageOrTheOneAskedFor) {
  OciImageBuilder amd, arm;
  amd.layer(TarBuilder().file("arch", "amd64").build());
  arm.layer(TarBuilder().file("arch", "arm64").build()).platform("linux", "arm64");
  const std::string layout = dir_ / "multi";
  sandrun::testing::write_oci_index(layout, {amd.write_blobs(layout), arm.write_blobs(layout)}, "team/multi:1");
  auto host = import(layout);
  ASSERT_EQ(host.size(), 1u);
  EXPECT_EQ(read_file(store_->layer_path(host[0].record.layers[0].diff_id) + "/arch"), "amd64");
  auto other = import(layout, "team/multi:arm", "linux/arm64");
  ASSERT_EQ(other.size(), 1u);
  EXPECT_EQ(read_file(store_->layer_path(other[0].record.layers[0].diff_id) + "/arch"), "arm64");
  EXPECT_EQ(import_error(layout, "", "linux/s390x"),
            "import " + layout + ": manifest " + nlohmann::json::parse(read_file(layout + "/index.json"))["manifests"][0]["digest"].get<std::string>() +
                ": no image for linux/s390x (it has linux/amd64, linux/arm64)");
  EXPECT_EQ(import_error(layout, "", "linux"),
            "import " + layout + ": invalid platform \"linux\": expected os/architecture[/variant], e.g. linux/amd64");
}

TEST_F(ImageImportTest, ATamperedLayerFailsWithADigestMismatchAndCommitsNothing) {
  OciImageBuilder b = three_layers();
  b.write_oci(dir_ / "layout", "team/tool:1");
  auto m = nlohmann::json::parse(read_file(dir_ / ("layout/blobs/sha256/" + nlohmann::json::parse(read_file(dir_ / "layout/index.json"))["manifests"][0]["digest"].get<std::string>().substr(7))));
  const std::string digest = m["layers"][2]["digest"];  // the uncompressed one: flip a byte of a file
  const std::string blob = dir_ / ("layout/blobs/sha256/" + digest.substr(7));
  std::string data = read_file(blob);
  data[data.find("v2")] = 'X';
  write_file(blob, data);
  std::string err = import_error(dir_ / "layout");
  EXPECT_NE(err.find(": layer 3 of 3: blob " + digest + ": digest mismatch (got sha256:"), std::string::npos) << err;
  expect_store_empty();
}

TEST_F(ImageImportTest, AConfigThatLiesAboutADiffIdFailsAndCommitsNothing) {
  OciImageBuilder b = three_layers();
  b.fake_diff_id(1, "sha256:" + std::string(64, '0'));
  b.write_oci(dir_ / "layout", "team/tool:1");
  std::string err = import_error(dir_ / "layout");
  EXPECT_NE(err.find(": layer 2 of 3: diff id mismatch: the image config says sha256:000"), std::string::npos) << err;
  expect_store_empty();
}

TEST_F(ImageImportTest, ADockerSaveArchiveImportsUnderEachOfItsRepoTags) {
  OciImageBuilder b = three_layers();
  b.write_docker_save(dir_ / "saved", {"team/app:2", "team/app:latest"});
  sandrun::testing::tar_directory(dir_ / "saved", dir_ / "saved.tar");
  auto images = import(dir_ / "saved.tar");
  ASSERT_EQ(images.size(), 2u);
  EXPECT_EQ(images[0].record.ref(), "team/app:2");
  EXPECT_EQ(images[1].record.ref(), "team/app:latest");
  EXPECT_EQ(images[0].record.id, images[1].record.id);
  EXPECT_EQ(images[1].stats.layers_reused, 3u);
  for (size_t i = 0; i < 3; ++i) {
    // docker save writes layers uncompressed: the blob is the tar, its digest the diff id.
    EXPECT_EQ(images[0].record.layers[i].blob_digest, b.diff_ids()[i]);
    EXPECT_EQ(images[0].record.layers[i].media_type, "application/vnd.oci.image.layer.v1.tar");
  }
  EXPECT_EQ(images[0].record.config.working_dir, "/work");
  EXPECT_EQ(read_file(store_->layer_path(b.diff_ids()[1]) + "/usr/share/doc/readme"), "docs");
}

TEST_F(ImageImportTest, ARootfsTarballIsNeitherAndTheErrorSaysWhatToUse) {
  write_file(dir_ / "rootfs.tar", TarBuilder().file("etc/motd", "x").build());
  EXPECT_EQ(import_error(dir_ / "rootfs.tar"),
            "import " + (dir_ / "rootfs.tar") +
                ": neither an OCI image layout (oci-layout, index.json) nor a docker save archive (manifest.json)\n  "
                "hint: for a plain root file system tarball use: sandrun image import --rootfs FILE NAME");
  expect_store_empty();
}

TEST_F(ImageImportTest, SymlinksInALayoutAreNeverFollowed) {
  three_layers().write_oci(dir_ / "layout", "team/tool:1");
  ASSERT_EQ(::rename((dir_ / "layout/index.json").c_str(), (dir_ / "real-index.json").c_str()), 0);
  ASSERT_EQ(::symlink((dir_ / "real-index.json").c_str(), (dir_ / "layout/index.json").c_str()), 0);
  std::string err = import_error(dir_ / "layout");
  EXPECT_NE(err.find("open \"index.json\""), std::string::npos) << err;
  expect_store_empty();
}

}  // namespace
}  // namespace sandrun::cache
