// The session rules over Redis, as two sidecars sharing one Redis would run
// them: sessions move freely between instances, concurrent writes survive,
// destroyed sessions stay destroyed, and nothing in Redis (keys, values,
// MONITOR) is readable.
#include <algorithm>
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/synchronization/notification.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "sidecar/analytics/opt_out_manager.h"
#include "sidecar/common/clock.h"
#include "sidecar/crypto/cookie.h"
#include "sidecar/crypto/envelope.h"
#include "sidecar/crypto/keyring.h"
#include "sidecar/crypto/random.h"
#include "sidecar/redis/key_check.h"
#include "sidecar/redis/redis_opt_out_store.h"
#include "sidecar/redis/redis_session_store.h"
#include "sidecar/session/session_manager.h"
#include "tests/integration/redis/redis_fixture.h"
#include "tests/support/logout_race_scenarios.h"
#include "tests/support/recording_events.h"
#include "tests/support/subprocess.h"
#include "tests/support/wait.h"

namespace stateside::testing {
namespace {

using redis::RedisClient;
using redis::RedisSessionStore;

constexpr char kMarker[] = "MARKER-7f3c9a1e-clear-text";
constexpr char kUserId[] = "user-5d2b@example.com";

// One "sidecar": its own Redis client, store and session rules; the keys and
// secrets are the deployment's, shared.
struct Sidecar {
  std::unique_ptr<RedisClient> client;
  std::unique_ptr<RedisSessionStore> store;
  std::unique_ptr<session::SessionManager> sessions;
};

class RedisSessionManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(SharedRedisServer(), nullptr);
    random_ = crypto::NewSecureRandom();
    absl::StatusOr<std::string> key = RandomBytes(*random_, 32);
    ASSERT_TRUE(key.ok());
    absl::StatusOr<std::unique_ptr<crypto::Keyring>> keyring =
        crypto::Keyring::Create({{"k1", *key}});
    ASSERT_TRUE(keyring.ok()) << keyring.status();
    keyring_ = *std::move(keyring);
    sealer_ = std::make_unique<crypto::Sealer>(keyring_.get(), random_.get());
    absl::StatusOr<std::unique_ptr<crypto::CookieSigner>> signer =
        crypto::CookieSigner::Create({std::string(32, 's')});
    ASSERT_TRUE(signer.ok()) << signer.status();
    signer_ = *std::move(signer);
    prefix_ = UniquePrefix();
    a_ = MakeSidecar();
    b_ = MakeSidecar();
    ASSERT_NE(a_.sessions, nullptr);
    ASSERT_NE(b_.sessions, nullptr);
  }

  Sidecar MakeSidecar(session::SessionEvents* events = nullptr,
                      const crypto::Sealer* sealer = nullptr) {
    Sidecar s;
    s.client = ConnectedClient(SharedRedisServer()->url());
    if (s.client == nullptr) return s;
    s.store = std::make_unique<RedisSessionStore>(s.client.get(), prefix_);
    session::SessionPolicy policy;
    policy.idle_ttl = absl::Minutes(30);
    policy.absolute_ttl = absl::Hours(8);
    // The paging tests hold 251 sessions of one user, over the default cap
    // (tested by caps_process_test and the unit tests).
    policy.limits.max_sessions_per_user = 0;
    s.sessions = std::make_unique<session::SessionManager>(
        s.store.get(), sealer != nullptr ? sealer : sealer_.get(), signer_.get(), random_.get(),
        &clock_, policy, events);
    return s;
  }

  session::Session MustCreate(session::SessionManager& m, const std::string& user,
                     absl::flat_hash_map<std::string, std::string> attrs = {}) {
    session::CreateParams p;
    p.user_id = user;
    p.attributes = std::move(attrs);
    absl::StatusOr<session::Session> s = m.Create(p);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *std::move(s) : session::Session{};
  }

  SystemClock clock_;
  std::unique_ptr<RandomSource> random_;
  std::unique_ptr<crypto::Keyring> keyring_;
  std::unique_ptr<crypto::Sealer> sealer_;
  std::unique_ptr<crypto::CookieSigner> signer_;
  std::string prefix_;
  Sidecar a_, b_;
};

