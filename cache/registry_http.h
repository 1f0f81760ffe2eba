// HTTP for the registry client, over libcurl (internal to cache/): several GETs at once in
// the calling thread, redirects followed by hand, bodies streamed and checked as they arrive.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sandbox/sys/result.h"

namespace sandrun::cache {

using BodySink = std::function<Result<void>(std::string_view)>;

// Why a registry refused credentials, for the error of a final 401.
struct Refusal {
  std::string note;  // appended in parentheses: "credentials for HOST from FILE were refused"
  std::string hint;
};

// How a request authenticates. Credentials are sent only to `authority`: a redirect to another
// host (blob storage) goes there without them.
struct RequestAuth {
  std::string authority;                  // "127.0.0.1:5000"
  std::function<std::string()> header;    // the current Authorization value, or ""
  // After a 401 carrying `challenge` (WWW-Authenticate) to a request that sent `sent`: gets new
  // credentials; true to retry (once per request).
  std::function<Result<bool>(const std::string& challenge, const std::string& sent)> renew;
  // Why a final 401 happened (which credentials were refused, or that there were none).
  std::function<Refusal()> explain_refusal;
};

struct HttpRequest {
  std::string url;                   // absolute
  std::string what;                  // "GET /v2/team/x/manifests/1", the errors' context
  std::vector<std::string> headers;  // extra header lines ("Accept: ...")
  BodySink sink;                     // the body of a 2xx answer, in pieces
  uint64_t max_body = 0;             // refuse a larger body (0: no limit)
  // When set, the body must be exactly this size and hash (checked as it streams and at its
  // end); `label` names it in those errors ("blob sha256:...").
  std::string expect_digest;
  uint64_t expect_size = 0;
  std::string label;
  const RequestAuth* auth = nullptr;

  // Filled in by Http::run.
  long status = 0;
  std::string content_type;
  std::string docker_content_digest;
  std::string body_digest;  // sha256 of what reached the sink
};

struct HttpOptions {
  std::vector<std::string> insecure_hosts;  // "host:port" or "host": plain HTTP allowed
  std::string ca_file;                      // empty: the system's CA store
  const std::atomic<bool>* cancel = nullptr;
  const std::atomic<bool>* cancel_also = nullptr;  // a second flag that stops transfers too
  bool cancelled() const { return (cancel && cancel->load()) || (cancel_also && cancel_also->load()); }
  long connect_timeout_s = 15;
  long low_speed_time_s = 30;  // abort a transfer stalled (under 1 byte/s) this long
};

class Http {
 public:
  static Result<Http> create(HttpOptions options);
  Http(Http&&) noexcept;
  Http& operator=(Http&&) noexcept;
  ~Http();

  // Runs the requests, at most `parallel` at once. Every callback runs in the calling thread
  // and a sink is never re-entered. The first failure stops the others and is returned.
  Result<void> run(const std::vector<HttpRequest*>& requests, unsigned parallel);
  Result<void> get(HttpRequest& request) { return run({&request}, 1); }

  // "https://AUTHORITY", or "http://AUTHORITY" when the host is one of the insecure hosts.
  std::string base_url(std::string_view authority) const;
  bool insecure(std::string_view authority) const;

 private:
  struct State;
  explicit Http(std::unique_ptr<State> s);
  std::unique_ptr<State> s_;
};

// "127.0.0.1:5000" of "http://127.0.0.1:5000/v2/"; the host is lowercased, userinfo dropped.
std::string url_authority(std::string_view url);
// Percent-encodes everything but unreserved characters (for query values).
std::string url_escape(std::string_view value);
// "404 Not Found: manifest unknown": the status, its reason (the server's, else the standard
// one), and the messages of a registry's JSON error body ({"errors": [{"message": ...}]}).
std::string http_status_text(long status, std::string_view reason, std::string_view body);
// The advice for a TLS failure talking to `authority`.
std::string tls_hint(std::string_view authority);

}  // namespace sandrun::cache
