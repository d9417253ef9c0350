// The session change relay on a real redis-server and a real Redis Cluster
// (shard channel, SPUBLISH): two instances (a feed, a client and a relay
// each) on one Redis; a change reported on one reaches the other's watcher
// with every field, never comes back to its own watcher twice, the first
// subscription is a loss window, and a frame that is not sealed under the
// keyring (what a Redis writer could publish) is dropped. With nobody
// subscribed, publishing holds off (about one frame per hold-off), and a
// watcher that subscribes meanwhile starts with a gap reaching past the
// hold-off and gets every change made after it. An instance whose last
// watcher leaves unsubscribes, so publishing holds off again, and its next
// watcher starts with its own gap: from when it was added (even when the
// SUBSCRIBE failed with its connection), and before any frame sent before
// the last one left.
#include "sidecar/redis/session_change_relay.h"

#include <cmath>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "sidecar/crypto/envelope.h"
#include "sidecar/crypto/keyring.h"
#include "sidecar/crypto/random.h"
#include "sidecar/redis/cluster_slots.h"
#include "tests/integration/redis/redis_fixture.h"
#include "tests/support/fake_clock.h"
#include "tests/support/redis_cluster.h"
#include "tests/support/wait.h"

namespace stateside::testing {
namespace {

using session::ChangeItem;
using session::ChangeKind;
using session::SessionChange;

// One sidecar's part: a client, a feed with one watcher, the relay.
struct Instance {
  std::unique_ptr<redis::RedisClient> client;
  std::unique_ptr<session::ChangeFeed> feed;
  std::shared_ptr<session::ChangeWatcher> watcher;
  std::unique_ptr<redis::RedisChangeRelay> relay;

  ~Instance() {
    relay.reset();
    client.reset();
  }
};

enum class Topology { kStandalone, kCluster };

class SessionChangeRelayTest : public ::testing::TestWithParam<Topology> {
 protected:
  void SetUp() override {
    if (GetParam() == Topology::kCluster) {
      auto cluster = RedisCluster::Start();
      ASSERT_TRUE(cluster.ok()) << cluster.status();
      cluster_ = *std::move(cluster);
      url_ = cluster_->url();
    } else {
      auto server = RedisServer::Start();
      ASSERT_TRUE(server.ok()) << server.status();
      server_ = *std::move(server);
      url_ = server_->url();
    }
    random_ = crypto::NewSecureRandom();
    auto keyring = crypto::Keyring::Create({{"k1", std::string(32, '\x07')}});
    ASSERT_TRUE(keyring.ok()) << keyring.status();
    keyring_ = *std::move(keyring);
    sealer_ = std::make_unique<crypto::Sealer>(keyring_.get(), random_.get());
    prefix_ = UniquePrefix();
  }

  // With `watch`, a watcher first, and the relay's subscription confirmed.
  std::unique_ptr<Instance> Start(const std::string& id, bool watch = true) {
    auto instance = std::make_unique<Instance>();
    redis::RedisOptions options = FastRedisOptions();
    if (GetParam() == Topology::kCluster) options.topology = redis::RedisTopology::kCluster;
    instance->client = ConnectedClient(url_, options);
    EXPECT_NE(instance->client, nullptr);
    if (instance->client == nullptr) return nullptr;
    instance->feed = std::make_unique<session::ChangeFeed>(id, &clock_);
    if (watch) instance->watcher = instance->feed->AddWatcher(0, [] {});
    auto relay = redis::RedisChangeRelay::Create(instance->client.get(), sealer_.get(),
                                                 instance->feed.get(), prefix_);
    EXPECT_TRUE(relay.ok()) << relay.status();
    if (!relay.ok()) return nullptr;
    instance->relay = *std::move(relay);
    if (watch) {
      EXPECT_TRUE(WaitFor([&] { return instance->relay->subscribed(); }, absl::Seconds(20)));
    }
    return instance;
  }

  // The next item of `watcher`, waited for.
  static ChangeItem Next(session::ChangeWatcher& watcher) {
    std::optional<ChangeItem> item;
    EXPECT_TRUE(WaitFor([&] { return (item = watcher.Pop()).has_value(); }, absl::Seconds(10)));
    return item.value_or(ChangeItem{});
  }

