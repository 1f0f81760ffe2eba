// Hashing and writing a blob in a thread of its own, from the buffers the layer reader reads
// into: the extraction, in the caller's thread, does not wait for the blob's copy and digest.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "cache/digest.h"
#include "sandbox/sys/result.h"

namespace sandrun::cache {

class BlobWriter {
 public:
  // Appends to `fd` (not owned). `buffers` buffers of `buffer_size` bytes circulate.
  explicit BlobWriter(int fd, size_t buffers = 8, size_t buffer_size = 256 * 1024);
  ~BlobWriter();
  BlobWriter(const BlobWriter&) = delete;
  BlobWriter& operator=(const BlobWriter&) = delete;

  size_t buffer_size() const { return buffer_size_; }
  // A buffer to read into. The one acquire() returned before stays untouched until this call
  // (libarchive reads a buffer until it asks for the next): it is released now. Waits while
  // every other buffer is still queued.
  char* acquire();
  // Queues the first `n` bytes of the buffer acquire() returned last for hashing and writing
  // (n > 0); the buffer stays readable until the next acquire().
  void submit(size_t n);
  // Waits for everything queued: "sha256:<hex>" and the size, or the first write error.
  Result<std::pair<std::string, uint64_t>> finish();

 private:
  void run();
  void release(size_t i);

  int fd_;
  size_t buffer_size_;
  std::vector<std::vector<char>> buffers_;
  std::vector<int> refs_;              // 0: free; the reader and the writer hold one each
  std::optional<size_t> current_;      // the buffer the reader holds
  std::deque<std::pair<size_t, size_t>> queue_;  // (buffer, bytes) to hash and write
  bool closing_ = false;
  std::mutex mu_;
  std::condition_variable cv_;
  Sha256 sha_;
  uint64_t size_ = 0;
  std::optional<Error> error_;
  std::thread thread_;
};

}  // namespace sandrun::cache
