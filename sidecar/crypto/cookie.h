// Signed session cookies: "id.signature", signature = base64url(HMAC-SHA256(
// secret, "stateside-cookie-v1" || 0x00 || id)) without padding. Several secrets
// verify (rotation); the first (the primary) signs. Immutable; safe for
// concurrent use. Each secret is keyed into an HmacSha256Key once
// (primitives.h), whose contexts are wiped on destruction; the secrets'
// own bytes are wiped as soon as they are keyed.
//
// Signing is deterministic (no timestamp, no nonce): the cookie of an id
// under a secret is always the same string. So a cookie that verifies under
// the primary secret is exactly what Sign would return for its id, and a
// read of the session it names answers with it as given (the session rules
// do); only a cookie verified under an older secret is signed again, which
// moves it to the primary secret.
#ifndef STATESIDE_SIDECAR_CRYPTO_COOKIE_H_
#define STATESIDE_SIDECAR_CRYPTO_COOKIE_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "sidecar/crypto/primitives.h"

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
  // `primary`, if not null, is set to whether the primary secret's
  // signature matched (every secret is still tried). A cookie accepted with
  // primary true is byte for byte Sign(id): Sign is deterministic and only
  // the canonical encoding of a signature is accepted.
  absl::StatusOr<std::string> Verify(std::string_view cookie,
                                     bool* primary = nullptr) const;

 private:
  explicit CookieSigner(std::vector<std::unique_ptr<HmacSha256Key>> keys)
      : keys_(std::move(keys)) {}
  // One per secret, in the configured order; front() signs.
  const std::vector<std::unique_ptr<HmacSha256Key>> keys_;
};

}  // namespace stateside::crypto

#endif  // STATESIDE_SIDECAR_CRYPTO_COOKIE_H_
