// The built-in image `busybox`, made on first use from the host's busybox-static: no network.
#include "cache/builtin.h"
#include "cache/archive_lib.h"

#include <elf.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include "cache/entry_path.h"
#include "sandbox/sys/fs.h"
#include "sandbox/sys/lines.h"
#include "sandbox/sys/log.h"
#include "sandbox/sys/process.h"

namespace sandrun::cache {

namespace {

constexpr const char* kInstallHint = "install it with: apt-get install busybox-static";

Result<void> pread_exact(int fd, void* buf, size_t size, off_t offset, const std::string& path) {
  ssize_t n = ::pread(fd, buf, size, offset);
  if (n < 0) return Error::sys("read {}", path);
  if (static_cast<size_t>(n) != size) return Error::msg("{}: truncated ELF file", path);
  return {};
}

}  // namespace

Result<void> check_static_elf(int fd, const std::string& path) {
  Elf64_Ehdr eh;
  if (auto r = pread_exact(fd, &eh, sizeof eh, 0, path); !r)
    return Error::msg("{} is not an ELF executable", path);
  if (std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
      (eh.e_type != ET_EXEC && eh.e_type != ET_DYN) || eh.e_phentsize != sizeof(Elf64_Phdr))
    return Error::msg("{} is not a 64-bit ELF executable", path);
  for (unsigned i = 0; i < eh.e_phnum; ++i) {
    Elf64_Phdr ph;
    SANDRUN_TRY(pread_exact(fd, &ph, sizeof ph,
                            static_cast<off_t>(eh.e_phoff + i * sizeof(Elf64_Phdr)), path));
    if (ph.p_type == PT_INTERP)
      return Error::msg("{} is dynamically linked (the busybox package); the built-in image "
                        "needs a static one: apt-get install busybox-static", path);
  }
  return {};
}

Result<std::string> find_host_busybox(const std::vector<std::string>& candidates) {
  std::optional<Error> first_refusal;
  for (const std::string& path : candidates) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) continue;
    UniqueFd file(fd);
    struct stat st;
    if (::fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) continue;
    auto r = check_static_elf(fd, path);
    if (r) return path;
    if (!first_refusal) first_refusal = std::move(r).error();
  }
  if (first_refusal) return std::move(*first_refusal);
  std::string tried;
  for (const std::string& p : candidates) tried += (tried.empty() ? "" : " or ") + p;
  return Error::msg("no busybox found at {}; {}", tried, kInstallHint);
}

namespace {

// Runs `busybox --list-full`; returns what it printed on its stdout.
Result<std::string> run_list_full(const std::string& busybox) {
  sys::SpawnOptions o;
  o.path = busybox;
  o.args = {busybox, "--list-full"};
  o.env.emplace();  // none at all
  auto run = sys::run_captured(o, /*with_stderr=*/false);
  if (!run) return Error::sys_code(run.error().code(), "run {} --list-full", busybox);
  if (!WIFEXITED(run->status) || WEXITSTATUS(run->status) != 0)
    return Error::msg("{} --list-full failed (status {})", busybox, run->status);
  return std::move(run->output);
}

}  // namespace

Result<std::vector<std::string>> busybox_applets(const std::string& busybox) {
  std::string text = SANDRUN_TRY(run_list_full(busybox));
  std::set<std::string> paths;
  std::optional<Error> odd;
  sys::for_each_line(text, [&](std::string_view line) {
    if (line.empty()) return true;
    auto p = normalize_entry_name(line);
    if (!p || p->is_root()) {
      odd = Error::msg("{} --list-full printed an odd path {}", busybox, quoted(line));
      return false;
    }
    if (p->path != "bin/busybox") paths.insert(p->path);
    return true;
  });
  if (odd) return std::move(*odd);
  if (paths.empty()) return Error::msg("{} --list-full printed no applets", busybox);
  return std::vector<std::string>(paths.begin(), paths.end());
}

