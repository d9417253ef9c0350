// The rewrap sweep on a real redis-server: a rotation (write under
// k1, rotate to k2,k1, sweep, remove k1) loses no session and no opt-out; the
// sweep never overwrites a concurrent write, continues where it was stopped,
// reseals version-1 session values under the primary as version 2, and
// running it again is harmless.
#include "sidecar/redis/rewrap_sweep.h"

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sidecar/analytics/opt_out_manager.h"
#include "sidecar/common/clock.h"
#include "sidecar/crypto/cookie.h"
#include "sidecar/crypto/envelope.h"
#include "sidecar/crypto/keyring.h"
#include "sidecar/crypto/random.h"
#include "sidecar/redis/redis_opt_out_store.h"
#include "sidecar/redis/redis_session_store.h"
#include "sidecar/session/session_manager.h"
#include "tests/integration/redis/redis_fixture.h"
#include "tests/integration/redis/rewrap_node.h"
#include "tests/support/test_secrets.h"
#include "tests/support/wait.h"

namespace stateside::testing {
namespace {

using redis::RewrapProgress;
using redis::RewrapSweep;

using Node = RewrapNode;

class RewrapSweepTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(SharedRedisServer(), nullptr);
    client_ = ConnectedClient(SharedRedisServer()->url());
    ASSERT_NE(client_, nullptr);
    random_ = crypto::NewSecureRandom();
    absl::StatusOr<std::unique_ptr<crypto::CookieSigner>> signer =
        crypto::CookieSigner::Create({std::string(32, 's')});
    ASSERT_TRUE(signer.ok()) << signer.status();
    signer_ = *std::move(signer);
    prefix_ = UniquePrefix();
  }

  // `keys`: "k2:<hex>,k1:<hex>" as SESSION_ENCRYPTION_KEYS.
  std::unique_ptr<Node> MakeNode(const std::string& keys, crypto::SealerOptions sealing = {}) {
    return MakeRewrapNode(client_.get(), prefix_, keys, random_.get(), signer_.get(), &clock_,
                          sealing);
  }

  // How many sealed session fields (attributes, m:uenv, m:seal) of this
  // test's sessions are in each envelope version.
  std::map<int, int> SessionFieldVersions() {
    std::map<int, int> versions;
    absl::StatusOr<redis::Reply> keys =
        client_->Call(redis::RedisCommand({"KEYS", absl::StrCat(prefix_, "s:*")}));
    EXPECT_TRUE(keys.ok()) << keys.status();
    if (!keys.ok()) return versions;
    for (const redis::Reply& key : keys->elements) {
      absl::StatusOr<redis::Reply> all = client_->Call(redis::RedisCommand({"HGETALL", key.str}));
      EXPECT_TRUE(all.ok()) << all.status();
      if (!all.ok()) continue;
      for (size_t i = 0; i + 1 < all->elements.size(); i += 2) {
        const std::string& field = all->elements[i].str;
        if (absl::StartsWith(field, "a:") || field == "m:uenv" || field == "m:seal") {
          versions[crypto::Sealer::VersionOf(all->elements[i + 1].str)] += 1;
        }
      }
    }
    return versions;
  }

  std::unique_ptr<RewrapSweep> MakeSweep(const Node& node, double rate = 100000) {
    redis::RewrapOptions options;
    options.prefix = prefix_;
    options.items_per_second = rate;
    options.owner = "test";
    return std::make_unique<RewrapSweep>(client_.get(), node.sealer.get(), &clock_,
                                         std::move(options));
  }

  // Waits for the sweep to leave "running"; its final progress.
  RewrapProgress Finish(RewrapSweep& sweep) {
    RewrapProgress last;
    EXPECT_TRUE(WaitFor(
        [&] {
          absl::StatusOr<RewrapProgress> p = sweep.Progress();
          if (p.ok()) last = *p;
          return p.ok() && p->state != "running";
        },
        absl::Seconds(60)));
    return last;
  }

  // Runs one pass to its end, which must be "done" without errors.
  RewrapProgress PassWithoutErrors(RewrapSweep& sweep) {
    EXPECT_TRUE(sweep.Start().ok());
    const RewrapProgress done = Finish(sweep);
    EXPECT_EQ(done.state, "done") << done.last_error;
    EXPECT_EQ(done.errors, 0u) << done.last_error;
    return done;
  }

