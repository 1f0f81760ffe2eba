// The container routes that stream: logs with follow (a chunked body until the container
// exits) and attach (a hijacked connection carrying its output, framed without a TTY).
#include <memory>

#include "runner/api/container_json.h"
#include "runner/api/container_routes.h"
#include "runner/api/query.h"
#include "sandbox/sys/log.h"

namespace sandrun::runner::api {
namespace {

// A client that does not read is never waited for: past the connection's bound it may fall
// behind by this much more, then it is dropped (the container's output is never held back).
constexpr size_t kBehindMax = 8 << 20;

// What was sent to a client that has not taken it (the connection's output bound passed).
struct Flow {
  bool behind = false;
  size_t extra = 0;
  bool dropped = false;
  // Sends `data`; false when the client is dropped (ended) because it is too far behind.
  bool send(Exchange& ex, std::string_view data) {
    if (dropped) return false;
    const bool under = ex.send(data);
    if (under) return true;
    behind = true;
    extra += data.size();
    if (extra <= kBehindMax) return true;
    dropped = true;
    log::warn("api: a client following a container's output is {} bytes behind: dropping it", extra);
    ex.end();
    return false;
  }
  void drained() {
    behind = false;
    extra = 0;
  }
};

std::string stream_type(int minor) {
  return minor >= 42 ? "application/vnd.docker.multiplexed-stream" : "application/vnd.docker.raw-stream";
}

}  // namespace

// The file's records up to the subscription's start (read on the threadpool), then the live
// ones that came meanwhile, then the rest as they come, until the container exits.
void ContainerRoutes::follow_logs(Exchange& ex, const Call& call, const std::string& id, LogQuery lq, bool timestamps) {
  struct Follow {
    Flow flow;
    bool file_done = false;
    std::vector<LogRecord> held;  // live records that came while the file was read
    bool ended = false;           // the container exited meanwhile
    uint64_t token = 0;
  };
  auto f = std::make_shared<Follow>();
  const bool raw = registry_.find(id)->tty;  // a terminal's output: one stream, raw
  lq.end = registry_.log_position(id);
  const LogQuery live_q = [&] {
    LogQuery q = lq;
    q.tail.reset();
    return q;
  }();
  Response head;
  head.content_type = raw ? "application/vnd.docker.raw-stream" : stream_type(call.target.minor);
  ex.begin_stream(std::move(head));
  f->token = registry_.subscribe(
      id, ContainerRegistry::Subscriber{
              .record =
                  [this, &ex, f, live_q, timestamps, raw](const LogRecord& r) {
                    if (!live_q.matches(r)) return;
                    if (!f->file_done) return f->held.push_back(r);
                    if (!f->flow.send(ex, frame_record(r, timestamps, raw)) && f->token) {
                      registry_.unsubscribe(f->token);
                      f->token = 0;
                    }
                  },
              .bytes = nullptr,
              .end =
                  [&ex, f] {
                    f->token = 0;
                    if (!f->file_done) {
                      f->ended = true;
                      return;
                    }
                    if (!f->flow.dropped) ex.end();
                  },
          });
  ex.on_drain([f] { f->flow.drained(); });
  ex.on_gone([this, f] {
    if (f->token) registry_.unsubscribe(f->token);
    f->token = 0;
  });
  auto text = std::make_shared<Result<std::string>>(std::string());
  ex.work = run_blocking(
      loop_,
      [dir = registry_.dir_of(id), lq, timestamps, raw, text](const std::atomic<bool>&) {
        *text = framed_log(dir, lq, timestamps, raw);
      },
      [this, &ex, f, text, timestamps, raw] {
        if (!*text) log::warn("api: logs: {}", text->error().message());
        f->file_done = true;
        bool ok = !*text || (*text)->empty() || f->flow.send(ex, **text);
        for (const auto& r : f->held) ok = ok && f->flow.send(ex, frame_record(r, timestamps, raw));
        f->held.clear();
        if (!ok) {
          // Dropped: the exchange is gone or going.
          if (f->token) registry_.unsubscribe(f->token);
          f->token = 0;
          return;
        }
        if (f->ended || !f->token) ex.end();
      });
}

// The hijacked connection carries the container's output (framed without a terminal, raw with
// one) and, with stdin=1 on a container with a stdin, its input: written with backpressure
// (the client is not read while the container's queue is full). The client's end of input, or
// its going, closes the container's stdin when it was created StdinOnce (as Docker).
void ContainerRoutes::attach(Exchange& ex, const Call& call, const std::string& id) {
  const Query q = Query::parse(call.target.query);
  const bool out = q.flag("stdout"), err = q.flag("stderr");
  const ContainerRecord* rec = registry_.find(id);
  const bool tty = rec->tty, once = rec->stdin_once;
  const bool writes = q.flag("stdin") && rec->open_stdin;
  struct Attached {
    Flow flow;
    uint64_t token = 0;
    uint64_t stdin_token = 0;
    bool input_done = false;
  };
  auto a = std::make_shared<Attached>();
  // Once the answer ends (or the client goes): nothing of the exchange is kept.
  auto release = [this, a, id] {
    if (a->token) registry_.unsubscribe(a->token);
    a->token = 0;
    if (a->stdin_token) registry_.unwatch_stdin(id, a->stdin_token);
    a->stdin_token = 0;
  };
  auto input_end = [this, a, id, once, writes] {
    if (a->input_done) return;
    a->input_done = true;
    if (writes && once) registry_.close_stdin(id);
  };
  Response head;
  head.content_type = tty ? "application/vnd.docker.raw-stream" : stream_type(call.target.minor);
  ex.hijack(
      std::move(head),
      [this, &ex, a, id, writes](std::string_view data) {
        if (!writes || a->input_done) return;  // no stdin: read and dropped
        if (!registry_.write_stdin(id, data)) ex.pause_input(true);
      },
      input_end);
  if (!q.flag("stream") || (!registry_.active(id) && rec->status != ContainerStatus::created)) return ex.end();
  if (writes) a->stdin_token = registry_.watch_stdin(id, [&ex] { ex.pause_input(false); });
  a->token = registry_.subscribe(
      id, ContainerRegistry::Subscriber{
              .record = nullptr,
              .bytes =
                  [&ex, a, out, err, tty, release](int stream, std::string_view data) {
                    if ((stream == 1 && !out) || (stream == 2 && !err)) return;
                    if (a->flow.send(ex, tty ? std::string(data) : frame_bytes(stream, data))) return;
                    release();
                  },
              .end =
                  [&ex, a, release] {
                    a->token = 0;
                    release();
                    if (!a->flow.dropped) ex.end();
                  },
          });
  ex.on_drain([a] { a->flow.drained(); });
  ex.on_gone([a, release, input_end] {
    release();
    input_end();
  });
}

}  // namespace sandrun::runner::api
