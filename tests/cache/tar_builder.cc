// A tiny DSL to craft layer tarballs in tests (after containerd's pkg/archive/tartest).
#include "tests/cache/tar_builder.h"

#include <archive.h>
#include <archive_entry.h>

#include <stdexcept>

namespace sandrun::testing {

namespace {

struct WriteFree {
  void operator()(struct archive* a) const { archive_write_free(a); }
};

la_ssize_t append(struct archive*, void* client, const void* buf, size_t size) {
  static_cast<std::string*>(client)->append(static_cast<const char*>(buf), size);
  return static_cast<la_ssize_t>(size);
}

void check(struct archive* a, int rc, const char* what) {
  if (rc < ARCHIVE_WARN)
    throw std::runtime_error(std::string(what) + ": " + (archive_error_string(a) ?: "?"));
}

void add_filter(struct archive* w, Compression c) {
  switch (c) {
    case Compression::none: break;
    case Compression::gzip:
      check(w, archive_write_add_filter_gzip(w), "gzip");
      // No time of day in the gzip header: the same layer built twice must be the same blob
      // (a test that shares a layer between two images built a second apart saw two digests).
      check(w, archive_write_set_filter_option(w, "gzip", "timestamp", nullptr), "gzip !timestamp");
      break;
    case Compression::zstd: check(w, archive_write_add_filter_zstd(w), "zstd"); break;
    case Compression::xz: check(w, archive_write_add_filter_xz(w), "xz"); break;
  }
}

}  // namespace

TarBuilder& TarBuilder::add(Entry e) {
  entries_.push_back(std::move(e));
  return *this;
}

TarBuilder& TarBuilder::file(std::string name, std::string data, mode_t mode) {
  return add(Entry{AE_IFREG, std::move(name), std::move(data), {}, false, mode});
}
TarBuilder& TarBuilder::dir(std::string name, mode_t mode) {
  return add(Entry{AE_IFDIR, std::move(name), {}, {}, false, mode});
}
TarBuilder& TarBuilder::symlink(std::string name, std::string target) {
  return add(Entry{AE_IFLNK, std::move(name), {}, std::move(target), false, 0777});
}
TarBuilder& TarBuilder::hardlink(std::string name, std::string target) {
  return add(Entry{AE_IFREG, std::move(name), {}, std::move(target), true, 0644});
}
TarBuilder& TarBuilder::fifo(std::string name, mode_t mode) {
  return add(Entry{AE_IFIFO, std::move(name), {}, {}, false, mode});
}
TarBuilder& TarBuilder::chardev(std::string name, unsigned major, unsigned minor) {
  Entry e{AE_IFCHR, std::move(name), {}, {}, false, 0666};
  e.major = major;
  e.minor = minor;
  return add(std::move(e));
}
TarBuilder& TarBuilder::blockdev(std::string name, unsigned major, unsigned minor) {
  Entry e{AE_IFBLK, std::move(name), {}, {}, false, 0660};
  e.major = major;
  e.minor = minor;
  return add(std::move(e));
}
TarBuilder& TarBuilder::owner(uid_t uid, gid_t gid) {
  entries_.back().uid = uid;
  entries_.back().gid = gid;
  return *this;
}
TarBuilder& TarBuilder::mtime(time_t seconds) {
  entries_.back().mtime = seconds;
  return *this;
}
TarBuilder& TarBuilder::xattr(std::string name, std::string value) {
  entries_.back().xattrs.emplace_back(std::move(name), std::move(value));
  return *this;
}

std::string TarBuilder::build(Compression c) const {
  std::string out;
  std::unique_ptr<struct archive, WriteFree> w(archive_write_new());
  check(w.get(), archive_write_set_format_pax_restricted(w.get()), "format");
  add_filter(w.get(), c);
  check(w.get(), archive_write_open(w.get(), &out, nullptr, append, nullptr), "open");
  for (const Entry& e : entries_) {
    archive_entry* ae = archive_entry_new();
    archive_entry_set_pathname(ae, e.name.c_str());
    archive_entry_set_filetype(ae, e.type);
    archive_entry_set_perm(ae, e.mode);
    archive_entry_set_uid(ae, e.uid);
    archive_entry_set_gid(ae, e.gid);
    archive_entry_set_mtime(ae, e.mtime, 0);
    if (e.hard) archive_entry_set_hardlink(ae, e.link.c_str());
    if (e.type == AE_IFLNK) archive_entry_set_symlink(ae, e.link.c_str());
    if (e.type == AE_IFCHR || e.type == AE_IFBLK) {
      archive_entry_set_rdevmajor(ae, e.major);
      archive_entry_set_rdevminor(ae, e.minor);
    }
    for (const auto& [k, v] : e.xattrs)
      archive_entry_xattr_add_entry(ae, k.c_str(), v.data(), v.size());
    archive_entry_set_size(ae, static_cast<la_int64_t>(e.data.size()));
    int rc = archive_write_header(w.get(), ae);
    archive_entry_free(ae);
    check(w.get(), rc, "header");
    if (!e.data.empty())
      check(w.get(), static_cast<int>(archive_write_data(w.get(), e.data.data(), e.data.size()) < 0
                                          ? ARCHIVE_FATAL : ARCHIVE_OK), "data");
  }
  check(w.get(), archive_write_close(w.get()), "close");
  return out;
}

std::string compress(const std::string& data, Compression c) {
  if (c == Compression::none) return data;
  std::string out;
  std::unique_ptr<struct archive, WriteFree> w(archive_write_new());
  check(w.get(), archive_write_set_format_raw(w.get()), "format");
  add_filter(w.get(), c);
  // No zero padding after the compressed stream: zstd (rightly) refuses trailing garbage.
  check(w.get(), archive_write_set_bytes_in_last_block(w.get(), 1), "block");
  check(w.get(), archive_write_open(w.get(), &out, nullptr, append, nullptr), "open");
  archive_entry* ae = archive_entry_new();
  archive_entry_set_pathname(ae, "data");
  archive_entry_set_filetype(ae, AE_IFREG);
  archive_entry_set_size(ae, static_cast<la_int64_t>(data.size()));
  int rc = archive_write_header(w.get(), ae);
  archive_entry_free(ae);
  check(w.get(), rc, "header");
  if (archive_write_data(w.get(), data.data(), data.size()) < 0)
    check(w.get(), ARCHIVE_FATAL, "data");
  check(w.get(), archive_write_close(w.get()), "close");
  return out;
}

void ArchiveReadFree::operator()(struct archive* a) const { archive_read_free(a); }

ArchiveReader open_tar_reader(const std::string& data) {
  ArchiveReader a(archive_read_new());
  archive_read_support_format_tar(a.get());
  check(a.get(), archive_read_open_memory(a.get(), data.data(), data.size()), "open");
  return a;
}

}  // namespace sandrun::testing
