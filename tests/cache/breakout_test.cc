// Layer breakout cases (containerd TestBreakouts, go-archive, umoci): each must be refused
// with an error naming the entry, commit nothing, and leave a canary outside untouched.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include <functional>

#include "cache/extract.h"
#include "cache/store.h"
#include "sandbox/sys/unique_fd.h"
#include "tests/cache/tar_builder.h"
#include "tests/cache/test_util.h"
#include "tests/support/test_env.h"

namespace sandrun::cache {
namespace {

using sandrun::testing::TarBuilder;

struct Breakout {
  const char* name;
  // `t` is the absolute path of the test directory that holds the canary.
  std::function<TarBuilder(const std::string& t)> tar;
  std::function<std::string(const std::string& t)> error;
};

const std::string kUp = "../../../../../../../../../..";

const Breakout kCases[] = {
    {"DotDot", [](auto&) { return TarBuilder().file("../canary", "pwned"); },
     [](auto&) { return R"(layer entry "../canary": path escapes the layer root)"; }},
    {"NestedDotDot", [](auto&) { return TarBuilder().dir("a").file("a/../../canary", "pwned"); },
     [](auto&) { return R"(layer entry "a/../../canary": path escapes the layer root)"; }},
    {"AbsoluteDotDot", [](auto&) { return TarBuilder().file("/../canary", "pwned"); },
     [](auto&) { return R"(layer entry "/../canary": path escapes the layer root)"; }},
    {"SymlinkAbsoluteWriteThrough",
     [](auto& t) {
       return TarBuilder().symlink("link", "/").file("link" + t + "/canary", "pwned");
     },
     [](auto& t) { return "layer entry \"link" + t + "/canary\": parent \"link\" is a symlink"; }},
    {"SymlinkRelativeUpAndOut",
     [](auto& t) { return TarBuilder().symlink("up", kUp).file("up" + t + "/canary", "pwned"); },
     [](auto& t) { return "layer entry \"up" + t + "/canary\": parent \"up\" is a symlink"; }},
    {"SymlinkNestedUpAndOut",
     [](auto& t) {
       return TarBuilder().dir("d").symlink("d/up", kUp).file("d/up" + t + "/canary", "pwned");
     },
     [](auto& t) { return "layer entry \"d/up" + t + "/canary\": parent \"d/up\" is a symlink"; }},
    // The extractor keeps the last parent directory open: a directory written into, then
    // replaced by a symlink, must not be written through by the next entry (nor into the
    // stale, deleted directory: the entry is refused).
    {"DirectoryReplacedBySymlinkThenWrittenThrough",
     [](auto& t) {
       return TarBuilder().dir("d").file("d/a", "x").symlink("d", t).file("d/canary", "pwned");
     },
     [](auto&) { return R"(layer entry "d/canary": parent "d" is a symlink)"; }},
    {"SymlinkThenDirectoryThrough",
     [](auto& t) { return TarBuilder().symlink("link", t).dir("link/sub"); },
     [](auto&) { return R"(layer entry "link/sub/": parent "link" is a symlink)"; }},
    {"HardlinkAbsoluteOutside",
     [](auto& t) { return TarBuilder().hardlink("h", t + "/canary"); },
     [](auto& t) {
       return "layer entry \"h\": hardlink target \"" + t + "/canary\" does not exist in the layer";
     }},
    {"HardlinkRelativeUpAndOut", [](auto&) { return TarBuilder().hardlink("h", "../../secret"); },
     [](auto&) {
       return R"(layer entry "h": hardlink target "../../secret": path escapes the layer root)";
     }},
    {"HardlinkMissing", [](auto&) { return TarBuilder().file("a", "x").hardlink("h", "missing"); },
     [](auto&) {
       return R"(layer entry "h": hardlink target "missing" does not exist in the layer)";
     }},
    {"HardlinkThroughSymlinkParent",
     [](auto& t) { return TarBuilder().symlink("l", t).hardlink("h", "l/canary"); },
     [](auto&) {
       return R"(layer entry "h": hardlink target "l/canary": parent "l" is a symlink)";
     }},
    {"HardlinkToDirectory", [](auto&) { return TarBuilder().dir("d").hardlink("h", "d"); },
     [](auto&) { return R"(layer entry "h": hardlink target "d" is a directory)"; }},
    {"RootAsSymlink", [](auto&) { return TarBuilder().symlink(".", "/"); },
     [](auto&) { return R"(layer entry ".": the layer root must be a directory)"; }},
    {"FileUnderFile", [](auto&) { return TarBuilder().file("f", "x").file("f/g", "y"); },
     [](auto&) { return R"(layer entry "f/g": parent "f" is not a directory)"; }},
    {"AbsolutePath", [](auto& t) { return TarBuilder().file(t + "/canary", "pwned"); },
     [](auto& t) { return "layer entry \"" + t + "/canary\": absolute path in a layer"; }},
    {"WhiteoutOfTheParent", [](auto&) { return TarBuilder().dir("a").file("a/.wh...", ""); },
     [](auto&) {
       return R"(layer entry "a/.wh...": invalid whiteout ".wh...": ".." is not an entry name)";
     }},
    {"WhiteoutThroughSymlink",
     [](auto& t) { return TarBuilder().symlink("l", t).file("l/.wh.canary", ""); },
     [](auto&) { return R"(layer entry "l/.wh.canary": parent "l" is a symlink)"; }},
    {"OpaqueMarkerThroughSymlink",
     [](auto& t) { return TarBuilder().symlink("l", t).file("l/.wh..wh..opq", ""); },
     [](auto&) { return R"(layer entry "l/.wh..wh..opq": parent "l" is a symlink)"; }},
};

class ExtractBreakout : public ::testing::TestWithParam<size_t> {
 protected:
  void SetUp() override { sandrun::testing::write_file(dir_ / "canary", "unbroken", 0644); }
  void expect_canary_untouched() {
    EXPECT_EQ(sandrun::testing::read_file(dir_ / "canary"), "unbroken");
    struct stat st = sandrun::testing::lstat_of(dir_ / "canary");
    EXPECT_TRUE(S_ISREG(st.st_mode));
    EXPECT_EQ(st.st_mode & 07777, 0644u);
    EXPECT_EQ(st.st_nlink, 1u);
    char value[8];
    EXPECT_LT(::lgetxattr(dir_.path().c_str(), "user.overlay.opaque", value, sizeof value), 0);
  }
  sandrun::testing::TempDir dir_;
};

TEST_P(ExtractBreakout, ExtractorRefusesAndNamesTheEntry) {
  const Breakout& c = kCases[GetParam()];
  std::string data = c.tar(dir_.path()).build();
  ASSERT_EQ(::mkdir((dir_ / "layer").c_str(), 0755), 0);
  UniqueFd root(::open((dir_ / "layer").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  auto reader = sandrun::testing::open_tar_reader(data);
  auto r = extract_layer(root.get(), reader.get(), default_extract_options());
  ASSERT_FALSE(r.ok()) << c.name;
  EXPECT_EQ(r.error().message(), c.error(dir_.path()));
  expect_canary_untouched();
}

TEST_P(ExtractBreakout, ImportCommitsNothing) {
  const Breakout& c = kCases[GetParam()];
  sandrun::testing::write_file(dir_ / "layer.tar", c.tar(dir_.path()).build());
  auto store = Store::open(dir_ / "store");
  ASSERT_TRUE(store.ok()) << store.error().message();
  auto r = store->import_rootfs("evil:1", dir_ / "layer.tar");
  ASSERT_FALSE(r.ok()) << c.name;
  EXPECT_EQ(r.error().message(), "import " + (dir_ / "layer.tar") + ": " + c.error(dir_.path()));
  expect_canary_untouched();
  using sandrun::testing::list_dir;
  EXPECT_TRUE(list_dir(dir_ / "store/tmp").empty());
  EXPECT_TRUE(list_dir(dir_ / "store/layers/sha256").empty());
  EXPECT_TRUE(list_dir(dir_ / "store/blobs/sha256").empty());
  auto images = store->list();
  ASSERT_TRUE(images.ok());
  EXPECT_TRUE(images->empty());
}

INSTANTIATE_TEST_SUITE_P(Cases, ExtractBreakout,
                         ::testing::Range<size_t>(0, std::size(kCases)),
                         [](const auto& info) { return std::string(kCases[info.param].name); });

}  // namespace
}  // namespace sandrun::cache
