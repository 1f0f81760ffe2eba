// A running container's files from the host, resolved inside its root (container_files.h).
#include "runner/engine/container_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <linux/capability.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <memory>
#include <set>
#include <vector>

#include "cache/archive_lib.h"
#include "cache/extract.h"
#include "sandbox/sys/fs.h"

namespace sandrun::runner {
namespace {

using cache::arc;
using cache::archive_text;

struct WriterFree {
  void operator()(struct archive* a) const { arc().archive_write_free(a); }
};
struct ReaderFree {
  void operator()(struct archive* a) const { arc().archive_read_free(a); }
};
struct EntryFree {
  void operator()(struct archive_entry* e) const { arc().archive_entry_free(e); }
};

// The path as a container's absolute path, lexically cleaned ("" and "." are "/").
std::string clean(std::string_view path) {
  std::vector<std::string_view> parts;
  for (auto c : fs::path_components(path)) {
    if (c == "..") {
      if (!parts.empty()) parts.pop_back();
    } else {
      parts.push_back(c);
    }
  }
  std::string out;
  for (auto c : parts) out += "/" + std::string(c);
  return out.empty() ? "/" : out;
}

std::string base_of(const std::string& abs) {
  return abs == "/" ? "/" : abs.substr(abs.rfind('/') + 1);
}

// Opens `path` inside the container's root (its symlinks resolved against that root), the last
// component itself when it is a symlink.
Result<UniqueFd> open_in(const ContainerFiles& c, std::string_view path, int flags) {
  return fs::open_beneath(c.root.get(), clean(path), flags | O_NOFOLLOW, RESOLVE_IN_ROOT);
}

// A host owner as the container sees it (65534, the overflow id, when outside its map).
uint32_t inside(uint32_t host, uint32_t base, uint32_t count) {
  if (count == 0) return host;
  return host >= base && host - base < count ? host - base : 65534;
}

class TarWriter {
 public:
  TarWriter(const ContainerFiles& c, struct archive* w) : c_(c), w_(w) {}

  // `fd`: an O_PATH descriptor of what is stored as `name`.
  Result<void> add(int fd, const std::string& name) {
    struct stat st {};
    if (::fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) return Error::sys("stat {}", name);
    if (S_ISDIR(st.st_mode)) return add_dir(fd, name, st);
    if (S_ISLNK(st.st_mode)) return add_link(fd, name, st);
    if (S_ISREG(st.st_mode)) return add_file(fd, name, st);
    return {};  // devices, fifos, sockets: not copied
  }

