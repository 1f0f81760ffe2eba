// The commands of the sandrun CLI, callable without it (tests use them directly too).
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace sandrun::runner {

// Exit statuses of `sandrun run` and the other commands.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;   // a job failed, or a command could not do its work
inline constexpr int kExitUsage = 2;    // bad flags, a bad job file, an image that is not there

struct GlobalOptions {
  std::string host;  // --host unix:///PATH: the daemon `ps`, `logs`, `stop`, `rm` talk to (else SANDRUN_HOST, else the default socket)
  std::string root;  // state dir and image cache; default cache::default_root()
  std::string config;  // --config FILE: the operator's host file; default /etc/sandrun/sandrun.toml if present
  // Where images are pulled from (run, exec and image pull take these flags).
  std::vector<std::string> insecure_registries;  // --insecure-registry HOST[:PORT]: plain HTTP
  std::string auth_file;                         // --auth-file: Docker config.json credentials
  std::string registry_ca;                       // --registry-ca FILE: CA certificates for HTTPS
  std::string platform;                          // --platform OS/ARCH[/VARIANT]
};

struct RunArgs {
  std::string file;
  std::vector<std::string> jobs;  // JOB...: run only these (and what they need)
  std::vector<std::string> only;  // --only PATTERN (repeatable): jobs whose name matches
  std::string shard;              // --shard I/N
  std::string parallel = "auto";  // -j N or auto: the CPUs and the host's available memory
  std::string out;      // default: .sandrun/ next to the job file
  bool print_spec = false;  // --print-spec: print each job's resolved spec instead of running
  std::string format = "text";    // --format text|json (json: one event per line on stdout)
  std::string progress = "auto";  // --progress auto|tty|plain
  bool quiet = false;             // --quiet: only failures and the summary
  std::string junit;              // --junit FILE: a JUnit XML report
  bool fail_fast = false;         // --fail-fast: as fail_fast = true in the file
};

struct ExecArgs {
  std::string image = "busybox";
  std::string name = "exec";
  std::vector<std::string> env;      // NAME=value
  std::vector<std::string> volumes;  // host:container[:ro]
  std::string workdir;
  std::string timeout;
  std::string user;
  std::string memory;
  std::string disk;         // --disk SIZE
  std::string disk_inodes;  // --disk-inodes N
  std::string cpus;
  std::string pids;
  std::string network = "none";
  std::vector<std::string> publish;  // -p [IP:]HOST:CONTAINER (repeatable)
  bool no_init = false;
  std::string cpuset;                      // --cpuset-cpus "0-1,3"
  std::vector<std::string> cap_add;        // --cap-add NAME (repeatable)
  std::vector<std::string> cap_drop;       // --cap-drop NAME (repeatable)
  std::vector<std::string> security_opts;  // --security-opt seccomp=... / no-new-privileges=...
  bool read_only = false;                  // --read-only: read-only root filesystem
  std::vector<std::string> ulimits;        // --ulimit nofile=SOFT[:HARD] (repeatable, last wins)
  std::optional<bool> userns;              // --userns[=true|false]: user namespace mapping; unset: sandrun decides
  bool dry_run = false;                    // --dry-run: print the resolved spec instead of running
  std::vector<std::string> command;  // empty: the image's entrypoint and cmd
};

int cmd_run(const GlobalOptions& g, const RunArgs& a);
// Runs one container like `docker run --rm`: its output passes straight through and sandrun
// exits with its status (128+N for a signal, 124 timed out, 125 sandrun failed, 126 cannot
// execute, 127 not found).
int cmd_exec(const GlobalOptions& g, const ExecArgs& a);
struct ImportArgs {
  std::string file;
  std::string name;
  bool rootfs = false;
  std::string platform;
};
int cmd_image_import(const GlobalOptions& g, const ImportArgs& a);
int cmd_image_ls(const GlobalOptions& g);

// The daemon's containers (`sandrun serve`), through its socket (runner/cli/cmd_client.cc).
int cmd_ps(const GlobalOptions& g, bool all);
struct LogsArgs {
  std::string name;
  bool follow = false;      // -f
  bool timestamps = false;  // -t
  std::string tail;         // --tail N|all
  std::string since;        // --since TIMESTAMP|DURATION (as the daemon takes it)
};
int cmd_logs(const GlobalOptions& g, const LogsArgs& a);
struct StopArgs {
  std::vector<std::string> names;
  bool remove = false;  // rm instead of stop
  bool force = false;   // rm -f: a running container too
  std::string time;     // stop -t SECONDS
};
int cmd_stop(const GlobalOptions& g, const StopArgs& a);
int cmd_image_rm(const GlobalOptions& g, const std::vector<std::string>& refs);
int cmd_image_inspect(const GlobalOptions& g, const std::vector<std::string>& refs);
int cmd_image_pull(const GlobalOptions& g, const std::vector<std::string>& refs);
int cmd_image_tag(const GlobalOptions& g, const std::string& src, const std::string& dst);
struct SaveArgs {
  std::string name;
  std::string out;
  bool zstd = false;
};
int cmd_image_save(const GlobalOptions& g, const SaveArgs& a);
int cmd_image_verify(const GlobalOptions& g, const std::vector<std::string>& refs);
struct PruneArgs {
  bool all = false;
  std::string max_size;  // "" = no size cap
};
int cmd_image_prune(const GlobalOptions& g, const PruneArgs& a);
int cmd_cleanup(const GlobalOptions& g);
struct ServeArgs {
  std::string socket;  // --socket PATH; "" = /run/sandrun/sandrun.sock (root), $XDG_RUNTIME_DIR/sandrun/sandrun.sock
  std::string group;   // --group NAME: socket 0660 with this group; "" = 0600
  std::string network_pool;  // --network-pool CIDR: the subnets of networks; "" = 10.89.0.0/16
  int network_prefix = 24;   // --network-prefix N: the prefix length of each network's subnet
  size_t jobs = 0;           // -j N: containers running at once; 0 = no limit
  bool live_restore = false;  // --live-restore: containers outlive the daemon, the next adopts them
};
// The Engine API daemon on a Unix socket, until SIGTERM or SIGINT (docs/api.md).
int cmd_serve(const GlobalOptions& g, const ServeArgs& a);
int cmd_version();
// Checks what this kernel and host offer sandrun; `format` is "text" or "json". Exits 1 when
// something sandrun's defaults need is missing for the current user.
int cmd_doctor(const GlobalOptions& g, const std::string& format);

// Parses argv and runs the command.
int cli_main(int argc, char** argv);

}  // namespace sandrun::runner
