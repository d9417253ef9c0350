// Signed session cookies: "id.signature", signature = base64url(HMAC-SHA256(
// secret, "stateside-cookie-v1" || 0x00 || id)) without padding. Several secrets
// verify (rotation); the first signs. Immutable; safe for concurrent use.
// The secrets live in a SecretBuffer (excluded from core dumps) and are
// wiped on destruction.
#ifndef STATESIDE_SIDECAR_CRYPTO_COOKIE_H_
#define STATESIDE_SIDECAR_CRYPTO_COOKIE_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "sidecar/crypto/secret_memory.h"

namespace stateside::crypto {

class CookieSigner {
 public:
  // REQUIRES: at least one secret, each at least 32 bytes (INVALID_ARGUMENT;
  // the message names the secret by position, never by content). The
  // strings of `secrets` are copied into a SecretBuffer and wiped.
  static absl::StatusOr<std::unique_ptr<CookieSigner>> Create(
      std::vector<std::string> secrets);
  ~CookieSigner();

  // "id.signature" under the first secret. Verify accepts cookies of at most
  // 256 bytes, so ids longer than 212 bytes sign but never verify (session
  // ids are 43).
  std::string Sign(std::string_view id) const;

  // The id inside a well-formed cookie whose signature verifies under any
  // secret (constant-time compare), else NOT_FOUND with a fixed message
  // ("session not found") whatever the reason: empty, over 256 bytes, no
  // '.', empty id, a signature that is not exactly 43 canonical base64url
  // characters, or no secret matching. Every secret is tried every time.
  absl::StatusOr<std::string> Verify(std::string_view cookie) const;

 private:
  CookieSigner(SecretBuffer storage, std::vector<std::string_view> secrets)
      : storage_(std::move(storage)), secrets_(std::move(secrets)) {}
  SecretBuffer storage_;                   // every secret's bytes
  std::vector<std::string_view> secrets_;  // into storage_; front() signs
};

}  // namespace stateside::crypto

#endif  // STATESIDE_SIDECAR_CRYPTO_COOKIE_H_