namespace {

struct WriterFree {
  void operator()(struct archive* a) const { arc().archive_write_free(a); }
};
struct EntryFree {
  void operator()(struct archive_entry* e) const { arc().archive_entry_free(e); }
};

// What goes into the tar, keyed (and so sorted) by path.
struct Item {
  mode_t type = AE_IFDIR;
  mode_t perm = 0755;
  std::string symlink;  // AE_IFLNK
  std::string content;  // AE_IFREG from memory
  std::string host_file;  // AE_IFREG streamed from the host
};

std::map<std::string, Item> rootfs_items(const std::string& busybox,
                                         const std::vector<std::string>& applets) {
  std::map<std::string, Item> items;
  auto dir = [&](const std::string& p, mode_t perm = 0755) {
    for (size_t s = p.find('/'); s != std::string::npos; s = p.find('/', s + 1))
      items.emplace(p.substr(0, s), Item{});  // parents, unless listed with their own mode
    items[p] = Item{AE_IFDIR, perm, {}, {}, {}};
  };
  for (const char* d : {"bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev",
                        "workspace", "home", "var"})
    dir(d);
  dir("root", 0700);
  dir("tmp", 01777);
  dir("var/tmp", 01777);
  auto file = [&](const std::string& p, std::string content) {
    items[p] = Item{AE_IFREG, 0644, {}, std::move(content), {}};
  };
  file("etc/passwd",
       "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n");
  file("etc/group", "root:x:0:\nnogroup:x:65534:\n");
  file("etc/hosts", "127.0.0.1\tlocalhost\n::1\tlocalhost\n");
  file("etc/nsswitch.conf", "passwd: files\ngroup: files\nhosts: files dns\n");
  items["bin/busybox"] = Item{AE_IFREG, 0755, {}, {}, busybox};
  for (const std::string& a : applets) {
    size_t slash = a.rfind('/');
    if (slash != std::string::npos && !items.count(a.substr(0, slash))) dir(a.substr(0, slash));
    items.emplace(a, Item{AE_IFLNK, 0777, "/bin/busybox", {}, {}});
  }
  return items;
}

Result<void> write_item(struct archive* w, const std::string& path, const Item& item) {
  std::unique_ptr<struct archive_entry, EntryFree> e(arc().archive_entry_new());
  arc().archive_entry_set_pathname(e.get(), path.c_str());
  arc().archive_entry_set_filetype(e.get(), item.type);
  arc().archive_entry_set_perm(e.get(), item.perm);
  arc().archive_entry_set_uid(e.get(), 0);
  arc().archive_entry_set_gid(e.get(), 0);
  arc().archive_entry_set_mtime(e.get(), 0, 0);
  UniqueFd host;
  if (item.type == AE_IFLNK) arc().archive_entry_set_symlink(e.get(), item.symlink.c_str());
  if (item.type == AE_IFREG) {
    int64_t size = static_cast<int64_t>(item.content.size());
    if (!item.host_file.empty()) {
      host = SANDRUN_TRY(fs::open_path(item.host_file, O_RDONLY | O_NOCTTY));
      struct stat st;
      if (::fstat(host.get(), &st) < 0) return Error::sys("stat {}", item.host_file);
      size = st.st_size;
    }
    arc().archive_entry_set_size(e.get(), size);
  }
  if (arc().archive_write_header(w, e.get()) != ARCHIVE_OK)
    return Error::msg("write {}: {}", path, arc().archive_error_string(w));
  if (!item.content.empty() &&
      arc().archive_write_data(w, item.content.data(), item.content.size()) < 0)
    return Error::msg("write {}: {}", path, arc().archive_error_string(w));
  if (host) {
    int64_t left = arc().archive_entry_size(e.get());
    char buf[65536];
    while (left > 0) {
      ssize_t n = ::read(host.get(), buf, static_cast<size_t>(std::min<int64_t>(left, sizeof buf)));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Error::sys("read {}", item.host_file);
      if (n == 0) return Error::msg("read {}: file shrank while being read", item.host_file);
      if (arc().archive_write_data(w, buf, static_cast<size_t>(n)) < 0)
        return Error::msg("write {}: {}", path, arc().archive_error_string(w));
      left -= n;
    }
  }
  return {};
}

}  // namespace

Result<void> write_busybox_rootfs(const std::string& busybox, int out_fd) {
  SANDRUN_TRY(load_archive_lib());
  std::vector<std::string> applets = SANDRUN_TRY(busybox_applets(busybox));
  std::unique_ptr<struct archive, WriterFree> w(arc().archive_write_new());
  if (!w) return Error::msg("out of memory");
  arc().archive_write_set_format_pax_restricted(w.get());
  if (arc().archive_write_open_fd(w.get(), out_fd) != ARCHIVE_OK)
    return Error::msg("write rootfs: {}", arc().archive_error_string(w.get()));
  for (const auto& [path, item] : rootfs_items(busybox, applets))
    SANDRUN_TRY(write_item(w.get(), path, item));
  if (arc().archive_write_close(w.get()) != ARCHIVE_OK)
    return Error::msg("write rootfs: {}", arc().archive_error_string(w.get()));
  return {};
}

Result<ImageRecord> create_builtin_busybox(Store& store) {
  auto make = [&]() -> Result<ImageRecord> {
    std::string busybox = SANDRUN_TRY(find_host_busybox(kHostBusyboxPaths));
    int fd = ::memfd_create("sandrun-busybox-rootfs", MFD_CLOEXEC);
    if (fd < 0) return Error::sys("create a memfd for the busybox rootfs");
    UniqueFd tar(fd);
    SANDRUN_TRY(write_busybox_rootfs(busybox, tar.get()));
    if (::lseek(tar.get(), 0, SEEK_SET) < 0) return Error::sys("seek {}", fs::fd_path(tar.get()));
    auto rec = store.import_rootfs_fd("busybox:latest", tar.get(),
                                      fmt::format("built-in image (from {})", busybox));
    if (rec) log::info("image cache: created the built-in image busybox:latest from {}", busybox);
    return rec;
  };
  auto r = make();
  if (!r) return std::move(r.error().wrap("create built-in image busybox"));
  return r;
}

}  // namespace sandrun::cache
