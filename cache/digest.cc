// Streaming sha256 (OpenSSL EVP) and the "sha256:<hex>" digest strings of the image store.
#include "cache/digest.h"

#include <cstdlib>

namespace sandrun::cache {

namespace {
constexpr std::string_view kPrefix = "sha256:";
}

void init_digests() { (void)sha256_of(""); }

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  // Allocation failure of a few bytes or a crypto library without sha256: nothing sensible
  // can continue, and returning a wrong digest would be worse than stopping.
  if (!ctx_ || EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) != 1) std::abort();
}

void Sha256::update(const void* data, size_t size) {
  if (size > 0) EVP_DigestUpdate(ctx_.get(), data, size);
}

std::string Sha256::finish() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx_.get(), md, &len);
  static const char kHex[] = "0123456789abcdef";
  std::string out(kPrefix);
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 0xf];
  }
  return out;
}

std::string sha256_of(std::string_view data) {
  Sha256 h;
  h.update(data);
  return h.finish();
}

bool is_valid_digest(std::string_view digest) {
  if (digest.size() != kPrefix.size() + 64 || digest.substr(0, kPrefix.size()) != kPrefix)
    return false;
  for (char c : digest.substr(kPrefix.size()))
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

std::string_view digest_hex(std::string_view digest) {
  return digest.substr(digest.rfind(':') + 1);
}

}  // namespace sandrun::cache
