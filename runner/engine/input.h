// Input: what the engine writes to a container's or an exec's stdin, on the loop: a pipe of its
// own, or a terminal's master that its owner also reads. Bounded: write() says when to stop,
// on_drained when to go on; end() is end-of-file.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string_view>

#include "sandbox/sys/result.h"
#include "sandbox/sys/unique_fd.h"

namespace sandrun::runner {

class Input {
 public:
  // Bytes queued beyond which write() returns false, and below which on_drained runs again.
  static constexpr size_t kHigh = 256 * 1024;
  static constexpr size_t kLow = 64 * 1024;

  Input();
  ~Input();  // closes what it owns; queued bytes are dropped
  Input(const Input&) = delete;
  Input& operator=(const Input&) = delete;

  // The write end of a stdin pipe, owned from now on.
  Result<void> open_pipe(uv_loop_t* loop, UniqueFd fd);
  // A terminal's master, read by the owner through `stream` (which must outlive this or be
  // detached by close()).
  void use_terminal(uv_stream_t* stream);
  // Written to (or will be): not ended, not closed.
  bool is_open() const;

  // Queues `data` (copied; before the stream is there, it is written once it is). False once
  // more than kHigh bytes are queued: the caller stops until on_drained runs. After end(),
  // close() or once the reader is gone, the bytes are dropped.
  bool write(std::string_view data);
  // End-of-file after what is queued: a pipe is shut down and closed; a terminal gets its
  // end-of-file character (^D), as a user at a terminal would type it.
  void end();
  // Runs on the loop once the queue is back under kLow after a write() returned false.
  void on_drained(std::function<void()> fn);
  size_t queued() const;
  // Stops writing: queued writes are cancelled; a pipe is closed.
  void close();

  struct State;  // shared with the write requests in flight

 private:
  void attached();  // writes what was queued before the stream was there
  std::shared_ptr<State> s_;
};

}  // namespace sandrun::runner
