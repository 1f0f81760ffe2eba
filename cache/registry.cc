// The registry client: authentication state, manifest resolution, verified blob downloads.
#include "cache/registry.h"

#include <mutex>

#include <fmt/format.h>

#include "cache/digest.h"
#include "cache/registry_auth.h"
#include "cache/registry_http.h"

namespace sandrun::cache {

namespace {

constexpr uint64_t kMaxManifest = 4u << 20;  // as containerd: manifests are a few KiB
constexpr uint64_t kMaxConfig = 8u << 20;

BodySink append_to(std::string* out) {
  return [out](std::string_view data) -> Result<void> {
    out->append(data);
    return {};
  };
}

}  // namespace

struct RegistryClient::State {
  ImageRef ref;
  RegistryOptions options;
  Platform platform;
  std::string authority;  // "127.0.0.1:5000"
  std::string repository;  // "team/x"
  std::string auth_file;
  Credentials creds;
  Http http;
  RequestAuth auth;  // its functions capture this State, which never moves

  std::mutex mu;        // guards `header`
  std::string header;   // the Authorization value requests send now ("" at first)
  std::mutex renew_mu;  // one renewal at a time; the others then use its result

  State(Http h) : http(std::move(h)) {}
  void init_auth();
  Result<bool> renew(const std::string& challenge, const std::string& sent);
  Result<std::string> fetch_token(const Challenge& bearer);
  Refusal refusal() const;

