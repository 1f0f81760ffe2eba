// The image store: import pipeline, layout, index, find/list/remove, leases, sweeping.
#include "cache/store.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "cache/digest.h"
#include "sandbox/sys/fs.h"
#include "tests/cache/tar_builder.h"
#include "tests/cache/test_util.h"
#include "tests/support/test_env.h"

namespace sandrun::cache {
namespace {

using sandrun::testing::Compression;
using sandrun::testing::list_dir;
using sandrun::testing::lstat_of;
using sandrun::testing::read_file;
using sandrun::testing::TarBuilder;
using sandrun::testing::write_file;

class StoreTest : public sandrun::testing::StoreFixture {
 protected:
  // Writes `data` to a file and imports it as `ref`.
  ImageRecord import(const std::string& ref, const std::string& data,
                     const std::string& file = "rootfs.tar") {
    write_file(dir_ / file, data);
    auto r = store_->import_rootfs(ref, dir_ / file);
    EXPECT_TRUE(r.ok()) << r.error().message();
    return r.ok() ? *r : ImageRecord{};
  }
  static std::string sample_tar() {
    return TarBuilder().dir("bin").file("bin/tool", "#!/bin/sh\necho hi\n", 0755)
        .file("etc/motd", "hello").symlink("sbin", "bin").build();
  }

};

TEST_F(StoreTest, OpenCreatesThePrivateLayout) {
  EXPECT_EQ(lstat_of(root()).st_mode & 07777, 0700u);
  for (const char* d : {"blobs/sha256", "layers/sha256", "tmp"})
    EXPECT_TRUE(S_ISDIR(lstat_of(path(d)).st_mode)) << d;
  EXPECT_TRUE(S_ISREG(lstat_of(path("cache.lock")).st_mode));
  EXPECT_EQ(store_->root(), root());
}

TEST_F(StoreTest, ImportRecordsDigestsLayerAndConfig) {
  const std::string tar = sample_tar();
  const std::string gz = sandrun::testing::compress(tar, Compression::gzip);
  ImageRecord rec = import("team/tool:1.0", gz);
  ASSERT_EQ(rec.layers.size(), 1u);
  const LayerRef& l = rec.layers[0];
  EXPECT_EQ(l.diff_id, sha256_of(tar));      // the uncompressed tar, padding included
  EXPECT_EQ(l.blob_digest, sha256_of(gz));   // the file as given
  EXPECT_EQ(l.blob_size, gz.size());
  EXPECT_EQ(rec.name, "team/tool");
  EXPECT_EQ(rec.tag, "1.0");
  EXPECT_EQ(read_file(path("blobs/sha256/" + std::string(digest_hex(l.blob_digest)))), gz);
  std::string layer = store_->layer_path(l.diff_id);
  EXPECT_EQ(layer, path("layers/sha256/" + std::string(digest_hex(l.diff_id))));
  EXPECT_EQ(read_file(layer + "/bin/tool"), "#!/bin/sh\necho hi\n");
  EXPECT_EQ(lstat_of(layer).st_mode & 07777, 0755u);  // "/" of the containers
  std::string config = read_file(path("blobs/sha256/" + std::string(digest_hex(rec.id))));
  EXPECT_EQ(sha256_of(config), rec.id);
  auto j = nlohmann::json::parse(config);
  EXPECT_EQ(j["architecture"], "amd64");
  EXPECT_EQ(j["os"], "linux");
  EXPECT_EQ(j["rootfs"]["type"], "layers");
  EXPECT_EQ(j["rootfs"]["diff_ids"], nlohmann::json::array({l.diff_id}));
  EXPECT_EQ(j["config"]["Cmd"], nlohmann::json::array({"/bin/sh"}));
  EXPECT_EQ(j["config"]["Env"][0],
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  EXPECT_EQ(rec.config.cmd, std::vector<std::string>{"/bin/sh"});
  // A manifest is made for it, so that the image can be saved and pushed like any other.
  std::string manifest = read_file(path("blobs/sha256/" + std::string(digest_hex(rec.manifest_digest))));
  EXPECT_EQ(sha256_of(manifest), rec.manifest_digest);
  EXPECT_EQ(rec.manifest_media_type, "application/vnd.oci.image.manifest.v1+json");
  auto m = nlohmann::json::parse(manifest);
  EXPECT_EQ(m["config"]["digest"], rec.id);
  EXPECT_EQ(m["config"]["size"], config.size());
  EXPECT_EQ(m["layers"][0]["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip");
  EXPECT_EQ(m["layers"][0]["digest"], l.blob_digest);
  EXPECT_EQ(m["layers"][0]["size"], gz.size());
  EXPECT_EQ(l.media_type, "application/vnd.oci.image.layer.v1.tar+gzip");
  EXPECT_TRUE(list_dir(path("tmp")).empty());
}

TEST_F(StoreTest, SameContentPlainGzipZstdXzIsOneLayer) {
  const std::string tar = sample_tar();
  std::vector<ImageRecord> recs;
  int n = 0;
  for (Compression c : {Compression::none, Compression::gzip, Compression::zstd, Compression::xz}) {
    std::string i = std::to_string(n++);
    recs.push_back(import("img:" + i, sandrun::testing::compress(tar, c), "rootfs" + i));
  }
  for (const auto& r : recs) {
    ASSERT_EQ(r.layers.size(), 1u);
    EXPECT_EQ(r.layers[0].diff_id, sha256_of(tar));
    EXPECT_EQ(r.id, recs[0].id);  // same layers, same config, same id
  }
  EXPECT_EQ(list_dir(path("layers/sha256")).size(), 1u);
  EXPECT_EQ(list_dir(path("blobs/sha256")).size(), 4u + 1u + 4u);  // 4 tarballs, 1 config, 4 manifests
  EXPECT_TRUE(list_dir(path("tmp")).empty());
}

TEST_F(StoreTest, TruncatedGzipFailsCleanly) {
  std::string big = TarBuilder().file("big", std::string(1 << 20, 'q')).file("b", "x").build();
  std::string gz = sandrun::testing::compress(big, Compression::gzip);
  write_file(dir_ / "bad.tar.gz", gz.substr(0, gz.size() / 2));
  auto r = store_->import_rootfs("bad:1", dir_ / "bad.tar.gz");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message().rfind("import " + (dir_ / "bad.tar.gz") + ": ", 0), 0u)
      << r.error().message();
  EXPECT_NE(r.error().message().find("truncated"), std::string::npos) << r.error().message();
  EXPECT_TRUE(list_dir(path("tmp")).empty());
  EXPECT_TRUE(list_dir(path("layers/sha256")).empty());
  EXPECT_TRUE(list_dir(path("blobs/sha256")).empty());
  EXPECT_FALSE(fs::exists(path("images.json")));
}

TEST_F(StoreTest, NotATarFailsWithAHint) {
  write_file(dir_ / "junk", std::string(4096, 'j'));
  auto r = store_->import_rootfs("junk:1", dir_ / "junk");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("import " + (dir_ / "junk") + ": read layer: "),
            std::string::npos) << r.error().message();
  EXPECT_TRUE(list_dir(path("tmp")).empty());
  write_file(dir_ / "empty", "");
  r = store_->import_rootfs("empty:1", dir_ / "empty");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message(), "import " + (dir_ / "empty") + ": the file is empty");
  r = store_->import_rootfs("x:1", dir_ / "missing.tar");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message(), "import " + (dir_ / "missing.tar") + ": open " +
                                     (dir_ / "missing.tar") + ": No such file or directory");
  r = store_->import_rootfs("Bad Ref", dir_ / "empty");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message().rfind("import " + (dir_ / "empty") +
                                      ": invalid image reference \"Bad Ref\"", 0), 0u);
}

