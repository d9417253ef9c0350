// The sessions' near cache (redis/near_cache.h) on real redis-servers: the
// store conformance suites with the cache on, and the chaos cases — a write
// acknowledged elsewhere (another store, redis-cli) is never read from the
// cache once its invalidation is delivered, and every way tracking is lost
// (the reader's connection killed, the invalidation connection killed,
// FLUSHALL, a redis-server restart) flushes; the reply/invalidation race is
// ordered by the fill hook, without sleeps.
#include "sidecar/redis/near_cache.h"

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "sidecar/redis/redis_session_store.h"
#include "tests/integration/redis/redis_fixture.h"
#include "tests/support/redis_sentinel.h"
#include "tests/support/session_rules_conformance.h"
#include "tests/support/store_conformance.h"
#include "tests/support/wait.h"

namespace stateside::testing {
namespace {

using redis::SessionNearCache;

std::unique_ptr<SessionNearCache> ArmedCache(const std::string& url, size_t max_bytes = 1 << 20,
                                             redis::RedisOptions base = FastRedisOptions()) {
  absl::StatusOr<redis::RedisOptions> options = redis::ParseRedisUrl(url, std::move(base));
  if (!options.ok()) return nullptr;
  absl::StatusOr<std::unique_ptr<SessionNearCache>> cache =
      SessionNearCache::Create(*options, max_bytes);
  if (!cache.ok()) {
    std::cerr << "near cache: " << cache.status() << "\n";
    return nullptr;
  }
  if (!(*cache)->WaitArmed(absl::Seconds(10))) {
    std::cerr << "near cache never armed\n";
    return nullptr;
  }
  return *std::move(cache);
}

// The conformance suites' shared server, with one near cache for every store.
SessionNearCache* SharedNearCache() {
  static std::unique_ptr<SessionNearCache> cache = [] {
    RedisServer* server = SharedRedisServer();
    return server == nullptr ? nullptr : ArmedCache(server->url());
  }();
  return cache.get();
}

SessionStoreFactory CachedRedisStores() {
  return {"redis_near_cache", []() -> std::unique_ptr<session::SessionStore> {
            redis::RedisClient* client = SharedRedisClient();
            SessionNearCache* cache = SharedNearCache();
            if (client == nullptr || cache == nullptr) return nullptr;
            return std::make_unique<redis::RedisSessionStore>(client, UniquePrefix(), cache);
          }};
}

INSTANTIATE_TEST_SUITE_P(NearCache, SessionStoreConformanceTest,
                         ::testing::Values(CachedRedisStores()), SessionStoreFactoryName);
INSTANTIATE_TEST_SUITE_P(NearCache, SessionRulesConformanceTest,
                         ::testing::Values(CachedRedisStores()), SessionStoreFactoryName);

// Sidecar A (a store with the cache) and sidecar B (a store of its own
// client, no cache: another pod) on a server of the test's own.
class NearCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = RedisServer::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    a_client_ = ConnectedClient(server_->url());
    b_client_ = ConnectedClient(server_->url());
    ASSERT_NE(a_client_, nullptr);
    ASSERT_NE(b_client_, nullptr);
    cache_ = ArmedCache(server_->url());
    ASSERT_NE(cache_, nullptr);
    a_ = std::make_unique<redis::RedisSessionStore>(a_client_.get(), "nc:", cache_.get());
    b_ = std::make_unique<redis::RedisSessionStore>(b_client_.get(), "nc:");
    now_ = absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()));
  }

  void TearDown() override {
    a_.reset();
    b_.reset();
    cache_.reset();
  }

  session::StoredSession MakeSession(const std::string& id) const {
    session::StoredSession s;
    s.id = id;
    s.created = now_;
    s.last_access = now_;
    s.idle_ttl = absl::Minutes(30);
    s.absolute_expiry = now_ + absl::Hours(8);
    s.version = 1;
    s.attributes["cart"] = "sealed-1";
    return s;
  }

  // A coalesced touching read, as the session rules make them.
  static absl::StatusOr<session::StoredSession> Read(session::SessionStore& store,
                                                     const std::string& id, absl::Time now,
                                                     bool touch = true) {
    session::ReadOptions options;
    options.now = now;
    options.touch = touch;
    options.touch_granularity = absl::Seconds(60);
    return store.Get(id, options);
  }
  absl::StatusOr<session::StoredSession> ReadA(const std::string& id) {
    return Read(*a_, id, now_);
  }

  // Creates `id` and reads it on A until it is cached (the second read is a
  // hit).
  void CreateAndCache(const std::string& id) {
    ASSERT_TRUE(b_->Create(MakeSession(id)).ok());
    ASSERT_TRUE(ReadA(id).ok());
    const uint64_t hits = cache_->stats().hits;
    ASSERT_TRUE(ReadA(id).ok());
    ASSERT_EQ(cache_->stats().hits, hits + 1) << "not cached";
  }

  // With the cache unarmed, reads through it go to `client` and are right
  // (a change made on B is read at once) and nothing is cached.
  void ExpectReadsUncached(redis::SessionNearCache* cache, char id_char,
                           const std::string& cart) {
    redis::RedisSessionStore store(a_client_.get(), "nc:", cache);
    const std::string id(43, id_char);
    ASSERT_TRUE(b_->Create(MakeSession(id)).ok());
    ASSERT_TRUE(Read(store, id, now_).ok());
    ASSERT_TRUE(UpdateOnB(id, cart).ok());
    EXPECT_EQ(Read(store, id, now_)->attributes.at("cart"), cart);
    EXPECT_EQ(cache->stats().entries, 0u);
  }

  absl::Status UpdateOnB(const std::string& id, const std::string& cart) {
    session::Mutation m;
    m.now = now_;
    m.set.emplace_back("cart", cart);
    return b_->Update(id, m).status();
  }

  bool WaitInvalidations(uint64_t above) {
    return WaitFor([&] { return cache_->stats().invalidations > above; });
  }
  bool WaitFlushes(uint64_t above) {
    return WaitFor([&] { return cache_->stats().flushes > above; });
  }

  // A fresh session, cached on A, changed on B: once the invalidation is
  // delivered A reads the change (tracking works).
  void ExpectChangeElsewhereSeen(const std::string& id, const std::string& cart) {
    CreateAndCache(id);
    const uint64_t seen = cache_->stats().invalidations;
    ASSERT_TRUE(UpdateOnB(id, cart).ok());
    ASSERT_TRUE(WaitInvalidations(seen));
    EXPECT_EQ(ReadA(id)->attributes.at("cart"), cart);
  }

  // `id` is cached on A; `lose` cuts tracking, then B destroys the session
  // (its invalidation may never come): the loss itself must flush.
  void ExpectLossFlushes(const std::string& id, const std::function<void()>& lose) {
    CreateAndCache(id);
    const uint64_t flushes = cache_->stats().flushes;
    lose();
    ASSERT_TRUE(*b_->Destroy(id, now_, now_ + absl::Minutes(5)));
    ASSERT_TRUE(WaitFlushes(flushes));
    EXPECT_TRUE(absl::IsNotFound(ReadA(id).status()));
  }

  void KillClient(int64_t id) {
    ASSERT_NE(id, 0);
    RunResult killed = server_->Cli({"CLIENT", "KILL", "ID", std::to_string(id)});
    ASSERT_EQ(killed.exit_status, 0) << killed.err;
    ASSERT_EQ(killed.out, "1\n");
  }

  std::unique_ptr<RedisServer> server_;
  std::unique_ptr<redis::RedisClient> a_client_;
  std::unique_ptr<redis::RedisClient> b_client_;
  std::unique_ptr<SessionNearCache> cache_;
  std::unique_ptr<redis::RedisSessionStore> a_;
  std::unique_ptr<redis::RedisSessionStore> b_;
  absl::Time now_;
};

