// SecretVerifier: HMAC both sides under a random key, compare the digests.
#include "sidecar/crypto/secret_verifier.h"

#include <utility>

#include "sidecar/crypto/primitives.h"

namespace stateside::crypto {

absl::StatusOr<std::unique_ptr<SecretVerifier>> SecretVerifier::Create(
    std::string_view secret, RandomSource& random) {
  if (secret.empty()) return absl::InvalidArgumentError("the secret is empty");
  absl::StatusOr<std::string> key = RandomBytes(random, kSha256Size);
  if (!key.ok()) return key.status();
  std::string digest(kSha256Size, '\0');
  if (absl::Status s = HmacSha256To(*key, {secret}, digest.data()); !s.ok()) {
    Cleanse(*key);
    return s;
  }
  return std::unique_ptr<SecretVerifier>(
      new SecretVerifier(*std::move(key), std::move(digest)));
}

SecretVerifier::~SecretVerifier() {
  Cleanse(key_);
  Cleanse(digest_);
}

bool SecretVerifier::Matches(std::string_view presented) const {
  char digest[kSha256Size];
  const bool ok = HmacSha256To(key_, {presented}, digest).ok() &&
                  ConstantTimeEquals({digest, sizeof(digest)}, digest_);
  Cleanse(digest, sizeof(digest));
  return ok;
}

}  // namespace stateside::crypto
