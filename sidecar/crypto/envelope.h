// Sealing and opening of stored values: AES-256-GCM under a per-epoch data
// key (version 2); version-1 envelopes, under a per-message key, still open.
//
// Wire format of an envelope (all of it is what the store holds):
//   version (1 byte) | key id length (1 byte) | key id |
//   salt (16 bytes) | nonce (12 bytes) | ciphertext | tag (16 bytes)
// Version 2 (0x02, what Seal writes): the key is the sealing epoch's data key
// HKDF-SHA256(master[key id], salt, "stateside aead v2"); the salt names the
// epoch. A Sealer keeps one epoch (a random salt and its key) per seal slot,
// counts the encryptions under it and draws a fresh salt after
// SealerOptions::seals_per_epoch (2^24) of them, far below the 2^32
// random-nonce limit per key of NIST SP 800-38D, or once the epoch is
// SealerOptions::epoch_duration (1 h) old, whichever comes first (so a
// quiet instance does not write days of values under one salt); every
// encryption draws a fresh random 96-bit nonce. A new keyring means a new Sealer and so new
// epochs. Opening looks the data key up in a bounded cache by (key id, salt)
// (key_cache.h), so the attributes of a session written in one epoch cost
// one derivation at most, and none once cached.
// Version 1 (0x01, written by earlier releases): the key is
// HKDF-SHA256(master[key id], salt, "stateside aead v1"), used for exactly one
// encryption. Opened as before (one derivation per open); the rewrap sweep
// (IsCurrent) moves such values to version 2.
// The associated data binds the ciphertext to its place: version, key id,
// session id and attribute name, each length-prefixed. A value copied to
// another session or attribute fails to open.
//
// Thread-safe (the keyring is immutable, the random source thread-safe, the
// epochs and the key cache locked by slot and by shard).
#ifndef STATESIDE_SIDECAR_CRYPTO_ENVELOPE_H_
#define STATESIDE_SIDECAR_CRYPTO_ENVELOPE_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "sidecar/common/clock.h"
#include "sidecar/crypto/key_cache.h"
#include "sidecar/crypto/keyring.h"
#include "sidecar/crypto/primitives.h"
#include "sidecar/crypto/random.h"
#include "sidecar/crypto/secret_memory.h"

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

struct SealerOptions {
  // Encryptions under one epoch's data key before a seal slot draws a fresh
  // salt. 2^24 keeps the chance of a repeated random nonce under one key
  // below 2^-49 (NIST SP 800-38D asks for at most 2^-32 and allows 2^32
  // encryptions); tests make it small.
  uint64_t seals_per_epoch = uint64_t{1} << 24;
  // How long one epoch's salt seals at most: the next seal after that draws
  // a fresh one. Bounds what a shared salt links (docs/SECURITY.md). A
  // duration <= 0 acts as a fresh epoch per seal.
  absl::Duration epoch_duration = absl::Hours(1);
  // The time source of epoch_duration; null means the system clock.
  const Clock* clock = nullptr;
  // Derived data keys kept for opening (32 bytes each, in a SecretBuffer).
  size_t cached_keys = 4096;
  // 1 seals what earlier releases sealed (a per-message key), which they
  // can open during a rolling upgrade (STATESIDE_ENVELOPE_VERSION); anything
  // else seals version 2.
  int seal_version = 2;
};

class Sealer {
 public:
  // Seal slots: each has its own epoch and lock, a thread always uses the
  // same one, so concurrent writers rarely share a lock.
  static constexpr size_t kSealSlots = 4;

  // REQUIRES: all outlive the Sealer; `mismatches` may be null (none known).
  // options.seals_per_epoch 0 acts as 1.
  Sealer(const Keyring* keyring, RandomSource* random,
         const KeyMismatches* mismatches = nullptr, SealerOptions options = {});
  ~Sealer();
  Sealer(const Sealer&) = delete;
  Sealer& operator=(const Sealer&) = delete;

  // Encrypts under the primary key (version 2 unless options.seal_version
  // is 1). `place` is the session id, `name` the attribute name (or a
  // reserved name such as "\0user" for metadata). Fails only if the random
  // source does (its status is returned; a failed new epoch is retried by
  // the next seal) or on inputs of 2^31 bytes and more (INVALID_ARGUMENT).
  absl::StatusOr<std::string> Seal(std::string_view place, std::string_view name,
                                   std::string_view plaintext) const;

