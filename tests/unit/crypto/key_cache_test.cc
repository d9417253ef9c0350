// The derived key cache: hits return the bytes inserted, a full shard evicts
// its oldest entry and one still filling evicts nothing, a repeated insert
// changes nothing.
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

TEST(DerivedKeyCacheTest, AShardThatIsStillFillingEvictsNothing) {
  // The default capacity: 256 keys per shard, whose slots are taken one by
  // one as keys arrive. Ids ending in 5 share shard 5; the first byte after
  // the key id makes each one different.
  constexpr int kPerShard = 256;
  DerivedKeyCache cache(kPerShard * DerivedKeyCache::kShards);
  auto id = [](int n) {
    std::string s = Id('a', 5);
    s[3] = static_cast<char>(n & 0xff);
    s[4] = static_cast<char>(n >> 8);
    return s;
  };
  auto key = [](int n) { return KeyBytes(static_cast<char>(n)); };
  for (int n = 0; n < kPerShard; ++n) {
    cache.Insert(id(n), key(n).data());
    ASSERT_EQ(Looked(cache, id(0)), key(0)) << "evicted after " << n + 1 << " inserts";
  }
  for (int n = 0; n < kPerShard; ++n) ASSERT_EQ(Looked(cache, id(n)), key(n)) << n;
  // Full: each further key evicts the oldest, in the order they came.
  cache.Insert(id(kPerShard), key(kPerShard).data());
  EXPECT_EQ(Looked(cache, id(0)), "miss");
  EXPECT_EQ(Looked(cache, id(1)), key(1));
  cache.Insert(id(kPerShard + 1), key(kPerShard + 1).data());
  EXPECT_EQ(Looked(cache, id(1)), "miss");
  EXPECT_EQ(Looked(cache, id(2)), key(2));
  EXPECT_EQ(Looked(cache, id(kPerShard)), key(kPerShard));
  EXPECT_EQ(Looked(cache, id(kPerShard + 1)), key(kPerShard + 1));
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
