// Keyring construction, parsing of the key settings, blind indexes and key
// check values.
#include "sidecar/crypto/keyring.h"

#include <cstdlib>
#include <cstring>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "sidecar/common/status_macros.h"
#include "sidecar/crypto/encoding.h"
#include "sidecar/crypto/primitives.h"

namespace stateside::crypto {
namespace {

constexpr size_t kMaxKeyIdSize = 32;
constexpr size_t kHexKeySize = 2 * kAes256KeySize;
constexpr std::string_view kIndexInfo = "stateside index v1";
constexpr size_t kBlindBytes = 16;  // 32 hex chars: 128 bits, no collisions
constexpr std::string_view kCheckValueMessage = "stateside key check value";
// 64 bits: a chance mismatch between two different keys is 2^-64, and so
// little of the MAC says nothing useful about the key.
constexpr size_t kCheckValueBytes = 8;

bool IsValidKeyId(std::string_view id) {
  if (id.empty() || id.size() > kMaxKeyIdSize) return false;
  for (char c : id) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' &&
        c != '-') {
      return false;
    }
  }
  return true;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes exactly 64 hex digits. absl::HexStringToBytes does not reject
// non-hex characters, hence this strict version. Messages name the problem,
// never the input (it is key material).
absl::StatusOr<std::string> DecodeHexKey(std::string_view hex,
                                         const std::string& what) {
  if (hex.size() != kHexKeySize) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " must be 64 hex characters (32 bytes), got ",
                     hex.size(), " characters"));
  }
  std::string bytes(kAes256KeySize, '\0');
  for (size_t i = 0; i < kAes256KeySize; ++i) {
    const int hi = HexValue(hex[2 * i]);
    const int lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      Cleanse(bytes);
      return absl::InvalidArgumentError(
          absl::StrCat(what, " contains a character that is not hex"));
    }
    bytes[i] = static_cast<char>(hi << 4 | lo);
  }
  return bytes;
}

void WipeSpecs(std::vector<KeySpec>& specs) {
  for (KeySpec& spec : specs) Cleanse(spec.bytes);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Keyring>> Keyring::Create(
    std::vector<KeySpec> specs) {
  // The specs are ours now: wipe whatever is left of them on every path.
  struct Wiper {
    std::vector<KeySpec>& specs;
    ~Wiper() { WipeSpecs(specs); }
  } wiper{specs};

  if (specs.empty()) {
    return absl::InvalidArgumentError("the keyring needs at least one key");
  }
  absl::flat_hash_set<std::string> seen;
  for (size_t i = 0; i < specs.size(); ++i) {
    const KeySpec& spec = specs[i];
    if (!IsValidKeyId(spec.id)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "key ", i + 1, ": key id must be 1..32 characters of [A-Za-z0-9_-]"));
    }
    if (!seen.insert(spec.id).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("key ", i + 1, " repeats an earlier key id"));
    }
    if (spec.bytes.size() != kAes256KeySize) {
      return absl::InvalidArgumentError(
          absl::StrCat("key ", i + 1, " must be 32 bytes, got ",
                       spec.bytes.size()));
    }
  }

  // Master and index key side by side, per key, in dump-excluded pages.
  constexpr size_t kPerKey = kAes256KeySize + kSha256Size;
  ASSIGN_OR_RETURN(SecretBuffer storage,
                   SecretBuffer::Allocate(specs.size() * kPerKey));
  std::vector<Key> keys;
  keys.reserve(specs.size());
  for (size_t i = 0; i < specs.size(); ++i) {
    char* master = storage.data() + i * kPerKey;
    char* index_key = master + kAes256KeySize;
    std::memcpy(master, specs[i].bytes.data(), kAes256KeySize);
    RETURN_IF_ERROR(HkdfSha256To(specs[i].bytes, /*salt=*/"", kIndexInfo,
                                 index_key, kSha256Size));
    keys.push_back(Key{specs[i].id, std::string_view(master, kAes256KeySize),
                       std::string_view(index_key, kSha256Size)});
  }
  return std::unique_ptr<Keyring>(new Keyring(std::move(storage), std::move(keys)));
}