 private:
  std::unique_ptr<struct archive_entry, EntryFree> header(const std::string& name, const struct stat& st,
                                                          mode_t type) {
    std::unique_ptr<struct archive_entry, EntryFree> e(arc().archive_entry_new());
    arc().archive_entry_set_pathname(e.get(), name.c_str());
    arc().archive_entry_set_filetype(e.get(), type);
    arc().archive_entry_set_perm(e.get(), st.st_mode & 07777);
    arc().archive_entry_set_uid(e.get(), inside(st.st_uid, c_.uid_base, c_.id_count));
    arc().archive_entry_set_gid(e.get(), inside(st.st_gid, c_.gid_base, c_.id_count));
    arc().archive_entry_set_mtime(e.get(), st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    arc().archive_entry_set_size(e.get(), 0);
    return e;
  }

  Result<void> write_header(struct archive_entry* e, const std::string& name) {
    if (arc().archive_write_header(w_, e) != ARCHIVE_OK) return Error::msg("write {}: {}", name, archive_text(w_));
    return {};
  }

  Result<void> add_link(int fd, const std::string& name, const struct stat& st) {
    char target[4096];
    const ssize_t n = ::readlinkat(fd, "", target, sizeof target - 1);
    if (n < 0) return Error::sys("read the symlink {}", name);
    target[n] = '\0';
    auto e = header(name, st, AE_IFLNK);
    arc().archive_entry_set_symlink(e.get(), target);
    return write_header(e.get(), name);
  }

  Result<void> add_file(int fd, const std::string& name, const struct stat& st) {
    // Re-opened for reading through the O_PATH fd (never by name: it may have been replaced).
    auto file = SANDRUN_TRY(fs::open_path(fmt::format("/proc/self/fd/{}", fd), O_RDONLY));
    struct stat now {};
    if (::fstat(file.get(), &now) < 0 || now.st_ino != st.st_ino || now.st_dev != st.st_dev)
      return Error::msg("{} changed while it was read", name);
    auto e = header(name, st, AE_IFREG);
    arc().archive_entry_set_size(e.get(), st.st_size);
    SANDRUN_TRY(write_header(e.get(), name));
    char buf[64 << 10];
    int64_t left = st.st_size;
    while (left > 0) {
      const ssize_t n = ::read(file.get(), buf, static_cast<size_t>(std::min<int64_t>(left, sizeof buf)));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Error::sys("read {}", name);
      if (n == 0) break;  // shrunk meanwhile: libarchive pads the entry
      if (arc().archive_write_data(w_, buf, static_cast<size_t>(n)) < 0)
        return Error::msg("write {}: {}", name, archive_text(w_));
      left -= n;
    }
    return {};
  }

  Result<void> add_dir(int fd, const std::string& name, const struct stat& st) {
    auto e = header(name == "/" ? "./" : name + "/", st, AE_IFDIR);
    SANDRUN_TRY(write_header(e.get(), name));
    // Each child is opened by its name in this directory, without following a symlink: the
    // walk stays in the tree it started from.
    const int opened = ::openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (opened < 0) return Error::sys("open the directory {}", name);
    UniqueFd dir(opened);
    DIR* d = ::fdopendir(dir.get());
    if (!d) return Error::sys("read the directory {}", name);
    const int dfd = dir.release();
    std::unique_ptr<DIR, int (*)(DIR*)> owner(d, ::closedir);
    std::vector<std::string> names;
    while (dirent* de = ::readdir(d)) {
      const std::string_view n = de->d_name;
      if (n != "." && n != "..") names.emplace_back(n);
    }
    const std::string prefix = name == "/" ? "" : name + "/";
    for (const auto& child : names) {
      const int cfd = ::openat(dfd, child.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
      if (cfd < 0) {
        if (errno == ENOENT) continue;  // gone meanwhile
        return Error::sys("open {}{}", prefix, child);
      }
      UniqueFd c(cfd);
      SANDRUN_TRY(add(c.get(), prefix + child));
    }
    return {};
  }

  const ContainerFiles& c_;
  struct archive* w_;
};

}  // namespace

Result<UniqueFd> open_container_root(pid_t pid, int pidfd) {
  auto root = SANDRUN_TRY(fs::open_path(fmt::format("/proc/{}/root", pid), O_PATH | O_DIRECTORY));
  // The pid is still the container's PID 1 (else the fd may be another process's root).
  if (::syscall(SYS_pidfd_send_signal, pidfd, 0, nullptr, 0) < 0) return Error::sys("the container's PID 1 is gone");
  return root;
}

Result<PathStat> stat_in_container(const ContainerFiles& c, std::string_view path) {
  const std::string abs = clean(path);
  auto fd = SANDRUN_TRY(open_in(c, abs, O_PATH));
  struct stat st {};
  if (::fstatat(fd.get(), "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) return Error::sys("stat {}", abs);
  PathStat out;
  out.name = base_of(abs);
  out.size = st.st_size;
  out.mode = st.st_mode;
  out.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
  if (S_ISLNK(st.st_mode)) {
    char target[4096];
    const ssize_t n = ::readlinkat(fd.get(), "", target, sizeof target - 1);
    if (n < 0) return Error::sys("read the symlink {}", abs);
    const std::string t(target, static_cast<size_t>(n));
    const std::string dir = abs.substr(0, abs.rfind('/'));
    out.link_target = t.starts_with('/') ? clean(t) : clean(dir + "/" + t);
  }
  return out;
}

Result<void> tar_from_container(const ContainerFiles& c, std::string_view path, int out_fd) {
  SANDRUN_TRY(cache::load_archive_lib());
  const std::string abs = clean(path);
  auto fd = SANDRUN_TRY(open_in(c, abs, O_PATH));
  std::unique_ptr<struct archive, WriterFree> w(arc().archive_write_new());
  arc().archive_write_set_format_pax_restricted(w.get());
  if (arc().archive_write_open_fd(w.get(), out_fd) != ARCHIVE_OK)
    return Error::msg("write the archive: {}", archive_text(w.get()));
  TarWriter writer(c, w.get());
  SANDRUN_TRY(writer.add(fd.get(), base_of(abs)));
  if (arc().archive_write_close(w.get()) != ARCHIVE_OK) return Error::msg("write the archive: {}", archive_text(w.get()));
  return {};
}

namespace {

// Reads the tar of `tar_fd` into the directory `target`.
// A reader of the tar (plain or compressed) read from `tar_fd`.
Result<std::unique_ptr<struct archive, ReaderFree>> open_tar_reader(int tar_fd) {
  std::unique_ptr<struct archive, ReaderFree> r(arc().archive_read_new());
  arc().archive_read_support_format_tar(r.get());
  arc().archive_read_support_filter_gzip(r.get());
  arc().archive_read_support_filter_bzip2(r.get());
  arc().archive_read_support_filter_xz(r.get());
  arc().archive_read_support_filter_zstd(r.get());
  if (arc().archive_read_open_fd(r.get(), tar_fd, 64 << 10) != ARCHIVE_OK)
    return Error::msg("read the archive: {}", archive_text(r.get()));
  return r;
}

Result<void> extract_tar(const ContainerFiles& c, int target, int tar_fd, const ExtractInto& opts, bool cross_mounts) {
  auto r = SANDRUN_TRY(open_tar_reader(tar_fd));
  cache::ExtractOptions o = cache::default_extract_options();
  o.trusted_overlay = false;
  o.max_bytes = opts.max_bytes;
  o.cross_mounts = cross_mounts;
  if (o.chown && (c.id_count || !opts.copy_owners)) {
    o.owner_base = std::make_pair(c.uid_base, c.gid_base);
    o.owner_root = !opts.copy_owners;
  }
  SANDRUN_TRY(cache::extract_layer(target, r.get(), o));
  return {};
}

// The directory `name` in `parent` of the upper layer, made as the top-most lower layer that
// has it (`lower_path`: its path from the layer's root) when missing.
Result<UniqueFd> layer_dir(const LayerTarget& t, int parent, const std::string& name, const std::string& lower_path) {
  struct stat st {};
  if (::fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) {
    if (errno != ENOENT) return Error::sys("stat {}", lower_path);
    bool found = false;
    for (const auto& lower : t.lowers) {
      auto root = fs::open_path(lower, O_PATH | O_DIRECTORY);
      if (!root) continue;
      auto at = fs::open_beneath(root->get(), lower_path, O_PATH | O_NOFOLLOW, RESOLVE_NO_SYMLINKS);
      if (!at) continue;
      if (::fstatat(at->get(), "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) continue;
      found = true;
      break;
    }
    if (!found) return Error::sys_code(ENOENT, "/{}", lower_path);
    if (!S_ISDIR(st.st_mode)) return Error::sys_code(ENOTDIR, "/{}", lower_path);
    if (::mkdirat(parent, name.c_str(), st.st_mode & 07777) < 0) return Error::sys("create /{}", lower_path);
    auto made = SANDRUN_TRY(fs::open_beneath(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, RESOLVE_NO_SYMLINKS));
    const uid_t uid = t.shift_layer_ids ? st.st_uid + t.ids.uid_base : st.st_uid;
    const gid_t gid = t.shift_layer_ids ? st.st_gid + t.ids.gid_base : st.st_gid;
    if (::fchown(made.get(), uid, gid) < 0 || ::fchmod(made.get(), st.st_mode & 07777) < 0)
      return Error::sys("set the owner and mode of /{}", lower_path);
    return made;
  }
  if (S_ISLNK(st.st_mode))
    return Error::msg("/{} is a symlink: a copy into a container that does not run follows none", lower_path);
  if (!S_ISDIR(st.st_mode)) return Error::sys_code(ENOTDIR, "/{}", lower_path);
  return fs::open_beneath(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, RESOLVE_NO_SYMLINKS);
}

// While it lives, this thread creates files as the container's root (its file-system ids):
// a file system the container mounted in its user namespace (its overlay root, its /tmp)
// refuses to create a file owned by an id it cannot map (EOVERFLOW), which host root is.
// The effective capabilities that a non-zero fsuid drops are raised again for this thread
// (chown to the container's ids, writing where its root may not); fsuid 0 restores them.
class ActAsContainerRoot {
 public:
  explicit ActAsContainerRoot(const ContainerFiles& c) : on_(c.id_count && ::geteuid() == 0) {
    if (!on_) return;
    ::setfsgid(c.gid_base);
    ::setfsuid(c.uid_base);
    __user_cap_header_struct head{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2]{};
    if (::syscall(SYS_capget, &head, data) == 0) {
      data[0].effective = data[0].permitted;
      data[1].effective = data[1].permitted;
      ::syscall(SYS_capset, &head, data);
    }
  }
  ~ActAsContainerRoot() {
    if (!on_) return;
    ::setfsuid(0);
    ::setfsgid(0);
  }
  ActAsContainerRoot(const ActAsContainerRoot&) = delete;
  ActAsContainerRoot& operator=(const ActAsContainerRoot&) = delete;

 private:
  bool on_;
};

}  // namespace

// The directories the tar's entries lie in ("etc/app" of "etc/app/config.txt"), relative, each
// with its own parents before it. Entries with ".." are left to the extractor (it refuses them).
Result<std::set<std::string>> entry_parents(int tar_fd) {
  auto r = SANDRUN_TRY(open_tar_reader(tar_fd));
  std::set<std::string> parents;
  struct archive_entry* e = nullptr;
  int rc;
  while ((rc = arc().archive_read_next_header(r.get(), &e)) == ARCHIVE_OK || rc == ARCHIVE_WARN) {
    const char* raw = arc().archive_entry_pathname(e);
    if (!raw) continue;
    std::vector<std::string> comps;
    bool dotdot = false;
    for (auto c : fs::path_components(raw)) {
      if (c == "..") dotdot = true;
      if (c != "." && !c.empty()) comps.emplace_back(c);
    }
    if (dotdot || comps.size() < 2) continue;
    std::string p;
    for (size_t i = 0; i + 1 < comps.size(); ++i) parents.insert(p += (p.empty() ? "" : "/") + comps[i]);
  }
  if (rc != ARCHIVE_EOF) return Error::msg("read the archive: {}", archive_text(r.get()));
  return parents;
}

Result<void> extract_into_layer(const LayerTarget& t, std::string_view dir, int tar_fd, const ExtractInto& opts) {
  SANDRUN_TRY(cache::load_archive_lib());
  auto at = SANDRUN_TRY(fs::open_path(t.upper, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
  const std::string abs = clean(dir);  // the components point into it
  std::string so_far;
  for (auto c : fs::path_components(abs)) {
    so_far += so_far.empty() ? std::string(c) : "/" + std::string(c);
    at = SANDRUN_TRY(layer_dir(t, at.get(), std::string(c), so_far));
  }
  // The directories the entries lie in are made first as the image has them (owner, mode), or
  // as the container's root's when the image has none: made by the extractor they would be
  // host root's, a directory the container's root can not even look into through its overlay.
  for (const std::string& parent : SANDRUN_TRY(entry_parents(tar_fd))) {
    UniqueFd cur = SANDRUN_TRY(fs::open_beneath(at.get(), ".", O_RDONLY | O_DIRECTORY, RESOLVE_NO_SYMLINKS));
    std::string path = so_far;
    for (auto c : fs::path_components(parent)) {
      path += path.empty() ? std::string(c) : "/" + std::string(c);
      auto next = layer_dir(t, cur.get(), std::string(c), path);
      if (!next && next.error().code() == ENOENT) {  // not in the image: the container root's
        if (::mkdirat(cur.get(), std::string(c).c_str(), 0755) < 0 && errno != EEXIST)
          return Error::sys("create /{}", path);
        next = fs::open_beneath(cur.get(), std::string(c), O_RDONLY | O_DIRECTORY | O_NOFOLLOW, RESOLVE_NO_SYMLINKS);
        if (next && (::fchown(next->get(), t.ids.uid_base, t.ids.gid_base) < 0 || ::fchmod(next->get(), 0755) < 0))
          return Error::sys("set the owner and mode of /{}", path);
      }
      if (!next) return next.error();
      cur = std::move(*next);
    }
  }
  if (::lseek(tar_fd, 0, SEEK_SET) < 0) return Error::sys("rewind the archive");
  return extract_tar(t.ids, at.get(), tar_fd, opts, false);
}

Result<void> extract_into_container(const ContainerFiles& c, std::string_view dir, int tar_fd, const ExtractInto& opts) {
  SANDRUN_TRY(cache::load_archive_lib());
  const std::string abs = clean(dir);
  // Followed to the end (a symlink to a directory is the directory), inside the root.
  auto target = SANDRUN_TRY(fs::open_beneath(c.root.get(), abs, O_RDONLY | O_DIRECTORY, RESOLVE_IN_ROOT));
  ActAsContainerRoot as_root(c);
  // Its other mounts (its /tmp, volumes) are its files too: crossed, beneath its root.
  return extract_tar(c, target.get(), tar_fd, opts, true);
}

}  // namespace sandrun::runner
