// `sandrun run FILE` and `sandrun exec ... -- CMD`.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <thread>

#include "runner/cli/commands.h"
#include "runner/net/address.h"
#include "runner/report/print_spec.h"
#include "runner/report/run_report.h"
#include "runner/cli/common.h"
#include "runner/engine/session.h"
#include "runner/engine/sweep.h"
#include "runner/report/summary.h"
#include "sandbox/sys/fs.h"
#include "sandbox/sys/log.h"

namespace sandrun::runner {
namespace {

bool console_colors() {
  const char* term = std::getenv("TERM");
  return ::isatty(STDOUT_FILENO) && !std::getenv("NO_COLOR") && !(term && std::string(term) == "dumb");
}

size_t cpu_count() {
  cpu_set_t set;
  if (::sched_getaffinity(0, sizeof set, &set) == 0) return static_cast<size_t>(CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

int exit_status_for(const Outcome& o) {
  if (o.interrupted_by) return 128 + o.interrupted_by;
  for (const auto& r : o.results) {
    if (!r.counts_as_passed()) return kExitFailed;
  }
  return kExitOk;
}

// MemAvailable of /proc/meminfo in bytes, 0 when unknown.
uint64_t available_memory() {
  auto text = fs::read_file("/proc/meminfo");
  if (!text) return 0;
  auto pos = text->find("MemAvailable:");
  if (pos == std::string::npos) return 0;
  return std::strtoull(text->c_str() + pos + 13, nullptr, 10) * 1024;
}

// -j: a number of containers, or auto (the CPUs, and memory admission against the host's
// available memory; a job that asks for more than that can never start and is refused now).
Result<void> admission(const std::string& flag, const std::vector<JobPlan>& plans, RunOptions& opts) {
  if (flag != "auto") {
    size_t n = 0;
    auto [p, ec] = std::from_chars(flag.data(), flag.data() + flag.size(), n);
    if (ec != std::errc() || p != flag.data() + flag.size() || n == 0)
      return Error::msg("-j: expected a number of containers of at least 1, or auto, got {:?}", flag);
    opts.parallel = n;
    return {};
  }
  opts.parallel = cpu_count();
  opts.memory_budget = available_memory();
  if (opts.memory_budget == 0) return {};
  for (const auto& plan : plans) {
    if (plan.spec().limits.memory && *plan.spec().limits.memory > opts.memory_budget)
      return Error::msg("job {:?}: memory = {} is more than this host's available memory ({}), so it could never start",
                        plan.name, config::format_size(*plan.spec().limits.memory), config::format_size(opts.memory_budget))
          .hint("lower its memory limit, or run with -j N to skip memory admission");
  }
  return {};
}

Result<config::Selection> selection_of(const RunArgs& a) {
  config::Selection sel;
  sel.names = a.jobs;
  sel.only = a.only;
  if (!a.shard.empty()) {
    auto shard = config::parse_shard(a.shard);
    if (!shard) return std::move(shard.error().wrap("--shard"));
    sel.shard_index = shard->first;
    sel.shard_count = shard->second;
  }
  return sel;
}

}  // namespace

int cmd_run(const GlobalOptions& g, const RunArgs& a) {
  // The host file first: its [policy] may raise the job file's size cap.
  auto host = host_config(g.config);
  if (!host) {
    print_error(host.error());
    return kExitUsage;
  }
  const auto& max_file = host->policy.max_job_file;
  auto file = config::load_job_file(a.file, max_file ? *max_file.value : config::kDefaultMaxJobFile);
  if (!file) {
    print_error(file.error());
    return kExitUsage;
  }
  auto selection = selection_of(a);
  if (!selection) {
    print_error(selection.error());
    return kExitUsage;
  }
  auto jobs = config::select_jobs(*file, *selection);
  if (!jobs) {
    print_error(jobs.error());
    return kExitUsage;
  }
  if (auto r = check_privileges(); !r) {
    print_error(r.error());
    return kExitFailed;
  }
  const std::string root = resolve_root(g.root);
  auto store = open_store(root, *host, /*tidy=*/false);
  if (!store) {
    print_error(store.error());
    return kExitFailed;
  }
  sweep_and_report(root, /*remove_idle=*/false);
  auto prepared = prepare_jobs(*store, *jobs, pull_options(g.insecure_registries, g.auth_file, g.registry_ca, g.platform),
                               *host);
  if (!prepared) {
    print_error(prepared.error());
    return kExitUsage;
  }
  if (a.print_spec) {
    console_write(STDOUT_FILENO, specs_json(prepared->plans, *prepared->host, host->path));
    return kExitOk;
  }
  if (file->cache_max_size) {
    // The run's images are leased now: only others go, least recently used first.
    auto pruned = store->prune({false, file->cache_max_size});
    if (!pruned) {
      print_error(pruned.error().wrap("cache.max_size"));
    } else {
      for (const auto& ref : pruned->removed_images)
        console_write(STDERR_FILENO, fmt::format("sandrun: cache.max_size: removed {}\n", ref));
      if (pruned->size_after > *file->cache_max_size)
        console_write(STDERR_FILENO, fmt::format("sandrun: cache.max_size: the cache holds {}, more than {}: the "
                                                 "rest is in use\n", config::format_size(pruned->size_after),
                                                 config::format_size(*file->cache_max_size)));
    }
  }

  RunOptions opts;
  if (auto r = admission(a.parallel, prepared->plans, opts); !r) {
    print_error(r.error());
    return kExitUsage;
  }
  opts.fail_fast = a.fail_fast || file->fail_fast;
  opts.console = ConsoleMode::prefixed;
  opts.style.color = console_colors();
  for (const auto& j : *jobs) opts.style.name_width = std::max(opts.style.name_width, std::min<size_t>(j.name.size(), 24));
  const std::string out = a.out.empty() ? file->dir + "/.sandrun" : fs::absolute(a.out);
  opts.log_dir = out + "/logs";
  opts.artifacts_dir = out + "/artifacts";
  if (auto r = fs::mkdirs(opts.log_dir); !r) {
    print_error(r.error().wrap("create the output directory"));
    return kExitFailed;
  }
  // One run per output directory at a time: two would overwrite each other's logs and reports.
  auto out_lock = fs::lock_file(out + "/.lock", /*exclusive=*/true, /*wait=*/false);
  if (!out_lock) {
    print_error(out_lock.error().wrap(fmt::format("another sandrun run is writing to {}", out))
                    .hint("wait for it to end, or give this run its own --out DIR"));
    return kExitFailed;
  }
  if (auto r = reserve_summary(out, prepared->plans); !r) {
    print_error(r.error());
    return kExitFailed;
  }
  // The loop's owner: made first, it outlives the reporters' handles on it.
  Loop loop;
  // Reporters (console, --format json, --junit, summary.json) are attached here: opts.events.
  RunReport report(a, out, prepared->plans, opts.style);
  opts.events = report.events();
  auto outcome = execute(loop, root, *prepared, std::move(opts));
  if (!outcome) {
    report.abandon();
    print_error(outcome.error());
    return kExitFailed;
  }
  if (!report.finish(*outcome, console_colors())) return kExitFailed;
  return exit_status_for(*outcome);
}

namespace {

// --ulimit NAME=VALUE, Docker's syntax; sandrun supports nofile only.
Result<std::pair<uint64_t, uint64_t>> parse_ulimit(const std::string& text) {
  size_t eq = text.find('=');
  if (eq == std::string::npos) return Error::msg("invalid ulimit {:?}: expected nofile=SOFT[:HARD]", text);
  std::string name = text.substr(0, eq);
  if (name != "nofile") {
    return Error::msg("unsupported limit {:?}: only nofile is supported, like nofile=1024:4096", name);
  }
  return config::parse_nofile(std::string_view(text).substr(eq + 1));
}

// --security-opt KEY=VALUE, Docker's syntax; only the keys sandrun supports.
Result<void> apply_security_opt(const std::string& opt, config::JobSpec& job) {
  size_t eq = opt.find('=');
  std::string key = opt.substr(0, eq);
  std::string_view value = eq == std::string::npos ? "" : std::string_view(opt).substr(eq + 1);
  if (key == "seccomp" && eq != std::string::npos) {
    job.seccomp = SANDRUN_TRY(config::parse_seccomp(value, fs::absolute(".")));
    return {};
  }
  if (key == "no-new-privileges") {
    job.no_new_privs = eq == std::string::npos ? true : SANDRUN_TRY(config::parse_bool(value).wrap(key));
    return {};
  }
  return Error::msg("unsupported option {:?}; supported: seccomp=default|unconfined|PATH, "
                    "no-new-privileges[=true|false]", opt);
}

Error flag_error(const char* name, Error e) { return std::move(e.wrap(fmt::format("exec: {}", name))); }

// The limit flags: memory, cpus, cpuset and pids into `job.limits`; --ulimit into `job.nofile`.
Result<void> exec_limits(const ExecArgs& a, config::JobSpec& job) {
  if (!a.memory.empty()) {
    auto m = config::parse_memory(a.memory);
    if (!m) return flag_error("--memory", std::move(m).error());
    job.limits.memory = *m;
  }
  if (!a.cpus.empty()) {
    auto c = config::parse_cpus(a.cpus);
    if (!c) return flag_error("--cpus", std::move(c).error());
    job.limits.cpus = *c;
  }
  if (!a.cpuset.empty()) {
    if (auto c = config::parse_cpuset(a.cpuset); !c) return flag_error("--cpuset-cpus", std::move(c).error());
    job.limits.cpuset = a.cpuset;
  }
  if (!a.pids.empty()) {
    auto p = config::parse_size(a.pids);
    if (!p || *p == 0) return Error::msg("exec: --pids-limit: expected a number of processes of at least 1, got {:?}", a.pids);
    if (auto ok = config::check_pids(*p, a.pids); !ok) return flag_error("--pids-limit", std::move(ok).error());
    job.limits.pids = *p;
  }
  if (!a.disk.empty()) {
    auto d = config::parse_disk(a.disk);
    if (!d) return flag_error("--disk", std::move(d).error());
    job.limits.disk = *d;
  }
  if (!a.disk_inodes.empty()) {
    uint64_t n = 0;
    auto [end, ec] = std::from_chars(a.disk_inodes.data(), a.disk_inodes.data() + a.disk_inodes.size(), n);
    if (ec != std::errc() || end != a.disk_inodes.data() + a.disk_inodes.size() || n == 0 || n > UINT32_MAX)
      return Error::msg("exec: --disk-inodes: expected a number of files from 1 to {}, got {:?}", UINT32_MAX, a.disk_inodes);
    job.limits.disk_inodes = n;
  }
  for (const auto& u : a.ulimits) {
    auto nofile = parse_ulimit(u);
    if (!nofile) return flag_error("--ulimit", std::move(nofile).error());
    job.nofile = *nofile;
  }
  return {};
}

// The hardening flags: capabilities, seccomp, no-new-privileges, read-only root, userns.
Result<void> exec_hardening(const ExecArgs& a, config::JobSpec& job) {
  for (const auto& cap : a.cap_add) {
    if (auto r = config::check_capability(cap); !r) return flag_error("--cap-add", std::move(r).error());
    job.cap_add.push_back(config::Named{cap, {}});  // no file: the runner names the flag
  }
  for (const auto& cap : a.cap_drop) {
    if (auto r = config::check_capability(cap); !r) return flag_error("--cap-drop", std::move(r).error());
    job.cap_drop.push_back(config::Named{cap, {}});
  }
  for (const auto& opt : a.security_opts) {
    if (auto r = apply_security_opt(opt, job); !r) return flag_error("--security-opt", std::move(r).error());
  }
  job.read_only_rootfs = a.read_only;
  job.userns = a.userns;
  return {};
}

// The exec flags as a job, validated with the same rules as a job file.
Result<config::JobSpec> exec_job(const ExecArgs& a) {
  config::JobSpec job;
  SANDRUN_TRY(config::check_job_name(a.name).wrap("exec: --name"));
  job.name = a.name;
  job.image = a.image;
  job.command = a.command;
  for (const auto& e : a.env) {
    auto kv = config::parse_env(e);
    if (!kv) return flag_error("-e", std::move(kv).error());
    std::erase_if(job.env, [&](const auto& p) { return p.first == kv->first; });
    job.env.push_back(*kv);
  }
  for (const auto& v : a.volumes) {
    auto vol = config::parse_volume(v, fs::absolute("."));
    if (!vol) return flag_error("-v", std::move(vol).error());
    job.volumes.push_back(*vol);
  }
  if (!a.workdir.empty()) {
    if (a.workdir[0] != '/') return Error::msg("exec: -w: {:?} must be an absolute container path", a.workdir);
    job.workdir = a.workdir;
  }
  if (!a.timeout.empty()) {
    auto t = config::parse_duration(a.timeout);
    if (!t) return flag_error("--timeout", std::move(t).error());
    job.timeout = *t;
  }
  if (!a.user.empty()) {
    if (auto r = config::check_user(a.user); !r) return flag_error("--user", std::move(r).error());
    job.user = a.user;
  }
  SANDRUN_TRY(exec_limits(a, job));
  auto net = config::parse_network(a.network);
  if (!net) return flag_error("--network", std::move(net).error());
  job.network = *net;
  for (const auto& p : a.publish) {
    auto port = config::parse_port(p);
    if (!port) return flag_error("-p", std::move(port).error());
    for (const auto& earlier : job.ports) {
      if (earlier.host_port != 0 && earlier.host_port == port->host_port && earlier.host_ip == port->host_ip) {
        return Error::msg("exec: -p: host port {} is published twice ({:?} and {:?})", port->host_port,
                          earlier.text, port->text);
      }
    }
    job.ports.push_back(port.take());
  }
  if (!job.ports.empty() && job.network == config::Network::host) {
    return Error::msg("exec: -p: cannot publish ports with --network host: nothing to forward, the container "
                      "is on the host's network");
  }
  job.init = !a.no_init;
  SANDRUN_TRY(exec_hardening(a, job));
  return job;
}

int exec_exit_status(const Outcome& o) {
  if (o.interrupted_by) return 128 + o.interrupted_by;
  const JobResult& r = o.results.at(0);
  using S = JobResult::Status;
  switch (r.status) {
    case S::passed:
    case S::failed: return r.exit_code;
    case S::signaled: return 128 + r.signal;
    case S::timed_out: return 124;
    case S::oom_killed: return r.signal ? 128 + r.signal : r.exit_code;
    case S::exec_failed: return r.exit_code;
    case S::setup_failed:
    case S::cancelled:
    case S::skipped:
    case S::not_started: return 125;
  }
  return 125;
}

}  // namespace

int cmd_exec(const GlobalOptions& g, const ExecArgs& a) {
  // The command's stderr is ours: only warnings and errors of sandrun join it.
  log::set_show_info(false);
  auto job = exec_job(a);
  if (!job) {
    print_error(job.error());
    return kExitUsage;
  }
  auto host = host_config(g.config);
  if (!host) {
    print_error(host.error());
    return kExitUsage;
  }
  if (auto r = check_privileges(); !r) {
    print_error(r.error());
    return 125;
  }
  const std::string root = resolve_root(g.root);
  auto store = open_store(root, *host, /*tidy=*/false);
  if (!store) {
    print_error(store.error());
    return 125;
  }
  sweep_and_report(root, /*remove_idle=*/false);
  auto prepared =
      prepare_jobs(*store, {*job}, pull_options(g.insecure_registries, g.auth_file, g.registry_ca, g.platform), *host);
  if (!prepared) {
    print_error(prepared.error());
    return 125;
  }
  if (prepared->plans[0].spec().argv.empty()) {
    print_error(Error::msg("exec: no command given and the image {:?} has none", a.image));
    return kExitUsage;
  }
  if (a.dry_run) {
    console_write(STDOUT_FILENO, specs_json(prepared->plans, *prepared->host, host->path));
    return kExitOk;
  }
  // The command's output passes straight through; sandrun only says where its ports went.
  struct PortNotes : RunEvents {
    void port_published(size_t, const PublishedPort& p) override {
      console_write_async(STDERR_FILENO,
                          fmt::format("sandrun: published {} -> {}\n", address_text(p.host_ip, p.host_port), p.container_port));
    }
  } port_notes;
  RunOptions opts;
  opts.parallel = 1;
  opts.console = ConsoleMode::passthrough;
  opts.events = &port_notes;
  Loop loop;
  auto outcome = execute(loop, root, *prepared, std::move(opts));
  if (!outcome) {
    print_error(outcome.error());
    return 125;
  }
  return exec_exit_status(*outcome);
}

}  // namespace sandrun::runner
