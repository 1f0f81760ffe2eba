// A blob hashed and written in a thread of its own (see blob_writer.h).
#include "cache/blob_writer.h"

#include "sandbox/sys/fs.h"

namespace sandrun::cache {

BlobWriter::BlobWriter(int fd, size_t buffers, size_t buffer_size)
    : fd_(fd), buffer_size_(buffer_size), buffers_(buffers, std::vector<char>(buffer_size)), refs_(buffers, 0) {
  thread_ = std::thread([this] { run(); });
}

BlobWriter::~BlobWriter() {
  {
    std::lock_guard<std::mutex> g(mu_);
    closing_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void BlobWriter::release(size_t i) {
  // With mu_ held.
  if (--refs_[i] == 0) cv_.notify_all();
}

char* BlobWriter::acquire() {
  std::unique_lock<std::mutex> lock(mu_);
  if (current_) {
    release(*current_);
    current_.reset();
  }
  for (;;) {
    for (size_t i = 0; i < refs_.size(); ++i) {
      if (refs_[i] == 0) {
        refs_[i] = 1;
        current_ = i;
        return buffers_[i].data();
      }
    }
    cv_.wait(lock);
  }
}

void BlobWriter::submit(size_t n) {
  {
    std::lock_guard<std::mutex> g(mu_);
    ++refs_[*current_];
    queue_.emplace_back(*current_, n);
  }
  cv_.notify_all();
}

void BlobWriter::run() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return closing_ || !queue_.empty(); });
    if (queue_.empty()) return;  // closing, all written
    auto [i, n] = queue_.front();
    queue_.pop_front();
    const bool failed = error_.has_value();
    lock.unlock();
    // Hashing and writing outside the lock: the reader goes on with the other buffers.
    std::optional<Error> err;
    if (!failed) {
      const std::string_view data(buffers_[i].data(), n);
      sha_.update(data);
      if (auto r = fs::write_all(fd_, data); !r) err = std::move(r.error().wrap("store blob"));
    }
    lock.lock();
    size_ += n;
    if (err && !error_) error_ = std::move(err);
    release(i);
  }
}

Result<std::pair<std::string, uint64_t>> BlobWriter::finish() {
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (current_) {
      release(*current_);
      current_.reset();
    }
    closing_ = true;
  }
  cv_.notify_all();
  thread_.join();
  if (error_) return std::move(*error_);
  return std::make_pair(sha_.finish(), size_);
}

}  // namespace sandrun::cache
