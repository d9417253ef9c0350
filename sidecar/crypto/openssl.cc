// The one file of Stateside that includes OpenSSL: AES-256-GCM, HMAC-SHA256,
// HKDF-SHA256, constant-time comparison, wiping and the CSPRNG, behind the
// bytes-in/bytes-out functions of primitives.h and random.h.
//
// Performance (every session read and write comes through here): OpenSSL 3
// looks an algorithm up in a locked provider store whenever it is named
// ("AES-256-GCM", "SHA256"), so the cipher and the MAC are fetched once per
// process, and HMAC contexts are cloned from a template that already holds
// the digest instead of naming it on every call. An HMAC context is cloned
// once per thread and re-keyed by each MAC, not cloned per MAC; after
// each MAC it is re-keyed with the empty key, so it never keeps a caller's
// key (or its pads) in memory after the caller wiped it. A long-lived key
// (HmacSha256Key: the cookie secrets) is keyed once instead, and its MACs
// restart from the keyed state (EVP_MAC_init without a key copies the
// hashed inner pad: no key hashing). Likewise one AES-256-GCM context per
// thread, initialised with the caller's key and nonce by every seal and open
// (no allocation per call); see ThreadAes256Gcm for what it keeps between
// calls.
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstring>
#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sidecar/crypto/digest.h"
#include "sidecar/crypto/encoding.h"
#include "sidecar/crypto/primitives.h"
#include "sidecar/crypto/random.h"

namespace stateside::crypto {
namespace {

struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* ctx) const { EVP_CIPHER_CTX_free(ctx); }
};
struct MacCtxFree {
  void operator()(EVP_MAC_CTX* ctx) const { EVP_MAC_CTX_free(ctx); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree>;
using MacCtx = std::unique_ptr<EVP_MAC_CTX, MacCtxFree>;

const unsigned char* U(const char* p) {
  return reinterpret_cast<const unsigned char*>(p);
}
unsigned char* U(char* p) { return reinterpret_cast<unsigned char*>(p); }

// OpenSSL wants a non-null pointer even for zero-length inputs in places.
const unsigned char* DataOrEmpty(std::string_view s) {
  static const unsigned char kEmpty = 0;
  return s.empty() ? &kEmpty : U(s.data());
}

// Fetched once (C++ guarantees thread-safe initialisation of these statics)
// and never freed: they live as long as the process and stay reachable, so
// there is no teardown-order question with OpenSSL's own atexit cleanup.
const EVP_CIPHER* Aes256Gcm() {
  static EVP_CIPHER* const cipher =
      EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  return cipher;
}

// An unkeyed HMAC context with SHA-256 already set. Never used directly, only
// cloned, once per thread (EVP_MAC_CTX_dup only reads it, so concurrent
// clones are safe). It holds no key material.
const EVP_MAC_CTX* HmacSha256Template() {
  static EVP_MAC_CTX* const tmpl = []() -> EVP_MAC_CTX* {
    EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    if (mac == nullptr) return nullptr;
    EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac);  // the context holds its own reference
    if (ctx == nullptr) return nullptr;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end()};
    if (EVP_MAC_CTX_set_params(ctx, params) != 1) {
      EVP_MAC_CTX_free(ctx);
      return nullptr;
    }
    return ctx;
  }();
  return tmpl;
}

// The calling thread's HMAC-SHA256 context: cloned from the template once per
// thread and re-keyed by every MAC (EVP_MAC_init with a non-null key starts
// afresh), so no MAC clones a context — a session read makes five (the
// cookie's, and HKDF's extract and expand for each envelope). HmacSha256To
// leaves it keyed with the empty key. Null if the clone failed; a failure is
// not kept, the next call tries again.
EVP_MAC_CTX* ThreadHmacSha256() {
  thread_local MacCtx ctx;
  if (ctx == nullptr) {
    const EVP_MAC_CTX* tmpl = HmacSha256Template();
    if (tmpl == nullptr) return nullptr;
    // EVP_MAC_CTX_dup takes a non-const pointer but only reads its argument.
    ctx.reset(EVP_MAC_CTX_dup(const_cast<EVP_MAC_CTX*>(tmpl)));
  }
  return ctx.get();
}

