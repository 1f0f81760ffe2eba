// docker cp: GET /containers/{id}/archive (a tar of a path, its stat in a header), HEAD (the
// stat alone) and PUT (a tar extracted into a directory), all resolved inside the container's
// root by runner/engine/container_files.h, on the threadpool.
#include <fcntl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ctime>
#include <memory>

#include <nlohmann/json.hpp>

#include "cache/registry_auth.h"
#include "runner/api/container_routes.h"
#include "runner/api/query.h"
#include "runner/api/route_util.h"
#include "sandbox/sys/fs.h"
#include "sandbox/sys/log.h"

namespace sandrun::runner::api {
namespace {

using nlohmann::json;

// st_mode as Go's os.FileMode, which Docker's clients read (IsDir, symlinks).
uint32_t go_file_mode(uint32_t m) {
  uint32_t out = m & 0777;
  switch (m & S_IFMT) {
    case S_IFDIR: out |= 1u << 31; break;
    case S_IFLNK: out |= 1u << 27; break;
    case S_IFBLK: out |= 1u << 26; break;
    case S_IFCHR: out |= (1u << 26) | (1u << 21); break;
    case S_IFIFO: out |= 1u << 25; break;
    case S_IFSOCK: out |= 1u << 24; break;
    default: break;
  }
  if (m & S_ISUID) out |= 1u << 23;
  if (m & S_ISGID) out |= 1u << 22;
  if (m & S_ISVTX) out |= 1u << 20;
  return out;
}

std::string rfc3339(int64_t ns) {
  const time_t sec = static_cast<time_t>(ns / 1'000'000'000);
  tm t{};
  ::gmtime_r(&sec, &t);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z", t.tm_year + 1900, t.tm_mon + 1, t.tm_mday, t.tm_hour,
                     t.tm_min, t.tm_sec, ns % 1'000'000'000);
}

// X-Docker-Container-Path-Stat: base64 of {name, size, mode, mtime, linkTarget}.
std::string stat_header(const PathStat& s) {
  json j = {{"name", s.name}, {"size", s.size}, {"mode", go_file_mode(s.mode)}, {"mtime", rfc3339(s.mtime_ns)},
            {"linkTarget", s.link_target}};
  return cache::base64_encode(j.dump());
}

// A failure as Docker words it: a missing path is 404, a bad tar or target 400.
Response failure(const Error& e, const std::string& path, const std::string& name) {
  if (e.code() == ENOENT) return Response::error(404, fmt::format("Could not find the file {} in container {}", path, name));
  if (e.code() == ENOTDIR) return Response::error(400, "extraction point is not a directory");
  if (e.code() == 0 || e.code() == ELOOP || e.code() == EXDEV) return Response::error(400, e.message());
  return Response::error(500, e.message());
}

}  // namespace

std::optional<uint64_t> ContainerRoutes::body_file_cap(RouteId id) const {
  if (id != RouteId::container_archive_put) return std::nullopt;
  return store_.limits().max_image_bytes;  // a copy into a container is bounded as an image load
}

// A copy into a container that does not run: kept beside its record and extracted into its
// writable layer at each start, before its command (testcontainers copies files in before
// the start). The tar is copied from the request's temp file on the threadpool.
void ContainerRoutes::put_pending(Exchange& ex, const std::string& id, const std::string& path, bool copy_owners) {
  auto body = ex.request().body_file;
  const std::string file = registry_.new_archive_path(id);
  auto error = std::make_shared<std::optional<Error>>();
  ex.work = run_blocking(
      loop_,
      [body, file, error](const std::atomic<bool>&) {
        auto r = [&]() -> Result<void> {
          auto out = SANDRUN_TRY(fs::open_path(file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600));
          off_t at = 0;
          while (static_cast<uint64_t>(at) < body->size) {
            const ssize_t n = ::sendfile(out.get(), body->fd.get(), &at, body->size - static_cast<uint64_t>(at));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return Error::sys("copy the archive to {}", file);
          }
          return {};
        }();
        if (!r) {
          *error = std::move(r.error());
          ::unlink(file.c_str());
        }
      },
      [this, &ex, id, file, path, copy_owners, error] {
        if (*error) return ex.reply(Response::error(500, (*error)->message()));
        if (auto refused = registry_.add_archive(id, file, path, copy_owners)) {
          ::unlink(file.c_str());
          return ex.reply(answer(*refused));
        }
        ex.reply(Response{});
      });
}

void ContainerRoutes::archive(Exchange& ex, const Call& call, const std::string& id) {
  const Query q = Query::parse(call.target.query);
  const std::string path = q.get("path").value_or("");
  if (path.empty()) return ex.reply(Response::error(400, "path: a path in the container is required"));
  const std::string name = registry_.find(id)->name;
  const RouteId route = call.route.id;
  auto files = std::make_shared<ContainerFiles>();
  if (route == RouteId::container_archive_put) {
    auto body = ex.request().body_file;
    if (!body) return ex.reply(Response::error(400, "PUT /containers/{id}/archive: the request has no body (a tar)"));
    const ExtractInto opts{.max_bytes = store_.limits().max_image_bytes, .copy_owners = q.flag("copyUIDGID")};
    if (q.flag("noOverwriteDirNonDir"))
      log::debug("api: archive PUT: noOverwriteDirNonDir is not checked: entries replace what is there");
    if (!registry_.active(id)) return put_pending(ex, id, path, opts.copy_owners);
    if (auto refused = registry_.files(id, *files)) return ex.reply(answer(*refused));
    return answer_blocking(loop_, ex, [files, body, path, name, opts](const std::atomic<bool>&) {
      if (::lseek(body->fd.get(), 0, SEEK_SET) < 0) return Response::error(500, "rewind the request body");
      auto r = extract_into_container(*files, path, body->fd.get(), opts);
      if (!r) return failure(r.error(), path, name);
      return Response{};
    });
  }
  if (auto refused = registry_.files(id, *files)) return ex.reply(answer(*refused));
  const bool head_only = route == RouteId::container_archive_head;
  answer_blocking(loop_, ex, [files, path, name, head_only, tmp = store_.root() + "/tmp"](const std::atomic<bool>&) {
    auto st = stat_in_container(*files, path);
    if (!st) return failure(st.error(), path, name);
    Response out;
    out.headers.emplace_back("X-Docker-Container-Path-Stat", stat_header(*st));
    if (head_only) {
      out.content_type.clear();
      return out;
    }
    // The tar goes to an unnamed temp file, sent from there in parts (never whole in memory).
    auto file = fs::open_path(tmp, O_TMPFILE | O_RDWR, 0600);
    if (!file) return Response::error(500, file.error().message());
    if (auto r = tar_from_container(*files, path, file->get()); !r) return failure(r.error(), path, name);
    struct stat fst {};
    if (::fstat(file->get(), &fst) < 0 || ::lseek(file->get(), 0, SEEK_SET) < 0)
      return Response::error(500, "read back the archive");
    auto body = std::make_shared<BodyFile>();
    body->fd = std::move(*file);
    body->size = static_cast<uint64_t>(fst.st_size);
    out.file = std::move(body);
    out.content_type = "application/x-tar";
    return out;
  });
}

}  // namespace sandrun::runner::api
