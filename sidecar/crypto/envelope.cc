// Envelope sealing and opening: the wire format, associated data and
// sealing epochs of envelope.h over the primitives of openssl.cc.
#include "sidecar/crypto/envelope.h"

#include <atomic>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "sidecar/common/status_macros.h"
#include "sidecar/crypto/primitives.h"

namespace stateside::crypto {
namespace {

constexpr char kVersion1 = 0x01;  // per-message key
constexpr char kVersion2 = 0x02;  // per-epoch data key
constexpr size_t kSaltSize = 16;
constexpr size_t kMaxKeyIdSize = 32;  // Keyring enforces it for every key
constexpr std::string_view kAeadInfoV1 = "stateside aead v1";
constexpr std::string_view kAeadInfoV2 = "stateside aead v2";
// version, key id length, at least one key id byte, salt, nonce, tag.
constexpr size_t kMinEnvelopeSize =
    2 + 1 + kSaltSize + kGcmNonceSize + kGcmTagSize;
constexpr char kOpenError[] = "envelope did not open";

struct Parsed {
  char version;
  std::string_view key_id;
  std::string_view cache_id;  // key id length | key id | salt
  std::string_view salt;
  std::string_view nonce;
  std::string_view sealed;  // ciphertext || tag
};

std::optional<Parsed> Parse(std::string_view envelope) {
  if (envelope.size() < kMinEnvelopeSize ||
      (envelope[0] != kVersion1 && envelope[0] != kVersion2)) {
    return std::nullopt;
  }
  const size_t id_size = static_cast<unsigned char>(envelope[1]);
  if (id_size == 0 || id_size > kMaxKeyIdSize ||
      envelope.size() < 2 + id_size + kSaltSize + kGcmNonceSize + kGcmTagSize) {
    return std::nullopt;
  }
  Parsed parsed;
  parsed.version = envelope[0];
  parsed.key_id = envelope.substr(2, id_size);
  parsed.cache_id = envelope.substr(1, 1 + id_size + kSaltSize);
  parsed.salt = envelope.substr(2 + id_size, kSaltSize);
  parsed.nonce = envelope.substr(2 + id_size + kSaltSize, kGcmNonceSize);
  parsed.sealed = envelope.substr(2 + id_size + kSaltSize + kGcmNonceSize);
  return parsed;
}

// version | len(key id) | key id | len(place) | place | len(name) | name,
// lengths 4-byte big-endian, so no two (place, name) pairs share an encoding.
// Built on the stack when it fits (a session id and an attribute name do):
// no allocation per envelope.
class AssociatedData {
 public:
  AssociatedData(char version, std::string_view key_id, std::string_view place,
                 std::string_view name) {
    const size_t size = 1 + 12 + key_id.size() + place.size() + name.size();
    char* out = inline_;
    if (size > sizeof(inline_)) {
      heap_.resize(size);
      out = heap_.data();
    }
    data_ = out;
    *out++ = version;
    out = AppendLengthPrefixed(out, key_id);
    out = AppendLengthPrefixed(out, place);
    out = AppendLengthPrefixed(out, name);
    size_ = static_cast<size_t>(out - data_);
  }
  AssociatedData(const AssociatedData&) = delete;
  AssociatedData& operator=(const AssociatedData&) = delete;

  std::string_view view() const { return std::string_view(data_, size_); }

 private:
  static char* AppendLengthPrefixed(char* out, std::string_view field) {
    const uint32_t n = static_cast<uint32_t>(field.size());
    *out++ = static_cast<char>(n >> 24);
    *out++ = static_cast<char>(n >> 16);
    *out++ = static_cast<char>(n >> 8);
    *out++ = static_cast<char>(n);
    if (!field.empty()) std::memcpy(out, field.data(), field.size());
    return out + field.size();
  }