  // Redis's count of PUBLISH calls (Cluster: SPUBLISH, every master's
  // summed; a replica's count of the propagated ones is left out).
  int64_t Publishes() const {
    const std::string field = GetParam() == Topology::kCluster ? "cmdstat_spublish:calls="
                                                               : "cmdstat_publish:calls=";
    std::vector<std::string> infos;
    if (GetParam() == Topology::kCluster) {
      for (int port : cluster_->MasterPorts()) {
        infos.push_back(cluster_->Cli(port, {"INFO", "commandstats"}).out);
      }
    } else {
      infos.push_back(server_->Cli({"INFO", "commandstats"}).out);
    }
    int64_t total = 0;
    for (const std::string& info : infos) {
      const size_t at = info.find(field);
      if (at == std::string::npos) continue;  // none yet on that node
      const size_t from = at + field.size();
      int64_t calls = 0;
      EXPECT_TRUE(absl::SimpleAtoi(info.substr(from, info.find(',', from) - from), &calls));
      total += calls;
    }
    return total;
  }

  // Redis's own count of the relay channel's subscribers (a shard
  // channel's, on the slot's master), asked through `via`'s client.
  int64_t Subscribers(const Instance& via) const {
    const bool sharded = GetParam() == Topology::kCluster;
    auto reply = via.client->Call(redis::RedisCommand(
        {"PUBSUB", sharded ? "SHARDNUMSUB" : "NUMSUB", via.relay->channel()}));
    if (!reply.ok() || reply->elements.size() != 2) return -1;
    return reply->elements[1].integer;
  }

  static SessionChange Updated(std::string session_id) {
    SessionChange change;
    change.kind = ChangeKind::kUpdated;
    change.session_id = std::move(session_id);
    change.attributes = {"cart"};
    return change;
  }

  // Changes on `from` every few ms until well past `gap_to`: `watcher`
  // gets every one made after it, in order, last (those within the gap may
  // be missing).
  static void ExpectEveryChangePast(Instance& from, absl::Time gap_to,
                                    session::ChangeWatcher& watcher) {
    std::vector<std::string> after_gap;
    for (int i = 0; absl::Now() < gap_to + absl::Milliseconds(300); ++i) {
      const std::string id = absl::StrCat("c", i);
      const absl::Time made = absl::Now();
      from.feed->OnChange(Updated(id));
      if (made > gap_to) after_gap.push_back(id);
      absl::SleepFor(absl::Milliseconds(5));  // the pace of the changes
    }
    ASSERT_FALSE(after_gap.empty());
    std::vector<std::string> seen;
    ASSERT_TRUE(WaitFor(
        [&] {
          while (std::optional<ChangeItem> item = watcher.Pop()) {
            if (item->change != nullptr) seen.push_back(item->change->session_id);
          }
          return !seen.empty() && seen.back() == after_gap.back();
        },
        absl::Seconds(10)))
        << seen.size() << " seen";
    // The tail of what was seen is exactly what was made after the gap.
    ASSERT_GE(seen.size(), after_gap.size());
    EXPECT_EQ(std::vector<std::string>(seen.end() - after_gap.size(), seen.end()), after_gap);
  }

