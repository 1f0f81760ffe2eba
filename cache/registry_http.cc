// The registry client's HTTP: libcurl easy handles driven by one multi handle in the caller's
// thread, redirects followed here (so credentials never leave their host), bodies hashed.
#include "cache/registry_http.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <mutex>

#include <deque>
#include <optional>

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "cache/curl_lib.h"
#include "cache/digest.h"

namespace sandrun::cache {

namespace {

constexpr int kMaxRedirects = 5;
constexpr size_t kMaxErrorBody = 64 * 1024;

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
    s.remove_suffix(1);
  return s;
}

std::string_view standard_reason(long status) {
  switch (status) {
    case 200: return "OK";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "";
  }
}

bool is_tls_failure(CURLcode code) {
  return code == CURLE_SSL_CONNECT_ERROR || code == CURLE_PEER_FAILED_VERIFICATION ||
         code == CURLE_SSL_CACERT_BADFILE || code == CURLE_SSL_CERTPROBLEM ||
         code == CURLE_SSL_ISSUER_ERROR || code == CURLE_SSL_PINNEDPUBKEYNOTMATCH;
}

// The sockets curl opens: close-on-exec, as every fd of sandrun (the runner starts helpers).
curl_socket_t open_cloexec_socket(void*, curlsocktype, struct curl_sockaddr* addr) {
  int fd = ::socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
  return fd < 0 ? CURL_SOCKET_BAD : fd;
}

struct EasyFree {
  void operator()(CURL* h) const { curl().curl_easy_cleanup(h); }
};
struct SlistFree {
  void operator()(curl_slist* l) const { curl().curl_slist_free_all(l); }
};

// One request in flight: its handle, where it is (after redirects) and what came back.
struct Transfer {
  HttpRequest* req = nullptr;
  std::unique_ptr<CURL, EasyFree> easy;
  std::unique_ptr<curl_slist, SlistFree> headers;
  std::unique_ptr<curl_slist, SlistFree> resolve;
  std::string url;
  std::string sent_auth;
  int redirects = 0;
  bool renewed = false;
  std::string reason, www_authenticate;
  std::string error_body;
  std::optional<Sha256> hash;
  uint64_t received = 0;
  std::optional<Error> failure;  // set by a callback, which then stops the transfer
  char errbuf[CURL_ERROR_SIZE] = {};

