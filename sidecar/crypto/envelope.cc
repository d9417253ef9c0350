// Envelope sealing and opening: the wire format and associated data of
// envelope.h over the primitives of openssl.cc.
#include "sidecar/crypto/envelope.h"

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

constexpr char kVersion = 0x01;
constexpr size_t kSaltSize = 16;
constexpr size_t kMaxKeyIdSize = 32;  // Keyring enforces it for every key
constexpr std::string_view kAeadInfo = "stateside aead v1";
// version, key id length, at least one key id byte, salt, nonce, tag.
constexpr size_t kMinEnvelopeSize =
    2 + 1 + kSaltSize + kGcmNonceSize + kGcmTagSize;
constexpr char kOpenError[] = "envelope did not open";

struct Parsed {
  std::string_view key_id;
  std::string_view salt;
  std::string_view nonce;
  std::string_view sealed;  // ciphertext || tag
};

std::optional<Parsed> Parse(std::string_view envelope) {
  if (envelope.size() < kMinEnvelopeSize || envelope[0] != kVersion) {
    return std::nullopt;
  }
  const size_t id_size = static_cast<unsigned char>(envelope[1]);
  if (id_size == 0 || id_size > kMaxKeyIdSize ||
      envelope.size() < 2 + id_size + kSaltSize + kGcmNonceSize + kGcmTagSize) {
    return std::nullopt;
  }
  Parsed parsed;
  parsed.key_id = envelope.substr(2, id_size);
  parsed.salt = envelope.substr(2 + id_size, kSaltSize);
  parsed.nonce = envelope.substr(2 + id_size + kSaltSize, kGcmNonceSize);
  parsed.sealed = envelope.substr(2 + id_size + kSaltSize + kGcmNonceSize);
  return parsed;
}

void AppendLengthPrefixed(std::string& out, std::string_view field) {
  const uint32_t n = static_cast<uint32_t>(field.size());
  const char be[4] = {static_cast<char>(n >> 24), static_cast<char>(n >> 16),
                      static_cast<char>(n >> 8), static_cast<char>(n)};
  out.append(be, sizeof(be));
  out.append(field);
}

// version | len(key id) | key id | len(place) | place | len(name) | name,
// lengths 4-byte big-endian, so no two (place, name) pairs share an encoding.
std::string AssociatedData(std::string_view key_id, std::string_view place,
                           std::string_view name) {
  std::string aad;
  aad.reserve(1 + 12 + key_id.size() + place.size() + name.size());
  aad.push_back(kVersion);
  AppendLengthPrefixed(aad, key_id);
  AppendLengthPrefixed(aad, place);
  AppendLengthPrefixed(aad, name);
  return aad;
}

bool FitsLengthPrefix(std::string_view field) {
  return field.size() <= std::numeric_limits<uint32_t>::max();
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
  envelope[0] = kVersion;
  envelope[1] = static_cast<char>(key.id.size());
  std::memcpy(envelope.data() + 2, key.id.data(), key.id.size());
  char* const salt = envelope.data() + header;
  char* const nonce = salt + kSaltSize;
  // Salt and nonce in one draw: one CSPRNG call per seal.
  RETURN_IF_ERROR(random_->Fill(salt, kSaltSize + kGcmNonceSize));

  char message_key[kAes256KeySize];
  absl::Status status =
      HkdfSha256To(key.master, std::string_view(salt, kSaltSize), kAeadInfo,
                   message_key, sizeof(message_key));
  if (status.ok()) {
    status = Aes256GcmSealTo(
        std::string_view(message_key, sizeof(message_key)),
        std::string_view(nonce, kGcmNonceSize),
        AssociatedData(key.id, place, name), plaintext, nonce + kGcmNonceSize);
  }
  Cleanse(message_key, sizeof(message_key));
  if (!status.ok()) return status;
  return envelope;
}

absl::StatusOr<Opened> Sealer::Open(std::string_view place,
                                    std::string_view name,
                                    std::string_view envelope,
                                    OpenFailure* failure) const {
  auto fail = [failure](OpenFailure why) {
    if (failure != nullptr) *failure = why;
    return absl::DataLossError(kOpenError);
  };
  const std::optional<Parsed> parsed = Parse(envelope);
  if (!parsed.has_value() || !FitsLengthPrefix(place) ||
      !FitsLengthPrefix(name)) {
    return fail(OpenFailure::kMalformed);
  }
  const Keyring::Key* key = keyring_->Find(parsed->key_id);
  if (key == nullptr) return fail(OpenFailure::kUnknownKey);

  char message_key[kAes256KeySize];
  Opened opened;
  opened.plaintext.resize(parsed->sealed.size() - kGcmTagSize);
  absl::Status status = HkdfSha256To(key->master, parsed->salt, kAeadInfo,
                                     message_key, sizeof(message_key));
  if (status.ok()) {
    status = Aes256GcmOpenTo(
        std::string_view(message_key, sizeof(message_key)), parsed->nonce,
        AssociatedData(key->id, place, name), parsed->sealed,
        opened.plaintext.data());
  }
  Cleanse(message_key, sizeof(message_key));
  // A tag mismatch and an (unexpected) OpenSSL error both fail closed and look
  // alike to the caller; both count as kAuthFailed.
  if (!status.ok()) {
    return fail(mismatches_ != nullptr && mismatches_->Contains(key->id)
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

}  // namespace stateside::crypto
