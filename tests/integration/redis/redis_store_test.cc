// Redis-specific behaviour of the Redis stores, beyond the conformance suite:
// round trips per call, the key layout and its expiries, index pruning,
// sharing between clients, and outages.
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "sidecar/redis/redis_opt_out_store.h"
#include "sidecar/redis/redis_session_store.h"
#include "tests/integration/redis/redis_fixture.h"
#include "tests/support/redis_server.h"
#include "tests/support/wait.h"

namespace stateside::testing {
namespace {

using redis::RedisClient;
using redis::RedisOptOutStore;
using redis::RedisSessionStore;
using redis::Reply;

class RedisStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(SharedRedisServer(), nullptr);
    client_ = ConnectedClient(SharedRedisServer()->url());
    ASSERT_NE(client_, nullptr);
    prefix_ = UniquePrefix();
    store_ = std::make_unique<RedisSessionStore>(client_.get(), prefix_);
    now_ = absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()));
  }

  session::StoredSession Make(const std::string& id, const std::string& tag = "") const {
    session::StoredSession s;
    s.id = id;
    s.user_tag = tag;
    s.user_envelope = tag.empty() ? "" : "sealed-" + tag;
    s.created = s.last_access = now_;
    s.idle_ttl = absl::Minutes(30);
    s.absolute_expiry = now_ + absl::Hours(8);
    s.version = 1;
    return s;
  }

  session::ReadOptions Read(bool touch = true) const {
    session::ReadOptions o;
    o.now = now_;
    o.touch = touch;
    return o;
  }

  session::Mutation Set(const std::string& name, const std::string& value) const {
    session::Mutation m;
    m.now = now_;
    m.set = {{name, value}};
    return m;
  }

  int64_t Pttl(const std::string& key) { return client_->Call({"PTTL", key})->integer; }

  // Redis's count of calls of `command` (lower case), from its commandstats.
  int64_t Calls(const std::string& command) {
    absl::StatusOr<Reply> info = client_->Call({"INFO", "commandstats"});
    const std::string text = info.ok() ? info->str : "";
    const std::string field = absl::StrCat("cmdstat_", command, ":calls=");
    const size_t at = text.find(field);
    int64_t n = 0;
    if (at != std::string::npos) {
      const std::string value = text.substr(at + field.size(), text.find(',', at) - at - field.size());
      EXPECT_TRUE(absl::SimpleAtoi(value, &n)) << value;
    }
    return n;
  }

  std::unique_ptr<RedisClient> client_;
  std::string prefix_;
  std::unique_ptr<RedisSessionStore> store_;
  absl::Time now_;
};

TEST_F(RedisStoreTest, GetAndUpdateAreOneRoundTripEach) {
  session::StoredSession s = Make("sess-a");
  s.attributes = {{"cart", "env"}};
  ASSERT_TRUE(store_->Create(s).ok());
  ASSERT_TRUE(store_->Get("sess-a", Read()).ok());               // loads the script
  ASSERT_TRUE(store_->Update("sess-a", Set("k", "v")).ok());     // loads the script

  redis::RedisClientStats before = client_->stats();
  ASSERT_TRUE(store_->Get("sess-a", Read(/*touch=*/true)).ok());
  redis::RedisClientStats after = client_->stats();
  EXPECT_EQ(after.commands_written - before.commands_written, 1u);
  EXPECT_EQ(after.batches_written - before.batches_written, 1u);

  before = after;
  session::Mutation m = Set("k2", "v2");
  m.remove = {"cart"};
  m.expected_version = 2;
  m.limits.max_attributes = 10;
  ASSERT_TRUE(store_->Update("sess-a", m).ok());
  after = client_->stats();
  EXPECT_EQ(after.commands_written - before.commands_written, 1u);
  EXPECT_EQ(after.batches_written - before.batches_written, 1u);
}

