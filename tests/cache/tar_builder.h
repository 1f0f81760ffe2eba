// A tiny DSL to craft layer tarballs in tests (after containerd's pkg/archive/tartest).
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

struct archive;

namespace sandrun::testing {

enum class Compression { none, gzip, zstd, xz };

// Entries are written in the order they are added; owner/mtime/xattr modify the last one.
class TarBuilder {
 public:
  TarBuilder& file(std::string name, std::string data, mode_t mode = 0644);
  TarBuilder& dir(std::string name, mode_t mode = 0755);
  TarBuilder& symlink(std::string name, std::string target);
  TarBuilder& hardlink(std::string name, std::string target);
  TarBuilder& fifo(std::string name, mode_t mode = 0644);
  TarBuilder& chardev(std::string name, unsigned major, unsigned minor);
  TarBuilder& blockdev(std::string name, unsigned major, unsigned minor);

  TarBuilder& owner(uid_t uid, gid_t gid);
  TarBuilder& mtime(time_t seconds);
  TarBuilder& xattr(std::string name, std::string value);

  // The tar (pax) bytes, optionally compressed.
  std::string build(Compression c = Compression::none) const;

 private:
  struct Entry {
    mode_t type = 0;
    std::string name;
    std::string data;
    std::string link;  // symlink or hardlink target
    bool hard = false;
    mode_t mode = 0644;
    uid_t uid = 0;
    gid_t gid = 0;
    time_t mtime = 1700000000;
    unsigned major = 0, minor = 0;
    std::vector<std::pair<std::string, std::string>> xattrs;
  };
  TarBuilder& add(Entry e);
  std::vector<Entry> entries_;
};

// Compresses `data` as one stream (libarchive's raw format with a filter).
std::string compress(const std::string& data, Compression c);

struct ArchiveReadFree {
  void operator()(struct archive* a) const;
};
using ArchiveReader = std::unique_ptr<struct archive, ArchiveReadFree>;

// A libarchive tar reader over `data` (kept alive by the caller), ready for extract_layer.
ArchiveReader open_tar_reader(const std::string& data);

}  // namespace sandrun::testing
