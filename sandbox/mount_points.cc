// The mount-point layer of a read-only root (see mount_points.h).
#include "sandbox/mount_points.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include <fmt/format.h>

#include "sandbox/sys/fs.h"
#include "sandbox/sys/syscalls.h"

namespace sandrun::sandbox {
namespace {

bool is_whiteout(const struct stat& st) { return S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0); }

// Opens `rel` inside the layer `root` without following any symlink; a trailing symlink is
// opened itself. -1 with errno on failure.
int open_entry(int root, const std::string& rel) {
  return sys::openat2(root, rel.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC, 0,
                      RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
}

bool is_opaque(int fd) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  char value[2] = {};
  ssize_t n = ::getxattr(path, "trusted.overlay.opaque", value, sizeof value);
  return n == 1 && value[0] == 'y';
}

struct Lookup {
  Found found = Found::missing;
  // The attributes overlayfs shows for each leading component that is a directory in the
  // image (the top-most layer's copy); fewer entries than components when the rest is missing.
  std::vector<struct stat> dirs;
};

Lookup lookup(const std::vector<UniqueFd>& layers, const std::string& path) {
  Lookup out;
  const auto comps = fs::path_components(path);
  std::vector<size_t> active(layers.size());
  for (size_t i = 0; i < active.size(); ++i) active[i] = i;
  std::string rel;
  for (size_t c = 0; c < comps.size(); ++c) {
    rel = rel.empty() ? std::string(comps[c]) : rel + "/" + std::string(comps[c]);
    const bool last = c + 1 == comps.size();
    std::vector<size_t> next;
    bool seen = false;
    struct stat top {};
    for (size_t idx : active) {
      UniqueFd fd(open_entry(layers[idx].get(), rel));
      if (!fd) {
        if (errno == ENOENT) continue;
        out.found = Found::other;  // unreadable: do not guess
        return out;
      }
      struct stat st;
      if (::fstat(fd.get(), &st) < 0) {
        out.found = Found::other;
        return out;
      }
      if (!seen) {
        seen = true;
        top = st;
        if (is_whiteout(st)) return out;  // deleted by an upper layer: missing
        if (!S_ISDIR(st.st_mode)) {
          if (!last) out.found = Found::through_non_dir;
          else out.found = S_ISREG(st.st_mode) ? Found::file : Found::other;
          return out;
        }
      } else if (!S_ISDIR(st.st_mode)) {
        break;  // a lower non-directory (or whiteout) ends the merge below this directory
      }
      next.push_back(idx);
      if (is_opaque(fd.get())) break;
    }
    if (!seen) return out;  // missing
    out.dirs.push_back(top);
    active = std::move(next);
  }
  out.found = Found::dir;
  return out;
}

Result<std::vector<UniqueFd>> open_layers(const std::vector<std::string>& lower_dirs) {
  std::vector<UniqueFd> layers;
  for (const auto& dir : lower_dirs) layers.push_back(SANDRUN_TRY(fs::open_path(dir, O_PATH | O_DIRECTORY)));
  return layers;
}

uint64_t fnv64(uint64_t h, std::string_view data) {
  for (unsigned char ch : data) {
    h ^= ch;
    h *= 1099511628211ULL;
  }
  return h;
}

std::string normalise(const std::string& path) {
  std::string out;
  for (auto part : fs::path_components(path)) {
    out += '/';
    out += part;
  }
  return out.empty() ? "/" : out;
}

// One entry of the layer to build: a path relative to its root, and for a directory the image
// repeats, the attributes to copy.
struct Entry {
  std::string rel;
  bool is_dir = true;
  std::optional<struct stat> attrs;
};

// The entries `targets` need on top of the image, or nullopt when the layer cannot be used.
std::optional<std::vector<Entry>> plan_entries(const std::vector<UniqueFd>& layers,
                                               const std::vector<MountPoint>& targets) {
  std::vector<Entry> entries;
  auto find = [&](const std::string& rel) -> Entry* {
    for (auto& e : entries) {
      if (e.rel == rel) return &e;
    }
    return nullptr;
  };
  for (const auto& t : targets) {
    const auto comps = fs::path_components(t.path);
    if (std::find(comps.begin(), comps.end(), "..") != comps.end()) return std::nullopt;
    Lookup l = lookup(layers, t.path);
    switch (l.found) {
      case Found::dir:
        if (t.is_dir) continue;
        return std::nullopt;
      case Found::file:
        if (!t.is_dir) continue;
        return std::nullopt;
      case Found::other:
      case Found::through_non_dir: return std::nullopt;
      case Found::missing: break;
    }
    std::string rel;
    for (size_t k = 0; k < comps.size(); ++k) {
      rel = rel.empty() ? std::string(comps[k]) : rel + "/" + std::string(comps[k]);
      const bool want_dir = k + 1 < comps.size() || t.is_dir;
      if (Entry* e = find(rel)) {
        if (e->is_dir != want_dir) return std::nullopt;  // one target's file is another's directory
        continue;
      }
      Entry e{rel, want_dir, std::nullopt};
      if (k < l.dirs.size()) e.attrs = l.dirs[k];
      entries.push_back(std::move(e));
    }
  }
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.rel < b.rel; });
  return entries;
}