TEST_F(RedisSessionManagerTest, ASessionMovesFreelyBetweenInstances) {
  session::Session s = MustCreate(*a_.sessions, "alice", {{"cart", "[1,2]"}});
  absl::StatusOr<session::Session> got = b_.sessions->Get(session::SessionKey::Cookie(s.cookie));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->attributes.at("cart"), "[1,2]");
  EXPECT_EQ(got->info.user_id, "alice");
  session::UpdateParams u;
  u.set = {{"cart", "[1,2,3]"}};
  ASSERT_TRUE(b_.sessions->Update(session::SessionKey::Id(s.info.id), u).ok());
  EXPECT_EQ(a_.sessions->Get(session::SessionKey::Id(s.info.id))->attributes.at("cart"), "[1,2,3]");
  EXPECT_TRUE(b_.sessions->Destroy(session::SessionKey::Cookie(s.cookie)).value_or(false));
  EXPECT_EQ(a_.sessions->Get(session::SessionKey::Id(s.info.id)).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(RedisSessionManagerTest, FiftyConcurrentUpdatesThroughBothInstancesAllSurvive) {
  session::Session s = MustCreate(*a_.sessions, "bob");
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int i = 0; i < 50; ++i) {
    threads.emplace_back([&, i] {
      session::UpdateParams u;
      u.set = {{absl::StrCat("attr", i), absl::StrCat("value", i)}};
      session::SessionManager& m = *(i % 2 == 0 ? a_ : b_).sessions;
      if (!m.Update(session::SessionKey::Id(s.info.id), u).ok()) failures.fetch_add(1);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  absl::StatusOr<session::Session> got = a_.sessions->Get(session::SessionKey::Id(s.info.id));
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->attributes.size(), 50u);
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(got->attributes.at(absl::StrCat("attr", i)), absl::StrCat("value", i));
  }
  EXPECT_EQ(got->info.version, 51u);
}

TEST_F(RedisSessionManagerTest, AnUpdateAfterDestroyDoesNotResurrect) {
  session::Session s = MustCreate(*a_.sessions, "carol", {{"k", "v"}});
  ASSERT_TRUE(a_.sessions->Destroy(session::SessionKey::Id(s.info.id)).value_or(false));
  session::UpdateParams late;
  late.set = {{"k", "late"}};
  EXPECT_EQ(b_.sessions->Update(session::SessionKey::Id(s.info.id), late).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(b_.sessions->Touch(session::SessionKey::Id(s.info.id)).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(a_.sessions->Get(session::SessionKey::Id(s.info.id)).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(RedisSessionManagerTest, RegenerateAndLogoutEverywhereActAcrossInstances) {
  session::Session s1 = MustCreate(*a_.sessions, "dave", {{"k", "1"}});
  session::Session s2 = MustCreate(*b_.sessions, "dave");
  session::Session s3 = MustCreate(*a_.sessions, "dave");
  absl::StatusOr<session::Session> fresh = b_.sessions->Regenerate(session::SessionKey::Id(s1.info.id));
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  EXPECT_NE(fresh->info.id, s1.info.id);
  EXPECT_EQ(a_.sessions->Get(session::SessionKey::Id(s1.info.id)).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(a_.sessions->Get(session::SessionKey::Cookie(fresh->cookie))->attributes.at("k"), "1");
  EXPECT_EQ(a_.sessions->ListUserSessions("dave")->size(), 3u);

  absl::StatusOr<uint32_t> destroyed =
      a_.sessions->DestroyUserSessions("dave", session::SessionKey::Id(s2.info.id));
  ASSERT_TRUE(destroyed.ok()) << destroyed.status();
  EXPECT_EQ(*destroyed, 2u);
  absl::StatusOr<std::vector<session::SessionInfo>> left = b_.sessions->ListUserSessions("dave");
  ASSERT_TRUE(left.ok());
  ASSERT_EQ(left->size(), 1u);
  EXPECT_EQ((*left)[0].id, s2.info.id);
  EXPECT_EQ(b_.sessions->Get(session::SessionKey::Id(s3.info.id)).status().code(),
            absl::StatusCode::kNotFound);
}

// The interleavings of tests/support/logout_race_scenarios.h, with `a` and
// `b` two sidecars sharing the Redis.
TEST_F(RedisSessionManagerTest, CreateStoppedBeforeItsWriteDoesNotSurvive) {
  races::CreateStoppedBeforeItsWriteDoesNotSurvive(*a_.sessions, *b_.sessions);
}
TEST_F(RedisSessionManagerTest, CreateStoppedAfterItsWriteDoesNotSurvive) {
  races::CreateStoppedAfterItsWriteDoesNotSurvive(*a_.sessions, *b_.sessions);
}
TEST_F(RedisSessionManagerTest, RegenerateStoppedBeforeRetiringDoesNotSurvive) {
  races::RegenerateStoppedBeforeRetiringDoesNotSurvive(*a_.sessions, *b_.sessions);
}
TEST_F(RedisSessionManagerTest, RegenerateInsideTheLogoutIsFollowed) {
  races::RegenerateInsideTheLogoutIsFollowed(*a_.sessions, *b_.sessions);
}
TEST_F(RedisSessionManagerTest, RegenerateKeepsAnUpdateThatLandsDuringTheCopy) {
  races::RegenerateKeepsAnUpdateThatLandsDuringTheCopy(*a_.sessions, *b_.sessions);
}
TEST_F(RedisSessionManagerTest, RegenerateGivesUpOnASessionThatNeverSettles) {
  races::RegenerateGivesUpOnASessionThatNeverSettles(*a_.sessions, *b_.sessions);
}

TEST_F(RedisSessionManagerTest, ListingsAndLogoutEverywherePageThroughTheIndex) {
  session::Session kept = MustCreate(*a_.sessions, "erin");
  std::vector<std::string> made = {kept.info.id};
  for (int i = 0; i < 250; ++i) made.push_back(MustCreate(*(i % 2 ? a_ : b_).sessions, "erin").info.id);
  std::vector<std::string> listed;
  std::string token;
  int pages = 0;
  do {
    absl::StatusOr<session::UserSessionsPage> page =
        (pages % 2 ? a_ : b_).sessions->ListUserSessionsPage("erin", token, 40);
    ASSERT_TRUE(page.ok()) << page.status();
    EXPECT_LE(page->sessions.size(), 40u + 10u) << "a page grows only by ties";
    for (const session::SessionInfo& info : page->sessions) listed.push_back(info.id);
    token = page->next_page_token;
  } while (!token.empty() && ++pages < 100);
  std::sort(listed.begin(), listed.end());
  std::sort(made.begin(), made.end());
  EXPECT_EQ(listed, made) << "every session once, across pages and instances";
  EXPECT_EQ(b_.sessions->ListUserSessionsPage("erin", "not-a-token", 40).status().code(),
            absl::StatusCode::kInvalidArgument);

  absl::StatusOr<uint32_t> destroyed =
      b_.sessions->DestroyUserSessions("erin", session::SessionKey::Id(kept.info.id));
  ASSERT_TRUE(destroyed.ok()) << destroyed.status();
  EXPECT_EQ(*destroyed, 250u);
  absl::StatusOr<std::vector<session::SessionInfo>> left = a_.sessions->ListUserSessions("erin");
  ASSERT_TRUE(left.ok());
  ASSERT_EQ(left->size(), 1u);
  EXPECT_EQ((*left)[0].id, kept.info.id);
}

TEST_F(RedisSessionManagerTest, NothingInRedisOrOnTheWireIsReadable) {
  RedisServer* server = SharedRedisServer();
  TempDir dir;
  SubprocessOptions mo;
  mo.argv = {"redis-cli", "-p", std::to_string(server->port()), "monitor"};
  mo.log_path = dir.File("monitor.log");
  absl::StatusOr<Subprocess> monitor = Subprocess::Start(mo);
  ASSERT_TRUE(monitor.ok()) << monitor.status();
  ASSERT_TRUE(WaitFor([&] { return absl::StrContains(monitor->ReadLog(), "OK"); }));

  session::Session s = MustCreate(*a_.sessions, kUserId, {{"note", kMarker}, {"other", "plain"}});
  session::UpdateParams u;
  u.set = {{"more", absl::StrCat(kMarker, "-updated")}};
  ASSERT_TRUE(b_.sessions->Update(session::SessionKey::Id(s.info.id), u).ok());
  ASSERT_TRUE(b_.sessions->Get(session::SessionKey::Cookie(s.cookie)).ok());
  ASSERT_EQ(a_.sessions->ListUserSessions(kUserId)->size(), 1u);
  redis::RedisOptOutStore opt_out_store(a_.client.get(), prefix_);
  OptOutManager opt_outs(&opt_out_store, keyring_.get(), &clock_, absl::Hours(24 * 365));
  ASSERT_TRUE(opt_outs.Set(kUserId, true, std::nullopt).ok());
  ASSERT_TRUE(opt_outs.Get(kUserId).value_or(false));
  absl::StatusOr<session::Session> regenerated = a_.sessions->Regenerate(session::SessionKey::Id(s.info.id));
  ASSERT_TRUE(regenerated.ok());

  // Everything stored, by every means a reader of Redis has.
  int keys = 0;
  const std::string dump = DumpEverything(*a_.client, prefix_, &keys);
  EXPECT_GE(keys, 4) << "session, tombstone, user index, opt-out:\n" << dump;
  EXPECT_TRUE(absl::StrContains(dump, "s:{" + regenerated->info.id + "}"))
      << "the dump sees the session";
  EXPECT_FALSE(absl::StrContains(dump, kMarker));
  EXPECT_FALSE(absl::StrContains(dump, kUserId));
  EXPECT_FALSE(absl::StrContains(dump, "user-5d2b"));
  const RunResult scan = server->Cli({"--scan", "--pattern", prefix_ + "*"});
  EXPECT_EQ(scan.exit_status, 0);
  EXPECT_FALSE(absl::StrContains(scan.out, kUserId));

  // And everything said to Redis, as MONITOR shows it.
  ASSERT_TRUE(a_.client->Call({"ECHO", "monitor-end"}).ok());
  ASSERT_TRUE(WaitFor([&] { return absl::StrContains(monitor->ReadLog(), "monitor-end"); }));
  monitor->Kill();
  const std::string wire = monitor->ReadLog();
  EXPECT_TRUE(absl::StrContains(wire, "EVALSHA")) << "MONITOR saw the traffic";
  EXPECT_FALSE(absl::StrContains(wire, kMarker));
  EXPECT_FALSE(absl::StrContains(wire, kUserId));
  EXPECT_FALSE(absl::StrContains(wire, "user-5d2b"));
}

TEST_F(RedisSessionManagerTest, AValueMovedToAnotherFieldOrSessionDoesNotOpen) {
  session::Session s = MustCreate(*a_.sessions, "erin", {{"note", "secret"}, {"other", "x"}});
  session::Session victim = MustCreate(*a_.sessions, "frank", {{"note", "mine"}});
  RedisClient& raw = *a_.client;
  const std::string key = a_.store->SessionKey(s.info.id);
  const std::string sealed = raw.Call({"HGET", key, "a:note"})->str;
  ASSERT_FALSE(sealed.empty());

  // Into another session's same attribute.
  ASSERT_TRUE(raw.Call({"HSET", a_.store->SessionKey(victim.info.id), "a:note", sealed}).ok());
  EXPECT_EQ(b_.sessions->Get(session::SessionKey::Id(victim.info.id)).status().code(),
            absl::StatusCode::kNotFound);
  // Into another attribute of the same session.
  ASSERT_TRUE(raw.Call({"HSET", key, "a:other", sealed}).ok());
  EXPECT_EQ(b_.sessions->Get(session::SessionKey::Id(s.info.id)).status().code(),
            absl::StatusCode::kNotFound);
}

// What a Redis writer may try on the metadata, read by an instance that
// counts the causes.
class RedisMetadataSealTest : public RedisSessionManagerTest {
 protected:
  void SetUp() override {
    RedisSessionManagerTest::SetUp();
    c_ = MakeSidecar(&events_);
    ASSERT_NE(c_.sessions, nullptr);
  }

  std::string Field(const session::Session& s, const std::string& field) {
    absl::StatusOr<redis::Reply> r = a_.client->Call({"HGET", a_.store->SessionKey(s.info.id), field});
    EXPECT_TRUE(r.ok() && r->is_string()) << field;
    return r.ok() ? r->str : "";
  }
  void SetField(const session::Session& s, const std::string& field, const std::string& value) {
    ASSERT_TRUE(a_.client->Call({"HSET", a_.store->SessionKey(s.info.id), field, value}).ok());
  }

  RecordingEvents events_;
  Sidecar c_;
};

TEST_F(RedisMetadataSealTest, ARaisedAbsoluteExpiryIsRefused) {
  session::Session s = MustCreate(*a_.sessions, "gina", {{"k", "v"}});
  ASSERT_TRUE(c_.sessions->Get(session::SessionKey::Id(s.info.id)).ok());
  // An immortal session, as far as the scripts can tell.
  SetField(s, "m:abs", std::to_string(absl::ToUnixMicros(absl::Now() + absl::Hours(24 * 3650))));
  EXPECT_EQ(c_.sessions->Get(session::SessionKey::Cookie(s.cookie)).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(c_.sessions->Touch(session::SessionKey::Id(s.info.id)).status().code(),
            absl::StatusCode::kNotFound);
  session::UpdateParams u;
  u.set = {{"k", "w"}};
  EXPECT_EQ(c_.sessions->Update(session::SessionKey::Id(s.info.id), u).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(c_.sessions->Regenerate(session::SessionKey::Id(s.info.id)).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(events_.not_found(session::NotFoundCause::kTamperedMetadata), 4);
  EXPECT_EQ(events_.not_found(session::NotFoundCause::kUndecryptable), 0);
  // A longer idle timeout is refused the same way.
  session::Session t = MustCreate(*a_.sessions, "gina");
  SetField(t, "m:idle", std::to_string(absl::ToInt64Microseconds(absl::Hours(24 * 365))));
  EXPECT_EQ(c_.sessions->Get(session::SessionKey::Id(t.info.id)).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(events_.not_found(session::NotFoundCause::kTamperedMetadata), 5);
}

TEST_F(RedisMetadataSealTest, AnotherOwnerIsRefusedAndNotListed) {
  session::Session s = MustCreate(*a_.sessions, "hank", {{"k", "v"}});
  session::Session mallory = MustCreate(*a_.sessions, "mallory");
  // Filed under mallory, index entry and all.
  SetField(s, "m:user", Field(mallory, "m:user"));
  ASSERT_TRUE(a_.client
                  ->Call({"ZADD", a_.store->UserIndexKey(Field(mallory, "m:user")),
                          std::to_string(absl::ToUnixMicros(s.info.absolute_expiry)), s.info.id})
                  .ok());
  EXPECT_EQ(c_.sessions->Get(session::SessionKey::Id(s.info.id)).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(events_.not_found(session::NotFoundCause::kTamperedMetadata), 1);
  absl::StatusOr<std::vector<session::SessionInfo>> listed = c_.sessions->ListUserSessions("mallory");
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].id, mallory.info.id);
  // Made anonymous (out of every index): refused too.
  session::Session u = MustCreate(*a_.sessions, "hank");
  ASSERT_TRUE(a_.client->Call({"HSET", a_.store->SessionKey(u.info.id), "m:user", "", "m:uenv", ""}).ok());
  EXPECT_EQ(c_.sessions->Get(session::SessionKey::Id(u.info.id)).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(events_.not_found(session::NotFoundCause::kTamperedMetadata), 2);
}

TEST_F(RedisMetadataSealTest, ASessionWithoutASealOrWithAnotherSessionsIsRefused) {
  // A session as the previous release wrote it: no m:seal.
  session::Session old = MustCreate(*a_.sessions, "ivan");
  ASSERT_TRUE(a_.client->Call({"HDEL", a_.store->SessionKey(old.info.id), "m:seal"}).ok());
  EXPECT_EQ(c_.sessions->Get(session::SessionKey::Id(old.info.id)).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(events_.not_found(session::NotFoundCause::kTamperedMetadata), 1);
  // Another session's seal with its times: bound to the other id.
  session::Session s = MustCreate(*a_.sessions, "ivan");
  session::Session donor = MustCreate(*a_.sessions, "ivan");
  for (const char* field : {"m:seal", "m:created", "m:abs", "m:idle"}) {
    SetField(s, field, Field(donor, field));
  }
  EXPECT_EQ(c_.sessions->Get(session::SessionKey::Id(s.info.id)).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(events_.not_found(session::NotFoundCause::kTamperedMetadata), 2);
  EXPECT_EQ(events_.count("decrypt_failed:auth_failed"), 1);
  // Untouched sessions are served.
  EXPECT_TRUE(c_.sessions->Get(session::SessionKey::Id(donor.info.id)).ok());
}

TEST_F(RedisMetadataSealTest, KeyCheckValuesAgreeOrNameTheMismatchingKeyId) {
  RedisClient* raw = a_.client.get();
  absl::StatusOr<std::vector<std::string>> first = redis::CheckKeys(raw, prefix_, *keyring_);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->empty());
  absl::StatusOr<redis::Reply> stored = raw->Call({"GET", redis::KeyCheckKey(prefix_, "k1")});
  ASSERT_TRUE(stored.ok() && stored->is_string());
  EXPECT_EQ(stored->str, crypto::Keyring::CheckValue(keyring_->primary()));

  // Another instance with the same key under k1 (and a key of its own).
  absl::StatusOr<std::unique_ptr<crypto::Keyring>> same = crypto::Keyring::Create(
      {{"k2", std::string(32, '2')}, {"k1", std::string(keyring_->primary().master)}});
  ASSERT_TRUE(same.ok());
  absl::StatusOr<std::vector<std::string>> agree = redis::CheckKeys(raw, prefix_, **same);
  ASSERT_TRUE(agree.ok()) << agree.status();
  EXPECT_TRUE(agree->empty());

  // And one with other key bytes under k1.
  absl::StatusOr<std::unique_ptr<crypto::Keyring>> impostor =
      crypto::Keyring::Create({{"k1", std::string(32, 'i')}, {"k2", std::string(32, '2')}});
  ASSERT_TRUE(impostor.ok());
  absl::StatusOr<std::vector<std::string>> mismatched =
      redis::CheckKeys(raw, prefix_, **impostor);
  ASSERT_TRUE(mismatched.ok()) << mismatched.status();
  EXPECT_EQ(*mismatched, std::vector<std::string>{"k1"});
  // The first value stays: the impostor published nothing over it.
  EXPECT_EQ(raw->Call({"GET", redis::KeyCheckKey(prefix_, "k1")})->str, stored->str);

  // What the first instance wrote fails to open on the impostor as a key
  // mismatch, not as tampering.
  session::Session s = MustCreate(*a_.sessions, "judy", {{"k", "v"}});
  crypto::KeyMismatches known;
  known.Set(*mismatched);
  crypto::Sealer impostor_sealer(impostor->get(), random_.get(), &known);
  Sidecar other = MakeSidecar(&events_, &impostor_sealer);
  ASSERT_NE(other.sessions, nullptr);
  EXPECT_EQ(other.sessions->Get(session::SessionKey::Id(s.info.id)).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_GE(events_.count("decrypt_failed:key_mismatch"), 1);
  EXPECT_EQ(events_.count("decrypt_failed:auth_failed"), 0);
  EXPECT_EQ(events_.not_found(session::NotFoundCause::kTamperedMetadata), 0);
}

TEST_F(RedisMetadataSealTest, TheAsynchronousCheckAgreesAndALaterCheckSeesAChangedValue) {
  absl::Notification done;
  absl::StatusOr<std::vector<std::string>> result;
  redis::CheckKeysAsync(a_.client.get(), prefix_, *keyring_,
                        [&](absl::StatusOr<std::vector<std::string>> r) {
                          result = std::move(r);
                          done.Notify();
                        });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->empty());
  ASSERT_TRUE(a_.client->Call({"SET", redis::KeyCheckKey(prefix_, "k1"), "0000000000000000"}).ok());
  absl::StatusOr<std::vector<std::string>> after = redis::CheckKeys(a_.client.get(), prefix_, *keyring_);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(*after, std::vector<std::string>{"k1"});
}

}  // namespace
}  // namespace stateside::testing