  // n sessions of users u0..u{n-1} with two attributes each, and n opt-outs.
  std::vector<session::Session> Populate(Node& node, int n) {
    std::vector<session::Session> out;
    for (int i = 0; i < n; ++i) {
      session::CreateParams p;
      p.user_id = absl::StrCat("u", i);
      p.attributes = {{"cart", absl::StrCat("[", i, "]")}, {"theme", "dark"}};
      absl::StatusOr<session::Session> s = node.sessions->Create(p);
      EXPECT_TRUE(s.ok()) << s.status();
      if (s.ok()) out.push_back(*std::move(s));
      EXPECT_TRUE(node.opt_outs->Set(absl::StrCat("subject-", i), true, std::nullopt).ok());
    }
    return out;
  }

  // Everything written by Populate is readable through `node`.
  void ExpectAllReadable(Node& node, const std::vector<session::Session>& sessions) {
    for (size_t i = 0; i < sessions.size(); ++i) {
      absl::StatusOr<session::Session> got = node.sessions->Get(session::SessionKey::Id(sessions[i].info.id));
      ASSERT_TRUE(got.ok()) << "session " << i << ": " << got.status();
      EXPECT_EQ(got->info.user_id, absl::StrCat("u", i));
      EXPECT_EQ(got->attributes.at("theme"), "dark");
      absl::StatusOr<std::vector<session::SessionInfo>> listed =
          node.sessions->ListUserSessions(absl::StrCat("u", i));
      ASSERT_TRUE(listed.ok()) << listed.status();
      EXPECT_EQ(listed->size(), 1u) << "u" << i << " is listed under the new key's tag";
      EXPECT_TRUE(node.opt_outs->Get(absl::StrCat("subject-", i)).value_or(false))
          << "opt-out " << i;
    }
  }

  SystemClock clock_;
  std::unique_ptr<redis::RedisClient> client_;
  std::unique_ptr<RandomSource> random_;
  std::unique_ptr<crypto::CookieSigner> signer_;
  std::string prefix_;
  const std::string k1_ = absl::StrCat("k1:", kTestKeyHex);
  const std::string k2_ = absl::StrCat("k2:", kOtherTestKeyHex);
  const std::string k2_k1_ = absl::StrCat(k2_, ",", k1_);  // rotated
};

TEST_F(RewrapSweepTest, ARotationWithTheSweepLosesNoSessionAndNoOptOut) {
  const std::vector<session::Session> sessions = Populate(*MakeNode(k1_), 40);

  // Without the sweep, k2 alone reads none of it: the test can fail.
  std::unique_ptr<Node> k2_only = MakeNode(k2_);
  EXPECT_FALSE(k2_only->sessions->Get(session::SessionKey::Id(sessions[0].info.id)).ok());
  EXPECT_FALSE(k2_only->opt_outs->Get("subject-0").value_or(true));

  std::unique_ptr<Node> rotated = MakeNode(k2_k1_);
  std::unique_ptr<RewrapSweep> sweep = MakeSweep(*rotated);
  absl::StatusOr<RewrapProgress> started = sweep->Start();
  ASSERT_TRUE(started.ok()) << started.status();
  const RewrapProgress done = Finish(*sweep);
  EXPECT_EQ(done.state, "done") << done.last_error;
  EXPECT_EQ(done.primary, "k2");
  // SCAN may also return the flags re-filed under k2 during the pass.
  EXPECT_GE(done.sessions, 40u);
  EXPECT_GE(done.opt_outs, 40u);
  EXPECT_EQ(done.errors, 0u) << done.last_error;
  ASSERT_EQ(done.keys.count("k1"), 1u);
  // Per session: two attributes, the sealed user id and the metadata seal;
  // per opt-out: one.
  EXPECT_EQ(done.keys.at("k1").found, 40u * 4 + 40u);
  EXPECT_EQ(done.keys.at("k1").rewrapped, 40u * 4 + 40u);
  EXPECT_EQ(done.keys.at("k1").left, 0u);

  ExpectAllReadable(*k2_only, sessions);
}

