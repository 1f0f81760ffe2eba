// GET /events: the engine's events (runner/engine/event_bus.h) as Docker's JSON message
// stream: replayed since `since`, followed until `until` (or the client goes), filtered by
// type, event, container, image, network, volume and label.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "runner/api/query.h"
#include "runner/api/routes.h"
#include "runner/api/server.h"
#include "runner/engine/event_bus.h"
#include "runner/loop/loop.h"

namespace sandrun::runner::api {

// Docker's JSON of one event (one line of the stream, without its newline).
std::string event_json(const EngineEvent& e);
// Whether `e` passes Docker's event filters (every key; any value of a key).
bool event_matches(const EngineEvent& e, const Filters& f);
// A `since`/`until` value: Unix seconds ("1700000000", "1700000000.5"), RFC 3339
// ("2026-12-05T10:00:00Z", fractions and offsets too) or a Go duration before `now_ns`
// ("10m", "1h30m"). In nanoseconds since the epoch.
Result<int64_t> parse_event_time(std::string_view value, int64_t now_ns);

class EventRoutes {
 public:
  EventRoutes(Loop& loop, EventBus& bus);
  ~EventRoutes();
  EventRoutes(const EventRoutes&) = delete;
  EventRoutes& operator=(const EventRoutes&) = delete;

  void handle(Exchange& ex, const Call& call);
  size_t followers() const { return follows_.size(); }

 private:
  struct Follow;
  void end(Exchange* ex);

  Loop& loop_;
  EventBus& bus_;
  std::map<Exchange*, std::unique_ptr<Follow>> follows_;
};

}  // namespace sandrun::runner::api
