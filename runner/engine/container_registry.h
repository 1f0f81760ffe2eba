// ContainerRegistry: the daemon's long-lived containers, on its loop. Each has a record
// (container_record.h, kept under ROOT/containers/<id>/), a log written by the daemon
// (container_log.h), and while it runs one Container (container.h) made from its JobSpec by
// resolve, like every other container of sandrun. Docker-agnostic: the Engine API
// (runner/api/container_routes.cc) translates Docker's words to and from these calls; the CLI
// and CI drivers may use it the same way.
//
//   created --start--> running --(PID 1 exits)--> exited --start--> running ...
//      |                  | stop / kill                |
//      +------------------+------ remove (force) ------+--> removing --> (gone)
//
// An exited container's writable layer goes with its run (its slot is emptied at exit): a
// start runs the command again on a fresh one.
#pragma once

#include <uv.h>

#include <chrono>
#include <csignal>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "cache/store.h"
#include "config/host_config.h"
#include "runner/engine/container.h"
#include "runner/engine/container_files.h"
#include "runner/engine/container_log.h"
#include "runner/engine/container_record.h"
#include "runner/engine/engine.h"
#include "runner/engine/event_bus.h"
#include "runner/engine/health.h"
#include "runner/engine/plan.h"
#include "runner/engine/resolve_isolation.h"
#include "runner/engine/start_budget.h"
#include "runner/loop/loop.h"
#include "runner/loop/uv_handle.h"

namespace sandrun::runner {

// Why an operation of the registry did not happen, as a kind a front door maps to its own
// status (the API: 404, 409, 304, 400, 500) and a message in Docker's words.
struct ContainerRefusal {
  enum class Kind { not_found, conflict, not_modified, invalid, failed };
  Kind kind = Kind::failed;
  std::string message;
};
// Done(nullopt) when it happened.
using Done = std::function<void(std::optional<ContainerRefusal>)>;

enum class WaitCondition { not_running, next_exit, removed };

struct CreateRequest {
  std::string name;  // "" = a generated one
  std::map<std::string, std::string> labels;
  config::JobSpec spec;     // image, command, env, ...; spec.name is set by the registry
  std::string client;       // the front door's own description, kept in the record
  bool auto_remove = false;
  // Host directories made (mode 0755) when missing, as Docker makes a bind's source.
  std::vector<std::string> make_dirs;
  std::optional<HealthCheck> health;  // none: no health check (Docker's NONE, or none given)
  // Its stdin and terminal (ContainerRecord's open_stdin, stdin_once, tty) and the terminal's
  // first size (rows, cols; 0: 24x80).
  bool open_stdin = false;
  bool stdin_once = false;
  bool tty = false;
  uint16_t tty_rows = 0, tty_cols = 0;
  // Volumes, tmpfs mounts, networks (container_wiring.h): made or checked at create.
  WiringSpec wiring;
};

// What a container holds while it runs, for top and stats.
struct LiveInfo {
  pid_t pid = -1;
  const sandbox::cgroup::Group* cgroup = nullptr;
};

class ContainerRegistry {
 public:
  struct Options {
    std::string root;  // the daemon's --root: ROOT/containers, ROOT/slots
    config::HostConfig host;
    std::chrono::milliseconds shutdown_grace{10'000};
    // At most this many run at once (`serve -j N`; 0: no limit): a start over it waits for
    // its turn (it stays `created`, its start unanswered), then runs.
    size_t max_running = 0;
    // --live-restore: containers outlive the daemon (shutdown leaves them running) and load()
    // adopts those an earlier daemon left (container_adopt.h).
    bool live_restore = false;
  };
  ContainerRegistry(Loop& loop, cache::Store store, Options options);
  ~ContainerRegistry();
  ContainerRegistry(const ContainerRegistry&) = delete;
  ContainerRegistry& operator=(const ContainerRegistry&) = delete;

  // Where the containers' events go (create, start, kill, oom, die, stop, destroy); may be null.
  void set_events(EventBus* bus) { events_ = bus; }
  // What wires containers to volumes and networks (the daemon's); unset: a container with a
  // WiringSpec is refused at create.
  void set_wiring(ContainerWiring* wiring) { wiring_ = wiring; }

