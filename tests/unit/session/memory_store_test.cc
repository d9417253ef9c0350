// MemorySessionStore beyond the shared contract: its memory bounds, Sweep and
// the lazy freeing of expired sessions.
#include "sidecar/session/memory_store.h"

#include <algorithm>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/support/fake_clock.h"

namespace stateside::testing {
namespace {

class MemoryStoreTest : public ::testing::Test {
 protected:
  // idle 30m, absolute 8h, created now.
  session::StoredSession Make(std::string id, std::string tag = "") {
    session::StoredSession s;
    s.id = std::move(id);
    s.user_tag = std::move(tag);
    s.created = clock_.Now();
    s.last_access = clock_.Now();
    s.idle_ttl = absl::Minutes(30);
    s.absolute_expiry = clock_.Now() + absl::Hours(8);
    s.version = 1;
    return s;
  }
  static std::string Id(int i) {
    std::string id = absl::StrCat("id", i);
    id.resize(43, '_');
    return id;
  }
  absl::Time Until() { return clock_.Now() + absl::Hours(8); }

  FakeClock clock_;
};

TEST_F(MemoryStoreTest, AFullStoreIsResourceExhausted) {
  session::MemorySessionStore store(3);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(store.Create(Make(Id(i))).ok());
  absl::Status full = store.Create(Make(Id(3)));
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted) << full;
  EXPECT_EQ(store.size(), 3u);
  session::ReadOptions read{clock_.Now(), false, false};
  EXPECT_EQ(store.Get(Id(3), read).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(MemoryStoreTest, AFullStoreDropsExpiredSessionsBeforeRefusing) {
  session::MemorySessionStore store(2);
  ASSERT_TRUE(store.Create(Make(Id(0))).ok());
  clock_.Advance(absl::Minutes(10));
  ASSERT_TRUE(store.Create(Make(Id(1))).ok());
  clock_.Advance(absl::Minutes(25));  // Id(0) idle-expired, Id(1) live
  EXPECT_TRUE(store.Create(Make(Id(2))).ok());
  EXPECT_EQ(store.size(), 2u);
  EXPECT_EQ(store.Create(Make(Id(3))).code(),
            absl::StatusCode::kResourceExhausted);
}

TEST_F(MemoryStoreTest, SweepFreesExpiredSessionsAndTombstones) {
  session::MemorySessionStore store(10);
  ASSERT_TRUE(store.Create(Make(Id(0), "tag")).ok());
  ASSERT_TRUE(store.Create(Make(Id(1), "tag")).ok());
  ASSERT_TRUE(store.Create(Make(Id(2))).ok());
  ASSERT_TRUE(
      store.Destroy(Id(2), clock_.Now(), clock_.Now() + absl::Hours(1)).ok());
  EXPECT_EQ(store.size(), 2u);
  EXPECT_EQ(store.tombstone_count(), 1u);
  EXPECT_EQ(store.Sweep(clock_.Now()), 0u);

  clock_.Advance(absl::Minutes(20));
  session::ReadOptions touch{clock_.Now(), true, true};
  ASSERT_TRUE(store.Get(Id(1), touch).ok());
  clock_.Advance(absl::Minutes(15));  // Id(0) expired, Id(1) live
  EXPECT_EQ(store.Sweep(clock_.Now()), 1u);
  EXPECT_EQ(store.size(), 1u);
  EXPECT_EQ(store.ListByUser("tag", clock_.Now())->size(), 1u);

  clock_.Advance(absl::Hours(1));  // the rest and the tombstone expired
  EXPECT_EQ(store.Sweep(clock_.Now()), 2u);
  EXPECT_EQ(store.size(), 0u);
  EXPECT_EQ(store.tombstone_count(), 0u);
}

TEST_F(MemoryStoreTest, ExpiredSessionsMetOnTheWayAreFreed) {
  session::MemorySessionStore store(10);
  ASSERT_TRUE(store.Create(Make(Id(0), "tag")).ok());
  ASSERT_TRUE(store.Create(Make(Id(1), "tag")).ok());
  clock_.Advance(absl::Hours(1));
  session::ReadOptions read{clock_.Now(), false, false};
  EXPECT_FALSE(store.Get(Id(0), read).ok());
  EXPECT_EQ(store.size(), 1u);
  EXPECT_TRUE(store.ListByUser("tag", clock_.Now())->empty());
  EXPECT_EQ(store.size(), 0u);
}

TEST_F(MemoryStoreTest, TombstonesDoNotTakeRoomFromNewSessions) {
  session::MemorySessionStore store(2);
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(store.Create(Make(Id(i))).ok()) << i;
    ASSERT_TRUE(store.Destroy(Id(i), clock_.Now(), Until()).value_or(false));
  }
  EXPECT_EQ(store.size(), 0u);
  EXPECT_LE(store.tombstone_count(), 2u) << "tombstones are bounded too";
  EXPECT_EQ(store.tombstone_count(), 2u);
}

TEST_F(MemoryStoreTest, DestroyingUnknownIdsCostsNoMemory) {
  session::MemorySessionStore store(2);
  for (int i = 0; i < 100; ++i) {
    ASSERT_FALSE(store.Destroy(Id(i), clock_.Now(), Until()).value_or(true));
  }
  EXPECT_EQ(store.tombstone_count(), 0u);
}

TEST_F(MemoryStoreTest, ATombstoneEndsAtTombstoneUntil) {
  session::MemorySessionStore store(2);
  ASSERT_TRUE(store.Create(Make(Id(0))).ok());
  const absl::Time until = clock_.Now() + absl::Hours(1);
  ASSERT_TRUE(store.Destroy(Id(0), clock_.Now(), until).ok());
  clock_.Set(until - absl::Milliseconds(1));
  EXPECT_EQ(store.Create(Make(Id(0))).code(), absl::StatusCode::kAlreadyExists);
  clock_.Set(until);
  EXPECT_TRUE(store.Create(Make(Id(0))).ok());
}

// A dropped epoch entry (its time ran out, or the table was full) must never
// read as a value the user's epoch had before: a Create that read it would
// miss the logout in between.
TEST_F(MemoryStoreTest, ADroppedEpochNeverReadsAsAnEarlierValue) {
  session::MemorySessionStore store(2);
  const uint64_t before = store.UserEpoch("u1").value();
  ASSERT_TRUE(store
                  .AdvanceUserEpoch("u1", clock_.Now(),
                                    clock_.Now() + absl::Minutes(1))
                  .ok());
  clock_.Advance(absl::Minutes(2));
  EXPECT_EQ(store.Sweep(clock_.Now()), 1u);
  EXPECT_NE(store.UserEpoch("u1").value(), before) << "dropped by Sweep";

  // u1 and u2 fill the table; u3 evicts one of them.
  const uint64_t u1_before = store.UserEpoch("u1").value();
  const uint64_t u2_before = store.UserEpoch("u2").value();
  ASSERT_TRUE(store.AdvanceUserEpoch("u1", clock_.Now(), Until()).ok());
  ASSERT_TRUE(store.AdvanceUserEpoch("u2", clock_.Now(), Until()).ok());
  ASSERT_TRUE(store.AdvanceUserEpoch("u3", clock_.Now(), Until()).ok());
  EXPECT_NE(store.UserEpoch("u1").value(), u1_before);
  EXPECT_NE(store.UserEpoch("u2").value(), u2_before);
}

TEST_F(MemoryStoreTest, ConcurrentMixedOperationsKeepTheBounds) {
  session::MemorySessionStore store(64);
  std::atomic<int> unexpected{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        const std::string id = Id(t * 1000 + i);
        const absl::Time now = clock_.Now();
        absl::Status created = store.Create(Make(id, absl::StrCat("u", t)));
        if (!created.ok() && !absl::IsResourceExhausted(created)) {
          unexpected.fetch_add(1);
        }
        session::Mutation m;
        m.now = now;
        m.set = {{"k", "v"}};
        (void)store.Update(id, m);
        (void)store.Get(id, session::ReadOptions{now, true, false});
        (void)store.ListByUser(absl::StrCat("u", t), now);
        if (i % 2 == 0) (void)store.Destroy(id, now, now + absl::Hours(1));
        if (i % 50 == 0) store.Sweep(now);
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(unexpected.load(), 0);
  EXPECT_LE(store.size(), 64u);
  EXPECT_LE(store.tombstone_count(), 64u);
}

}  // namespace
}  // namespace stateside::testing
