// SocketFactoryClient: sandrun's end of a container's socket factory (rootless published
// ports), asked without ever blocking the loop thread.
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "runner/loop/uv_handle.h"
#include "sandbox/sys/result.h"
#include "sandbox/sys/unique_fd.h"

namespace sandrun::runner {

// The protocol (sandrun-init's serve_sockets): each request is one byte on the factory's
// SOCK_SEQPACKET socketpair; each answer is an int32 errno and, when it is 0, an unconnected
// TCP socket of the container's network namespace in SCM_RIGHTS. Answers come in the order of
// the requests and carry nothing else to match them by, so once one answer is missing (a
// timeout) or the factory hangs up, no later answer can be trusted: the factory is broken
// from then on, and every pending and later request fails.
class SocketFactoryClient {
 public:
  using Done = std::function<void(Result<UniqueFd>)>;
  // How long the oldest request may wait for its answer, counted from when it was asked or
  // from the answer before it, whichever is later, before the factory counts as broken.
  static constexpr uint64_t kAnswerTimeoutMs = 2000;

  // Watches `factory` (sandrun's end, from Sandbox::take_socket_factory()) on `loop`. Call on
  // the loop thread; every method is for the loop thread only.
  static Result<std::unique_ptr<SocketFactoryClient>> open(uv_loop_t* loop, UniqueFd factory);

  // Asks for one socket. `done` runs exactly once, on the loop thread from a libuv callback,
  // never inside request(): with the socket (non-blocking, CLOEXEC), or with an error: the
  // container's errno ("make a socket in the container: ..."), or "... the socket factory is
  // broken: ..." (no answer within kAnswerTimeoutMs, the factory closed, a malformed answer).
  // Requests complete in the order they were made, unless the client is destroyed first.
  void request(Done done);

  // Closes the factory. Pending requests are dropped: their `done` never runs (it may refer
  // to what is being destroyed). Safe from inside a `done`.
  ~SocketFactoryClient();
  SocketFactoryClient(const SocketFactoryClient&) = delete;
  SocketFactoryClient& operator=(const SocketFactoryClient&) = delete;

 private:
  SocketFactoryClient(uv_loop_t* loop, UniqueFd factory) : loop_(loop), fd_(std::move(factory)) {}
  struct Pending {
    Done done;
    uint64_t deadline;  // uv_now() in ms; moved on for the front as answers arrive
  };

  void send_requests();
  void read_answers(const std::weak_ptr<int>& alive);
  void watch();
  void arm_timer();
  void deliver_failures(const std::weak_ptr<int>& alive);
  void break_down(Error why);
  static void on_poll(uv_poll_t* poll, int status, int events);
  static void on_timer(uv_timer_t* timer);

  uv_loop_t* loop_;
  UniqueFd fd_;                  // declared before poll_: closed after the handle stops watching it
  std::string name_;             // what fd_ is, as /proc names it (socket:[INODE]), for errors
  UvHandle<uv_poll_t> poll_;
  UvHandle<uv_timer_t> timer_;   // the oldest request's deadline, or 0 to deliver failures
  std::deque<Pending> pending_;  // asked (or about to be), oldest first: the next answer is the front's
  size_t unsent_ = 0;            // request bytes of the newest pending requests not sent yet (EAGAIN)
  bool watching_writable_ = false;
  // A send found the factory gone (EPIPE): nothing more is sent, and the answers it gave before
  // are still read; its end-of-file then breaks the client down ("it hung up").
  bool peer_gone_ = false;
  std::deque<std::pair<Done, Error>> failed_;  // failed, to be told from the timer
  std::optional<Error> broken_;  // set once: every request from then on fails with it
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);  // expires when destroyed (callbacks check)
};

}  // namespace sandrun::runner
