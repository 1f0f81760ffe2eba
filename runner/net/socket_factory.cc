// SocketFactoryClient: requests and answers of a container's socket factory, on the loop
// (non-blocking sends and receives, one timer for the oldest request's deadline).
#include "runner/net/socket_factory.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "sandbox/sys/fd_passing.h"
#include "sandbox/sys/fs.h"

namespace sandrun::runner {
namespace {

// Why the factory can no longer be trusted, as every pending and later request reports it.
Error broken(Error why) {
  return std::move(why).wrap("the socket factory is broken").wrap("make a socket in the container");
}

}  // namespace

Result<std::unique_ptr<SocketFactoryClient>> SocketFactoryClient::open(uv_loop_t* loop, UniqueFd factory) {
  if (!factory.valid()) return Error::msg("watch the socket factory: the container has none");
  std::unique_ptr<SocketFactoryClient> c(new SocketFactoryClient(loop, std::move(factory)));
  const int fd = c->fd_.get();
  c->name_ = fs::fd_path(fd);
  if (int rc = uv_poll_init(loop, c->poll_.get(), fd); rc < 0)
    return Error::sys_code(-rc, "watch the socket factory {} (fd {})", c->name_, fd);
  c->poll_.mark_live();
  c->poll_.get()->data = c.get();
  if (int rc = uv_timer_init(loop, c->timer_.get()); rc < 0)
    return Error::sys_code(-rc, "watch the socket factory {}: timer", c->name_);
  c->timer_.mark_live();
  c->timer_.get()->data = c.get();
  // Readable also while nothing is pending: a hang-up is then seen before the next request.
  if (int rc = uv_poll_start(c->poll_.get(), UV_READABLE, on_poll); rc < 0)
    return Error::sys_code(-rc, "watch the socket factory {} (fd {})", c->name_, fd);
  return c;
}

SocketFactoryClient::~SocketFactoryClient() = default;

void SocketFactoryClient::request(Done done) {
  if (broken_) {
    failed_.emplace_back(std::move(done), *broken_);
    arm_timer();  // told from the timer: never inside request()
    return;
  }
  pending_.push_back(Pending{std::move(done), uv_now(loop_) + kAnswerTimeoutMs});
  ++unsent_;
  send_requests();
  arm_timer();
}

// Sends what is queued, in order; when the socket is full (the factory is behind by a send
// buffer's worth of requests, a few hundred) the rest waits for writable.
void SocketFactoryClient::send_requests() {
  while (unsent_ > 0 && !peer_gone_) {
    const char byte = 1;
    ssize_t n = ::send(fd_.get(), &byte, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n == 1) {
      --unsent_;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) {
      // Not broken yet: an answer already received still belongs to its request, and must not
      // be failed from inside request(). The loop reads it, then the end-of-file.
      peer_gone_ = true;
      break;
    }
    return break_down(broken(Error::sys("send a request to {}", name_)));
  }
  watch();
}

void SocketFactoryClient::watch() {
  const bool want_writable = unsent_ > 0 && !peer_gone_;
  if (broken_ || want_writable == watching_writable_) return;
  int rc = uv_poll_start(poll_.get(), UV_READABLE | (want_writable ? UV_WRITABLE : 0), on_poll);
  if (rc < 0) return break_down(broken(Error::sys_code(-rc, "watch {}", name_)));
  watching_writable_ = want_writable;
}

void SocketFactoryClient::read_answers(const std::weak_ptr<int>& alive) {
  while (!broken_) {
    int32_t err = 0;
    int fd = -1;
    size_t nfds = 0;
    bool truncated = false;
    const ssize_t n = sys::recv_fds(fd_.get(), &err, sizeof err, &fd, 1, &nfds, &truncated, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n < 0) return break_down(broken(Error::sys("receive an answer from {}", name_)));
    UniqueFd sock(nfds ? fd : -1);  // owned at once, so that every path below closes it
    if (n == 0) return break_down(broken(Error::msg("it hung up")));
    if (pending_.size() <= unsent_) return break_down(broken(Error::sys_code(EPROTO, "an answer nobody asked for")));
    if (n != sizeof err || truncated) return break_down(broken(Error::sys_code(EPROTO, "a malformed answer ({} bytes)", n)));
    Done done = std::move(pending_.front().done);
    pending_.pop_front();
    // The next one waits its turn: its time runs from this answer at the earliest, so a burst
    // of connections is not taken for a silent factory.
    if (!pending_.empty()) {
      uint64_t& next = pending_.front().deadline;
      next = std::max(next, uv_now(loop_) + kAnswerTimeoutMs);
    }
    if (err != 0) {
      done(Error::sys_code(err, "make a socket in the container"));
    } else if (!sock.valid()) {
      done(Error::sys_code(EPROTO, "make a socket in the container: the answer carried no socket"));
    } else {
      done(std::move(sock));
    }
    if (alive.expired()) return;  // `done` destroyed the client
  }
}

// From now on the factory is not used: answers are positional, and one is missing or unreadable.
void SocketFactoryClient::break_down(Error why) {
  if (broken_) return;
  broken_ = std::move(why);
  // Stopped, not closed: the fd stays open (and polled by nothing) until the destructor, so a
  // hung-up socket does not wake the loop over and over.
  uv_poll_stop(poll_.get());
  for (Pending& p : pending_) failed_.emplace_back(std::move(p.done), *broken_);
  pending_.clear();
  unsent_ = 0;
  arm_timer();
}

void SocketFactoryClient::deliver_failures(const std::weak_ptr<int>& alive) {
  while (!failed_.empty()) {
    auto [done, error] = std::move(failed_.front());
    failed_.pop_front();
    done(std::move(error));
    if (alive.expired()) return;
  }
}

void SocketFactoryClient::arm_timer() {
  uv_timer_t* t = timer_.get();
  if (!failed_.empty()) {
    uv_timer_start(t, on_timer, 0, 0);
  } else if (!pending_.empty()) {
    const uint64_t now = uv_now(loop_), deadline = pending_.front().deadline;
    uv_timer_start(t, on_timer, deadline > now ? deadline - now : 0, 0);
  } else {
    uv_timer_stop(t);
  }
}

void SocketFactoryClient::on_poll(uv_poll_t* poll, int status, int events) {
  auto* self = static_cast<SocketFactoryClient*>(poll->data);
  const std::weak_ptr<int> alive = self->alive_;
  if (status < 0) {
    self->break_down(broken(Error::sys_code(-status, "watch {}", self->name_)));
  } else {
    // Answers first: after a hang-up, "it hung up" says more than a send's EPIPE.
    if (events & (UV_READABLE | UV_DISCONNECT)) self->read_answers(alive);
    if (alive.expired()) return;
    if ((events & UV_WRITABLE) && !self->broken_) self->send_requests();
  }
  self->deliver_failures(alive);
  if (alive.expired()) return;
  self->arm_timer();
}

void SocketFactoryClient::on_timer(uv_timer_t* timer) {
  auto* self = static_cast<SocketFactoryClient*>(timer->data);
  const std::weak_ptr<int> alive = self->alive_;
  if (!self->broken_ && !self->pending_.empty() && self->pending_.front().deadline <= uv_now(self->loop_)) {
    self->break_down(broken(Error::sys_code(ETIMEDOUT, "no answer within {} ms", kAnswerTimeoutMs)));
  }
  self->deliver_failures(alive);
  if (alive.expired()) return;
  self->arm_timer();
}

}  // namespace sandrun::runner
