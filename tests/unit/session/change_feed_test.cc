// The session change feed: the frame between sidecars, the watchers' kinds,
// their bounded queues (a gap in place of what overflowed), relayed and
// remote changes, loss windows and shutdown.
#include "sidecar/session/change_feed.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/fake_clock.h"

namespace stateside::session {
namespace {

using ::testing::ElementsAre;

SessionChange Change(ChangeKind kind, std::string id = "s1") {
  SessionChange change;
  change.kind = kind;
  change.session_id = std::move(id);
  change.user_id = "ann";
  change.time = absl::FromUnixMicros(1700000000123456);
  return change;
}

TEST(SessionChangeFrameTest, RoundTripsEveryField) {
  SessionChange change = Change(ChangeKind::kUpdated);
  change.previous_id = "old";
  change.origin = "pod-a";
  change.attributes = {"cart", std::string("a:b\0c", 5), ""};
  absl::StatusOr<SessionChange> back = DecodeChange(EncodeChange(change));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->kind, ChangeKind::kUpdated);
  EXPECT_EQ(back->session_id, "s1");
  EXPECT_EQ(back->user_id, "ann");
  EXPECT_EQ(back->time, change.time);
  EXPECT_EQ(back->previous_id, "old");
  EXPECT_EQ(back->origin, "pod-a");
  EXPECT_EQ(back->attributes, change.attributes);
}

TEST(SessionChangeFrameTest, RefusesWhatEncodeDidNotWrite) {
  const std::string good = EncodeChange(Change(ChangeKind::kCreated));
  for (const std::string& bad :
       {std::string(""), good.substr(0, good.size() - 1), good + "x",
        "2:" + good.substr(2), std::string("1:11:9") + good.substr(6),
        std::string("99999999:")}) {
    EXPECT_EQ(DecodeChange(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

class ChangeFeedTest : public ::testing::Test {
 protected:
  // Every item a watcher holds now.
  static std::vector<ChangeItem> Drain(ChangeWatcher& watcher) {
    std::vector<ChangeItem> items;
    while (std::optional<ChangeItem> item = watcher.Pop()) items.push_back(*std::move(item));
    return items;
  }

  testing::FakeClock clock_;
};

TEST_F(ChangeFeedTest, WatchersGetTheKindsTheyAskedForStampedWithTheOrigin) {
  ChangeFeed feed("pod-a", &clock_);
  int wakes = 0;
  auto all = feed.AddWatcher(0, [&] { ++wakes; });
  auto destroyed = feed.AddWatcher(KindBit(ChangeKind::kDestroyed), [] {});
  feed.OnChange(Change(ChangeKind::kCreated, "s1"));
  feed.OnChange(Change(ChangeKind::kDestroyed, "s1"));
  std::vector<ChangeItem> items = Drain(*all);
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].change->kind, ChangeKind::kCreated);
  EXPECT_EQ(items[0].change->origin, "pod-a");
  EXPECT_EQ(items[1].change->kind, ChangeKind::kDestroyed);
  EXPECT_EQ(wakes, 1);  // woken when it turned non-empty, not per change
  items = Drain(*destroyed);
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].change->kind, ChangeKind::kDestroyed);
}

TEST_F(ChangeFeedTest, AFullQueueDropsAndTellsHowManyWhereTheyWere) {
  ChangeFeed feed("pod-a", &clock_, /*queue_events=*/2);
  auto watcher = feed.AddWatcher(0, [] {});
  for (int i = 0; i < 5; ++i) feed.OnChange(Change(ChangeKind::kCreated, std::to_string(i)));
  EXPECT_EQ(watcher->dropped_total(), 3u);
  // Room again: the next change comes after the gap that replaced 2..4.
  ASSERT_TRUE(watcher->Pop().has_value());
  feed.OnChange(Change(ChangeKind::kCreated, "5"));
  std::vector<ChangeItem> items = Drain(*watcher);
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(items[0].change->session_id, "1");
  ASSERT_TRUE(items[1].gap.has_value());
  EXPECT_EQ(items[1].gap->reason, ChangeGap::Reason::kOverflow);
  EXPECT_EQ(items[1].gap->dropped, 3u);
  EXPECT_EQ(items[2].change->session_id, "5");
}

class RecordingRelay final : public ChangeFeed::Relay {
 public:
  void Send(const SessionChange& change) override { sent.push_back(change.session_id); }
  std::optional<ChangeGap> Watched() override { return open_loss; }
  void Unwatched() override { ++unwatched; }
  std::vector<std::string> sent;
  std::optional<ChangeGap> open_loss;
  int unwatched = 0;
};

// The relay hears of the last watcher leaving, once, and of no other.
TEST_F(ChangeFeedTest, TheRelayIsToldWhenTheLastWatcherLeaves) {
  ChangeFeed feed("pod-a", &clock_);
  RecordingRelay relay;
  feed.SetRelay(&relay);
  auto first = feed.AddWatcher(0, [] {});
  auto second = feed.AddWatcher(0, [] {});
  feed.RemoveWatcher(first);
  EXPECT_EQ(relay.unwatched, 0);
  feed.RemoveWatcher(second);
  EXPECT_EQ(relay.unwatched, 1);
  feed.RemoveWatcher(second);  // not a watcher any more
  EXPECT_EQ(relay.unwatched, 1);
  auto again = feed.AddWatcher(0, [] {});
  feed.RemoveWatcher(again);
  EXPECT_EQ(relay.unwatched, 2);
  feed.SetRelay(nullptr);
}

TEST_F(ChangeFeedTest, LocalChangesAreRelayedRemoteOnesAreNot) {
  ChangeFeed feed("pod-a", &clock_);
  RecordingRelay relay;
  feed.SetRelay(&relay);
  auto watcher = feed.AddWatcher(0, [] {});
  feed.OnChange(Change(ChangeKind::kCreated, "mine"));
  SessionChange remote = Change(ChangeKind::kCreated, "theirs");
  remote.origin = "pod-b";
  feed.OnRemote(remote);
  EXPECT_THAT(relay.sent, ElementsAre("mine"));
  std::vector<ChangeItem> items = Drain(*watcher);
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[1].change->origin, "pod-b");
  feed.SetRelay(nullptr);
}