// The calling thread's cipher context, set to AES-256-GCM once; each seal or
// open re-initialises it with its key and nonce (EVP_*Init_ex2 with the
// cipher already set skips the provider lookup and allocation). Between calls
// it holds the expanded key of the last call: ForgetKey replaces it with the
// expansion of a fixed all-zero key. Null if the context could not be made;
// a failure is not kept (a thread would fail every seal and open for the rest
// of its life), the next call tries again.
CipherCtx& ThreadAes256GcmSlot() {
  thread_local CipherCtx ctx;
  return ctx;
}

// The Aes256GcmOpener whose key the thread's context holds; null when it
// holds the zero key or is between the two inits of a single seal or open.
thread_local const Aes256GcmOpener* thread_gcm_keyed_by = nullptr;

EVP_CIPHER_CTX* ThreadAes256Gcm() {
  CipherCtx& ctx = ThreadAes256GcmSlot();
  if (ctx == nullptr) {
    const EVP_CIPHER* cipher = Aes256Gcm();
    if (cipher == nullptr) return nullptr;
    CipherCtx made(EVP_CIPHER_CTX_new());
    if (made == nullptr ||
        EVP_EncryptInit_ex2(made.get(), cipher, nullptr, nullptr, nullptr) != 1) {
      return nullptr;
    }
    ctx = std::move(made);
  }
  return ctx.get();
}

// Re-keys the thread's context with the zero key, so that it never keeps a
// caller's key schedule after the call (the caller wipes its key).
bool ForgetKey(EVP_CIPHER_CTX* ctx) {
  static const unsigned char kZeroKey[kAes256KeySize] = {};
  return EVP_EncryptInit_ex2(ctx, nullptr, kZeroKey, nullptr, nullptr) == 1;
}

absl::Status CheckGcmInputs(std::string_view key, std::string_view nonce,
                            std::string_view aad, std::string_view data) {
  if (key.size() != kAes256KeySize) {
    return absl::InvalidArgumentError("AES-256-GCM key must be 32 bytes");
  }
  if (nonce.size() != kGcmNonceSize) {
    return absl::InvalidArgumentError("AES-256-GCM nonce must be 12 bytes");
  }
  if (aad.size() > INT_MAX || data.size() > INT_MAX) {
    return absl::InvalidArgumentError("AES-256-GCM input too large");
  }
  return absl::OkStatus();
}

// CheckGcmInputs, and a sealed input holds at least a tag.
absl::Status CheckOpenInputs(std::string_view key, std::string_view nonce,
                             std::string_view aad, std::string_view sealed) {
  if (absl::Status s = CheckGcmInputs(key, nonce, aad, sealed); !s.ok()) {
    return s;
  }
  if (sealed.size() < kGcmTagSize) {
    return absl::InvalidArgumentError("AES-256-GCM input shorter than a tag");
  }
  return absl::OkStatus();
}

absl::Status Failed(const char* what) {
  return absl::InternalError(std::string("OpenSSL failed: ") + what);
}

// Encrypts with the thread's context (see Aes256GcmSealTo).
absl::Status SealWith(EVP_CIPHER_CTX* ctx, std::string_view key,
                      std::string_view nonce, std::string_view aad,
                      std::string_view plaintext, char* out) {
  // The default GCM IV length is 12 bytes, so no IV-length parameter; the
  // cipher is the context's already.
  if (EVP_EncryptInit_ex2(ctx, nullptr, U(key.data()), U(nonce.data()),
                          nullptr) != 1) {
    return Failed("GCM encrypt init");
  }
  int len = 0;
  // A null output pointer makes this update feed the associated data.
  if (!aad.empty() && EVP_EncryptUpdate(ctx, nullptr, &len, U(aad.data()),
                                        static_cast<int>(aad.size())) != 1) {
    return Failed("GCM aad");
  }
  size_t written = 0;
  if (!plaintext.empty()) {
    if (EVP_EncryptUpdate(ctx, U(out), &len, U(plaintext.data()),
                          static_cast<int>(plaintext.size())) != 1) {
      return Failed("GCM encrypt");
    }
    written = static_cast<size_t>(len);
  }
  if (EVP_EncryptFinal_ex(ctx, U(out) + written, &len) != 1) {
    return Failed("GCM encrypt final");
  }
  if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG,
                          static_cast<int>(kGcmTagSize),
                          out + plaintext.size()) != 1) {
    return Failed("GCM get tag");
  }
  return absl::OkStatus();
}