TEST_F(StoreTest, ImportReplacesAnExistingNameAndDropsItsLayer) {
  ImageRecord a = import("app:1", TarBuilder().file("v", "1").build());
  ImageRecord b = import("app:1", TarBuilder().file("v", "2").build());
  ASSERT_NE(a.layers[0].diff_id, b.layers[0].diff_id);
  auto found = store_->find("app:1");
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ((*found)->id, b.id);
  EXPECT_EQ(list_dir(path("layers/sha256")),
            std::vector<std::string>{std::string(digest_hex(b.layers[0].diff_id))});
  EXPECT_EQ(list_dir(path("blobs/sha256")).size(), 3u);  // b's tarball, config and manifest
  EXPECT_EQ(store_->list()->size(), 1u);
}

TEST_F(StoreTest, ListFindAndRemove) {
  import("b:1", TarBuilder().file("f", "b").build());
  ImageRecord a = import("a", TarBuilder().file("f", "a").build());
  auto list = store_->list();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].ref(), "a:latest");
  EXPECT_EQ((*list)[1].ref(), "b:1");
  auto missing = store_->find("c");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
  auto removed = store_->remove("a");
  ASSERT_TRUE(removed.ok()) << removed.error().message();
  EXPECT_EQ(removed->ref, "a:latest");
  EXPECT_EQ(removed->removed_layers, std::vector<std::string>{a.layers[0].diff_id});
  EXPECT_TRUE(removed->kept_in_use.empty());
  EXPECT_FALSE(fs::exists(store_->layer_path(a.layers[0].diff_id)));
  EXPECT_EQ(store_->list()->size(), 1u);
  EXPECT_EQ(list_dir(path("blobs/sha256")).size(), 3u);  // b's tarball, config and manifest
  EXPECT_TRUE(list_dir(path("tmp")).empty());
  auto again = store_->remove("a");
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().message(), R"(image "a:latest" not found)");
}

