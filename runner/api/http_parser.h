// RequestParser: HTTP/1.1 requests out of a byte stream (llhttp), one at a time, bounded.
// ResponseParser: a response for the API's own client (sandrun ps, logs, ...), body streamed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "runner/api/http_message.h"
#include "sandbox/sys/result.h"

namespace sandrun::runner::api {

struct ParserLimits {
  size_t header_bytes = 64 << 10;  // request line target + header names and values: else 431
  size_t headers = 256;            // header fields: else 431
  uint64_t body_bytes = 16 << 20;  // a request body, kept or not: else 413
};

class RequestParser {
 public:
  explicit RequestParser(ParserLimits limits = {});
  ~RequestParser();
  RequestParser(const RequestParser&) = delete;
  RequestParser& operator=(const RequestParser&) = delete;

  // Asked once a request's headers are complete: whether its body is kept in Request::body
  // (else it is counted and dropped). Unset: never kept.
  std::function<bool(const Request&)> keep_body;

  enum class Kind { more, request, error };
  struct Step {
    size_t consumed = 0;  // bytes of the input used; the rest is fed again after take()
    Kind kind = Kind::more;
    int status = 0;       // for an error: 400, 413 or 431
    std::string message;  // for an error: what was wrong, for Docker's {"message": ...}
  };
  // Parses until a request is complete (Kind::request: take() it, then feed the rest), the
  // input is used up (Kind::more) or the bytes are not valid HTTP (Kind::error: the parser is
  // dead; the connection answers and closes).
  Step feed(const char* data, size_t n);
  // The request of the last Kind::request step; parsing resumes at the next feed().
  Request take();
  // Some bytes of a request that is not complete have been parsed.
  bool in_request() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// One HTTP/1.1 response, its body (chunked or not) handed on as it is decoded.
class ResponseParser {
 public:
  struct Head {
    int status = 0;
    std::vector<std::pair<std::string, std::string>> headers;
    std::optional<std::string_view> header(std::string_view name) const;
  };
  // `on_head` once the headers are complete; `on_body` for each decoded part of the body.
  ResponseParser(std::function<void(const Head&)> on_head, std::function<void(std::string_view)> on_body);
  ~ResponseParser();
  ResponseParser(const ResponseParser&) = delete;
  ResponseParser& operator=(const ResponseParser&) = delete;

  // Parses what came; an error message for bytes that are not HTTP. Bytes after the end of
  // the response (a 101's raw stream) are not parsed: `upgraded()` says so and `rest` has them.
  Result<void> feed(const char* data, size_t n, std::string* rest = nullptr);
  // The connection closed: a body without a length ends here. An error if the response is
  // incomplete.
  Result<void> finish();
  bool complete() const;
  bool upgraded() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace sandrun::runner::api
