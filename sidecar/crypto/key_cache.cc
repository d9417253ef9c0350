// The bounded, sharded cache of derived envelope keys (key_cache.h).
#include "sidecar/crypto/key_cache.h"

#include <cstring>
#include <utility>

#include "absl/strings/string_view.h"

namespace stateside::crypto {

DerivedKeyCache::DerivedKeyCache(size_t capacity)
    : per_shard_(capacity == 0 ? 1 : (capacity + kShards - 1) / kShards) {
  absl::StatusOr<SecretBuffer> storage =
      SecretBuffer::Allocate(kShards * per_shard_ * kAes256KeySize);
  if (!storage.ok()) return;  // holds nothing: every lookup derives
  storage_ = *std::move(storage);
  for (size_t i = 0; i < kShards; ++i) {
    Shard& shard = shards_[i];
    absl::MutexLock lock(&shard.mu);
    shard.keys = storage_.data() + i * per_shard_ * kAes256KeySize;
  }
}

DerivedKeyCache::Shard& DerivedKeyCache::ShardOf(std::string_view id) const {
  // The last byte is the salt's last: uniformly random.
  const unsigned char b = id.empty() ? 0 : static_cast<unsigned char>(id.back());
  return shards_[b % kShards];
}

bool DerivedKeyCache::Lookup(std::string_view id, char* key) const {
  Shard& shard = ShardOf(id);
  absl::ReaderMutexLock lock(&shard.mu);
  if (shard.keys == nullptr) return false;
  // absl::string_view: this Abseil's hash does not take std::string_view.
  auto it = shard.slot_of.find(absl::string_view(id.data(), id.size()));
  if (it == shard.slot_of.end()) return false;
  std::memcpy(key, shard.keys + it->second * kAes256KeySize, kAes256KeySize);
  return true;
}

void DerivedKeyCache::Insert(std::string_view id, const char* key) {
  Shard& shard = ShardOf(id);
  absl::MutexLock lock(&shard.mu);
  if (shard.keys == nullptr ||
      shard.slot_of.contains(absl::string_view(id.data(), id.size()))) {
    return;
  }
  const uint32_t slot = shard.next;
  shard.next = static_cast<uint32_t>((slot + 1) % per_shard_);
  char* const bytes = shard.keys + slot * kAes256KeySize;
  if (slot == shard.ids.size()) {
    // The shard is still filling: it takes a new slot and evicts nothing.
    shard.ids.emplace_back();
  } else {
    shard.slot_of.erase(shard.ids[slot]);
    Cleanse(bytes, kAes256KeySize);
  }
  std::memcpy(bytes, key, kAes256KeySize);
  shard.ids[slot].assign(id.data(), id.size());
  shard.slot_of.emplace(shard.ids[slot], slot);
}

}  // namespace stateside::crypto
