// The image routes that move images in and out: POST /images/create (a pull, with Docker's
// progress messages), GET /images/{name}/get and /images/get (a docker-save tar, answered from
// a file), POST /images/load (a docker-save tar as the body, which the server put in a file).
#include <arpa/inet.h>
#include <unistd.h>


#include <fmt/format.h>

#include "cache/registry_auth.h"
#include "runner/api/image_json.h"
#include "runner/api/image_routes.h"
#include "runner/api/query.h"
#include "runner/api/route_util.h"
#include "runner/loop/inbox.h"

namespace sandrun::runner::api {
namespace {

using nlohmann::json;

// A registry on 127.0.0.0/8 is reached over plain HTTP without a flag (Docker does the same).
bool loopback_registry(const std::string& host) {
  std::string addr = host.substr(0, host.rfind(':') == std::string::npos ? host.size() : host.rfind(':'));
  in_addr a{};
  return ::inet_pton(AF_INET, addr.c_str(), &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

// Docker's X-Registry-Auth: base64url of {"username","password","auth","serveraddress",...}.
// nullopt when absent or empty (the daemon's own credentials file applies then).
std::variant<std::optional<cache::RegistryLogin>, Response> login_of(const Request& req) {
  auto header = req.header("X-Registry-Auth");
  if (!header || header->empty()) return std::optional<cache::RegistryLogin>{};
  std::string b64(*header);
  for (char& c : b64) c = c == '-' ? '+' : c == '_' ? '/' : c;
  auto text = cache::base64_decode(b64);
  auto j = text ? json::parse(*text, nullptr, false) : json();
  if (!text || !j.is_object()) return Response::error(400, "X-Registry-Auth: not base64-encoded JSON");
  cache::RegistryLogin login{j.value("username", ""), j.value("password", "")};
  if (login.username.empty() && j.contains("auth") && j["auth"].is_string()) {
    auto pair = cache::base64_decode(j["auth"].get<std::string>());
    if (pair && pair->find(':') != std::string::npos) {
      login.username = pair->substr(0, pair->find(':'));
      login.password = pair->substr(pair->find(':') + 1);
    }
  }
  if (login.username.empty()) return std::optional<cache::RegistryLogin>{};
  return std::optional<cache::RegistryLogin>(login);
}

// The reference fromImage and tag name together ("x" + "1" -> "x:1"; a digest as tag -> "x@...").
std::string pull_reference(const std::string& from, const std::string& tag) {
  if (tag.empty()) return from;
  const size_t slash = from.rfind('/');
  const bool has_tag = from.find('@') != std::string::npos ||
                       from.find(':', slash == std::string::npos ? 0 : slash) != std::string::npos;
  if (has_tag) return from;
  return from + (tag.starts_with("sha256:") ? "@" : ":") + tag;
}

std::string status_line(const std::string& text, const std::string& id = "") {
  json m = {{"status", text}};
  if (!id.empty()) {
    m["progressDetail"] = json::object();
    m["id"] = id;
  }
  return m.dump(-1, ' ', false, json::error_handler_t::replace) + "\r\n";
}

std::string error_line(const std::string& text) {
  json m = {{"errorDetail", {{"message", text}}}, {"error", text}};
  return m.dump(-1, ' ', false, json::error_handler_t::replace) + "\r\n";
}

// Docker's message for a pull's progress event.
std::string pull_message(const cache::PullEvent& e, const cache::ImageRef& ref) {
  using K = cache::PullEvent::Kind;
  const std::string id = short_id(e.digest);
  switch (e.kind) {
    case K::resolved: return status_line("Pulling from " + ref.repository(), ref.digest.empty() ? ref.tag : ref.digest);
    case K::layer_exists: return status_line("Already exists", id);
    case K::layer_started: return status_line("Pulling fs layer", id);
    case K::layer_downloaded: return status_line("Download complete", id);
    case K::layer_done: return status_line("Pull complete", id);
  }
  return "";
}

}  // namespace

// A pull being answered: nothing is sent until the manifest is known (so that a missing image
// is an error status, as Docker's), then a chunked stream of Docker's messages as they come.
struct ImageRoutes::PullAnswer {
  Exchange* ex;  // null once the client is gone
  Inbox inbox;
  EventBus& events;
  bool started = false;

  PullAnswer(Loop& loop, Exchange& e, EventBus& bus) : ex(&e), inbox(loop), events(bus) {}
  void deliver(const std::string& msg, bool start) {
    if (!ex) return;
    if (!started && !start) return;  // nothing comes before the manifest
    if (!started) {
      started = true;
      ex->begin_stream(Response::json(msg));
      return;
    }
    ex->send(msg);  // a few short lines per layer: no need to hold the pull for the client
  }
  void finish(const Result<cache::PulledImage>& pulled, const cache::ImageRef& ref) {
    // Docker's pull event, also when the client went before the end.
    if (pulled) events.publish(image_event("pull", ref.str(), ref.str()));
    if (!ex) return;
    Exchange* e = ex;
    ex = nullptr;
    if (!started) {
      if (pulled) return e->reply(Response::json(status_line("Status: Image is up to date for " + ref.str())));
      const std::string m = pulled.error().message();
      const bool missing = m.find("404 Not Found") != std::string::npos || m.find("manifest unknown") != std::string::npos;
      return e->reply(Response::error(missing ? 404 : 500, m));
    }
    if (!pulled) {
      e->send(error_line(pulled.error().message()));
    } else {
      e->send(status_line("Digest: " + pulled->record.manifest_digest));
      e->send(status_line(std::string(pulled->up_to_date ? "Status: Image is up to date for "
                                                         : "Status: Downloaded newer image for ") +
                          ref.str()));
    }
    e->end();
  }
};

std::optional<uint64_t> ImageRoutes::body_file_cap(const Call& call) const {
  if (call.route.id != RouteId::image_load) return std::nullopt;
  return store_.limits().max_image_bytes;
}

void ImageRoutes::create(const Call& call, Exchange& ex) {
  const Query q = Query::parse(call.target.query);
  if (q.has("fromSrc"))
    return ex.reply(Response::error(501, "POST /images/create?fromSrc (import) is not supported by sandrun: send a "
                                         "docker-save archive to POST /images/load"));
  const std::string from = q.get("fromImage").value_or("");
  if (from.empty()) return ex.reply(Response::error(400, "fromImage: an image name is required"));
  const std::string text = pull_reference(from, q.get("tag").value_or(""));
  auto ref = cache::parse_ref(text);
  if (!ref) return ex.reply(Response::error(400, fmt::format("invalid reference format: {}", text)));
  auto login = login_of(ex.request());
  if (auto* r = std::get_if<Response>(&login)) return ex.reply(std::move(*r));
  cache::PullOptions o;
  o.insecure_hosts = pull_.insecure_hosts;
  if (loopback_registry(ref->registry())) o.insecure_hosts.push_back(ref->registry());
  o.auth_file = pull_.auth_file;
  o.ca_file = pull_.ca_file;
  o.platform = q.get("platform").value_or(pull_.platform);
  o.login = std::get<0>(login);
  const bool builtin = ref->registry().empty() && ref->name == cache::kBuiltinImage && ref->tag == "latest";
  if (builtin || ref->registry().empty()) {
    return answer_blocking(loop_, ex, [store = store_, ref = *ref, builtin](const std::atomic<bool>&) mutable {
      if (!builtin)
        return Response::error(404, fmt::format("pull access denied for {}: sandrun has no default registry; name "
                                                "the registry host (e.g. 127.0.0.1:5000/{})", ref.name, ref.name));
      if (auto b = store.ensure(ref.str()); !b) return Response::error(500, b.error().message());
      return Response::json(status_line("Status: Image is up to date for " + ref.str()));
    });
  }
  stream_pull(ex, *ref, std::move(o));
}

void ImageRoutes::stream_pull(Exchange& ex, const cache::ImageRef& ref, cache::PullOptions o) {
  auto state = std::make_shared<PullAnswer>(loop_, ex, events_);
  ex.on_gone([state] { state->ex = nullptr; });
  struct Outcome {
    Result<cache::PulledImage> pulled = Error::msg("not pulled");
  };
  auto outcome = std::make_shared<Outcome>();
  ex.work = run_blocking(
      loop_,
      [store = store_, ref, o, post = state->inbox.poster(), weak = std::weak_ptr<PullAnswer>(state),
       outcome](const std::atomic<bool>& cancelled) mutable {
        o.cancel = &cancelled;
        o.progress = [&](const cache::PullEvent& e) {
          std::string msg = pull_message(e, ref);
          const bool start = e.kind == cache::PullEvent::Kind::resolved;
          post([weak, msg = std::move(msg), start] {
            if (auto s = weak.lock()) s->deliver(msg, start);
          });
        };
        outcome->pulled = store.pull(ref.str(), o);
      },
      [state, outcome, ref] {
        state->inbox.run_pending();  // every progress message before the last ones
        state->finish(outcome->pulled, ref);
      });
}

void ImageRoutes::save(const Call& call, Exchange& ex) {
  std::vector<std::string> names;
  if (call.route.id == RouteId::image_get_one) names.push_back(call.params.at("name"));
  else names = Query::parse(call.target.query).all("names");
  if (names.empty()) return ex.reply(Response::error(400, "names: at least one image name is required"));
  answer_blocking(loop_, ex, [store = store_, names](const std::atomic<bool>&) mutable {
    // Each name as the cache knows it (an id names the image by one of its names).
    std::vector<std::string> refs;
    for (const auto& n : names) {
      auto found = find_image(store, n);
      if (!found) return Response::error(500, found.error().message());
      if (!*found) return Response::error(404, fmt::format("No such image: {}", n));
      const FoundImage& f = **found;
      refs.push_back(f.by_ref ? f.by_ref->ref() : f.view.records.front().ref());
    }
    auto fd = store.save_to_temp(refs, {});
    if (!fd) return Response::error(500, fd.error().message());
    Response r;
    r.content_type = "application/x-tar";
    r.file = std::make_shared<BodyFile>();
    r.file->size = static_cast<uint64_t>(::lseek(fd->get(), 0, SEEK_END));
    r.file->fd = std::move(*fd);
    return r;
  });
}

void ImageRoutes::load(const Call& call, Exchange& ex) {
  const bool quiet = Query::parse(call.target.query).flag("quiet");
  (void)quiet;  // no progress bars are sent either way: only the "Loaded image" lines
  auto file = ex.request().body_file;
  if (!file) return ex.reply(Response::error(400, "POST /images/load: the request has no body (a docker-save tar)"));
  answer_blocking(loop_, ex, events_, [store = store_, file](const std::atomic<bool>&, Events& events) mutable {
    const std::string path = fmt::format("/proc/self/fd/{}", file->fd.get());
    auto loaded = store.import_archive(path, "", {});
    if (!loaded) return Response::error(500, loaded.error().message());
    std::string out;
    for (const auto& img : *loaded) {
      const auto& r = img.record;
      json m = {{"stream", r.tag.empty() ? "Loaded image ID: " + r.id + "\n" : "Loaded image: " + r.ref() + "\n"}};
      out += json_text(m);
      events.push_back(image_event("load", r.tag.empty() ? r.id : r.ref(), r.tag.empty() ? r.id : r.ref()));
    }
    return Response::json(std::move(out));
  });
}

}  // namespace sandrun::runner::api