// A hash the sidecar did not write whole, or a key of another type, read
// by the plain read path: attributes without metadata are no session
// (NOT_FOUND), metadata without its expiry fields and a string key are
// INTERNAL, never a crash or a session.
TEST_F(RedisStoreTest, AMalformedSessionKeyIsNotFoundOrInternal) {
  ASSERT_TRUE(client_->Call({"HSET", prefix_ + "s:{orphan}", "a:cart", "x"}).ok());
  ASSERT_TRUE(client_->Call({"HSET", prefix_ + "s:{nolast}", "m:ver", "1", "a:cart", "x"}).ok());
  ASSERT_TRUE(client_->Call({"SET", prefix_ + "s:{string}", "x"}).ok());
  session::ReadOptions read = Read();
  read.touch_granularity = absl::Seconds(60);
  for (bool metadata_only : {false, true}) {
    read.metadata_only = metadata_only;
    EXPECT_EQ(store_->Get("orphan", read).status().code(), absl::StatusCode::kNotFound);
    EXPECT_EQ(store_->Get("nolast", read).status().code(), absl::StatusCode::kInternal);
    EXPECT_EQ(store_->Get("string", read).status().code(), absl::StatusCode::kInternal);
  }
}

// A read that need not write (within the touch granularity, or not
// touching) is one plain HGETALL (HMGET for metadata only), no script: the
// script runs only to write the access when due or to delete an expired
// session, one command later.
TEST_F(RedisStoreTest, AReadThatWritesNothingRunsNoScript) {
  session::StoredSession s = Make("plain");  // idle 30m: 1% = 18s
  s.attributes = {{"cart", "env-cart"}, {"theme", "env-theme"}};
  ASSERT_TRUE(store_->Create(s).ok());
  ASSERT_TRUE(store_->Get("plain", Read()).ok());  // loads the script (no granularity: it alone)
  session::ReadOptions read = Read();
  read.touch_granularity = absl::Seconds(60);
  read.now = now_ + absl::Seconds(10);
  int64_t scripts = Calls("evalsha");
  const int64_t hgetalls = Calls("hgetall"), hmgets = Calls("hmget");
  redis::RedisClientStats before = client_->stats();
  absl::StatusOr<session::StoredSession> got = store_->Get("plain", read);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->attributes, s.attributes);
  EXPECT_EQ(got->version, 1u);
  EXPECT_EQ(got->last_access, now_);
  read.metadata_only = true;
  got = store_->Get("plain", read);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(got->attributes.empty());
  EXPECT_EQ(got->idle_ttl, absl::Minutes(30));
  EXPECT_EQ(client_->stats().commands_written - before.commands_written, 2u);
  EXPECT_EQ(Calls("evalsha"), scripts) << "a read within the granularity ran the script";
  EXPECT_EQ(Calls("hgetall"), hgetalls + 1);
  EXPECT_EQ(Calls("hmget"), hmgets + 1);

  read.metadata_only = false;
  read.now = now_ + absl::Seconds(18);  // due
  before = client_->stats();
  got = store_->Get("plain", read);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->last_access, read.now);
  EXPECT_EQ(got->attributes, s.attributes);
  EXPECT_EQ(client_->stats().commands_written - before.commands_written, 2u);
  EXPECT_EQ(Calls("evalsha"), scripts + 1);

  // Expired: the script deletes it and says so.
  read.now += absl::Minutes(30);
  EXPECT_TRUE(session::IsExpiredNotFound(store_->Get("plain", read).status()));
  EXPECT_EQ(Calls("evalsha"), scripts + 2);
  EXPECT_EQ(client_->Call({"EXISTS", prefix_ + "s:{plain}"})->integer, 0);
}

