// Streaming sha256 (OpenSSL EVP) and the "sha256:<hex>" digest strings of the image store.
#pragma once

#include <openssl/evp.h>

#include <memory>
#include <string>
#include <string_view>

namespace sandrun::cache {

// Hashes bytes as they stream past; finish() may be called once.
class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t size);
  void update(std::string_view data) { update(data.data(), data.size()); }
  // "sha256:<64 lowercase hex>".
  std::string finish();

 private:
  struct Free {
    void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
  };
  std::unique_ptr<EVP_MD_CTX, Free> ctx_;
};

// The digest of a whole string, "sha256:<hex>".
std::string sha256_of(std::string_view data);

// Initialises the crypto library on the calling thread. Call it from the main thread of a
// process that hashes on threads of its own that end (the daemon's parallel layer imports):
// the library's first use keeps per-thread state that is never freed when that first thread
// is not the main one (a leak LeakSanitizer reports when the process exits).
void init_digests();

// True for exactly "sha256:" followed by 64 lowercase hex digits. Digests read back from the
// index name directories, so anything else (say "sha256:../..") must never reach a path.
bool is_valid_digest(std::string_view digest);

// The hex part of a valid digest ("sha256:ab.." -> "ab..").
std::string_view digest_hex(std::string_view digest);

}  // namespace sandrun::cache
