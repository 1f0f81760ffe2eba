// The Engine API's HTTP messages: Docker's error bodies, status lines, serialisation.
#include "runner/api/http_message.h"

#include <strings.h>
#include <time.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace sandrun::runner::api {

std::optional<std::string_view> Request::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k.size() == name.size() && ::strncasecmp(k.data(), name.data(), name.size()) == 0) return v;
  }
  return std::nullopt;
}

Response Response::error(int status, std::string_view message) {
  // Invalid UTF-8 (a client's bytes echoed back) is replaced, never a throw.
  nlohmann::json j{{"message", std::string(message)}};
  return json(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n", status);
}

Response Response::json(std::string body, int status) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

std::string_view status_reason(int status) {
  switch (status) {
    case 101: return "UPGRADED";  // Docker's words for its hijacked streams
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Request Entity Too Large";
    case 414: return "Request-URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
  }
  return "Unknown";
}

namespace {

// RFC 7231's IMF-fixdate, as Go's net/http sends it.
std::string http_date() {
  time_t now = ::time(nullptr);
  struct tm tm {};
  ::gmtime_r(&now, &tm);
  char buf[64];
  ::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buf;
}

}  // namespace

std::string serialize(const Response& r, bool head, std::string_view server) {
  std::string out = fmt::format("HTTP/1.1 {} {}\r\n", r.status, status_reason(r.status));
  for (const auto& [k, v] : r.headers) out += fmt::format("{}: {}\r\n", k, v);
  if (!r.content_type.empty()) out += fmt::format("Content-Type: {}\r\n", r.content_type);
  out += fmt::format("Server: {}\r\nDate: {}\r\nContent-Length: {}\r\n", server, http_date(), r.body.size());
  if (r.close) out += "Connection: close\r\n";
  out += "\r\n";
  if (!head) out += r.body;
  return out;
}

std::string serialize_head(const Response& r, std::string_view server, HeadFraming framing) {
  std::string out = fmt::format("HTTP/1.1 {} {}\r\n", r.status, status_reason(r.status));
  for (const auto& [k, v] : r.headers) out += fmt::format("{}: {}\r\n", k, v);
  if (!r.content_type.empty()) out += fmt::format("Content-Type: {}\r\n", r.content_type);
  out += fmt::format("Server: {}\r\nDate: {}\r\n", server, http_date());
  if (framing == HeadFraming::chunked) out += "Transfer-Encoding: chunked\r\n";
  if (r.close && framing != HeadFraming::upgrade) out += "Connection: close\r\n";
  out += "\r\n";
  return out;
}

}  // namespace sandrun::runner::api