TEST_F(RedisStoreTest, KeysFollowTheDocumentedLayoutAndAllExpire) {
  session::StoredSession s = Make("id1", "tag1");
  s.attributes = {{"cart", "env-cart"}};
  ASSERT_TRUE(store_->Create(s).ok());
  RedisOptOutStore opt_outs(client_.get(), prefix_);
  ASSERT_TRUE(opt_outs.Set("subj1", true, now_, now_ + absl::Hours(24 * 365)).ok());

  const std::string skey = prefix_ + "s:{id1}";
  const std::string ukey = prefix_ + "u:{tag1}";
  const std::string okey = prefix_ + "o:{subj1}";
  EXPECT_EQ(store_->SessionKey("id1"), skey);
  EXPECT_EQ(store_->UserIndexKey("tag1"), ukey);
  EXPECT_EQ(opt_outs.Key("subj1"), okey);

  absl::StatusOr<Reply> fields = client_->Call({"HKEYS", skey});
  ASSERT_TRUE(fields.ok());
  std::vector<std::string> names;
  for (const Reply& f : fields->elements) names.push_back(f.str);
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"a:cart", "m:abs", "m:created", "m:idle", "m:last",
                                             "m:n", "m:seal", "m:sz", "m:uenv", "m:user",
                                             "m:ver"}));
  EXPECT_EQ(client_->Call({"ZSCORE", ukey, "id1"})->str,
            std::to_string(absl::ToUnixMicros(s.absolute_expiry)));
  // Garbage collection: idle expiry for the session, the latest absolute
  // expiry for the index, the flag's expiry for the opt-out.
  EXPECT_NEAR(Pttl(skey), 30 * 60 * 1000, 5000);
  EXPECT_NEAR(Pttl(ukey), 8 * 3600 * 1000, 5000);
  EXPECT_NEAR(Pttl(okey), int64_t{365} * 24 * 3600 * 1000, 5000);

  // The tombstone: same key, one field, kept until tombstone_until.
  ASSERT_TRUE(store_->Destroy("id1", now_, now_ + absl::Hours(2)).value_or(false));
  fields = client_->Call({"HGETALL", skey});
  ASSERT_EQ(fields->elements.size(), 2u);
  EXPECT_EQ(fields->elements[0].str, "m:dead");
  EXPECT_NEAR(Pttl(skey), 2 * 3600 * 1000, 5000);
  EXPECT_EQ(client_->Call({"EXISTS", ukey})->integer, 0) << "ZREM emptied the index";
}

// The epoch advance is one script: the new value and the key's TTL come
// together (a separate PEXPIRE could be lost and leave a key without one).
TEST_F(RedisStoreTest, AnEpochAdvanceSetsTheKeysTtl) {
  const std::string ekey = store_->UserEpochKey("tag1");
  ASSERT_TRUE(store_->AdvanceUserEpoch("tag1", now_, now_ + absl::Hours(8)).ok());
  EXPECT_EQ(client_->Call({"GET", ekey})->str, "1");
  EXPECT_NEAR(Pttl(ekey), 8 * 3600 * 1000, 5000);
  ASSERT_TRUE(store_->AdvanceUserEpoch("tag1", now_, now_ + absl::Hours(2)).ok());
  EXPECT_EQ(store_->UserEpoch("tag1").value_or(0), 2u);
  EXPECT_NEAR(Pttl(ekey), 2 * 3600 * 1000, 5000);
}

