// The container routes of its terminal and live figures: resize, and stats as a stream (one
// object a second until the container exits or the client goes).
#include <charconv>
#include <memory>

#include <nlohmann/json.hpp>

#include "runner/api/container_probe.h"
#include "runner/api/container_routes.h"
#include "runner/api/query.h"
#include "runner/loop/timer.h"
#include "sandbox/sys/log.h"

namespace sandrun::runner::api {
namespace {

using nlohmann::json;

// ?h= and ?w= as moby reads them (unsigned 32-bit numbers); a terminal's are 16-bit.
std::optional<uint16_t> size_param(const Query& q, const char* key) {
  const std::string v = q.get(key).value_or("");
  uint32_t n = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (v.empty() || ec != std::errc() || end != v.data() + v.size() || n > 65535) return std::nullopt;
  return static_cast<uint16_t>(n);
}

constexpr uint64_t kStatsPeriodMs = 1000;

}  // namespace

void ContainerRoutes::resize(Exchange& ex, const Call& call, const std::string& id) {
  const Query q = Query::parse(call.target.query);
  const auto h = size_param(q, "h"), w = size_param(q, "w");
  if (!h) return ex.reply(Response::error(400, fmt::format("invalid resize height {:?}", q.get("h").value_or(""))));
  if (!w) return ex.reply(Response::error(400, fmt::format("invalid resize width {:?}", q.get("w").value_or(""))));
  if (auto refused = registry_.resize(id, sandbox::TtySize{*h, *w})) return ex.reply(answer(*refused));
  ex.reply(Response{});
}

// One object a second, each sampled on the threadpool with the previous one's CPU figures as
// its precpu_stats (what docker stats computes its CPU % from); ends with the container.
void ContainerRoutes::stats_stream(Exchange& ex, const std::string& id) {
  struct Stream : std::enable_shared_from_this<Stream> {
    explicit Stream(Loop& loop) : timer(loop) {}
    Exchange* ex = nullptr;
    Loop* loop = nullptr;
    std::string id, name;
    pid_t pid = -1;
    json pre;  // the previous sample's cpu_stats
    uint64_t token = 0;
    Timer timer;
    bool over = false;

    // A sample on the threadpool, sent on the loop; the next one a period later.
    void sample() {
      if (over) return;
      auto text = std::make_shared<Result<std::string>>(std::string());
      ex->work = run_blocking(
          *loop, [pid = pid, id = id, name = name, text](const std::atomic<bool>&) { *text = stats_json(pid, id, name, 0); },
          [keep = shared_from_this(), text] { keep->sent(*text); });
    }
    void sent(const Result<std::string>& text) {
      if (over) return;
      if (!text) {
        // Gone meanwhile: its end comes through the subscription.
        log::debug("api: stats of {}: {}", id, text.error().message());
        return;
      }
      json j = json::parse(*text, nullptr, false);
      if (j.is_discarded()) return;
      json cpu = j["cpu_stats"];
      j["precpu_stats"] = pre.is_null() ? json{{"cpu_usage", {{"total_usage", 0}}}, {"system_cpu_usage", 0}} : pre;
      pre = std::move(cpu);
      ex->send(j.dump() + "\n");
      timer.start(std::chrono::milliseconds(kStatsPeriodMs), [this] { sample(); });
    }
  };
  auto s = std::make_shared<Stream>(loop_);
  s->ex = &ex;
  s->loop = &loop_;
  s->id = id;
  s->name = registry_.find(id)->name;
  s->pid = registry_.live(id).pid;
  Response head;
  head.content_type = "application/json";
  ex.begin_stream(std::move(head));
  auto finish = [this, s] {
    if (s->over) return;
    s->over = true;
    if (s->token) registry_.unsubscribe(s->token);
    s->token = 0;
    s->timer.stop();
  };
  s->token = registry_.subscribe(id, ContainerRegistry::Subscriber{.record = nullptr, .bytes = nullptr, .end = [s, finish] {
                                                                     s->token = 0;
                                                                     Exchange* ex = s->ex;
                                                                     finish();
                                                                     ex->end();
                                                                   }});
  ex.on_gone([finish] { finish(); });
  s->sample();
}

}  // namespace sandrun::runner::api
