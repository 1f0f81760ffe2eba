// Images that try to take the host or to lie (issue 15): decompression bombs and sparse giants
// stopped at their caps, descriptors whose size lies about a cached layer, media types out of
// place, more layers than overlayfs stacks, trees thousands of directories deep. Every refusal
// leaves nothing in the store.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <functional>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cache/digest.h"
#include "cache/seal.h"
#include "cache/store.h"
#include "sandbox/sys/fs.h"
#include "sandbox/sys/unique_fd.h"
#include "tests/cache/oci_builder.h"
#include "tests/cache/test_util.h"
#include "tests/support/test_env.h"

namespace sandrun::cache {
namespace {

using nlohmann::json;
using sandrun::testing::Compression;
using sandrun::testing::list_dir;
using sandrun::testing::OciImageBuilder;
using sandrun::testing::read_file;
using sandrun::testing::sha256_hex_digest;
using sandrun::testing::TarBuilder;
using sandrun::testing::write_file;

// One 512-byte ustar header.
std::string ustar_header(const std::string& name, char type, uint64_t size) {
  std::string h(512, '\0');
  auto put = [&](size_t at, const std::string& v) { std::memcpy(&h[at], v.data(), v.size()); };
  put(0, name);
  put(100, "0000644");
  put(108, "0000000");
  put(116, "0000000");
  char num[16];
  std::snprintf(num, sizeof num, "%011llo", static_cast<unsigned long long>(size));
  put(124, num);
  put(136, "14537403400");  // 1700000000
  h[156] = type;
  put(257, "ustar");
  put(263, "00");
  put(148, "        ");
  unsigned sum = 0;
  for (unsigned char c : h) sum += c;
  std::snprintf(num, sizeof num, "%06o", sum);
  put(148, num);
  h[154] = '\0';
  return h;
}

std::string padded(std::string data) {
  data.resize((data.size() + 511) / 512 * 512, '\0');
  return data;
}

// A pax record "LEN key=value\n", LEN counting itself.
std::string pax_record(const std::string& key, const std::string& value) {
  const std::string body = " " + key + "=" + value + "\n";
  size_t len = body.size() + 1;
  while (std::to_string(len).size() + body.size() != len) ++len;
  return std::to_string(len) + body;
}

// A tar with one PAX (GNU 0.1) sparse file "huge" of `apparent` bytes holding 512 bytes of data:
// a few KiB however large it claims to be.
std::string sparse_tar(uint64_t apparent) {
  const std::string records =
      pax_record("GNU.sparse.size", std::to_string(apparent)) + pax_record("GNU.sparse.map", "0,512");
  std::string tar = ustar_header("PaxHeaders/huge", 'x', records.size()) + padded(records);
  tar += ustar_header("huge", '0', 512) + std::string(512, 'x');
  return tar + std::string(1024, '\0');
}

class ImageBoundsTest : public sandrun::testing::StoreFixture {
 protected:
  // Nothing of a refused import: no layer, blob, seal or temp entry, no record.
  void expect_store_empty() {
    EXPECT_EQ(list_dir(path("layers/sha256")), std::vector<std::string>{});
    EXPECT_EQ(list_dir(path("blobs/sha256")), std::vector<std::string>{});
    EXPECT_EQ(list_dir(path("seals")), std::vector<std::string>{});
    EXPECT_EQ(list_dir(path("tmp")), std::vector<std::string>{});
    EXPECT_TRUE(store_->list()->empty());
  }
  std::string import_rootfs_error(const std::string& tar, Compression c = Compression::none) {
    write_file(dir_ / "rootfs.tar", c == Compression::none ? tar : sandrun::testing::compress(tar, c));
    auto r = store_->import_rootfs("bomb:1", dir_ / "rootfs.tar");
    return r.ok() ? "(imported)" : r.error().render();
  }
  std::string import_error(const std::string& from) {
    auto r = store_->import_archive(from, "", ImportOptions{"", 2});
    return r.ok() ? "(imported)" : r.error().render();
  }
  ImageRecord import_ok(const std::string& from) {
    auto r = store_->import_archive(from, "", ImportOptions{"", 2});
    EXPECT_TRUE(r.ok()) << r.error().render();
    return r.ok() && !r->empty() ? r->front().record : ImageRecord{};
  }
  // Rewrites the manifest of the layout's only image with `edit` (index.json follows).
  static void edit_manifest(const std::string& dir, const std::function<void(json&)>& edit) {
    json index = json::parse(read_file(dir + "/index.json"));
    json& entry = index["manifests"][0];
    const std::string old = entry["digest"];
    json m = json::parse(read_file(dir + "/blobs/sha256/" + old.substr(7)));
    edit(m);
    const std::string text = m.dump();
    const std::string digest = sha256_hex_digest(text);
    write_file(dir + "/blobs/sha256/" + digest.substr(7), text);
    entry["digest"] = digest;
    entry["size"] = text.size();
    write_file(dir + "/index.json", index.dump());
  }
};

constexpr const char* kBombHint =
    "hint: a decompression bomb, or an image larger than this host allows: the [policy] keys max_image_bytes, "
    "max_image_entries, max_layer_bytes and max_layer_entries of /etc/sandrun/sandrun.toml set the caps";

// ---- item 3: bombs -----------------------------------------------------------------------

TEST_F(ImageBoundsTest, AZstdBombStopsAtTheImageCapWithNothingWrittenOrKept) {
  store_->set_limits(ImageLimits{1 << 20, 1000, 0, 0});
  const std::string bomb = TarBuilder().file("etc/motd", "hi").file("zeros", std::string(16 << 20, '\0')).build();
  const std::string err = import_rootfs_error(bomb, Compression::zstd);
  EXPECT_EQ(err, "import " + std::string(dir_ / "rootfs.tar") +
                     ": layer entry \"zeros\": the image unpacks to more than 1 MiB, its cap per image\n  " + kBombHint);
  expect_store_empty();
}

TEST_F(ImageBoundsTest, ZerosAfterTheEndOfTheTarCountToo) {
  store_->set_limits(ImageLimits{1 << 20, 1000, 0, 0});
  const std::string tar = TarBuilder().file("a", "a").build() + std::string(8 << 20, '\0');
  EXPECT_NE(import_rootfs_error(tar, Compression::gzip)
                .find(": after the end of the layer's tar: the image unpacks to more than 1 MiB, its cap per image"),
            std::string::npos);
  expect_store_empty();
}

TEST_F(ImageBoundsTest, ASparseTebibyteIsRefusedByItsHeaderAtTheDefaultCap) {
  // The defaults: 64 GiB and 2 million entries per image.
  EXPECT_EQ(store_->limits().max_image_bytes, uint64_t{64} << 30);
  EXPECT_EQ(store_->limits().max_image_entries, 2'000'000u);
  const std::string tar = sparse_tar(uint64_t{1} << 40);
  ASSERT_LT(tar.size(), 4096u);
  const std::string err = import_rootfs_error(tar);
  EXPECT_NE(err.find(": layer entry \"huge\": the image unpacks to more than 64 GiB, its cap per image"), std::string::npos)
      << err;
  expect_store_empty();
  // Under the cap it imports as the sparse file it is: its holes are not written.
  store_->set_limits(ImageLimits{uint64_t{2} << 40, 1000, 0, 0});
  auto r = store_->import_rootfs("sparse:1", dir_ / "rootfs.tar");
  ASSERT_TRUE(r.ok()) << r.error().render();
  struct stat st = sandrun::testing::lstat_of(store_->layer_path(r->layers[0].diff_id) + "/huge");
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), uint64_t{1} << 40);
  EXPECT_LT(st.st_blocks, 1024);
}

