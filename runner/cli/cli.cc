// The command line: flags (docker's names where the meaning is the same) -> commands.
#include <signal.h>

#include <algorithm>

#include <CLI/CLI.hpp>

#include "runner/cli/commands.h"

namespace sandrun::runner {
namespace {

void add_exec_flags(CLI::App* exec, ExecArgs& a, bool& userns) {
  exec->add_option("--image", a.image, "Image to run (default: the built-in busybox)");
  exec->add_option("--name", a.name, "Name of the container (its hostname)");
  exec->add_option("-e,--env", a.env, "Set an environment variable NAME=value (repeatable)")->allow_extra_args(false);
  exec->add_option("-v,--volume", a.volumes, "Mount a host path: HOST:CONTAINER[:ro|:rw] (repeatable)")->allow_extra_args(false);
  exec->add_option("-w,--workdir", a.workdir, "Working directory inside the container");
  exec->add_option("--timeout", a.timeout, "Kill the container after this long (e.g. 90s, 10m)");
  exec->add_option("-u,--user", a.user, "User to run as: UID[:GID] or NAME[:GROUP] from the image");
  exec->add_option("-m,--memory", a.memory, "Memory limit (e.g. 512MiB)");
  exec->add_option("--disk", a.disk,
                   "Limit of the container's writable layer and overlay workspace (e.g. 2GiB; default 8GiB)");
  exec->add_option("--disk-inodes", a.disk_inodes, "Limit of files in them (default 1000000)");
  exec->add_option("--cpus", a.cpus, "CPU limit in CPUs (e.g. 1.5)");
  exec->add_option("--pids-limit", a.pids, "Maximum number of processes (default 1024)");
  exec->add_option("--network", a.network, "Network: none (loopback only, default), private or host");
  exec->add_option("-p,--publish", a.publish,
                   "Publish a container port on the host: [IP:]HOST_PORT:CONTAINER_PORT, or CONTAINER_PORT "
                   "for any free host port (repeatable)")
      ->allow_extra_args(false);
  exec->add_flag("--no-init", a.no_init, "Run the command as PID 1 instead of under sandrun's init");
  exec->add_option("--cpuset-cpus", a.cpuset, "CPUs the container may use (e.g. 0-1,3)");
  exec->add_option("--cap-add", a.cap_add, "Add a capability, e.g. NET_ADMIN (repeatable)")->allow_extra_args(false);
  exec->add_option("--cap-drop", a.cap_drop, "Drop a capability, or ALL (repeatable)")->allow_extra_args(false);
  exec->add_option("--security-opt", a.security_opts,
                   "seccomp=default|unconfined|PATH or no-new-privileges[=true|false] (repeatable)")
      ->allow_extra_args(false);
  exec->add_flag("--read-only", a.read_only, "Mount the container's root filesystem read-only");
  exec->add_option("--ulimit", a.ulimits, "Open files limit: nofile=SOFT[:HARD] (default: inherited)")
      ->allow_extra_args(false);
  // A flag takes `--userns=false` too; whether it was given at all is read in exec's callback.
  exec->add_flag("--userns", userns,
                 "User namespace: the default as root, on sandrun's own id range; --userns=false: the "
                 "container's root is host root, as in Docker (the operator's policy may forbid it)");
  exec->add_flag("--dry-run", a.dry_run, "Print the resolved container spec instead of running it");
  // Everything from the first non-option argument on is the command (`--` is optional).
  exec->prefix_command();
  exec->footer("Example: sandrun exec -v \"$PWD:/workspace\" -w /workspace -e A=1 -- sh -c 'echo $A; ls'");
}

// Where images are pulled from: for the commands that may pull.
void add_registry_flags(CLI::App* sub, GlobalOptions& g) {
  sub->add_option("--insecure-registry", g.insecure_registries,
                  "Reach this registry (HOST or HOST:PORT) over plain HTTP, e.g. a local one (repeatable)");
  sub->add_option("--auth-file", g.auth_file,
                  "Registry credentials in Docker's config.json format (default: $REGISTRY_AUTH_FILE, "
                  "$DOCKER_CONFIG/config.json, ~/.docker/config.json)");
  sub->add_option("--registry-ca", g.registry_ca, "CA certificates (PEM) for HTTPS registries (default: the system's)");
  sub->add_option("--platform", g.platform, "OS/ARCH[/VARIANT] to pull from a multi-platform image (default: the host's)");
}

}  // namespace

int cli_main(int argc, char** argv) {
  // Writing to a closed pipe (`sandrun run ... | head`) must fail the write, not kill us.
  ::signal(SIGPIPE, SIG_IGN);

  CLI::App app{"sandrun: runs CI and test jobs in fast, disposable, isolated containers"};
  app.name("sandrun");
  app.require_subcommand(1);
  GlobalOptions g;
  app.add_option("--root", g.root, "State directory and image cache (default /var/lib/sandrun as root)");
  app.add_option("--host", g.host,
                 "The daemon ps, logs, stop and rm talk to: unix:///PATH (default $SANDRUN_HOST, else sandrun serve's "
                 "default socket)");
  app.add_option("--config", g.config,
                 "The operator's host file: [policy] and [defaults] (default /etc/sandrun/sandrun.toml when it exists)");
  int result = kExitOk;

  RunArgs run_args;
  auto* run = app.add_subcommand("run", "Run the jobs of a TOML job file");
  run->add_option("file", run_args.file, "The job file")->required();
  run->add_option("job", run_args.jobs, "Run only these jobs (a matrix job's name selects all its combinations), "
                                        "with the jobs they need");
  run->add_option("--only", run_args.only, "Run only the jobs whose name matches this glob (repeatable)")
      ->allow_extra_args(false);
  run->add_option("--shard", run_args.shard, "Run shard I of N (I/N): a stable split of the jobs over N machines");
  run->add_option("-j,--jobs", run_args.parallel,
                  "Containers at once, or auto (default): the CPUs, and the sum of memory limits within the "
                  "host's available memory");
  run->add_flag("--fail-fast", run_args.fail_fast, "Cancel the rest of the run at the first failure");
  run->add_option("--format", run_args.format, "text, or json: one JSON event per line on stdout")
      ->check(CLI::IsMember({"text", "json"}));
  run->add_option("--progress", run_args.progress, "auto, tty (a live status block) or plain (lines)")
      ->check(CLI::IsMember({"auto", "tty", "plain"}));
  run->add_flag("-q,--quiet", run_args.quiet, "Show only failed jobs' output and the summary");
  run->add_option("--junit", run_args.junit, "Write a JUnit XML report to this file");
  run->add_option("--out", run_args.out, "Output directory (default: .sandrun/ next to the job file)");
  run->add_flag("--print-spec", run_args.print_spec, "Print each job's resolved container spec instead of running");
  add_registry_flags(run, g);
  run->callback([&] { result = cmd_run(g, run_args); });

  ExecArgs exec_args;
  auto* exec = app.add_subcommand("exec", "Run one command in a fresh container, like docker run --rm");
  bool exec_userns = false;
  add_exec_flags(exec, exec_args, exec_userns);
  add_registry_flags(exec, g);

  auto* image = app.add_subcommand("image", "Manage the image cache");
  image->require_subcommand(1);
  ImportArgs import_args;
  auto* import = image->add_subcommand(
      "import", "Import an OCI image layout (directory or tar), a docker save archive, or with --rootfs a root file "
                "system tarball (.tar, .tar.gz, .tar.zst, .tar.xz)");
  import->add_option("file", import_args.file, "The layout, archive or tarball")->required();
  import->add_option("name", import_args.name, "Image name[:tag] (required with --rootfs)");
  import->add_flag("--rootfs", import_args.rootfs, "FILE is a root file system tarball: a single-layer image");
  import->add_option("--platform", import_args.platform, "OS/ARCH[/VARIANT] to take from a multi-platform layout");
  import->callback([&] { result = cmd_image_import(g, import_args); });
  auto* ls = image->add_subcommand("ls", "List images");
  ls->callback([&] { result = cmd_image_ls(g); });
  std::vector<std::string> rm_refs;
  auto* rm = image->add_subcommand("rm", "Remove images");
  rm->add_option("names", rm_refs, "Image names")->required();
  rm->callback([&] { result = cmd_image_rm(g, rm_refs); });

  std::vector<std::string> pull_refs;
  auto* pull = image->add_subcommand("pull", "Pull images from their registry (REGISTRY/NAME[:TAG|@sha256:...])");
  pull->add_option("names", pull_refs, "Image references")->required();
  add_registry_flags(pull, g);
  pull->callback([&] { result = cmd_image_pull(g, pull_refs); });
  std::vector<std::string> inspect_refs;
  auto* inspect = image->add_subcommand("inspect", "Print images' records as JSON (digests, layers, config)");
  inspect->add_option("names", inspect_refs, "Image names")->required();
  inspect->callback([&] { result = cmd_image_inspect(g, inspect_refs); });
  std::string tag_src, tag_dst;
  auto* tag = image->add_subcommand("tag", "Give an image another name");
  tag->add_option("source", tag_src, "Image name[:tag]")->required();
  tag->add_option("target", tag_dst, "New name[:tag]")->required();
  tag->callback([&] { result = cmd_image_tag(g, tag_src, tag_dst); });
  SaveArgs save_args;
  auto* save = image->add_subcommand("save", "Write an image as an OCI layout tar (docker load and podman load read it)");
  save->add_option("name", save_args.name, "Image name[:tag]")->required();
  save->add_option("-o,--output", save_args.out, "The tar file to write")->required();
  save->add_flag("--zstd", save_args.zstd, "Recompress the layers with zstd (media type tar+zstd)");
  save->callback([&] { result = cmd_image_save(g, save_args); });
  std::vector<std::string> verify_refs;
  auto* verify = image->add_subcommand("verify", "Check every blob and layer of images (all when none is named)");
  verify->add_option("names", verify_refs, "Image names");
  verify->callback([&] { result = cmd_image_verify(g, verify_refs); });
  PruneArgs prune_args;
  auto* prune = image->add_subcommand("prune", "Remove unused data and untagged images");
  prune->add_flag("-a,--all", prune_args.all, "Also every image no running sandrun uses");
  prune->add_option("--max-size", prune_args.max_size, "Remove the least recently used images until the cache is smaller");
  prune->callback([&] { result = cmd_image_prune(g, prune_args); });

  auto* cleanup = app.add_subcommand("cleanup", "Remove what killed sandrun runs left behind");
  cleanup->callback([&] { result = cmd_cleanup(g); });
  ServeArgs serve_args;
  auto* serve = app.add_subcommand("serve", "Run the daemon: Docker's Engine API on a Unix socket, for docker, "
                                            "docker-py and testcontainers (DOCKER_HOST=unix://SOCKET)");
  serve->add_option("--socket", serve_args.socket,
                    "The socket (default /run/sandrun/sandrun.sock as root, $XDG_RUNTIME_DIR/sandrun/sandrun.sock "
                    "rootless)");
  serve->add_option("--group", serve_args.group,
                    "Let this existing group use the socket (mode 0660); without it only the owner may (0600). "
                    "Access to the socket is root on the host");
  add_registry_flags(serve, g);  // how POST /images/create pulls (127.0.0.0/8 is plain HTTP without a flag)
  serve->add_option("--network-pool", serve_args.network_pool,
                    "The IPv4 range the subnets of networks are taken from (default 10.89.0.0/16); they exist "
                    "only inside sandrun's network namespaces");
  serve->add_option("--network-prefix", serve_args.network_prefix,
                    "The prefix length of each network's subnet taken from the pool (default 24)");
  serve->add_option("-j,--jobs", serve_args.jobs,
                    "At most N containers run at once; a start over it waits for its turn (default: no limit)")
      ->check(CLI::PositiveNumber);
  serve->add_flag("--live-restore", serve_args.live_restore,
                  "Leave the containers running when the daemon stops (SIGTERM, SIGINT, or killed) and adopt "
                  "them at the next start (docs/architecture.md: Live restore)");
  serve->callback([&] { result = cmd_serve(g, serve_args); });
  bool ps_all = false;
  auto* ps_cmd = app.add_subcommand("ps", "List the daemon's containers (sandrun serve; --host or SANDRUN_HOST names it)");
  ps_cmd->add_flag("-a,--all", ps_all, "Also the containers that have exited");
  ps_cmd->callback([&] { result = cmd_ps(g, ps_all); });
  LogsArgs logs_args;
  auto* logs_cmd = app.add_subcommand("logs", "Print a container's output, from the daemon");
  logs_cmd->add_option("CONTAINER", logs_args.name, "Name or ID")->required();
  logs_cmd->add_flag("-f,--follow", logs_args.follow, "Go on printing until the container ends");
  logs_cmd->add_flag("-t,--timestamps", logs_args.timestamps, "Prefix each line with when it was written");
  logs_cmd->add_option("--tail", logs_args.tail, "Only the last N lines (or all)");
  logs_cmd->add_option("--since", logs_args.since, "Only what was written after this time (RFC 3339 or Unix seconds)");
  logs_cmd->callback([&] { result = cmd_logs(g, logs_args); });
  StopArgs stop_args, rm_args;
  auto* stop_cmd = app.add_subcommand("stop", "Stop the daemon's containers (SIGTERM, then SIGKILL after the grace time)");
  stop_cmd->add_option("CONTAINER", stop_args.names, "Names or IDs")->required();
  stop_cmd->add_option("-t,--time", stop_args.time, "Seconds to wait before SIGKILL (default: the container's, 10)");
  stop_cmd->callback([&] { result = cmd_stop(g, stop_args); });
  auto* rm_cmd = app.add_subcommand("rm", "Remove the daemon's containers");
  rm_cmd->add_option("CONTAINER", rm_args.names, "Names or IDs")->required();
  rm_cmd->add_flag("-f,--force", rm_args.force, "Kill and remove a running container");
  rm_cmd->callback([&] {
    rm_args.remove = true;
    result = cmd_stop(g, rm_args);
  });
  auto* version = app.add_subcommand("version", "Print the version");
  version->callback([&] { result = cmd_version(); });
  std::string doctor_format = "text";
  auto* doctor = app.add_subcommand("doctor", "Check what this kernel and host offer sandrun, and how to fix what is missing");
  doctor->add_option("--format", doctor_format, "text or json")->check(CLI::IsMember({"text", "json"}));
  doctor->callback([&] { result = cmd_doctor(g, doctor_format); });

  // `exec [OPTIONS] -- CMD...`: everything after the first "--" is the command, taken before
  // CLI11 sees it (CLI11 would hand arguments after "--" of a subcommand to the parent).
  std::vector<std::string> args(argv + 1, argv + argc);
  std::vector<std::string> after_dashes;
  bool has_dashes = false;
  if (auto e = std::find(args.begin(), args.end(), "exec"); e != args.end()) {
    if (auto d = std::find(e, args.end(), "--"); d != args.end()) {
      after_dashes.assign(d + 1, args.end());
      args.erase(d, args.end());
      has_dashes = true;
    }
  }
  exec->callback([&] {
    exec_args.command = has_dashes ? after_dashes : exec->remaining();
    if (exec->count("--userns") > 0) exec_args.userns = exec_userns;
    result = cmd_exec(g, exec_args);
  });
  std::reverse(args.begin(), args.end());  // CLI11 parses a reversed vector

  try {
    app.parse(args);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitUsage;
  }
  return result;
}

}  // namespace sandrun::runner