  char inline_[256];
  std::string heap_;
  const char* data_ = nullptr;
  size_t size_ = 0;
};

bool FitsLengthPrefix(std::string_view field) {
  return field.size() <= std::numeric_limits<uint32_t>::max();
}

// The calling thread's seal slot: threads take slots in turn, and keep theirs.
size_t ThreadSealSlot() {
  static std::atomic<size_t> next{0};
  thread_local const size_t slot =
      next.fetch_add(1, std::memory_order_relaxed) % Sealer::kSealSlots;
  return slot;
}

// The clock of a Sealer given none: lives as long as the process.
const Clock& SystemClockInstance() {
  static const SystemClock clock;
  return clock;
}

}  // namespace

void KeyMismatches::Set(const std::vector<std::string>& ids) {
  absl::MutexLock lock(&mu_);
  ids_.clear();
  ids_.insert(ids.begin(), ids.end());
}

bool KeyMismatches::Contains(std::string_view id) const {
  absl::MutexLock lock(&mu_);
  // absl::string_view: this Abseil's hash does not take std::string_view.
  return ids_.contains(absl::string_view(id.data(), id.size()));
}

bool KeyMismatches::empty() const {
  absl::MutexLock lock(&mu_);
  return ids_.empty();
}

std::string_view OpenFailureName(OpenFailure failure) {
  switch (failure) {
    case OpenFailure::kMalformed:
      return "malformed";
    case OpenFailure::kUnknownKey:
      return "unknown_key";
    case OpenFailure::kAuthFailed:
      return "auth_failed";
    case OpenFailure::kKeyMismatch:
      return "key_mismatch";
  }
  return "unknown";
}

Sealer::Sealer(const Keyring* keyring, RandomSource* random,
               const KeyMismatches* mismatches, SealerOptions options)
    : keyring_(keyring),
      random_(random),
      mismatches_(mismatches),
      options_(options),
      clock_(options.clock != nullptr ? options.clock : &SystemClockInstance()),
      cache_(options.cached_keys) {
  absl::StatusOr<SecretBuffer> keys =
      SecretBuffer::Allocate(kSealSlots * kAes256KeySize);
  if (!keys.ok()) return;  // every seal derives its own key (Epoch::key)
  epoch_keys_ = *std::move(keys);
  for (size_t i = 0; i < kSealSlots; ++i) {
    absl::MutexLock lock(&epochs_[i].mu);
    epochs_[i].key = epoch_keys_.data() + i * kAes256KeySize;
  }
}

Sealer::~Sealer() = default;  // epoch_keys_ and cache_ wipe their keys

absl::Status Sealer::NextSeal(Epoch& epoch, char* salt, char* key) const {
  const Keyring::Key& primary = keyring_->primary();
  if (epoch.key == nullptr) {
    RETURN_IF_ERROR(random_->Fill(salt, kSaltSize));
    return HkdfSha256To(primary.master, std::string_view(salt, kSaltSize),
                        kAeadInfoV2, key, kAes256KeySize);
  }
  const absl::Time now = clock_->Now();
  if (!epoch.live || epoch.sealed >= options_.seals_per_epoch ||
      now - epoch.began >= options_.epoch_duration) {
    epoch.live = false;
    epoch.began = now;
    RETURN_IF_ERROR(random_->Fill(epoch.salt.data(), kSaltSize));
    RETURN_IF_ERROR(HkdfSha256To(primary.master,
                                 std::string_view(epoch.salt.data(), kSaltSize),
                                 kAeadInfoV2, epoch.key, kAes256KeySize));
    epoch.live = true;
    epoch.sealed = 0;
    // What this instance writes it usually reads back: no derivation then.
    std::string cache_id(1, static_cast<char>(primary.id.size()));
    cache_id.append(primary.id);
    cache_id.append(epoch.salt.data(), kSaltSize);
    cache_.Insert(cache_id, epoch.key);
  }
  epoch.sealed += 1;
  std::memcpy(salt, epoch.salt.data(), kSaltSize);
  std::memcpy(key, epoch.key, kAes256KeySize);
  return absl::OkStatus();
}

absl::StatusOr<std::string> Sealer::Seal(std::string_view place,
                                         std::string_view name,
                                         std::string_view plaintext) const {
  if (!FitsLengthPrefix(place) || !FitsLengthPrefix(name)) {
    return absl::InvalidArgumentError("envelope place or name too long");
  }
  const Keyring::Key& key = keyring_->primary();
  const size_t header = 2 + key.id.size();
  std::string envelope(
      header + kSaltSize + kGcmNonceSize + plaintext.size() + kGcmTagSize,
      '\0');
  const char version = options_.seal_version == 1 ? kVersion1 : kVersion2;
  envelope[0] = version;
  envelope[1] = static_cast<char>(key.id.size());
  std::memcpy(envelope.data() + 2, key.id.data(), key.id.size());
  char* const salt = envelope.data() + header;
  char* const nonce = salt + kSaltSize;

  char data_key[kAes256KeySize];
  absl::Status status;
  if (version == kVersion1) {
    status = random_->Fill(salt, kSaltSize);
    if (status.ok()) {
      status = HkdfSha256To(key.master, std::string_view(salt, kSaltSize),
                            kAeadInfoV1, data_key, sizeof(data_key));
    }
  } else {
    Epoch& epoch = epochs_[ThreadSealSlot()];
    absl::MutexLock lock(&epoch.mu);
    status = NextSeal(epoch, salt, data_key);
  }
  // A fresh random nonce for every encryption, outside the slot's lock.
  if (status.ok()) status = random_->Fill(nonce, kGcmNonceSize);
  if (status.ok()) {
    const AssociatedData aad(version, key.id, place, name);
    status = Aes256GcmSealTo(std::string_view(data_key, sizeof(data_key)),
                             std::string_view(nonce, kGcmNonceSize), aad.view(),
                             plaintext, nonce + kGcmNonceSize);
  }
  Cleanse(data_key, sizeof(data_key));
  if (!status.ok()) return status;
  return envelope;
}

absl::Status Sealer::DataKey(const Keyring::Key& key, std::string_view cache_id,
                             std::string_view salt, char* out,
                             bool* cached) const {
  *cached = cache_.Lookup(cache_id, out);
  if (*cached) return absl::OkStatus();
  open_derivations_.fetch_add(1, std::memory_order_relaxed);
  return HkdfSha256To(key.master, salt, kAeadInfoV2, out, kAes256KeySize);
}

absl::StatusOr<Opened> Sealer::Open(std::string_view place,
                                    std::string_view name,
                                    std::string_view envelope,
                                    OpenFailure* failure) const {
  Opener opener(*this);
  return opener.Open(place, name, envelope, failure);
}

// Opener::cache_id_ holds the longest cache id Parse accepts.
static_assert(1 + kMaxKeyIdSize + kSaltSize == 49);

Sealer::Opener::~Opener() { Cleanse(data_key_, sizeof(data_key_)); }

absl::StatusOr<Opened> Sealer::Opener::Open(std::string_view place,
                                            std::string_view name,
                                            std::string_view envelope,
                                            OpenFailure* failure) {
  auto fail = [failure](OpenFailure why) {
    if (failure != nullptr) *failure = why;
    return absl::DataLossError(kOpenError);
  };
  const std::optional<Parsed> parsed = Parse(envelope);
  if (!parsed.has_value() || !FitsLengthPrefix(place) ||
      !FitsLengthPrefix(name)) {
    return fail(OpenFailure::kMalformed);
  }
  const Keyring::Key* key = sealer_.keyring_->Find(parsed->key_id);
  if (key == nullptr) return fail(OpenFailure::kUnknownKey);

  Opened opened;
  opened.plaintext.resize(parsed->sealed.size() - kGcmTagSize);
  const bool v1 = parsed->version == kVersion1;
  char v1_key[kAes256KeySize];
  absl::Status status;
  if (v1) {
    status = HkdfSha256To(key->master, parsed->salt, kAeadInfoV1, v1_key,
                          sizeof(v1_key));
  } else if (parsed->cache_id !=
             std::string_view(cache_id_, cache_id_size_)) {
    // The cache id is no secret (it is in the envelope): compared plainly.
    cache_id_size_ = 0;
    status = sealer_.DataKey(*key, parsed->cache_id, parsed->salt, data_key_,
                             &data_key_cached_);
    if (status.ok()) {
      std::memcpy(cache_id_, parsed->cache_id.data(), parsed->cache_id.size());
      cache_id_size_ = parsed->cache_id.size();
    }
  }
  if (status.ok()) {
    const AssociatedData aad(parsed->version, key->id, place, name);
    status = gcm_.OpenTo(std::string_view(v1 ? v1_key : data_key_,
                                          kAes256KeySize),
                         parsed->nonce, aad.view(), parsed->sealed,
                         opened.plaintext.data());
  }
  if (v1) Cleanse(v1_key, sizeof(v1_key));
  // Cached only once a tag verified under it: bytes from the store that do
  // not open cannot push the keys of real epochs out.
  if (status.ok() && !v1 && !data_key_cached_) {
    sealer_.cache_.Insert(parsed->cache_id, data_key_);
    data_key_cached_ = true;
  }
  // A tag mismatch and an (unexpected) OpenSSL error both fail closed and look
  // alike to the caller; both count as kAuthFailed.
  if (!status.ok()) {
    return fail(sealer_.mismatches_ != nullptr &&
                        sealer_.mismatches_->Contains(key->id)
                    ? OpenFailure::kKeyMismatch
                    : OpenFailure::kAuthFailed);
  }
  opened.key_id = key->id;
  return opened;
}

std::string_view Sealer::KeyIdOf(std::string_view envelope) {
  const std::optional<Parsed> parsed = Parse(envelope);
  return parsed.has_value() ? parsed->key_id : std::string_view();
}

int Sealer::VersionOf(std::string_view envelope) {
  const std::optional<Parsed> parsed = Parse(envelope);
  return parsed.has_value() ? parsed->version : 0;
}

bool Sealer::IsCurrent(std::string_view envelope) const {
  const std::optional<Parsed> parsed = Parse(envelope);
  return parsed.has_value() && parsed->version == kVersion2 &&
         parsed->key_id == keyring_->primary().id;
}

}  // namespace stateside::crypto
