#include "sidecar/realtime/subscriber_queue.h"

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace stateside::realtime {
namespace {

std::shared_ptr<const Delivery> Make(const std::string& name, size_t payload_bytes = 1) {
  auto delivery = std::make_shared<Delivery>();
  delivery->event.name = name;
  delivery->event.payload = std::string(payload_bytes, 'p');
  delivery->conn_ids = {"c"};
  return delivery;
}

const absl::Time kT0 = absl::FromUnixSeconds(1000);

TEST(SubscriberQueueTest, DeliversInOrderAndWakesOnlyWhenItTurnsNonEmpty) {
  std::atomic<int> wakes{0};
  SubscriberQueue queue(8, 1 << 20, [&] { ++wakes; });
  EXPECT_TRUE(queue.Push(Make("a"), kT0));
  EXPECT_TRUE(queue.Push(Make("b"), kT0));
  EXPECT_EQ(wakes, 1);
  EXPECT_EQ(queue.depth(), 2u);
  EXPECT_EQ(queue.Pop()->delivery->event.name, "a");
  EXPECT_EQ(queue.Pop()->delivery->event.name, "b");
  EXPECT_FALSE(queue.Pop().has_value());
  EXPECT_TRUE(queue.Push(Make("c"), kT0));
  EXPECT_EQ(wakes, 2);
}

TEST(SubscriberQueueTest, OverflowDropsNewEventsAndReportsThemInTheirPlace) {
  SubscriberQueue queue(2, 1 << 20, [] {});
  EXPECT_TRUE(queue.Push(Make("a"), kT0));
  EXPECT_TRUE(queue.Push(Make("b"), kT0));
  EXPECT_FALSE(queue.Push(Make("lost1"), kT0 + absl::Seconds(1)));
  EXPECT_FALSE(queue.Push(Make("lost2"), kT0 + absl::Seconds(2)));
  EXPECT_EQ(queue.dropped_total(), 2u);
  EXPECT_EQ(queue.Pop()->delivery->event.name, "a");
  EXPECT_TRUE(queue.Push(Make("c"), kT0 + absl::Seconds(3)));
  EXPECT_EQ(queue.Pop()->delivery->event.name, "b");
  std::optional<QueueItem> gap = queue.Pop();
  ASSERT_TRUE(gap.has_value() && gap->gap.has_value());
  EXPECT_EQ(gap->gap->reason, GapNotice::Reason::kSubscriberOverflow);
  EXPECT_EQ(gap->gap->dropped, 2u);
  EXPECT_EQ(gap->gap->from, kT0 + absl::Seconds(1));
  EXPECT_EQ(gap->gap->to, kT0 + absl::Seconds(2));
  EXPECT_EQ(queue.Pop()->delivery->event.name, "c");
  EXPECT_FALSE(queue.Pop().has_value());
}

TEST(SubscriberQueueTest, DropsAtTheEndAreReportedWhenTheQueueEmpties) {
  SubscriberQueue queue(1, 1 << 20, [] {});
  EXPECT_TRUE(queue.Push(Make("a"), kT0));
  EXPECT_FALSE(queue.Push(Make("lost"), kT0));
  EXPECT_EQ(queue.Pop()->delivery->event.name, "a");
  std::optional<QueueItem> gap = queue.Pop();
  ASSERT_TRUE(gap.has_value() && gap->gap.has_value());
  EXPECT_EQ(gap->gap->dropped, 1u);
  EXPECT_FALSE(queue.Pop().has_value());
}

TEST(SubscriberQueueTest, ByteBoundDropsButAnEmptyQueueTakesOneLargeEvent) {
  SubscriberQueue queue(100, 1000, [] {});
  EXPECT_TRUE(queue.Push(Make("big", 5000), kT0)) << "alone, any size fits";
  EXPECT_FALSE(queue.Push(Make("small", 10), kT0)) << "past the byte bound";
  queue.Pop();
  EXPECT_TRUE(queue.Push(Make("small", 10), kT0));
}

TEST(SubscriberQueueTest, RedisGapsMergeAndCloseRefusesPushesButDrains) {
  std::atomic<int> wakes{0};
  SubscriberQueue queue(4, 1 << 20, [&] { ++wakes; });
  queue.PushGap({GapNotice::Reason::kRedisDisconnected, 0, kT0, kT0 + absl::Seconds(1)});
  queue.PushGap({GapNotice::Reason::kRedisDisconnected, 0, kT0 + absl::Seconds(2),
                 kT0 + absl::Seconds(3)});
  EXPECT_TRUE(queue.Push(Make("a"), kT0));
  queue.Close();
  EXPECT_TRUE(queue.closed());
  EXPECT_EQ(wakes, 2) << "turning non-empty, then closing";
  EXPECT_FALSE(queue.Push(Make("late"), kT0));
  std::optional<QueueItem> gap = queue.Pop();
  ASSERT_TRUE(gap->gap.has_value());
  EXPECT_EQ(gap->gap->from, kT0);
  EXPECT_EQ(gap->gap->to, kT0 + absl::Seconds(3));
  EXPECT_EQ(queue.Pop()->delivery->event.name, "a");
  EXPECT_FALSE(queue.Pop().has_value());
}

std::shared_ptr<Delivery> UserEvent(const std::string& id, uint64_t sequence) {
  auto delivery = std::make_shared<Delivery>();
  delivery->event.target = TargetKind::kUser;
  delivery->event.to = id;
  delivery->event.name = absl::StrCat(id, "@", sequence);
  delivery->event.sequence = sequence;
  delivery->conn_ids = {"c"};
  return delivery;
}

std::vector<std::string> Drain(SubscriberQueue& queue) {
  std::vector<std::string> names;
  while (std::optional<QueueItem> item = queue.Pop()) {
    names.push_back(item->gap.has_value() ? "gap" : item->delivery->event.name);
  }
  return names;
}

const std::string kAnn = StreamKey(StreamRef{TargetKind::kUser, "ann", ""});

// A queue that did not resume passes every arrival, a crossed one (6 before
// 5, as two publishers' events of a user stream may arrive on Redis) late.
TEST(SubscriberQueueTest, WithoutAResumeCrossedArrivalsAreDeliveredLate) {
  SubscriberQueue queue(8, 1 << 20, nullptr);
  bool stale = false;
  EXPECT_TRUE(queue.Push(UserEvent("ann", 6), kT0, &stale));
  EXPECT_TRUE(queue.Push(UserEvent("ann", 5), kT0, &stale));
  EXPECT_TRUE(queue.Push(UserEvent("ann", 1), kT0, &stale)) << "a restarted stream";
  EXPECT_FALSE(stale);
  EXPECT_EQ(Drain(queue), (std::vector<std::string>{"ann@6", "ann@5", "ann@1"}));
}

// A resume: live events wait while the replay goes first; those the
// replay covered are left out, at the hand-off and for kCoverTtl after it,
// on the resumed streams only.
TEST(SubscriberQueueTest, AHoldingQueueServesTheReplayThenTheLiveEventsItDidNotCover) {
  std::atomic<int> wakes{0};
  SubscriberQueue queue(16, 1 << 20, [&] { ++wakes; }, /*holding=*/true);
  // Held while the replay runs: 4 (also replayed), 6 before 5, bob's 2.
  EXPECT_TRUE(queue.Push(UserEvent("ann", 4), kT0));
  EXPECT_TRUE(queue.Push(UserEvent("ann", 6), kT0));
  EXPECT_TRUE(queue.Push(UserEvent("ann", 5), kT0));
  EXPECT_TRUE(queue.Push(UserEvent("bob", 2), kT0));
  EXPECT_FALSE(queue.Pop().has_value()) << "held";
  EXPECT_EQ(wakes, 0);
  EXPECT_TRUE(queue.PushReplay(UserEvent("ann", 3), kT0));
  EXPECT_TRUE(queue.PushReplay(UserEvent("ann", 4), kT0));
  EXPECT_EQ(wakes, 1);
  queue.Cover(kAnn, 4, kT0);
  EXPECT_EQ(queue.Release(kT0), 1u) << "the held 4";
  bool stale = false;
  // Within the window: a replayed event arriving live again is left out.
  EXPECT_TRUE(queue.Push(UserEvent("ann", 4), kT0 + absl::Seconds(1), &stale));
  EXPECT_TRUE(stale) << "skipped, not dropped";
  stale = false;
  // Above the cover, and bob's (not resumed) crossed 1: delivered late.
  EXPECT_TRUE(queue.Push(UserEvent("ann", 8), kT0 + absl::Seconds(1), &stale));
  EXPECT_TRUE(queue.Push(UserEvent("ann", 7), kT0 + absl::Seconds(1), &stale));
  EXPECT_TRUE(queue.Push(UserEvent("bob", 1), kT0 + absl::Seconds(1), &stale));
  EXPECT_FALSE(stale);
  // After the window ann's stream may have restarted: 1 passes.
  EXPECT_TRUE(queue.Push(UserEvent("ann", 1), kT0 + SubscriberQueue::kCoverTtl, &stale));
  EXPECT_FALSE(stale);
  EXPECT_EQ(Drain(queue), (std::vector<std::string>{"ann@3", "ann@4", "ann@6", "ann@5", "bob@2",
                                                    "ann@8", "ann@7", "bob@1", "ann@1"}));
  EXPECT_EQ(queue.depth(), 0u);
  EXPECT_EQ(queue.dropped_total(), 0u);
}

// A Redis loss window while the resume holds the queue (the gap is held
// too) keeps the covers: the held and the later live copies of what the
// replay gave stay out.
TEST(SubscriberQueueTest, ARedisLossWindowDuringAResumeBringsNoDuplicateBack) {
  SubscriberQueue queue(16, 1 << 20, nullptr, /*holding=*/true);
  EXPECT_TRUE(queue.Push(UserEvent("ann", 9), kT0));
  for (uint64_t sequence = 6; sequence <= 9; ++sequence) {
    EXPECT_TRUE(queue.PushReplay(UserEvent("ann", sequence), kT0));
  }
  queue.PushGap({GapNotice::Reason::kRedisDisconnected, 0, kT0, kT0});
  queue.Cover(kAnn, 9, kT0);
  queue.PushGap({GapNotice::Reason::kRedisDisconnected, 0, kT0, kT0});
  EXPECT_EQ(queue.Release(kT0), 1u);
  bool stale = false;
  EXPECT_TRUE(queue.Push(UserEvent("ann", 8), kT0, &stale));
  EXPECT_TRUE(stale);
  EXPECT_TRUE(queue.Push(UserEvent("ann", 10), kT0));
  EXPECT_EQ(Drain(queue),
            (std::vector<std::string>{"ann@6", "ann@7", "ann@8", "ann@9", "gap", "ann@10"}));
}

}  // namespace
}  // namespace stateside::realtime
