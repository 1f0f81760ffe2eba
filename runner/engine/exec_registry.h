// ExecRegistry: the daemon's execs (Docker's `exec create`, `exec start`, `exec inspect`), on
// its loop. Each belongs to one container of the ContainerRegistry and lives as
//
//   created --start (the container runs)--> running --(its process ends)--> exited
//      |                                          (start refused: exited at once, exit -1)
//      +-- kept, as exited ones are, for inspect until its container is removed (as Docker).
//
// Docker-agnostic: the Engine API (runner/api/exec_routes.cc) translates. The process is an
// ExecProcess (exec_process.h) into the container's running Container.
#pragma once

#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "runner/engine/container_registry.h"
#include "runner/engine/event_bus.h"
#include "runner/engine/exec_process.h"
#include "runner/loop/uv_handle.h"

namespace sandrun::runner {

class ExecRegistry {
 public:
  enum class State { created, running, exited };

  // What a client asked for besides the process (kept for inspect).
  struct Attach {
    bool stdin_ = false, stdout_ = true, stderr_ = true;
  };

  struct Exec {
    std::string id;            // 64 hex digits
    std::string container_id;
    ExecRequest request;
    Attach attach;
    State state = State::created;
    pid_t pid = 0;                  // on the host, once it runs
    std::optional<int> exit_code;   // once exited (Docker's: 126/127, 128+signal, -1 never ran)
    std::string error;              // why it could not start or execute, "" when it did
  };

  // Who follows a started exec: its output as it comes, and its end (exit_code set).
  struct Follower {
    std::function<void(int stream, std::string_view data)> output;
    std::function<void()> exited;
    std::function<void()> stdin_drained;  // after ExecProcess::write_stdin returned false
  };

  // `events` may be null; else the registry publishes exec_create, exec_start and exec_die
  // (Docker's container events) and follows the containers' destroy events to forget their
  // execs.
  ExecRegistry(Loop& loop, ContainerRegistry& containers, EventBus* events);
  ~ExecRegistry();
  ExecRegistry(const ExecRegistry&) = delete;
  ExecRegistry& operator=(const ExecRegistry&) = delete;

  // A new exec in container `ref` (id, prefix or name): its id, or not_found / conflict (it
  // does not run) / invalid (no command).
  std::variant<std::string, ContainerRefusal> create(std::string_view ref, ExecRequest request, Attach attach);
  // Starts it; `follower` gets its output and end. A refusal: not_found, conflict (already
  // started, or its container no longer runs).
  std::optional<ContainerRefusal> start(const std::string& id, Follower follower);
  // Stops following (the client went): its output is read and dropped from then on.
  void unfollow(const std::string& id);
  // Its terminal's size: at once once it runs, else when it does. An error when it has no
  // terminal, or has ended.
  Result<void> resize(const std::string& id, sandbox::TtySize size);
  // Its process while it runs (stdin, backpressure); else null.
  ExecProcess* process(const std::string& id);

  const Exec* find(const std::string& id) const;
  // The ids of a container's execs, oldest first.
  std::vector<std::string> of_container(const std::string& container_id) const;
  size_t size() const { return execs_.size(); }

 private:
  struct Entry;
  void on_exited(Entry& e);
  void forget_container(const std::string& container_id);
  void publish(const Exec& x, std::string action, std::map<std::string, std::string> extra = {});
  static void on_reap(uv_timer_t* t);

  Loop& loop_;
  ContainerRegistry& containers_;
  EventBus* events_;
  uint64_t bus_token_ = 0;
  uint64_t next_seq_ = 1;
  std::map<std::string, std::unique_ptr<Entry>> execs_;    // by id
  std::vector<std::unique_ptr<ExecProcess>> graveyard_;    // ended, freed by reaper_
  UvHandle<uv_timer_t> reaper_;
};

// The command as Docker's events show it: the arguments joined by spaces.
std::string exec_command_text(const std::vector<std::string>& argv);

}  // namespace sandrun::runner
