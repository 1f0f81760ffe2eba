// Artifact collection: patterns matched beneath a container's root, copied out safely.
#include "runner/engine/artifacts.h"

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <linux/magic.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <set>

#include "cache/archive_lib.h"
#include "sandbox/sys/fs.h"
#include "sandbox/sys/syscalls.h"

namespace sandrun::runner {
namespace {

std::string child_path(const std::string& rel, std::string_view name) {
  return rel.empty() ? std::string(name) : rel + "/" + std::string(name);
}

// An entry of the container: opened O_PATH without following a trailing symlink, never
// leaving `dir_fd` (a single component, so that is about symlinks and magic links).
Result<UniqueFd> open_entry(int dir_fd, const std::string& name) {
  return fs::open_beneath(dir_fd, name, O_PATH | O_NOFOLLOW, RESOLVE_NO_SYMLINKS);
}

// The names in a directory (given as an O_PATH fd), sorted so that collection is reproducible.
Result<std::vector<std::string>> list_dir(int dir_fd) {
  int fd = ::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Error::sys("list directory {}", fs::fd_path(dir_fd));
  DIR* d = ::fdopendir(fd);
  if (!d) {
    Error e = Error::sys("list directory {}", fs::fd_path(fd));
    ::close(fd);
    return e;
  }
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

const char* kind_of(mode_t mode) {
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  return "not a regular file";
}

// Kernel file systems whose files are views of live kernel state, not job output: reading
// them as host root (through the container's mounts) is never what a pattern is for.
bool pseudo_fs(int fd) {
  struct statfs sf;
  if (::fstatfs(fd, &sf) < 0) return false;
  switch (static_cast<unsigned long>(sf.f_type)) {
    case PROC_SUPER_MAGIC: case SYSFS_MAGIC: case CGROUP_SUPER_MAGIC: case CGROUP2_SUPER_MAGIC:
    case DEBUGFS_MAGIC: case SECURITYFS_MAGIC: case TRACEFS_MAGIC: case BPF_FS_MAGIC:
      return true;
    default:
      return false;
  }
}

// Where collected entries go: a directory tree or a .tar.zst.
class Sink {
 public:
  virtual ~Sink() = default;
  virtual Result<void> dir(const std::string& rel, const struct stat& st) = 0;
  virtual Result<void> symlink(const std::string& rel, const std::string& target, const struct stat& st) = 0;
  // Copies `size` bytes of `src`; a failure leaves nothing of the entry behind.
  virtual Result<void> file(const std::string& rel, int src, const struct stat& st) = 0;
  virtual Result<void> finish() = 0;
  // A failed entry ends the collection (an archive cannot skip a half-written entry) rather
  // than being skipped with a warning (a directory tree can).
  virtual bool failure_is_fatal() const = 0;
};

// A fresh directory `name` in `parent_fd`; everything is created beneath it with no symlink
// followed (O_EXCL, RESOLVE_NO_SYMLINKS), so nothing can be written outside it.
class DirSink : public Sink {
 public:
  DirSink(int parent_fd, std::string name) : parent_fd_(parent_fd), name_(std::move(name)) {}

  Result<void> dir(const std::string& rel, const struct stat&) override {
    SANDRUN_TRY(root());
    if (!rel.empty()) SANDRUN_TRY(fs::mkdirs_beneath(dest_.get(), rel));
    return {};
  }
  Result<void> symlink(const std::string& rel, const std::string& target, const struct stat&) override {
    auto [parent, base] = SANDRUN_TRY(parent_of(rel));
    if (::symlinkat(target.c_str(), parent.get(), base.c_str()) < 0) return Error::sys("create symlink {}", shorten_path(rel));
    return {};
  }
  Result<void> file(const std::string& rel, int src, const struct stat& st) override {
    auto [parent, base] = SANDRUN_TRY(parent_of(rel));
    auto out = SANDRUN_TRY(fs::open_beneath(parent.get(), base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW,
                                            RESOLVE_NO_SYMLINKS, 0600));
    auto copied = copy(src, out.get(), static_cast<uint64_t>(st.st_size));
    if (copied) {
      ::fchmod(out.get(), st.st_mode & 0777);  // never setuid/setgid on the host
      const struct timespec times[2] = {st.st_atim, st.st_mtim};
      ::futimens(out.get(), times);
      return {};
    }
    ::unlinkat(parent.get(), base.c_str(), 0);  // no partial file
    return std::move(copied.error().wrap(shorten_path(rel)));
  }
  Result<void> finish() override { return {}; }
  bool failure_is_fatal() const override { return false; }

 private:
  Result<void> root() {
    if (dest_) return {};
    if (::mkdirat(parent_fd_, name_.c_str(), 0755) < 0) return Error::sys("create {}", name_);
    dest_ = SANDRUN_TRY(fs::open_beneath(parent_fd_, name_, O_PATH | O_DIRECTORY | O_NOFOLLOW, RESOLVE_NO_SYMLINKS));
    return {};
  }
  Result<std::pair<UniqueFd, std::string>> parent_of(const std::string& rel) {
    SANDRUN_TRY(root());
    size_t slash = rel.rfind('/');
    if (slash == std::string::npos) {
      int fd = ::fcntl(dest_.get(), F_DUPFD_CLOEXEC, 3);
      if (fd < 0) return Error::sys("duplicate the fd of directory {}", fs::fd_path(dest_.get()));
      return std::pair{UniqueFd(fd), rel};
    }
    auto parent = SANDRUN_TRY(fs::mkdirs_beneath(dest_.get(), rel.substr(0, slash)));
    return std::pair{std::move(parent), rel.substr(slash + 1)};
  }
  // sendfile first (no copy through user space); read/write where it is refused.
  static Result<void> copy(int src, int dst, uint64_t size) {
    uint64_t done = 0;
    while (done < size) {
      ssize_t n = ::sendfile(dst, src, nullptr, std::min<uint64_t>(size - done, 1u << 30));
      if (n < 0 && (errno == EINVAL || errno == ENOSYS) && done == 0) return copy_rw(src, dst, size);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Error::sys("copy {} to {}", fs::fd_path(src), fs::fd_path(dst));
      if (n == 0) break;  // the file shrank meanwhile
      done += static_cast<uint64_t>(n);
    }
    return {};
  }
  static Result<void> copy_rw(int src, int dst, uint64_t size) {
    std::unique_ptr<char[]> buf(new char[1 << 20]);
    uint64_t done = 0;
    while (done < size) {
      ssize_t n = ::read(src, buf.get(), std::min<uint64_t>(size - done, 1 << 20));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Error::sys("read {}", fs::fd_path(src));
      if (n == 0) break;
      SANDRUN_TRY(fs::write_all(dst, std::string_view(buf.get(), static_cast<size_t>(n))));
      done += static_cast<uint64_t>(n);
    }
    return {};
  }

  int parent_fd_;
  std::string name_;
  UniqueFd dest_;
};

// One pax tar compressed with zstd (libarchive), created on the first entry.
class ArchiveSink : public Sink {
 public:
  ArchiveSink(int parent_fd, std::string name) : parent_fd_(parent_fd), name_(std::move(name)) {}
  ~ArchiveSink() override {
    if (a_) cache::arc().archive_write_free(a_);
    if (!finished_ && fd_) ::unlinkat(parent_fd_, name_.c_str(), 0);  // no half-written archive
  }

  Result<void> dir(const std::string& rel, const struct stat& st) override {
    if (rel.empty()) return {};
    return header(rel, AE_IFDIR, st, 0, nullptr);
  }
  Result<void> symlink(const std::string& rel, const std::string& target, const struct stat& st) override {
    return header(rel, AE_IFLNK, st, 0, target.c_str());
  }
  Result<void> file(const std::string& rel, int src, const struct stat& st) override {
    const auto size = static_cast<uint64_t>(st.st_size);
    SANDRUN_TRY(header(rel, AE_IFREG, st, size, nullptr));
    // The header promised `size` bytes: a file that shrank meanwhile is padded with zeros by
    // libarchive, one that grew is cut at `size`.
    std::unique_ptr<char[]> buf(new char[1 << 20]);
    uint64_t done = 0;
    while (done < size) {
      ssize_t n = ::read(src, buf.get(), std::min<uint64_t>(size - done, 1 << 20));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Error::sys("read {}", shorten_path(rel));
      if (n == 0) break;
      if (cache::arc().archive_write_data(a_, buf.get(), static_cast<size_t>(n)) < 0)
        return Error::msg("write {} into the archive: {}", shorten_path(rel), cache::archive_text(a_));
      done += static_cast<uint64_t>(n);
    }
    return {};
  }
  Result<void> finish() override {
    if (!a_) return {};
    if (cache::arc().archive_write_close(a_) < 0) return Error::msg("finish the archive: {}", cache::archive_text(a_));
    finished_ = true;
    return {};
  }
  bool failure_is_fatal() const override { return true; }

 private:
  Result<void> open() {
    if (a_) return {};
    SANDRUN_TRY(cache::load_archive_lib());
    fd_ = SANDRUN_TRY(fs::open_beneath(parent_fd_, name_, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW,
                                       RESOLVE_NO_SYMLINKS, 0644));
    const auto& L = cache::arc();
    a_ = L.archive_write_new();
    if (!a_ || L.archive_write_add_filter_zstd(a_) < 0 || L.archive_write_set_format_pax_restricted(a_) < 0 ||
        L.archive_write_open_fd(a_, fd_.get()) < 0)
      return Error::msg("create {}: {}", name_, a_ ? cache::archive_text(a_) : "out of memory");
    return {};
  }
  Result<void> header(const std::string& rel, unsigned type, const struct stat& st, uint64_t size, const char* link) {
    SANDRUN_TRY(open());
    const auto& L = cache::arc();
    archive_entry* e = L.archive_entry_new();
    L.archive_entry_set_pathname(e, rel.c_str());
    L.archive_entry_set_filetype(e, type);
    L.archive_entry_set_perm(e, st.st_mode & 0777);
    L.archive_entry_set_size(e, static_cast<la_int64_t>(size));
    L.archive_entry_set_mtime(e, st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    if (link) L.archive_entry_set_symlink(e, link);
    int rc = L.archive_write_header(a_, e);
    L.archive_entry_free(e);
    if (rc < ARCHIVE_WARN) return Error::msg("add {} to the archive: {}", shorten_path(rel), cache::archive_text(a_));
    return {};
  }

  int parent_fd_;
  std::string name_;
  UniqueFd fd_;
  struct archive* a_ = nullptr;
  bool finished_ = false;
};

// Walks the patterns beneath the container's root and feeds what they match to a sink.
class Collector {
 public:
  Collector(int root_fd, const config::Artifacts& spec, Sink& sink, const std::atomic<bool>* cancel,
            ArtifactReport& report)
      : root_fd_(root_fd), spec_(spec), sink_(sink), cancel_(cancel), report_(report) {}

  void pattern(const std::string& pattern, const std::string& workdir) {
    const bool absolute = !pattern.empty() && pattern[0] == '/';
    std::vector<std::string> comps;
    for (auto c : fs::path_components(pattern)) {
      if (c == "..") {
        report_.warnings.push_back(fmt::format("artifact pattern {:?}: '..' is not allowed", pattern));
        return;
      }
      if (c == "**" && !comps.empty() && comps.back() == "**") continue;  // a/**/**/b == a/**/b
      comps.emplace_back(c);
    }
    // The start directory is resolved inside the container's root (its symlinks, if any,
    // stay in there); from there on no symlink is followed.
    auto start = fs::open_beneath(root_fd_, absolute ? "/" : workdir, O_PATH | O_DIRECTORY, RESOLVE_IN_ROOT);
    matched_ = false;
    if (start) {
      struct stat st;
      if (::fstat(start->get(), &st) == 0) walk(start->get(), st, "", 0, comps, 0);
    }
    if (!matched_ && !stopped_) report_.warnings.push_back(fmt::format("artifact pattern {:?} matches nothing", pattern));
  }

  bool stopped() const { return stopped_; }
  std::optional<Error> error;  // a failure of the destination, which ends the collection

 private:
  // A tree deeper than kMaxArtifactDepth levels or PATH_MAX bytes (bind mounts can nest a
  // directory in itself; a job can make a 5,000-deep one) is cut there: the walk recurses once
  // per level, so that bounds its stack (2,000 levels overflowed it) and its open fds.
  bool too_deep(const std::string& rel, size_t depth) {
    if (rel.size() < PATH_MAX && depth <= kMaxArtifactDepth) return false;
    if (!deep_warned_)
      report_.warnings.push_back(fmt::format("skipped what lies deeper than {} levels or {} bytes, from {}",
                                             kMaxArtifactDepth, PATH_MAX, shorten_path(rel)));
    deep_warned_ = true;
    return true;
  }

  bool halted() {
    if (!stopped_ && cancel_ && cancel_->load()) stopped_ = true;
    return stopped_;
  }

  // `depth`: the levels of `rel`, for too_deep.
  void walk(int fd, const struct stat& st, const std::string& rel, size_t depth, const std::vector<std::string>& comps,
            size_t i) {
    if (halted()) return;
    if (i == comps.size()) return take(fd, st, rel, depth);
    // Searching goes neither into /proc, /sys and the like (huge, and never job output)
    // nor deeper than a path can be.
    if (!S_ISDIR(st.st_mode) || pseudo_fs(fd) || too_deep(rel, depth)) return;
    const std::string& c = comps[i];
    if (c == "**") {
      if (i + 1 == comps.size()) return take(fd, st, rel, depth);  // the whole tree
      walk(fd, st, rel, depth, comps, i + 1);                        // ** as no component
      for_children(fd, [&](int child, const struct stat& cst, const std::string& name) {
        if (S_ISDIR(cst.st_mode)) walk(child, cst, child_path(rel, name), depth + 1, comps, i);
      });
      return;
    }
    if (!is_glob(c)) {
      auto child = open_entry(fd, c);
      struct stat cst;
      if (child && ::fstat(child->get(), &cst) == 0)
        walk(child->get(), cst, child_path(rel, c), depth + 1, comps, i + 1);
      return;
    }
    for_children(fd, [&](int child, const struct stat& cst, const std::string& name) {
      if (::fnmatch(c.c_str(), name.c_str(), 0) == 0) walk(child, cst, child_path(rel, name), depth + 1, comps, i + 1);
    });
  }

  // False when the directory cannot be listed.
  template <typename F>
  bool for_children(int fd, F&& f) {
    auto names = list_dir(fd);
    if (!names) return false;
    for (const auto& name : *names) {
      if (halted()) break;
      auto child = open_entry(fd, name);
      struct stat cst;
      if (child && ::fstat(child->get(), &cst) == 0) f(child->get(), cst, name);
    }
    return true;
  }

  // One matched entry (a directory with everything below it).
  void take(int fd, const struct stat& st, const std::string& rel, size_t depth) {
    if (halted()) return;
    matched_ = true;
    if (too_deep(rel, depth) || !seen_.insert(rel).second) return;
    const std::string shown = rel.empty() ? "." : shorten_path(rel);
    if (!S_ISLNK(st.st_mode) && pseudo_fs(fd)) {
      report_.warnings.push_back(fmt::format("skipped {}: a kernel file system (/proc, /sys, ...)", shown));
      return;
    }
    const bool kept = S_ISDIR(st.st_mode) || S_ISLNK(st.st_mode) || S_ISREG(st.st_mode);
    if (kept && !rel.empty() && !count_entry(rel)) return;
    if (S_ISDIR(st.st_mode)) {
      if (!sink(sink_.dir(rel, st))) return;
      const bool listed = for_children(fd, [&](int child, const struct stat& cst, const std::string& name) {
        take(child, cst, child_path(rel, name), depth + 1);
      });
      if (!listed) report_.warnings.push_back(fmt::format("skipped the contents of {}: cannot list it", shown));
    } else if (S_ISLNK(st.st_mode)) {
      // On the heap: this frame is on the stack once per level of the tree.
      std::string target(4096, '\0');
      ssize_t n = ::readlinkat(fd, "", target.data(), target.size());
      if (n < 0 || static_cast<size_t>(n) == target.size()) {
        report_.warnings.push_back(fmt::format("skipped {}: cannot read the symlink", shown));
        return;
      }
      target.resize(static_cast<size_t>(n));
      if (sink(sink_.symlink(rel, target, st))) report_.files.push_back(rel);
    } else if (S_ISREG(st.st_mode)) {
      copy_file(fd, st, rel);
    } else {
      report_.warnings.push_back(fmt::format("skipped {}: {} is not collected", shown, kind_of(st.st_mode)));
    }
  }

  // Counts one more entry against artifacts_max_files; false (and the collection stops) past it.
  bool count_entry(const std::string& rel) {
    if (entries_ < spec_.max_files) {
      ++entries_;
      return true;
    }
    truncate(fmt::format("artifacts_max_files ({}) reached", spec_.max_files), rel);
    return false;
  }

  void truncate(std::string why, const std::string& rel) {
    report_.warnings.push_back(fmt::format("truncated: {}: stopped at {}", why, shorten_path(rel)));
    report_.truncated = std::move(why);
    stopped_ = true;
  }

  void copy_file(int fd, const struct stat& st, const std::string& rel) {
    const auto size = static_cast<uint64_t>(st.st_size);
    if (report_.bytes + size > spec_.max_size) {
      truncate(fmt::format("artifacts_max_size ({}) reached", config::format_size(spec_.max_size)), rel);
      return;
    }
    // Reopened for reading through our own /proc: the very inode checked above (no rename
    // race), and O_NONBLOCK so that nothing can make the open wait.
    const std::string self = fmt::format("/proc/self/fd/{}", fd);
    UniqueFd in(::open(self.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
    struct stat now;
    if (!in || ::fstat(in.get(), &now) < 0 || !S_ISREG(now.st_mode) || now.st_ino != st.st_ino || now.st_dev != st.st_dev) {
      report_.warnings.push_back(fmt::format("skipped {}: cannot open it for reading", shorten_path(rel)));
      return;
    }
    auto r = sink_.file(rel, in.get(), st);
    if (!r) {
      if (sink_.failure_is_fatal()) {
        sink(std::move(r));
      } else {
        report_.warnings.push_back("skipped " + r.error().message());  // "skipped a/b: sendfile: ..."
      }
      return;
    }
    report_.files.push_back(rel);
    report_.bytes += size;
  }

  // A destination failure: in a directory tree, skip that entry; the archive ends.
  bool sink(Result<void> r) {
    if (r) return true;
    if (sink_.failure_is_fatal()) {
      error = std::move(r).error();
      stopped_ = true;
    } else {
      report_.warnings.push_back(r.error().message());
    }
    return false;
  }

  int root_fd_;
  const config::Artifacts& spec_;
  Sink& sink_;
  const std::atomic<bool>* cancel_;
  ArtifactReport& report_;
  std::set<std::string> seen_;
  uint64_t entries_ = 0;  // collected, directories included
  bool matched_ = false;
  bool stopped_ = false;
  bool deep_warned_ = false;
};

bool match_components(const std::vector<std::string_view>& p, size_t i, const std::vector<std::string_view>& s,
                      size_t j) {
  if (i == p.size()) return j == s.size();
  if (p[i] == "**") {
    for (size_t k = j; k <= s.size(); ++k) {
      if (match_components(p, i + 1, s, k)) return true;
    }
    return false;
  }
  if (j == s.size()) return false;
  if (::fnmatch(std::string(p[i]).c_str(), std::string(s[j]).c_str(), 0) != 0) return false;
  return match_components(p, i + 1, s, j + 1);
}

}  // namespace

std::string shorten_path(std::string_view path, size_t max) {
  if (path.size() <= max) return std::string(path);
  const size_t keep = max / 2;
  return fmt::format("{}...{} ({} bytes)", path.substr(0, keep), path.substr(path.size() - keep), path.size());
}

bool is_glob(std::string_view c) { return c.find_first_of("*?[") != std::string_view::npos; }

bool glob_match(std::string_view pattern, std::string_view path) {
  return match_components(fs::path_components(pattern), 0, fs::path_components(path), 0);
}

Result<ArtifactReport> collect_artifacts(int root_fd, const std::string& workdir, const config::Artifacts& spec,
                                         const std::string& dest, const std::atomic<bool>* cancel) {
  ArtifactReport report;
  const size_t slash = dest.rfind('/');
  const std::string parent = slash == std::string::npos || slash == 0 ? (slash == 0 ? "/" : ".") : dest.substr(0, slash);
  const std::string name = dest.substr(slash == std::string::npos ? 0 : slash + 1);
  const std::string archive_name = name + ".tar.zst";
  SANDRUN_TRY(fs::mkdirs(parent));
  auto parent_fd = SANDRUN_TRY(fs::open_path(parent, O_PATH | O_DIRECTORY));
  // What an earlier run left (in either form) goes first: only this run's files remain.
  SANDRUN_TRY(fs::remove_tree(parent_fd.get(), name));
  SANDRUN_TRY(fs::remove_tree(parent_fd.get(), archive_name));

  std::unique_ptr<Sink> sink;
  if (spec.archive) {
    sink = std::make_unique<ArchiveSink>(parent_fd.get(), archive_name);
  } else {
    sink = std::make_unique<DirSink>(parent_fd.get(), name);
  }
  Collector collector(root_fd, spec, *sink, cancel, report);
  for (const auto& p : spec.patterns) {
    if (collector.stopped()) break;
    collector.pattern(p, workdir);
  }
  if (collector.error) return std::move(*collector.error).wrap("collect artifacts");
  SANDRUN_TRY(sink->finish().wrap("collect artifacts"));
  if (spec.archive && !report.files.empty()) report.archive = fs::join(parent, archive_name);
  return report;
}

}  // namespace sandrun::runner
