// Sealing and opening of stored values: AES-256-GCM under a per-message key.
//
// Wire format of an envelope (all of it is what the store holds):
//   version (1 byte, 0x01) | key id length (1 byte) | key id |
//   salt (16 bytes) | nonce (12 bytes) | ciphertext | tag (16 bytes)
// The message key is HKDF-SHA256(master[key id], salt, "stateside aead v1"),
// used for exactly one encryption, so the 2^32-messages-per-key limit of random
// 96-bit GCM nonces (NIST SP 800-38D) cannot be reached. The associated data
// binds the ciphertext to its place: version, key id, session id and attribute
// name, each length-prefixed. A value copied to another session or attribute
// fails to open.
//
// Thread-safe (the keyring is immutable, the random source thread-safe).
#ifndef STATESIDE_SIDECAR_CRYPTO_ENVELOPE_H_
#define STATESIDE_SIDECAR_CRYPTO_ENVELOPE_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "sidecar/crypto/keyring.h"
#include "sidecar/crypto/random.h"

namespace stateside::crypto {

// Why an envelope did not open. Callers log and count it; they answer every
// case the same way (no oracle).
enum class OpenFailure {
  kMalformed,   // too short, bad version, bad lengths
  kUnknownKey,  // key id not in the keyring
  kAuthFailed,  // tag mismatch: tampered, moved, or wrong key bytes
  // A tag mismatch under a key id known to name other key bytes on another
  // instance (KeyMismatches): a configuration error, not tampering.
  kKeyMismatch,
};
std::string_view OpenFailureName(OpenFailure failure);

struct Opened {
  std::string plaintext;
  std::string key_id;  // which key opened it (rotation metrics)
};

// The key ids whose key check value differs from the one another instance
// published (redis/key_check.h): envelopes under them that fail to open are
// reported as kKeyMismatch. Thread-safe; read only when an envelope fails.
class KeyMismatches {
 public:
  // Replaces the set (each check sees the whole keyring).
  void Set(const std::vector<std::string>& ids);
  bool Contains(std::string_view id) const;
  bool empty() const;

 private:
  mutable absl::Mutex mu_;
  absl::flat_hash_set<std::string> ids_ ABSL_GUARDED_BY(mu_);
};

class Sealer {
 public:
  // REQUIRES: all outlive the Sealer; `mismatches` may be null (none known).
  Sealer(const Keyring* keyring, RandomSource* random,
         const KeyMismatches* mismatches = nullptr)
      : keyring_(keyring), random_(random), mismatches_(mismatches) {}

  // Encrypts under the primary key. `place` is the session id, `name` the
  // attribute name (or a reserved name such as "\0user" for metadata).
  // Fails only if the random source does (its status is returned) or on
  // inputs of 2^31 bytes and more (INVALID_ARGUMENT).
  absl::StatusOr<std::string> Seal(std::string_view place, std::string_view name,
                                   std::string_view plaintext) const;

  // On failure returns DATA_LOSS with a fixed message ("envelope did not
  // open"); *failure (if given) says why. An internal OpenSSL error while
  // opening also fails closed and counts as kAuthFailed.
  absl::StatusOr<Opened> Open(std::string_view place, std::string_view name,
                              std::string_view envelope,
                              OpenFailure* failure = nullptr) const;

  // Key id an envelope names, without opening it ("" if malformed).
  static std::string_view KeyIdOf(std::string_view envelope);

  const Keyring& keyring() const { return *keyring_; }

 private:
  const Keyring* const keyring_;
  RandomSource* const random_;
  const KeyMismatches* const mismatches_;
};

}  // namespace stateside::crypto

#endif  // STATESIDE_SIDECAR_CRYPTO_ENVELOPE_H_