  bool ok_status() const { return req->status >= 200 && req->status < 300; }
  void reset_response() {
    req->status = 0;
    req->content_type.clear();
    req->docker_content_digest.clear();
    reason.clear();
    www_authenticate.clear();
    error_body.clear();
    received = 0;
    hash.emplace();
  }
};

size_t on_header(char* data, size_t size, size_t n, void* userp) {
  auto* t = static_cast<Transfer*>(userp);
  std::string_view line(data, size * n);
  if (starts_with(line, "HTTP/")) {
    // A new response (after a 100 Continue, say): what came before does not count.
    t->reset_response();
    size_t space = line.find(' ');
    std::string_view rest = space == std::string_view::npos ? std::string_view() : line.substr(space + 1);
    t->req->status = std::strtol(std::string(rest.substr(0, 3)).c_str(), nullptr, 10);
    t->reason = std::string(trim(rest.size() > 3 ? rest.substr(3) : std::string_view()));
    return line.size();
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return line.size();
  std::string_view name = line.substr(0, colon), value = trim(line.substr(colon + 1));
  if (iequals(name, "Content-Type")) t->req->content_type = std::string(value);
  else if (iequals(name, "Docker-Content-Digest")) t->req->docker_content_digest = std::string(value);
  else if (iequals(name, "WWW-Authenticate"))
    t->www_authenticate += (t->www_authenticate.empty() ? "" : ", ") + std::string(value);
  return line.size();
}

size_t on_body(char* data, size_t size, size_t n, void* userp) {
  auto* t = static_cast<Transfer*>(userp);
  std::string_view chunk(data, size * n);
  if (!t->ok_status()) {
    // An error page: kept (bounded) for the message, never given to the sink.
    t->error_body.append(chunk.substr(0, kMaxErrorBody - std::min(kMaxErrorBody, t->error_body.size())));
    return chunk.size();
  }
  HttpRequest& r = *t->req;
  uint64_t total = t->received + chunk.size();
  if (!r.expect_digest.empty() && total > r.expect_size) {
    t->failure = Error::msg("{}: larger than the {} bytes its descriptor says", r.label, r.expect_size);
    return CURL_WRITEFUNC_ERROR;
  }
  if (r.max_body && total > r.max_body) {
    t->failure = Error::msg("{}: the answer is larger than {} bytes", r.what, r.max_body);
    return CURL_WRITEFUNC_ERROR;
  }
  t->received = total;
  t->hash->update(chunk);
  if (r.sink) {
    if (auto res = r.sink(chunk); !res) {
      t->failure = std::move(res).error();
      return CURL_WRITEFUNC_ERROR;
    }
  }
  return chunk.size();
}

int on_progress(void* userp, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* options = static_cast<const HttpOptions*>(userp);
  return options->cancelled() ? 1 : 0;  // non-zero aborts the transfer
}

// "host" and "port" of an authority ("[::1]:5000", "reg.test"), the port defaulting to the
// scheme's.
std::pair<std::string, std::string> split_authority(std::string_view authority, bool https) {
  size_t colon = authority.rfind(':');
  size_t bracket = authority.rfind(']');
  if (colon == std::string_view::npos || (bracket != std::string_view::npos && colon < bracket))
    return {std::string(authority), https ? "443" : "80"};
  return {std::string(authority.substr(0, colon)), std::string(authority.substr(colon + 1))};
}

// A CURLOPT_RESOLVE entry "host:port:addr,..." for a host name, resolved here with getaddrinfo;
// "" for an address. libcurl 7.88's own resolver thread signals over a socketpair made without
// SOCK_CLOEXEC, and every fd of sandrun must have it.
Result<std::string> resolve_entry(std::string_view authority, bool https) {
  auto [host, port] = split_authority(authority, https);
  unsigned char buf[sizeof(struct in6_addr)];
  if (host.empty() || host.front() == '[' || ::inet_pton(AF_INET, host.c_str(), buf) == 1) return std::string();
  struct addrinfo hints = {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  struct addrinfo* list = nullptr;
  if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &list); rc != 0)
    return Error::msg("cannot resolve {}: {}", host, ::gai_strerror(rc));
  std::string entry = host + ":" + port + ":";
  for (struct addrinfo* a = list; a; a = a->ai_next) {
    char text[INET6_ADDRSTRLEN] = {};
    const void* addr = a->ai_family == AF_INET6
                           ? static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(a->ai_addr)->sin6_addr)
                           : static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_addr);
    if (!::inet_ntop(a->ai_family, addr, text, sizeof text)) continue;
    if (entry.back() != ':') entry += ",";
    entry += a->ai_family == AF_INET6 ? "[" + std::string(text) + "]" : std::string(text);
  }
  ::freeaddrinfo(list);
  return entry;
}

bool host_is_insecure(const std::vector<std::string>& insecure_hosts, std::string_view authority) {
  // "host:port" matches exactly; a bare "host" entry matches it on any port.
  std::string_view host = authority.substr(0, authority.rfind(':'));
  if (!authority.empty() && authority.front() == '[') host = authority.substr(0, authority.find(']') + 1);
  for (const std::string& h : insecure_hosts)
    if (h == authority || h == host) return true;
  return false;
}

// The messages of a registry's {"errors": [{"code": .., "message": ..}]} body.
std::string registry_messages(std::string_view body) {
  auto doc = nlohmann::json::parse(body.begin(), body.end(), nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("errors") || !doc["errors"].is_array())
    return "";
  std::vector<std::string> out;
  for (auto& e : doc["errors"]) {
    if (!e.is_object()) continue;
    std::string msg = e.value("message", std::string());
    if (msg.empty()) msg = e.value("code", std::string());
    if (!msg.empty()) out.push_back(std::move(msg));
  }
  return fmt::format("{}", fmt::join(out, "; "));
}

}  // namespace

