// The Engine API's HTTP messages as values: a parsed request, a response and its bytes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sandrun::runner::api {

struct Request {
  std::string method;  // "GET", "HEAD", "POST", ...
  std::string target;  // the request target as sent: path and query, e.g. "/v1.43/info?x=1"
  std::vector<std::pair<std::string, std::string>> headers;  // in order, names as sent
  std::string body;       // kept only for the routes that read one (else empty)
  uint64_t body_bytes = 0;  // every body byte received, kept or not
  bool keep_alive = true;   // llhttp's answer: HTTP/1.1 without "Connection: close", ...
  bool upgrade = false;     // "Connection: Upgrade" (Docker's hijacked attach and exec)

  // The first header of that name (case-insensitive), or nullopt.
  std::optional<std::string_view> header(std::string_view name) const;
};

struct Response {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;  // besides Content-Length, Date, Server
  std::string body;
  std::string content_type = "application/json";
  bool close = false;  // "Connection: close" and the connection ends after it

  // Docker's error body: {"message": "..."}.
  static Response error(int status, std::string_view message);
  static Response json(std::string body, int status = 200);
};

// "Not Found" for 404, ... ("Unknown" for a status with no reason phrase here).
std::string_view status_reason(int status);

// The bytes of `r` on the wire; for a HEAD request the headers only (Content-Length still the
// body's, as a GET would have had). `server` is the Server header's value.
std::string serialize(const Response& r, bool head, std::string_view server);

// How the body of a response whose head is sent alone is framed.
enum class HeadFraming {
  chunked,      // "Transfer-Encoding: chunked": a streamed body (logs -f, events, progress)
  upgrade,      // "101 UPGRADED": the connection carries raw bytes both ways (attach, exec)
  until_close,  // no length: the body runs until the connection closes (attach without upgrade)
};
// The status line and headers of `r` (its body is not sent), framed as `framing` says.
std::string serialize_head(const Response& r, std::string_view server, HeadFraming framing);

}  // namespace sandrun::runner::api
