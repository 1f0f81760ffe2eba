// RequestParser over llhttp (Debian's node-llhttp sources): strict parsing, no lenient flags.
// Each complete request pauses the parser, so that pipelined requests are answered in order
// and one at a time, and a connection never holds more than one parsed request.
#include "runner/api/http_parser.h"

#include <llhttp.h>

#include <algorithm>
#include <cctype>
#include <string_view>

#include <fmt/format.h>

namespace sandrun::runner::api {

struct RequestParser::Impl {
  llhttp_t parser{};
  llhttp_settings_t settings{};
  ParserLimits limits;
  RequestParser* owner = nullptr;
  Request req;
  size_t header_bytes = 0;
  bool in_value = false;  // the last header callback was a value (the next field is a new header)
  bool keep = false;      // this request's body is kept
  bool started = false;   // on_message_begin seen, on_message_complete not yet
  bool ready = false;     // a complete request waits for take()
  int err_status = 0;     // our own refusal (413, 431), reported instead of llhttp's reason
  std::string err_message;

  int refuse(int status, std::string message) {
    err_status = status;
    err_message = std::move(message);
    return HPE_USER;
  }
  int count_header_bytes(size_t n) {
    header_bytes += n;
    if (header_bytes > limits.header_bytes)
      return refuse(431, fmt::format("request headers are larger than {} KiB", limits.header_bytes >> 10));
    return 0;
  }
};

namespace {

RequestParser::Impl* impl_of(llhttp_t* p) { return static_cast<RequestParser::Impl*>(p->data); }

int on_message_begin(llhttp_t* p) {
  auto* s = impl_of(p);
  s->req = Request{};
  s->header_bytes = 0;
  s->in_value = false;
  s->keep = false;
  s->started = true;
  return 0;
}

int on_url(llhttp_t* p, const char* at, size_t n) {
  auto* s = impl_of(p);
  if (int rc = s->count_header_bytes(n)) return rc;
  s->req.target.append(at, n);
  return 0;
}

int on_header_field(llhttp_t* p, const char* at, size_t n) {
  auto* s = impl_of(p);
  if (int rc = s->count_header_bytes(n)) return rc;
  if (s->in_value || s->req.headers.empty()) {
    if (s->req.headers.size() >= s->limits.headers)
      return s->refuse(431, fmt::format("more than {} request headers", s->limits.headers));
    s->req.headers.emplace_back();
    s->header_bytes += 4;  // ": " and CRLF
    s->in_value = false;
  }
  s->req.headers.back().first.append(at, n);
  return 0;
}

int on_header_value(llhttp_t* p, const char* at, size_t n) {
  auto* s = impl_of(p);
  if (int rc = s->count_header_bytes(n)) return rc;
  s->in_value = true;
  s->req.headers.back().second.append(at, n);
  return 0;
}

// RFC 9110's token characters: what a header name is made of (llhttp lets a space through
// before the colon, which Go's server, Docker's, refuses).
bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    if (std::isalnum(c)) continue;
    if (std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) == std::string_view::npos) return false;
  }
  return true;
}

int on_headers_complete(llhttp_t* p) {
  auto* s = impl_of(p);
  s->req.method = llhttp_method_name(static_cast<llhttp_method_t>(llhttp_get_method(p)));
  // HTTP/1.0 and 1.1 only: llhttp also takes HTTP/0.9 request lines and other versions.
  if (p->http_major != 1 || p->http_minor > 1) {
    s->refuse(400, fmt::format("malformed HTTP request: unsupported HTTP version {}.{}", p->http_major, p->http_minor));
    return -1;
  }
  for (const auto& [name, value] : s->req.headers) {
    if (!is_token(name)) {
      s->refuse(400, "malformed HTTP request: invalid header name");
      return -1;
    }
  }
  // A declared length over the cap is refused before any of the body is read.
  if ((p->flags & F_CONTENT_LENGTH) && p->content_length > s->limits.body_bytes) {
    s->refuse(413, fmt::format("request body is larger than {} MiB", s->limits.body_bytes >> 20));
    return -1;
  }
  s->keep = s->owner->keep_body && s->owner->keep_body(s->req);
  return 0;
}

int on_body(llhttp_t* p, const char* at, size_t n) {
  auto* s = impl_of(p);
  s->req.body_bytes += n;
  if (s->req.body_bytes > s->limits.body_bytes)
    return s->refuse(413, fmt::format("request body is larger than {} MiB", s->limits.body_bytes >> 20));
  if (s->keep) s->req.body.append(at, n);
  return 0;
}

int on_message_complete(llhttp_t* p) {
  auto* s = impl_of(p);
  s->req.keep_alive = llhttp_should_keep_alive(p) != 0;
  s->req.upgrade = p->upgrade != 0;
  s->started = false;
  s->ready = true;
  return HPE_PAUSED;
}

}  // namespace

RequestParser::RequestParser(ParserLimits limits) : impl_(std::make_unique<Impl>()) {
  impl_->limits = limits;
  impl_->owner = this;
  llhttp_settings_init(&impl_->settings);
  impl_->settings.on_message_begin = on_message_begin;
  impl_->settings.on_url = on_url;
  impl_->settings.on_header_field = on_header_field;
  impl_->settings.on_header_value = on_header_value;
  impl_->settings.on_headers_complete = on_headers_complete;
  impl_->settings.on_body = on_body;
  impl_->settings.on_message_complete = on_message_complete;
  llhttp_init(&impl_->parser, HTTP_REQUEST, &impl_->settings);
  impl_->parser.data = impl_.get();
}