// Checks and decrypts with the thread's context (see Aes256GcmOpenTo); wipes
// `out` on every failure. A null `key` keeps the context's key schedule and
// only sets the nonce.
absl::Status OpenWith(EVP_CIPHER_CTX* ctx, const char* key,
                      std::string_view nonce, std::string_view aad,
                      std::string_view sealed, char* out) {
  const size_t ct_size = sealed.size() - kGcmTagSize;
  if (EVP_DecryptInit_ex2(ctx, nullptr, key == nullptr ? nullptr : U(key),
                          U(nonce.data()), nullptr) != 1) {
    return Failed("GCM decrypt init");
  }
  int len = 0;
  if (!aad.empty() && EVP_DecryptUpdate(ctx, nullptr, &len, U(aad.data()),
                                        static_cast<int>(aad.size())) != 1) {
    return Failed("GCM aad");
  }
  size_t written = 0;
  if (ct_size > 0) {
    if (EVP_DecryptUpdate(ctx, U(out), &len, U(sealed.data()),
                          static_cast<int>(ct_size)) != 1) {
      Cleanse(out, ct_size);
      return Failed("GCM decrypt");
    }
    written = static_cast<size_t>(len);
  }
  // The tag is only read by OpenSSL; the ctrl API is not const-correct.
  unsigned char tag[kGcmTagSize];
  std::memcpy(tag, sealed.data() + ct_size, kGcmTagSize);
  if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG,
                          static_cast<int>(kGcmTagSize), tag) != 1) {
    Cleanse(out, ct_size);
    return Failed("GCM set tag");
  }
  if (EVP_DecryptFinal_ex(ctx, U(out) + written, &len) != 1) {
    Cleanse(out, ct_size);
    return absl::DataLossError("AES-256-GCM tag mismatch");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status Aes256GcmSealTo(std::string_view key, std::string_view nonce,
                             std::string_view aad, std::string_view plaintext,
                             char* out) {
  if (absl::Status s = CheckGcmInputs(key, nonce, aad, plaintext); !s.ok()) {
    return s;
  }
  EVP_CIPHER_CTX* ctx = ThreadAes256Gcm();
  if (ctx == nullptr) return Failed("set up AES-256-GCM");
  thread_gcm_keyed_by = nullptr;  // an opener keeping its key re-keys
  const absl::Status status = SealWith(ctx, key, nonce, aad, plaintext, out);
  if (!ForgetKey(ctx)) {
    ThreadAes256GcmSlot().reset();  // freeing it wipes the key schedule
    if (status.ok()) return Failed("GCM reset");
  }
  return status;
}

absl::Status Aes256GcmOpenTo(std::string_view key, std::string_view nonce,
                             std::string_view aad, std::string_view sealed,
                             char* out) {
  if (absl::Status s = CheckOpenInputs(key, nonce, aad, sealed); !s.ok()) {
    return s;
  }
  EVP_CIPHER_CTX* ctx = ThreadAes256Gcm();
  if (ctx == nullptr) return Failed("set up AES-256-GCM");
  thread_gcm_keyed_by = nullptr;  // an opener keeping its key re-keys
  const absl::Status status =
      OpenWith(ctx, key.data(), nonce, aad, sealed, out);
  if (!ForgetKey(ctx)) {
    ThreadAes256GcmSlot().reset();  // freeing it wipes the key schedule
    if (status.ok()) {
      Cleanse(out, sealed.size() - kGcmTagSize);
      return Failed("GCM reset");
    }
  }
  return status;
}

Aes256GcmOpener::~Aes256GcmOpener() {
  if (thread_gcm_keyed_by == this) {
    thread_gcm_keyed_by = nullptr;
    CipherCtx& ctx = ThreadAes256GcmSlot();
    // Freeing the context wipes its key schedule; the next call makes one.
    if (ctx != nullptr && !ForgetKey(ctx.get())) ctx.reset();
  }
  Cleanse(key_, sizeof(key_));
}

absl::Status Aes256GcmOpener::OpenTo(std::string_view key,
                                     std::string_view nonce,
                                     std::string_view aad,
                                     std::string_view sealed, char* out) {
  if (absl::Status s = CheckOpenInputs(key, nonce, aad, sealed); !s.ok()) {
    return s;
  }
  EVP_CIPHER_CTX* ctx = ThreadAes256Gcm();
  if (ctx == nullptr) return Failed("set up AES-256-GCM");
  const bool keep = thread_gcm_keyed_by == this && !rekey_ &&
                    ConstantTimeEquals(key, std::string_view(key_, sizeof(key_)));
  if (!keep) {
    std::memcpy(key_, key.data(), sizeof(key_));
    ++keyings_;
  }
  // Marked ours before the init: whatever it leaves in the context, the
  // destructor puts it back on the zero key.
  thread_gcm_keyed_by = this;
  const absl::Status status =
      OpenWith(ctx, keep ? nullptr : key_, nonce, aad, sealed, out);
  // After a failure (an OpenSSL error leaves the context's state unknown;
  // a tag mismatch is rare enough not to tell apart) the next open keys the
  // context afresh.
  rekey_ = !status.ok();
  return status;
}

absl::StatusOr<bool> ThreadAes256GcmIsOnZeroKeyForTesting() {
  static const char kZeroKey[kAes256KeySize] = {};
  const std::string nonce(kGcmNonceSize, '\0');
  const EVP_CIPHER* cipher = Aes256Gcm();
  EVP_CIPHER_CTX* held = ThreadAes256Gcm();
  CipherCtx reference(EVP_CIPHER_CTX_new());
  if (cipher == nullptr || held == nullptr || reference == nullptr ||
      EVP_EncryptInit_ex2(reference.get(), cipher, nullptr, nullptr, nullptr) != 1) {
    return Failed("set up AES-256-GCM");
  }
  // The tag of nothing under the zero key (on a context of its own, so the
  // thread's is not re-keyed) and under whatever the thread's holds (a null
  // key keeps its schedule). Only the comparison leaves: no ciphertext under
  // a live key does.
  char zero_tag[kGcmTagSize];
  char held_tag[kGcmTagSize];
  if (absl::Status s = SealWith(reference.get(), std::string_view(kZeroKey, sizeof(kZeroKey)),
                                nonce, "", "", zero_tag);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = SealWith(held, std::string_view(), nonce, "", "", held_tag); !s.ok()) {
    return s;
  }
  return ConstantTimeEquals(std::string_view(zero_tag, sizeof(zero_tag)),
                            std::string_view(held_tag, sizeof(held_tag)));
}

absl::StatusOr<std::string> Aes256GcmSeal(std::string_view key,
                                          std::string_view nonce,
                                          std::string_view aad,
                                          std::string_view plaintext) {
  std::string out(plaintext.size() + kGcmTagSize, '\0');
  absl::Status s = Aes256GcmSealTo(key, nonce, aad, plaintext, out.data());
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<std::string> Aes256GcmOpen(std::string_view key,
                                          std::string_view nonce,
                                          std::string_view aad,
                                          std::string_view sealed) {
  if (sealed.size() < kGcmTagSize) {
    return absl::InvalidArgumentError("AES-256-GCM input shorter than a tag");
  }
  std::string out(sealed.size() - kGcmTagSize, '\0');
  absl::Status s = Aes256GcmOpenTo(key, nonce, aad, sealed, out.data());
  if (!s.ok()) return s;
  return out;
}

absl::Status HmacSha256To(std::string_view key,
                          std::initializer_list<std::string_view> parts,
                          char* out) {
  EVP_MAC_CTX* ctx = ThreadHmacSha256();
  if (ctx == nullptr) return Failed("set up HMAC-SHA256");
  bool ok = EVP_MAC_init(ctx, DataOrEmpty(key), key.size(), nullptr) == 1;
  for (std::string_view part : parts) {
    ok = ok && (part.empty() || EVP_MAC_update(ctx, U(part.data()), part.size()) == 1);
  }
  size_t len = 0;
  ok = ok && EVP_MAC_final(ctx, U(out), &len, kSha256Size) == 1 && len == kSha256Size;
  // Forget the key whatever happened: the context outlives this call.
  static const unsigned char kNoKey = 0;
  const bool forgotten = EVP_MAC_init(ctx, &kNoKey, 0, nullptr) == 1;
  if (!ok) return Failed("HMAC-SHA256");
  if (!forgotten) return Failed("HMAC reset");
  return absl::OkStatus();
}

absl::StatusOr<std::string> HmacSha256(std::string_view key,
                                       std::string_view data) {
  std::string out(kSha256Size, '\0');
  absl::Status s = HmacSha256To(key, {data}, out.data());
  if (!s.ok()) return s;
  return out;
}

// --- HmacSha256Key ---------------------------------------------------------

namespace {

// Slots per key: enough that the sidecar's RPC threads rarely share one (a
// thread that finds its slot taken MACs with a copy of its own instead).
constexpr size_t kHmacSlots = 16;

// The calling thread's slot number, the same for every key: threads are
// numbered as they first MAC, so up to kHmacSlots of them never share.
size_t ThreadSlot() {
  static std::atomic<size_t> next{0};
  thread_local const size_t slot =
      next.fetch_add(1, std::memory_order_relaxed) % kHmacSlots;
  return slot;
}

// Continues a context that holds the keyed state: restart (no key: HMAC
// copies its hashed inner pad), absorb the parts, finish.
bool KeyedMac(EVP_MAC_CTX* ctx, std::initializer_list<std::string_view> parts,
              char* out) {
  bool ok = EVP_MAC_init(ctx, nullptr, 0, nullptr) == 1;
  for (std::string_view part : parts) {
    ok = ok && (part.empty() ||
                EVP_MAC_update(ctx, U(part.data()), part.size()) == 1);
  }
  size_t len = 0;
  return ok && EVP_MAC_final(ctx, U(out), &len, kSha256Size) == 1 &&
         len == kSha256Size;
}

}  // namespace

struct HmacSha256Key::State {
  // Keyed and never used directly, only copied (EVP_MAC_CTX_dup reads it,
  // so concurrent copies are safe).
  MacCtx keyed;
  struct alignas(64) Slot {
    std::atomic<bool> busy{false};
    MacCtx ctx;  // a copy of `keyed`, made by the first thread to take it
  };
  Slot slots[kHmacSlots];

  MacCtx Copy() const {
    // EVP_MAC_CTX_dup takes a non-const pointer but only reads it.
    return MacCtx(EVP_MAC_CTX_dup(keyed.get()));
  }
};

HmacSha256Key::HmacSha256Key(std::unique_ptr<State> state)
    : state_(std::move(state)) {}

// Freeing each context wipes its key and digest states (OpenSSL frees
// them with OPENSSL_clear_free).
HmacSha256Key::~HmacSha256Key() = default;

absl::StatusOr<std::unique_ptr<HmacSha256Key>> HmacSha256Key::Create(
    std::string_view key) {
  const EVP_MAC_CTX* tmpl = HmacSha256Template();
  if (tmpl == nullptr) return Failed("set up HMAC-SHA256");
  auto state = std::make_unique<State>();
  state->keyed.reset(EVP_MAC_CTX_dup(const_cast<EVP_MAC_CTX*>(tmpl)));
  if (state->keyed == nullptr ||
      EVP_MAC_init(state->keyed.get(), DataOrEmpty(key), key.size(),
                   nullptr) != 1) {
    return Failed("HMAC-SHA256 key");
  }
  auto made = std::unique_ptr<HmacSha256Key>(new HmacSha256Key(std::move(state)));
  // Restarting from the keyed state relies on EVP_MAC_init without a key
  // resetting the context (OpenSSL 3.0.0-3.0.2 left it finished and still
  // reported success): two MACs through one slot must each equal a MAC keyed
  // afresh, or no cookie would verify.
  static constexpr std::string_view kProbe = "stateside hmac self-test";
  char fresh[kSha256Size], keyed[kSha256Size];
  absl::Status status = HmacSha256To(key, {kProbe}, fresh);
  bool same = status.ok();
  for (int i = 0; i < 2 && same; ++i) {
    status = made->MacTo({kProbe}, keyed);
    same = status.ok() && CRYPTO_memcmp(fresh, keyed, kSha256Size) == 0;
  }
  OPENSSL_cleanse(fresh, sizeof(fresh));
  OPENSSL_cleanse(keyed, sizeof(keyed));
  if (!status.ok()) return status;
  if (!same) {
    return absl::InternalError(
        "HMAC-SHA256: this OpenSSL does not restart a keyed MAC (3.0.3 or "
        "later is needed)");
  }
  return made;
}

absl::Status HmacSha256Key::MacTo(std::initializer_list<std::string_view> parts,
                                  char* out) const {
  // The thread's own slot first, then the others: a slot is tested with a
  // load before the exchange, so a busy one's line is not pulled over.
  const size_t first = ThreadSlot();
  for (size_t i = 0; i < kHmacSlots; ++i) {
    State::Slot& slot = state_->slots[(first + i) % kHmacSlots];
    if (slot.busy.load(std::memory_order_relaxed) ||
        slot.busy.exchange(true, std::memory_order_acquire)) {
      continue;
    }
    if (slot.ctx == nullptr) slot.ctx = state_->Copy();
    const bool ok = slot.ctx != nullptr && KeyedMac(slot.ctx.get(), parts, out);
    slot.busy.store(false, std::memory_order_release);
    if (!ok) return Failed("HMAC-SHA256");
    return absl::OkStatus();
  }
  // Every slot is held: a copy of our own for this one MAC.
  MacCtx ctx = state_->Copy();
  if (ctx == nullptr || !KeyedMac(ctx.get(), parts, out)) {
    return Failed("HMAC-SHA256");
  }
  return absl::OkStatus();
}

// RFC 5869 on top of HmacSha256To rather than OpenSSL's EVP_KDF "HKDF": the
// 3.0 HKDF provider cannot clone a context, so every call would name (and
// look up) the digest again; two cloned HMACs are about twice as fast. The
// RFC 5869 vectors in tests/unit/crypto pin the construction.
absl::Status HkdfSha256To(std::string_view key, std::string_view salt,
                          std::string_view info, char* out, size_t out_len) {
  if (key.empty()) return absl::InvalidArgumentError("HKDF key is empty");
  if (out_len == 0 || out_len > 255 * kSha256Size) {
    return absl::InvalidArgumentError("HKDF output length out of range");
  }
  // Extract: PRK = HMAC(salt, IKM); an absent salt is HashLen zero bytes.
  static const char kZeroSalt[kSha256Size] = {};
  if (salt.empty()) salt = std::string_view(kZeroSalt, sizeof(kZeroSalt));
  char prk[kSha256Size];
  absl::Status status = HmacSha256To(salt, {key}, prk);
  // Expand: T(i) = HMAC(PRK, T(i-1) || info || i), OKM = T(1) || T(2) ...
  char block[kSha256Size];
  std::string_view previous;
  unsigned char counter = 1;
  for (size_t done = 0; status.ok() && done < out_len; ++counter) {
    const char c = static_cast<char>(counter);
    status = HmacSha256To(std::string_view(prk, sizeof(prk)),
                          {previous, info, std::string_view(&c, 1)}, block);
    if (!status.ok()) break;
    const size_t n = std::min(kSha256Size, out_len - done);
    std::memcpy(out + done, block, n);
    done += n;
    previous = std::string_view(out + done - kSha256Size, kSha256Size);
    if (n < kSha256Size) break;
  }
  Cleanse(prk, sizeof(prk));
  Cleanse(block, sizeof(block));
  if (!status.ok()) Cleanse(out, out_len);
  return status;
}

absl::StatusOr<std::string> HkdfSha256(std::string_view key,
                                       std::string_view salt,
                                       std::string_view info, size_t out_len) {
  std::string out(out_len, '\0');
  absl::Status s = HkdfSha256To(key, salt, info, out.data(), out_len);
  if (!s.ok()) return s;
  return out;
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  // Lengths are public (a MAC or tag has a fixed size); contents are not.
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

void Cleanse(void* data, size_t n) {
  if (data != nullptr && n > 0) OPENSSL_cleanse(data, n);
}

void Cleanse(std::string& s) {
  Cleanse(s.data(), s.size());
  s.clear();
}

// --- random.h --------------------------------------------------------------

namespace {

// OpenSSL's DRBG (seeded from the OS, reseeded on fork) is thread-safe.
class SecureRandom final : public RandomSource {
 public:
  absl::Status Fill(char* out, size_t n) override {
    while (n > 0) {
      const int chunk = static_cast<int>(std::min<size_t>(n, 1 << 20));
      if (RAND_bytes(U(out), chunk) != 1) {
        return absl::InternalError("the system CSPRNG failed (RAND_bytes)");
      }
      out += chunk;
      n -= static_cast<size_t>(chunk);
    }
    return absl::OkStatus();
  }
};

}  // namespace

std::unique_ptr<RandomSource> NewSecureRandom() {
  return std::make_unique<SecureRandom>();
}

std::string Sha1Hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  // EVP_Digest with the default provider cannot fail for SHA-1 on valid
  // input; an empty result would make EVALSHA answer NOSCRIPT and reload.
  if (EVP_Digest(data.data(), data.size(), md, &len, EVP_sha1(), nullptr) != 1) {
    return std::string();
  }
  return HexEncode(std::string_view(reinterpret_cast<const char*>(md), len));
}

}  // namespace stateside::crypto
