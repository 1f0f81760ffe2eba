// Resolving a JobSpec and its image into a JobPlan: layers, env, user, mounts, workdir.
#include "runner/engine/resolve.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <climits>
#include <map>
#include <sstream>
#include <unordered_map>

#include "runner/engine/caches.h"
#include "runner/engine/policy.h"
#include "runner/engine/slots.h"
#include "sandbox/mount_points.h"
#include "sandbox/sys/fs.h"
#include "sandbox/userns.h"

namespace sandrun::runner {
namespace {

// /etc/passwd and /etc/group larger than this are not read (an image could make them huge).
constexpr size_t kMaxAccountFile = 4 << 20;

// The file `path` (relative) from the top-most layer that has it, resolved beneath that
// layer; "" when no layer has it.
std::string read_from_layers(const std::vector<std::string>& layers, const char* path) {
  for (const auto& layer : layers) {
    int dfd = ::open(layer.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) continue;
    UniqueFd dir(dfd);
    auto fd = fs::open_beneath(dir.get(), path, O_RDONLY | O_NOFOLLOW, RESOLVE_IN_ROOT);
    if (!fd) continue;
    struct stat st;
    if (::fstat(fd->get(), &st) < 0 || !S_ISREG(st.st_mode) || static_cast<size_t>(st.st_size) > kMaxAccountFile)
      return "";
    auto text = fs::read_fd(fd->get());
    return text ? *text : "";
  }
  return "";
}

bool parse_id(std::string_view s, unsigned& out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

std::vector<std::string> split(std::string_view line, char sep) {
  std::vector<std::string> out;
  size_t pos = 0;
  for (;;) {
    size_t end = line.find(sep, pos);
    out.emplace_back(line.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos));
    if (end == std::string_view::npos) return out;
    pos = end + 1;
  }
}

// Calls f(fields) for each well-formed line of an /etc/passwd or /etc/group text.
template <typename F>
void each_record(const std::string& text, size_t min_fields, F&& f) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    auto fields = split(line, ':');
    if (fields.size() >= min_fields) f(fields);
  }
}

// `path` with every symlink, "." and ".." resolved: what a bind of it is taken from, without
// following symlinks again when the container starts (Bind::resolved).
Result<std::string> real_path(const std::string& path) {
  char buf[PATH_MAX];
  if (!::realpath(path.c_str(), buf)) return Error::sys("resolve {}", path);
  return std::string(buf);
}

// The directories a root container's user namespace shows through idmapped mounts: the image
// layers (one store, one file system) and the binds whose owner (uid or gid) becomes the job's
// user (the rule of sandbox/plan.cc's owner_map_ns).
std::vector<std::string> idmapped_sources(const sandbox::ContainerPlan& s) {
  std::vector<std::string> out;
  if (!s.lower_dirs.empty()) out.push_back(s.lower_dirs.front());
  for (const auto& b : s.binds) {
    struct stat st;
    if (::stat(b.source.c_str(), &st) == 0 &&
        (sandbox::userns::shows_owner_as_user(b, st.st_uid) || sandbox::userns::shows_owner_as_user(b, st.st_gid)))
      out.push_back(b.source);
  }
  return out;
}

// Rootless, every container has a user namespace. As root too, on sandrun's own range, unless
// the job says `userns = false`, or the kernel cannot idmap a directory the container is shown
// (then the job runs without one, and --print-spec and doctor say why; `userns = true` fails).
Result<void> resolve_userns(const config::JobSpec& job, sandbox::ContainerPlan& s) {
  if (::geteuid() != 0) {
    if (job.userns == false) {
      return Error::msg("userns = false needs root")
          .hint("not started as root, sandrun runs every container in a user namespace in which you are root");
    }
    static const sandbox::UserNamespace rootless = sandbox::userns::rootless();
    s.userns = rootless;
    return {};
  }
  if (job.userns == false) {
    s.userns.off_reason = "userns = false";
    return {};
  }
  const auto sources = idmapped_sources(s);
  for (const auto& dir : sources) {
    // The first is the image store's layer (sandrun's own directory), if the image has one.
    const bool own = &dir == &sources.front() && !s.lower_dirs.empty() && dir == s.lower_dirs.front();
    auto r = sandbox::userns::can_idmap(dir, own);
    if (r) continue;
    if (job.userns == true) {
      return std::move(r.error().hint("idmapped mounts need ext4, xfs or btrfs (Linux 5.12+) or tmpfs (6.3+)"));
    }
    s.userns.off_reason = r.error().message();
    return {};
  }
  static const sandbox::UserNamespace remapped = sandbox::userns::remapped_root();
  s.userns = remapped;
  return {};
}

}  // namespace

