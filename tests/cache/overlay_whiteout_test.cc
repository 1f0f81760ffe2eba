// Extracted layers under a real overlayfs: whiteouts and opaque directories hide what the
// image spec says, for root's mounts (trusted.overlay.*) and user-namespace mounts
// (`userxattr`: user.overlay.*). Each mount lives in a forked child's private mount namespace.
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "cache/extract.h"
#include "sandbox/sys/unique_fd.h"
#include "tests/cache/tar_builder.h"
#include "tests/cache/test_util.h"
#include "tests/support/test_env.h"

namespace sandrun::cache {
namespace {

using sandrun::testing::TarBuilder;

TarBuilder lower_layer() {
  return TarBuilder()
      .dir("a").file("a/keep", "keep").file("a/gone", "gone").file("a/also", "also")
      .dir("d").file("d/old", "old")
      .file("f", "f")
      .dir("g").file("g/x", "x")
      .file("h", "h");
}

TarBuilder middle_layer() {
  return TarBuilder()
      .dir("a").file("a/.wh.gone", "").file("a/.wh.also", "")
      .dir("d").file("d/.wh..wh..opq", "").file("d/new", "new")
      .file(".wh.f", "")
      .file(".wh.g", "").dir("g").file("g/y", "y");  // g deleted and made anew: opaque
}

TarBuilder top_layer() {
  return TarBuilder()
      .dir("a").file("a/also", "back")  // re-creates what the middle layer deleted
      .chardev("h", 0, 0);              // an overlay-style whiteout in the tar itself
}

// The merged view of the three: each path ("/" after a directory) and each file's content.
const char* const kMerged =
    "a/\n"
    "a/also=back\n"
    "a/keep=keep\n"
    "d/\n"
    "d/new=new\n"
    "g/\n"
    "g/y=y\n";

enum class Mount { as_root, in_user_namespace };

struct Outcome {
  std::string failed;  // the step that failed in the child, empty on success
  int error = 0;       // its errno
  std::string merged;  // the listing, as kMerged
};

std::string list_tree(const std::string& root) {
  namespace stdfs = std::filesystem;
  std::vector<std::string> lines;
  for (const auto& e : stdfs::recursive_directory_iterator(root)) {
    const std::string rel = stdfs::relative(e.path(), root).string();
    if (e.is_directory()) lines.push_back(rel + "/");
    else if (e.is_regular_file()) lines.push_back(rel + "=" + sandrun::testing::read_file(e.path()));
    else lines.push_back(rel + " (not a file or directory)");
  }
  std::sort(lines.begin(), lines.end());
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

bool write_proc(const char* path, const std::string& text) {
  UniqueFd fd(::open(path, O_WRONLY | O_CLOEXEC));
  return fd && ::write(fd.get(), text.data(), text.size()) == static_cast<ssize_t>(text.size());
}

// The child: its own mount namespace (and user namespace), the overlay, the listing on `out`.
// Reports "step errno" instead when a step fails. Never returns.
[[noreturn]] void mount_and_list_child(int out, Mount how, const std::string& lowerdir,
                                       const std::string& merged) {
  auto fail = [out](const char* step) {
    const std::string text = fmt::format("{} {}", step, errno);
    (void)!::write(out, text.data(), text.size());
    ::_exit(1);
  };
  std::string options = "lowerdir=" + lowerdir;
  if (how == Mount::in_user_namespace) {
    // The ids before unshare: inside, they read as the overflow id until mapped.
    const uid_t uid = ::geteuid();
    const gid_t gid = ::getegid();
    if (::unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0) fail("unshare");
    // One line mapping our own ids needs no privilege in the parent namespace.
    if (!write_proc("/proc/self/uid_map", fmt::format("0 {} 1", uid))) fail("uid_map");
    if (!write_proc("/proc/self/setgroups", "deny")) fail("setgroups");
    if (!write_proc("/proc/self/gid_map", fmt::format("0 {} 1", gid))) fail("gid_map");
    options += ",userxattr";
  } else if (::unshare(CLONE_NEWNS) < 0) {
    fail("unshare");
  }
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) < 0) fail("make-rprivate");
  if (::mount("overlay", merged.c_str(), "overlay", MS_RDONLY, options.c_str()) < 0)
    fail("mount");
  const std::string listing = "ok\n" + list_tree(merged);
  (void)!::write(out, listing.data(), listing.size());
  ::_exit(0);
}

class OverlayWhiteoutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SANDRUN_REQUIRE_ROOT();
    // The user-namespace child is root only inside: it needs the path to be searchable.
    ASSERT_EQ(::chmod(dir_.path().c_str(), 0755), 0);
    ASSERT_EQ(::mkdir((dir_ / "merged").c_str(), 0755), 0);
    extract("lower", lower_layer());
    ExtractReport middle = extract("middle", middle_layer());
    EXPECT_EQ(middle.whiteouts, 3u);    // a/gone, a/also, f
    EXPECT_EQ(middle.opaque_dirs, 2u);  // d, g
    ExtractReport top = extract("top", top_layer());
    EXPECT_EQ(top.whiteouts, 1u);
  }

  ExtractReport extract(const std::string& name, const TarBuilder& tar) {
    const std::string dir = dir_ / name;
    EXPECT_EQ(::mkdir(dir.c_str(), 0755), 0);
    UniqueFd root(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    const std::string data = tar.build();
    auto reader = sandrun::testing::open_tar_reader(data);
    auto r = extract_layer(root.get(), reader.get(), default_extract_options());
    EXPECT_TRUE(r.ok()) << name << ": " << r.error().message();
    return r.ok() ? *r : ExtractReport{};
  }

  Outcome mount_and_list(Mount how) {
    const std::string lowerdir = (dir_ / "top") + ":" + (dir_ / "middle") + ":" + (dir_ / "lower");
    int fds[2];
    EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    UniqueFd rd(fds[0]), wr(fds[1]);
    const pid_t pid = ::fork();
    if (pid == 0) mount_and_list_child(wr.get(), how, lowerdir, dir_ / "merged");
    wr.reset();
    std::string text;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(rd.get(), buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
    int status = 0;
    EXPECT_EQ(::waitpid(pid, &status, 0), pid);
    Outcome out;
    if (text.starts_with("ok\n")) {
      out.merged = text.substr(3);
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    } else {
      const size_t space = text.find(' ');
      out.failed = text.empty() ? "child (no report)" : text.substr(0, space);
      out.error = space == std::string::npos ? 0 : std::atoi(text.c_str() + space + 1);
    }
    // The mount lived in the child's namespace only: the host never saw it.
    EXPECT_TRUE(sandrun::testing::mounts_under(dir_.path()).empty());
    return out;
  }

  sandrun::testing::TempDir dir_;
};

TEST_F(OverlayWhiteoutTest, RootMountShowsOnlyWhatTheLayersLeave) {
  Outcome r = mount_and_list(Mount::as_root);
  ASSERT_EQ(r.failed, "") << errno_text(r.error);
  EXPECT_EQ(r.merged, kMerged);
}

TEST_F(OverlayWhiteoutTest, UserNamespaceMountWithUserxattrShowsTheSame) {
  Outcome r = mount_and_list(Mount::in_user_namespace);
  SANDRUN_REQUIRE(r.failed != "unshare" && r.failed != "mount",
                  "overlayfs in a user namespace (Linux >= 5.11): " + r.failed + ": " +
                      errno_text(r.error));
  ASSERT_EQ(r.failed, "") << errno_text(r.error);
  EXPECT_EQ(r.merged, kMerged);
}

}  // namespace
}  // namespace sandrun::cache
