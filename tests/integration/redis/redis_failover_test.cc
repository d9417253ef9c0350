// Failover of the Redis tier under a load of session writes, on real
// processes: a Redis Cluster master SIGKILLed, a Sentinel master handed over
// by SENTINEL FAILOVER and a Sentinel master SIGKILLed. In each, two session
// stores write at once through two clients, one durable (WAIT 1 replica,
// STATESIDE_REDIS_WAIT_REPLICAS=1) and one not. The tests check that calls
// fail fast and succeed again promptly, that readiness drops and comes
// back, that a Sentinel client follows the new master and never writes to
// the old one once it is back as a replica, and that no write the durable
// store acknowledged is lost; the plain store's losses are counted and
// printed, not asserted (asynchronous replication loses them by design).
//
// What "lost" means here (CountLost): a write is acknowledged only when
// Create or Update returned OK. Every session gets one Create (version 1)
// and, if that was acknowledged, one Update (version 2); no id is written
// by anything else, and a failed write is never retried, so a version is
// never issued twice and a later write cannot hide an earlier one's loss.
// After the failover, once the topology has settled, each id with an
// acknowledged write is read back from the current masters (a read that
// fails is retried: a read during the switch failing is not a loss; one
// still failing at the deadline is reported unreadable, not lost). The id
// is lost when the session is missing or its version is older than the
// highest acknowledged one; an id counts once however many of its writes
// were acknowledged. A write that failed (UNAVAILABLE: its connection lost
// after it was sent, WAIT not confirmed, READONLY from a demoted node) is
// not acknowledged, whether or not it took effect, so it is never counted.
// The plain store's losses are split by when the write was acknowledged:
// before the promotion (replication lag at a crash) or after it, by an old
// master that had not been demoted yet and was still taking writes (the
// switch window: Sentinel's FAILOVER promotes the replica without pausing
// the master, and the old master accepts writes until the client follows
// the new one). The durable store cannot be acknowledged in that window:
// the old master's only replica has left it, so WAIT fails. The report
// also says how many of the ids last acknowledged in that window (after
// the promotion, before the client had followed) were lost: most of them,
// the rest reached the new master. So the count is the write rate times a
// window of about a second (the sentinels announce a promotion when they
// next read the replica's INFO): paced here, thousands for a writer that
// is not.
#include <algorithm>
#include <atomic>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "sidecar/redis/cluster_slots.h"
#include "sidecar/redis/redis_client.h"
#include "sidecar/redis/redis_session_store.h"
#include "tests/integration/redis/redis_fixture.h"
#include "tests/integration/redis/sentinel_watch.h"
#include "tests/support/redis_cluster.h"
#include "tests/support/redis_sentinel.h"
#include "tests/support/redis_server.h"
#include "tests/support/subprocess.h"
#include "tests/support/wait.h"

namespace stateside::testing {
namespace {

using redis::RedisClient;
using redis::RedisOptions;
using redis::RedisSessionStore;

// Each writer thread paces itself to about this many writes a second, so a
// run is a few thousand writes (enough to count, cheap to read back).
constexpr int kWritesPerSecondPerThread = 250;
constexpr int kWriterThreads = 2;
// Acknowledged writes each store makes in each scenario before the test
// stops it: the durable store's must reach it in every scenario (the
// acceptance: none lost over at least 1000 acknowledged writes), which is
// about 2 s of load at the writers' pace.
constexpr int kMinAcknowledged = 1000;
// Acknowledged writes of each store before a failover is triggered.
constexpr int kWarmUp = 100;

// One line of the test's report (the Sentinel scenarios run at once).
void Say(const std::string& line) {
  static absl::Mutex mu(absl::kConstInit);
  absl::MutexLock lock(&mu);
  std::cout << line << std::endl;
}

struct Write {
  std::string id;
  std::string user_tag;  // the user index the session is listed in
  uint64_t version = 0;  // what the write would make the session's version
  absl::Time start;
  absl::Time end;
  absl::Status status;
};

// Writers under load: each thread creates sessions of its own and updates
// each one once (see the file comment), recording every call.
class SessionLoad {
 public:
  SessionLoad(RedisSessionStore* store, const std::string& prefix) {
    for (int t = 0; t < kWriterThreads; ++t) {
      threads_.emplace_back(
          [this, store, prefix, t] { Run(store, absl::StrCat(prefix, t, "-")); });
    }
  }
  ~SessionLoad() { Stop(); }