Result<UserIds> resolve_user(std::string_view user, const std::vector<std::string>& layers) {
  SANDRUN_TRY(config::check_user(user));
  auto parts = split(user, ':');
  const std::string passwd = read_from_layers(layers, "etc/passwd");
  const std::string group = read_from_layers(layers, "etc/group");
  UserIds ids;
  unsigned num = 0;
  bool found = false;
  const bool numeric = parse_id(parts[0], num);
  std::string name;
  each_record(passwd, 7, [&](const std::vector<std::string>& f) {
    unsigned uid = 0, gid = 0;
    if (found || !parse_id(f[2], uid) || !parse_id(f[3], gid)) return;
    if (numeric ? uid == num : f[0] == parts[0]) {
      found = true;
      ids.uid = uid;
      ids.gid = gid;
      ids.home = f[5];
      name = f[0];
    }
  });
  if (!found) {
    if (!numeric) return Error::msg("no user {:?} in the image's /etc/passwd", parts[0]);
    ids.uid = num;  // like docker: an unknown numeric uid runs with gid 0
  }
  if (parts.size() == 2) {
    unsigned gid = 0;
    if (parse_id(parts[1], gid)) {
      ids.gid = gid;
    } else {
      bool gfound = false;
      each_record(group, 3, [&](const std::vector<std::string>& f) {
        unsigned g = 0;
        if (!gfound && f[0] == parts[1] && parse_id(f[2], g)) {
          ids.gid = g;
          gfound = true;
        }
      });
      if (!gfound) return Error::msg("no group {:?} in the image's /etc/group", parts[1]);
    }
  } else if (!name.empty()) {
    each_record(group, 4, [&](const std::vector<std::string>& f) {
      unsigned g = 0;
      if (!parse_id(f[2], g) || g == ids.gid) return;
      for (const auto& member : split(f[3], ',')) {
        if (member == name) ids.groups.push_back(g);
      }
    });
  }
  return ids;
}

std::string hostname_for(std::string_view name) {
  std::string out;
  for (char c : name.substr(0, 63)) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
    out += ok ? c : '-';
  }
  while (!out.empty() && out.front() == '-') out.erase(out.begin());
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out.empty() ? "sandrun" : out;
}

std::vector<std::string> merge_env(const std::vector<std::string>& image_env,
                                   const std::vector<std::pair<std::string, std::string>>& job_env,
                                   std::string_view hostname, std::string_view home) {
  std::vector<std::string> env;
  // Each name's index in `env`: a lookup per variable, not a scan (linear in the job's env).
  std::unordered_map<std::string, size_t> at;
  auto set = [&env, &at](std::string_view key, std::string_view value, bool override) {
    std::string prefix = std::string(key) + "=";
    auto [it, added] = at.try_emplace(std::string(key), env.size());
    if (added) {
      env.push_back(prefix + std::string(value));
    } else if (override) {
      env[it->second] = prefix + std::string(value);
    }
  };
  for (const auto& e : image_env) {
    auto eq = e.find('=');
    if (eq != std::string::npos && eq > 0) set(e.substr(0, eq), e.substr(eq + 1), true);
  }
  set("PATH", kDefaultPath, false);
  set("HOSTNAME", hostname, false);
  set("HOME", home.empty() ? "/" : home, false);
  for (const auto& [k, v] : job_env) set(k, v, true);
  return env;
}

std::string key_context(const config::JobSpec& job, const char* key) {
  auto pos = job.where(key);
  if (pos.file.empty()) {
    // A job made of `sandrun exec` flags: name the flag.
    static const std::map<std::string, std::string> kFlags = {
        {"image", "--image"}, {"user", "--user"}, {"volumes", "-v"}, {"workdir", "-w"}, {"workspace", "-v"},
        {"userns", "--userns"}};
    auto f = kFlags.find(key);
    return fmt::format("exec: {}", f == kFlags.end() ? std::string(key) : f->second);
  }
  return fmt::format("{}: jobs.{}.{}", pos.str(), job.name, key);
}

