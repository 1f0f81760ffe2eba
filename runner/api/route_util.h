// Helpers the route handlers of each area share: blocking work answered from the threadpool,
// JSON request bodies, Docker's time format.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "runner/api/http_message.h"
#include "runner/engine/event_bus.h"
#include "runner/api/server.h"
#include "runner/loop/loop.h"

namespace sandrun::runner::api {

// Runs `work` on the threadpool and replies with the Response it makes, on the loop thread.
// When the client goes first, the exchange is destroyed and nothing is replied.
inline void answer_blocking(Loop& loop, Exchange& ex, std::function<Response(const std::atomic<bool>&)> work) {
  auto out = std::make_shared<Response>();
  ex.work = run_blocking(
      loop, [work = std::move(work), out](const std::atomic<bool>& cancelled) { *out = work(cancelled); },
      [&ex, out] { ex.reply(std::move(*out)); });
}

// answer_blocking for work that changes engine objects: the events it reports are published on
// the loop thread (EventBus is the loop's), before the reply.
using Events = std::vector<EngineEvent>;
inline void answer_blocking(Loop& loop, Exchange& ex, EventBus& bus,
                            std::function<Response(const std::atomic<bool>&, Events&)> work) {
  auto out = std::make_shared<std::pair<Response, Events>>();
  ex.work = run_blocking(
      loop, [work = std::move(work), out](const std::atomic<bool>& cancelled) { out->first = work(cancelled, out->second); },
      [&ex, &bus, out] {
        for (auto& e : out->second) bus.publish(std::move(e));
        ex.reply(std::move(out->first));
      });
}

// An image event as Docker's: its id and its "name" attribute.
inline EngineEvent image_event(std::string action, std::string id, std::string name) {
  return EngineEvent{"image", std::move(action), std::move(id), {{"name", std::move(name)}}, 0};
}

// The request's JSON body: an object (an empty body is {}), or Docker's 400.
std::variant<nlohmann::json, Response> json_body(const Request& req);

// RFC 3339 in UTC with nanoseconds, as Go prints time.Time: "2024-05-01T10:00:00.123456789Z".
std::string rfc3339(int64_t seconds, int64_t nanos = 0);
// Unix seconds of an RFC 3339 time ("2024-05-01T10:00:00.5+02:00"); nullopt when unreadable.
std::optional<int64_t> parse_rfc3339(std::string_view text);

// A JSON value dumped for a response body (invalid UTF-8 replaced), with Docker's newline.
inline std::string json_text(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace sandrun::runner::api