TEST_F(NearCacheTest, UpdateAndDestroyElsewhereAreNeverReadOnceInvalidated) {
  const std::string id(43, 'u');
  CreateAndCache(id);
  uint64_t seen = cache_->stats().invalidations;
  ASSERT_TRUE(UpdateOnB(id, "sealed-2").ok());
  ASSERT_TRUE(WaitInvalidations(seen));
  absl::StatusOr<session::StoredSession> read = ReadA(id);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->attributes.at("cart"), "sealed-2");
  EXPECT_EQ(read->version, 2u);

  // Cached again, then destroyed on B.
  ASSERT_TRUE(ReadA(id).ok());
  const uint64_t hits = cache_->stats().hits;
  ASSERT_EQ(ReadA(id)->version, 2u);
  ASSERT_EQ(cache_->stats().hits, hits + 1);
  seen = cache_->stats().invalidations;
  ASSERT_TRUE(*b_->Destroy(id, now_, now_ + absl::Minutes(5)));
  ASSERT_TRUE(WaitInvalidations(seen));
  EXPECT_TRUE(absl::IsNotFound(ReadA(id).status()));
}

TEST_F(NearCacheTest, WriteWithRedisCliIsNeverReadOnceInvalidated) {
  const std::string id(43, 'c');
  CreateAndCache(id);
  const uint64_t seen = cache_->stats().invalidations;
  RunResult set = server_->Cli({"HSET", a_->SessionKey(id), "a:cart", "sealed-cli"});
  ASSERT_EQ(set.exit_status, 0) << set.err;
  ASSERT_TRUE(WaitInvalidations(seen));
  EXPECT_EQ(ReadA(id)->attributes.at("cart"), "sealed-cli");
}