TEST_F(ImageBoundsTest, EntryCapsPerLayerAndPerImage) {
  TarBuilder many;
  for (int i = 0; i < 30; ++i) many.file("f" + std::to_string(i), "x");
  store_->set_limits(ImageLimits{1 << 30, 1000, 0, 20});
  EXPECT_EQ(import_rootfs_error(many.build()),
            "import " + std::string(dir_ / "rootfs.tar") +
                ": layer entry \"f20\": the layer has more than 20 entries, its cap per layer\n  " + kBombHint);
  expect_store_empty();
  // Two layers of 30 under a per-image cap of 50: the second passes it, whichever runs first.
  TarBuilder other;
  for (int i = 0; i < 30; ++i) other.file("g" + std::to_string(i), "y");
  OciImageBuilder two;
  two.layer(many.build()).layer(other.build());
  two.write_oci(dir_ / "two", "team/two:1");
  store_->set_limits(ImageLimits{1 << 30, 50, 0, 0});
  const std::string err = import_error(dir_ / "two");
  EXPECT_NE(err.find("the image has more than 50 entries, its cap per image"), std::string::npos) << err;
  EXPECT_NE(err.find(": layer "), std::string::npos) << err;
  expect_store_empty();
}

// ---- item 4: size lies -------------------------------------------------------------------