TEST_F(RewrapSweepTest, RunningItAgainIsHarmlessAndFindsNothingUnderTheOldKey) {
  const std::vector<session::Session> sessions = Populate(*MakeNode(k1_), 5);
  std::unique_ptr<Node> rotated = MakeNode(k2_k1_);
  std::unique_ptr<RewrapSweep> sweep = MakeSweep(*rotated);
  ASSERT_TRUE(sweep->Start().ok());
  ASSERT_EQ(Finish(*sweep).state, "done");
  ASSERT_TRUE(sweep->Start().ok());
  const RewrapProgress again = Finish(*sweep);
  EXPECT_EQ(again.state, "done");
  EXPECT_EQ(again.sessions, 5u) << "a new pass, not added to the old one";
  EXPECT_EQ(again.opt_outs, 5u);
  EXPECT_EQ(again.keys.count("k1"), 0u);
  EXPECT_EQ(again.keys.at("k2").found, 5u * 4 + 5u);
  EXPECT_EQ(again.keys.at("k2").rewrapped, 0u);
  ExpectAllReadable(*MakeNode(k2_), sessions);
}

TEST_F(RewrapSweepTest, VersionOneValuesUnderThePrimaryAreResealedAsVersionTwo) {
  crypto::SealerOptions earlier;
  earlier.seal_version = 1;
  const std::vector<session::Session> sessions = Populate(*MakeNode(k1_, earlier), 10);
  ASSERT_EQ(SessionFieldVersions(), (std::map<int, int>{{1, 10 * 4}}))
      << "written as an earlier release wrote them";

  std::unique_ptr<Node> node = MakeNode(k1_);
  ExpectAllReadable(*node, sessions);  // version 1 opens as it is
  std::unique_ptr<RewrapSweep> sweep = MakeSweep(*node);
  ASSERT_TRUE(sweep->Start().ok());
  const RewrapProgress done = Finish(*sweep);
  EXPECT_EQ(done.state, "done") << done.last_error;
  EXPECT_EQ(done.errors, 0u) << done.last_error;
  // Every session value moved to version 2 under the same key; an opt-out
  // subject under the primary stays as it is (its flag keeps its tag).
  EXPECT_EQ(done.keys.at("k1").found, 10u * 4 + 10u);
  EXPECT_EQ(done.keys.at("k1").rewrapped, 10u * 4);
  EXPECT_EQ(done.keys.at("k1").left, 0u);
  EXPECT_EQ(SessionFieldVersions(), (std::map<int, int>{{2, 10 * 4}}));
  ExpectAllReadable(*node, sessions);

  ASSERT_TRUE(sweep->Start().ok());
  EXPECT_EQ(Finish(*sweep).keys.at("k1").rewrapped, 0u) << "nothing left to reseal";
}

// A version-1 value under the primary's id that does not open (sealed under
// other bytes for that id, or tampered) needs no old key: it is counted as
// unopenable, not as left under the primary and not as a Redis error.
TEST_F(RewrapSweepTest, AValueUnderThePrimaryThatDoesNotOpenIsUnopenableNotLeft) {
  crypto::SealerOptions earlier;
  earlier.seal_version = 1;
  Populate(*MakeNode(absl::StrCat("k1:", kOtherTestKeyHex), earlier), 3);
  ASSERT_EQ(SessionFieldVersions(), (std::map<int, int>{{1, 3 * 4}}));

  std::unique_ptr<Node> node = MakeNode(k1_);
  std::unique_ptr<RewrapSweep> sweep = MakeSweep(*node);
  const RewrapProgress done = PassWithoutErrors(*sweep);
  ASSERT_EQ(done.keys.count("k1"), 1u);
  EXPECT_EQ(done.keys.at("k1").found, 3u * 4 + 3u);
  EXPECT_EQ(done.keys.at("k1").rewrapped, 0u);
  EXPECT_EQ(done.keys.at("k1").unopenable, 3u * 4);
  EXPECT_EQ(done.keys.at("k1").left, 0u);
  EXPECT_THAT(done.last_error, ::testing::HasSubstr("did not open"));
  EXPECT_EQ(SessionFieldVersions(), (std::map<int, int>{{1, 3 * 4}})) << "nothing resealed";
  // The count is saved with the rest and reported.
  absl::StatusOr<RewrapProgress> saved = sweep->Progress();
  ASSERT_TRUE(saved.ok()) << saved.status();
  EXPECT_THAT(redis::RewrapProgressJson(*saved), ::testing::HasSubstr("\"unopenable\":12"));
}