// A loss the relay reported before a watcher was added, still open: the
// new watcher starts with the rest of it, before any change.
TEST_F(ChangeFeedTest, AWatcherAddedWhileALossIsOpenStartsWithIt) {
  ChangeFeed feed("pod-a", &clock_);
  RecordingRelay relay;
  feed.SetRelay(&relay);
  auto before = feed.AddWatcher(0, [] {});
  const absl::Time t0 = clock_.Now();
  relay.open_loss = ChangeGap{ChangeGap::Reason::kRemoteLost, 0, t0, t0 + absl::Seconds(1)};
  auto after = feed.AddWatcher(0, [] {});
  feed.OnChange(Change(ChangeKind::kCreated, "s1"));
  std::vector<ChangeItem> items = Drain(*after);
  ASSERT_EQ(items.size(), 2u);
  ASSERT_TRUE(items[0].gap.has_value());
  EXPECT_EQ(items[0].gap->reason, ChangeGap::Reason::kRemoteLost);
  EXPECT_EQ(items[0].gap->from, t0);
  EXPECT_EQ(items[0].gap->to, t0 + absl::Seconds(1));
  EXPECT_EQ(items[1].change->session_id, "s1");
  items = Drain(*before);  // told by the relay's own report, not twice here
  ASSERT_EQ(items.size(), 1u);
  EXPECT_NE(items[0].change, nullptr);
  feed.SetRelay(nullptr);
}

TEST_F(ChangeFeedTest, ALossWindowReachesEveryWatcherAndMerges) {
  ChangeFeed feed("pod-a", &clock_);
  auto a = feed.AddWatcher(0, [] {});
  auto b = feed.AddWatcher(KindBit(ChangeKind::kExpired), [] {});
  const absl::Time t0 = clock_.Now();
  feed.OnRemoteLost(t0, t0 + absl::Seconds(1));
  feed.OnRemoteLost(t0 + absl::Seconds(2), t0 + absl::Seconds(3));
  for (auto* watcher : {a.get(), b.get()}) {
    std::vector<ChangeItem> items = Drain(*watcher);
    ASSERT_EQ(items.size(), 1u);
    EXPECT_EQ(items[0].gap->reason, ChangeGap::Reason::kRemoteLost);
    EXPECT_EQ(items[0].gap->from, t0);
    EXPECT_EQ(items[0].gap->to, t0 + absl::Seconds(3));
  }
}

TEST_F(ChangeFeedTest, ShutdownClosesEveryQueueAndLaterOnesAreBornClosed) {
  ChangeFeed feed("pod-a", &clock_);
  int wakes = 0;
  auto before = feed.AddWatcher(0, [&] { ++wakes; });
  feed.OnChange(Change(ChangeKind::kCreated));
  feed.Shutdown();
  EXPECT_TRUE(before->closed());
  EXPECT_EQ(wakes, 2);  // the change, then the close
  EXPECT_TRUE(before->Pop().has_value());  // what was queued still drains
  auto after = feed.AddWatcher(0, [] {});
  EXPECT_TRUE(after->closed());
  EXPECT_EQ(feed.watchers(), 1u);
  feed.RemoveWatcher(before);
  EXPECT_EQ(feed.watchers(), 0u);
}

}  // namespace
}  // namespace stateside::session
