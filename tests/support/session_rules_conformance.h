// The session rules' conformance suite: what SessionManager promises about
// owners, per-user caps and paged listings, run over every SessionStore
// (memory, Redis, Redis Cluster), since each rule rests on an atomic step of
// the store. Header-only, like store_conformance.h: include it from exactly
// ONE .cc per test binary and instantiate there:
//
//   INSTANTIATE_TEST_SUITE_P(Memory, SessionRulesConformanceTest,
//       ::testing::Values(SessionStoreFactory{"memory", [] {
//         return std::make_unique<MemorySessionStore>(1000); }}),
//       SessionStoreFactoryName);
//
// The factory's contract is store_conformance.h's (a fresh, empty store).
#ifndef STATESIDE_TESTS_SUPPORT_SESSION_RULES_CONFORMANCE_H_
#define STATESIDE_TESTS_SUPPORT_SESSION_RULES_CONFORMANCE_H_

#include <algorithm>
#include <atomic>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"
#include "sidecar/common/error_reason.h"
#include "sidecar/crypto/cookie.h"
#include "sidecar/crypto/envelope.h"
#include "sidecar/crypto/keyring.h"
#include "sidecar/crypto/random.h"
#include "sidecar/session/session_manager.h"
#include "tests/support/fake_clock.h"
#include "tests/support/recording_events.h"
#include "tests/support/store_conformance.h"

namespace stateside::testing {

// The store fixture's clock and fresh store, plus the session rules over it.
class SessionRulesConformanceTest : public SessionStoreConformanceTest {
 protected:
  void SetUp() override {
    SessionStoreConformanceTest::SetUp();
    if (HasFatalFailure()) return;
    random_ = crypto::NewSecureRandom();
    auto keyring = crypto::Keyring::Create({{"k1", std::string(32, 'k')}});
    ASSERT_TRUE(keyring.ok()) << keyring.status();
    keyring_ = *std::move(keyring);
    sealer_ = std::make_unique<crypto::Sealer>(keyring_.get(), random_.get());
    auto signer = crypto::CookieSigner::Create({std::string(32, 's')});
    ASSERT_TRUE(signer.ok()) << signer.status();
    signer_ = *std::move(signer);
    Rebuild(0, session::SessionLimitPolicy::kRefuse);
  }

  // A manager with this cap of sessions per user and policy at the cap.
  void Rebuild(size_t max_per_user, session::SessionLimitPolicy at_cap) {
    session::SessionPolicy policy;
    policy.idle_ttl = absl::Minutes(30);
    policy.absolute_ttl = absl::Hours(8);
    policy.limits.max_sessions_per_user = max_per_user;
    policy.limits.session_limit_policy = at_cap;
    manager_ = std::make_unique<session::SessionManager>(store_.get(), sealer_.get(),
                                                signer_.get(), random_.get(),
                                                &clock_, policy, &events_);
  }

  absl::StatusOr<session::Session> Create(const std::string& user,
                                 std::optional<uint32_t> cap = std::nullopt,
                                 std::optional<session::SessionLimitPolicy> at_cap =
                                     std::nullopt) {
    session::CreateParams params;
    params.user_id = user;
    params.attributes = {{"cart", "[" + user + "]"}};
    params.max_sessions_per_user = cap;
    params.session_limit_policy = at_cap;
    return manager_->Create(params);
  }

  // Creates one session, one second after the previous one (distinct
  // absolute expiries: a known order in the user's index).
  std::string MustCreate(const std::string& user) {
    clock_.Advance(absl::Seconds(1));
    absl::StatusOr<session::Session> s = Create(user);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? s->info.id : "";
  }

  std::vector<std::string> Listed(const std::string& user) {
    absl::StatusOr<std::vector<session::SessionInfo>> all = manager_->ListUserSessions(user);
    EXPECT_TRUE(all.ok()) << all.status();
    std::vector<std::string> ids;
    if (all.ok()) {
      for (const session::SessionInfo& info : *all) ids.push_back(info.id);
    }
    return ids;
  }

  absl::StatusCode GetCode(const std::string& id) {
    return manager_->Get(session::SessionKey::Id(id), /*touch=*/false).status().code();
  }

  static std::string ReasonOf(const absl::Status& status) {
    return PayloadOf(status, kReasonPayload).value_or("");
  }
  static std::string FieldOf(const absl::Status& status) {
    return PayloadOf(status, kFieldPayload).value_or("");
  }

