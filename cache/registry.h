// Pulling images from a registry (OCI distribution API v2): manifests, configs and layer blobs,
// each verified against its digest. libcurl is loaded on first use (cache/curl_lib.h).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cache/manifest.h"
#include "cache/store.h"
#include "sandbox/sys/result.h"

namespace sandrun::cache {

struct RegistryOptions {
  // Hosts reached over plain HTTP ("127.0.0.1:5000" exactly, or "localhost" on any port);
  // every other host is HTTPS only, and no request ever falls back to HTTP.
  std::vector<std::string> insecure_hosts;
  // The Docker config.json with credentials; empty: $REGISTRY_AUTH_FILE, else
  // $DOCKER_CONFIG/config.json, else ~/.docker/config.json. A missing file means anonymous.
  std::string auth_file;
  // Credentials given by the caller: used instead of the file's entry for the host.
  std::optional<RegistryLogin> login;
  // CA certificates (PEM) for HTTPS; empty: the system's CA store.
  std::string ca_file;
  // The platform chosen from an image index ("os/arch[/variant]"): the host's by default.
  std::string platform = host_platform().str();
  // Blobs downloaded at once by fetch_blobs() unless it is told otherwise.
  unsigned parallel = 4;
  // When set and it becomes true, transfers stop and calls fail with "cancelled".
  const std::atomic<bool>* cancel = nullptr;
  const std::atomic<bool>* cancel_also = nullptr;  // a second flag (the caller's) that does the same
};

// Receives a blob's bytes in order. They are NOT verified yet: the digest and size are checked
// only after the last byte, so a caller must keep what a sink got provisional and discard it
// when the fetch returns an error (a truncated, oversized or tampered blob). An error from the
// sink stops the transfer and is returned as is.
using BlobSink = std::function<Result<void>(std::string_view)>;

// A client for one image reference. Errors read like
//   pull 127.0.0.1:5000/team/x:1: GET /v2/team/x/manifests/1: 404 Not Found: manifest unknown
// Anonymous first; on a 401 the registry's challenge decides: Basic with the credentials file's
// entry for the host, or Bearer with a token fetched from the challenge's realm (with those
// credentials when there are any), cached for the client and renewed once on a later 401.
// Methods may be called from several threads at once; each call blocks.
class RegistryClient {
 public:
  // `ref` must name a registry host (ref.registry() non-empty). Reads the credentials file
  // now: a malformed one is an error naming it.
  static Result<RegistryClient> create(const ImageRef& ref, RegistryOptions options = {});
  RegistryClient(RegistryClient&&) noexcept;
  RegistryClient& operator=(RegistryClient&&) noexcept;
  ~RegistryClient();

  const ImageRef& ref() const;
  // The credentials file consulted (whether or not it exists).
  const std::string& auth_file() const;

  // The image manifest of the reference: by tag or digest; an index or manifest list is
  // followed to the options' platform. Manifest bytes are verified against the reference's
  // digest (and the index entry's digest and size when one was followed); schema 1, foreign
  // layers and layers that are not tar, tar+gzip or tar+zstd are refused.
  Result<PulledManifest> resolve();

  // A config blob (at most 8 MiB), read into memory and verified.
  Result<std::string> fetch_config(const Descriptor& config);

  // Streams one blob through `sink` in the calling thread, hashing as it goes; then checks
  // size and sha256, failing like
  //   pull 127.0.0.1:5000/team/x:1: blob sha256:ab..: digest mismatch (got sha256:cd..)
  // Redirects (to blob storage) are followed; credentials never go to another host.
  Result<void> fetch_blob(const Descriptor& blob, const BlobSink& sink);

  // Several blobs at once (up to `parallel`, 0: the options' value), all in the calling thread:
  // sinks are never called concurrently. The first error stops the other transfers and is
  // returned; the contract of BlobSink applies to every sink.
  Result<void> fetch_blobs(std::vector<std::pair<Descriptor, BlobSink>> blobs, unsigned parallel = 0);

 private:
  struct State;
  explicit RegistryClient(std::unique_ptr<State> s);
  std::unique_ptr<State> s_;
};

}  // namespace sandrun::cache