TEST_F(NearCacheTest, LocalWritesAreReadAtOnce) {
  const std::string id(43, 'l');
  CreateAndCache(id);
  session::Mutation m;
  m.now = now_;
  m.set.emplace_back("cart", "sealed-local");
  ASSERT_TRUE(a_->Update(id, m).ok());
  // No wait for the invalidation: the acknowledged write dropped the entry.
  EXPECT_EQ(ReadA(id)->attributes.at("cart"), "sealed-local");
  ASSERT_TRUE(ReadA(id).ok());
  ASSERT_TRUE(*a_->Destroy(id, now_, now_ + absl::Minutes(5)));
  EXPECT_TRUE(absl::IsNotFound(ReadA(id).status()));
}

TEST_F(NearCacheTest, HitsNeverOutliveTheExpiry) {
  const std::string id(43, 'e');
  CreateAndCache(id);
  // Past the idle TTL (30 min), with no touch due to send it to Redis.
  EXPECT_TRUE(absl::IsNotFound(Read(*a_, id, now_ + absl::Minutes(31), /*touch=*/false).status()));
  // Past the absolute expiry (8 h) of a session whose idle TTL is longer.
  const std::string long_idle(43, 'g');
  session::StoredSession s = MakeSession(long_idle);
  s.idle_ttl = absl::Hours(10);
  ASSERT_TRUE(b_->Create(s).ok());
  ASSERT_TRUE(ReadA(long_idle).ok());
  ASSERT_TRUE(Read(*a_, long_idle, now_ + absl::Hours(8) - absl::Seconds(1), false).ok());
  EXPECT_GE(cache_->stats().hits, 2u);
  EXPECT_TRUE(absl::IsNotFound(
      Read(*a_, long_idle, now_ + absl::Hours(8) + absl::Seconds(1), /*touch=*/false).status()));
}

TEST_F(NearCacheTest, ReaderConnectionKilledFlushes) {
  ExpectLossFlushes(std::string(43, 'r'), [&] { KillClient(cache_->reader_client_id()); });
  // Tracking comes back: cached again, and invalidated again.
  ASSERT_TRUE(cache_->WaitArmed(absl::Seconds(10)));
  ExpectChangeElsewhereSeen(std::string(43, 's'), "sealed-3");
}

TEST_F(NearCacheTest, InvalidationConnectionKilledFlushesAndRedirectsAgain) {
  const int64_t old_id = cache_->invalidation_client_id();
  ExpectLossFlushes(std::string(43, 'i'), [&] { KillClient(old_id); });
  // Armed again on the new connection: invalidations reach it.
  ASSERT_TRUE(WaitFor([&] { return cache_->armed() && cache_->invalidation_client_id() != old_id; }));
  ExpectChangeElsewhereSeen(std::string(43, 'j'), "sealed-4");
}

