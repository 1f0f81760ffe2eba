// The daemon: one --root (a lock in it), one socket, one loop, stopped by SIGTERM or SIGINT.
#include "runner/api/daemon.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>

#include "cache/curl_lib.h"
#include "cache/digest.h"
#include "runner/api/api.h"
#include "runner/api/api_socket.h"
#include "runner/api/routes.h"
#include "runner/api/container_wiring_hooks.h"
#include "runner/engine/container_registry.h"
#include "runner/engine/sweep.h"
#include "runner/loop/loop.h"
#include "sandbox/sys/fs.h"
#include "sandbox/sys/log.h"

namespace sandrun::runner::api {
namespace {

// One daemon per root: ROOT/serve.lock, held (flock) while it runs, says who holds it.
Result<UniqueFd> lock_root(const std::string& root, const std::string& socket) {
  const std::string path = fs::join(root, "serve.lock");
  UniqueFd fd = SANDRUN_TRY(fs::open_path(path, O_RDWR | O_CREAT, 0600));
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) < 0) {
    if (errno != EWOULDBLOCK) return Error::sys("lock {}", path);
    auto holder = fs::read_file(path);
    std::string who = holder ? *holder : "";
    while (!who.empty() && who.back() == '\n') who.pop_back();
    return Error::msg("another sandrun serve owns --root {}{}", root, who.empty() ? "" : " (" + who + ")")
        .hint("one daemon serves one root: stop it, or give this one another --root");
  }
  const std::string who = fmt::format("pid {}, socket {}\n", ::getpid(), socket);
  if (::ftruncate(fd.get(), 0) < 0) return Error::sys("truncate {}", path);
  SANDRUN_TRY(fs::write_all(fd.get(), who));
  return fd;
}

// SIGTERM and SIGINT: stop the containers (and tear them down), then stop accepting, close
// the connections, leave the loop.
struct Stopper {
  Server* server = nullptr;
  ContainerRegistry* containers = nullptr;
  UvHandle<uv_signal_t> term, intr;
  bool stopping = false;

  Result<void> start(Loop& loop) {
    for (auto [h, sig] : {std::pair{&term, SIGTERM}, std::pair{&intr, SIGINT}}) {
      if (int rc = uv_signal_init(loop.get(), h->get()); rc < 0) return Error::sys_code(-rc, "signal handler");
      h->mark_live();
      h->get()->data = this;
      if (int rc = uv_signal_start(h->get(), on_signal, sig); rc < 0) return Error::sys_code(-rc, "signal handler");
    }
    return {};
  }
  static void on_signal(uv_signal_t* h, int sig) {
    auto* self = static_cast<Stopper*>(h->data);
    if (self->stopping) return;
    self->stopping = true;
    log::info("{}: stopping the daemon", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    self->containers->shutdown([self] {
      self->server->close([self] {
        self->term.close();
        self->intr.close();
      });
    });
  }
};

}  // namespace

Result<void> serve(const ServeOptions& o, cache::Store store) {
  // The crypto libraries keep per-thread state from their first use that is never freed when
  // that thread is not the main one: both are first used here (sandrun's own libcrypto for
  // digests; libcurl's, loaded now rather than by the first pull's thread). A host without
  // libcurl still serves: its pulls say so.
  cache::init_digests();
  (void)cache::load_curl_lib();
  std::optional<gid_t> group;
  if (!o.group.empty()) group = SANDRUN_TRY(lookup_group(o.group));
  const bool default_socket = o.socket.empty();
  const std::string socket = default_socket ? SANDRUN_TRY(default_socket_path()) : fs::absolute(o.socket);
  UniqueFd root_lock = SANDRUN_TRY(lock_root(o.root, socket));
  HostFacts facts = SANDRUN_TRY(probe_host_facts(o.root));
  facts.live_restore = o.live_restore;
  // The networks' namespaces are made again before the socket answers (runner/net/networks.h).
  Networks::Options net_options;
  net_options.root = o.root;
  net_options.pool = SANDRUN_TRY(std::move(Subnet::parse(o.network_pool.empty() ? Networks::kDefaultPool : o.network_pool))
                                     .wrap("--network-pool"));
  net_options.size = o.network_size;
  if (net_options.size < std::max(net_options.pool.prefix, kMinNetworkPrefix) || net_options.size > kMaxNetworkPrefix)
    return Error::msg("--network-pool {}: networks of /{} do not fit in it", net_options.pool.str(), net_options.size);
  auto networks = SANDRUN_TRY(Networks::open(std::move(net_options)));
  ApiSocket sock = SANDRUN_TRY(open_api_socket(socket, group, default_socket));
  Result<void> result{Unit{}};
  {
    Loop loop;
    ContainerRegistry::Options copts{o.root, o.host};
    copts.max_running = o.max_running;
    copts.live_restore = o.live_restore;
    ContainerRegistry containers(loop, store, std::move(copts));
    if (auto r = containers.load(); !r) {
      remove_api_socket(sock);
      return std::move(r.error().wrap("read the containers of " + o.root));
    }
    // What an earlier daemon (or run) of this root left: slots, cgroups, processes; after the
    // load, which (--live-restore) took back the slots and kept the cgroups of what it adopted.
    const std::set<std::string> adopted = containers.adopted_cgroups();
    sweep_and_report(o.root, false, &adopted);
    Api api(loop, std::move(facts), std::move(store), containers, *networks, o.pull);
    containers.set_events(&api.events());
    DaemonWiring wiring(loop, api, containers);  // volumes and networks of containers
    containers.rejoin_networks();                 // what load() adopted (--live-restore)
    auto server = Server::start(loop, std::move(sock.fd), [&api](Exchange& ex) { api.handle(ex); },
                                api.server_options());
    if (!server) {
      result = std::move(server.error());
    } else {
      Stopper stopper;
      stopper.server = server->get();
      stopper.containers = &containers;
      if (auto r = stopper.start(loop); !r) {
        result = std::move(r.error());
      } else {
        log::info("serving the Engine API on {} (API {} to {}, root {})", socket, kMinApiVersion, kMaxApiVersion,
                  o.root);
        loop.run();
      }
    }
    server = Error::msg("closed");  // the server goes before the registry it calls
    containers.set_events(nullptr);  // the bus goes with `api`, before the registry
    containers.release_host();
  }
  remove_api_socket(sock);
  return result;
}

}  // namespace sandrun::runner::api