TEST_F(ImageBoundsTest, ADescriptorThatLiesAboutACachedLayersSizeIsRefused) {
  OciImageBuilder b;
  b.layer(TarBuilder().file("etc/motd", "hello").build(), Compression::gzip);
  b.write_oci(dir_ / "good", "team/good:1");
  const ImageRecord good = import_ok(dir_ / "good");
  ASSERT_EQ(good.layers.size(), 1u);
  const uint64_t real = good.layers[0].blob_size;
  for (uint64_t lie : {uint64_t{9223372036854775807}, real + 100000}) {
    sandrun::testing::run_command({"rm", "-rf", dir_ / "liar"});
    b.write_oci(dir_ / "liar", "team/liar:1");
    edit_manifest(dir_ / "liar", [&](json& m) { m["layers"][0]["size"] = lie; });
    EXPECT_EQ(import_error(dir_ / "liar"),
              fmt::format("import {}/liar (team/liar:1): layer 1: blob {}: {} bytes, the manifest says {}",
                          dir_.path(), good.layers[0].blob_digest, real, lie));
  }
  // The store holds the first image only, as it was.
  auto images = store_->list();
  ASSERT_EQ(images->size(), 1u);
  EXPECT_EQ(images->front().layers[0].blob_size, real);
  EXPECT_EQ(list_dir(path("tmp")), std::vector<std::string>{});
  auto v = store_->verify("");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->problems, std::vector<std::string>{});
}

TEST_F(ImageBoundsTest, ARecordedSizeLieIsFoundByVerifyAndSaveWritesNothing) {
  OciImageBuilder b;
  b.layer(TarBuilder().file("etc/motd", "hello").build(), Compression::gzip);
  b.write_oci(dir_ / "img", "team/img:1");
  const ImageRecord r = import_ok(dir_ / "img");
  // A record written by an older sandrun that trusted the descriptor.
  std::string index = read_file(path("images.json"));
  const std::string size = "\"blob_size\": " + std::to_string(r.layers[0].blob_size);
  ASSERT_NE(index.find(size), std::string::npos) << index;
  index.replace(index.find(size), size.size(), "\"blob_size\": 9223372036854775807");
  write_file(path("images.json"), index);
  const std::string out = dir_ / "out.tar";
  auto saved = store_->save("team/img:1", out, SaveOptions{});
  ASSERT_FALSE(saved.ok());
  EXPECT_EQ(saved.error().message(),
            fmt::format("save team/img:1 to {}: blob {} has {} bytes, its descriptor says 9223372036854775807", out,
                        r.layers[0].blob_digest, r.layers[0].blob_size));
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(out + ".part"));
  auto v = store_->verify("");
  ASSERT_TRUE(v.ok());
  ASSERT_EQ(v->problems.size(), 1u);
  EXPECT_EQ(v->problems[0], fmt::format("team/img:1: blob {}: the image record says 9223372036854775807 bytes, the "
                                        "blob has {}", r.layers[0].blob_digest, r.layers[0].blob_size));
}

// ---- item 9: a corrupted cache -----------------------------------------------------------