TEST_F(NearCacheTest, FlushallFlushes) {
  const std::string id(43, 'a');
  CreateAndCache(id);
  const uint64_t flushes = cache_->stats().flushes;
  RunResult flushed = server_->Cli({"FLUSHALL"});
  ASSERT_EQ(flushed.exit_status, 0) << flushed.err;
  ASSERT_TRUE(WaitFlushes(flushes));
  EXPECT_TRUE(cache_->armed());  // tracking itself is intact
  EXPECT_TRUE(absl::IsNotFound(ReadA(id).status()));
}

TEST_F(NearCacheTest, RedisRestartFlushes) {
  const std::string id(43, 'x');
  CreateAndCache(id);
  const uint64_t flushes = cache_->stats().flushes;
  // No persistence: the session is gone with the restart.
  ASSERT_TRUE(server_->Restart().ok());
  ASSERT_TRUE(WaitFlushes(flushes));
  ASSERT_TRUE(WaitFor([&] { return a_client_->connected(); }));
  EXPECT_TRUE(absl::IsNotFound(ReadA(id).status()));
  ASSERT_TRUE(cache_->WaitArmed(absl::Seconds(10)));
  EXPECT_TRUE(absl::IsNotFound(ReadA(id).status()));
}

// The invalidation connection is up but not subscribed (its handshake came
// before the SUBSCRIBE): Redis would drop every invalidation, so the cache
// must not arm, and says why.
TEST_F(NearCacheTest, NeverArmsBeforeTheInvalidationChannelIsSubscribed) {
  absl::StatusOr<redis::RedisOptions> options =
      redis::ParseRedisUrl(server_->url(), FastRedisOptions());
  ASSERT_TRUE(options.ok()) << options.status();
  absl::StatusOr<std::unique_ptr<SessionNearCache>> cache =
      SessionNearCache::Create(*options, 1 << 20, /*subscribe=*/false);
  ASSERT_TRUE(cache.ok()) << cache.status();
  ASSERT_TRUE(WaitFor([&] { return (*cache)->stats().arm_failures > 0; }))
      << "no attempt to arm";
  const SessionNearCache::Stats stats = (*cache)->stats();
  EXPECT_FALSE(stats.armed);
  EXPECT_NE(stats.arm_error.find("has not subscribed to __redis__:invalidate"), std::string::npos)
      << stats.arm_error;
  // Reads go to the store's own client, correct and uncached.
  ExpectReadsUncached(cache->get(), 'n', "sealed-unarmed");
}

// A Redis user without +client|list (an ACL older than the near cache): the
// cache stays unarmed and says why, once; it keeps trying on its backoff;
// reads are still right (from Redis, uncached).
TEST_F(NearCacheTest, ArmRefusedByTheAclIsReportedAndRetried) {
  RunResult user = server_->Cli({"ACL", "SETUSER", "nolist", "on", ">nolist-pw", "~*", "&*",
                                 "+@all", "-client|list"});
  ASSERT_EQ(user.exit_status, 0) << user.err;
  ASSERT_EQ(user.out, "OK\n") << user.out;
  std::string url = server_->url();
  url.replace(url.find("://") + 3, 0, "nolist:nolist-pw@");
  absl::StatusOr<redis::RedisOptions> options = redis::ParseRedisUrl(url, FastRedisOptions());
  ASSERT_TRUE(options.ok()) << options.status();
  absl::Mutex mu;  // outlives the cache, whose listener uses it
  std::vector<std::string> heard;
  absl::StatusOr<std::unique_ptr<SessionNearCache>> cache =
      SessionNearCache::Create(*options, 1 << 20);
  ASSERT_TRUE(cache.ok()) << cache.status();
  (*cache)->SetArmErrorListener([&](const std::string& error) {
    absl::MutexLock lock(&mu);
    heard.push_back(error);
  });
  // Retried: further refusals come without any connection event.
  ASSERT_TRUE(WaitFor([&] { return (*cache)->stats().arm_failures >= 3; }))
      << (*cache)->stats().arm_error;
  const SessionNearCache::Stats stats = (*cache)->stats();
  EXPECT_FALSE(stats.armed);
  EXPECT_NE(stats.arm_error.find("NOPERM"), std::string::npos) << stats.arm_error;
  {
    absl::MutexLock lock(&mu);
    // Once per change of the reason (the first refusal may have come before
    // the listener was set).
    EXPECT_LE(heard.size(), 1u);
    for (const std::string& error : heard) EXPECT_EQ(error, stats.arm_error);
  }
  ExpectReadsUncached(cache->get(), 'p', "sealed-noperm");
}

