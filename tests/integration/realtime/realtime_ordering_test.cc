// Ordering and channel bookkeeping under load, on real processes on one
// redis-server: concurrent publishers on several instances share one
// gap-free sequence per room that every subscriber sees in order; a room
// left and joined again (also concurrently) keeps delivering; a connection
// in the maximum number of rooms per request holds exactly those channels
// and gives them all back.
#include <algorithm>
#include <atomic>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/realtime/realtime_fixture.h"
#include "tests/support/wait.h"

namespace stateside::testing {
namespace {

using ::testing::ElementsAre;

constexpr char kChannels[] = "stateside_realtime_redis_channels";
constexpr char kRooms[] = "stateside_realtime_rooms";

class RealtimeOrderingTest : public RealtimeClusterTest {
 protected:
  void StartThree() {
    ASSERT_NO_FATAL_FAILURE(StartPod(a_, "pod-a"));
    ASSERT_NO_FATAL_FAILURE(StartPod(b_, "pod-b"));
    ASSERT_NO_FATAL_FAILURE(StartPod(c_, "pod-c"));
  }

  Pod a_, b_, c_;
};

TEST_F(RealtimeOrderingTest, ConcurrentPublishersShareOneGapFreeSequenceSeenInOrder) {
  ASSERT_NO_FATAL_FAILURE(StartThree());
  std::unique_ptr<EventStream> sa = OpenStream(a_);
  std::unique_ptr<EventStream> sc = OpenStream(c_);
  ASSERT_TRUE(Register(a_, "a1", "", {"r"}).ok());
  ASSERT_TRUE(Register(c_, "c1", "", {"r"}).ok());

  // Three publishers (two of them on member instances), two threads each.
  constexpr int kThreads = 6, kPerThread = 100;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  std::vector<std::vector<uint64_t>> sequences(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const Pod& pod = t % 3 == 0 ? a_ : t % 3 == 1 ? b_ : c_;
      for (int i = 0; i < kPerThread; ++i) {
        v1::PublishResponse published;
        if (!Publish(pod, ToRoom("r", absl::StrCat(t, ":", i)), &published).ok()) {
          failures.fetch_add(1);
          continue;
        }
        sequences[t].push_back(published.sequence());
      }
    });
  }
  for (std::thread& t : threads) t.join();
  ASSERT_EQ(failures.load(), 0);
  // Each publisher's sequences increase; together they are 1..N, each once.
  std::set<uint64_t> all;
  for (const auto& s : sequences) {
    EXPECT_TRUE(std::is_sorted(s.begin(), s.end()));
    all.insert(s.begin(), s.end());
  }
  EXPECT_EQ(all.size(), static_cast<size_t>(kThreads * kPerThread));
  EXPECT_EQ(*all.begin(), 1u);
  EXPECT_EQ(*all.rbegin(), static_cast<uint64_t>(kThreads * kPerThread));

  // Both member instances see 1..N in order, and each thread's events in
  // the order it published them.
  for (EventStream* stream : {sa.get(), sc.get()}) {
    std::vector<int> last(kThreads, -1);
    for (uint64_t want = 1; want <= kThreads * kPerThread; ++want) {
      std::optional<v1::Delivery> d = stream->NextDelivery();
      ASSERT_TRUE(d.has_value()) << "stopped before " << want;
      ASSERT_EQ(d->sequence(), want);
      const std::vector<std::string> parts = absl::StrSplit(d->payload(), ':');
      int t = 0, i = 0;
      ASSERT_EQ(parts.size(), 2u);
      ASSERT_TRUE(absl::SimpleAtoi(parts[0], &t) && absl::SimpleAtoi(parts[1], &i));
      ASSERT_TRUE(t >= 0 && t < kThreads);
      EXPECT_EQ(i, last[t] + 1) << "thread " << t << " out of order";
      last[t] = i;
    }
  }
}