  // Every call made; the first call joins the writers.
  std::vector<Write> Stop() {
    if (!stop_.exchange(true)) {
      for (std::thread& t : threads_) t.join();
    }
    absl::MutexLock lock(&mu_);
    return writes_;
  }

  // Acknowledged writes that started at or after `since` and satisfy `which`.
  int Acknowledged(absl::Time since,
                   const std::function<bool(const Write&)>& which = nullptr) {
    absl::MutexLock lock(&mu_);
    int n = 0;
    for (const Write& w : writes_) {
      if (w.start >= since && w.status.ok() && (which == nullptr || which(w))) ++n;
    }
    return n;
  }
  // The end of the first acknowledged write started at or after `since`
  // that satisfies `which` (nullopt: none yet).
  std::optional<absl::Time> FirstAcknowledged(absl::Time since,
                                              const std::function<bool(const Write&)>& which) {
    absl::MutexLock lock(&mu_);
    std::optional<absl::Time> first;
    for (const Write& w : writes_) {
      if (w.start >= since && w.status.ok() && which(w) && (!first || w.end < *first)) {
        first = w.end;
      }
    }
    return first;
  }

 private:
  void Run(RedisSessionStore* store, const std::string& prefix) {
    const absl::Duration pace = absl::Seconds(1) / kWritesPerSecondPerThread;
    absl::Time next = absl::Now();
    for (int n = 0; !stop_.load(); ++n) {
      session::StoredSession s;
      s.id = absl::StrCat(prefix, n);
      s.created = s.last_access = absl::Now();
      s.idle_ttl = absl::Hours(1);
      s.absolute_expiry = s.created + absl::Hours(2);
      s.version = 1;
      s.user_tag = prefix + "user";
      s.attributes["a"] = "1";
      Write create;
      create.id = s.id;
      create.user_tag = s.user_tag;
      create.version = 1;
      create.start = absl::Now();
      create.status = store->Create(s);
      create.end = absl::Now();
      const bool created = create.status.ok();
      Record(std::move(create));
      next = Pace(next, pace);
      if (!created || stop_.load()) continue;
      session::Mutation m;
      m.now = absl::Now();
      m.set = {{"a", "2"}};
      Write update;
      update.id = s.id;
      update.user_tag = s.user_tag;
      update.version = 2;
      update.start = absl::Now();
      absl::StatusOr<session::StoredSession> updated = store->Update(s.id, m);
      update.end = absl::Now();
      update.status = updated.status();
      if (updated.ok() && updated->version != 2) {
        update.status = absl::InternalError(absl::StrCat("version ", updated->version));
      }
      Record(std::move(update));
      next = Pace(next, pace);
    }
  }
  // Pacing, not synchronisation: waits out the rest of this write's slot.
  static absl::Time Pace(absl::Time next, absl::Duration pace) {
    next = std::max(next + pace, absl::Now() - pace);
    absl::SleepFor(next - absl::Now());
    return next;
  }
  void Record(Write w) {
    absl::MutexLock lock(&mu_);
    writes_.push_back(std::move(w));
  }

  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
  absl::Mutex mu_;
  std::vector<Write> writes_ ABSL_GUARDED_BY(mu_);
};

struct Loss {
  int acknowledged = 0;  // writes
  int ids = 0;           // ids with an acknowledged write
  int lost = 0;          // ids missing or older than acknowledged
  int missing = 0;
  int older = 0;
  int lost_after = 0;    // lost ids whose last acknowledged write ended after `split`
  // Ids whose last acknowledged write ended in the switch window (after
  // `split`, before `switched`), and how many of those were lost.
  int in_window = 0;
  int lost_in_window = 0;
  int unindexed = 0;     // acknowledged sessions missing from their user's index
  int unreadable = 0;    // still failing to read at the deadline
};

// The members of a user's index (retried while the reads fail, as below).
absl::StatusOr<absl::flat_hash_set<std::string>> IndexMembers(RedisClient& client,
                                                             const std::string& key,
                                                             absl::Time deadline) {
  for (;;) {
    absl::StatusOr<redis::Reply> r = client.Call({"ZRANGE", key, "0", "-1"});
    if (r.ok()) {
      absl::flat_hash_set<std::string> members;
      for (const redis::Reply& e : r->elements) members.insert(e.str);
      return members;
    }
    if (absl::Now() > deadline) return r.status();
  }
}

// Every session of `ids` (metadata, no touch), pipelined in rounds; the
// reads that fail are retried in the next round until `deadline`.
absl::flat_hash_map<std::string, absl::StatusOr<session::StoredSession>> ReadAll(
    RedisSessionStore& store, const std::vector<std::string>& ids, absl::Time deadline) {
  absl::Mutex mu;
  absl::flat_hash_map<std::string, absl::StatusOr<session::StoredSession>> got;
  std::vector<std::string> pending = ids;
  constexpr size_t kRound = 500;  // reads in flight at once
  while (!pending.empty()) {
    std::vector<std::string> again;
    for (size_t from = 0; from < pending.size(); from += kRound) {
      const size_t n = std::min(kRound, pending.size() - from);
      size_t remaining = n;
      for (size_t i = from; i < from + n; ++i) {
        session::ReadOptions read;
        read.now = absl::Now();
        read.touch = false;
        read.metadata_only = true;
        store.GetAsync(pending[i], read,
                       [&, id = pending[i]](absl::StatusOr<session::StoredSession> r) {
                         absl::MutexLock lock(&mu);
                         got.insert_or_assign(id, std::move(r));
                         --remaining;
                       });
      }
      absl::MutexLock lock(&mu);
      mu.Await(absl::Condition(+[](size_t* r) { return *r == 0; }, &remaining));
    }
    if (absl::Now() > deadline) break;
    for (const std::string& id : pending) {
      const absl::StatusOr<session::StoredSession>& r = got.at(id);
      if (!r.ok() && !absl::IsNotFound(r.status())) again.push_back(id);
    }
    pending = std::move(again);
  }
  return got;
}

// See the file comment; also, every session whose Create was acknowledged
// must be in its user's index. `split`: when the promotion happened;
// `switched`: when the client had followed.
Loss CountLost(RedisClient& client, RedisSessionStore& store, const std::vector<Write>& writes,
               absl::Time split, absl::Time switched) {
  struct Acked {
    uint64_t version = 0;
    absl::Time end;
    std::string user_tag;
  };
  absl::flat_hash_map<std::string, Acked> acked;
  Loss loss;
  for (const Write& w : writes) {
    if (!w.status.ok()) continue;
    ++loss.acknowledged;
    Acked& a = acked[w.id];
    if (w.version > a.version) a = {w.version, w.end, w.user_tag};
  }
  loss.ids = static_cast<int>(acked.size());
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  absl::flat_hash_map<std::string, absl::flat_hash_set<std::string>> indexes;
  for (const auto& [id, a] : acked) {
    if (indexes.contains(a.user_tag)) continue;
    absl::StatusOr<absl::flat_hash_set<std::string>> members =
        IndexMembers(client, store.UserIndexKey(a.user_tag), deadline);
    if (!members.ok()) {
      ++loss.unreadable;
      continue;
    }
    indexes[a.user_tag] = *std::move(members);
  }
  std::vector<std::string> ids;
  for (const auto& [id, a] : acked) ids.push_back(id);
  const absl::flat_hash_map<std::string, absl::StatusOr<session::StoredSession>> read =
      ReadAll(store, ids, deadline);
  for (const auto& [id, a] : acked) {
    const absl::StatusOr<session::StoredSession>& got = read.at(id);
    if (a.end > split && a.end < switched) ++loss.in_window;
    if (auto index = indexes.find(a.user_tag);
        index != indexes.end() && !index->second.contains(id)) {
      ++loss.unindexed;
    }
    bool lost = false;
    if (absl::IsNotFound(got.status())) {
      ++loss.missing;
      lost = true;
    } else if (!got.ok()) {
      ++loss.unreadable;
    } else if (got->version < a.version) {
      ++loss.older;
      lost = true;
    }
    if (lost) {
      ++loss.lost;
      if (a.end > split) ++loss.lost_after;
      if (a.end > split && a.end < switched) ++loss.lost_in_window;
    }
  }
  return loss;
}

std::string Describe(const Loss& l) {
  return absl::StrCat(l.acknowledged, " acknowledged writes on ", l.ids, " sessions: ", l.lost,
                      " lost (", l.missing, " missing, ", l.older, " older; ", l.lost_after,
                      " acknowledged after the promotion; ", l.lost_in_window, " of the ",
                      l.in_window, " last acknowledged in the switch window), ", l.unindexed,
                      " missing from their user's index, ", l.unreadable, " unreadable");
}

// The slowest call, the median one, and whether every failure was
// UNAVAILABLE.
// `plain`: the writer without WAIT, whose create the old master may have
// acknowledged and then lost; the session's update then finds nothing on the
// new master (NOT_FOUND), the loss showing, which CountLost counts.
absl::Duration Slowest(const std::vector<Write>& writes, bool plain, absl::Duration* median,
                       std::string* unexpected) {
  std::vector<absl::Duration> took;
  for (const Write& w : writes) {
    took.push_back(w.end - w.start);
    const bool expected =
        absl::IsUnavailable(w.status) || (plain && absl::IsNotFound(w.status));
    if (!w.status.ok() && !expected && unexpected->empty()) {
      *unexpected = w.status.ToString();
    }
  }
  if (took.empty()) return absl::ZeroDuration();
  std::sort(took.begin(), took.end());
  *median = took[took.size() / 2];
  return took.back();
}

// Readiness as the client reports it (its state listener). The client calls
// a copy of the listener outside its own mutex, so a call may still be
// running after the listener was replaced: the state lives in a shared_ptr
// the listener holds, and outlives this object as long as any call needs it.
class Readiness {
 public:
  explicit Readiness(RedisClient* client) : state_(std::make_shared<State>()) {
    client->SetStateListener([state = state_](bool connected, const absl::Status&) {
      absl::MutexLock lock(&state->mu);
      if (connected != state->last) state->changes.push_back({absl::Now(), connected});
      state->last = connected;
    });
  }
  // Went false at or after `since`, and true again after that.
  bool DroppedAndCameBack(absl::Time since) {
    absl::MutexLock lock(&state_->mu);
    bool dropped = false;
    for (const auto& [at, connected] : state_->changes) {
      if (at < since) continue;
      if (!connected) dropped = true;
      if (connected && dropped) return true;
    }
    return false;
  }