std::string url_authority(std::string_view url) {
  size_t scheme = url.find("://");
  std::string_view rest = scheme == std::string_view::npos ? url : url.substr(scheme + 3);
  rest = rest.substr(0, rest.find_first_of("/?#"));
  if (size_t at = rest.rfind('@'); at != std::string_view::npos) rest.remove_prefix(at + 1);
  std::string out(rest);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string url_escape(std::string_view value) {
  std::string out;
  for (char c : value) {
    bool plain = std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == '~';
    if (plain) out += c;
    else out += fmt::format("%{:02X}", static_cast<unsigned char>(c));
  }
  return out;
}

std::string http_status_text(long status, std::string_view reason, std::string_view body) {
  std::string out = std::to_string(status);
  std::string_view why = reason.empty() ? standard_reason(status) : reason;
  if (!why.empty()) out += fmt::format(" {}", why);
  if (std::string messages = registry_messages(body); !messages.empty()) out += ": " + messages;
  return out;
}

std::string tls_hint(std::string_view authority) {
  return fmt::format("for a registry on this machine that serves plain HTTP, pass "
                     "--insecure-registry {}; for one whose certificate comes from a private CA, "
                     "pass that CA's certificate with --registry-ca FILE", authority);
}

// ---- Http -------------------------------------------------------------------------------

namespace {

// Sockets of this process that a child would inherit (no FD_CLOEXEC).
std::vector<int> inheritable_sockets() {
  std::vector<int> out;
  DIR* d = ::opendir("/proc/self/fd");  // glibc opens it O_CLOEXEC
  if (!d) return out;
  while (struct dirent* e = ::readdir(d)) {
    int fd = std::atoi(e->d_name);
    struct stat st;
    if (e->d_name[0] == '.' || fd == ::dirfd(d) || ::fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode)) continue;
    int flags = ::fcntl(fd, F_GETFD);
    if (flags >= 0 && !(flags & FD_CLOEXEC)) out.push_back(fd);
  }
  ::closedir(d);
  return out;
}

}  // namespace

// A multi handle, and its connections, kept for the next run on any thread (one user at a time).
struct Http::State {
  HttpOptions options;
  std::mutex mu;
  std::vector<CURLM*> idle;

  ~State() {
    for (CURLM* m : idle) curl().curl_multi_cleanup(m);
  }
  CURLM* acquire() {
    {
      std::lock_guard lock(mu);
      if (!idle.empty()) {
        CURLM* m = idle.back();
        idle.pop_back();
        return m;
      }
    }
    // libcurl before 8.x makes the multi handle's wake-up socketpair without SOCK_CLOEXEC:
    // mark the sockets that appeared meanwhile. Any other socket without it would break
    // sandrun's every-fd-is-CLOEXEC rule anyway, so marking one too many is harmless.
    std::vector<int> before = inheritable_sockets();
    CURLM* m = curl().curl_multi_init();
    for (int fd : inheritable_sockets())
      if (std::find(before.begin(), before.end(), fd) == before.end()) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    return m;
  }
  void release(CURLM* m) {
    std::lock_guard lock(mu);
    idle.push_back(m);
  }
};

namespace {

// One run(): a multi handle of its own while it runs, so runs on different threads never share
// one, and a token fetch made while a run waits for a 401's renewal is a run of its own.
struct Runner {
  const HttpOptions& options;
  CURLM* multi;
  Result<void> start(Transfer& t);
  Result<bool> finish(Transfer& t, CURLcode code);  // true: started again
  Result<void> redirect(Transfer& t);
  Error http_error(Transfer& t);
};

}  // namespace

Http::Http(std::unique_ptr<State> s) : s_(std::move(s)) {}
Http::Http(Http&&) noexcept = default;
Http& Http::operator=(Http&&) noexcept = default;
Http::~Http() = default;

Result<Http> Http::create(HttpOptions options) {
  SANDRUN_TRY(load_curl_lib());
  auto s = std::make_unique<State>();
  s->options = std::move(options);
  return Http(std::move(s));
}

bool Http::insecure(std::string_view authority) const {
  return host_is_insecure(s_->options.insecure_hosts, authority);
}

std::string Http::base_url(std::string_view authority) const {
  return fmt::format("{}://{}", insecure(authority) ? "http" : "https", authority);
}

