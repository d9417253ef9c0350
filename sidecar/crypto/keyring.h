// The encryption keyring: one or more AES-256 master keys with ids. The first
// key encrypts; every key decrypts (rotation). Also derives the keyed "blind
// index" tags under which user ids and opt-out subjects are stored, so that no
// identifier reaches the store in the clear.
//
// Immutable after construction; safe for concurrent use. The key bytes live in
// a SecretBuffer (pages excluded from core dumps) and are wiped when the
// Keyring is destroyed.
#ifndef STATESIDE_SIDECAR_CRYPTO_KEYRING_H_
#define STATESIDE_SIDECAR_CRYPTO_KEYRING_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "sidecar/crypto/secret_memory.h"

namespace stateside::crypto {

struct KeySpec {
  std::string id;     // 1..32 chars of [A-Za-z0-9_-]; stored in every envelope
  std::string bytes;  // exactly 32 raw bytes (AES-256)
};

class Keyring {
 public:
  struct Key {
    std::string id;
    std::string_view master;     // 32 bytes in the Keyring's SecretBuffer
    std::string_view index_key;  // HKDF-SHA256(master, no salt, info
                                 // "stateside index v1"), 32 bytes, ditto
  };

  // REQUIRES: at least one key; ids unique and valid; every key 32 bytes.
  // Returns INVALID_ARGUMENT naming the problem otherwise. The key bytes of
  // `keys` are copied into the Keyring's SecretBuffer and wiped, on success
  // and on failure alike.
  static absl::StatusOr<std::unique_ptr<Keyring>> Create(std::vector<KeySpec> keys);

  // Parses SESSION_ENCRYPTION_KEY (64 hex chars, key id "k0") or
  // SESSION_ENCRYPTION_KEYS ("kid:hex,kid:hex", ids unique, first is the
  // primary). ASCII whitespace around the value and around each entry, id and
  // key is ignored (values read from files end in a newline). INVALID_ARGUMENT
  // naming the problem and the entry number; errors never echo key bytes or
  // ids. The caller should Cleanse() the returned bytes it does not hand to
  // Create (which takes ownership and wipes them).
  static absl::StatusOr<std::vector<KeySpec>> ParseHexKey(std::string_view hex);
  static absl::StatusOr<std::vector<KeySpec>> ParseKeyList(std::string_view list);

  ~Keyring();
  Keyring(const Keyring&) = delete;
  Keyring& operator=(const Keyring&) = delete;

  const Key& primary() const { return keys_.front(); }
  // nullptr if no key has this id.
  const Key* Find(std::string_view id) const;
  const std::vector<Key>& keys() const { return keys_; }

  // Keyed, deterministic tag of `value` for index keys: hex(HMAC-SHA256(
  // key.index_key, purpose || 0x00 || value)) truncated to 32 hex chars.
  // `purpose` separates domains ("user", "optout").
  static std::string Blind(const Key& key, std::string_view purpose,
                           std::string_view value);

  // The key check value of a key: hex(HMAC-SHA256(key.master, "stateside key
  // check value")) truncated to 16 hex chars (8 bytes). Equal on every
  // instance that holds the same key bytes under an id, different otherwise;
  // it reveals nothing usable about the key, so it may be stored in Redis
  // (redis/key_check.h) and compared there. Never log it whole.
  static std::string CheckValue(const Key& key);

 private:
  Keyring(SecretBuffer storage, std::vector<Key> keys)
      : storage_(std::move(storage)), keys_(std::move(keys)) {}
  SecretBuffer storage_;   // every key's master and index key; wiped on exit
  std::vector<Key> keys_;  // front() is the primary; views into storage_
};

}  // namespace stateside::crypto

#endif  // STATESIDE_SIDECAR_CRYPTO_KEYRING_H_
