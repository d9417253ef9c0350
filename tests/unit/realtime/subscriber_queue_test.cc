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

// A resume: live events wait while the replay goes first; those the
// replay covered are left out, then and later, until the stream moves on.
TEST(SubscriberQueueTest, AHoldingQueueServesTheReplayThenTheLiveEventsItDidNotCover) {
  std::atomic<int> wakes{0};
  SubscriberQueue queue(8, 1 << 20, [&] { ++wakes; }, /*holding=*/true);
  const auto room = [](const std::string& name, uint64_t sequence) {
    auto delivery = std::make_shared<Delivery>();
    delivery->event.target = TargetKind::kRoom;
    delivery->event.to = "r";
    delivery->event.name = name;
    delivery->event.sequence = sequence;
    delivery->conn_ids = {"c"};
    return delivery;
  };
  EXPECT_TRUE(queue.Push(room("live3", 3), kT0));
  EXPECT_TRUE(queue.Push(Make("other"), kT0));  // another stream (all, 0)
  EXPECT_FALSE(queue.Pop().has_value()) << "held";
  EXPECT_EQ(wakes, 0);
  EXPECT_TRUE(queue.PushReplay(room("replay2", 2), kT0));
  EXPECT_TRUE(queue.PushReplay(room("replay3", 3), kT0));
  EXPECT_EQ(wakes, 1);
  EXPECT_EQ(queue.Pop()->delivery->event.name, "replay2");
  queue.Cover(StreamKey(StreamRef{TargetKind::kRoom, "r", ""}), 3, kT0);
  queue.Release(kT0);
  EXPECT_TRUE(queue.Push(room("late3", 3), kT0)) << "skipped, not dropped";
  EXPECT_TRUE(queue.Push(room("live4", 4), kT0));
  EXPECT_TRUE(queue.Push(room("late3again", 3), kT0)) << "below the mark: skipped";
  // A stream idle past the mark's life may have restarted its sequence.
  EXPECT_TRUE(queue.Push(room("restarted1", 1), kT0 + SubscriberQueue::kMarkTtl));
  std::vector<std::string> names;
  while (std::optional<QueueItem> item = queue.Pop()) names.push_back(item->delivery->event.name);
  EXPECT_EQ(names, (std::vector<std::string>{"replay3", "other", "live4", "restarted1"}));
  EXPECT_EQ(queue.depth(), 0u);
  EXPECT_EQ(queue.dropped_total(), 0u);
}

// Events of a stream that arrive out of sequence order (on Redis a user
// stream's sequence is assigned before the event is sent) or twice: each
// sequence reaches the consumer once, never after a newer one of its stream;
// in the hand-off too, a held event the replay queued is left out, and so is
// one older than a held event released before it.
TEST(SubscriberQueueTest, EachStreamGoesForwardOnceThroughTheReplayAndLive) {
  SubscriberQueue queue(16, 1 << 20, nullptr, /*holding=*/true);
  const auto user = [](const std::string& id, uint64_t sequence) {
    auto delivery = std::make_shared<Delivery>();
    delivery->event.target = TargetKind::kUser;
    delivery->event.to = id;
    delivery->event.name = absl::StrCat(id, "@", sequence);
    delivery->event.sequence = sequence;
    delivery->conn_ids = {"c"};
    return delivery;
  };
  // Held while the replay runs: 6 arrives before 5, and 4 (also replayed).
  EXPECT_TRUE(queue.Push(user("ann", 4), kT0));
  EXPECT_TRUE(queue.Push(user("ann", 6), kT0));
  EXPECT_TRUE(queue.Push(user("ann", 5), kT0));
  EXPECT_TRUE(queue.Push(user("bob", 2), kT0));
  EXPECT_TRUE(queue.PushReplay(user("ann", 3), kT0));
  EXPECT_TRUE(queue.PushReplay(user("ann", 4), kT0));
  queue.Cover(StreamKey(StreamRef{TargetKind::kUser, "ann", ""}), 4, kT0);
  queue.Release(kT0);
  // Live: bob's 1 after his 2, ann's replayed 4 and released 6 again.
  EXPECT_TRUE(queue.Push(user("bob", 1), kT0));
  EXPECT_TRUE(queue.Push(user("ann", 4), kT0));
  EXPECT_TRUE(queue.Push(user("ann", 6), kT0));
  EXPECT_TRUE(queue.Push(user("ann", 8), kT0 + absl::Seconds(1)));
  EXPECT_TRUE(queue.Push(user("ann", 7), kT0 + absl::Seconds(1)));
  EXPECT_TRUE(queue.Push(user("bob", 3), kT0 + absl::Seconds(1)));
  std::vector<std::string> names;
  while (std::optional<QueueItem> item = queue.Pop()) names.push_back(item->delivery->event.name);
  EXPECT_EQ(names,
            (std::vector<std::string>{"ann@3", "ann@4", "ann@6", "bob@2", "ann@8", "bob@3"}));
  EXPECT_EQ(queue.depth(), 0u);
  EXPECT_EQ(queue.dropped_total(), 0u) << "skipped, not dropped";

  // A Redis loss window: the counters may have restarted.
  queue.PushGap({GapNotice::Reason::kRedisDisconnected, 0, kT0, kT0});
  EXPECT_TRUE(queue.Push(user("ann", 1), kT0 + absl::Seconds(2)));
  ASSERT_TRUE(queue.Pop()->gap.has_value());
  EXPECT_EQ(queue.Pop()->delivery->event.name, "ann@1");
}

}  // namespace
}  // namespace stateside::realtime