RequestParser::~RequestParser() = default;

RequestParser::Step RequestParser::feed(const char* data, size_t n) {
  Impl& s = *impl_;
  Step step;
  if (s.ready) return step;  // take() first
  const llhttp_errno_t err = llhttp_execute(&s.parser, data, n);
  if (err == HPE_OK) {
    step.consumed = n;
    return step;
  }
  if (s.ready && (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE)) {
    const char* pos = llhttp_get_error_pos(&s.parser);
    step.consumed = pos && pos >= data && pos <= data + n ? static_cast<size_t>(pos - data) : n;
    step.kind = Kind::request;
    return step;
  }
  step.kind = Kind::error;
  if (s.err_status != 0) {
    step.status = s.err_status;
    step.message = s.err_message;
  } else {
    step.status = 400;
    const char* reason = llhttp_get_error_reason(&s.parser);
    step.message = fmt::format("malformed HTTP request: {}", reason && *reason ? reason : llhttp_errno_name(err));
  }
  return step;
}

Request RequestParser::take() {
  Impl& s = *impl_;
  s.ready = false;
  if (llhttp_get_errno(&s.parser) == HPE_PAUSED) llhttp_resume(&s.parser);
  return std::move(s.req);
}

bool RequestParser::in_request() const { return impl_->started; }

struct ResponseParser::Impl {
  llhttp_t parser{};
  llhttp_settings_t settings{};
  std::function<void(const Head&)> on_head;
  std::function<void(std::string_view)> on_body;
  Head head;
  bool in_value = false;
  bool complete = false;
  bool upgraded = false;
};

namespace {

ResponseParser::Impl* rimpl(llhttp_t* p) { return static_cast<ResponseParser::Impl*>(p->data); }

int r_field(llhttp_t* p, const char* at, size_t n) {
  auto* s = rimpl(p);
  if (s->in_value || s->head.headers.empty()) {
    if (s->head.headers.size() >= 1024) return HPE_USER;
    s->head.headers.emplace_back();
    s->in_value = false;
  }
  s->head.headers.back().first.append(at, n);
  return 0;
}

int r_value(llhttp_t* p, const char* at, size_t n) {
  auto* s = rimpl(p);
  s->in_value = true;
  if (!s->head.headers.empty()) s->head.headers.back().second.append(at, n);
  return 0;
}

int r_headers_complete(llhttp_t* p) {
  auto* s = rimpl(p);
  s->head.status = llhttp_get_status_code(p);
  if (s->on_head) s->on_head(s->head);
  // 101: what follows is the hijacked stream, not HTTP (llhttp pauses with HPE_PAUSED_UPGRADE).
  return 0;
}

int r_body(llhttp_t* p, const char* at, size_t n) {
  auto* s = rimpl(p);
  if (s->on_body) s->on_body(std::string_view(at, n));
  return 0;
}

int r_complete(llhttp_t* p) {
  auto* s = rimpl(p);
  s->complete = true;
  s->upgraded = p->upgrade != 0;
  return HPE_PAUSED;
}

}  // namespace

std::optional<std::string_view> ResponseParser::Head::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k.size() == name.size() && std::equal(k.begin(), k.end(), name.begin(), [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
        }))
      return v;
  }
  return std::nullopt;
}

ResponseParser::ResponseParser(std::function<void(const Head&)> on_head, std::function<void(std::string_view)> on_body)
    : impl_(std::make_unique<Impl>()) {
  impl_->on_head = std::move(on_head);
  impl_->on_body = std::move(on_body);
  llhttp_settings_init(&impl_->settings);
  impl_->settings.on_header_field = r_field;
  impl_->settings.on_header_value = r_value;
  impl_->settings.on_headers_complete = r_headers_complete;
  impl_->settings.on_body = r_body;
  impl_->settings.on_message_complete = r_complete;
  llhttp_init(&impl_->parser, HTTP_RESPONSE, &impl_->settings);
  impl_->parser.data = impl_.get();
}

ResponseParser::~ResponseParser() = default;

Result<void> ResponseParser::feed(const char* data, size_t n, std::string* rest) {
  Impl& s = *impl_;
  if (s.complete) return {};
  const llhttp_errno_t err = llhttp_execute(&s.parser, data, n);
  if (err == HPE_OK) return {};
  if (s.complete && (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE)) {
    const char* pos = llhttp_get_error_pos(&s.parser);
    if (rest && pos && pos >= data && pos <= data + n) rest->assign(pos, static_cast<size_t>(data + n - pos));
    return {};
  }
  const char* reason = llhttp_get_error_reason(&s.parser);
  return Error::msg("malformed HTTP response: {}", reason && *reason ? reason : llhttp_errno_name(err));
}

Result<void> ResponseParser::finish() {
  Impl& s = *impl_;
  if (s.complete) return {};
  (void)llhttp_finish(&s.parser);  // a body that runs to the close ends here (on_message_complete)
  if (s.complete) return {};
  return Error::msg("the connection closed before the end of the response");
}

bool ResponseParser::complete() const { return impl_->complete; }
bool ResponseParser::upgraded() const { return impl_->upgraded; }

}  // namespace sandrun::runner::api