  std::unique_ptr<RedisServer> server_;
  std::unique_ptr<RedisCluster> cluster_;
  std::string url_;
  FakeClock clock_;
  std::unique_ptr<RandomSource> random_;
  std::unique_ptr<crypto::Keyring> keyring_;
  std::unique_ptr<crypto::Sealer> sealer_;
  std::string prefix_;
};

TEST_P(SessionChangeRelayTest, AChangeOnOneInstanceReachesTheOthersWatcher) {
  std::unique_ptr<Instance> a = Start("pod-a");
  std::unique_ptr<Instance> b = Start("pod-b");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(a->relay->channel(), prefix_ + "{se}:changes");
  // Each first subscription is a loss window since start.
  for (Instance* i : {a.get(), b.get()}) {
    const ChangeItem gap = Next(*i->watcher);
    ASSERT_TRUE(gap.gap.has_value());
    EXPECT_EQ(gap.gap->reason, session::ChangeGap::Reason::kRemoteLost);
  }

  SessionChange change;
  change.kind = ChangeKind::kUpdated;
  change.session_id = "session-id-in-the-clear";
  change.user_id = "alice";
  change.attributes = {"cart"};
  change.time = clock_.Now();
  a->feed->OnChange(change);

  // a's watcher: once, at once (its own copy from Redis is skipped).
  ChangeItem local = Next(*a->watcher);
  ASSERT_NE(local.change, nullptr);
  EXPECT_EQ(local.change->origin, "pod-a");
  // b's watcher: from Redis.
  ChangeItem remote = Next(*b->watcher);
  ASSERT_NE(remote.change, nullptr);
  EXPECT_EQ(remote.change->kind, ChangeKind::kUpdated);
  EXPECT_EQ(remote.change->session_id, "session-id-in-the-clear");
  EXPECT_EQ(remote.change->user_id, "alice");
  EXPECT_EQ(remote.change->attributes, std::vector<std::string>{"cart"});
  EXPECT_EQ(remote.change->origin, "pod-a");
  EXPECT_EQ(remote.change->time, clock_.Now());

  // b's change back to a; a's own copy from Redis was skipped.
  SessionChange other = change;
  other.kind = ChangeKind::kDestroyed;
  other.session_id = "second";
  b->feed->OnChange(other);
  remote = Next(*a->watcher);
  ASSERT_NE(remote.change, nullptr);
  EXPECT_EQ(remote.change->session_id, "second");
  EXPECT_EQ(remote.change->origin, "pod-b");
  EXPECT_FALSE(a->watcher->Pop().has_value());
  EXPECT_EQ(a->relay->stats().received, 1u);
  EXPECT_EQ(b->relay->stats().received, 1u);
  EXPECT_EQ(a->relay->stats().dropped, 0u);
  EXPECT_EQ(a->relay->stats().publish_failed, 0u);
}

// One instance's changes reach the others in the order it made them, even
// in a burst: separate publishes would spread over the client's
// connections and could overtake each other.
TEST_P(SessionChangeRelayTest, OneInstancesChangesArriveInTheOrderItMadeThem) {
  std::unique_ptr<Instance> a = Start("pod-a");
  std::unique_ptr<Instance> b = Start("pod-b");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  for (Instance* i : {a.get(), b.get()}) (void)Next(*i->watcher);  // the first gaps
  ASSERT_TRUE(a->relay->subscribed());
  std::vector<std::string> made;
  for (int i = 0; i < 500; ++i) {
    made.push_back(absl::StrCat("burst", i));
    b->feed->OnChange(Updated(made.back()));
  }
  std::vector<std::string> seen;
  ASSERT_TRUE(WaitFor(
      [&] {
        while (std::optional<ChangeItem> item = a->watcher->Pop()) {
          EXPECT_FALSE(item->gap.has_value()) << "a gap after " << seen.size();
          if (item->change != nullptr) seen.push_back(item->change->session_id);
        }
        return seen.size() >= made.size();
      },
      absl::Seconds(20)))
      << seen.size() << " seen";
  EXPECT_EQ(seen, made);
}

TEST_P(SessionChangeRelayTest, AFrameNotSealedUnderTheKeyringIsDropped) {
  std::unique_ptr<Instance> b = Start("pod-b");
  ASSERT_NE(b, nullptr);
  (void)Next(*b->watcher);  // the first subscription's gap
  // What a Redis writer could publish: a frame it cannot seal.
  auto reply = b->client->Call(redis::RedisCommand(
      {GetParam() == Topology::kCluster ? "SPUBLISH" : "PUBLISH", b->relay->channel(),
       "not a sealed frame"}));
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_TRUE(WaitFor([&] { return b->relay->stats().dropped == 1; }, absl::Seconds(10)));
  EXPECT_FALSE(b->watcher->Pop().has_value());
}

// An instance nobody watches on does not subscribe (it would receive and
// open every instance's changes for nothing); a watcher added while it has
// none subscribes it, with the window until then reported as a loss.
TEST_P(SessionChangeRelayTest, OnlyAnInstanceWithAWatcherSubscribes) {
  std::unique_ptr<Instance> a = Start("pod-a", /*watch=*/false);
  ASSERT_NE(a, nullptr);
  std::unique_ptr<Instance> b = Start("pod-b");
  ASSERT_NE(b, nullptr);
  (void)Next(*b->watcher);  // b's first subscription's gap
  const auto subscribers = [&] { return Subscribers(*a); };
  EXPECT_EQ(subscribers(), 1) << "b only";
  EXPECT_FALSE(a->relay->subscribed());

  a->watcher = a->feed->AddWatcher(0, [] {});
  EXPECT_TRUE(WaitFor([&] { return a->relay->subscribed(); }, absl::Seconds(20)));
  EXPECT_EQ(subscribers(), 2);
  const ChangeItem gap = Next(*a->watcher);
  ASSERT_TRUE(gap.gap.has_value()) << "the window until the subscription was confirmed";
  EXPECT_EQ(gap.gap->reason, session::ChangeGap::Reason::kRemoteLost);
  SessionChange change;
  change.kind = ChangeKind::kCreated;
  change.session_id = "watched";
  change.time = clock_.Now();
  b->feed->OnChange(change);
  const ChangeItem seen = Next(*a->watcher);
  ASSERT_NE(seen.change, nullptr);
  EXPECT_EQ(seen.change->session_id, "watched");
}

// No watcher anywhere: the first publish reaches nobody, and from then on
// each instance publishes one frame per hold-off (the probe), not one per
// change, as Redis's own count of the calls shows.
TEST_P(SessionChangeRelayTest, WithNobodyWatchingPublishesHoldOff) {
  std::unique_ptr<Instance> a = Start("pod-a", /*watch=*/false);
  std::unique_ptr<Instance> b = Start("pod-b", /*watch=*/false);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  const int64_t before = Publishes();
  const absl::Time start = absl::Now();
  // The first publish's answer (no receiver) closes the gate; until it
  // comes, a change would be published too.
  a->feed->OnChange(Updated("first-a"));
  b->feed->OnChange(Updated("first-b"));
  ASSERT_TRUE(WaitFor([&] { return a->relay->holding_off() && b->relay->holding_off(); },
                      absl::Seconds(10)));
  int changes = 1;
  // Changes paced over about 2.5 hold-offs (the pace is the load, not a wait
  // for anything).
  while (absl::Now() - start < 2.5 * redis::RedisChangeRelay::kPublishHoldOff) {
    a->feed->OnChange(Updated(absl::StrCat("a", changes)));
    b->feed->OnChange(Updated(absl::StrCat("b", changes)));
    ++changes;
    absl::SleepFor(absl::Milliseconds(5));
  }
  const absl::Duration elapsed = absl::Now() - start;
  const int64_t bound =
      static_cast<int64_t>(std::ceil(elapsed / redis::RedisChangeRelay::kPublishHoldOff)) + 1;
  for (Instance* i : {a.get(), b.get()}) {
    // Every change is published or suppressed once its probe is answered.
    ASSERT_TRUE(WaitFor(
        [&] {
          const redis::ChangeRelayStats stats = i->relay->stats();
          return stats.published + stats.suppressed == static_cast<uint64_t>(changes);
        },
        absl::Seconds(10)))
        << i->relay->stats().published << " + " << i->relay->stats().suppressed;
    EXPECT_LE(static_cast<int64_t>(i->relay->stats().published), bound);
    EXPECT_GE(i->relay->stats().published, 2u) << "the first, and a probe after the hold-off";
    EXPECT_EQ(i->relay->stats().publish_failed, 0u);
  }
  EXPECT_GT(changes, 100);
  int64_t calls = 0;
  EXPECT_TRUE(WaitFor(
      [&] {
        calls = Publishes() - before;
        return calls == static_cast<int64_t>(a->relay->stats().published +
                                             b->relay->stats().published);
      },
      absl::Seconds(10)))
      << calls;
  EXPECT_LE(calls, 2 * bound) << changes << " changes each in " << elapsed;
}

// An instance holding off (its last publish reached nobody) while a watcher
// subscribes elsewhere: the watcher's first event is a gap reaching a
// hold-off past its subscription, and every change made after the gap is
// delivered, in order. A second watcher added within the window starts
// with the rest of it.
TEST_P(SessionChangeRelayTest, AWatcherThatSubscribesDuringAHoldOffStartsWithItsGap) {
  // b first: its subscriber has had a's start-up to reach the shards (on
  // Cluster a SUBSCRIBE that meets its shard's connection still coming up
  // is confirmed only by the restore after it, which takes longer).
  std::unique_ptr<Instance> b = Start("pod-b", /*watch=*/false);
  std::unique_ptr<Instance> a = Start("pod-a", /*watch=*/false);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  a->feed->OnChange(Updated("before"));
  ASSERT_TRUE(WaitFor([&] { return a->relay->holding_off(); }, absl::Seconds(10)));

  b->watcher = b->feed->AddWatcher(0, [] {});
  ASSERT_TRUE(WaitFor([&] { return b->relay->subscribed(); }, absl::Seconds(20)));
  const ChangeItem first = Next(*b->watcher);
  ASSERT_TRUE(first.gap.has_value()) << "the first event is the gap";
  EXPECT_EQ(first.gap->reason, session::ChangeGap::Reason::kRemoteLost);
  EXPECT_GE(first.gap->to - first.gap->from, redis::RedisChangeRelay::kPublishHoldOff);
  EXPECT_GT(first.gap->to, absl::Now()) << "the window reaches past the subscription";

  std::shared_ptr<session::ChangeWatcher> late = b->feed->AddWatcher(0, [] {});
  const ChangeItem late_first = Next(*late);
  ASSERT_TRUE(late_first.gap.has_value()) << "added within the window";
  EXPECT_EQ(late_first.gap->to, first.gap->to);

  // Changes made after the gap must all arrive (the ones within it may not).
  ExpectEveryChangePast(*a, first.gap->to, *b->watcher);
  EXPECT_FALSE(a->relay->holding_off());
  b->feed->RemoveWatcher(late);
}

// The subscription lasts while there is a watcher: when the last one of an
// instance leaves, it unsubscribes (its own frames no longer come back to
// it), so with no watcher left anywhere every instance's publishing holds
// off again; a watcher added later subscribes it again and starts with the
// window until then (reaching a hold-off past the confirmation) as its gap,
// and gets every change made after it.
TEST_P(SessionChangeRelayTest, TheLastWatcherLeavingUnsubscribesAndTheNextStartsWithItsGap) {
  std::unique_ptr<Instance> b = Start("pod-b");
  std::unique_ptr<Instance> a = Start("pod-a");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  for (Instance* i : {a.get(), b.get()}) (void)Next(*i->watcher);  // the first gaps
  EXPECT_EQ(Subscribers(*a), 2);

  // A second watcher on a: its first one leaving is not the last.
  std::shared_ptr<session::ChangeWatcher> second = a->feed->AddWatcher(0, [] {});
  a->feed->RemoveWatcher(a->watcher);
  EXPECT_TRUE(a->relay->subscribed());
  a->feed->RemoveWatcher(second);
  EXPECT_FALSE(a->relay->subscribed());
  b->feed->RemoveWatcher(b->watcher);
  EXPECT_FALSE(b->relay->subscribed());
  ASSERT_TRUE(WaitFor([&] { return Subscribers(*a) == 0; }, absl::Seconds(10)))
      << Subscribers(*a);

  // Nobody listens: each instance's next publish reaches nobody and closes
  // its gate; what follows within the hold-off is suppressed.
  const absl::Time published = absl::Now();
  a->feed->OnChange(Updated("unwatched-a"));
  b->feed->OnChange(Updated("unwatched-b"));
  ASSERT_TRUE(WaitFor([&] { return a->relay->holding_off() && b->relay->holding_off(); },
                      absl::Seconds(10)));
  const uint64_t suppressed = b->relay->stats().suppressed;
  b->feed->OnChange(Updated("suppressed"));
  // (Past the hold-off, on a machine slow enough, it would be a probe.)
  if (absl::Now() - published < redis::RedisChangeRelay::kPublishHoldOff / 2) {
    EXPECT_EQ(b->relay->stats().suppressed, suppressed + 1);
  }

  const absl::Time added = absl::Now();
  a->watcher = a->feed->AddWatcher(0, [] {});
  ASSERT_TRUE(WaitFor([&] { return a->relay->subscribed(); }, absl::Seconds(20)));
  EXPECT_EQ(Subscribers(*a), 1);
  const ChangeItem first = Next(*a->watcher);
  ASSERT_TRUE(first.gap.has_value()) << "the first event is the gap";
  EXPECT_EQ(first.gap->reason, session::ChangeGap::Reason::kRemoteLost);
  EXPECT_GE(first.gap->from, added);
  EXPECT_GE(first.gap->to - first.gap->from, redis::RedisChangeRelay::kPublishHoldOff);

  // b, holding off, publishes again from its next probe on: every change
  // made after the gap arrives, in order.
  ExpectEveryChangePast(*b, first.gap->to, *a->watcher);
  EXPECT_FALSE(b->relay->holding_off());
}

// A SUBSCRIBE that Redis does not answer (paused) fails the connection
// after the command timeout; the subscription is confirmed by the restore
// after it, whose loss started at that failure. The watcher's gap still
// starts when it was added: what the others published from then on was
// missed too.
TEST_P(SessionChangeRelayTest, AGapStartsWhenTheWatcherWasAddedEvenIfTheSubscribeFailed) {
  std::unique_ptr<Instance> a = Start("pod-a", /*watch=*/false);
  ASSERT_NE(a, nullptr);
  const int port = GetParam() == Topology::kCluster
                       ? cluster_->MasterOfSlot(redis::KeySlot(a->relay->channel()))
                       : 0;
  // Longer than the command timeout (FastRedisOptions: 2 s).
  const std::vector<std::string> pause = {"CLIENT", "PAUSE", "3000", "ALL"};
  const RunResult paused = GetParam() == Topology::kCluster ? cluster_->Cli(port, pause)
                                                            : server_->Cli(pause);
  ASSERT_NE(paused.out.find("OK"), std::string::npos) << paused.out << paused.err;
  const absl::Time added = absl::Now();
  a->watcher = a->feed->AddWatcher(0, [] {});
  const absl::Time after = absl::Now();
  ASSERT_TRUE(WaitFor([&] { return a->relay->subscribed(); }, absl::Seconds(20)));
  const ChangeItem first = Next(*a->watcher);
  ASSERT_TRUE(first.gap.has_value()) << "the first event is the gap";
  EXPECT_GE(first.gap->from, added);
  EXPECT_LE(first.gap->from, after) << "not from the failure, " << first.gap->from - after
                                    << " later";
}

// A watcher replacing the last one while the others' frames are still
// flowing: those sent before the UNSUBSCRIBE reached Redis may arrive once
// the channel is wanted again, but they fall within the new subscription's
// window, so the new watcher's first event is its gap, never such a change.
// (Whether one is still on its way then is timing: without the drop this
// usually fails, with it it cannot.)
TEST_P(SessionChangeRelayTest, AFrameFromBeforeTheLastWatcherLeftDoesNotPrecedeTheNextGap) {
  std::unique_ptr<Instance> a = Start("pod-a");
  std::unique_ptr<Instance> b = Start("pod-b");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  for (int i = 0; i < 5000; ++i) b->feed->OnChange(Updated(absl::StrCat("burst", i)));
  // Some have arrived; many are still on their way.
  ASSERT_TRUE(WaitFor([&] { return a->relay->stats().received > 0; }, absl::Seconds(10)));
  a->feed->RemoveWatcher(a->watcher);
  a->watcher = a->feed->AddWatcher(0, [] {});
  const ChangeItem first = Next(*a->watcher);
  EXPECT_TRUE(first.gap.has_value())
      << "a change first: " << (first.change ? first.change->session_id : "none");
}

INSTANTIATE_TEST_SUITE_P(Topologies, SessionChangeRelayTest,
                         ::testing::Values(Topology::kStandalone, Topology::kCluster),
                         [](const ::testing::TestParamInfo<Topology>& info) {
                           return info.param == Topology::kCluster ? "Cluster" : "Standalone";
                         });

}  // namespace
}  // namespace stateside::testing