  // Opens version 2 and version 1. On failure returns DATA_LOSS with a fixed
  // message ("envelope did not open"); *failure (if given) says why. An
  // internal OpenSSL error while opening also fails closed and counts as
  // kAuthFailed.
  absl::StatusOr<Opened> Open(std::string_view place, std::string_view name,
                              std::string_view envelope,
                              OpenFailure* failure = nullptr) const;

  // Opens the envelopes of one read (a session's values) on the calling
  // thread, each exactly as Open would and answered the same way, under one
  // AES key schedule per run of values sharing a data key (Aes256GcmOpener):
  // a session's version-2 values mostly share their epoch's key, so it is
  // looked up and expanded once instead of once per value. Its destructor
  // wipes the data key it kept and puts the thread's AES context back on
  // the zero key. A stack object within one call: not thread-safe;
  // REQUIRES: the Sealer outlives it.
  class Opener {
   public:
    explicit Opener(const Sealer& sealer) : sealer_(sealer) {}
    ~Opener();
    Opener(const Opener&) = delete;
    Opener& operator=(const Opener&) = delete;

    absl::StatusOr<Opened> Open(std::string_view place, std::string_view name,
                                std::string_view envelope,
                                OpenFailure* failure = nullptr);

    // AES key schedules made so far (tests).
    int keyings() const { return gcm_.keyings(); }

   private:
    const Sealer& sealer_;
    Aes256GcmOpener gcm_;
    // The last version-2 data key and the envelope bytes naming it (key id
    // length | key id | salt); cache_id_size_ 0: none.
    char data_key_[kAes256KeySize] = {};
    char cache_id_[49] = {};  // up to 32 bytes of key id
    size_t cache_id_size_ = 0;
    bool data_key_cached_ = false;  // data_key_ is in the Sealer's cache
  };

  // Key id an envelope names, without opening it ("" if malformed).
  static std::string_view KeyIdOf(std::string_view envelope);
  // Version byte of a well-formed envelope (1 or 2), 0 if malformed.
  static int VersionOf(std::string_view envelope);
  // Whether Seal would write this envelope the same way: version 2 under the
  // primary key. The rewrap sweep leaves such values and reseals the rest.
  bool IsCurrent(std::string_view envelope) const;

  const Keyring& keyring() const { return *keyring_; }

  // Version-2 data keys Open derived so far (key cache misses, whether the
  // envelope then opened or not). Observed by tests.
  uint64_t open_derivations() const {
    return open_derivations_.load(std::memory_order_relaxed);
  }

 private:
  // A seal slot's epoch: its salt, its data key and how often it was used.
  // Always under the primary: the keyring never changes under a Sealer (a
  // new keyring comes with a new Sealer, and so with new epochs).
  struct Epoch {
    absl::Mutex mu;
    std::array<char, 16> salt ABSL_GUARDED_BY(mu) = {};
    uint64_t sealed ABSL_GUARDED_BY(mu) = 0;  // encryptions under the key
    bool live ABSL_GUARDED_BY(mu) = false;    // salt and key were drawn
    absl::Time began ABSL_GUARDED_BY(mu);      // when they were drawn
    // 32 bytes of epoch_keys_, read and written under mu; null if no
    // SecretBuffer could be mapped (then every seal is an epoch of its own).
    char* key ABSL_GUARDED_BY(mu) ABSL_PT_GUARDED_BY(mu) = nullptr;
  };
  // Copies the slot's salt and key for one more encryption, starting a new
  // epoch first if this one is used up.
  absl::Status NextSeal(Epoch& epoch, char* salt, char* key) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(epoch.mu);
  // The data key of a version-2 envelope (`cache_id`: key id length | key id
  // | salt as in it), from the cache (*cached) or else derived; Open caches
  // a derived key once a tag verified under it.
  absl::Status DataKey(const Keyring::Key& key, std::string_view cache_id,
                       std::string_view salt, char* out, bool* cached) const;

  const Keyring* const keyring_;
  RandomSource* const random_;
  const KeyMismatches* const mismatches_;
  const SealerOptions options_;
  const Clock* const clock_;  // options_.clock or the system clock
  SecretBuffer epoch_keys_;  // kSealSlots data keys; wiped on destruction
  mutable std::array<Epoch, kSealSlots> epochs_;
  mutable DerivedKeyCache cache_;
  mutable std::atomic<uint64_t> open_derivations_{0};
};

}  // namespace stateside::crypto

#endif  // STATESIDE_SIDECAR_CRYPTO_ENVELOPE_H_