  struct Fetched {
    std::string bytes, content_type, digest;
  };
  Result<Fetched> get_manifest(const std::string& reference, const Descriptor* expect);
  Result<PulledManifest> resolve();
  std::string blob_url(const std::string& digest) const {
    return fmt::format("{}/v2/{}/blobs/{}", http.base_url(authority), repository, digest);
  }
};

void RegistryClient::State::init_auth() {
  auth.authority = authority;
  auth.header = [this] {
    std::lock_guard lock(mu);
    return header;
  };
  auth.renew = [this](const std::string& challenge, const std::string& sent) {
    return renew(challenge, sent);
  };
  auth.explain_refusal = [this] { return refusal(); };
}

Refusal RegistryClient::State::refusal() const {
  if (creds.present())
    return {fmt::format("credentials for {} from {} were refused", authority, auth_file), ""};
  if (!creds.helper.empty())
    return {fmt::format("credentials for {} are kept by the credential helper {} that {} names, "
                        "which sandrun does not run", authority, creds.helper, auth_file),
            fmt::format("add an \"auths\" entry for {} to {}, or give another credentials file",
                        authority, auth_file)};
  return {fmt::format("no credentials for {} in {}", authority, auth_file),
          fmt::format("log in with docker login {} or add them to {}", authority, auth_file)};
}

Result<bool> RegistryClient::State::renew(const std::string& challenge, const std::string& sent) {
  std::lock_guard renewing(renew_mu);
  {
    // Another transfer renewed while this one waited: retry with its result.
    std::lock_guard lock(mu);
    if (header != sent) return true;
  }
  std::vector<Challenge> challenges = parse_challenges(challenge);
  const Challenge* bearer = nullptr;
  const Challenge* basic = nullptr;
  for (const Challenge& c : challenges) {
    if (c.scheme == "bearer" && !bearer) bearer = &c;
    if (c.scheme == "basic" && !basic) basic = &c;
  }
  std::string next;
  if (bearer) {
    next = "Bearer " + SANDRUN_TRY(fetch_token(*bearer));
  } else if (basic && creds.present()) {
    next = "Basic " + base64_encode(creds.username + ":" + creds.password);
  }
  if (next.empty() || next == sent) return false;
  std::lock_guard lock(mu);
  header = std::move(next);
  return true;
}

Result<std::string> RegistryClient::State::fetch_token(const Challenge& bearer) {
  std::string realm = bearer.param("realm");
  if (realm.empty()) return Error::msg("the registry's Bearer challenge names no realm");
  std::string url = realm + (realm.find('?') == std::string::npos ? "?" : "&");
  if (std::string service = bearer.param("service"); !service.empty())
    url += "service=" + url_escape(service) + "&";
  url += "scope=" + url_escape(fmt::format("repository:{}:pull", repository));
  std::string body;
  HttpRequest req;
  req.url = url;
  req.what = "token from " + realm.substr(0, realm.find('?'));
  req.sink = append_to(&body);
  req.max_body = 1u << 20;
  RequestAuth basic;
  if (creds.present()) {
    // The token server checks the user's credentials; sent only to the realm's own host.
    basic.authority = url_authority(realm);
    std::string value = "Basic " + base64_encode(creds.username + ":" + creds.password);
    basic.header = [value] { return value; };
  }
  basic.explain_refusal = [this] { return refusal(); };
  req.auth = &basic;
  SANDRUN_TRY(http.get(req));
  auto token = parse_token_response(body);
  if (!token) return std::move(token).error().wrap(req.what);
  return token.take();
}

Result<RegistryClient::State::Fetched> RegistryClient::State::get_manifest(
    const std::string& reference, const Descriptor* expect) {
  Fetched out;
  HttpRequest req;
  std::string path = fmt::format("/v2/{}/manifests/{}", repository, reference);
  req.url = http.base_url(authority) + path;
  req.what = "GET " + path;
  req.headers.push_back(fmt::format("Accept: {}", media::kManifestAccept));
  req.sink = append_to(&out.bytes);
  req.max_body = kMaxManifest;
  req.auth = &auth;
  SANDRUN_TRY(http.get(req));
  out.content_type = req.content_type;
  out.digest = req.body_digest;
  // The registry's own digest of what it sent, when it gives one, must be what arrived.
  const std::string& said = req.docker_content_digest;
  if (is_valid_digest(said) && said != out.digest)
    return Error::msg("{}: the registry says the manifest is {} but its bytes are {}", req.what,
                      said, out.digest);
  if (expect && out.digest != expect->digest)
    return Error::msg("manifest {}: digest mismatch (got {})", expect->digest, out.digest);
  if (expect && expect->size && out.bytes.size() != expect->size)
    return Error::msg("manifest {}: size mismatch (got {} bytes, expected {})", expect->digest,
                      out.bytes.size(), expect->size);
  return out;
}

Result<PulledManifest> RegistryClient::State::resolve() {
  Descriptor by_digest{"", ref.digest, 0};
  Fetched top = SANDRUN_TRY(get_manifest(ref.digest.empty() ? ref.tag : ref.digest,
                                         ref.digest.empty() ? nullptr : &by_digest));
  std::string type;
  auto kind = classify_manifest(top.bytes, top.content_type, &type);
  if (!kind) return std::move(kind).error().wrap(fmt::format("manifest {}", top.digest));
  if (*kind == ManifestKind::image) {
    auto m = parse_image_manifest(top.bytes, type);
    if (!m) return std::move(m).error().wrap(fmt::format("manifest {}", top.digest));
    return m;
  }
  auto chosen = select_platform(top.bytes, platform);
  if (!chosen) return std::move(chosen).error().wrap(fmt::format("index {}", top.digest));
  Fetched child = SANDRUN_TRY(get_manifest(chosen->digest, &*chosen));
  auto child_kind = classify_manifest(child.bytes, child.content_type, &type);
  if (child_kind && *child_kind != ManifestKind::image)
    child_kind = Error::msg("an index where index {} promised an image manifest", top.digest);
  if (auto r = check_manifest_descriptor(chosen->media_type, type); child_kind && !r)
    child_kind = std::move(r.error().wrap(fmt::format("index {}", top.digest)));
  if (!child_kind) return std::move(child_kind).error().wrap(fmt::format("manifest {}", child.digest));
  auto m = parse_image_manifest(child.bytes, type);
  if (!m) return std::move(m).error().wrap(fmt::format("manifest {}", child.digest));
  m->index_digest = top.digest;
  return m;
}

// ---- RegistryClient ---------------------------------------------------------------------

RegistryClient::RegistryClient(std::unique_ptr<State> s) : s_(std::move(s)) {}
RegistryClient::RegistryClient(RegistryClient&&) noexcept = default;
RegistryClient& RegistryClient::operator=(RegistryClient&&) noexcept = default;
RegistryClient::~RegistryClient() = default;

Result<RegistryClient> RegistryClient::create(const ImageRef& ref, RegistryOptions options) {
  std::string host = ref.registry();
  if (host.empty())
    return Error::msg("image \"{}\" has no registry host; sandrun pulls only from a named "
                      "registry (e.g. 127.0.0.1:5000/{})", ref.str(), ref.str());
  auto wrap = [&](Error e) { return std::move(e.wrap("pull " + ref.str())); };
  auto platform = parse_platform(options.platform);
  if (!platform) return wrap(std::move(platform).error());
  std::string auth_file = default_auth_file(options.auth_file);
  auto creds = options.login ? Result<Credentials>(Credentials{options.login->username, options.login->password,
                                                               "the request's credentials", ""})
                             : load_credentials(auth_file, host);
  if (!creds) return wrap(std::move(creds).error());
  if (options.login) auth_file = "the request's credentials";
  auto http = Http::create(HttpOptions{options.insecure_hosts, options.ca_file, options.cancel, options.cancel_also});
  if (!http) return wrap(std::move(http).error());
  auto s = std::make_unique<State>(http.take());
  s->ref = ref;
  s->options = std::move(options);
  s->platform = platform.take();
  s->authority = host;
  s->repository = ref.repository();
  s->auth_file = std::move(auth_file);
  s->creds = creds.take();
  s->init_auth();
  return RegistryClient(std::move(s));
}

const ImageRef& RegistryClient::ref() const { return s_->ref; }
const std::string& RegistryClient::auth_file() const { return s_->auth_file; }

Result<PulledManifest> RegistryClient::resolve() {
  return s_->resolve().wrap("pull " + s_->ref.str());
}

Result<std::string> RegistryClient::fetch_config(const Descriptor& config) {
  std::string out;
  if (config.size > kMaxConfig)
    return Error::msg("config {} is {} bytes, more than the {} an image config may have",
                      config.digest, config.size, kMaxConfig)
        .wrap("pull " + s_->ref.str());
  SANDRUN_TRY(fetch_blob(config, append_to(&out)));
  return out;
}

Result<void> RegistryClient::fetch_blob(const Descriptor& blob, const BlobSink& sink) {
  return fetch_blobs({{blob, sink}}, 1);
}

Result<void> RegistryClient::fetch_blobs(std::vector<std::pair<Descriptor, BlobSink>> blobs,
                                         unsigned parallel) {
  State& s = *s_;
  std::vector<HttpRequest> reqs(blobs.size());
  std::vector<HttpRequest*> ptrs;
  for (size_t i = 0; i < blobs.size(); ++i) {
    auto& [desc, sink] = blobs[i];
    if (!is_valid_digest(desc.digest))
      return Error::msg("blob \"{}\": not a sha256 digest", desc.digest).wrap("pull " + s.ref.str());
    HttpRequest& r = reqs[i];
    r.url = s.blob_url(desc.digest);
    r.what = fmt::format("GET /v2/{}/blobs/{}", s.repository, desc.digest);
    r.sink = std::move(sink);
    r.expect_digest = desc.digest;
    r.expect_size = desc.size;
    r.label = "blob " + desc.digest;
    r.auth = &s.auth;
    ptrs.push_back(&r);
  }
  return s.http.run(ptrs, parallel ? parallel : s.options.parallel).wrap("pull " + s.ref.str());
}

}  // namespace sandrun::cache
