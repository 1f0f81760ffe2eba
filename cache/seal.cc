// A layer's seal (see seal.h).
#include "cache/seal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <ctime>
#include <mutex>
#include <set>

#include <fmt/format.h>

#include "cache/digest.h"
#include "cache/tree_walk.h"
#include "sandbox/sys/fs.h"
#include "sandbox/sys/log.h"

namespace sandrun::cache {

namespace {

constexpr std::string_view kMagic = "sandrun-layer-seal 1";
// How long a whole walk of a layer vouches for it, across processes.
constexpr time_t kWalkEvery = 60;

// Layers found intact in this process: their diff id and the device, inode and ctime of their
// directory (a layer unpacked again is a new directory, checked again).
std::mutex g_mu;
std::set<std::string> g_checked;

}  // namespace

namespace {

// "<label> <entries> sha256:<hex>\n" over the entries of `layer_fd` down to `max_depth`.
Result<std::string> digest_line(int layer_fd, std::string_view label, size_t max_depth) {
  Sha256 sha;
  uint64_t entries = 0;
  std::string line;
  SANDRUN_TRY(walk_tree(layer_fd, [&](const std::string& path, int, const char*, const struct stat& st) -> Result<void> {
    const bool dir = S_ISDIR(st.st_mode);
    const bool stable_time = !dir && !S_ISCHR(st.st_mode);
    line.assign(path);
    line.push_back('\0');  // no name holds a NUL: the record is unambiguous
    line += fmt::format("{:o} {} {} {} {}.{}\n", st.st_mode, st.st_uid, st.st_gid, dir ? 0 : st.st_size,
                        stable_time ? st.st_mtim.tv_sec : 0, stable_time ? st.st_mtim.tv_nsec : 0);
    sha.update(line.data(), line.size());
    ++entries;
    return {};
  }, max_depth));
  return fmt::format("{} {} {}\n", label, entries, sha.finish());
}

// The seal file's mtime is when the layer was last walked whole; 0 (as written) means never.
void mark_walked(int seal_fd, bool now) {
  const struct timespec never[2] = {{0, 0}, {0, 0}};
  ::futimens(seal_fd, now ? nullptr : never);
}

}  // namespace

Result<std::string> seal_of(int layer_fd) {
  std::string whole = SANDRUN_TRY(digest_line(layer_fd, kMagic, SIZE_MAX));
  return whole + SANDRUN_TRY(digest_line(layer_fd, "top", 1));
}

Result<void> write_seal(int dir_fd, const std::string& name, int layer_fd) {
  const std::string seal = SANDRUN_TRY(seal_of(layer_fd));
  UniqueFd fd(::openat(dir_fd, name.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd) return Error::sys("create {}", fs::join(fs::fd_path(dir_fd), name));
  SANDRUN_TRY(fs::write_all(fd.get(), seal));
  mark_walked(fd.get(), false);  // the first use walks it whole
  return {};
}

Result<void> reseal(const Layout& layout, std::string_view diff_id) {
  if (::mkdir(layout.seals.c_str(), 0700) < 0 && errno != EEXIST) return Error::sys("create {}", layout.seals);
  UniqueFd layer = SANDRUN_TRY(fs::open_path(layout.layer_path(diff_id), O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
  const std::string seal = SANDRUN_TRY(seal_of(layer.get()));
  SANDRUN_TRY(fs::write_file_atomic(layout.seal_path(diff_id), seal, 0600));
  const struct timespec never[2] = {{0, 0}, {0, 0}};
  ::utimensat(AT_FDCWD, layout.seal_path(diff_id).c_str(), never, AT_SYMLINK_NOFOLLOW);
  return {};
}

void drop_seal(const Layout& layout, std::string_view diff_id) {
  ::unlink(layout.seal_path(diff_id).c_str());
}

Result<void> check_seal(const Layout& layout, std::string_view diff_id, int layer_fd) {
  struct stat st;
  if (::fstat(layer_fd, &st) < 0) return Error::sys("stat layer {}", layout.layer_path(diff_id));
  const std::string key = fmt::format("{} {} {} {}.{}", diff_id, st.st_dev, st.st_ino, st.st_ctim.tv_sec,
                                      st.st_ctim.tv_nsec);
  {
    std::lock_guard<std::mutex> g(g_mu);
    if (g_checked.count(key)) return {};
  }
  SANDRUN_TRY(check_seal_now(layout, diff_id, layer_fd));
  std::lock_guard<std::mutex> g(g_mu);
  g_checked.insert(key);
  return {};
}

Result<void> check_seal_now(const Layout& layout, std::string_view diff_id, int layer_fd) {
  const std::string path = layout.seal_path(diff_id);
  UniqueFd seal(::open(path.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC));
  if (!seal && errno == ENOENT) {
    // Unpacked before seals existed: trusted on first use, sealed now.
    log::debug("image cache: sealing layer {}", diff_id);
    SANDRUN_TRY(reseal(layout, diff_id));
  } else {
    if (!seal) return Error::sys("open the seal {}", path);
    const std::string stored = SANDRUN_TRY(fs::read_fd(seal.get()));
    struct stat sst;
    if (::fstat(seal.get(), &sst) < 0) return Error::sys("stat the seal {}", path);
    auto damaged = [&] {
      return Error::msg("layer {} was changed on disk since it was unpacked (its seal {} does not match): the image "
                        "cache {} is damaged", diff_id, path, layout.root)
          .hint("run `sandrun image verify` (it removes damaged layers), then import or pull the image again");
    };
    // Always: the layer's own entries (a few stats).
    const std::string top = SANDRUN_TRY(digest_line(layer_fd, "top", 1));
    const size_t nl = stored.find('\n');
    if (nl == std::string::npos || stored.substr(nl + 1) != top) return damaged();
    // The whole layer when it was not walked in the last kWalkEvery (any process): the first
    // use after unpacking, then at most once a minute per layer.
    const time_t now = ::time(nullptr);
    const bool walked_lately = sst.st_mtim.tv_sec <= now && now - sst.st_mtim.tv_sec < kWalkEvery;
    if (!walked_lately) {
      const std::string whole = SANDRUN_TRY(digest_line(layer_fd, kMagic, SIZE_MAX));
      if (stored.substr(0, nl + 1) != whole) return damaged();
      mark_walked(seal.get(), true);
    }
  }
  return {};
}

}  // namespace sandrun::cache