absl::StatusOr<std::vector<KeySpec>> Keyring::ParseHexKey(
    std::string_view hex) {
  // A key read from a file usually ends in a newline.
  absl::StatusOr<std::string> bytes =
      DecodeHexKey(TrimAsciiWhitespace(hex), "the encryption key");
  if (!bytes.ok()) return bytes.status();
  std::vector<KeySpec> specs;
  specs.push_back(KeySpec{"k0", *std::move(bytes)});
  return specs;
}

absl::StatusOr<std::vector<KeySpec>> Keyring::ParseKeyList(
    std::string_view list) {
  std::vector<KeySpec> specs;
  absl::flat_hash_set<std::string> seen;
  std::string_view rest = TrimAsciiWhitespace(list);
  for (size_t i = 0; ; ++i) {
    const size_t comma = rest.find(',');
    const std::string_view entry = TrimAsciiWhitespace(rest.substr(0, comma));
    const std::string entry_name = absl::StrCat("key list entry ", i + 1);
    absl::Status error;
    const size_t colon = entry.find(':');
    if (entry.empty()) {
      error = absl::InvalidArgumentError(absl::StrCat(
          entry_name, " is empty (expected kid:hex,kid:hex)"));
    } else if (colon == std::string_view::npos) {
      error = absl::InvalidArgumentError(absl::StrCat(
          entry_name, " has no ':' (expected kid:hex)"));
    } else {
      const std::string_view id = TrimAsciiWhitespace(entry.substr(0, colon));
      const std::string_view hex =
          TrimAsciiWhitespace(entry.substr(colon + 1));
      // The id is not echoed even when valid: a misplaced key could pass.
      if (!IsValidKeyId(id)) {
        error = absl::InvalidArgumentError(absl::StrCat(
            entry_name, ": key id must be 1..32 characters of [A-Za-z0-9_-]"));
      } else if (!seen.insert(std::string(id)).second) {
        error = absl::InvalidArgumentError(
            absl::StrCat(entry_name, " repeats an earlier key id"));
      } else {
        absl::StatusOr<std::string> bytes = DecodeHexKey(hex, entry_name);
        if (bytes.ok()) {
          specs.push_back(KeySpec{std::string(id), *std::move(bytes)});
        } else {
          error = bytes.status();
        }
      }
    }
    if (!error.ok()) {
      WipeSpecs(specs);
      return error;
    }
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return specs;
}

// storage_ wipes the key bytes when it is destroyed.
Keyring::~Keyring() = default;

const Keyring::Key* Keyring::Find(std::string_view id) const {
  // A handful of keys at most: a scan beats a hash map here.
  for (const Key& key : keys_) {
    if (key.id == id) return &key;
  }
  return nullptr;
}

std::string Keyring::Blind(const Key& key, std::string_view purpose,
                           std::string_view value) {
  char mac[kSha256Size];
  const char separator = '\0';
  absl::Status s = HmacSha256To(
      key.index_key, {purpose, std::string_view(&separator, 1), value}, mac);
  if (!s.ok()) {
    // Only reachable if OpenSSL itself is broken (allocation failure). A
    // wrong tag would silently merge or split index entries, which is worse
    // than stopping.
    std::abort();
  }
  std::string tag = HexEncode(std::string_view(mac, kBlindBytes));
  Cleanse(mac, sizeof(mac));
  return tag;
}

std::string Keyring::CheckValue(const Key& key) {
  char mac[kSha256Size];
  if (!HmacSha256To(key.master, {kCheckValueMessage}, mac).ok()) {
    std::abort();  // OpenSSL broken; see Blind
  }
  std::string value = HexEncode(std::string_view(mac, kCheckValueBytes));
  Cleanse(mac, sizeof(mac));
  return value;
}

}  // namespace stateside::crypto