  RecordingEvents events_;
  std::unique_ptr<RandomSource> random_;
  std::unique_ptr<crypto::Keyring> keyring_;
  std::unique_ptr<crypto::Sealer> sealer_;
  std::unique_ptr<crypto::CookieSigner> signer_;
  std::unique_ptr<session::SessionManager> manager_;
};

// CreateAsync, TouchAsync and DestroyAsync answer as Create, Touch and
// Destroy: the same sessions, the same codes.
TEST_P(SessionRulesConformanceTest, TheAsyncFormsAnswerAsTheBlockingOnes) {
  using session::Session;
  using session::SessionInfo;
  using session::SessionKey;
  session::CreateParams anonymous;
  anonymous.attributes = {{"cart", "[]"}};
  absl::StatusOr<Session> created = AwaitAsync<absl::StatusOr<Session>>(
      [&](auto done) { manager_->CreateAsync(anonymous, std::move(done)); });
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created->info.version, 1u);
  absl::StatusOr<Session> read = manager_->Get(SessionKey::Cookie(created->cookie));
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->attributes.at("cart"), "[]");
  // Not a user's session (several store steps): refused, nothing written.
  session::CreateParams alice;
  alice.user_id = "alice";
  absl::StatusOr<Session> owned = AwaitAsync<absl::StatusOr<Session>>(
      [&](auto done) { manager_->CreateAsync(alice, std::move(done)); });
  EXPECT_EQ(owned.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(Listed("alice").empty());
  session::CreateParams bad;
  bad.max_sessions_per_user = 0;
  EXPECT_EQ(AwaitAsync<absl::StatusOr<Session>>([&](auto done) {
              manager_->CreateAsync(bad, std::move(done));
            }).status().code(),
            manager_->Create(bad).status().code());

  const SessionKey key = SessionKey::Id(created->info.id);
  clock_.Advance(absl::Minutes(10));
  absl::StatusOr<SessionInfo> touched = AwaitAsync<absl::StatusOr<SessionInfo>>(
      [&](auto done) { manager_->TouchAsync(key, std::move(done)); });
  ASSERT_TRUE(touched.ok()) << touched.status();
  EXPECT_EQ(touched->last_access, now());
  EXPECT_EQ(touched->id, created->info.id);
  auto destroy = [&](const SessionKey& k) {
    return AwaitAsync<absl::StatusOr<bool>>(
        [&](auto done) { manager_->DestroyAsync(k, std::move(done)); });
  };
  EXPECT_EQ(destroy(SessionKey::Cookie(created->info.id + ".forged")).value_or(true), false);
  EXPECT_EQ(destroy(key).value_or(false), true);
  EXPECT_EQ(destroy(key).value_or(true), false);
  EXPECT_EQ(GetCode(created->info.id), absl::StatusCode::kNotFound);
  EXPECT_EQ(AwaitAsync<absl::StatusOr<SessionInfo>>([&](auto done) {
              manager_->TouchAsync(key, std::move(done));
            }).status().code(),
            absl::StatusCode::kNotFound);
}

// Login that keeps the cart: the anonymous session becomes alice's under a
// new id; the old id is dead, the attributes are kept, alice's index lists
// the new id.
TEST_P(SessionRulesConformanceTest, RegenerateWithAnOwnerMakesTheAnonymousSessionTheUsers) {
  absl::StatusOr<session::Session> anonymous = Create("");
  ASSERT_TRUE(anonymous.ok()) << anonymous.status();
  session::RegenerateParams login;
  login.user_id = "alice";
  absl::StatusOr<session::Session> alices =
      manager_->Regenerate(session::SessionKey::Cookie(anonymous->cookie), login);
  ASSERT_TRUE(alices.ok()) << alices.status();
  EXPECT_NE(alices->info.id, anonymous->info.id);
  EXPECT_EQ(alices->info.user_id, "alice");
  EXPECT_EQ(alices->attributes.at("cart"), "[]");
  EXPECT_EQ(GetCode(anonymous->info.id), absl::StatusCode::kNotFound);
  absl::StatusOr<session::Session> read = manager_->Get(session::SessionKey::Cookie(alices->cookie));
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->info.user_id, "alice");
  EXPECT_EQ(read->attributes.at("cart"), "[]");
  EXPECT_EQ(Listed("alice"), std::vector<std::string>{alices->info.id});
  // Logging out everywhere reaches the session that login made.
  EXPECT_EQ(manager_->DestroyUserSessions("alice", std::nullopt).value_or(0), 1u);
  EXPECT_EQ(GetCode(alices->info.id), absl::StatusCode::kNotFound);
}

