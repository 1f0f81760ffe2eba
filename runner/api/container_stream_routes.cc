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
  lq.end = registry_.log_position(id);
  const LogQuery live_q = [&] {
    LogQuery q = lq;
    q.tail.reset();
    return q;
  }();
  Response head;
  head.content_type = stream_type(call.target.minor);
  ex.begin_stream(std::move(head));
  f->token = registry_.subscribe(
      id, ContainerRegistry::Subscriber{
              .record =
                  [this, &ex, f, live_q, timestamps](const LogRecord& r) {
                    if (!live_q.matches(r)) return;
                    if (!f->file_done) return f->held.push_back(r);
                    if (!f->flow.send(ex, frame_record(r, timestamps)) && f->token) {
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
      [dir = registry_.dir_of(id), lq, timestamps, text](const std::atomic<bool>&) {
        *text = framed_log(dir, lq, timestamps);
      },
      [this, &ex, f, text, timestamps] {
        if (!*text) log::warn("api: logs: {}", text->error().message());
        f->file_done = true;
        bool ok = !*text || (*text)->empty() || f->flow.send(ex, **text);
        for (const auto& r : f->held) ok = ok && f->flow.send(ex, frame_record(r, timestamps));
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

void ContainerRoutes::attach(Exchange& ex, const Call& call, const std::string& id) {
  const Query q = Query::parse(call.target.query);
  const bool out = q.flag("stdout"), err = q.flag("stderr");
  Response head;
  head.content_type = stream_type(call.target.minor);
  // Its input (stdin) is not wired to the container yet: read and dropped.
  ex.hijack(std::move(head), [](std::string_view) {}, [] {});
  if (!q.flag("stream") || !registry_.find(id) ||
      (!registry_.active(id) && registry_.find(id)->status != ContainerStatus::created)) {
    return ex.end();
  }
  struct Attached {
    Flow flow;
    uint64_t token = 0;
  };
  auto a = std::make_shared<Attached>();
  a->token = registry_.subscribe(
      id, ContainerRegistry::Subscriber{
              .record = nullptr,
              .bytes =
                  [this, &ex, a, out, err](int stream, std::string_view data) {
                    if ((stream == 1 && !out) || (stream == 2 && !err)) return;
                    if (!a->flow.send(ex, frame_bytes(stream, data)) && a->token) {
                      registry_.unsubscribe(a->token);
                      a->token = 0;
                    }
                  },
              .end =
                  [&ex, a] {
                    a->token = 0;
                    if (!a->flow.dropped) ex.end();
                  },
          });
  ex.on_drain([a] { a->flow.drained(); });
  ex.on_gone([this, a] {
    if (a->token) registry_.unsubscribe(a->token);
    a->token = 0;
  });
}

}  // namespace sandrun::runner::api
