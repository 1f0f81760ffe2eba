// One pass over a layer tarball: store its bytes as a blob, extract it, compute both digests.
#pragma once

#include <functional>

#include "cache/extract.h"
#include "cache/store.h"

namespace sandrun::cache {

struct UnpackedLayer {
  LayerRef layer;        // diff_id, blob_digest, sizes, media_type (from the compression found)
  ExtractReport report;
};

// Reads up to `cap` bytes of the input into `buf`; returns 0 at its end.
using ReadFn = std::function<Result<size_t>(char* buf, size_t cap)>;
// A ReadFn over a file descriptor.
ReadFn fd_reader(int fd);

// The OCI media type of a layer blob compressed with libarchive's filter `code` (none, gzip,
// zstd); for other compressions (xz, bzip2, ...) a sandrun-specific type that `image save`
// converts.
std::string layer_media_type(int filter_code);

// Reads `in_fd` to its end exactly once. Reader A decompresses (gzip, bzip2, xz, lzma, zstd,
// lz4, or none) through a callback that hashes the compressed bytes and copies them to
// `blob_fd`; reader B parses the tar out of A's data through a callback that hashes it
// (diff_id = sha256 of the uncompressed tar, padding included) and extracts into `layer_fd`.
// On error `blob_fd` and `layer_fd` hold partial content the caller must discard.
Result<UnpackedLayer> unpack_layer(int in_fd, int blob_fd, int layer_fd,
                                   const ExtractOptions& options);
// The same from any reader (an archive member, a download).
Result<UnpackedLayer> unpack_layer(const ReadFn& in, int blob_fd, int layer_fd,
                                   const ExtractOptions& options);

}  // namespace sandrun::cache
