// Docker's image routes over the cache: list, inspect, history, tag, delete, prune here;
// pull, save and load in image_transfer.cc.
#include "runner/api/image_routes.h"

#include <fnmatch.h>

#include <set>

#include <fmt/format.h>

#include "runner/api/image_json.h"
#include "runner/api/query.h"
#include "runner/api/route_util.h"

namespace sandrun::runner::api {
namespace {

using nlohmann::json;

Response no_such_image(std::string_view name) { return Response::error(404, fmt::format("No such image: {}", name)); }

// Docker's reference filter: a glob on "name:tag" or on the name alone. As Docker, an image
// matched shows only its names that match.
bool reference_matches(const std::vector<std::string>& patterns, const cache::ImageRecord& r) {
  for (const auto& p : patterns) {
    if (::fnmatch(p.c_str(), (r.name + ":" + r.tag).c_str(), 0) == 0 || ::fnmatch(p.c_str(), r.name.c_str(), 0) == 0)
      return true;
  }
  return false;
}

// The creation time of the image a before/since filter names, or a 404-worthy nullopt.
std::optional<int64_t> created_of(const std::vector<ImageView>& views, const std::string& name, cache::Store& store) {
  auto found = find_image(store, name);
  if (!found || !*found) return std::nullopt;
  for (const auto& v : views)
    if (v.id == (*found)->view.id) return v.created();
  return (*found)->view.created();
}

bool dangling(const ImageView& v) { return v.repo_tags().empty(); }

}  // namespace

void ImageRoutes::handle(const Call& call, Exchange& ex) {
  switch (call.route.id) {
    case RouteId::image_list: return list(call, ex);
    case RouteId::image_inspect: return inspect(call, ex, false);
    case RouteId::image_history: return inspect(call, ex, true);
    case RouteId::image_tag: return tag(call, ex);
    case RouteId::image_delete: return remove(call, ex);
    case RouteId::image_prune: return prune(call, ex);
    case RouteId::image_create: return create(call, ex);
    case RouteId::image_get:
    case RouteId::image_get_one: return save(call, ex);
    case RouteId::image_load: return load(call, ex);
    default: return ex.reply(not_implemented(call.route));
  }
}

void ImageRoutes::list(const Call& call, Exchange& ex) {
  const Query q = Query::parse(call.target.query);
  auto filters = parse_filters(q, {"reference", "label", "dangling", "before", "since"});
  if (!filters) return ex.reply(Response::error(400, filters.error().message()));
  Filters f = filters.take();
  // The older ?filter=NAME is the reference filter.
  if (auto old = q.get("filter"); old && !old->empty()) f["reference"].push_back(*old);
  std::optional<bool> want_dangling;
  if (auto it = f.find("dangling"); it != f.end() && !it->second.empty()) {
    const std::string& d = it->second.front();
    if (d != "true" && d != "false" && d != "1" && d != "0")
      return ex.reply(Response::error(400, fmt::format("invalid filter 'dangling={}'", d)));
    want_dangling = d == "true" || d == "1";
  }
  const bool all = q.flag("all");
  answer_blocking(loop_, ex, [store = store_, f, want_dangling, all](const std::atomic<bool>&) mutable {
    auto views = image_views(store, true);
    if (!views) return Response::error(500, views.error().message());
    std::optional<int64_t> before, since;
    for (auto [key, slot] : {std::pair{"before", &before}, std::pair{"since", &since}}) {
      auto it = f.find(key);
      if (it == f.end() || it->second.empty()) continue;
      *slot = created_of(*views, it->second.front(), store);
      if (!*slot) return no_such_image(it->second.front());
    }
    json out = json::array();
    for (ImageView& v : *views) {
      // Without ?all Docker hides untagged intermediate images; sandrun has none: all show.
      (void)all;
      if (want_dangling && dangling(v) != *want_dangling) continue;
      if (auto it = f.find("reference"); it != f.end()) {
        std::erase_if(v.records, [&](const cache::ImageRecord& r) { return !reference_matches(it->second, r); });
        if (v.records.empty()) continue;
      }
      if (auto it = f.find("label"); it != f.end() && !labels_match(it->second, v.labels())) continue;
      if (before && v.created() >= *before) continue;
      if (since && v.created() <= *since) continue;
      out.push_back(image_summary(v));
    }
    return Response::json(json_text(out));
  });
}

void ImageRoutes::inspect(const Call& call, Exchange& ex, bool history) {
  const std::string name = call.params.at("name");
  answer_blocking(loop_, ex, [store = store_, name, history](const std::atomic<bool>&) mutable {
    auto found = find_image(store, name);
    if (!found) return Response::error(500, found.error().message());
    if (!*found) return no_such_image(name);
    const ImageView& v = (*found)->view;
    return Response::json(json_text(history ? image_history(v) : image_inspect(v)));
  });
}

void ImageRoutes::tag(const Call& call, Exchange& ex) {
  const std::string name = call.params.at("name");
  const Query q = Query::parse(call.target.query);
  const std::string repo = q.get("repo").value_or("");
  std::string tag = q.get("tag").value_or("");
  if (repo.empty()) return ex.reply(Response::error(400, "repository name (repo) must have at least one component"));
  if (tag.empty()) tag = "latest";
  const std::string dst = repo + ":" + tag;
  auto parsed = cache::parse_ref(dst);
  if (!parsed || !parsed->digest.empty() || repo.find('@') != std::string::npos)
    return ex.reply(Response::error(400, fmt::format("invalid reference format: {}", dst)));
  answer_blocking(loop_, ex, events_, [store = store_, name, dst](const std::atomic<bool>&, Events& events) mutable {
    auto found = find_image(store, name);
    if (!found) return Response::error(500, found.error().message());
    if (!*found) return no_such_image(name);
    const auto& src = (*found)->by_ref ? *(*found)->by_ref : (*found)->view.records.front();
    if (auto r = store.tag(src.ref(), dst); !r) return Response::error(500, r.error().message());
    events.push_back(image_event("tag", (*found)->view.id, dst));
    Response r;
    r.status = 201;
    return r;
  });
}

void ImageRoutes::remove(const Call& call, Exchange& ex) {
  const std::string name = call.params.at("name");
  const bool force = Query::parse(call.target.query).flag("force");
  // First the lookup (threadpool), then the in-use check (loop), then the removal (threadpool).
  auto found = std::make_shared<Result<std::optional<FoundImage>>>(std::optional<FoundImage>{});
  ex.work = run_blocking(
      loop_, [store = store_, name, found](const std::atomic<bool>&) mutable { *found = find_image(store, name); },
      [this, &ex, name, force, found] {
        if (!*found) return ex.reply(Response::error(500, found->error().message()));
        if (!**found) return ex.reply(no_such_image(name));
        FoundImage img = std::move(***found);
        const ImageView& v = img.view;
        // By reference: that name goes, and the image with its last name. By id: every name,
        // which takes ?force when it has several.
        std::vector<cache::ImageRecord> doomed;
        if (img.by_ref) doomed.push_back(*img.by_ref);
        const size_t tags = v.repo_tags().size();
        if (!img.by_ref && tags > 1 && !force)
          return ex.reply(Response::error(409, fmt::format("conflict: unable to delete {} (must be forced) - image is "
                                                           "referenced in multiple repositories", short_id(v.id))));
        const bool last = !img.by_ref || tags <= 1;
        if (last) {
          // Docker's words; `force` removes it anyway (a running container keeps its layers: the
          // cache's leases).
          if (auto ids = users(v.id); !ids.empty() && !force)
            return ex.reply(Response::error(409, fmt::format("conflict: unable to remove repository reference \"{}\" "
                                                             "(must force) - container {} is using its referenced "
                                                             "image {}",
                                                             name, short_id(ids.front()), short_id(v.id))));
          for (const auto& r : v.records)
            if (!img.by_ref || r.ref() != img.by_ref->ref()) doomed.push_back(r);
        }
        answer_blocking(loop_, ex, events_, [store = store_, doomed, last, id = v.id](const std::atomic<bool>&,
                                                                                   Events& events) mutable {
          json out = json::array();
          for (const auto& r : doomed) {
            auto rep = store.remove(r.ref());
            if (!rep) return Response::error(500, rep.error().message());
            out.push_back({{"Untagged", r.ref()}});
            events.push_back(image_event("untag", id, r.ref()));
          }
          if (last) {
            out.push_back({{"Deleted", id}});
            events.push_back(image_event("delete", id, id));
          }
          return Response::json(json_text(out));
        });
      });
}

void ImageRoutes::prune(const Call& call, Exchange& ex) {
  auto filters = parse_filters(Query::parse(call.target.query), {"dangling"});
  if (!filters) return ex.reply(Response::error(400, filters.error().message()));
  bool only_dangling = true;
  if (auto it = filters->find("dangling"); it != filters->end() && !it->second.empty())
    only_dangling = it->second.front() == "true" || it->second.front() == "1";
  answer_blocking(loop_, ex, events_, [store = store_, only_dangling](const std::atomic<bool>&, Events& events) mutable {
    auto before = image_views(store, false);
    if (!before) return Response::error(500, before.error().message());
    cache::PruneOptions o;
    o.all = !only_dangling;
    auto rep = store.prune(o);
    if (!rep) return Response::error(500, rep.error().message());
    auto after = image_views(store, false);
    if (!after) return Response::error(500, after.error().message());
    std::set<std::string> left;
    for (const auto& v : *after) left.insert(v.id);
    json deleted = json::array();
    for (const auto& ref : rep->removed_images) deleted.push_back({{"Untagged", ref}});
    for (const auto& v : *before) {
      if (left.count(v.id)) continue;
      deleted.push_back({{"Deleted", v.id}});
      for (const auto& r : v.records) events.push_back(image_event("untag", v.id, r.ref()));
      events.push_back(image_event("delete", v.id, v.id));
    }
    events.push_back(EngineEvent{"image", "prune", "", {{"reclaimed", std::to_string(rep->bytes_freed)}}, 0});
    return Response::json(json_text({{"ImagesDeleted", deleted.empty() ? json(nullptr) : deleted},
                                     {"SpaceReclaimed", rep->bytes_freed}}));
  });
}

}  // namespace sandrun::runner::api
