// The daemon's container logs: records written on the loop, read on the threadpool.
#include "runner/engine/container_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <deque>

#include "config/job_file.h"
#include "sandbox/sys/fs.h"
#include "sandbox/sys/log.h"

namespace sandrun::runner {
namespace {

constexpr size_t kHeader = 16;

struct Header {
  uint8_t stream;
  uint8_t flags;
  uint16_t zero;
  uint32_t size;
  int64_t time_ns;
};
static_assert(sizeof(Header) == kHeader);

// Calls f(record) for each whole record of `text` (a torn record at the end is ignored).
template <typename F>
void each_record(const std::string& text, F&& f) {
  size_t pos = 0;
  while (pos + kHeader <= text.size()) {
    Header h;
    std::memcpy(&h, text.data() + pos, kHeader);
    if (pos + kHeader + h.size > text.size() || (h.stream != 1 && h.stream != 2)) return;
    f(LogRecord{h.stream, (h.flags & 1) != 0, h.time_ns, text.substr(pos + kHeader, h.size)});
    pos += kHeader + h.size;
  }
}

}  // namespace

std::string encode_log_record(const LogRecord& r) {
  Header h{static_cast<uint8_t>(r.stream), static_cast<uint8_t>(r.partial ? 1 : 0), 0,
           static_cast<uint32_t>(r.data.size()), r.time_ns};
  std::string out(reinterpret_cast<const char*>(&h), kHeader);
  out += r.data;
  return out;
}

ContainerLog::ContainerLog(std::string dir, uint64_t max) : dir_(std::move(dir)), max_(max ? max : config::kDefaultLogMax) {}

Result<void> ContainerLog::open() {
  const std::string path = fs::join(dir_, "log");
  fd_ = SANDRUN_TRY(fs::open_path(path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW, 0600));
  struct stat st {};
  bytes_ = ::fstat(fd_.get(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  failed_ = false;
  return {};
}

void ContainerLog::close() { fd_.reset(); }

void ContainerLog::rotate() {
  const std::string path = fs::join(dir_, "log");
  fd_.reset();
  if (::rename(path.c_str(), (path + ".1").c_str()) < 0) log::warn("container log: rotate {}: {}", path, errno_text(errno));
  auto fd = fs::open_path(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_NOFOLLOW, 0600);
  if (!fd) {
    log::warn("container log: {}", fd.error().message());
    failed_ = true;
    return;
  }
  fd_ = std::move(*fd);
  bytes_ = 0;
}

void ContainerLog::append(const LogRecord& r) {
  if (!fd_ || failed_) return;
  const std::string rec = encode_log_record(r);
  if (bytes_ > 0 && bytes_ + rec.size() > max_ / 2) rotate();
  if (!fd_) return;
  if (auto w = fs::write_all(fd_.get(), rec); !w) {
    log::warn("container log: {}", w.error().message());
    failed_ = true;
    return;
  }
  bytes_ += rec.size();
}

Result<std::vector<LogRecord>> read_log(const std::string& dir, const LogQuery& q) {
  std::deque<LogRecord> out;
  for (const char* name : {"log.1", "log"}) {
    const std::string path = fs::join(dir, name);
    if (!fs::exists(path)) continue;
    std::string text = SANDRUN_TRY(fs::read_file(path));
    if (q.end && std::string_view(name) == "log" && text.size() > *q.end) text.resize(*q.end);
    each_record(text, [&](LogRecord r) {
      if (!q.matches(r)) return;
      out.push_back(std::move(r));
      if (q.tail && out.size() > *q.tail) out.pop_front();
    });
  }
  return std::vector<LogRecord>(std::make_move_iterator(out.begin()), std::make_move_iterator(out.end()));
}

}  // namespace sandrun::runner