TEST_F(StoreTest, RemoveKeepsASharedLayer) {
  std::string tar = sample_tar();
  ImageRecord a = import("a:1", tar);
  import("b:1", tar);
  auto removed = store_->remove("a:1");
  ASSERT_TRUE(removed.ok());
  EXPECT_TRUE(removed->removed_layers.empty());
  EXPECT_TRUE(fs::exists(store_->layer_path(a.layers[0].diff_id)));
}

TEST_F(StoreTest, RemoveKeepsALeasedLayerUntilTheLeaseEnds) {
  ImageRecord a = import("a:1", sample_tar());
  auto lease = store_->lease(a);
  ASSERT_TRUE(lease.ok()) << lease.error().message();
  auto removed = store_->remove("a:1");
  ASSERT_TRUE(removed.ok()) << removed.error().message();
  EXPECT_TRUE(removed->removed_layers.empty());
  EXPECT_EQ(removed->kept_in_use, std::vector<std::string>{a.layers[0].diff_id});
  const std::string layer = store_->layer_path(a.layers[0].diff_id);
  EXPECT_EQ(read_file(layer + "/etc/motd"), "hello");
  EXPECT_TRUE(Store::open(root()).ok());  // a sweep while leased keeps it too
  EXPECT_TRUE(fs::exists(layer));
  lease = LayerLease();
  EXPECT_TRUE(Store::open(root()).ok());  // the next sweep collects it
  EXPECT_FALSE(fs::exists(layer));
  EXPECT_TRUE(list_dir(path("blobs/sha256")).empty());
}

TEST_F(StoreTest, LeaseOfAMissingLayerSaysSo) {
  ImageRecord a = import("a:1", sample_tar());
  ASSERT_TRUE(store_->remove("a:1").ok());
  auto lease = store_->lease(a);
  ASSERT_FALSE(lease.ok());
  EXPECT_EQ(lease.error().message(), "image \"a:1\": layer " + a.layers[0].diff_id +
                                         " is missing from the image cache (" + root() +
                                         "); import the image again");
}

TEST_F(StoreTest, EnsureOfAMissingImageSaysHowToImportIt) {
  auto r = store_->ensure("foo");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message(), "image \"foo:latest\" is not in the image cache (" + root() +
                                     "); import it with: sandrun image import [--rootfs] FILE foo:latest");
  ImageRecord rec = import("foo", sample_tar());
  auto again = store_->ensure("foo:latest");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->id, rec.id);
}

