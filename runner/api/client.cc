// The daemon's own blocking client over its Unix socket.
#include "runner/api/client.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "runner/api/api_socket.h"
#include "sandbox/sys/fs.h"
#include "sandbox/sys/unique_fd.h"

namespace sandrun::runner::api {
namespace {

Result<UniqueFd> connect_to(const std::string& path) {
  sockaddr_un addr{};
  if (path.size() >= sizeof addr.sun_path) return Error::msg("the socket path {} is too long", path);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return Error::sys("socket");
  addr.sun_family = AF_UNIX;
  path.copy(addr.sun_path, sizeof addr.sun_path - 1);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0)
    return Error::sys("cannot reach the sandrun daemon at unix://{}", path)
        .hint("is `sandrun serve` running? Name its socket with --host or SANDRUN_HOST");
  return fd;
}

Result<ClientReply> exchange(const std::string& socket, std::string_view method, std::string_view target,
                             std::string_view body, const std::function<void(std::string_view)>* on_body) {
  UniqueFd fd = SANDRUN_TRY(connect_to(socket));
  std::string req = fmt::format("{} {} HTTP/1.1\r\nHost: sandrun\r\nUser-Agent: sandrun-cli\r\nConnection: close\r\n",
                                method, target);
  if (!body.empty()) req += fmt::format("Content-Type: application/json\r\nContent-Length: {}\r\n", body.size());
  else if (method == "POST") req += "Content-Length: 0\r\n";
  req += "\r\n";
  req += body;
  SANDRUN_TRY(fs::write_all(fd.get(), req));
  ClientReply reply;
  bool stream_body = false;
  ResponseParser parser(
      [&](const ResponseParser::Head& h) {
        reply.status = h.status;
        reply.content_type = std::string(h.header("Content-Type").value_or(""));
        stream_body = on_body && h.status < 300;
      },
      [&](std::string_view part) {
        if (stream_body) (*on_body)(part);
        else reply.body.append(part);
      });
  char buf[65536];
  while (!parser.complete()) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::sys("read the daemon's answer on {}", socket);
    if (n == 0) {
      SANDRUN_TRY(parser.finish().wrap(fmt::format("the daemon's answer on {}", socket)));
      break;
    }
    SANDRUN_TRY(parser.feed(buf, static_cast<size_t>(n)).wrap(fmt::format("the daemon's answer on {}", socket)));
  }
  return reply;
}

}  // namespace

std::string ClientReply::message() const {
  const auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_object() && j.contains("message") && j["message"].is_string()) return j["message"].get<std::string>();
  std::string b = body;
  while (!b.empty() && (b.back() == '\n' || b.back() == '\r')) b.pop_back();
  return b;
}

Result<ApiClient> ApiClient::open(std::string_view host) {
  std::string h(host);
  if (h.empty()) {
    const char* env = std::getenv("SANDRUN_HOST");
    if (env && *env) h = env;
  }
  if (h.empty()) return ApiClient(SANDRUN_TRY(default_socket_path()));
  if (h.starts_with("unix://")) h.erase(0, 7);
  else if (h.find("://") != std::string::npos)
    return Error::msg("--host {}: only unix:// sockets are served (sandrun has no TCP listener)", host);
  if (h.empty() || h.front() != '/') return Error::msg("--host {}: give an absolute socket path (unix:///path)", host);
  return ApiClient(h);
}

Result<ClientReply> ApiClient::call(std::string_view method, std::string_view target, std::string_view body) const {
  return exchange(socket_, method, target, body, nullptr);
}

Result<ClientReply> ApiClient::stream(std::string_view method, std::string_view target,
                                      const std::function<void(std::string_view)>& on_body) const {
  return exchange(socket_, method, target, {}, &on_body);
}

}  // namespace sandrun::runner::api