// Shutdown order: the store goes before its client, whose destructor fails
// the writes still outstanding by running their callbacks; those reach the
// near cache (which outlives the client) without the store.
TEST_F(NearCacheTest, WritesFailedAfterTheStoreIsGoneStillInvalidate) {
  const std::string id(43, 'd');
  CreateAndCache(id);
  auto client = ConnectedClient(server_->url());
  ASSERT_NE(client, nullptr);
  auto store = std::make_unique<redis::RedisSessionStore>(client.get(), "nc:", cache_.get());
  const uint64_t seen = cache_->stats().invalidations;
  server_->Pause();
  absl::Notification answered;
  absl::Status status;
  session::Mutation m;
  m.now = now_;
  m.set.emplace_back("cart", "sealed-shutdown");
  store->UpdateAsync(id, m, [&](absl::StatusOr<session::StoredSession> got) {
    status = got.status();
    answered.Notify();
  });
  store.reset();
  client.reset();
  server_->Resume();
  ASSERT_TRUE(answered.HasBeenNotified());
  EXPECT_TRUE(absl::IsUnavailable(status)) << status;
  // The write may have reached Redis: its key is no longer cached.
  EXPECT_GT(cache_->stats().invalidations, seen);
}

// The reader is killed while armed: a read that went to it (before the
// cache saw the loss) is read again on the store's client instead of failing.
TEST_F(NearCacheTest, ReadsSurviveTheReadersLoss) {
  const std::string id(43, 'k');
  ASSERT_TRUE(b_->Create(MakeSession(id)).ok());
  for (int round = 0; round < 3; ++round) {
    ASSERT_TRUE(cache_->WaitArmed(absl::Seconds(10)));
    KillClient(cache_->reader_client_id());
    absl::StatusOr<session::StoredSession> read = ReadA(id);
    ASSERT_TRUE(read.ok()) << read.status();
    absl::Notification answered;
    absl::Status status;
    session::ReadOptions options;
    options.now = now_;
    options.touch_granularity = absl::Seconds(60);
    ASSERT_TRUE(cache_->WaitArmed(absl::Seconds(10)));
    KillClient(cache_->reader_client_id());
    a_->GetAsync(id, options, [&](absl::StatusOr<session::StoredSession> got) {
      status = got.status();
      answered.Notify();
    });
    ASSERT_TRUE(answered.WaitForNotificationWithTimeout(absl::Seconds(10)));
    EXPECT_TRUE(status.ok()) << status;
  }
}

// The classic race: the read's reply is in, then (before it is cached) a
// write elsewhere is acknowledged and its invalidation delivered. The old
// answer must not be cached.
TEST_F(NearCacheTest, ReplyRacingAnInvalidationIsNotCached) {
  const std::string id(43, 'z');
  ASSERT_TRUE(b_->Create(MakeSession(id)).ok());
  std::atomic<bool> raced{false};
  cache_->SetFillHookForTest([&](const std::string& key) {
    if (key != a_->SessionKey(id) || raced.exchange(true)) return;
    const uint64_t seen = cache_->stats().invalidations;
    ASSERT_TRUE(UpdateOnB(id, "sealed-raced").ok());
    ASSERT_TRUE(WaitInvalidations(seen));
  });
  // This read answers the old value (it was read first) but must not fill.
  absl::StatusOr<session::StoredSession> first = ReadA(id);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->attributes.at("cart"), "sealed-1");
  ASSERT_TRUE(raced.load());
  EXPECT_EQ(cache_->stats().fills_refused, 1u);
  EXPECT_EQ(cache_->stats().entries, 0u);
  EXPECT_EQ(ReadA(id)->attributes.at("cart"), "sealed-raced");
  cache_->SetFillHookForTest(nullptr);
}