TEST_F(ImageBoundsTest, SaveRefusesABlobCorruptedInTheCacheAndLeavesNoOutput) {
  OciImageBuilder b;
  b.layer(TarBuilder().file("etc/motd", "hello").build(), Compression::none);
  b.write_oci(dir_ / "img", "team/img:1");
  const ImageRecord r = import_ok(dir_ / "img");
  const std::string blob = path("blobs/sha256/" + std::string(digest_hex(r.layers[0].blob_digest)));
  std::string data = read_file(blob);
  data[data.size() / 2] ^= 1;  // same size, one bit off: a torn or rotten block
  write_file(blob, data);
  for (bool zstd : {false, true}) {
    const std::string out = dir_ / "out.tar";
    auto saved = store_->save("team/img:1", out, SaveOptions{zstd});
    ASSERT_FALSE(saved.ok());
    EXPECT_NE(saved.error().render().find(fmt::format("blob {} is corrupted (its content is sha256:", r.layers[0].blob_digest)),
              std::string::npos)
        << saved.error().render();
    EXPECT_NE(saved.error().render().find("hint: run `sandrun image verify`"), std::string::npos);
    EXPECT_FALSE(fs::exists(out));
    EXPECT_FALSE(fs::exists(out + ".part"));
  }
}

TEST_F(ImageBoundsTest, ALayerEditedOnDiskIsRefusedWhenUsedAndVerifyRepairsTheStore) {
  OciImageBuilder b;
  b.layer(TarBuilder().file("bin/tool", "v1", 0755).file("etc/motd", "hello").build(), Compression::gzip);
  b.write_oci(dir_ / "img", "team/img:1");
  ImageRecord r = import_ok(dir_ / "img");
  const std::string diff_id = r.layers[0].diff_id;
  const std::string seal = path("seals/" + std::string(digest_hex(diff_id)));
  EXPECT_EQ(list_dir(path("seals")), std::vector<std::string>{std::string(digest_hex(diff_id))});
  // A hand edit, or a file half written when the machine crashed: its size changes.
  write_file(store_->layer_path(diff_id) + "/etc/motd", "hacked!");
  auto lease = store_->lease(r);
  ASSERT_FALSE(lease.ok());
  EXPECT_EQ(lease.error().render(),
            fmt::format("image \"team/img:1\": layer {} was changed on disk since it was unpacked (its seal {} does not "
                        "match): the image cache {} is damaged\n  hint: run `sandrun image verify` (it removes damaged "
                        "layers), then import or pull the image again",
                        diff_id, seal, root()));
  // A file removed is seen as well.
  ASSERT_EQ(::unlink((store_->layer_path(diff_id) + "/bin/tool").c_str()), 0);
  EXPECT_FALSE(store_->lease(r).ok());
  // verify removes the damaged layer with its seal; the image then says to import it again.
  auto v = store_->verify("team/img:1");
  ASSERT_TRUE(v.ok()) << v.error().render();
  EXPECT_EQ(v->layers_dropped, std::vector<std::string>{diff_id});
  EXPECT_EQ(list_dir(path("seals")), std::vector<std::string>{});
  lease = store_->lease(r);
  ASSERT_FALSE(lease.ok());
  EXPECT_NE(lease.error().message().find("is missing from the image cache"), std::string::npos);
  r = import_ok(dir_ / "img");
  EXPECT_TRUE(store_->lease(r).ok());
}

TEST_F(ImageBoundsTest, ALayerWithoutASealIsSealedOnFirstUseAndCheckedOncePerProcess) {
  OciImageBuilder b;
  b.layer(TarBuilder().file("etc/motd", "hello").build(), Compression::gzip);
  b.write_oci(dir_ / "img", "team/img:1");
  const ImageRecord r = import_ok(dir_ / "img");
  const std::string seal = path("seals/" + std::string(digest_hex(r.layers[0].diff_id)));
  const std::string written = read_file(seal);
  EXPECT_EQ(written.rfind("sandrun-layer-seal 1 2 sha256:", 0), 0u) << written;  // etc, etc/motd
  ASSERT_EQ(::unlink(seal.c_str()), 0);  // a layer unpacked by an older sandrun
  ASSERT_TRUE(store_->lease(r).ok());
  EXPECT_EQ(read_file(seal), written);
  // Checked: this process does not walk the layer again (an edit now goes unseen until the
  // next process, or `image verify`).
  write_file(store_->layer_path(r.layers[0].diff_id) + "/etc/motd", "changed");
  EXPECT_TRUE(store_->lease(r).ok());
  // Sealed on first use, the seal's mtime stays 0: the next process walks the layer whole. The
  // layer's own entries are compared always.
  EXPECT_EQ(sandrun::testing::lstat_of(seal).st_mtim.tv_sec, 0);
  EXPECT_EQ(read_file(seal).substr(read_file(seal).find('\n') + 1).rfind("top 1 sha256:", 0), 0u) << read_file(seal);
}

