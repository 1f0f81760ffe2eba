// The exec routes: Docker's ExecConfig and exec start/resize/inspect around the ExecRegistry.
#include "runner/api/exec_routes.h"

#include <fmt/format.h>

#include "config/job_file.h"
#include "runner/api/container_json.h"
#include "runner/api/query.h"
#include "runner/api/route_util.h"
#include "sandbox/sys/log.h"

namespace sandrun::runner::api {
namespace {

using nlohmann::json;

Response answer(const ContainerRefusal& r) {
  switch (r.kind) {
    case ContainerRefusal::Kind::not_found: return Response::error(404, r.message);
    case ContainerRefusal::Kind::conflict: return Response::error(409, r.message);
    case ContainerRefusal::Kind::invalid: return Response::error(400, r.message);
    default: return Response::error(500, r.message);
  }
}

Response empty(int status) {
  Response r;
  r.status = status;
  r.content_type.clear();
  return r;
}

// A string, a boolean or an array of strings of the body; the 400's message otherwise.
struct Reader {
  const json& body;
  std::string error;
  std::string str(const char* key) {
    auto it = body.find(key);
    if (it == body.end() || it->is_null()) return "";
    if (!it->is_string()) error = fmt::format("{}: expected a string", key);
    return it->is_string() ? it->get<std::string>() : "";
  }
  bool flag(const char* key, bool fallback = false) {
    auto it = body.find(key);
    if (it == body.end() || it->is_null()) return fallback;
    if (!it->is_boolean()) error = fmt::format("{}: expected a boolean", key);
    return it->is_boolean() ? it->get<bool>() : fallback;
  }
  std::vector<std::string> strings(const char* key) {
    std::vector<std::string> out;
    auto it = body.find(key);
    if (it == body.end() || it->is_null()) return out;
    if (it->is_string()) return {it->get<std::string>()};
    if (!it->is_array()) error = fmt::format("{}: expected an array of strings", key);
    else
      for (const auto& s : *it) {
        if (!s.is_string()) error = fmt::format("{}: expected an array of strings", key);
        else out.push_back(s.get<std::string>());
      }
    return out;
  }
  // ConsoleSize [height, width] (API 1.42).
  std::optional<sandbox::TtySize> console_size() {
    auto it = body.find("ConsoleSize");
    if (it == body.end() || it->is_null()) return std::nullopt;
    if (!it->is_array() || it->size() != 2 || !(*it)[0].is_number_unsigned() || !(*it)[1].is_number_unsigned()) {
      error = "ConsoleSize: expected [height, width]";
      return std::nullopt;
    }
    const unsigned h = (*it)[0].get<unsigned>(), w = (*it)[1].get<unsigned>();
    if (h == 0 || w == 0) return std::nullopt;
    return sandbox::TtySize{static_cast<uint16_t>(std::min(h, 65535u)), static_cast<uint16_t>(std::min(w, 65535u))};
  }
};

std::string stream_type(int minor, bool tty) {
  if (tty) return "application/vnd.docker.raw-stream";
  return minor >= 42 ? "application/vnd.docker.multiplexed-stream" : "application/vnd.docker.raw-stream";
}

}  // namespace

std::variant<ExecCreate, std::string> read_exec_create(const json& body) {
  if (!body.is_object()) return std::string("the request body must be a JSON object");
  Reader r{body, {}};
  ExecCreate out;
  out.request.argv = r.strings("Cmd");
  out.request.env = r.strings("Env");
  out.request.workdir = r.str("WorkingDir");
  out.request.user = r.str("User");
  const bool tty = r.flag("Tty");
  const auto size = r.console_size();
  out.attach.stdin_ = r.flag("AttachStdin");
  out.attach.stdout_ = r.flag("AttachStdout");
  out.attach.stderr_ = r.flag("AttachStderr");
  const bool privileged = r.flag("Privileged");
  (void)r.str("DetachKeys");  // sandrun's streams have no detach sequence: ignored
  if (!r.error.empty()) return r.error;
  if (privileged) return std::string("Privileged: privileged execs are refused by sandrun (no policy allows them)");
  if (out.request.argv.empty() || out.request.argv.front().empty()) return std::string("No exec command specified");
  for (const auto& e : out.request.env) {
    const size_t eq = e.find('=');
    if (eq == 0 || e.find('\0') != std::string::npos) return fmt::format("Env: invalid environment variable: {}", e);
  }
  std::erase_if(out.request.env, [](const std::string& e) { return e.find('=') == std::string::npos; });
  if (!out.request.workdir.empty() && out.request.workdir.front() != '/')
    return fmt::format("the working directory '{}' is invalid, it needs to be an absolute path", out.request.workdir);
  if (!out.request.user.empty()) {
    if (auto ok = config::check_user(out.request.user); !ok) return "User: " + ok.error().message();
  }
  out.request.stdin_pipe = out.attach.stdin_;
  if (tty) out.request.tty = size.value_or(sandbox::TtySize{});
  return out;
}

json exec_inspect_json(const ExecRegistry::Exec& x) {
  const auto& argv = x.request.argv;
  return {{"ID", x.id},
          {"Running", x.state == ExecRegistry::State::running},
          {"ExitCode", x.exit_code ? json(*x.exit_code) : json(nullptr)},
          {"ProcessConfig",
           {{"tty", x.request.tty.has_value()},
            {"entrypoint", argv.empty() ? "" : argv.front()},
            {"arguments", argv.empty() ? std::vector<std::string>{} : std::vector<std::string>(argv.begin() + 1, argv.end())},
            {"privileged", false},
            {"user", x.request.user}}},
          {"OpenStdin", x.attach.stdin_},
          {"OpenStderr", x.attach.stderr_},
          {"OpenStdout", x.attach.stdout_},
          {"CanRemove", false},
          {"ContainerID", x.container_id},
          {"DetachKeys", ""},
          {"Pid", x.pid}};
}

bool ExecRoutes::handle(Exchange& ex, const Call& call) {
  const auto id = call.params.find("id");
  switch (call.route.id) {
    case RouteId::exec_create: create(ex, id->second); return true;
    case RouteId::exec_start: start(ex, call, id->second); return true;
    case RouteId::exec_resize: resize(ex, call, id->second); return true;
    case RouteId::exec_inspect: {
      const ExecRegistry::Exec* x = execs_.find(id->second);
      if (!x) ex.reply(Response::error(404, fmt::format("No such exec instance: {}", id->second)));
      else ex.reply(Response::json(json_text(exec_inspect_json(*x))));
      return true;
    }
    default: return false;
  }
}

void ExecRoutes::create(Exchange& ex, const std::string& container) {
  auto body = json_body(ex.request());
  if (auto* refused = std::get_if<Response>(&body)) return ex.reply(std::move(*refused));
  auto req = read_exec_create(std::get<json>(body));
  if (auto* err = std::get_if<std::string>(&req)) return ex.reply(Response::error(400, *err));
  auto& c = std::get<ExecCreate>(req);
  auto made = execs_.create(container, std::move(c.request), c.attach);
  if (auto* refused = std::get_if<ContainerRefusal>(&made)) return ex.reply(answer(*refused));
  Response r = Response::json(json_text({{"Id", std::get<std::string>(made)}}));
  r.status = 201;
  ex.reply(std::move(r));
}

// Detached: 200 at once. Else the connection is hijacked: the exec's output (framed without a
// terminal), its stdin from the client with backpressure, the client's half-close as its EOF.
void ExecRoutes::start(Exchange& ex, const Call& call, const std::string& id) {
  auto body = json_body(ex.request());
  if (auto* refused = std::get_if<Response>(&body)) return ex.reply(std::move(*refused));
  Reader rd{std::get<json>(body), {}};
  const bool detach = rd.flag("Detach");
  if (!rd.error.empty()) return ex.reply(Response::error(400, rd.error));
  const ExecRegistry::Exec* x = execs_.find(id);
  if (!x) return ex.reply(Response::error(404, fmt::format("No such exec instance: {}", id)));
  const bool tty = x->request.tty.has_value();
  if (detach) {
    if (auto refused = execs_.start(id, {})) return ex.reply(answer(*refused));
    return ex.reply(empty(200));
  }
  const ExecRegistry::Attach attach = x->attach;
  ExecRegistry::Follower f;
  f.output = [this, &ex, id, tty, attach](int stream, std::string_view data) {
    if ((stream == 1 && !attach.stdout_) || (stream == 2 && !attach.stderr_)) return;
    if (!ex.send(tty ? std::string(data) : frame_bytes(stream, data))) {
      if (ExecProcess* p = execs_.process(id)) p->pause_output();  // until the client reads
    }
  };
  f.stdin_drained = [&ex] { ex.pause_input(false); };
  f.exited = [this, &ex, id, tty] {
    const ExecRegistry::Exec* done = execs_.find(id);
    if (done && !done->error.empty()) {
      // Why it did not run, where docker prints the command's errors.
      const std::string text = fmt::format("sandrun: exec failed: {}\n", done->error);
      ex.send(tty ? text : frame_bytes(2, text));
    }
    ex.end();
  };
  if (auto refused = execs_.start(id, std::move(f))) return ex.reply(answer(*refused));
  Response head;
  head.content_type = stream_type(call.target.minor, tty);
  ex.hijack(
      std::move(head),
      [this, &ex, id, attach](std::string_view data) {
        if (!attach.stdin_) return;
        ExecProcess* p = execs_.process(id);
        if (p && !p->write_stdin(data)) ex.pause_input(true);
      },
      [this, id, attach] {
        if (!attach.stdin_) return;
        if (ExecProcess* p = execs_.process(id)) p->close_stdin();
      });
  ex.on_drain([this, id] {
    if (ExecProcess* p = execs_.process(id)) p->resume_output();
  });
  ex.on_gone([this, id] { execs_.unfollow(id); });
}

void ExecRoutes::resize(Exchange& ex, const Call& call, const std::string& id) {
  const Query q = Query::parse(call.target.query);
  auto h = q.integer("h", 0), w = q.integer("w", 0);
  if (!h) return ex.reply(Response::error(400, h.error().message()));
  if (!w) return ex.reply(Response::error(400, w.error().message()));
  if (*h <= 0 || *w <= 0 || *h > 65535 || *w > 65535)
    return ex.reply(Response::error(400, "resize: h and w must be between 1 and 65535"));
  if (!execs_.find(id)) return ex.reply(Response::error(404, fmt::format("No such exec instance: {}", id)));
  auto r = execs_.resize(id, sandbox::TtySize{static_cast<uint16_t>(*h), static_cast<uint16_t>(*w)});
  if (!r) return ex.reply(Response::error(409, r.error().message()));
  ex.reply(empty(200));
}

}  // namespace sandrun::runner::api
