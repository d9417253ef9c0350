// Checks a presented secret (an admin bearer token) against the configured
// one without keeping the secret itself: Create() keeps only HMAC-SHA256 of
// it under a random key drawn at start, and Matches() compares the HMAC of
// the presented value with CRYPTO_memcmp. Both digests are 32 bytes whatever
// the inputs, so the time taken tells neither the contents nor the length of
// the secret. Immutable; safe for concurrent use. Wipes its key on
// destruction.
#ifndef STATESIDE_SIDECAR_CRYPTO_SECRET_VERIFIER_H_
#define STATESIDE_SIDECAR_CRYPTO_SECRET_VERIFIER_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "sidecar/crypto/random.h"

namespace stateside::crypto {

class SecretVerifier {
 public:
  // REQUIRES: a non-empty secret (INVALID_ARGUMENT otherwise; the message
  // never holds the secret). Fails if the random source does.
  static absl::StatusOr<std::unique_ptr<SecretVerifier>> Create(
      std::string_view secret, RandomSource& random);
  ~SecretVerifier();
  SecretVerifier(const SecretVerifier&) = delete;
  SecretVerifier& operator=(const SecretVerifier&) = delete;

  // Whether `presented` equals the secret, in time independent of both.
  bool Matches(std::string_view presented) const;

 private:
  SecretVerifier(std::string key, std::string digest)
      : key_(std::move(key)), digest_(std::move(digest)) {}
  std::string key_;     // random, 32 bytes: the HMAC key
  std::string digest_;  // HMAC-SHA256(key_, secret)
};

}  // namespace stateside::crypto

#endif  // STATESIDE_SIDECAR_CRYPTO_SECRET_VERIFIER_H_