TEST_F(ImageBoundsTest, ASameSizeEditWithItsMtimeRestoredPassesTheSealButNotVerify) {
  OciImageBuilder b;
  b.layer(TarBuilder().file("etc/motd", "hello").build(), Compression::gzip);
  b.write_oci(dir_ / "img", "team/img:1");
  const ImageRecord r = import_ok(dir_ / "img");
  const std::string motd = store_->layer_path(r.layers[0].diff_id) + "/etc/motd";
  struct stat st = sandrun::testing::lstat_of(motd);
  write_file(motd, "HELLO");
  const struct timespec times[2] = {st.st_atim, st.st_mtim};
  ASSERT_EQ(::utimensat(AT_FDCWD, motd.c_str(), times, 0), 0);
  EXPECT_TRUE(store_->lease(r).ok());  // what the seal cannot see (docs/security.md)
  auto v = store_->verify("");
  ASSERT_TRUE(v.ok());
  ASSERT_EQ(v->problems.size(), 1u);
  EXPECT_NE(v->problems[0].find("\"/etc/motd\" differs from the blob's"), std::string::npos) << v->problems[0];
}

// The figure docs/security.md gives: what a whole walk of the built-in image costs (one stat
// per entry), printed; bounded loosely, the machine being shared.
// The seal of an unchanged layer is the same however often it is taken (what the check at
// each use relies on); its cost is measured by sandrun-microbench (BM_SealCheck*,
// docs/benchmarks.md), not here.
TEST_F(ImageBoundsTest, TheSealOfAnUnchangedLayerIsTheStoredOneEveryTime) {
  auto image = store_->ensure("busybox");
  ASSERT_TRUE(image.ok()) << image.error().render();
  UniqueFd layer(::open(store_->layer_path(image->layers[0].diff_id).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(layer);
  const std::string seal = read_file(path("seals/" + std::string(digest_hex(image->layers[0].diff_id))));
  ASSERT_EQ(seal.rfind("sandrun-layer-seal 1 ", 0), 0u) << seal;
  for (int i = 0; i < 20; ++i) ASSERT_EQ(*seal_of(layer.get()), seal);
}

// ---- item 8: deep trees ------------------------------------------------------------------

// Opens the directory `depth` levels of "a" below `dir`, one component at a time (its path is
// longer than PATH_MAX from the store's root).
UniqueFd open_deep(const std::string& dir, int depth) {
  UniqueFd cur(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  for (int i = 0; i < depth && cur; ++i) cur = UniqueFd(::openat(cur.get(), "a", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  return cur;
}

std::string deep_name(int depth, const std::string& leaf) {
  std::string name;
  for (int i = 0; i < depth; ++i) name += "a/";
  return name + leaf;
}

TEST_F(ImageBoundsTest, ALayer2040DirectoriesDeepImportsVerifiesSavesAndGoes) {
  const int kDepth = 2040;
  OciImageBuilder b;
  b.layer(TarBuilder().file(deep_name(kDepth, "f"), "deep").build(), Compression::gzip);
  b.write_oci(dir_ / "img", "team/deep:1");
  const ImageRecord r = import_ok(dir_ / "img");
  ASSERT_EQ(r.layers.size(), 1u);
  ASSERT_TRUE(store_->lease(r).ok());  // the seal's walk
  auto v = store_->verify("");
  ASSERT_TRUE(v.ok()) << v.error().render();
  EXPECT_EQ(v->problems, std::vector<std::string>{});
  ASSERT_TRUE(store_->save("team/deep:1", dir_ / "deep.tar", SaveOptions{}).ok());
  // A change at the bottom: found, and shown by its ends and depth, not 4 KB of "a/".
  UniqueFd bottom = open_deep(store_->layer_path(r.layers[0].diff_id), kDepth);
  ASSERT_TRUE(bottom);
  UniqueFd f(::openat(bottom.get(), "f", O_WRONLY | O_APPEND | O_CLOEXEC));
  ASSERT_TRUE(f);
  ASSERT_EQ(::write(f.get(), "!", 1), 1);
  f.reset();
  bottom.reset();
  v = store_->verify("");
  ASSERT_TRUE(v.ok()) << v.error().render();
  ASSERT_EQ(v->problems.size(), 1u);
  EXPECT_LT(v->problems[0].size(), 400u) << v->problems[0];
  EXPECT_NE(v->problems[0].find("(4082 bytes, 2041 components) differs from the blob's"), std::string::npos)
      << v->problems[0];
  // Removed with everything below it; the store is empty again.
  import_ok(dir_ / "img");
  ASSERT_TRUE(store_->remove("team/deep:1").ok());
  auto pruned = store_->prune(PruneOptions{true, std::nullopt});
  ASSERT_TRUE(pruned.ok());
  expect_store_empty();
}

TEST_F(ImageBoundsTest, ALayer5000DeepIsRefusedWithAShortMessage) {
  const std::string err = import_rootfs_error(TarBuilder().file(deep_name(5000, "f"), "deep").build());
  EXPECT_LT(err.size(), 600u) << err.size();
  EXPECT_NE(err.find("(10001 bytes, 5001 components): path of 10001 bytes is longer than 4095, the longest a layer "
                     "entry may have"),
            std::string::npos)
      << err;
  expect_store_empty();
}

// ---- item 12: media types and layer counts -----------------------------------------------

TEST_F(ImageBoundsTest, AnIndexEntryTypedAsAnIndexThatPointsAtAManifestIsRefused) {
  OciImageBuilder b;
  b.layer(TarBuilder().file("etc/motd", "hello").build());
  b.write_oci(dir_ / "img", "team/img:1");
  json index = json::parse(read_file(dir_ / "img/index.json"));
  index["manifests"][0]["mediaType"] = "application/vnd.oci.image.index.v1+json";
  write_file(dir_ / "img/index.json", index.dump());
  const std::string err = import_error(dir_ / "img");
  EXPECT_NE(err.find("descriptor media type \"application/vnd.oci.image.index.v1+json\" does not match the "
                     "document's \"application/vnd.oci.image.manifest.v1+json\""),
            std::string::npos)
      << err;
  expect_store_empty();
  // An entry typed as a layer is no manifest either.
  index["manifests"][0]["mediaType"] = "application/vnd.oci.image.layer.v1.tar";
  write_file(dir_ / "img/index.json", index.dump());
  EXPECT_NE(import_error(dir_ / "img").find("is not an image index or manifest type"), std::string::npos);
  expect_store_empty();
}

TEST_F(ImageBoundsTest, AConfigTypedAsALayerIsRefused) {
  OciImageBuilder b;
  b.layer(TarBuilder().file("etc/motd", "hello").build());
  b.write_oci(dir_ / "img", "team/img:1");
  edit_manifest(dir_ / "img", [](json& m) { m["config"]["mediaType"] = "application/vnd.oci.image.layer.v1.tar"; });
  const std::string err = import_error(dir_ / "img");
  EXPECT_NE(err.find("image manifest config: media type \"application/vnd.oci.image.layer.v1.tar\" is not an image "
                     "config's (OCI or Docker v2)"),
            std::string::npos)
      << err;
  expect_store_empty();
}

TEST_F(ImageBoundsTest, An501LayerImageIsRefusedAtImportBeforeAnyLayerIsRead) {
  OciImageBuilder b;
  for (int i = 0; i < 501; ++i) b.layer(TarBuilder().file("f" + std::to_string(i), "x").build(), Compression::none);
  b.write_oci(dir_ / "img", "team/tall:1");
  const std::string err = import_error(dir_ / "img");
  EXPECT_EQ(err, fmt::format("import {}/img (team/tall:1): the image has 501 layers; overlayfs stacks at most 500, so "
                             "it could not run",
                             dir_.path()));
  expect_store_empty();
}

}  // namespace
}  // namespace sandrun::cache
