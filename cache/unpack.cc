// One pass over a layer tarball: store its bytes as a blob, extract it, compute both digests.
#include "cache/unpack.h"
#include "cache/archive_lib.h"

#include <unistd.h>

#include <memory>
#include <vector>

#include "cache/blob_writer.h"
#include "cache/digest.h"
#include "sandbox/sys/fs.h"
#include "sandbox/sys/log.h"

namespace sandrun::cache {

namespace {

constexpr size_t kBufferSize = 128 * 1024;
// libarchive's private error codes (archive_platform.h): "misc", and a bad format (EILSEQ
// on Linux, which has no EFTYPE).
constexpr int kArchiveErrnoMisc = -1;
constexpr int kArchiveErrnoFileFormat = EILSEQ;

struct ArchiveFree {
  void operator()(struct archive* a) const { arc().archive_read_free(a); }
};
using ArchivePtr = std::unique_ptr<struct archive, ArchiveFree>;

// Reader A's client: the tarball exactly as given. Its bytes go to the blob writer's thread,
// which hashes them (the blob digest) and appends them to the blob while this thread extracts.
struct Source {
  const ReadFn* in = nullptr;
  BlobWriter* blob = nullptr;
  char* last = nullptr;  // the buffer libarchive read last
  uint64_t size = 0;     // bytes read so far
};

// Reads one buffer from the input and queues it for the blob. 0 at end, -1 error.
ssize_t source_pull(Source& s, Error* error) {
  char* buf = s.blob->acquire();
  s.last = buf;
  auto got = (*s.in)(buf, s.blob->buffer_size());
  if (!got) {
    *error = std::move(got).error();
    return -1;
  }
  const auto n = static_cast<ssize_t>(*got);
  if (n > 0) s.blob->submit(static_cast<size_t>(n));
  s.size += static_cast<uint64_t>(n);
  return n;
}

la_ssize_t source_read(struct archive* a, void* client, const void** out) {
  auto* s = static_cast<Source*>(client);
  Error error;
  ssize_t n = source_pull(*s, &error);
  if (n < 0) {
    int code = error.code() ? error.code() : kArchiveErrnoMisc;
    arc().archive_set_error(a, code, "%s", error.message().c_str());
    return -1;
  }
  *out = s->last;
  return n;
}

// Reader B's client: the uncompressed tar, pulled out of reader A. Not hashed when A passed the
// input through as it was (no compression): the diff id is then the blob digest.
struct Stream {
  struct archive* outer = nullptr;
  bool hash = true;
  Sha256 sha;
  uint64_t size = 0;
  std::vector<char> buf = std::vector<char>(kBufferSize);
};

la_ssize_t stream_read(struct archive* b, void* client, const void** out) {
  auto* s = static_cast<Stream*>(client);
  la_ssize_t n = arc().archive_read_data(s->outer, s->buf.data(), s->buf.size());
  if (n < 0) {
    int code = arc().archive_errno(s->outer);
    arc().archive_set_error(b, code ? code : kArchiveErrnoMisc, "%s", archive_text(s->outer));
    return -1;
  }
  if (s->hash) s->sha.update(s->buf.data(), static_cast<size_t>(n));
  s->size += static_cast<uint64_t>(n);
  *out = s->buf.data();
  return n;
}

// Only in-process decompressors. archive_read_support_filter_all() would also enable lrzip,
// lzop and grzip, which libarchive runs as external host programs fed with the untrusted
// stream (the CVE-2014-9357 class): refused here.
Result<ArchivePtr> open_outer(Source& src) {
  ArchivePtr a(arc().archive_read_new());
  if (!a) return Error::msg("out of memory");
  using Enable = int (*)(struct archive*);
  for (Enable enable : {arc().archive_read_support_filter_gzip, arc().archive_read_support_filter_bzip2,
                        arc().archive_read_support_filter_xz, arc().archive_read_support_filter_lzma,
                        arc().archive_read_support_filter_zstd, arc().archive_read_support_filter_lz4}) {
    if (enable(a.get()) != ARCHIVE_OK)
      log::debug("libarchive: {}", archive_text(a.get()));  // an external program fallback
  }
  arc().archive_read_support_format_raw(a.get());
  int rc = arc().archive_read_open(a.get(), &src, nullptr, source_read, nullptr);
  struct archive_entry* e = nullptr;
  if (rc == ARCHIVE_OK) rc = arc().archive_read_next_header(a.get(), &e);
  if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) {
    if (src.size == 0) return Error::msg("the file is empty");
    return Error::msg("read: {}", archive_text(a.get()));
  }
  return a;
}

Result<ArchivePtr> open_tar(Stream& st) {
  ArchivePtr b(arc().archive_read_new());
  if (!b) return Error::msg("out of memory");
  arc().archive_read_support_format_tar(b.get());  // ustar, pax and GNU tar; no filter: A did that
  if (arc().archive_read_open(b.get(), &st, nullptr, stream_read, nullptr) != ARCHIVE_OK) {
    Error e = Error::msg("read layer: {}", archive_text(b.get()));
    if (arc().archive_errno(b.get()) == kArchiveErrnoFileFormat)
      e.hint("a rootfs must be a tar archive, plain or compressed with gzip, zstd, xz or bzip2");
    return e;
  }
  return b;
}

// Hashes what is left of A's data: the tar reader stops at the end-of-archive blocks, but the
// diff_id covers the whole uncompressed stream, padding included.
// Those bytes count against the caps too: zeros after the end are a bomb as well.
Result<void> drain_stream(Stream& st, const ExtractOptions& options, uint64_t charged) {
  uint64_t entries = 0;
  for (;;) {
    la_ssize_t n = arc().archive_read_data(st.outer, st.buf.data(), st.buf.size());
    if (n == 0) return {};
    if (n < 0) return Error::msg("read: {}", archive_text(st.outer));
    SANDRUN_TRY(charge_unpacked(options, &charged, &entries, static_cast<uint64_t>(n), 0)
                    .wrap("after the end of the layer's tar"));
    if (st.hash) st.sha.update(st.buf.data(), static_cast<size_t>(n));
    st.size += static_cast<uint64_t>(n);
  }
}

// Copies and hashes what A did not read (bytes after the compressed stream): the blob is the
// file as given, whole.
Result<void> drain_source(Source& src) {
  Error error;
  for (;;) {
    ssize_t n = source_pull(src, &error);
    if (n == 0) return {};
    if (n < 0) return error;
  }
}

}  // namespace