TEST_F(NearCacheTest, BoundedByBytes) {
  auto small = ArmedCache(server_->url(), 1 << 12);
  ASSERT_NE(small, nullptr);
  redis::RedisSessionStore store(a_client_.get(), "nc:", small.get());
  for (char c = 'A'; c < 'Z'; ++c) {
    ASSERT_TRUE(b_->Create(MakeSession(std::string(43, c))).ok());
    ASSERT_TRUE(Read(store, std::string(43, c), now_).ok());
  }
  const SessionNearCache::Stats stats = small->stats();
  EXPECT_LE(stats.bytes, 1u << 12);
  EXPECT_GT(stats.evictions, 0u);
  EXPECT_GT(stats.entries, 0u);
}

// Sentinel: a failover moves both cache connections to the new master; the
// cache flushes, arms again there, and invalidations come from there.
TEST(NearCacheSentinelTest, FailoverFlushesAndTrackingFollowsTheMaster) {
  auto set = RedisSentinelSet::Start();
  ASSERT_TRUE(set.ok()) << set.status();
  redis::RedisOptions base = FastRedisOptions();
  base.topology = redis::RedisTopology::kSentinel;
  base.sentinel_master = "mymaster";
  auto cache = ArmedCache((*set)->url(), 1 << 20, base);
  ASSERT_NE(cache, nullptr);
  auto a_client = ConnectedClient((*set)->url(), base);
  auto b_client = ConnectedClient((*set)->url(), base);
  ASSERT_NE(a_client, nullptr);
  ASSERT_NE(b_client, nullptr);
  redis::RedisSessionStore a(a_client.get(), "nc:", cache.get());
  redis::RedisSessionStore b(b_client.get(), "nc:");
  const absl::Time now = absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()));
  session::ReadOptions read;
  read.now = now;
  read.touch_granularity = absl::Seconds(60);
  session::StoredSession s;
  s.id = std::string(43, 'f');
  s.created = s.last_access = now;
  s.idle_ttl = absl::Minutes(30);
  s.absolute_expiry = now + absl::Hours(8);
  s.version = 1;
  s.attributes["cart"] = "sealed-1";
  ASSERT_TRUE(b.Create(s).ok());
  // Replicated before the failover, so the new master has it.
  ASSERT_TRUE(WaitFor([&] {
    return (*set)->node(1).Cli({"EXISTS", b.SessionKey(s.id)}).out == "1\n";
  }));
  ASSERT_TRUE(a.Get(s.id, read).ok());
  ASSERT_TRUE(a.Get(s.id, read).ok());
  ASSERT_EQ(cache->stats().hits, 1u);

  const uint64_t flushes = cache->stats().flushes;
  ASSERT_EQ((*set)->SentinelCli(0, {"SENTINEL", "FAILOVER", "mymaster"}).out, "OK\n");
  absl::StatusOr<int> now_master = (*set)->WaitNewMaster(0, absl::Seconds(30));
  ASSERT_TRUE(now_master.ok()) << now_master.status();
  ASSERT_TRUE(WaitFor([&] { return cache->stats().flushes > flushes; }, absl::Seconds(20)));
  ASSERT_TRUE(WaitFor(
      [&] {
        return cache->armed() &&
               (*set)->node(*now_master).Cli({"CLIENT", "LIST", "ID",
                                              std::to_string(cache->reader_client_id())})
                       .out.find("flags=t") != std::string::npos;
      },
      absl::Seconds(20)));
  ASSERT_TRUE(WaitFor([&] { return a_client->connected() && b_client->connected(); }));

  // Cached on the new master, changed there by B: invalidated.
  ASSERT_TRUE(WaitFor([&] { return a.Get(s.id, read).ok(); }));
  const uint64_t hits = cache->stats().hits;
  ASSERT_TRUE(a.Get(s.id, read).ok());
  ASSERT_EQ(cache->stats().hits, hits + 1);
  const uint64_t seen = cache->stats().invalidations;
  session::Mutation m;
  m.now = now;
  m.set.emplace_back("cart", "sealed-2");
  ASSERT_TRUE(b.Update(s.id, m).ok());
  ASSERT_TRUE(WaitFor([&] { return cache->stats().invalidations > seen; }));
  absl::StatusOr<session::StoredSession> after = a.Get(s.id, read);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->attributes.at("cart"), "sealed-2");
}

