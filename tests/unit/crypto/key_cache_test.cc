// The derived key cache: hits return the bytes inserted, a full shard evicts
// its oldest entry, a repeated insert changes nothing.
#include "sidecar/crypto/key_cache.h"

#include <string>

#include "gtest/gtest.h"

namespace stateside::crypto {
namespace {

// A cache id as an envelope holds it: key id length, key id, salt. Its last
// byte picks the shard.
std::string Id(char salt_byte, char last_byte) {
  std::string id("\x02k0", 3);
  id += std::string(15, salt_byte);
  id += last_byte;
  return id;
}

std::string KeyBytes(char fill) { return std::string(kAes256KeySize, fill); }

std::string Looked(const DerivedKeyCache& cache, const std::string& id) {
  std::string out(kAes256KeySize, '\0');
  return cache.Lookup(id, out.data()) ? out : std::string("miss");
}

TEST(DerivedKeyCacheTest, ReturnsWhatWasInserted) {
  DerivedKeyCache cache(64);
  EXPECT_EQ(Looked(cache, Id('a', 0)), "miss");
  cache.Insert(Id('a', 0), KeyBytes('A').data());
  cache.Insert(Id('b', 0), KeyBytes('B').data());
  EXPECT_EQ(Looked(cache, Id('a', 0)), KeyBytes('A'));
  EXPECT_EQ(Looked(cache, Id('b', 0)), KeyBytes('B'));
  // Another key id with the same salt is another entry.
  std::string other = Id('a', 0);
  other[2] = '1';
  EXPECT_EQ(Looked(cache, other), "miss");
}

TEST(DerivedKeyCacheTest, AFullShardEvictsItsOldestEntry) {
  // Four keys per shard; ids ending in 0 and 16 share shard 0.
  DerivedKeyCache cache(4 * DerivedKeyCache::kShards);
  ASSERT_EQ(cache.capacity(), 4 * DerivedKeyCache::kShards);
  for (char i = 0; i < 4; ++i) {
    cache.Insert(Id(static_cast<char>('a' + i), 16), KeyBytes(static_cast<char>('A' + i)).data());
  }
  cache.Insert(Id('z', 1), KeyBytes('Z').data());  // another shard
  cache.Insert(Id('e', 16), KeyBytes('E').data());
  EXPECT_EQ(Looked(cache, Id('a', 16)), "miss") << "the oldest went";
  for (char i = 1; i < 4; ++i) {
    EXPECT_EQ(Looked(cache, Id(static_cast<char>('a' + i), 16)),
              KeyBytes(static_cast<char>('A' + i)));
  }
  EXPECT_EQ(Looked(cache, Id('e', 16)), KeyBytes('E'));
  EXPECT_EQ(Looked(cache, Id('z', 1)), KeyBytes('Z')) << "other shards untouched";
  // First in, first out: the hits above did not refresh 'b'.
  cache.Insert(Id('f', 16), KeyBytes('F').data());
  EXPECT_EQ(Looked(cache, Id('b', 16)), "miss");
  EXPECT_EQ(Looked(cache, Id('f', 16)), KeyBytes('F'));
}

TEST(DerivedKeyCacheTest, ARepeatedInsertKeepsTheEntryAndEvictsNothing) {
  DerivedKeyCache cache(DerivedKeyCache::kShards);  // one key per shard
  cache.Insert(Id('a', 3), KeyBytes('A').data());
  cache.Insert(Id('a', 3), KeyBytes('X').data());
  EXPECT_EQ(Looked(cache, Id('a', 3)), KeyBytes('A'));
  cache.Insert(Id('b', 3), KeyBytes('B').data());
  EXPECT_EQ(Looked(cache, Id('a', 3)), "miss");
  EXPECT_EQ(Looked(cache, Id('b', 3)), KeyBytes('B'));
}

}  // namespace
}  // namespace stateside::crypto