std::string layer_media_type(int filter_code) {
  switch (filter_code) {
    case ARCHIVE_FILTER_NONE: return "application/vnd.oci.image.layer.v1.tar";
    case ARCHIVE_FILTER_GZIP: return "application/vnd.oci.image.layer.v1.tar+gzip";
    case ARCHIVE_FILTER_ZSTD: return "application/vnd.oci.image.layer.v1.tar+zstd";
    case ARCHIVE_FILTER_XZ: return "application/vnd.sandrun.image.layer.v1.tar+xz";
    case ARCHIVE_FILTER_BZIP2: return "application/vnd.sandrun.image.layer.v1.tar+bzip2";
    case ARCHIVE_FILTER_LZMA: return "application/vnd.sandrun.image.layer.v1.tar+lzma";
    case ARCHIVE_FILTER_LZ4: return "application/vnd.sandrun.image.layer.v1.tar+lz4";
    default: return "application/vnd.sandrun.image.layer.v1.tar+unknown";
  }
}

ReadFn fd_reader(int fd) {
  return [fd](char* buf, size_t cap) -> Result<size_t> {
    ssize_t n;
    do {
      n = ::read(fd, buf, cap);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return Error::sys("read {}", fs::fd_path(fd));
    return static_cast<size_t>(n);
  };
}

Result<UnpackedLayer> unpack_layer(int in_fd, int blob_fd, int layer_fd,
                                   const ExtractOptions& options) {
  return unpack_layer(fd_reader(in_fd), blob_fd, layer_fd, options);
}

Result<UnpackedLayer> unpack_layer(const ReadFn& in, int blob_fd, int layer_fd,
                                   const ExtractOptions& options) {
  SANDRUN_TRY(load_archive_lib());
  BlobWriter blob(blob_fd);
  Source src;
  src.in = &in;
  src.blob = &blob;
  ArchivePtr outer = SANDRUN_TRY(open_outer(src));
  // Filter 0 is the outermost: the compression the blob was stored with.
  const int compression = arc().archive_filter_code(outer.get(), 0);
  Stream st;
  st.outer = outer.get();
  st.hash = compression != ARCHIVE_FILTER_NONE;
  ArchivePtr tar = SANDRUN_TRY(open_tar(st));
  UnpackedLayer out;
  uint64_t charged = 0;
  out.report = SANDRUN_TRY(extract_layer(layer_fd, tar.get(), options, &charged));
  tar.reset();
  SANDRUN_TRY(drain_stream(st, options, charged));
  outer.reset();
  SANDRUN_TRY(drain_source(src));
  auto [blob_digest, blob_size] = SANDRUN_TRY(blob.finish());
  out.layer.blob_digest = blob_digest;
  out.layer.diff_id = st.hash ? st.sha.finish() : blob_digest;
  out.layer.blob_size = blob_size;
  out.layer.unpacked_size = out.report.bytes;
  out.layer.media_type = layer_media_type(compression);
  return out;
}

}  // namespace sandrun::cache