 private:
  struct State {
    absl::Mutex mu;
    bool last ABSL_GUARDED_BY(mu) = true;
    std::vector<std::pair<absl::Time, bool>> changes ABSL_GUARDED_BY(mu);
  };
  const std::shared_ptr<State> state_;
};

// A client, a store on it and its load: one of the two writers of a test.
struct Writer {
  std::string name;
  std::unique_ptr<RedisClient> client;
  std::unique_ptr<RedisSessionStore> store;
  std::unique_ptr<Readiness> readiness;
  std::unique_ptr<SessionLoad> load;

  Writer(std::string n, const std::string& url, RedisOptions options) : name(std::move(n)) {
    client = ConnectedClient(url, std::move(options));
    if (client == nullptr) return;
    store = std::make_unique<RedisSessionStore>(client.get());
    readiness = std::make_unique<Readiness>(client.get());
    load = std::make_unique<SessionLoad>(store.get(), UniquePrefix() + name);
  }
};

RedisOptions Durable(RedisOptions o) {
  o.wait_replicas = 1;
  o.wait_timeout = absl::Milliseconds(500);
  return o;
}

// Waits until every writer has made `n` acknowledged writes since `since`.
void WaitAcknowledged(std::vector<Writer*> writers, absl::Time since, int n,
                      absl::Duration timeout) {
  for (Writer* w : writers) {
    ASSERT_TRUE(WaitFor([&] { return w->load->Acknowledged(since) >= n; }, timeout,
                        absl::Milliseconds(20)))
        << w->name << ": " << w->load->Acknowledged(since) << " acknowledged; last error "
        << w->client->last_error();
  }
}

// Waits (30 s at most) for `writer`'s first acknowledged write started at
// or after `since` that satisfies `which`: when it ended.
std::optional<absl::Time> WaitFirstAcknowledged(Writer& writer, absl::Time since,
                                                const std::function<bool(const Write&)>& which) {
  std::optional<absl::Time> first;
  const bool found = WaitFor(
      [&] {
        first = writer.load->FirstAcknowledged(since, which);
        return first.has_value();
      },
      absl::Seconds(30), absl::Milliseconds(20));
  EXPECT_TRUE(found) << writer.name << ": " << writer.client->last_error();
  return first;
}

// Stops the loads, checks every call's latency and error, and counts the
// losses: none for the durable writer, printed for the plain one. Adds the
// durable writer's acknowledged writes to `*durable_total`.
void StopAndCount(const std::string& what, Writer& durable, Writer& plain, absl::Time promoted,
                  absl::Time switched, std::atomic<int>* durable_total) {
  for (Writer* w : {&durable, &plain}) {
    std::vector<Write> writes = w->load->Stop();
    std::string unexpected;
    absl::Duration median;
    const absl::Duration slowest = Slowest(writes, w == &plain, &median, &unexpected);
    const Loss loss = CountLost(*w->client, *w->store, writes, promoted, switched);
    Say(absl::StrCat("[", what, ", ", w->name, "] ", writes.size(), " calls, median ",
                     absl::FormatDuration(median), ", slowest ", absl::FormatDuration(slowest),
                     "; ", Describe(loss)));
    EXPECT_TRUE(unexpected.empty()) << w->name << ": an unexpected failure: " << unexpected;
    // The code bounds a call by the command timeout; the margin is the
    // scheduling of a loaded 2-core machine, not a latency target.
    EXPECT_LT(slowest, w->client->options().command_timeout + absl::Seconds(2)) << w->name;
    EXPECT_GE(loss.acknowledged, kMinAcknowledged) << w->name;
    EXPECT_EQ(loss.unreadable, 0) << w->name;
    if (w == &durable) {
      *durable_total += loss.acknowledged;
      EXPECT_EQ(loss.lost, 0) << w->name << ": " << Describe(loss);
      EXPECT_EQ(loss.unindexed, 0) << w->name << ": " << Describe(loss);
    }
  }
}

// Every acknowledged session write waits for the replicas, a create's
// user-index entry and a revocation (the user's epoch) included: on a
// server without replicas, each WAIT fails and is counted.
TEST(RedisFailoverTest, EverySessionWriteWaitsForTheReplicas) {
  absl::StatusOr<std::unique_ptr<RedisServer>> server = RedisServer::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  RedisOptions o = Durable(FastRedisOptions());
  o.wait_timeout = absl::Milliseconds(50);
  auto client = ConnectedClient((*server)->url(), o);
  ASSERT_NE(client, nullptr);
  RedisSessionStore store(client.get());
  auto waits = [&] { return client->stats().wait_failures; };
  session::StoredSession s;
  s.id = "durable";
  s.user_tag = "someone";
  s.created = s.last_access = absl::Now();
  s.idle_ttl = absl::Hours(1);
  s.absolute_expiry = s.created + absl::Hours(2);
  s.version = 1;
  uint64_t before = waits();
  EXPECT_TRUE(absl::IsUnavailable(store.Create(s)));
  EXPECT_EQ(waits() - before, 2u) << "the session and its index entry";
  before = waits();
  session::Mutation m;
  m.now = absl::Now();
  m.set = {{"a", "1"}};
  EXPECT_TRUE(absl::IsUnavailable(store.Update(s.id, m).status()));
  EXPECT_EQ(waits() - before, 1u);
  before = waits();
  EXPECT_TRUE(absl::IsUnavailable(store.AdvanceUserEpoch(s.user_tag, absl::Now(),
                                                         absl::Now() + absl::Hours(1))));
  EXPECT_EQ(waits() - before, 1u);
  before = waits();
  EXPECT_TRUE(absl::IsUnavailable(
      store.Destroy(s.id, absl::Now(), absl::Now() + absl::Hours(1)).status()));
  EXPECT_EQ(waits() - before, 1u);
}

// ---------------------------------------------------------------- Cluster

void ClusterMasterKilledUnderLoad(std::atomic<int>* durable_total) {
  RedisClusterOptions cluster_options;
  cluster_options.node_timeout = absl::Milliseconds(1000);
  absl::StatusOr<std::unique_ptr<RedisCluster>> started = RedisCluster::Start(cluster_options);
  ASSERT_TRUE(started.ok()) << started.status();
  RedisCluster& cluster = **started;
  RedisOptions options = FastRedisOptions();
  options.topology = redis::RedisTopology::kCluster;
  Writer durable("durable", cluster.url(), Durable(options));
  Writer plain("plain", cluster.url(), options);
  ASSERT_NE(durable.load, nullptr);
  ASSERT_NE(plain.load, nullptr);
  WaitAcknowledged({&durable, &plain}, absl::InfinitePast(), kWarmUp, absl::Seconds(30));

  const int victim = cluster.MasterPorts().front();
  const std::vector<std::pair<int, int>> ranges = cluster.SlotRanges(victim);
  ASSERT_FALSE(ranges.empty());
  ASSERT_EQ(cluster.ReplicasOf(victim).size(), 1u);
  auto on_victim = [&](const Write& w) {
    const int slot = redis::KeySlot(plain.store->SessionKey(w.id));
    for (auto [first, last] : ranges) {
      if (slot >= first && slot <= last) return true;
    }
    return false;
  };
  // Kill waits for the process to exit: a write answered before the SIGKILL
  // landed must not count as recovered, so the clock starts after it.
  const absl::Time kill_sent = absl::Now();  // the clients may see it drop from here
  cluster.Kill(victim);
  const absl::Time killed = absl::Now();
  // Writes to the victim's slots fail fast until its replica is promoted
  // and the client has read the new map, then succeed.
  const std::optional<absl::Time> recovered = WaitFirstAcknowledged(plain, killed, on_victim);
  ASSERT_TRUE(recovered.has_value()) << "no write on the killed master's slots succeeded";
  const absl::Duration to_recover = *recovered - killed;
  Say(absl::StrCat("[cluster] writes on the killed master's slots succeeded again ",
                   absl::FormatDuration(to_recover), " after the SIGKILL (cluster-node-timeout ",
                   absl::FormatDuration(cluster_options.node_timeout), ")"));
  // The acceptance's figure (node timeout + 3 s) is the one printed above;
  // this bound is a hang guard with room for a loaded 2-core machine under
  // ASan, not a latency target.
  EXPECT_LE(to_recover, cluster_options.node_timeout + absl::Seconds(10));

  // The durable writer needs a replica there: the old master comes back as
  // the new master's replica.
  ASSERT_TRUE(cluster.Restart(victim).ok());
  const absl::Time restarted = absl::Now();
  const std::optional<absl::Time> durable_back =
      WaitFirstAcknowledged(durable, restarted, on_victim);
  ASSERT_TRUE(durable_back.has_value());
  Say(absl::StrCat("[cluster] durable writes on those slots succeeded again ",
                   absl::FormatDuration(*durable_back - restarted),
                   " after the old master restarted as a replica"));
  WaitAcknowledged({&durable, &plain}, absl::InfinitePast(), kMinAcknowledged, absl::Seconds(30));
  for (Writer* w : {&durable, &plain}) {
    EXPECT_TRUE(w->readiness->DroppedAndCameBack(kill_sent)) << w->name;
    EXPECT_TRUE(w->client->connected()) << w->name;
  }
  StopAndCount("cluster SIGKILL", durable, plain, kill_sent, *recovered, durable_total);
}

// --------------------------------------------------------------- Sentinel

// A failover of a one-replica Sentinel set under load. `trigger` starts it;
// `after` runs once the clients have followed (e.g. the old master's
// restart). Then the old master must come back as a replica of the new one
// and see no command of our clients.
void SentinelFailoverUnderLoad(const std::string& what,
                               const std::function<void(RedisSentinelSet&)>& trigger,
                               const std::function<void(RedisSentinelSet&)>& after,
                               std::atomic<int>* durable_total) {
  absl::StatusOr<std::unique_ptr<RedisSentinelSet>> started = RedisSentinelSet::Start();
  ASSERT_TRUE(started.ok()) << started.status();
  RedisSentinelSet& set = **started;
  RedisOptions options = FastRedisOptions();
  options.topology = redis::RedisTopology::kSentinel;
  options.sentinel_master = set.options().master_name;
  Writer durable("durable", set.url(), Durable(options));
  Writer plain("plain", set.url(), options);
  ASSERT_NE(durable.load, nullptr);
  ASSERT_NE(plain.load, nullptr);
  WaitAcknowledged({&durable, &plain}, absl::InfinitePast(), kWarmUp, absl::Seconds(30));

  absl::Time promoted_at;
  int promoted = -1;
  absl::Time triggered;
  {
    PromotionWatch watch(&set, 0);
    triggered = absl::Now();
    trigger(set);
    absl::StatusOr<int> agreed = set.WaitNewMaster(0, absl::Seconds(30));
    ASSERT_TRUE(agreed.ok()) << agreed.status();
    ASSERT_TRUE(WaitFor([&] { return watch.promoted(&promoted_at) >= 0; }, absl::Seconds(10)));
    promoted = watch.promoted(&promoted_at);
    ASSERT_EQ(promoted, *agreed);
  }
  const std::string new_master = absl::StrCat("127.0.0.1:", set.node(promoted).port());
  for (Writer* w : {&durable, &plain}) {
    ASSERT_TRUE(WaitFor(
        [&] { return w->client->topology().master == new_master && w->client->connected(); },
        absl::Seconds(15), absl::Milliseconds(5)))
        << w->name << ": " << w->client->topology().master << " " << w->client->last_error();
    const absl::Time followed = absl::Now();
    Say(absl::StrCat("[", what, ", ", w->name, "] promoted ",
                     absl::FormatDuration(promoted_at - triggered), " after the trigger; followed ",
                     absl::FormatDuration(followed - promoted_at), " after the promotion"));
    EXPECT_LT(followed - promoted_at, absl::Seconds(5)) << w->name;
  }
  // Writes without WAIT go on at once on the new master.
  const absl::Time switched = absl::Now();
  WaitAcknowledged({&plain}, switched, 100, absl::Seconds(15));

  after(set);
  // The old master comes back as a replica of the new one (the sentinels
  // convert it some seconds after they see it again)...
  ASSERT_TRUE(WaitFor([&] { return set.Role(0) == "slave"; }, absl::Seconds(40),
                      absl::Milliseconds(50)))
      << "old master role: " << set.Role(0);
  ASSERT_TRUE(WaitFor(
      [&] {
        return absl::StrContains(set.node(0).Cli({"INFO", "replication"}).out,
                                 "master_link_status:up");
      },
      absl::Seconds(20), absl::Milliseconds(50)));
  // ...from then on no command of ours reaches it: a session write is an
  // EVALSHA, and Redis 7 replicates a script's effects, not the EVALSHA, and
  // a session read is an HGETALL or HMGET, which are never replicated, so
  // any of them in its statistics came from a client.
  ASSERT_EQ(set.node(0).Cli({"CONFIG", "RESETSTAT"}).out, "OK\n");
  const absl::Time rejoined = absl::Now();
  Say(absl::StrCat("[", what, "] the old master was back as a replica ",
                   absl::FormatDuration(rejoined - triggered), " after the trigger"));
  // The durable writer confirms by the rejoined replica again.
  WaitAcknowledged({&durable, &plain}, rejoined, 100, absl::Seconds(30));
  WaitAcknowledged({&durable, &plain}, absl::InfinitePast(), kMinAcknowledged, absl::Seconds(30));
  const std::string stats = set.node(0).Cli({"INFO", "commandstats"}).out;
  for (const char* command : {"cmdstat_evalsha", "cmdstat_hgetall", "cmdstat_hmget"}) {
    EXPECT_FALSE(absl::StrContains(stats, command)) << stats;
  }
  std::string clients;
  EXPECT_EQ(ForeignClients(set.node(0), &clients), 0) << clients;
  for (Writer* w : {&durable, &plain}) {
    EXPECT_TRUE(w->readiness->DroppedAndCameBack(triggered)) << w->name;
    EXPECT_EQ(w->client->stats().master_changes, 1u) << w->name;
  }
  StopAndCount(what, durable, plain, promoted_at, switched, durable_total);
}

// The three scenarios at once, each on its own Redis processes: most of
// the Sentinel ones' time is the sentinels' wait (16.6-18.8 s after the trigger
// in our runs, much of it fixed in Redis) before they turn an old master back
// into a replica, which need not be waited for three times.
TEST(RedisFailoverTest, ClusterAndSentinelFailoversUnderLoad) {
  std::atomic<int> durable_total{0};
  // Processes die with the thread that started them: each scenario starts
  // its own on its own thread.
  std::thread cluster([&] { ClusterMasterKilledUnderLoad(&durable_total); });
  std::thread manual([&] {
    SentinelFailoverUnderLoad(
        "SENTINEL FAILOVER",
        [](RedisSentinelSet& set) {
          // A sentinel that has not read the replica's INFO lately answers
          // NOGOODSLAVE (nothing started): ask again.
          RunResult r;
          EXPECT_TRUE(WaitFor(
              [&] {
                r = set.SentinelCli(0, {"SENTINEL", "FAILOVER", set.options().master_name});
                return !absl::StrContains(r.out + r.err, "NOGOODSLAVE");
              },
              absl::Seconds(10), absl::Milliseconds(100)));
          ASSERT_EQ(r.out, "OK\n") << r.out << r.err;
        },
        [](RedisSentinelSet&) {}, &durable_total);
  });
  SentinelFailoverUnderLoad(
      "Sentinel SIGKILL", [](RedisSentinelSet& set) { set.node(0).Kill(); },
      // Back, empty and configured as a master: the sentinels turn it into
      // a replica; the clients must never go there.
      [](RedisSentinelSet& set) { ASSERT_TRUE(set.node(0).Restart().ok()); }, &durable_total);
  manual.join();
  cluster.join();
  Say(absl::StrCat("[all] the durable store's acknowledged writes counted: ", durable_total.load()));
}

}  // namespace
}  // namespace stateside::testing