namespace {

// The container plan of one job alone (no services, no host isolation yet).
Result<sandbox::ContainerPlan> resolve_container(const config::JobSpec& job, const cache::ImageRecord& image,
                                                 const cache::Store& store, std::vector<CacheMount>* caches) {
  auto at = [&job](const char* key, Error e) { return std::move(e.wrap(key_context(job, key))); };
  sandbox::ContainerPlan s;
  s.name = job.name;
  s.hostname = hostname_for(job.name);
  for (auto it = image.layers.rbegin(); it != image.layers.rend(); ++it) {
    s.lower_dirs.push_back(store.layer_path(it->diff_id));
  }
  std::string user = job.user.value_or(image.config.user);
  UserIds ids;
  if (!user.empty()) {
    auto r = resolve_user(user, s.lower_dirs);
    if (!r) return at("user", std::move(r).error());
    ids = std::move(*r);
  } else {
    ids.home = "/root";
  }
  s.uid = ids.uid;
  s.gid = ids.gid;
  s.groups = ids.groups;
  s.env = merge_env(image.config.env, job.env, s.hostname, ids.home);
  s.argv = job.command;
  if (s.argv.empty()) {
    s.argv = image.config.entrypoint;
    s.argv.insert(s.argv.end(), image.config.cmd.begin(), image.config.cmd.end());
  }
  if (job.workspace) {
    if (!fs::is_dir(*job.workspace))
      return at("workspace", Error::sys_code(ENOENT, "{}", *job.workspace));
    // Files the container's root writes there belong to the workspace's owner on the host
    // (with a remapped root; rootless, the caller is the container's root anyway).
    const std::string source = SANDRUN_TRY(real_path(*job.workspace).wrap(key_context(job, "workspace")));
    sandbox::Bind ws{source, kWorkspaceTarget, job.workspace_mode == config::WorkspaceMode::ro,
                     /*owner_is_root=*/true};
    ws.resolved = true;
    // A private copy-on-write view: its upper and work dirs come with each placement (the slot's).
    ws.copy_on_write = job.workspace_mode == config::WorkspaceMode::overlay;
    s.binds.push_back(std::move(ws));
  }
  for (const auto& written : job.caches) {
    auto c = cache_mount(written, ids.home);
    if (!c) return at("caches", std::move(c).error());
    if (caches) caches->push_back(std::move(*c));
  }
  for (const auto& v : job.volumes) {
    if (!fs::exists(v.source)) return at("volumes", Error::sys_code(ENOENT, "{}", v.source));
    // As for the workspace: a volume whose host owner is not root shows that owner as the
    // container's root (one whose owner is root shows it as the overflow id).
    sandbox::Bind bind{SANDRUN_TRY(real_path(v.source).wrap(key_context(job, "volumes"))), v.target, v.readonly,
                       /*owner_is_root=*/true};
    bind.resolved = true;
    s.binds.push_back(std::move(bind));
  }
  if (job.workdir) {
    s.workdir = *job.workdir;
  } else if (!image.config.working_dir.empty()) {
    s.workdir = image.config.working_dir;
  } else {
    s.workdir = job.workspace ? "/workspace" : "/";
  }
  s.new_net = job.network != config::Network::host;
  s.init = job.init;
  if (auto r = resolve_userns(job, s); !r) return at("userns", std::move(r).error());
  // A job with artifacts keeps its container's file systems after the command exits, until
  // they are collected (Job::command_exited).
  s.hold_after_exit = !job.artifacts.patterns.empty();
  return s;
}

}  // namespace