TEST_F(RealtimeOrderingTest, ARoomLeftAndJoinedAgainKeepsDeliveringEvenConcurrently) {
  ASSERT_NO_FATAL_FAILURE(StartThree());
  std::unique_ptr<EventStream> sb = OpenStream(b_);
  ASSERT_TRUE(Register(b_, "b1", "").ok());
  ASSERT_TRUE(Register(b_, "b2", "").ok());

  // One connection: the last member leaves (unsubscribe) and joins again
  // (subscribe) back to back, many times; Join answers once subscribed.
  for (int i = 0; i < 30; ++i) {
    ASSERT_TRUE(Join(b_, "b1", {"r"}).ok());
    ASSERT_TRUE(Leave(b_, "b1", {"r"}).ok());
  }
  ASSERT_TRUE(Join(b_, "b1", {"r"}).ok());
  v1::PublishResponse published;
  ASSERT_TRUE(Publish(a_, ToRoom("r", "one"), &published).ok());
  EXPECT_EQ(published.instances(), 1);
  std::optional<v1::Delivery> d = sb->NextDelivery();
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->payload(), "one");
  EXPECT_THAT(d->conn_ids(), ElementsAre("b1"));

  // Two connections of the instance churning the same room at once; the
  // instance's interest must end up matching the final memberships.
  ASSERT_TRUE(Leave(b_, "b1", {"r"}).ok());
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (const char* conn : {"b1", "b2"}) {
    threads.emplace_back([&, conn] {
      for (int i = 0; i < 40; ++i) {
        if (!Join(b_, conn, {"r"}).ok()) failures.fetch_add(1);
        if (!Leave(b_, conn, {"r"}).ok()) failures.fetch_add(1);
      }
      if (!Join(b_, conn, {"r"}).ok()) failures.fetch_add(1);
    });
  }
  for (std::thread& t : threads) t.join();
  ASSERT_EQ(failures.load(), 0);
  EXPECT_EQ(MemberSet(a_, "r"), (std::set<Ref>{{"pod-b", "b1"}, {"pod-b", "b2"}}));
  ASSERT_TRUE(Publish(a_, ToRoom("r", "two"), &published).ok());
  EXPECT_EQ(published.instances(), 1);
  d = sb->NextDelivery();
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->payload(), "two");
  EXPECT_THAT(d->conn_ids(), ElementsAre("b1", "b2"));

  // Both leave: the channel goes, nothing arrives.
  ASSERT_TRUE(Leave(b_, "b1", {"r"}).ok());
  ASSERT_TRUE(Leave(b_, "b2", {"r"}).ok());
  Fence(b_, "b1");
  ASSERT_TRUE(Publish(a_, ToRoom("r", "three"), &published).ok());
  EXPECT_EQ(published.instances(), 0);
  ExpectNothingBeforeMarker(a_, b_, *sb, "b1");
}

TEST_F(RealtimeOrderingTest, AConnectionInManyRoomsHoldsTheirChannelsAndGivesThemBack) {
  ASSERT_NO_FATAL_FAILURE(StartThree());
  std::unique_ptr<EventStream> sb = OpenStream(b_);
  const double channels_before = b_.Metric(kChannels);
  std::vector<std::string> rooms;
  for (int i = 0; i < 256; ++i) rooms.push_back(absl::StrCat("room-", i));
  ASSERT_TRUE(Register(b_, "b1", "ann", rooms).ok());
  // The instance channel and the broadcast channel come with the first
  // connection; one more per room.
  EXPECT_EQ(b_.Metric(kRooms), 256);
  const double held = b_.Metric(kChannels);
  EXPECT_GE(held - channels_before, 256);
  EXPECT_LE(held - channels_before, 256 + 2);
  for (const int i : {0, 128, 255}) {
    v1::PublishResponse published;
    ASSERT_TRUE(Publish(a_, ToRoom(rooms[i], absl::StrCat("in-", i)), &published).ok());
    EXPECT_EQ(published.instances(), 1);
    std::optional<v1::Delivery> d = sb->NextDelivery();
    ASSERT_TRUE(d.has_value());
    EXPECT_EQ(d->to(), rooms[i]);
    EXPECT_EQ(d->payload(), absl::StrCat("in-", i));
  }
  EXPECT_EQ(MemberSet(c_, "room-200"), (std::set<Ref>{{"pod-b", "b1"}}));

  ASSERT_TRUE(Unregister(b_, "b1").ok());
  EXPECT_EQ(b_.Metric(kRooms), 0);
  EXPECT_LE(b_.Metric(kChannels), channels_before + 1);  // at most its own channel
  EXPECT_EQ(MemberSet(c_, "room-200"), std::set<Ref>{});
  // Unregistering does not await the UNSUBSCRIBEs, hence "soon".
  v1::PublishResponse published;
  EXPECT_TRUE(WaitFor([&] {
    return Publish(a_, ToRoom("room-7", "gone"), &published).ok() && published.instances() == 0;
  }));
  EXPECT_TRUE(WaitFor([&] {
    return Publish(a_, ToAll("gone"), &published).ok() && published.instances() == 0;
  }));
}

}  // namespace
}  // namespace stateside::testing