TEST_F(StoreTest, StaleTempEntriesAreSweptLiveOnesKept) {
  ASSERT_EQ(::mkdir(path("tmp/import-dead").c_str(), 0700), 0);
  write_file(path("tmp/import-dead/blob"), "partial");
  ASSERT_EQ(::mkdir(path("tmp/import-live").c_str(), 0700), 0);
  int live = ::open(path("tmp/import-live").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_EQ(::flock(live, LOCK_EX), 0);
  write_file(path("tmp/images.json.new"), "{");
  ASSERT_TRUE(Store::open(root()).ok());
  EXPECT_EQ(list_dir(path("tmp")), std::vector<std::string>{"import-live"});
  ::close(live);
  ASSERT_TRUE(Store::open(root()).ok());
  EXPECT_TRUE(list_dir(path("tmp")).empty());
}

TEST_F(StoreTest, ImportKilledMidwayLeavesNothingAfterTheNextOpen) {
  std::string tar = TarBuilder().file("a", std::string(1 << 20, 'x')).file("b", "y").build();
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(p[1]);
    auto s = Store::open(root());
    if (s.ok()) (void)s->import_rootfs_fd("killed:1", p[0], "a pipe");
    ::_exit(0);
  }
  ::close(p[0]);
  // Returns once the child has read all but a pipe buffer of it: it is mid-import.
  ASSERT_TRUE(fs::write_all(p[1], std::string_view(tar).substr(0, tar.size() / 2)).ok());
  ::kill(pid, SIGKILL);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ::close(p[1]);
  EXPECT_EQ(list_dir(path("tmp")).size(), 1u);  // what the killed import left
  ASSERT_TRUE(Store::open(root()).ok());
  EXPECT_TRUE(list_dir(path("tmp")).empty());
  EXPECT_TRUE(list_dir(path("layers/sha256")).empty());
  EXPECT_TRUE(list_dir(path("blobs/sha256")).empty());
  EXPECT_TRUE(store_->list()->empty());
}

TEST_F(StoreTest, IndexIsVersionedJsonAndCorruptionIsReported) {
  import("a:1", sample_tar());
  auto j = nlohmann::json::parse(read_file(path("images.json")));
  EXPECT_EQ(j["version"], 2);
  EXPECT_EQ(j["images"][0]["name"], "a");
  write_file(path("images.json"), "{\"version\": 1, \"images\": [{\"name\": \"a\"");
  auto r = store_->list();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message().rfind("image index " + path("images.json") + ": malformed", 0), 0u)
      << r.error().message();
}

// An index written before manifests were stored (version 1) is read; its images keep working
// and the next change writes version 2.
TEST_F(StoreTest, AVersionOneIndexIsReadAndUpgradedOnTheNextChange) {
  ImageRecord a = import("a:1", sample_tar());
  auto j = nlohmann::json::parse(read_file(path("images.json")));
  j["version"] = 1;
  for (auto& img : j["images"]) {
    img.erase("manifest_digest");
    img.erase("manifest_media_type");
    for (auto& l : img["layers"]) l.erase("media_type");
  }
  write_file(path("images.json"), j.dump());
  auto found = store_->find("a:1");
  ASSERT_TRUE(found.ok()) << found.error().message();
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->id, a.id);
  EXPECT_EQ((*found)->layers.at(0).diff_id, a.layers[0].diff_id);
  EXPECT_EQ((*found)->manifest_digest, "");
  EXPECT_TRUE(store_->lease(**found).ok());
  import("b:1", TarBuilder().file("f", "b").build());
  EXPECT_EQ(nlohmann::json::parse(read_file(path("images.json")))["version"], 2);
  EXPECT_EQ(store_->list()->size(), 2u);
}

TEST_F(StoreTest, IndexDigestsNeverBecomePaths) {
  ImageRecord a = import("a:1", sample_tar());
  std::string text = read_file(path("images.json"));
  std::string hex(digest_hex(a.layers[0].diff_id));
  text.replace(text.find(hex), hex.size(), "../../../../etc");
  write_file(path("images.json"), text);
  auto r = store_->remove("a:1");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("invalid layer digest"), std::string::npos);
}

TEST(StoreDefaultRoot, FollowsUidAndXdg) {
  EXPECT_EQ(default_root_for(0, "/x", "/home/u"), "/var/lib/sandrun");
  EXPECT_EQ(default_root_for(1000, "/x/data", "/home/u"), "/x/data/sandrun");
  EXPECT_EQ(default_root_for(1000, nullptr, "/home/u"), "/home/u/.local/share/sandrun");
  EXPECT_EQ(default_root_for(1000, "relative", "/home/u"), "/home/u/.local/share/sandrun");
  if (::geteuid() == 0) {
    EXPECT_EQ(default_root(), "/var/lib/sandrun");
  }
}

}  // namespace
}  // namespace sandrun::cache