Result<void> copy_attrs(int dirfd, const char* rel, const struct stat& st) {
  const int flags = rel[0] ? AT_SYMLINK_NOFOLLOW : AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH;
  // Only on a failure: the host path of the entry (errno kept for Error::sys).
  auto where = [&] {
    const int saved = errno;
    std::string path = rel[0] ? fs::join(fs::fd_path(dirfd), rel) : fs::fd_path(dirfd);
    errno = saved;
    return path;
  };
  if (::fchownat(dirfd, rel, st.st_uid, st.st_gid, flags) < 0) return Error::sys("chown {}", where());
  if (::fchmodat(dirfd, rel[0] ? rel : ".", st.st_mode & 07777, 0) < 0) return Error::sys("chmod {}", where());
  const struct timespec times[2] = {st.st_atim, st.st_mtim};
  if (::utimensat(dirfd, rel[0] ? rel : ".", times, AT_SYMLINK_NOFOLLOW) < 0)
    return Error::sys("set the times of {}", where());
  return {};
}

Result<void> build(const std::string& dir, const struct stat& root_attrs, const std::vector<Entry>& entries) {
  auto root = SANDRUN_TRY(fs::open_path(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
  for (const auto& e : entries) {
    auto path = [&] {  // errno kept for Error::sys
      const int saved = errno;
      std::string p = fs::join(dir, e.rel);
      errno = saved;
      return p;
    };
    if (e.is_dir) {
      if (::mkdirat(root.get(), e.rel.c_str(), 0755) < 0) return Error::sys("create {}", path());
      if (::fchmodat(root.get(), e.rel.c_str(), 0755, 0) < 0) return Error::sys("chmod {}", path());
    } else {
      int fd = ::openat(root.get(), e.rel.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
      if (fd < 0) return Error::sys("create {}", path());
      ::close(fd);
      if (::fchmodat(root.get(), e.rel.c_str(), 0644, 0) < 0) return Error::sys("chmod {}", path());
    }
  }
  // Deepest first: creating an entry changes its parent's times.
  for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
    if (it->attrs) SANDRUN_TRY(copy_attrs(root.get(), it->rel.c_str(), *it->attrs));
  }
  SANDRUN_TRY(copy_attrs(root.get(), "", root_attrs));
  if (::syncfs(root.get()) < 0) return Error::sys("sync {}", dir);
  return {};
}

}  // namespace

std::vector<MountPoint> required_mount_points(const ContainerPlan& spec, const std::vector<std::string>& extra_dirs) {
  std::vector<MountPoint> out = {{"/proc", true}, {"/dev", true}, {"/sys", true}, {"/tmp", true}};
  if (normalise(spec.workdir) != "/") out.push_back({normalise(spec.workdir), true});
  for (const auto& b : spec.binds) {
    struct stat st;
    const bool is_dir = ::stat(b.source.c_str(), &st) < 0 || S_ISDIR(st.st_mode);
    out.push_back({normalise(b.target), is_dir});
  }
  for (const auto& d : extra_dirs) out.push_back({normalise(d), true});
  std::sort(out.begin(), out.end(), [](const MountPoint& a, const MountPoint& b) {
    return a.path != b.path ? a.path < b.path : a.is_dir < b.is_dir;
  });
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

Found lookup_in_layers(const std::vector<std::string>& lower_dirs, const std::string& path) {
  auto layers = open_layers(lower_dirs);
  if (!layers) return Found::other;
  return lookup(*layers, path).found;
}

bool uses_mount_point_layer(const ContainerPlan& spec) {
  return spec.hardening.read_only_rootfs && !spec.mount_point_layer.empty();
}

Result<std::optional<std::string>> ensure_mount_point_layer(const std::string& cache_dir, const ContainerPlan& spec,
                                                             const std::vector<std::string>& extra_dirs) {
  if (!spec.hardening.read_only_rootfs || spec.lower_dirs.empty()) return std::optional<std::string>();
  const auto targets = required_mount_points(spec, extra_dirs);
  uint64_t h = fnv64(14695981039346656037ULL, "sandrun mount-point layer v1");
  for (const auto& d : spec.lower_dirs) h = fnv64(h, d + '|');
  for (const auto& t : targets) h = fnv64(h, t.path + (t.is_dir ? "/|" : "|"));
  const std::string final_dir = fmt::format("{}/{:016x}", cache_dir, h);
  if (fs::is_dir(final_dir)) return std::optional<std::string>(final_dir);

  auto layers = SANDRUN_TRY(open_layers(spec.lower_dirs));
  auto entries = plan_entries(layers, targets);
  if (!entries) return std::optional<std::string>();
  struct stat root_attrs;
  if (::fstat(layers.front().get(), &root_attrs) < 0) return Error::sys("stat {}", spec.lower_dirs.front());

  SANDRUN_TRY(fs::mkdirs(cache_dir, 0700));
  std::string tmp = cache_dir + "/.tmp-XXXXXX";
  if (!::mkdtemp(tmp.data())) return Error::sys("create a temp dir in {}", cache_dir);
  auto built = build(tmp, root_attrs, *entries);
  if (built && ::rename(tmp.c_str(), final_dir.c_str()) == 0) return std::optional<std::string>(final_dir);
  const int err = errno;
  (void)fs::remove_tree(tmp);
  if (!built) return std::move(built.error().wrap(fmt::format("make the mount-point layer {}", final_dir)));
  if (err == EEXIST || err == ENOTEMPTY) return std::optional<std::string>(final_dir);  // another sandrun made it first
  return Error::sys_code(err, "rename {} to {}", tmp, final_dir);
}

}  // namespace sandrun::sandbox
