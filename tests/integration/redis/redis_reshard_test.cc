// Resharding under load: RedisSessionStore on a real six-node Redis Cluster
// keeps 64 session reads and updates in flight while `redis-cli --cluster
// reshard` moves the slots of half the sessions to another master and back,
// then while one hot slot is held half-migrated (its key moved, the slot
// still MIGRATING) until commands have followed ASK to it, and finished on
// the source before the destination (MOVED back and forth for a moment).
// Not one call may fail, and the client must have followed both MOVED and
// ASK redirects.
#include <algorithm>
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "sidecar/redis/cluster_slots.h"
#include "sidecar/redis/redis_client.h"
#include "sidecar/redis/redis_session_store.h"
#include "tests/integration/redis/redis_fixture.h"
#include "tests/support/redis_cluster.h"
#include "tests/support/wait.h"

namespace stateside::testing {
namespace {

using redis::RedisClient;
using redis::RedisSessionStore;

constexpr int kInflight = 64;
constexpr int kSessions = 64;
// The first kMovedSlots slots of the master of slot 0 move; half the
// sessions live there.
constexpr int kMovedSlots = 256;

// Keeps kInflight calls in flight (Get and Update in turn, each on the next
// session) from one thread until Stop(); counts answers and failures.
class Load {
 public:
  Load(RedisSessionStore* store, std::vector<std::string> ids)
      : store_(store), ids_(std::move(ids)) {}
  ~Load() { Stop(); }

  void Start() {
    thread_ = std::thread([this] { Run(); });
  }
  // Stops issuing and waits for every call in flight to answer.
  void Stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }
  uint64_t done() const { return done_.load(); }
  uint64_t failed() const { return failed_.load(); }
  std::string first_failure() const {
    absl::MutexLock lock(&mu_);
    return first_failure_;
  }

 private:
  void Run() {
    uint64_t n = 0;
    while (!stop_.load()) {
      {
        absl::MutexLock lock(&mu_);
        // Bounded, so a stop is seen even if nothing answers.
        mu_.AwaitWithTimeout(absl::Condition(
                                 +[](int* inflight) { return *inflight < kInflight; },
                                 &inflight_),
                             absl::Milliseconds(100));
        if (inflight_ >= kInflight) continue;
        ++inflight_;
      }
      const std::string& id = ids_[n % ids_.size()];
      auto done = [this](absl::StatusOr<session::StoredSession> got) { Answer(got.status()); };
      if (n++ % 2 == 0) {
        store_->GetAsync(id, session::ReadOptions{absl::Now()}, std::move(done));
      } else {
        session::Mutation m;
        m.now = absl::Now();
        m.set = {{"a", absl::StrCat("envelope-", n)}};
        store_->UpdateAsync(id, m, std::move(done));
      }
    }
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(+[](int* inflight) { return *inflight == 0; }, &inflight_));
  }

  void Answer(const absl::Status& status) {
    absl::MutexLock lock(&mu_);
    --inflight_;
    done_.fetch_add(1);
    if (!status.ok()) {
      if (failed_.fetch_add(1) == 0) first_failure_ = status.ToString();
    }
  }

  RedisSessionStore* const store_;
  const std::vector<std::string> ids_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> done_{0};
  std::atomic<uint64_t> failed_{0};
  mutable absl::Mutex mu_;
  int inflight_ ABSL_GUARDED_BY(mu_) = 0;
  std::string first_failure_ ABSL_GUARDED_BY(mu_);
};

