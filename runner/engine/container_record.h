// What the daemon keeps of one long-lived container (ROOT/containers/<id>/record.json): its
// identity, what it runs (a JobSpec), and its life so far. Values and their files only: the
// live side is container_registry.h. Docker-agnostic: a front door keeps its own words in
// `client` (the Engine API: Docker's Config and HostConfig as sent).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "config/job_file.h"
#include "runner/engine/health_check.h"
#include "runner/engine/container_wiring.h"
#include "runner/engine/plan.h"
#include "sandbox/sys/result.h"

namespace sandrun::runner {

enum class ContainerStatus { created, running, exited, removing };
std::string_view status_name(ContainerStatus s);

struct ContainerRecord {
  std::string id;    // 64 lower-case hex digits, random
  std::string name;  // without a leading '/'
  std::map<std::string, std::string> labels;
  config::JobSpec spec;    // what runs: image, command, env, limits, hardening, binds
  std::string image_id;    // "sha256:..." of the image when it was created
  std::string client;      // a front door's own description (JSON text), kept as given
  bool auto_remove = false;  // removed once it exits
  // Its stdin and terminal (Docker's OpenStdin, StdinOnce, Tty): a stdin pipe the front door
  // writes (ContainerRegistry::write_stdin); closed when the first attachment that wrote it
  // ends (stdin_once); a terminal as its stdin, stdout and stderr (one stream, as stdout).
  bool open_stdin = false;
  bool stdin_once = false;
  bool tty = false;
  int64_t created_ns = 0;    // CLOCK_REALTIME
  int64_t started_ns = 0;    // 0: never started
  int64_t finished_ns = 0;   // 0: not finished since its last start
  ContainerStatus status = ContainerStatus::created;
  int exit_code = 0;
  bool oom_killed = false;
  std::string error;         // why it could not start (or run), "" when it did
  int pid = 0;               // PID 1 on the host while running
  unsigned restarts = 0;
  std::optional<HealthCheck> health;  // its health check, run while it runs (health.h)
  WiringSpec wiring;                 // its volumes, tmpfs mounts, networks (container_wiring.h)
  std::vector<LiveEndpoint> endpoints;  // while it runs: where it is on its networks (not kept)
  std::vector<PublishedPort> ports;  // while it runs: its published ports (kept for a live restore)
  // While it runs, what a daemon with --live-restore needs to adopt it after a restart
  // (container_adopt.h): PID 1's start time (/proc/PID/stat field 22: the pid is that process,
  // not a reused number), its container slot, and its cgroup relative to sandrun/ ("" none).
  struct Live {
    uint64_t pid_start = 0;  // 0: it cannot be adopted (started without --live-restore)
    std::string slot;
    std::string cgroup;
  } live;
};

// A fresh random container id (64 hex digits, from getrandom).
std::string new_container_id();
// Docker's rule for names: [a-zA-Z0-9][a-zA-Z0-9_.-]+ (at least two characters).
bool valid_container_name(std::string_view name);
// A name made from an id for a container created without one ("sandrun_" + 12 hex digits).
std::string default_container_name(std::string_view id);
// CLOCK_REALTIME in nanoseconds.
int64_t now_ns();

// The record as JSON text and back (the JobSpec's keys a container uses).
std::string record_to_json(const ContainerRecord& r);
Result<ContainerRecord> container_record_from_json(std::string_view text, const std::string& what);

// ROOT/containers/<id>/record.json, written atomically (temp file, fsync, rename). Blocking.
Result<void> save_record(const std::string& dir, const ContainerRecord& r);
Result<ContainerRecord> load_record(const std::string& dir);

}  // namespace sandrun::runner
