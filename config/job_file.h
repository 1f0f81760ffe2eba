// The TOML job file as plain structs: what the user wrote, validated, with positions for errors.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sandbox/sys/result.h"

namespace sandrun::config {

// Where something was written: rendered "jobs.toml:4:9" (or just "jobs.toml" when unknown).
struct SourcePos {
  std::string file;
  int line = 0;
  int column = 0;
  std::string str() const;
};

// A name as the user wrote it (a needed job, a capability) and where: one per element of the
// key's array. `pos` has no file when the name came from a flag (`sandrun exec --cap-add`).
struct Named {
  std::string name;
  SourcePos pos;
};
// The names alone, in order.
std::vector<std::string> names_of(const std::vector<Named>& named);

// The pids limit the runner applies when a job sets none: a fork bomb stops there.
inline constexpr uint64_t kDefaultPids = 1024;

// Resource limits as written. Parsed and validated here; enforced by the sandbox's cgroups.
// Whether the host can grant them is checked by the runner.
struct Limits {
  std::optional<uint64_t> memory;     // bytes, >= 4 MiB
  std::optional<double> cpus;         // > 0, e.g. 1.5 = 150% of one core
  std::optional<std::string> cpuset;  // "0-1,3" as written; syntax checked (parse_cpuset)
  std::optional<uint64_t> pids;       // >= 1; unset: the runner applies kDefaultPids
  // The container's writable file systems (its root's writable layer, an overlay workspace's
  // upper dir): bytes (>= kMinDisk) and files (inodes, >= 1). Unset: the runner's defaults
  // (kDefaultDisk, kDefaultDiskInodes, bounded by what the state dir has free).
  std::optional<uint64_t> disk;
  std::optional<uint64_t> disk_inodes;
};

// A host directory mounted into the container ("host:container[:ro]").
struct VolumeSpec {
  std::string source;  // absolute host path (relative ones resolve against the job file's dir)
  std::string target;  // absolute container path
  bool readonly = false;
};

// none: the job's own network namespace with only loopback (the default); private: the same,
// shared with the job's services, with outbound access through a userspace network stack
// (pasta or slirp4netns) when one is installed; host: the host's network (explicit opt-in).
enum class Network { none, private_, host };

// A published port: host_ip:host_port on the host forwards (a TCP proxy in sandrun's loop) to
// container_port on the container's loopback. "8080:80" is 0.0.0.0:8080 -> 80 (Docker's
// default address); "127.0.0.1:0:5432" lets the kernel pick a free host port, reported once
// the job runs.
struct PortSpec {
  std::string host_ip = "0.0.0.0";  // an IPv4 or IPv6 address, as written (without [])
  uint16_t host_port = 0;           // 0: any free port
  uint16_t container_port = 0;      // 1..65535
  SourcePos pos;                    // where it was written (no file for `exec -p`)
  std::string text;                 // as written, for messages
};

// When a service is ready: `run` (a shell command) or `command` (an argv) run in a fresh
// container of the service's image in the job's network namespace every `interval` until it
// exits 0; the service fails when `timeout` passes first.
struct ReadyCheck {
  std::vector<std::string> command;  // `run = "..."` becomes {"/bin/sh", "-c", "..."}
  std::chrono::milliseconds interval{1000};
  std::chrono::milliseconds timeout{60'000};
  SourcePos pos;
};

struct ServiceSpec;  // below: a job's service is a JobSpec plus its ready check
// When a job's image is pulled from its registry: never (it must be in the cache), when it is
// missing (the default), or before every run (one pull per run, shared by its jobs).
enum class PullPolicy { never, missing, always };

// How the workspace is mounted at /workspace: read-write, read-only, or a private
// copy-on-write view (an overlay on the host checkout: the host tree is never modified).
enum class WorkspaceMode { rw, ro, overlay };

// When a job's artifacts are collected (GitHub's `if: always()` is the default).
enum class ArtifactsWhen { always, on_failure, on_success };

// The default cap of one job's collected artifacts (artifacts_max_size).
inline constexpr uint64_t kDefaultArtifactsMaxSize = uint64_t{1} << 30;
// The default and largest cap of the number of entries one job's artifacts hold
// (artifacts_max_files): regular files, symlinks and directories each count one.
inline constexpr uint64_t kDefaultArtifactsMaxFiles = 10'000;
inline constexpr uint64_t kMaxArtifactsMaxFiles = 10'000'000;

struct Artifacts {
  // Container paths or globs as written ("build/*.log", "test-results/**/*.xml", "/tmp/x.txt");
  // relative ones are relative to the job's working directory. `*`, `?` and `[...]` match
  // within one path component, `**` any number of components.
  std::vector<std::string> patterns;
  bool archive = false;                  // one <job>.tar.zst instead of a directory tree
  ArtifactsWhen when = ArtifactsWhen::always;
  uint64_t max_size = kDefaultArtifactsMaxSize;  // bytes, per job
  uint64_t max_files = kDefaultArtifactsMaxFiles;  // entries, per job
};

struct JobSpec {
  std::string name;                    // with a matrix: "unit (cc=gcc, opt=-O2)"
  SourcePos pos;                       // of the job's table header
  std::string base_name;               // the [jobs.NAME] it came from (== name without a matrix)
  // This combination's matrix values, in the order the matrix keys were written; empty
  // without a matrix. config also sets each as the env var MATRIX_<KEY> (upper case, non
  // alphanumerics as _): MATRIX_CC=gcc.
  std::vector<std::pair<std::string, std::string>> matrix;
  // The expanded names of the jobs this one needs (a need on a matrix job is a need on each of
  // its combinations), each with where it was written.
  std::vector<Named> needs;
  unsigned retries = 0;                // extra attempts after a failure, each in a fresh container
  bool allow_failure = false;          // a failure is reported but does not fail the run or its dependants
  std::string image = "busybox";       // as written; the cache normalises it
  SourcePos image_pos;                 // of the image value; the job's pos when not set
  std::vector<std::string> command;    // argv; `run = "..."` becomes {"/bin/sh", "-c", "..."}
  std::vector<std::pair<std::string, std::string>> env;  // [defaults] first, job overrides; no duplicates
  std::optional<std::string> workdir;  // absolute container path
  std::optional<std::string> workspace;  // absolute host path, mounted at /workspace
  WorkspaceMode workspace_mode = WorkspaceMode::rw;
  // Named cache volumes, as written: container paths ("~/.cache/pip": `~` is the home of the
  // job's user) kept under the state dir between runs.
  std::vector<std::string> caches;
  Artifacts artifacts;
  // Globs (among the collected artifacts, relative to the job's artifact dir) of JUnit XML
  // files the job produces, merged into the run's --junit report.
  std::vector<std::string> junit;
  // [jobs.NAME.services.SERVICE]: started before the job, in parallel, each in its own sandbox
  // in the job's network namespace; the job starts when all are ready. In the order written.
  std::vector<ServiceSpec> services;
  // Published ports of the job's container. No two of a job and its services take the same
  // host address and port (host port 0 never clashes); none with network = host.
  std::vector<PortSpec> ports;
  std::vector<VolumeSpec> volumes;
  std::optional<std::chrono::milliseconds> timeout;
  Limits limits;
  // RLIMIT_NOFILE {soft, hard}: 1 <= soft <= hard <= kMaxNofile; unset: inherited from sandrun.
  std::optional<std::pair<uint64_t, uint64_t>> nofile;
  // The bound of the job's log file in bytes (kMinLogMax or more); unset: the host's default,
  // else kDefaultLogMax. Past it the log keeps its head, a marker and its last bytes.
  std::optional<uint64_t> log_max;
  std::optional<std::string> user;     // "uid[:gid]" or "name[:group]" looked up in the image
  Network network = Network::none;
  PullPolicy pull = PullPolicy::missing;
  bool init = true;                    // sandrun's init is PID 1 (reaps, forwards signals)
  // Hardening. The defaults are Docker's: its seccomp profile and 14 capabilities.
  std::string seccomp = "default";     // "default", "unconfined" or an absolute profile path
  // Capability names as written ("NET_ADMIN", "ALL"), non-empty; the runner checks them
  // against its table. Each with where it was written (a SourcePos without a file for
  // `sandrun exec` flags).
  std::vector<Named> cap_add;
  std::vector<Named> cap_drop;
  bool no_new_privs = true;            // PR_SET_NO_NEW_PRIVS before exec
  bool read_only_rootfs = false;       // the container's / is mounted read-only
  std::optional<bool> userns;          // user namespace mapping; unset: the runner decides
  // Where the value of each key set for the job was written (the [defaults] one when
  // inherited; "run" or "command" for the command), for errors found later, e.g.
  // key_pos["workspace"] when the directory does not exist. Keys left unset have no entry.
  std::map<std::string, SourcePos> key_pos;
  SourcePos where(const std::string& key) const;  // key_pos[key], else pos
};

// A service of a job: a container spec like a job's (image, command or run, env, workdir, user,
// limits, hardening, ports; its `name` is the service's name, e.g. "redis", which is also its
// host name in the job's /etc/hosts) and when it is ready. In `spec`: `base_name` is the
// (expanded) name of its job, `network` the job's, `pos` its table's and `key_pos` point into
// it; an empty `command` runs the image's. Nothing is inherited from [defaults]; the image is
// required. Names are DNS labels (^[A-Za-z0-9][A-Za-z0-9-]*$, at most 63), unique in the job
// regardless of case.
struct ServiceSpec {
  JobSpec spec;
  std::optional<ReadyCheck> ready;  // none: ready as soon as it started
};

struct JobFile {
  std::string path;               // as given
  std::string dir;                // absolute directory holding the file
  std::vector<JobSpec> jobs;      // in file order
  // [cache] max_size: after the run's images are in the cache, the least recently used other
  // images are removed until the cache is below this many bytes. Unset: no cap.
  std::optional<uint64_t> cache_max_size;
  bool fail_fast = false;         // the first failure cancels the rest of the run
};

// Which of the expanded jobs a run takes (sandrun run FILE [JOB...] [--only PATTERN] [--shard I/N]).
struct Selection {
  std::vector<std::string> names;  // a job's name, or a matrix job's base name (all its combinations)
  std::vector<std::string> only;   // glob patterns (fnmatch) over the expanded names
  unsigned shard_index = 0;        // 1-based; 0 = no sharding
  unsigned shard_count = 0;
};
// The jobs of `file` a selection takes, in file order, with the jobs they need. Jobs joined by
// `needs` stay in one shard; shards 1..N of a file are disjoint and cover every job. An
// unknown name is an error that lists the known ones.
Result<std::vector<JobSpec>> select_jobs(const JobFile& file, const Selection& selection);
// "2/5" -> {2, 5}; 1 <= I <= N.
Result<std::pair<unsigned, unsigned>> parse_shard(std::string_view text);

// The default cap of a job file's size; the host file's [policy] max_job_file sets another.
inline constexpr uint64_t kDefaultMaxJobFile = uint64_t{4} << 20;

// Reads and validates a job file. Every error names file:line:column and what was expected.
// A file (or pipe) larger than `max_bytes` is refused before it is parsed, having read at most
// `max_bytes` + 1 bytes of it: parsing takes several times a file's size in memory.
Result<JobFile> load_job_file(const std::string& path, uint64_t max_bytes = kDefaultMaxJobFile);
// The same from text; `path` is used in messages, `base_dir` resolves relative host paths.
Result<JobFile> parse_job_file(std::string_view text, const std::string& path,
                               const std::string& base_dir);

// Value syntaxes shared by the job file and the command line flags. Errors say what was
// expected (`invalid duration "ten": expected a number and a unit (ms, s, m, h) like "90s" or
// "10m"`) without a position; callers add it. Durations are > 0 and at most 365 days.
Result<std::chrono::milliseconds> parse_duration(std::string_view text);  // 500ms 90s 10m 1h30m 1.5s
Result<uint64_t> parse_size(std::string_view text);  // 512MiB 1GiB 64k 1.5G 1048576 (bytes)
// The smallest memory limit accepted: below it not even a shell starts.
inline constexpr uint64_t kMinMemory = uint64_t{4} << 20;
inline constexpr uint64_t kDefaultLogMax = uint64_t{1} << 30;  // log_max unset
inline constexpr uint64_t kMinLogMax = uint64_t{64} << 10;
Result<void> check_memory(uint64_t bytes);           // "4 KiB is below the minimum of 4 MiB"
Result<uint64_t> parse_memory(std::string_view text);  // parse_size + check_memory
// The disk limit (Limits::disk): its default, and the smallest accepted (an ext4 file system
// smaller than that holds little more than its own metadata).
inline constexpr uint64_t kDefaultDisk = uint64_t{8} << 30;
inline constexpr uint64_t kDefaultDiskInodes = 1'000'000;
inline constexpr uint64_t kMinDisk = uint64_t{16} << 20;
// The most inodes a disk of `bytes` holds: one per 2 KiB (its inode tables then take an
// eighth of it). The default inode limit is also bounded by one per 4 KiB.
inline constexpr uint64_t max_disk_inodes(uint64_t bytes) { return bytes / 2048; }
Result<void> check_disk(uint64_t bytes);             // "1 MiB is below the minimum of 16 MiB"
Result<uint64_t> parse_disk(std::string_view text);  // parse_size + check_disk
Result<double> parse_cpus(std::string_view text);    // 0.5 2 1.5
// HOST:CONTAINER[:ro|:rw]; a relative HOST resolves against base_dir (the cwd when empty).
Result<VolumeSpec> parse_volume(std::string_view text, const std::string& base_dir);
Result<std::pair<std::string, std::string>> parse_env(std::string_view text);  // NAME=value
Result<void> check_env_name(std::string_view name);  // non-empty, no '=', no NUL
Result<Network> parse_network(std::string_view text);  // "none" "private" "host"
// [IP:]HOST_PORT:CONTAINER_PORT or CONTAINER_PORT (any free host port), optionally with
// "/tcp" ("/udp" is refused: only TCP is published); IPv6 addresses in brackets:
// "[::1]:8080:80". `pos` is left for the caller. Errors: `invalid port "8080:99999": container
// port must be 1-65535`.
Result<PortSpec> parse_port(std::string_view text);
Result<PullPolicy> parse_pull_policy(std::string_view text);
Result<void> check_job_name(std::string_view name);
Result<void> check_user(std::string_view user);  // USER[:GROUP], names or numbers
// CPU numbers and ranges, "0-3" "0,2,4-7", no spaces, each CPU < kMaxCpus: the CPUs, sorted,
// without duplicates. Whether the host has them is the runner's check.
inline constexpr unsigned kMaxCpus = 1024;
// cpus = N: the kernel refuses a CFS quota under 1ms per 100ms period (cpus < 0.01); more than
// kMaxCpus is refused too (the cpuset's bound, far below the kernel's quota ceiling).
inline constexpr double kMinCpus = 0.01;
Result<void> check_cpus(double cpus, std::string_view shown);
// pids = N: pids.max takes at most PID_MAX_LIMIT (4194304, 2^22); more is EINVAL at setup.
inline constexpr uint64_t kMaxPids = uint64_t{1} << 22;
Result<void> check_pids(uint64_t pids, std::string_view shown);
Result<std::vector<unsigned>> parse_cpuset(std::string_view text);
// SOFT[:HARD] numbers of open files ("4096" sets both); see check_nofile. The maximum is the
// kernel's ceiling of fs.nr_open (INT_MAX rounded down to a multiple of 64): setrlimit refuses
// more on every host.
inline constexpr uint64_t kMaxNofile = 2147483584;
Result<std::pair<uint64_t, uint64_t>> parse_nofile(std::string_view text);
// 1 <= soft <= hard <= kMaxNofile; `shown` is the value as written, for the message.
Result<void> check_nofile(uint64_t soft, uint64_t hard, std::string_view shown);
// "default" and "unconfined" as they are; anything else is a profile path, made absolute
// against base_dir (the cwd when empty).
Result<std::string> parse_seccomp(std::string_view text, const std::string& base_dir);
// Non-empty; whether the name exists is the runner's check (it has the capability table).
Result<void> check_capability(std::string_view name);
Result<bool> parse_bool(std::string_view text);  // "true" or "false"

std::string format_duration(std::chrono::milliseconds d);  // "250ms" "1.5s" "1m30s" "10m" "1h30m"
std::string format_size(uint64_t bytes);                    // "512 MiB" "1.5 KiB" "100 B"

}  // namespace sandrun::config