// Touch coalescing on Redis: a read within the granularity writes nothing
// at all (the server's count of changes does not move: nothing to replicate
// or append to the AOF); the first read a granularity later writes m:last
// and the key's TTL.
TEST_F(RedisStoreTest, ACoalescedReadWritesNothingAndADueOneWrites) {
  const auto changes = [&] {
    absl::StatusOr<Reply> info = client_->Call({"INFO", "persistence"});
    const std::string text = info.ok() ? info->str : "";
    const std::string field = "rdb_changes_since_last_save:";
    const size_t at = text.find(field);
    int64_t n = -1;
    if (at != std::string::npos) {
      const std::string value = text.substr(at + field.size(), text.find('\r', at) - at - field.size());
      EXPECT_TRUE(absl::SimpleAtoi(value, &n)) << value;
    }
    return n;
  };
  ASSERT_TRUE(store_->Create(Make("coalesced")).ok());  // idle 30m: 1% = 18s
  const int64_t before = changes();
  ASSERT_GE(before, 0);
  session::ReadOptions read = Read();
  read.touch_granularity = absl::Seconds(60);
  for (int i = 1; i <= 5; ++i) {
    read.now = now_ + absl::Seconds(3 * i);  // up to 15s
    ASSERT_TRUE(store_->Get("coalesced", read).ok());
  }
  EXPECT_EQ(changes(), before) << "a read within the granularity wrote";
  read.now = now_ + absl::Seconds(18);
  absl::StatusOr<session::StoredSession> got = store_->Get("coalesced", read);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->last_access, read.now);
  EXPECT_EQ(changes(), before + 2) << "HSET m:last + PEXPIRE";
}

// An update within the granularity writes its attributes and counters in
// one HSET and leaves m:last and the key's TTL alone: no PEXPIRE.
TEST_F(RedisStoreTest, ACoalescedUpdateSetsNoTtl) {
  ASSERT_TRUE(store_->Create(Make("coalesced-update")).ok());  // idle 30m: 1% = 18s
  session::Mutation m = Set("k", "v");
  m.touch_granularity = absl::Seconds(60);
  m.now = now_ + absl::Seconds(5);
  int64_t before = Calls("pexpire");
  ASSERT_TRUE(store_->Update("coalesced-update", m).ok());
  EXPECT_EQ(Calls("pexpire"), before);
  m.now = now_ + absl::Seconds(18);
  ASSERT_TRUE(store_->Update("coalesced-update", m).ok());
  EXPECT_EQ(Calls("pexpire"), before + 1);
}

TEST_F(RedisStoreTest, RedisExpiresDeadSessionsByItself) {
  session::StoredSession s = Make("short");
  s.idle_ttl = absl::Milliseconds(200);
  ASSERT_TRUE(store_->Create(s).ok());
  EXPECT_EQ(client_->Call({"EXISTS", prefix_ + "s:{short}"})->integer, 1);
  EXPECT_TRUE(WaitFor([&] { return client_->Call({"EXISTS", prefix_ + "s:{short}"})->integer == 0; },
                      absl::Seconds(10)));
}

TEST_F(RedisStoreTest, AttributeNamesCannotCollideWithMetadata) {
  session::StoredSession s = Make("id2");
  s.attributes = {{"m:ver", "x"}, {"m:dead", "y"}, {"ver", "z"}, {"", "empty-name"}};
  ASSERT_TRUE(store_->Create(s).ok());
  absl::StatusOr<session::StoredSession> got = store_->Get("id2", Read());
  ASSERT_TRUE(got.ok()) << got.status() << " (an attribute named m:dead is not a tombstone)";
  EXPECT_EQ(got->attributes, s.attributes);
  EXPECT_EQ(got->version, 1u);
  ASSERT_TRUE(store_->Update("id2", Set("m:ver", "changed")).ok());
  EXPECT_EQ(store_->Get("id2", Read())->version, 2u);
}