std::string file_name_for(std::string_view name) {
  std::string out;
  for (char c : name) out += (c == '/' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '_' : c;
  if (out.empty() || out == "." || out == "..") out = "_" + out;
  return out.substr(0, 200);
}

namespace {

struct Resolved {
  JobPlan plan;
  sandbox::ContainerPlan container;  // frozen into plan.container at the end
};

// One container's plan and what the job adds around it: a job's, or a service's (`what`
// names it in errors).
Result<Resolved> resolve_one(const config::JobSpec& written, const std::string& what, const ImageOf& image_of,
                             const Host& host, const HostConfig& config, bool service) {
  // The host file first: its defaults and ceilings, and its refusals before anything is pulled.
  const config::JobSpec job =
      SANDRUN_TRY(apply_host_config(written, config, PolicyHost{host.isolation.cgroups != nullptr, service, host.isolation.loop_disks}));
  const cache::ImageRecord* image = SANDRUN_TRY(image_of(job));
  Resolved r;
  JobPlan& plan = r.plan;
  plan.name = job.name;
  plan.timeout = job.timeout;
  plan.artifacts = job.artifacts;
  plan.network = job.network;
  plan.file_name = file_name_for(job.name);
  plan.log_max = job.log_max.value_or(config::kDefaultLogMax);
  r.container = SANDRUN_TRY(resolve_container(job, *image, host.store, &plan.caches));
  SANDRUN_TRY(resolve_isolation(job, host.isolation, r.container));
  // A read-only root starts without a writable layer where the image allows it. The caches
  // are bound when the container starts, but their mount points count here.
  auto layer = sandbox::ensure_mount_point_layer(host.store.root() + "/mountpoints", r.container,
                                                 cache_targets(plan.caches));
  if (!layer) return std::move(layer.error().wrap(fmt::format("{}: prepare its read-only root", what)));
  if (*layer) r.container.mount_point_layer = std::move(**layer);
  r.container.volatile_upper = host.volatile_upper;
  return r;
}

std::shared_ptr<const sandbox::ContainerPlan> freeze(sandbox::ContainerPlan plan) {
  return std::make_shared<const sandbox::ContainerPlan>(std::move(plan));
}

}  // namespace

Result<JobPlan> resolve(const config::JobSpec& job, const ImageOf& image_of, const Host& host, const HostConfig& config,
                        const std::map<std::string, size_t>& index) {
  auto [plan, container] = SANDRUN_TRY(resolve_one(job, fmt::format("job {:?}", job.name), image_of, host, config, false));
  plan.retries = job.retries;
  plan.allow_failure = job.allow_failure;
  plan.junit = job.junit;
  plan.matrix = job.matrix;
  plan.ports = job.ports;
  for (const auto& need : job.needs) {
    if (auto it = index.find(need.name); it != index.end()) plan.needs.push_back(it->second);
  }
  // The job's containers share one network namespace the runner makes: for its services,
  // its published ports (the proxy opens sockets inside it) and a private network.
  plan.shared_netns = !job.services.empty() || job.network == config::Network::private_ || (!job.ports.empty() && host.root);
  if (plan.shared_netns && !host.root) {
    return Error::msg("{}: jobs.{}: services and network = \"private\" need root for now", job.pos.str(), job.name)
        .hint("run sandrun as root, or use network = \"none\" without services (published ports work rootless)");
  }
  // Rootless, sandrun cannot enter the job's network namespace: the container's init hands
  // the proxy its sockets (ContainerPlan::socket_factory).
  container.socket_factory = !job.ports.empty() && !host.root;
  // Its services: their containers, and their ready checks (the check's command, run by the
  // pod as an exec into the service's container: nothing published, no log of their own).
  for (const auto& svc : job.services) {
    auto [sp_plan, sp_container] = SANDRUN_TRY(
        resolve_one(svc.spec, fmt::format("job {:?}: service {:?}", job.name, svc.spec.name), image_of, host, config, true));
    ServicePlan sp;
    sp.plan = std::move(sp_plan);
    sp.plan.file_name = plan.file_name + "." + file_name_for(svc.spec.name);
    sp.plan.ports = svc.spec.ports;
    sp.plan.network = job.network;
    if (svc.ready) {
      JobPlan check = sp.plan;
      check.name = svc.spec.name + " (ready check)";
      check.file_name.clear();  // no log of its own: it would truncate the service's
      check.ports.clear();
      sandbox::ContainerPlan c = sp_container;
      c.argv = svc.ready->command;
      c.init = true;
      c.hold_after_exit = false;
      check.container = freeze(std::move(c));
      sp.ready = std::move(check);
      sp.ready_interval = svc.ready->interval;
      sp.ready_timeout = svc.ready->timeout;
    }
    sp.plan.container = freeze(std::move(sp_container));
    plan.services.push_back(std::move(sp));
  }
  plan.container = freeze(std::move(container));
  return plan;
}

}  // namespace sandrun::runner