// Sentinel: while the store's client writes to another master than the one
// the reader reads (each follows its own monitor, so during a failover they
// may differ), nothing is served from or put in the cache: a write the
// store made there could not invalidate what the reader reads here.
TEST(NearCacheSentinelTest, NoHitsNorFillsWhileTheStoreWritesElsewhere) {
  auto set = RedisSentinelSet::Start();
  ASSERT_TRUE(set.ok()) << set.status();
  redis::RedisOptions base = FastRedisOptions();
  base.topology = redis::RedisTopology::kSentinel;
  base.sentinel_master = "mymaster";
  auto cache = ArmedCache((*set)->url(), 1 << 20, base);
  ASSERT_NE(cache, nullptr);
  auto client = ConnectedClient((*set)->url(), base);
  ASSERT_NE(client, nullptr);
  // Standalone clients of the master and of a replica stand for the store's
  // client before and after it followed a failover the reader has not.
  auto on_master = ConnectedClient((*set)->node(0).url());
  auto on_replica = ConnectedClient((*set)->node(1).url());
  ASSERT_NE(on_master, nullptr);
  ASSERT_NE(on_replica, nullptr);
  ASSERT_EQ(on_master->MasterAddresses(), client->MasterAddresses());
  redis::RedisSessionStore store(client.get(), "nc:", cache.get());
  const absl::Time now = absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()));
  session::ReadOptions read;
  read.now = now;
  read.touch_granularity = absl::Seconds(60);
  session::StoredSession s;
  s.id = std::string(43, 'm');
  s.created = s.last_access = now;
  s.idle_ttl = absl::Minutes(30);
  s.absolute_expiry = now + absl::Hours(8);
  s.version = 1;
  s.attributes["cart"] = "sealed-1";
  ASSERT_TRUE(store.Create(s).ok());

  cache->SetStoreClient(on_replica.get());
  ASSERT_TRUE(store.Get(s.id, read).ok());
  ASSERT_TRUE(store.Get(s.id, read).ok());
  EXPECT_EQ(cache->stats().fills, 0u);
  EXPECT_EQ(cache->stats().hits, 0u);

  cache->SetStoreClient(on_master.get());
  ASSERT_TRUE(store.Get(s.id, read).ok());
  EXPECT_EQ(cache->stats().fills, 1u);
  ASSERT_TRUE(store.Get(s.id, read).ok());
  EXPECT_EQ(cache->stats().hits, 1u);
  // What was cached is not served while they differ.
  cache->SetStoreClient(on_replica.get());
  ASSERT_TRUE(store.Get(s.id, read).ok());
  EXPECT_EQ(cache->stats().hits, 1u);
  cache->SetStoreClient(nullptr);
}

TEST(NearCacheOptionsTest, RefusesCluster) {
  redis::RedisOptions options;
  options.topology = redis::RedisTopology::kCluster;
  options.nodes = {{"127.0.0.1", 1}};
  absl::StatusOr<std::unique_ptr<SessionNearCache>> cache =
      SessionNearCache::Create(options, 1 << 20);
  ASSERT_TRUE(absl::IsInvalidArgument(cache.status())) << cache.status();
  EXPECT_NE(cache.status().message().find("STATESIDE_SESSION_NEAR_CACHE"), std::string::npos);
  EXPECT_NE(cache.status().message().find("STATESIDE_REDIS_TOPOLOGY=cluster"), std::string::npos)
      << cache.status();
}

}  // namespace
}  // namespace stateside::testing