TEST_F(RedisStoreTest, ListingPrunesStaleAndForeignIndexEntries) {
  for (const char* id : {"l1", "l2", "l3"}) ASSERT_TRUE(store_->Create(Make(id, "alice")).ok());
  session::StoredSession bobs = Make("b1", "bob");
  ASSERT_TRUE(store_->Create(bobs).ok());
  const std::string index = store_->UserIndexKey("alice");
  const std::string far = std::to_string(absl::ToUnixMicros(now_ + absl::Hours(1)));
  // Entries that point nowhere or at someone else's session.
  ASSERT_TRUE(client_->Call({"ZADD", index, far, "ghost"}).ok());
  ASSERT_TRUE(client_->Call({"ZADD", index, far, "b1"}).ok());
  // l2 idles out while l1 and l3 are used.
  now_ += absl::Minutes(20);
  ASSERT_TRUE(store_->Get("l1", Read()).ok());
  ASSERT_TRUE(store_->Get("l3", Read()).ok());
  ASSERT_TRUE(store_->Get("b1", Read()).ok());
  now_ += absl::Minutes(15);

  absl::StatusOr<std::vector<session::StoredSession>> list = store_->ListByUser("alice", now_);
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].id, "l1");
  EXPECT_EQ((*list)[1].id, "l3");
  EXPECT_EQ(client_->Call({"ZCARD", index})->integer, 2) << "ghost, b1 and l2 pruned";
  EXPECT_EQ(client_->Call({"EXISTS", store_->SessionKey("l2")})->integer, 0)
      << "the dead record is gone too, so an earlier clock cannot revive it";
  EXPECT_TRUE(store_->Get("b1", Read()).ok()) << "bob's session itself is untouched";
}

// The listing reads the index, then each member: a member retired in between
// (here: its ZREM not yet done) is reported with its successor, so that a
// logout everywhere can follow it.
TEST_F(RedisStoreTest, AListingReportsTheSuccessorOfARetiredEntry) {
  session::StoredSession old = Make("old1", "alice");
  ASSERT_TRUE(store_->Create(old).ok());
  ASSERT_TRUE(store_->Retire("old1", 1, "new1", now_, old.absolute_expiry).ok());
  const std::string index = store_->UserIndexKey("alice");
  EXPECT_EQ(client_->Call({"ZCARD", index})->integer, 0) << "Retire leaves the index";
  const std::string score = std::to_string(absl::ToUnixMicros(old.absolute_expiry));
  ASSERT_TRUE(client_->Call({"ZADD", index, score, "old1"}).ok());
  EXPECT_EQ(client_->Call({"HGET", store_->SessionKey("old1"), "m:next"})->str, "new1");

  absl::StatusOr<session::UserIndexPage> page =
      store_->ListByUserPage("alice", now_, absl::InfinitePast(), 10);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_TRUE(page->sessions.empty());
  EXPECT_EQ(page->successors, std::vector<std::string>{"new1"});
  EXPECT_EQ(client_->Call({"ZCARD", index})->integer, 0) << "the entry is pruned";
}