TEST_P(SessionRulesConformanceTest, RegenerateKeepingTheOwnerMovesItsIndexEntry) {
  const std::string old_id = MustCreate("alice");
  session::RegenerateParams same;
  same.user_id = "alice";  // its own owner: nothing changes but the id
  absl::StatusOr<session::Session> moved = manager_->Regenerate(session::SessionKey::Id(old_id), same);
  ASSERT_TRUE(moved.ok()) << moved.status();
  EXPECT_EQ(moved->info.user_id, "alice");
  EXPECT_EQ(Listed("alice"), std::vector<std::string>{moved->info.id});
  absl::StatusOr<session::Session> again = manager_->Regenerate(session::SessionKey::Id(moved->info.id));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->info.user_id, "alice");
  EXPECT_EQ(Listed("alice"), std::vector<std::string>{again->info.id});
  EXPECT_EQ(GetCode(old_id), absl::StatusCode::kNotFound);
  EXPECT_EQ(GetCode(moved->info.id), absl::StatusCode::kNotFound);
}

TEST_P(SessionRulesConformanceTest, RegenerateCannotHandOneUsersSessionToAnother) {
  const std::string bobs = MustCreate("bob");
  session::RegenerateParams takeover;
  takeover.user_id = "alice";
  absl::Status refused = manager_->Regenerate(session::SessionKey::Id(bobs), takeover).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition) << refused;
  EXPECT_EQ(ReasonOf(refused), "SESSION_OWNED");
  EXPECT_EQ(FieldOf(refused), "user_id");
  takeover.user_id = "";  // nor make it anonymous
  EXPECT_EQ(manager_->Regenerate(session::SessionKey::Id(bobs), takeover).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(GetCode(bobs), absl::StatusCode::kOk);
  EXPECT_EQ(Listed("bob"), std::vector<std::string>{bobs});
  EXPECT_TRUE(Listed("alice").empty());
}

TEST_P(SessionRulesConformanceTest, AtTheCapRefusePolicyRefusesAndWritesNothing) {
  Rebuild(2, session::SessionLimitPolicy::kRefuse);
  const std::string first = MustCreate("alice");
  const std::string second = MustCreate("alice");
  absl::Status refused = Create("alice").status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted) << refused;
  EXPECT_EQ(ReasonOf(refused), "SESSION_LIMIT");
  EXPECT_NE(refused.message().find("STATESIDE_MAX_SESSIONS_PER_USER"),
            absl::string_view::npos)
      << refused;
  EXPECT_EQ(Listed("alice"), (std::vector<std::string>{first, second}));
  // Anonymous sessions and other users are not capped by alice's count.
  EXPECT_TRUE(Create("").ok());
  EXPECT_TRUE(Create("bob").ok());
}

TEST_P(SessionRulesConformanceTest, AtTheCapEndOldestPolicyEndsTheOldestAndKeepsTheCount) {
  Rebuild(2, session::SessionLimitPolicy::kEndOldest);
  const std::string first = MustCreate("alice");
  const std::string second = MustCreate("alice");
  const std::string third = MustCreate("alice");
  EXPECT_EQ(GetCode(first), absl::StatusCode::kNotFound);
  EXPECT_EQ(Listed("alice"), (std::vector<std::string>{second, third}));
  const std::string fourth = MustCreate("alice");
  EXPECT_EQ(GetCode(second), absl::StatusCode::kNotFound);
  EXPECT_EQ(Listed("alice"), (std::vector<std::string>{third, fourth}));
}

TEST_P(SessionRulesConformanceTest, ACallsCapAndPolicyOverrideTheSettings) {
  Rebuild(5, session::SessionLimitPolicy::kRefuse);
  const std::string first = MustCreate("alice");
  const std::string second = MustCreate("alice");
  absl::Status refused = Create("alice", 2).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted) << refused;
  EXPECT_EQ(ReasonOf(refused), "SESSION_LIMIT");
  EXPECT_EQ(PayloadOf(refused, kLimitPayload).value_or(""), "max_sessions_per_user");
  clock_.Advance(absl::Seconds(1));
  absl::StatusOr<session::Session> third = Create("alice", 2, session::SessionLimitPolicy::kEndOldest);
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_EQ(GetCode(first), absl::StatusCode::kNotFound);
  EXPECT_EQ(Listed("alice"), (std::vector<std::string>{second, third->info.id}));
  // A call may tighten the operator's cap, never lift it.
  for (uint32_t bad : {0u, 6u}) {
    absl::Status status = Create("alice", bad).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(FieldOf(status), "max_sessions_per_user") << bad;
  }
  // A per-call policy alone applies at the setting's cap.
  Rebuild(2, session::SessionLimitPolicy::kRefuse);
  clock_.Advance(absl::Seconds(1));
  absl::StatusOr<session::Session> fourth = Create("alice", std::nullopt, session::SessionLimitPolicy::kEndOldest);
  ASSERT_TRUE(fourth.ok()) << fourth.status();
  EXPECT_EQ(Listed("alice"), (std::vector<std::string>{third->info.id, fourth->info.id}));
}