TEST(RedisReshardTest, NoCallFailsWhileSlotsMoveUnderLoad) {
  absl::StatusOr<std::unique_ptr<RedisCluster>> started = RedisCluster::Start();
  ASSERT_TRUE(started.ok()) << started.status();
  RedisCluster& cluster = **started;
  redis::RedisOptions options = FastRedisOptions();
  options.topology = redis::RedisTopology::kCluster;
  // A loaded machine under sanitizers: a generous command timeout, and the
  // production backoff (its retries span more than a second, enough for the
  // test to finish a migration it left MOVED-ing back and forth).
  options.command_timeout = absl::Seconds(10);
  options.backoff_initial = absl::Milliseconds(50);
  options.backoff_max = absl::Seconds(1);
  std::unique_ptr<RedisClient> client = ConnectedClient(cluster.url(), options);
  ASSERT_NE(client, nullptr);
  RedisSessionStore store(client.get(), UniquePrefix());

  const int from = cluster.MasterOfSlot(0);
  const std::vector<int> masters = cluster.MasterPorts();
  ASSERT_EQ(masters.size(), 3u);
  const int to = *std::find_if(masters.begin(), masters.end(), [&](int p) { return p != from; });
  // Slots 0 to kMovedSlots - 1 in one range (as `redis-cli --cluster
  // create` assigns them): the ones a reshard from `from` moves first.
  ASSERT_EQ(cluster.MasterOfSlot(kMovedSlots - 1), from);

  // Half the sessions in the slots that move, half anywhere.
  std::vector<std::string> ids;
  for (int i = 0, j = 0; static_cast<int>(ids.size()) < kSessions; ++j) {
    std::string id = absl::StrCat("reshard-", i, "-", j);
    const int slot = redis::KeySlot(store.SessionKey(id));
    const bool moving = slot < kMovedSlots;
    if (moving != (i % 2 == 0)) continue;
    ids.push_back(std::move(id));
    ++i;
  }
  session::StoredSession session;  // each alike but for its id
  session.created = session.last_access = absl::Now();
  session.idle_ttl = absl::Minutes(30);
  session.absolute_expiry = session.created + absl::Hours(1);
  session.version = 1;
  session.attributes["a"] = "envelope";
  for (const std::string& id : ids) {
    session.id = id;
    ASSERT_TRUE(store.Create(session).ok()) << id;
  }

  const redis::RedisClientStats before = client->stats();
  Load load(&store, ids);
  load.Start();
  auto progressed = [&load](uint64_t calls) {
    const uint64_t target = load.done() + calls;
    return WaitFor([&] { return load.done() >= target || load.failed() > 0; },
                   absl::Seconds(30));
  };
  ASSERT_TRUE(progressed(200)) << "no load";

  // There and back with redis-cli, the load running throughout.
  // The range's ends (each look is a redis-cli run).
  auto all_on = [&](int port) {
    return WaitFor([&] {
      return cluster.MasterOfSlot(0) == port && cluster.MasterOfSlot(kMovedSlots - 1) == port;
    });
  };
  const absl::Status there = cluster.Reshard(from, to, kMovedSlots);
  ASSERT_TRUE(there.ok()) << there;
  ASSERT_TRUE(all_on(to));
  ASSERT_TRUE(progressed(200));
  EXPECT_EQ(load.failed(), 0u) << "moving there: " << load.first_failure();
  const absl::Status back = cluster.Reshard(to, from, kMovedSlots);
  ASSERT_TRUE(back.ok()) << back;
  ASSERT_TRUE(all_on(from));
  ASSERT_TRUE(progressed(200));
  EXPECT_EQ(load.failed(), 0u) << "moving back: " << load.first_failure();
  EXPECT_GT(client->stats().redirects_moved, before.redirects_moved);

  // One hot slot half-way (CLUSTER SETSLOT MIGRATING / IMPORTING, its key
  // MIGRATEd), held so until commands on it have followed ASK; then done.
  const std::string hot_key = store.SessionKey(ids[0]);
  const std::string slot = std::to_string(redis::KeySlot(hot_key));
  const std::string from_id = cluster.NodeId(from), to_id = cluster.NodeId(to);
  // Opened now: the destination's SETSLOT below is time-critical.
  std::unique_ptr<RedisClient> to_node =
      ConnectedClient(absl::StrCat("redis://127.0.0.1:", to), FastRedisOptions());
  ASSERT_NE(to_node, nullptr);
  // The reshards above followed ASK already: only this migration's count.
  const uint64_t asks_before = client->stats().redirects_ask;
  ASSERT_EQ(cluster.Cli(to, {"CLUSTER", "SETSLOT", slot, "IMPORTING", from_id}).out, "OK\n");
  ASSERT_EQ(cluster.Cli(from, {"CLUSTER", "SETSLOT", slot, "MIGRATING", to_id}).out, "OK\n");
  RunResult migrated = cluster.Cli(
      from, {"MIGRATE", "127.0.0.1", std::to_string(to), "", "0", "5000", "KEYS", hot_key});
  ASSERT_EQ(migrated.out, "OK\n") << migrated.err;
  EXPECT_TRUE(WaitFor([&] { return client->stats().redirects_ask > asks_before; },
                      absl::Seconds(20)));
  EXPECT_EQ(load.failed(), 0u) << "half-way: " << load.first_failure();
  // Finished on the source first, and on the destination only once commands
  // have met what that does (the documented order is the reverse): the
  // source answers MOVED to the destination and the destination, still
  // importing, MOVED back. The client must wait that out (a retry after a
  // backoff), not spend a command's every send on it. A command caught in
  // it fails about a second after its retry, so the destination is told
  // over the connection opened above, not by starting redis-cli.
  const uint64_t retries_before = client->stats().retries;
  ASSERT_EQ(cluster.Cli(from, {"CLUSTER", "SETSLOT", slot, "NODE", to_id}).out, "OK\n");
  EXPECT_TRUE(WaitFor([&] { return client->stats().retries > retries_before; },
                      absl::Seconds(20)));
  absl::StatusOr<redis::Reply> done = to_node->Call({"CLUSTER", "SETSLOT", slot, "NODE", to_id});
  ASSERT_TRUE(done.ok()) << done.status();
  ASSERT_EQ(done->str, "OK");
  const int third = *std::find_if(masters.begin(), masters.end(),
                                  [&](int p) { return p != from && p != to; });
  ASSERT_EQ(cluster.Cli(third, {"CLUSTER", "SETSLOT", slot, "NODE", to_id}).out, "OK\n");
  ASSERT_TRUE(progressed(200));

  load.Stop();
  EXPECT_EQ(load.failed(), 0u) << load.first_failure();
  const redis::RedisClientStats after = client->stats();
  EXPECT_GT(after.redirects_moved, before.redirects_moved);
  EXPECT_GT(after.redirects_ask, asks_before);
  std::cout << "calls " << load.done() << ", failed " << load.failed() << ", MOVED followed "
            << after.redirects_moved - before.redirects_moved << ", ASK followed "
            << after.redirects_ask - before.redirects_ask << ", retries "
            << after.retries - before.retries << "\n";
  // Every session is still readable, with the last update's attribute.
  for (const std::string& id : ids) {
    absl::StatusOr<session::StoredSession> got = store.Get(id, session::ReadOptions{absl::Now()});
    ASSERT_TRUE(got.ok()) << id << ": " << got.status();
    EXPECT_EQ(got->attributes.size(), 1u) << id;
  }
}

}  // namespace
}  // namespace stateside::testing