TEST_F(RedisStoreTest, TwoClientsShareEverything) {
  auto other_client = ConnectedClient(SharedRedisServer()->url());
  ASSERT_NE(other_client, nullptr);
  RedisSessionStore a(client_.get(), prefix_), b(other_client.get(), prefix_);
  ASSERT_TRUE(a.Create(Make("shared", "carol")).ok());
  ASSERT_TRUE(b.Get("shared", Read()).ok());
  session::Mutation m = Set("k", "from-b");
  m.expected_version = 1;
  ASSERT_TRUE(b.Update("shared", m).ok());
  EXPECT_EQ(a.Get("shared", Read())->attributes.at("k"), "from-b");
  m.expected_version = 1;
  EXPECT_EQ(a.Update("shared", m).status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(b.ListByUser("carol", now_)->size(), 1u);
  EXPECT_TRUE(a.Destroy("shared", now_, now_ + absl::Hours(8)).value_or(false));
  EXPECT_EQ(b.Update("shared", Set("late", "x")).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(b.ListByUser("carol", now_)->empty());
}

TEST_F(RedisStoreTest, OutageIsUnavailableAndServiceResumesAfterRestart) {
  absl::StatusOr<std::unique_ptr<RedisServer>> own = RedisServer::Start();
  ASSERT_TRUE(own.ok()) << own.status();
  auto client = ConnectedClient((*own)->url());
  ASSERT_NE(client, nullptr);
  RedisSessionStore store(client.get(), prefix_);
  RedisOptOutStore opt_outs(client.get(), prefix_);
  ASSERT_TRUE(store.Create(Make("o1")).ok());
  ASSERT_TRUE(store.Get("o1", Read()).ok());

  (*own)->Kill();
  ASSERT_TRUE(WaitFor([&] { return !client->connected(); }));
  EXPECT_EQ(store.Get("o1", Read()).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(store.Create(Make("o2")).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(store.Update("o1", Set("k", "v")).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(store.Destroy("o1", now_, now_).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(store.ListByUser("x", now_).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(opt_outs.Get("s", now_).status().code(), absl::StatusCode::kUnavailable);

  ASSERT_TRUE((*own)->Restart().ok());
  ASSERT_TRUE(client->WaitConnected(absl::Seconds(10)));
  // No persistence: the data is gone, the scripts are reloaded on demand.
  EXPECT_EQ(store.Get("o1", Read()).status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(store.Create(Make("o3", "dave")).ok());
  ASSERT_TRUE(store.Update("o3", Set("k", "v")).ok());
  EXPECT_EQ(store.ListByUser("dave", now_)->size(), 1u);
}

TEST_F(RedisStoreTest, HugeAttributeCountsAreCreatedInChunks) {
  session::StoredSession s = Make("many");
  for (int i = 0; i < 5000; ++i) s.attributes[absl::StrCat("k", i)] = "v";
  ASSERT_TRUE(store_->Create(s).ok());
  absl::StatusOr<session::StoredSession> got = store_->Get("many", Read());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->attributes.size(), 5000u);
  session::Mutation m = Set("one-more", "v");
  m.limits.max_attributes = 5001;
  EXPECT_TRUE(store_->Update("many", m).ok()) << "the kept count is exact";
  m = Set("two-more", "v");
  m.limits.max_attributes = 5001;
  EXPECT_EQ(store_->Update("many", m).status().code(), absl::StatusCode::kInvalidArgument);
}

// stateside_sessions_live comes from this estimate: exact when every key is a
// live session, about right (random samples) when other keys share the
// database. Its own server: the shared one holds other tests' keys.
TEST(RedisLiveEstimateTest, EstimatesLiveSessionsFromSamples) {
  auto server = RedisServer::Start({});
  ASSERT_TRUE(server.ok()) << server.status();
  auto client = ConnectedClient((*server)->url());
  ASSERT_NE(client, nullptr);
  RedisSessionStore store(client.get(), "est:");
  absl::StatusOr<int64_t> empty = store.EstimateLiveSessions();
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(*empty, 0);

  const absl::Time now = absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()));
  const auto make = [&](const std::string& id) {
    session::StoredSession s;
    s.id = id;
    s.created = s.last_access = now;
    s.idle_ttl = absl::Minutes(30);
    s.absolute_expiry = now + absl::Hours(8);
    s.version = 1;
    return s;
  };
  constexpr int kLive = 100;
  for (int i = 0; i < kLive; ++i) {
    ASSERT_TRUE(store.Create(make(absl::StrCat("live-", i))).ok());
  }
  absl::StatusOr<int64_t> all_live = store.EstimateLiveSessions();
  ASSERT_TRUE(all_live.ok()) << all_live.status();
  EXPECT_EQ(*all_live, kLive);

  // 100 tombstones and 100 foreign keys: a third of the keys are live.
  for (int i = 0; i < kLive; ++i) {
    const std::string id = absl::StrCat("dead-", i);
    ASSERT_TRUE(store.Create(make(id)).ok());
    ASSERT_TRUE(store.Destroy(id, now, now + absl::Hours(1)).ok());
    ASSERT_TRUE(client->Call({"SET", absl::StrCat("other:", i), "x"}).ok());
  }
  // 256 samples of 300 keys: the standard deviation is about 9.
  absl::StatusOr<int64_t> mixed = store.EstimateLiveSessions(256);
  ASSERT_TRUE(mixed.ok()) << mixed.status();
  EXPECT_NEAR(static_cast<double>(*mixed), kLive, 45);
}

}  // namespace
}  // namespace stateside::testing