// Under an old key the same values are also left: that key's right bytes
// may still open them, so it must not go.
TEST_F(RewrapSweepTest, AValueUnderAnOldKeyThatDoesNotOpenIsLeftUnderIt) {
  // k1 with k2's bytes: what another instance would seal under a bad k1.
  Populate(*MakeNode(absl::StrCat("k1:", kOtherTestKeyHex)), 2);
  std::unique_ptr<Node> rotated = MakeNode(k2_k1_);
  const RewrapProgress done = PassWithoutErrors(*MakeSweep(*rotated));
  ASSERT_EQ(done.keys.count("k1"), 1u);
  EXPECT_EQ(done.keys.at("k1").unopenable, 2u * 4 + 2u);
  EXPECT_EQ(done.keys.at("k1").left, 2u * 4 + 2u);
  EXPECT_EQ(done.keys.at("k1").rewrapped, 0u);
}

TEST_F(RewrapSweepTest, AnInterruptedSweepContinuesFromItsSavedCursor) {
  const std::vector<session::Session> sessions = Populate(*MakeNode(k1_), 60);
  std::unique_ptr<Node> rotated = MakeNode(k2_k1_);
  uint64_t saved_sessions = 0;
  {
    // 40 keys a second: a batch is 40 keys, about a second each.
    std::unique_ptr<RewrapSweep> first = MakeSweep(*rotated, 40);
    ASSERT_TRUE(first->Start().ok());
    ASSERT_TRUE(WaitFor(
        [&] {
          absl::StatusOr<RewrapProgress> p = first->Progress();
          return p.ok() && p->sessions + p->opt_outs > 0 && p->cursor != "0";
        },
        absl::Seconds(30)));
    first->Stop();  // as a sidecar restart would
  }
  std::unique_ptr<RewrapSweep> second = MakeSweep(*rotated);
  absl::StatusOr<RewrapProgress> saved = second->Progress();
  ASSERT_TRUE(saved.ok()) << saved.status();
  EXPECT_EQ(saved->state, "interrupted");
  EXPECT_NE(saved->cursor, "0");
  saved_sessions = saved->sessions + saved->opt_outs;
  EXPECT_GT(saved_sessions, 0u);
  EXPECT_LT(saved_sessions, 120u);

  absl::StatusOr<RewrapProgress> resumed = second->Start();
  ASSERT_TRUE(resumed.ok());
  EXPECT_EQ(resumed->cursor, saved->cursor) << "continued, not restarted";
  const RewrapProgress done = Finish(*second);
  EXPECT_EQ(done.state, "done");
  EXPECT_GE(done.sessions + done.opt_outs, 120u) << "the saved counts carried on";
  EXPECT_EQ(done.keys.at("k1").left, 0u);
  ExpectAllReadable(*MakeNode(k2_), sessions);
}

TEST_F(RewrapSweepTest, ConcurrentUpdatesAreNeverOverwritten) {
  const std::vector<session::Session> sessions = Populate(*MakeNode(k1_), 30);
  std::unique_ptr<Node> rotated = MakeNode(k2_k1_);
  std::unique_ptr<RewrapSweep> sweep = MakeSweep(*rotated, 200);
  ASSERT_TRUE(sweep->Start().ok());
  // Every session's cart is rewritten (under k2) while the sweep runs; the
  // last write of each must be what is read in the end.
  std::atomic<int> failures{0};
  for (int round = 0; round < 5; ++round) {
    for (size_t i = 0; i < sessions.size(); ++i) {
      session::UpdateParams u;
      u.set = {{"cart", absl::StrCat("round-", round)}};
      if (!rotated->sessions->Update(session::SessionKey::Id(sessions[i].info.id), u).ok()) ++failures;
    }
  }
  const RewrapProgress done = Finish(*sweep);
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(done.state, "done");
  EXPECT_EQ(done.keys.at("k1").left, 0u);
  std::unique_ptr<Node> k2_only = MakeNode(k2_);
  for (const session::Session& s : sessions) {
    absl::StatusOr<session::Session> got = k2_only->sessions->Get(session::SessionKey::Id(s.info.id));
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->attributes.at("cart"), "round-4");
  }
  ExpectAllReadable(*k2_only, sessions);
}

TEST_F(RewrapSweepTest, AnOptOutReadUnderAnOldKeyIsRefiledWithItsRemainingTtl) {
  std::unique_ptr<Node> old_node = MakeNode(k1_);
  ASSERT_TRUE(old_node->opt_outs->Set("alice", true, absl::Hours(3)).ok());
  std::unique_ptr<Node> rotated = MakeNode(k2_k1_);
  EXPECT_TRUE(rotated->opt_outs->Get("alice").value_or(false));
  const std::string new_key = rotated->opt_out_store->Key(
      crypto::Keyring::Blind(rotated->keyring->primary(), "optout", "alice"));
  absl::StatusOr<redis::Reply> pttl = client_->Call(redis::RedisCommand({"PTTL", new_key}));
  ASSERT_TRUE(pttl.ok());
  EXPECT_GT(pttl->integer, absl::ToInt64Milliseconds(absl::Hours(3) - absl::Minutes(1)));
  EXPECT_LE(pttl->integer, absl::ToInt64Milliseconds(absl::Hours(3)));
  EXPECT_TRUE(MakeNode(k2_)->opt_outs->Get("alice").value_or(false));
}