  // Before the loop runs (blocking): reads ROOT/containers. A container an earlier daemon ran
  // is kept as exited (its processes, slot and cgroup are what the sweep removes), unless
  // live_restore adopts it: still running, its output and exit followed as before.
  Result<void> load();
  // The cgroup runs of the containers load() adopted (a sweep keeps them).
  std::set<std::string> adopted_cgroups() const;
  // After load() and set_wiring(), before the loop serves (blocking): the containers load()
  // adopted join their networks again (ContainerWiring::rejoin): their links there went with
  // the earlier daemon's network namespaces. One that cannot goes on without them (logged).
  void rejoin_networks();

  // A record by full id, unique id prefix, or name (with or without a leading '/').
  const ContainerRecord* find(std::string_view ref) const;
  // "No such container: X" when it is not there.
  ContainerRefusal no_such(std::string_view ref) const;
  // Every record, newest first.
  std::vector<const ContainerRecord*> list() const;
  struct Counts {
    size_t total = 0, running = 0, stopped = 0;
  };
  Counts counts() const;
  // ROOT/containers/<id> (its log files).
  std::string dir_of(const std::string& id) const;
  // While it runs: PID 1 and its cgroup; else pid -1.
  LiveInfo live(const std::string& id) const;
  // Its Container while it runs (PID 1 started, not exited yet), for an exec into it; else null.
  Container* running(const std::string& id) const;
  // The engine its containers run on (an exec's ExecProcess needs it).
  Engine& engine() { return *engine_; }
  // The state of its health checks (a container created with one that has started); else null.
  const HealthState* health(const std::string& id) const { return health_->state(id); }

  void create(CreateRequest request, std::function<void(Result<std::string>, std::optional<ContainerRefusal>)> done);
  void start(const std::string& id, Done done);
  // SIGTERM (or `sig`), then SIGKILL after `grace` (none: wait); done once it has exited.
  void stop(const std::string& id, std::optional<std::chrono::milliseconds> grace, Done done, int sig = SIGTERM);
  void kill(const std::string& id, int sig, Done done);
  void restart(const std::string& id, std::optional<std::chrono::milliseconds> grace, Done done);
  // Removes a container that does not run (with `force`, kills one that does first); with
  // `volumes`, its anonymous volumes go with it (as they do for an auto-removed one).
  void remove(const std::string& id, bool force, Done done, bool volumes = false);

  // Network membership (container_wiring.h), on the loop thread. `ref`: id, name or prefix.
  // A running container is attached at once, one that does not joins at its next start.
  // done(full id) or a refusal (not_found, conflict: already on it / not on it).
  using NetDone = std::function<void(Result<std::string>, std::optional<ContainerRefusal>)>;
  void join_network(const std::string& ref, NetworkJoin join, NetDone done);
  void leave_network(const std::string& ref, const std::string& network_id, NetDone done);
  // Answers with the exit code once `condition` holds. Returns a token for cancel_wait.
  uint64_t wait(const std::string& id, WaitCondition condition, std::function<void(int exit_code)> done);
  void cancel_wait(uint64_t token);

  // Output as it comes: records of the log (follow), or the raw bytes (attach); `end` when the
  // container exits (or is removed). Returns a token for unsubscribe.
  struct Subscriber {
    std::function<void(const LogRecord&)> record;      // the log's records
    std::function<void(int stream, std::string_view)> bytes;  // raw output
    std::function<void()> end;
  };
  uint64_t subscribe(const std::string& id, Subscriber s);
  // While its log is open (it runs): the bytes written to its `log` file so far, where a
  // reader of the file stops for a subscriber made now (LogQuery::end).
  std::optional<uint64_t> log_position(const std::string& id) const;
  // It runs, or is starting: a subscriber will see output, and its end.
  bool active(const std::string& id) const;
  void unsubscribe(uint64_t token);