Result<void> Runner::start(Transfer& t) {
  const CurlLib& c = curl();
  HttpRequest& r = *t.req;
  std::string authority = url_authority(t.url);
  bool https = starts_with(t.url, "https://");
  if (!https && !(starts_with(t.url, "http://") && host_is_insecure(options.insecure_hosts, authority)))
    return Error::msg("{}: refusing plain HTTP to {}: only --insecure-registry hosts are reached "
                      "without TLS", r.what, authority);
  if (!t.easy) t.easy.reset(c.curl_easy_init());
  CURL* h = t.easy.get();
  if (!h) return Error::msg("{}: curl_easy_init failed", r.what);
  auto resolved = resolve_entry(authority, https);
  if (!resolved) return std::move(resolved).error().wrap(r.what);
  t.resolve.reset(resolved->empty() ? nullptr : c.curl_slist_append(nullptr, resolved->c_str()));
  c.curl_easy_setopt(h, CURLOPT_RESOLVE, t.resolve.get());
  curl_slist* list = nullptr;
  for (const std::string& line : r.headers) list = c.curl_slist_append(list, line.c_str());
  t.sent_auth.clear();
  if (r.auth && r.auth->header && authority == r.auth->authority) t.sent_auth = r.auth->header();
  if (!t.sent_auth.empty())
    list = c.curl_slist_append(list, ("Authorization: " + t.sent_auth).c_str());
  t.headers.reset(list);
  c.curl_easy_setopt(h, CURLOPT_URL, t.url.c_str());
  c.curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
  c.curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  c.curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  c.curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  c.curl_easy_setopt(h, CURLOPT_USERAGENT, "sandrun");
  c.curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, options.connect_timeout_s);
  c.curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
  c.curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, options.low_speed_time_s);
  if (!options.ca_file.empty()) c.curl_easy_setopt(h, CURLOPT_CAINFO, options.ca_file.c_str());
  c.curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, open_cloexec_socket);
  c.curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  c.curl_easy_setopt(h, CURLOPT_HEADERDATA, &t);
  c.curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  c.curl_easy_setopt(h, CURLOPT_WRITEDATA, &t);
  c.curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
  c.curl_easy_setopt(h, CURLOPT_XFERINFODATA, &options);
  c.curl_easy_setopt(h, CURLOPT_NOPROGRESS, options.cancel || options.cancel_also ? 0L : 1L);
  c.curl_easy_setopt(h, CURLOPT_ERRORBUFFER, t.errbuf);
  c.curl_easy_setopt(h, CURLOPT_PRIVATE, &t);
  t.errbuf[0] = '\0';
  t.reset_response();
  if (CURLMcode mc = c.curl_multi_add_handle(multi, h); mc != CURLM_OK)
    return Error::msg("{}: {}", r.what, c.curl_multi_strerror(mc));
  return {};
}

Result<void> Runner::redirect(Transfer& t) {
  HttpRequest& r = *t.req;
  char* location = nullptr;
  curl().curl_easy_getinfo(t.easy.get(), CURLINFO_REDIRECT_URL, &location);
  if (!location || !*location)
    return Error::msg("{}: {} without a Location", r.what, http_status_text(r.status, t.reason, ""));
  if (++t.redirects > kMaxRedirects) return Error::msg("{}: more than {} redirects", r.what, kMaxRedirects);
  // start() checks the scheme again and sends credentials only to their own host.
  t.url = location;
  return start(t);
}

Error Runner::http_error(Transfer& t) {
  HttpRequest& r = *t.req;
  std::string text = http_status_text(r.status, t.reason, t.error_body);
  // Only the host: a storage URL's query often carries a signature.
  if (t.redirects > 0) text += fmt::format(" (redirected to {})", url_authority(t.url));
  Refusal why;
  if (r.status == 401 && r.auth && r.auth->explain_refusal) why = r.auth->explain_refusal();
  if (!why.note.empty()) text += fmt::format(" ({})", why.note);
  Error e = Error::msg("{}: {}", r.what, text);
  if (!why.hint.empty()) e.hint(why.hint);
  return e;
}