TEST_F(RewrapSweepTest, AFlagWithoutASealedSubjectIsCountedNotLost) {
  std::unique_ptr<Node> old_node = MakeNode(k1_);
  // As a sidecar without sealed subjects wrote it.
  const std::string tag = crypto::Keyring::Blind(old_node->keyring->primary(), "optout", "bob");
  ASSERT_TRUE(old_node->opt_out_store->Set(tag, true, clock_.Now(),
                                           clock_.Now() + absl::Hours(1)).ok());
  std::unique_ptr<Node> rotated = MakeNode(k2_k1_);
  std::unique_ptr<RewrapSweep> sweep = MakeSweep(*rotated);
  ASSERT_TRUE(sweep->Start().ok());
  const RewrapProgress done = Finish(*sweep);
  EXPECT_EQ(done.unsealed_opt_outs, 1u);
  EXPECT_TRUE(rotated->opt_outs->Get("bob").value_or(false)) << "a read re-files it";
  EXPECT_TRUE(MakeNode(k2_)->opt_outs->Get("bob").value_or(false));
}

// The compare-and-set itself, without a race to win: a value that is no
// longer the bytes the sweep read is left alone, in sessions and opt-outs.
TEST_F(RewrapSweepTest, TheScriptsReplaceOnlyTheBytesThatWereRead) {
  const std::string key = absl::StrCat(prefix_, "s:{cas}");
  ASSERT_TRUE(client_->Call(redis::RedisCommand({"HSET", key, "m:ver", "1", "m:sz", "10",
                                                 "a:x", "written-by-update", "a:y", "old"}))
                  .ok());
  auto script = redis::RedisScript::Create(redis::kRewrapSessionScript);
  absl::StatusOr<redis::Reply> reply = client_->Call(script->Call(
      {key}, {"", "", "a:x", "what-the-sweep-read", "rewrapped-x", "a:y", "old", "new!"}));
  ASSERT_TRUE(reply.ok()) << reply.status();
  ASSERT_EQ(reply->elements.size(), 5u);
  EXPECT_EQ(reply->elements[3].integer, 0) << "a:x changed since it was read";
  EXPECT_EQ(reply->elements[4].integer, 1);
  absl::StatusOr<redis::Reply> fields =
      client_->Call(redis::RedisCommand({"HMGET", key, "a:x", "a:y", "m:sz", "m:ver"}));
  ASSERT_TRUE(fields.ok());
  EXPECT_EQ(fields->elements[0].str, "written-by-update");
  EXPECT_EQ(fields->elements[1].str, "new!");
  EXPECT_EQ(fields->elements[2].str, "11") << "m:sz follows the envelope's size";
  EXPECT_EQ(fields->elements[3].str, "1") << "a rewrap is not an update";

  // A tombstone or a vanished session is never written to.
  const std::string gone = absl::StrCat(prefix_, "s:{gone}");
  reply = client_->Call(script->Call({gone}, {"", "", "a:x", "", "rewrapped"}));
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->elements[0].integer, 0);
  EXPECT_EQ(client_->Call(redis::RedisCommand({"EXISTS", gone}))->integer, 0);

  const std::string from = absl::StrCat(prefix_, "o:{from}");
  const std::string to = absl::StrCat(prefix_, "o:{to}");
  ASSERT_TRUE(client_->Call(redis::RedisCommand({"SET", from, "99 newer", "PX", "60000"})).ok());
  absl::StatusOr<int> refiled = redis::RefileOptOut(*client_, from, to, "99 older", "sealed");
  ASSERT_TRUE(refiled.ok()) << refiled.status();
  EXPECT_EQ(*refiled, 2);
  EXPECT_EQ(client_->Call(redis::RedisCommand({"GET", from}))->str, "99 newer");
  EXPECT_EQ(client_->Call(redis::RedisCommand({"EXISTS", to}))->integer, 0);
}

}  // namespace
}  // namespace stateside::testing
