// The cryptographic primitives, bytes in and bytes out: AES-256-GCM,
// HMAC-SHA256, HKDF-SHA256, constant-time comparison and memory wiping.
// Implemented in openssl.cc, the only file of the project that includes
// OpenSSL's crypto API (redis/transport.cc includes its TLS, for Redis
// connections only). Other modules reach it only through the envelope, key
// cache and cookie headers, which include it for their members; they call
// the envelope, keyring and cookie APIs. Every function is thread-safe.
#ifndef STATESIDE_SIDECAR_CRYPTO_PRIMITIVES_H_
#define STATESIDE_SIDECAR_CRYPTO_PRIMITIVES_H_

#include <cstddef>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace stateside::crypto {

inline constexpr size_t kAes256KeySize = 32;
inline constexpr size_t kGcmNonceSize = 12;  // 96 bits: GCM's native IV size
inline constexpr size_t kGcmTagSize = 16;    // full 128-bit tag, never truncated
inline constexpr size_t kSha256Size = 32;

// --- AES-256-GCM -----------------------------------------------------------
// REQUIRES (else INVALID_ARGUMENT): key of 32 bytes, nonce of 12 bytes, each
// input shorter than 2^31 bytes.

// Writes ciphertext (plaintext.size() bytes) followed by the 16-byte tag to
// out[0, plaintext.size() + 16). `out` must not overlap the inputs.
absl::Status Aes256GcmSealTo(std::string_view key, std::string_view nonce,
                             std::string_view aad, std::string_view plaintext,
                             char* out);

// Checks and decrypts `sealed` = ciphertext || tag into out[0, sealed.size()
// - 16). DATA_LOSS if the tag does not verify (out is then wiped: GCM releases
// plaintext before the tag is checked, and unauthenticated bytes must not
// escape); INVALID_ARGUMENT if sealed is shorter than a tag.
absl::Status Aes256GcmOpenTo(std::string_view key, std::string_view nonce,
                             std::string_view aad, std::string_view sealed,
                             char* out);

// Opens several messages on the calling thread under as few AES key
// schedules as they need: the thread's context is keyed when a message's key
// differs from the last one this opener keyed it with (or another seal or
// open re-keyed it since), and each message only sets its nonce. Aes256GcmOpenTo
// keys and forgets per call; a session read's values mostly share one data
// key, and the two key expansions were most of an open's cost. Each OpenTo
// checks its inputs and answers a tag or OpenSSL failure as Aes256GcmOpenTo
// does (the reset to the zero key happens once, in the destructor, so a
// failed reset is not an open's answer here); a failure leaves the
// context to be keyed afresh by the next. The destructor puts the context
// back on the all-zero key (or frees it if that fails), so no key schedule
// outlives the opener, and wipes its copy of the last key. Lives on one
// thread's stack, within one call: not thread-safe, never moved to another
// thread.
class Aes256GcmOpener {
 public:
  Aes256GcmOpener() = default;
  ~Aes256GcmOpener();
  Aes256GcmOpener(const Aes256GcmOpener&) = delete;
  Aes256GcmOpener& operator=(const Aes256GcmOpener&) = delete;

  absl::Status OpenTo(std::string_view key, std::string_view nonce,
                      std::string_view aad, std::string_view sealed, char* out);

  // Times the thread's context was keyed by this opener (tests).
  int keyings() const { return keyings_; }

 private:
  char key_[kAes256KeySize] = {};  // what the context holds, if ours
  bool rekey_ = false;             // the last open failed: key afresh
  int keyings_ = 0;
};

// Whether the thread's AES-GCM context holds the all-zero key's schedule
// (tests: that no key schedule outlives a seal, an open or an opener). It
// compares two tags inside; nothing sealed under a live key leaves it.
absl::StatusOr<bool> ThreadAes256GcmIsOnZeroKeyForTesting();

// Convenience forms returning ciphertext || tag, and the plaintext.
absl::StatusOr<std::string> Aes256GcmSeal(std::string_view key,
                                          std::string_view nonce,
                                          std::string_view aad,
                                          std::string_view plaintext);
absl::StatusOr<std::string> Aes256GcmOpen(std::string_view key,
                                          std::string_view nonce,
                                          std::string_view aad,
                                          std::string_view sealed);

// --- HMAC-SHA256 -----------------------------------------------------------
// MAC over the concatenation of `parts` (saves callers building a buffer for
// domain-separated inputs such as purpose || 0x00 || value). Writes 32 bytes.
absl::Status HmacSha256To(std::string_view key,
                          std::initializer_list<std::string_view> parts,
                          char* out);
absl::StatusOr<std::string> HmacSha256(std::string_view key,
                                       std::string_view data);

// HMAC-SHA256 under one long-lived key (a cookie secret), keyed once: the
// hashed inner and outer pads are computed by Create, and each MAC copies
// that keyed state instead of hashing the key again. The keyed contexts
// live in a few slots owned by the object (a thread takes the slot its
// thread number picks, without waiting; if another thread holds it, the MAC
// copies the keyed state into a context of its own for that call), so no
// context keyed with this key outlives the object: its destructor frees
// them all, and OpenSSL wipes a context's key and digest states as it frees
// them. Those states sit in OpenSSL's heap, not in a SecretBuffer: a core
// dump may include them. Thread-safe; MacTo gives the same 32 bytes as
// HmacSha256To with the same key.
class HmacSha256Key {
 public:
  // INTERNAL if OpenSSL cannot set up the context.
  static absl::StatusOr<std::unique_ptr<HmacSha256Key>> Create(
      std::string_view key);
  ~HmacSha256Key();
  HmacSha256Key(const HmacSha256Key&) = delete;
  HmacSha256Key& operator=(const HmacSha256Key&) = delete;

  // The MAC of the concatenation of `parts`; writes 32 bytes.
  absl::Status MacTo(std::initializer_list<std::string_view> parts,
                     char* out) const;

 private:
  struct State;
  explicit HmacSha256Key(std::unique_ptr<State> state);
  const std::unique_ptr<State> state_;
};

// --- HKDF-SHA256 (RFC 5869, extract then expand) ---------------------------
// An empty salt means RFC 5869's default (HashLen zero bytes). REQUIRES:
// non-empty key, 1 <= out_len <= 255 * 32.
absl::Status HkdfSha256To(std::string_view key, std::string_view salt,
                          std::string_view info, char* out, size_t out_len);
absl::StatusOr<std::string> HkdfSha256(std::string_view key,
                                       std::string_view salt,
                                       std::string_view info, size_t out_len);

// --- Memory ----------------------------------------------------------------
// Compares in time that depends only on the lengths, never on the contents.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

// Overwrites memory in a way the compiler may not optimise away.
void Cleanse(void* data, size_t n);
// Wipes the string's bytes, then clears it.
void Cleanse(std::string& s);

}  // namespace stateside::crypto

#endif  // STATESIDE_SIDECAR_CRYPTO_PRIMITIVES_H_