  // Its stdin (a container created with open_stdin; container_registry_io.cc). Before it runs,
  // bytes wait (bounded as the Container's queue) and are given to it when it starts. False:
  // the queue is full (or it has no stdin and they were dropped): wait for the `drained` of a
  // watch_stdin. close_stdin is its end-of-file (a terminal's ^D).
  bool write_stdin(const std::string& id, std::string_view data);
  void close_stdin(const std::string& id);
  uint64_t watch_stdin(const std::string& id, std::function<void()> drained);
  void unwatch_stdin(const std::string& id, uint64_t token);
  // The terminal's size: 404 when missing, 409 when it does not run; nothing to do without a
  // terminal (as Docker's containerd, which ignores it).
  std::optional<ContainerRefusal> resize(const std::string& id, sandbox::TtySize size);
  // While it runs: its files as the host reaches them (its root as PID 1 sees it, its user
  // namespace's ids), for docker cp (container_files.h). 409 when it does not run.
  std::optional<ContainerRefusal> files(const std::string& id, ContainerFiles& out);
  // While it does not run: a tar (already at new_archive_path(id), which the caller wrote) to
  // extract into `dir` at each of its starts, before its command runs (docker cp into a
  // created container; kept while the daemon runs).
  std::string new_archive_path(const std::string& id);
  std::optional<ContainerRefusal> add_archive(const std::string& id, std::string file, std::string dir, bool copy_owners);

  // Stops every running container (SIGTERM, then SIGKILL after shutdown_grace) and tears
  // them down; `done` once nothing runs. Creations and starts are refused from then on. With
  // live_restore the running containers are left running instead (their records say so).
  void shutdown(std::function<void()> done);
  // After the loop has ended (blocking): removes this daemon's cgroup subtree.
  void release_host();

 private:
  struct Entry;
  Entry* entry(const std::string& id) const;
  // Takes a place in the budget (now, or once one is released), then launches.
  void admit(Entry& e);
  void launch(Entry& e);
  // A start still waiting for its turn is given up (stop, kill, rm -f, shutdown).
  void give_up_queued(Entry& e);
  void release_place(Entry& e);
  Container::Hooks hooks_for(Entry& e);
  // Live restore (container_restore.cc): adopt one at load (false: it could not be), let one
  // go on at shutdown (false: it cannot outlive us, it is stopped instead).
  bool restore(Entry& e);
  bool detach(Entry& e);
  static ContainerRecord::Live live_state_of(const Container& c);
  void on_running(Entry& e);
  void on_exited(Entry& e);
  void on_removed(Entry& e);
  // container_registry_net.cc: the wiring's steps of a create (threadpool), a start (loop:
  // its namespace, /etc/hosts, tmpfs mounts and published ports), an exit (then `then`).
  Result<void> wire_create(ContainerRecord& rec, std::optional<ContainerRefusal>& refusal);
  Result<void> wire_start(Entry& e, ContainerStart& start);
  void unwire(Entry& e, std::function<void()> then);
  void after_teardown(Entry& e, std::function<void()> f);
  void finish_stop(Entry& e);
  void erase(Entry& e, Done done);
  // Writes the record (on the threadpool, one write at a time); `then` once it is on disk.
  void save(Entry& e, std::function<void()> then = nullptr);
  void answer_waiters(Entry& e, bool removed);
  void check_shutdown();
  void give_pending_stdin(Entry& e);
  void stdin_drained(Entry& e);
  std::function<Result<void>(const sandbox::ContainerPlan&, const sandbox::Placement&)> archives_applier(Entry& e);
  void publish(const Entry& e, std::string action, std::map<std::string, std::string> extra = {});
  static void on_kill_timer(uv_timer_t* t);
  static void on_reap(uv_timer_t* t);

  Loop& loop_;
  cache::Store store_;
  Options options_;
  std::unique_ptr<HostIsolation> isolation_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<HealthMonitor> health_;
  std::map<std::string, std::unique_ptr<Entry>> entries_;  // by id
  std::set<std::string> reserved_names_;                    // of creations under way
  std::map<uint64_t, std::string> waits_, subs_;            // token -> container id
  uint64_t next_token_ = 1;
  std::vector<std::unique_ptr<Container>> graveyard_;       // removed, freed by reaper_
  std::vector<BlockingCall> creating_;
  StartBudget budget_;
  UvHandle<uv_timer_t> reaper_;
  EventBus* events_ = nullptr;
  ContainerWiring* wiring_ = nullptr;
  bool shutting_down_ = false;
  std::function<void()> shutdown_done_;
};

}  // namespace sandrun::runner
