// The container routes: Docker's parameters and answers around the registry's operations.
#include "runner/api/container_routes.h"

#include <signal.h>

#include <cmath>

#include <nlohmann/json.hpp>

#include "runner/api/container_create.h"
#include "runner/api/container_json.h"
#include "runner/api/container_probe.h"
#include "runner/api/query.h"
#include "sandbox/sys/log.h"

namespace sandrun::runner::api {
namespace {

using nlohmann::json;

}  // namespace

Response answer(const ContainerRefusal& r) {
  switch (r.kind) {
    case ContainerRefusal::Kind::not_found: return Response::error(404, r.message);
    case ContainerRefusal::Kind::conflict: return Response::error(409, r.message);
    case ContainerRefusal::Kind::invalid: return Response::error(400, r.message);
    case ContainerRefusal::Kind::failed: return Response::error(500, r.message);
    case ContainerRefusal::Kind::not_modified: {
      Response out;
      out.status = 304;
      out.content_type.clear();
      return out;
    }
  }
  return Response::error(500, r.message);
}

namespace {

Response no_content() {
  Response r;
  r.status = 204;
  r.content_type.clear();
  return r;
}

// Replies through `ex` unless its client has gone meanwhile (the registry answers later).
std::function<void(Response)> replier(Exchange& ex) {
  auto alive = std::make_shared<bool>(true);
  ex.on_gone([alive] { *alive = false; });
  return [&ex, alive](Response r) {
    if (*alive) ex.reply(std::move(r));
  };
}

// 204 when it happened, else the refusal's status.
std::function<void(std::optional<ContainerRefusal>)> reply_204(Exchange& ex) {
  return [reply = replier(ex)](std::optional<ContainerRefusal> r) { reply(r ? answer(*r) : no_content()); };
}

// Docker's signal names ("SIGKILL", "KILL") and numbers; 0 when unknown.
int parse_signal(std::string_view s) {
  static const std::pair<const char*, int> kSignals[] = {
      {"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT}, {"ILL", SIGILL},   {"TRAP", SIGTRAP},
      {"ABRT", SIGABRT}, {"BUS", SIGBUS},   {"FPE", SIGFPE},   {"KILL", SIGKILL}, {"USR1", SIGUSR1},
      {"SEGV", SIGSEGV}, {"USR2", SIGUSR2}, {"PIPE", SIGPIPE}, {"ALRM", SIGALRM}, {"TERM", SIGTERM},
      {"CHLD", SIGCHLD}, {"CONT", SIGCONT}, {"STOP", SIGSTOP}, {"TSTP", SIGTSTP}, {"TTIN", SIGTTIN},
      {"TTOU", SIGTTOU}, {"URG", SIGURG},   {"XCPU", SIGXCPU}, {"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM},
      {"PROF", SIGPROF}, {"WINCH", SIGWINCH}, {"IO", SIGIO},   {"PWR", SIGPWR},   {"SYS", SIGSYS}};
  if (!s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos) {
    const int n = std::atoi(std::string(s).c_str());
    return n > 0 && n < 65 ? n : 0;
  }
  if (s.starts_with("SIG")) s.remove_prefix(3);
  for (const auto& [name, sig] : kSignals) {
    if (s == name) return sig;
  }
  return 0;
}

// ?t= seconds of grace (Docker's default 10; -1: wait as long as it takes).
std::variant<std::optional<std::chrono::milliseconds>, Response> grace_of(const Query& q) {
  auto t = q.integer("t", 10);
  if (!t) return Response::error(400, t.error().message());
  if (*t < 0) return std::optional<std::chrono::milliseconds>{};
  return std::optional<std::chrono::milliseconds>{std::chrono::seconds(*t)};
}

}  // namespace

bool ContainerRoutes::handle(Exchange& ex, const Call& call) {
  const auto id_param = call.params.find("id");
  std::string id;
  if (id_param != call.params.end()) {
    const ContainerRecord* rec = registry_.find(id_param->second);
    if (!rec) {
      if (call.route.id < RouteId::exec_create) {
        ex.reply(answer(registry_.no_such(id_param->second)));
        return true;
      }
    } else {
      id = rec->id;
    }
  }
  switch (call.route.id) {
    case RouteId::container_create: create(ex, call); return true;
    case RouteId::container_start: start(ex, id); return true;
    case RouteId::container_stop: stop(ex, call, id, false); return true;
    case RouteId::container_restart: stop(ex, call, id, true); return true;
    case RouteId::container_kill: kill(ex, call, id); return true;
    case RouteId::container_wait: wait(ex, call, id); return true;
    case RouteId::container_delete: remove(ex, call, id); return true;
    case RouteId::container_prune: prune(ex, call); return true;
    case RouteId::container_list: list(ex, call); return true;
    case RouteId::container_inspect:
      ex.reply(Response::json(inspect_json(*registry_.find(id), registry_.health(id),
                                           execs_ ? execs_->of_container(id) : std::vector<std::string>{}) + "\n"));
      return true;
    case RouteId::container_logs: logs(ex, call, id); return true;
    case RouteId::container_attach: attach(ex, call, id); return true;
    case RouteId::container_top: top(ex, id); return true;
    case RouteId::container_stats: stats(ex, call, id); return true;
    case RouteId::container_resize: resize(ex, call, id); return true;
    case RouteId::container_archive_head: case RouteId::container_archive_get: case RouteId::container_archive_put:
      archive(ex, call, id);
      return true;
    default: return false;
  }
}

void ContainerRoutes::create(Exchange& ex, const Call& call) {
  auto body = read_create_body(ex.request().body);
  if (auto* refused = std::get_if<Response>(&body)) return ex.reply(std::move(*refused));
  const Query q = Query::parse(call.target.query);
  std::string name = q.get("name").value_or("");
  if (!name.empty() && name.front() == '/') name.erase(0, 1);
  // The image first (on the threadpool: the cache's index is read under its locks): its
  // Entrypoint, Cmd, Env, WorkingDir and User are the container's defaults.
  struct Found {
    std::optional<cache::ImageRecord> image;
    std::optional<Error> error;
    std::string config;  // the image's config blob
  };
  auto found = std::make_shared<Found>();
  auto b = std::make_shared<CreateBody>(std::get<CreateBody>(std::move(body)));
  ex.work = run_blocking(
      loop_,
      [store = store_, found, b](const std::atomic<bool>&) mutable {
        auto r = [&]() -> Result<std::optional<cache::ImageRecord>> {
          auto image = SANDRUN_TRY(store.find(b->image));
          if (image) return image;
          const cache::ImageRef ref = SANDRUN_TRY(cache::parse_ref(b->image));
          if (ref.registry().empty() && ref.name == cache::kBuiltinImage)
            return std::optional<cache::ImageRecord>(SANDRUN_TRY(store.ensure(b->image)));
          return std::optional<cache::ImageRecord>();
        }();
        if (!r) found->error = std::move(r.error());
        else found->image = std::move(*r);
        // Its config blob, for the image's own Healthcheck (a create without one inherits it).
        if (found->image) {
          if (auto text = store.config_json(*found->image)) found->config = std::move(*text);
        }
      },
      [this, &ex, found, b, name] {
        if (found->error) return ex.reply(Response::error(500, found->error->message()));
        if (!found->image) return ex.reply(Response::error(404, fmt::format("No such image: {}", b->image)));
        auto req = translate_create(*b, name, *found->image, found->config);
        if (auto* refused = std::get_if<Response>(&req)) return ex.reply(std::move(*refused));
        registry_.create(std::get<CreateRequest>(std::move(req)),
                         [reply = replier(ex)](Result<std::string> id, std::optional<ContainerRefusal> refusal) {
                           if (refusal) return reply(answer(*refusal));
                           json out = {{"Id", *id}, {"Warnings", json::array()}};
                           reply(Response::json(out.dump() + "\n", 201));
                         });
      });
}

void ContainerRoutes::start(Exchange& ex, const std::string& id) { registry_.start(id, reply_204(ex)); }

void ContainerRoutes::stop(Exchange& ex, const Call& call, const std::string& id, bool restart) {
  const Query q = Query::parse(call.target.query);
  auto grace = grace_of(q);
  if (auto* refused = std::get_if<Response>(&grace)) return ex.reply(std::move(*refused));
  auto g = std::get<0>(grace);
  int sig = SIGTERM;
  if (auto s = q.get("signal"); s && !s->empty()) {
    sig = parse_signal(*s);
    if (!sig) return ex.reply(Response::error(400, fmt::format("Invalid signal: {}", *s)));
  }
  if (restart) return registry_.restart(id, g, reply_204(ex));
  registry_.stop(id, g, reply_204(ex), sig);
}

void ContainerRoutes::kill(Exchange& ex, const Call& call, const std::string& id) {
  const Query q = Query::parse(call.target.query);
  int sig = SIGKILL;
  if (auto s = q.get("signal"); s && !s->empty()) {
    sig = parse_signal(*s);
    if (!sig) return ex.reply(Response::error(400, fmt::format("Invalid signal: {}", *s)));
  }
  registry_.kill(id, sig, reply_204(ex));
}

void ContainerRoutes::wait(Exchange& ex, const Call& call, const std::string& id) {
  const Query q = Query::parse(call.target.query);
  const std::string c = q.get("condition").value_or("not-running");
  WaitCondition cond = WaitCondition::not_running;
  if (c == "next-exit") cond = WaitCondition::next_exit;
  else if (c == "removed") cond = WaitCondition::removed;
  else if (!c.empty() && c != "not-running")
    return ex.reply(Response::error(400, fmt::format("invalid condition: \"{}\"", c)));
  auto body = [](int code) { return json{{"StatusCode", code}, {"Error", nullptr}}.dump() + "\n"; };
  if (cond == WaitCondition::not_running && !registry_.active(id)) {
    return ex.reply(Response::json(body(registry_.find(id)->exit_code)));
  }
  // The status and headers go at once, the body when the condition holds: docker run sends
  // its wait before its start and goes on once the headers have come.
  Response head;
  ex.begin_stream(std::move(head));
  const uint64_t token = registry_.wait(id, cond, [&ex, body](int code) {
    ex.send(body(code));
    ex.end();
  });
  ex.on_gone([this, token] { registry_.cancel_wait(token); });
}

void ContainerRoutes::remove(Exchange& ex, const Call& call, const std::string& id) {
  const Query q = Query::parse(call.target.query);
  registry_.remove(id, q.flag("force"), reply_204(ex), q.flag("v"));
}

void ContainerRoutes::prune(Exchange& ex, const Call& call) {
  const Query q = Query::parse(call.target.query);
  auto filters = parse_filters(q, {"label", "label!", "until"});
  if (!filters) return ex.reply(Response::error(400, filters.error().message()));
  std::vector<std::string> ids;
  const auto labels = filters->count("label") ? filters->at("label") : std::vector<std::string>{};
  const auto not_labels = filters->count("label!") ? filters->at("label!") : std::vector<std::string>{};
  for (const ContainerRecord* r : registry_.list()) {
    if (r->status == ContainerStatus::running || r->status == ContainerStatus::removing) continue;
    if (!labels_match(labels, r->labels)) continue;
    if (!not_labels.empty() && labels_match(not_labels, r->labels)) continue;
    ids.push_back(r->id);
  }
  auto left = std::make_shared<size_t>(ids.size());
  auto finish = [reply = replier(ex), ids] {
    json out = {{"ContainersDeleted", ids.empty() ? json(nullptr) : json(ids)}, {"SpaceReclaimed", 0}};
    reply(Response::json(out.dump() + "\n"));
  };
  if (ids.empty()) return finish();
  for (const auto& id : ids) {
    registry_.remove(id, false, [left, finish](std::optional<ContainerRefusal>) {
      if (--*left == 0) finish();
    });
  }
}

}  // namespace sandrun::runner::api
