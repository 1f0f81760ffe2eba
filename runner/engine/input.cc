// Input: a bounded writer to a stdin pipe or a terminal's master on the loop.
#include "runner/engine/input.h"

#include <string>
#include <utility>

#include "runner/loop/uv_handle.h"

namespace sandrun::runner {

struct Input::State {
  UvHandle<uv_pipe_t> pipe;           // a stdin pipe of ours
  uv_stream_t* stream = nullptr;      // what is written: the pipe, or a terminal's master
  bool terminal = false;
  bool ended = false;       // end() was called, close() or the reader went away
  bool end_pending = false; // end() before the stream was there
  bool closed = false;
  std::string pending;      // written before the stream was there
  bool blocked = false;
  size_t queued = 0;
  std::function<void()> drained;
};

namespace {

struct WriteReq {
  uv_write_t req;
  std::string data;
  std::shared_ptr<Input::State> state;
};

struct ShutdownReq {
  uv_shutdown_t req;
  std::shared_ptr<Input::State> state;
};

}  // namespace

Input::Input() : s_(std::make_shared<State>()) {}
Input::~Input() { close(); }

Result<void> Input::open_pipe(uv_loop_t* loop, UniqueFd fd) {
  if (int rc = uv_pipe_init(loop, s_->pipe.get(), 0); rc < 0) return Error::sys_code(-rc, "watch the stdin pipe");
  s_->pipe.mark_live();
  if (int rc = uv_pipe_open(s_->pipe.get(), fd.get()); rc < 0) return Error::sys_code(-rc, "watch the stdin pipe");
  fd.release();
  s_->stream = reinterpret_cast<uv_stream_t*>(s_->pipe.get());
  attached();
  return {};
}

void Input::use_terminal(uv_stream_t* stream) {
  s_->stream = stream;
  s_->terminal = true;
  attached();
}

void Input::attached() {
  if (s_->closed) return;
  std::string pending = std::move(s_->pending);
  s_->queued -= pending.size();
  const bool end_pending = std::exchange(s_->end_pending, false);
  s_->ended = false;
  if (!pending.empty()) write(pending);
  if (end_pending) end();
}

bool Input::is_open() const { return !s_->ended && !s_->closed; }
size_t Input::queued() const { return s_->queued; }
void Input::on_drained(std::function<void()> fn) { s_->drained = std::move(fn); }

bool Input::write(std::string_view data) {
  if (!is_open()) return true;  // nobody reads any more: dropped
  if (!s_->stream) {
    s_->pending.append(data);
    s_->queued += data.size();
    if (s_->queued > kHigh) s_->blocked = true;
    return !s_->blocked;
  }
  if (data.empty()) return !s_->blocked;
  auto* w = new WriteReq{{}, std::string(data), s_};
  uv_buf_t buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  int rc = uv_write(&w->req, s_->stream, &buf, 1, [](uv_write_t* req, int) {
    auto* w = reinterpret_cast<WriteReq*>(req);
    std::shared_ptr<Input::State> s = std::move(w->state);
    s->queued -= w->data.size();
    delete w;
    if (s->blocked && s->queued <= kLow) {
      s->blocked = false;
      if (s->drained) s->drained();
    }
  });
  if (rc < 0) {
    delete w;  // the reader is gone (EPIPE) or the stream closed: nothing more is written
    s_->ended = true;
    return true;
  }
  s_->queued += data.size();
  if (s_->queued > kHigh) s_->blocked = true;
  return !s_->blocked;
}

void Input::end() {
  if (!is_open()) return;
  if (!s_->stream) {
    s_->end_pending = true;
    s_->ended = true;
    return;
  }
  if (s_->terminal) {
    write("\x04");  // VEOF: a reading `cat` at the start of a line sees end-of-file
    s_->ended = true;
    return;
  }
  s_->ended = true;
  auto* r = new ShutdownReq{{}, s_};
  if (uv_shutdown(&r->req, s_->stream, [](uv_shutdown_t* req, int) {
        auto* r = reinterpret_cast<ShutdownReq*>(req);
        r->state->pipe.close();
        delete r;
      }) < 0) {
    delete r;
    s_->pipe.close();
  }
}

void Input::close() {
  if (!s_) return;
  s_->drained = nullptr;
  s_->ended = true;
  s_->closed = true;
  s_->pending.clear();
  s_->pipe.close();  // pending writes and the shutdown are cancelled; their callbacks free them
  s_->stream = nullptr;
}

}  // namespace sandrun::runner