TEST_P(SessionRulesConformanceTest, ALoginCountsAgainstTheNewOwnersCap) {
  Rebuild(1, session::SessionLimitPolicy::kRefuse);
  const std::string alices = MustCreate("alice");
  absl::StatusOr<session::Session> anonymous = Create("");
  ASSERT_TRUE(anonymous.ok()) << anonymous.status();
  session::RegenerateParams login;
  login.user_id = "alice";
  absl::Status refused =
      manager_->Regenerate(session::SessionKey::Id(anonymous->info.id), login).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted) << refused;
  EXPECT_EQ(ReasonOf(refused), "SESSION_LIMIT");
  // Refused: the anonymous session is untouched, alice's too.
  EXPECT_EQ(GetCode(anonymous->info.id), absl::StatusCode::kOk);
  EXPECT_EQ(Listed("alice"), std::vector<std::string>{alices});

  login.session_limit_policy = session::SessionLimitPolicy::kEndOldest;
  absl::StatusOr<session::Session> logged_in =
      manager_->Regenerate(session::SessionKey::Id(anonymous->info.id), login);
  ASSERT_TRUE(logged_in.ok()) << logged_in.status();
  EXPECT_EQ(logged_in->attributes.at("cart"), "[]");
  EXPECT_EQ(GetCode(alices), absl::StatusCode::kNotFound);
  EXPECT_EQ(GetCode(anonymous->info.id), absl::StatusCode::kNotFound);
  EXPECT_EQ(Listed("alice"), std::vector<std::string>{logged_in->info.id});
}

// The cap is checked in the store's atomic step: creates racing for one
// user, each past the early count, never leave more than the cap.
TEST_P(SessionRulesConformanceTest, ConcurrentCreatesNeverPassTheCap) {
  for (session::SessionLimitPolicy at_cap :
       {session::SessionLimitPolicy::kRefuse, session::SessionLimitPolicy::kEndOldest}) {
    const std::string user =
        at_cap == session::SessionLimitPolicy::kRefuse ? "refused" : "ended";
    Rebuild(3, at_cap);
    constexpr int kThreads = 8;
    std::atomic<int> created{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&] {
        if (Create(user).ok()) ++created;
      });
    }
    for (std::thread& t : threads) t.join();
    const size_t listed = Listed(user).size();
    EXPECT_EQ(listed, 3u) << user;
    if (at_cap == session::SessionLimitPolicy::kRefuse) {
      EXPECT_EQ(created.load(), 3) << user;
    } else {
      EXPECT_EQ(created.load(), kThreads) << user;
    }
  }
}

TEST_P(SessionRulesConformanceTest, ListingPagesThroughEverySessionWithItsToken) {
  std::vector<std::string> ids;
  for (int i = 0; i < 7; ++i) ids.push_back(MustCreate("alice"));
  std::vector<std::string> walked;
  std::string token;
  int pages = 0;
  do {
    absl::StatusOr<session::UserSessionsPage> page =
        manager_->ListUserSessionsPage("alice", token, 3);
    ASSERT_TRUE(page.ok()) << page.status();
    EXPECT_LE(page->sessions.size(), 3u);
    for (const session::SessionInfo& info : page->sessions) walked.push_back(info.id);
    // Opaque: the token names no session id.
    for (const std::string& id : ids) {
      EXPECT_EQ(page->next_page_token.find(id), std::string::npos);
    }
    token = page->next_page_token;
    ASSERT_LT(++pages, 10) << "the walk does not end";
  } while (!token.empty());
  EXPECT_GE(pages, 3);
  EXPECT_EQ(walked, ids);  // each once, oldest first
}

TEST_P(SessionRulesConformanceTest, APageTokenTheSidecarDidNotHandOutIsInvalidArgument) {
  MustCreate("alice");
  for (const std::string& bad :
       {std::string("not a token"), absl::WebSafeBase64Escape("p1:yesterday"),
        absl::WebSafeBase64Escape("p9:2026-01-01T00:00:00+00:00"),
        std::string(200, 'A')}) {
    absl::Status status = manager_->ListUserSessionsPage("alice", bad, 3).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(ReasonOf(status), "INVALID_ARGUMENT") << bad;
    EXPECT_EQ(FieldOf(status), "page_token") << bad;
  }
}

}  // namespace stateside::testing

#endif  // STATESIDE_TESTS_SUPPORT_SESSION_RULES_CONFORMANCE_H_
