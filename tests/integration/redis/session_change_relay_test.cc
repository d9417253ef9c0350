// The session change relay on a real redis-server and a real Redis Cluster
// (shard channel, SPUBLISH): two instances (a feed, a client and a relay
// each) on one Redis; a change reported on one reaches the other's watcher
// with every field, never comes back to its own watcher twice, the first
// subscription is a loss window, and a frame that is not sealed under the
// keyring (what a Redis writer could publish) is dropped.
#include "sidecar/redis/session_change_relay.h"

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "sidecar/crypto/envelope.h"
#include "sidecar/crypto/keyring.h"
#include "sidecar/crypto/random.h"
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
// open every instance's changes for nothing); its first watcher subscribes
// it, with the window until then reported as a loss.
TEST_P(SessionChangeRelayTest, OnlyAnInstanceWithAWatcherSubscribes) {
  std::unique_ptr<Instance> a = Start("pod-a", /*watch=*/false);
  ASSERT_NE(a, nullptr);
  std::unique_ptr<Instance> b = Start("pod-b");
  ASSERT_NE(b, nullptr);
  (void)Next(*b->watcher);  // b's first subscription's gap
  // Redis's own count of the channel's subscribers (a shard channel's, on
  // the slot's master).
  const auto subscribers = [&]() -> int64_t {
    const bool sharded = GetParam() == Topology::kCluster;
    auto reply = a->client->Call(redis::RedisCommand(
        {"PUBSUB", sharded ? "SHARDNUMSUB" : "NUMSUB", a->relay->channel()}));
    if (!reply.ok() || reply->elements.size() != 2) return -1;
    return reply->elements[1].integer;
  };
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

INSTANTIATE_TEST_SUITE_P(Topologies, SessionChangeRelayTest,
                         ::testing::Values(Topology::kStandalone, Topology::kCluster),
                         [](const ::testing::TestParamInfo<Topology>& info) {
                           return info.param == Topology::kCluster ? "Cluster" : "Standalone";
                         });

}  // namespace
}  // namespace stateside::testing
