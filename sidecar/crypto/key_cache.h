// The derived data keys of version-2 envelopes, by (key id, epoch salt), so
// that opening the attributes of a session written in one epoch derives the
// key at most once (envelope.h). Internal to sidecar/crypto.
//
// Bounded: at most `capacity` keys (rounded up to a multiple of the shard
// count); a full shard evicts its oldest entry (first in, first out: a hit
// does not refresh an entry, so a lookup needs only a reader lock). The key
// bytes live in a SecretBuffer (excluded from core dumps); an evicted key is
// wiped before its slot is reused, and every key when the cache is
// destroyed.
//
// Thread-safe. Sharded by a byte of the salt (random), each shard with
// its own mutex, so concurrent reads of different epochs rarely meet and
// reads of the same epoch share a reader lock.
#ifndef STATESIDE_SIDECAR_CRYPTO_KEY_CACHE_H_
#define STATESIDE_SIDECAR_CRYPTO_KEY_CACHE_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "sidecar/crypto/primitives.h"
#include "sidecar/crypto/secret_memory.h"

namespace stateside::crypto {

class DerivedKeyCache {
 public:
  static constexpr size_t kShards = 16;

  // An empty cache of `capacity` (> 0) keys. If no SecretBuffer can be
  // mapped the cache holds nothing (every Lookup misses): key material never
  // goes to ordinary memory.
  explicit DerivedKeyCache(size_t capacity);
  ~DerivedKeyCache() = default;  // the SecretBuffer wipes every key
  DerivedKeyCache(const DerivedKeyCache&) = delete;
  DerivedKeyCache& operator=(const DerivedKeyCache&) = delete;

  // `id` is the envelope's bytes key id length | key id | salt (as they sit
  // in it, so a lookup copies nothing). On a hit copies the 32 key bytes to
  // `key` (the caller wipes them) and returns true.
  bool Lookup(std::string_view id, char* key) const;
  // Adds the key of `id` (a no-op if present), evicting the shard's oldest.
  void Insert(std::string_view id, const char* key);

  size_t capacity() const { return kShards * per_shard_; }

 private:
  struct Shard {
    mutable absl::Mutex mu;
    absl::flat_hash_map<std::string, uint32_t> slot_of ABSL_GUARDED_BY(mu);
    // By slot. It and slot_of grow as the shard fills (up to per_shard_),
    // so a cache that holds few keys costs little memory; storage_ is
    // mapped up front but its pages are touched only as keys arrive.
    std::vector<std::string> ids ABSL_GUARDED_BY(mu);
    uint32_t next ABSL_GUARDED_BY(mu) = 0;  // the slot the next insert takes
    // per_shard_ * 32 bytes of storage_, read and written under mu.
    char* keys ABSL_GUARDED_BY(mu) ABSL_PT_GUARDED_BY(mu) = nullptr;
  };
  Shard& ShardOf(std::string_view id) const;

  const size_t per_shard_;
  SecretBuffer storage_;  // every shard's key bytes
  mutable std::array<Shard, kShards> shards_;
};

}  // namespace stateside::crypto

#endif  // STATESIDE_SIDECAR_CRYPTO_KEY_CACHE_H_
