// HealthMonitor: the containers' health checks (Docker's HEALTHCHECK), each run as an exec
// (ExecProcess) into the running container on a timer of the loop: never a new container,
// never two checks of one container at once. The ContainerRegistry owns it and tells it when a
// container starts, stops and goes; the states stay for inspect until the container goes.
#pragma once

#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "runner/engine/engine.h"
#include "runner/engine/exec_process.h"
#include "runner/engine/health_check.h"
#include "runner/loop/loop.h"
#include "runner/loop/uv_handle.h"

namespace sandrun::runner {

class Container;

class HealthMonitor {
 public:
  // `running(id)`: the container's Container while it runs, else null. `changed(id, status)`:
  // its status changed (the registry publishes Docker's "health_status: ..." event).
  HealthMonitor(Loop& loop, Engine& engine, std::function<Container*(const std::string&)> running,
                std::function<void(const std::string&, HealthStatus)> changed);
  ~HealthMonitor();
  HealthMonitor(const HealthMonitor&) = delete;
  HealthMonitor& operator=(const HealthMonitor&) = delete;

  // The container runs (again): status "starting", the first check after one interval.
  void started(const std::string& id, const HealthCheck& check);
  // It has exited: no more checks (one running is killed); its status turns unhealthy, as
  // Docker's does when its monitor stops; the log and streak stay.
  void stopped(const std::string& id);
  // It is removed.
  void forget(const std::string& id);
  // Its state, if it has a check and has run; else null.
  const HealthState* state(const std::string& id) const;

 private:
  struct Watch;
  void arm(Watch& w);
  void run_check(Watch& w);
  void check_done(Watch& w, HealthResult result);
  void discard(std::unique_ptr<ExecProcess> p);
  static void on_tick(uv_timer_t* t);
  static void on_timeout(uv_timer_t* t);
  static void on_reap(uv_timer_t* t);

  Loop& loop_;
  Engine& engine_;
  std::function<Container*(const std::string&)> running_;
  std::function<void(const std::string&, HealthStatus)> changed_;
  std::map<std::string, std::unique_ptr<Watch>> watches_;
  std::vector<std::unique_ptr<ExecProcess>> graveyard_;  // ended checks, freed by reaper_
  UvHandle<uv_timer_t> reaper_;
};

// Go's time.Duration text as Docker prints it in its messages: "30s", "1.5s", "500ms", "1m0s".
std::string go_duration(std::chrono::milliseconds d);

}  // namespace sandrun::runner
