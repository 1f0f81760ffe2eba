// `image verify`: every blob against its digest, every unpacked layer against a fresh extraction
// of its blob. A layer on disk has no digest of its own (its diff id names the tar it came
// from), so the only check that covers every byte, mode and owner is to extract it again and
// compare the two trees. A corrupted layer is removed so that no container starts from it.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "cache/digest.h"
#include "cache/entry_path.h"
#include "cache/image_import.h"
#include "cache/index.h"
#include "cache/layout.h"
#include "cache/seal.h"
#include "cache/store.h"
#include "cache/unpack.h"
#include "sandbox/sys/fs.h"

namespace sandrun::cache {

namespace {

std::vector<std::string> sorted_entries(int dir_fd) {
  std::vector<std::string> out;
  int dup = ::fcntl(dir_fd, F_DUPFD_CLOEXEC, 3);
  DIR* d = dup < 0 ? nullptr : ::fdopendir(dup);
  if (!d) {
    if (dup >= 0) ::close(dup);
    return out;
  }
  while (struct dirent* e = ::readdir(d)) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) out.emplace_back(e->d_name);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

bool same_contents(int a, int b) {
  char x[65536], y[65536];
  for (;;) {
    ssize_t n = ::read(a, x, sizeof x);
    ssize_t m = n > 0 ? ::read(b, y, static_cast<size_t>(n)) : ::read(b, y, 1);
    if (n < 0 || m < 0 || n != m) return false;
    if (n == 0) return true;
    if (std::memcmp(x, y, static_cast<size_t>(n)) != 0) return false;
  }
}

// "user.overlay.opaque=y\0..." of an open file, sorted, for comparison.
std::string xattrs_of(int fd) {
  char names[8192];
  ssize_t n = ::flistxattr(fd, names, sizeof names);
  if (n <= 0) return "";
  std::vector<std::string> list;
  for (ssize_t off = 0; off < n; off += static_cast<ssize_t>(std::strlen(names + off)) + 1) {
    char value[4096];
    ssize_t v = ::fgetxattr(fd, names + off, value, sizeof value);
    list.push_back(std::string(names + off) + "=" + (v > 0 ? std::string(value, static_cast<size_t>(v)) : ""));
  }
  std::sort(list.begin(), list.end());
  std::string out;
  for (const auto& s : list) out += s + '\n';
  return out;
}

// What differs between the entries `n` of the directories `a` and `b` (both stat()ed):
// true when they differ.
bool entries_differ(int a, int b, const std::string& n, const struct stat& sa, const struct stat& sb) {
  // A directory's size depends on the file system's history; a directory the tar only
  // implies and a whiteout (a device made for a marker) get the time they were made.
  const bool timed = !S_ISDIR(sa.st_mode) && !S_ISCHR(sa.st_mode);
  if (sa.st_mode != sb.st_mode || sa.st_uid != sb.st_uid || sa.st_gid != sb.st_gid || sa.st_rdev != sb.st_rdev ||
      (!S_ISDIR(sa.st_mode) && sa.st_size != sb.st_size) ||
      (timed && (sa.st_mtim.tv_sec != sb.st_mtim.tv_sec || sa.st_mtim.tv_nsec != sb.st_mtim.tv_nsec)))
    return true;
  if (S_ISLNK(sa.st_mode)) {
    char ta[4096], tb[4096];
    ssize_t la = ::readlinkat(a, n.c_str(), ta, sizeof ta), lb = ::readlinkat(b, n.c_str(), tb, sizeof tb);
    return la < 0 || la != lb || std::memcmp(ta, tb, static_cast<size_t>(la)) != 0;
  }
  if (!S_ISREG(sa.st_mode)) return false;  // fifos, whiteouts: stat says all; directories: below
  const int flags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC;
  UniqueFd fa(::openat(a, n.c_str(), flags)), fb(::openat(b, n.c_str(), flags));
  return !fa || !fb || xattrs_of(fa.get()) != xattrs_of(fb.get()) || !same_contents(fa.get(), fb.get());
}

// One directory of the walk: its sorted names and the next one to compare.
struct Level {
  std::vector<std::string> names;
  size_t next = 0;
};

// The first path under which the trees `a` and `b` differ, or "" when they are the same:
// names, types, modes, owners, sizes, device numbers, file times, symlink targets, contents,
// xattrs. Iterative, holding two descriptors whatever the depth: a child is entered with
// openat(), left with openat(".."); the store's layers do not move while the shared cache
// lock is held.
std::string first_difference(int root_a, int root_b) {
  UniqueFd a(::fcntl(root_a, F_DUPFD_CLOEXEC, 3)), b(::fcntl(root_b, F_DUPFD_CLOEXEC, 3));
  if (!a || !b) return "/";
  std::vector<Level> stack;
  std::vector<std::string> path;  // components of the directory at the top of the stack
  auto here = [&](const std::string& n) {
    std::string p;
    for (const auto& c : path) p += "/" + c;
    return p + "/" + n;
  };
  auto enter = [&]() -> bool {
    auto names = sorted_entries(a.get());
    if (names != sorted_entries(b.get())) return false;
    stack.push_back(Level{std::move(names), 0});
    return true;
  };
  if (!enter()) return "/";
  while (!stack.empty()) {
    Level& top = stack.back();
    if (top.next == top.names.size()) {
      stack.pop_back();
      if (stack.empty()) break;
      path.pop_back();
      a = UniqueFd(::openat(a.get(), "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      b = UniqueFd(::openat(b.get(), "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (!a || !b) return here("..");
      continue;
    }
    const std::string n = top.names[top.next++];
    struct stat sa, sb;
    if (::fstatat(a.get(), n.c_str(), &sa, AT_SYMLINK_NOFOLLOW) < 0 ||
        ::fstatat(b.get(), n.c_str(), &sb, AT_SYMLINK_NOFOLLOW) < 0 || entries_differ(a.get(), b.get(), n, sa, sb))
      return here(n);
    if (!S_ISDIR(sa.st_mode)) continue;
    const int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    UniqueFd ca(::openat(a.get(), n.c_str(), flags)), cb(::openat(b.get(), n.c_str(), flags));
    if (!ca || !cb || xattrs_of(ca.get()) != xattrs_of(cb.get())) return here(n);
    a = std::move(ca);
    b = std::move(cb);
    const std::string shown = here(n);
    path.push_back(n);
    if (!enter()) return shown;
  }
  return "";
}

Result<std::string> blob_digest_of(const std::string& path, uint64_t* size = nullptr) {
  UniqueFd fd = SANDRUN_TRY(fs::open_path(path, O_RDONLY | O_NOFOLLOW));
  Sha256 sha;
  char buf[1 << 16];
  uint64_t total = 0;
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) return Error::sys("read {}", path);
    if (n == 0) break;
    sha.update(buf, static_cast<size_t>(n));
    total += static_cast<uint64_t>(n);
  }
  if (size) *size = total;
  return sha.finish();
}

// Checks one layer: its blob's digest, then a fresh extraction of the blob against the layer.
// Returns what is wrong, "" when nothing is.
Result<std::string> check_layer(const Layout& layout, const LayerRef& l, const ImageLimits& limits) {
  const std::string blob = layout.blob_path(l.blob_digest);
  if (!fs::exists(blob)) return "blob " + l.blob_digest + " is missing";
  uint64_t size = 0;
  if (std::string got = SANDRUN_TRY(blob_digest_of(blob, &size)); got != l.blob_digest)
    return "blob " + l.blob_digest + " is corrupted (its content is " + got + ")";
  // The record's size is what `save` writes in descriptors: a lie there is a broken image.
  if (size != l.blob_size)
    return fmt::format("blob {}: the image record says {} bytes, the blob has {}", l.blob_digest, l.blob_size, size);
  const std::string layer = layout.layer_path(l.diff_id);
  UniqueFd stored(::open(layer.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!stored) return "layer " + l.diff_id + " is missing";
  TempEntry tmp = SANDRUN_TRY(TempEntry::create(layout, "verify"));
  if (::mkdirat(tmp.fd(), "layer", 0755) < 0) return Error::sys("create {}/{}/layer", layout.tmp, tmp.name());
  UniqueFd fresh(::openat(tmp.fd(), "layer", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  UniqueFd in = SANDRUN_TRY(fs::open_path(blob, O_RDONLY | O_NOFOLLOW));
  UniqueFd sink = SANDRUN_TRY(fs::open_path("/dev/null", O_WRONLY));
  ImageBudget budget;  // this layer alone: verify checks the layers one by one
  auto unpacked = unpack_layer(in.get(), sink.get(), fresh.get(), capped_extract_options(limits, &budget));
  if (!unpacked) return "blob " + l.blob_digest + " no longer unpacks: " + unpacked.error().message();
  if (unpacked->layer.diff_id != l.diff_id) return "blob " + l.blob_digest + " unpacks to " + unpacked->layer.diff_id;
  // The stored root was made 0755 before extraction like the fresh one: compared as any dir.
  struct stat sa, sb;
  if (::fstat(stored.get(), &sa) < 0 || ::fstat(fresh.get(), &sb) < 0 || sa.st_mode != sb.st_mode ||
      sa.st_uid != sb.st_uid || xattrs_of(stored.get()) != xattrs_of(fresh.get()))
    return "layer " + l.diff_id + ": its root differs from the blob's";
  if (std::string diff = first_difference(stored.get(), fresh.get()); !diff.empty())
    return "layer " + l.diff_id + ": " + cache::quoted(diff) + " differs from the blob's";
  return std::string();
}

}  // namespace

Result<VerifyReport> Store::verify(std::string_view ref) {
  Layout layout(root_);
  VerifyReport report;
  std::vector<ImageRecord> images;
  if (ref.empty()) {
    images = SANDRUN_TRY(list());
  } else {
    auto found = SANDRUN_TRY(find(ref));
    if (!found) return Error::msg("image {:?} not found", std::string(ref));
    images.push_back(std::move(*found));
  }
  // Shared lock while reading: no removal or import commit changes what is checked.
  std::set<std::string> done, corrupt;
  {
    UniqueFd lock = SANDRUN_TRY(lock_cache(layout, false));
    for (const auto& img : images) {
      ++report.images;
      for (const std::string* d : {&img.id, &img.manifest_digest}) {
        if (d->empty() || !done.insert(*d).second) continue;
        ++report.blobs;
        const std::string path = layout.blob_path(*d);
        auto got = fs::exists(path) ? blob_digest_of(path) : Result<std::string>(std::string("missing"));
        if (!got || *got != *d) report.problems.push_back(fmt::format("{}: blob {} is corrupted or missing", img.ref(), *d));
      }
      for (const auto& l : img.layers) {
        if (!done.insert(l.diff_id + l.blob_digest).second) continue;
        ++report.layers;
        ++report.blobs;
        std::string problem = SANDRUN_TRY(check_layer(layout, l, limits_));
        // Intact: sealed again, so that a layer refused for its seal (a restored cache, say)
        // runs again once verified.
        if (problem.empty()) {
          SANDRUN_TRY(reseal(layout, l.diff_id));
          continue;
        }
        report.problems.push_back(fmt::format("{}: {}", img.ref(), problem));
        corrupt.insert(l.diff_id);
      }
    }
  }
  if (corrupt.empty()) return report;
  // Out of the store, so that no container starts from them; the images say to import or pull
  // again (Store::lease). Their blobs go too: they are what was wrong, or cannot be trusted.
  Garbage garbage;
  {
    UniqueFd lock = SANDRUN_TRY(lock_cache(layout, true));
    for (const auto& diff_id : corrupt) SANDRUN_TRY(drop_layer(layout, diff_id, garbage));
    for (const auto& img : images)
      for (const auto& l : img.layers)
        if (corrupt.count(l.diff_id)) SANDRUN_TRY(drop_blob(layout, l.blob_digest));
  }
  report.layers_dropped = garbage.removed_layers;
  for (const auto& kept : garbage.kept_in_use)
    report.problems.push_back(fmt::format("layer {} is in use by a running sandrun; run verify again after it", kept));
  return report;
}

}  // namespace sandrun::cache
