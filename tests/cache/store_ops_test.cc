// Whole-image operations of the store: tag, save (and import of what was saved), verify (a
// flipped byte in a layer or a blob is found, and the layer leaves the store), prune (untagged,
// all, least recently used down to a size, never an image in use).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

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

class StoreOpsTest : public sandrun::testing::StoreFixture {
 protected:
  // An image of two layers with a whiteout, named `ref`; `salt` makes its top layer its own.
  ImageRecord add(const std::string& ref, const std::string& salt = "", size_t bytes = 10) {
    OciImageBuilder b;
    b.layer(TarBuilder().file("etc/motd", "base").file("gone", "x").build(), Compression::gzip)
        .layer(TarBuilder().file(".wh.gone", "").file("top", salt + std::string(bytes, 'x')).build(), Compression::zstd);
    const std::string layout = dir_ / ("layout-" + std::to_string(n_++));
    b.write_oci(layout, ref);
    auto r = store_->import_archive(layout, "", {});
    EXPECT_TRUE(r.ok()) << r.error().message();
    return r.ok() ? r->at(0).record : ImageRecord{};
  }
  std::vector<std::string> refs() {
    std::vector<std::string> out;
    auto list = store_->list();
    for (const auto& r : *list) out.push_back(r.ref());
    return out;
  }

  int n_ = 0;
};

TEST_F(StoreOpsTest, TagGivesTheSameImageASecondNameAndReplacesWhatThatNamed) {
  ImageRecord a = add("team/a:1", "a");
  ImageRecord b = add("team/b:1", "b");
  auto t = store_->tag("team/a:1", "team/b:1");
  ASSERT_TRUE(t.ok()) << t.error().message();
  EXPECT_EQ(t->ref(), "team/b:1");
  EXPECT_EQ(t->id, a.id);
  EXPECT_EQ(refs(), (std::vector<std::string>{"team/a:1", "team/b:1"}));
  // b's own top layer is gone; the shared base stays.
  EXPECT_FALSE(fs::exists(store_->layer_path(b.layers[1].diff_id)));
  EXPECT_TRUE(fs::exists(store_->layer_path(b.layers[0].diff_id)));
  EXPECT_EQ(store_->tag("team/ghost:1", "x:1").error().message(), "image \"team/ghost:1\" not found");
}

TEST_F(StoreOpsTest, ASavedImageImportsBackIdenticalAndWithZstdRecompressed) {
  ImageRecord a = add("team/a:1", "a");
  ASSERT_TRUE(store_->save("team/a:1", dir_ / "a.tar", {}).ok());
  ASSERT_TRUE(store_->save("team/a:1", dir_ / "az.tar", {true}).ok());
  EXPECT_FALSE(fs::exists(dir_ / "a.tar.part"));
  ASSERT_TRUE(store_->remove("team/a:1").ok());
  auto back = store_->import_archive(dir_ / "a.tar", "", {});
  ASSERT_TRUE(back.ok()) << back.error().message();
  EXPECT_EQ(back->at(0).record.ref(), "team/a:1");
  EXPECT_EQ(back->at(0).record.manifest_digest, a.manifest_digest);  // byte for byte
  auto z = store_->import_archive(dir_ / "az.tar", "team/z:1", {});
  ASSERT_TRUE(z.ok()) << z.error().message();
  const ImageRecord& zr = z->at(0).record;
  EXPECT_EQ(zr.id, a.id);  // same config, same layers (diff ids)
  for (const auto& l : zr.layers) EXPECT_EQ(l.media_type, "application/vnd.oci.image.layer.v1.tar+zstd");
  EXPECT_NE(zr.manifest_digest, a.manifest_digest);
  EXPECT_EQ(z->at(0).stats.layers_unpacked, 1u);  // the base was zstd-less: a new blob; the top one was zstd already
  // The archive carries a docker-save manifest.json too.
  ASSERT_EQ(sandrun::testing::run_command({"tar", "-C", dir_.path(), "-xf", dir_ / "a.tar", "manifest.json"}).status, 0);
  auto m = nlohmann::json::parse(read_file(dir_ / "manifest.json"));
  EXPECT_EQ(m[0]["RepoTags"][0], "team/a:1");
  EXPECT_EQ(m[0]["Layers"].size(), 2u);
  EXPECT_FALSE(store_->save("team/ghost:1", dir_ / "g.tar", {}).ok());
  EXPECT_FALSE(fs::exists(dir_ / "g.tar"));
}