Result<bool> Runner::finish(Transfer& t, CURLcode code) {
  HttpRequest& r = *t.req;
  if (t.failure) return std::move(*t.failure);
  if (code == CURLE_ABORTED_BY_CALLBACK) return Error::msg("{}: cancelled", r.what);
  if (code != CURLE_OK) {
    Error e = Error::msg("{}: {}", r.what, t.errbuf[0] ? t.errbuf : curl().curl_easy_strerror(code));
    if (is_tls_failure(code)) e.hint(tls_hint(url_authority(t.url)));
    return e;
  }
  long s = r.status;
  if (s == 301 || s == 302 || s == 303 || s == 307 || s == 308) {
    SANDRUN_TRY(redirect(t));
    return true;
  }
  bool own_host = r.auth && url_authority(t.url) == r.auth->authority;
  if (s == 401 && own_host && r.auth->renew && !t.renewed) {
    t.renewed = true;  // one retry: a second 401 means the new credentials are refused too
    if (SANDRUN_TRY(r.auth->renew(t.www_authenticate, t.sent_auth))) {
      SANDRUN_TRY(start(t));
      return true;
    }
  }
  if (!t.ok_status()) return http_error(t);
  r.body_digest = t.hash->finish();
  if (!r.expect_digest.empty()) {
    if (t.received != r.expect_size)
      return Error::msg("{}: size mismatch (got {} bytes, expected {})", r.label, t.received, r.expect_size);
    if (r.body_digest != r.expect_digest)
      return Error::msg("{}: digest mismatch (got {})", r.label, r.body_digest);
  }
  return false;
}

namespace {

// The transfer a finished easy handle belongs to.
Transfer* transfer_of(CURL* easy) {
  char* p = nullptr;
  curl().curl_easy_getinfo(easy, CURLINFO_PRIVATE, &p);
  return reinterpret_cast<Transfer*>(p);
}

}  // namespace

Result<void> Http::run(const std::vector<HttpRequest*>& requests, unsigned parallel) {
  const CurlLib& c = curl();
  const HttpOptions& options = s_->options;
  auto release = [this](CURLM* m) { s_->release(m); };
  std::unique_ptr<CURLM, decltype(release)> multi(s_->acquire(), release);
  if (!multi) return Error::msg("curl_multi_init failed");
  Runner run_state{options, multi.get()};
  std::deque<Transfer> transfers(requests.size());  // stable addresses for the callbacks
  std::vector<Transfer*> active;
  std::optional<Error> failure;
  size_t next = 0;
  auto settle = [&](Transfer* t, CURLcode code) {
    c.curl_multi_remove_handle(multi.get(), t->easy.get());
    std::erase(active, t);
    auto again = run_state.finish(*t, code);
    if (!again) failure = std::move(again).error();
    else if (*again) active.push_back(t);
  };
  while (!failure) {
    while (!failure && active.size() < std::max(parallel, 1u) && next < requests.size()) {
      Transfer& t = transfers[next];
      t.req = requests[next++];
      t.url = t.req->url;
      if (auto r = run_state.start(t); !r) failure = std::move(r).error();
      else active.push_back(&t);
    }
    if (failure || active.empty()) break;
    int running = 0;
    if (CURLMcode mc = c.curl_multi_perform(multi.get(), &running); mc != CURLM_OK) {
      failure = Error::msg("curl_multi_perform: {}", c.curl_multi_strerror(mc));
      break;
    }
    int left = 0;
    while (CURLMsg* msg = failure ? nullptr : c.curl_multi_info_read(multi.get(), &left)) {
      if (msg->msg == CURLMSG_DONE) settle(transfer_of(msg->easy_handle), msg->data.result);
    }
    if (!failure && options.cancelled()) failure = Error::msg("cancelled");
    if (!failure && running > 0) c.curl_multi_poll(multi.get(), nullptr, 0, 200, nullptr);
  }
  // The first failure stops the rest; their sinks see nothing more.
  for (Transfer* t : active) c.curl_multi_remove_handle(multi.get(), t->easy.get());
  if (failure) return std::move(*failure);
  return {};
}

}  // namespace sandrun::cache