TEST_F(StoreOpsTest, VerifyPassesAnIntactImageAndRemovesALayerWithAFlippedByte) {
  ImageRecord a = add("team/a:1", "a");
  auto ok = store_->verify("");
  ASSERT_TRUE(ok.ok()) << ok.error().message();
  EXPECT_EQ(ok->problems, std::vector<std::string>{});
  EXPECT_EQ(ok->layers, 2u);
  const std::string top = store_->layer_path(a.layers[1].diff_id) + "/top";
  std::string data = read_file(top);
  data[0] = 'y';
  write_file(top, data);
  auto bad = store_->verify("team/a:1");
  ASSERT_TRUE(bad.ok()) << bad.error().message();
  ASSERT_EQ(bad->problems.size(), 1u);
  EXPECT_EQ(bad->problems[0], "team/a:1: layer " + a.layers[1].diff_id + ": \"/top\" differs from the blob's");
  EXPECT_EQ(bad->layers_dropped, std::vector<std::string>{a.layers[1].diff_id});
  EXPECT_FALSE(fs::exists(store_->layer_path(a.layers[1].diff_id)));
  auto found = store_->find("team/a:1");
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_NE(store_->lease(**found).error().message().find("is missing from the image cache"), std::string::npos);
}

TEST_F(StoreOpsTest, VerifyFindsACorruptedBlob) {
  ImageRecord a = add("team/a:1", "a");
  const std::string blob = path("blobs/sha256/" + std::string(digest_hex(a.layers[0].blob_digest)));
  std::string data = read_file(blob);
  data[data.size() / 2] ^= 1;
  write_file(blob, data);
  auto bad = store_->verify("");
  ASSERT_TRUE(bad.ok());
  ASSERT_EQ(bad->problems.size(), 1u);
  EXPECT_NE(bad->problems[0].find("blob " + a.layers[0].blob_digest + " is corrupted (its content is sha256:"),
            std::string::npos) << bad->problems[0];
  EXPECT_FALSE(fs::exists(blob));
}

TEST_F(StoreOpsTest, PruneRemovesUntaggedImagesThenAllButTheOneInUse) {
  add("team/a:1", "a");
  add("team/b:1", "b");
  // An untagged image: known by digest only.
  OciImageBuilder c;
  c.layer(TarBuilder().file("c", "c").build());
  c.write_oci(dir_ / "c", "");
  const std::string digest = nlohmann::json::parse(read_file(dir_ / "c/index.json"))["manifests"][0]["digest"];
  ASSERT_TRUE(store_->import_archive(dir_ / "c", "", {}).ok() == false);  // no name: refused
  auto imported = store_->import_archive(dir_ / "c", "team/c@" + digest, {});
  ASSERT_FALSE(imported.ok());  // import names take a tag; digest-only records come from pulls
  auto p = store_->prune({});
  ASSERT_TRUE(p.ok()) << p.error().message();
  EXPECT_EQ(p->removed_images, std::vector<std::string>{});
  auto found = store_->find("team/a:1");
  auto lease = store_->lease(**found);  // "a running sandrun" holds team/a:1
  ASSERT_TRUE(lease.ok());
  auto all = store_->prune({true, std::nullopt});
  ASSERT_TRUE(all.ok()) << all.error().message();
  EXPECT_EQ(all->removed_images, std::vector<std::string>{"team/b:1"});
  EXPECT_EQ(all->kept_in_use, std::vector<std::string>{"team/a:1"});
  EXPECT_GT(all->bytes_freed, 0u);
  EXPECT_EQ(refs(), std::vector<std::string>{"team/a:1"});
  EXPECT_EQ(list_dir(path("layers/sha256")).size(), 2u);
  EXPECT_EQ(*store_->size(), all->size_after);
}

TEST_F(StoreOpsTest, PruneToAMaximumSizeEvictsTheLeastRecentlyUsedFirst) {
  add("team/old:1", "old", 100000);
  add("team/mid:1", "mid", 100000);
  add("team/new:1", "new", 100000);
  // Used in this order: old first, so it goes first.
  for (const char* ref : {"team/old:1", "team/mid:1", "team/new:1"}) {
    ASSERT_TRUE(store_->lease(**store_->find(ref)).ok());
    struct timespec times[2] = {{0, UTIME_OMIT}, {0, 0}};
    times[1].tv_sec = ::time(nullptr) - (ref[5] == 'o' ? 300 : ref[5] == 'm' ? 200 : 100);
    const std::string mark = path("used/" + std::string(digest_hex((*store_->find(ref))->id)));
    ASSERT_EQ(::utimensat(AT_FDCWD, mark.c_str(), times, 0), 0) << mark;
  }
  const uint64_t before = *store_->size();
  auto p = store_->prune({false, before - 1});
  ASSERT_TRUE(p.ok()) << p.error().message();
  EXPECT_EQ(p->removed_images, std::vector<std::string>{"team/old:1"});
  EXPECT_LT(p->size_after, before);
  auto p2 = store_->prune({false, p->size_after - 1});
  EXPECT_EQ(p2->removed_images, std::vector<std::string>{"team/mid:1"});
  EXPECT_EQ(refs(), std::vector<std::string>{"team/new:1"});
}

}  // namespace
}  // namespace sandrun::cache
