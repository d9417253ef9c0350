// SessionManager: the life of a session (create, get, update, touch, destroy,
// regenerate) and its timeouts, on the memory store with a fake clock.
#include "sidecar/session/session_manager.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "sidecar/crypto/session_id.h"
#include "tests/unit/session/session_test_fixture.h"

namespace stateside::testing {
namespace {

TEST_F(SessionManagerTest, CreateReturnsIdCookieAndMetadata) {
  const absl::Time t0 = clock_.Now();
  session::Session s = MustCreate("alice", {{"cart", "[]"}, {"theme", "dark"}});
  EXPECT_TRUE(crypto::IsWellFormedSessionId(s.info.id)) << s.info.id;
  EXPECT_EQ(s.cookie.substr(0, s.info.id.size() + 1), s.info.id + ".");
  EXPECT_EQ(s.info.user_id, "alice");
  EXPECT_EQ(s.info.created, t0);
  EXPECT_EQ(s.info.last_access, t0);
  EXPECT_EQ(s.info.idle_expiry, t0 + absl::Minutes(30));
  EXPECT_EQ(s.info.absolute_expiry, t0 + absl::Hours(8));
  EXPECT_EQ(s.info.version, 1u);
  EXPECT_EQ(s.attributes.at("theme"), "dark");
  EXPECT_EQ(events_.count("created"), 1);
  EXPECT_NE(MustCreate().info.id, s.info.id);
}

TEST_F(SessionManagerTest, AnonymousSessionsHaveNoUser) {
  session::Session s = MustCreate("", {});
  absl::StatusOr<session::Session> got = manager_->Get(session::SessionKey::Id(s.info.id));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->info.user_id, "");
  EXPECT_TRUE(got->attributes.empty());
}

TEST_F(SessionManagerTest, TheStoreHoldsOnlyEnvelopesAndBlindedTags) {
  session::Session s = MustCreate("alice@example.com", {{"secret", "MARKER-1234"}});
  session::StoredSession raw = Raw(s.info.id);
  EXPECT_EQ(raw.user_envelope.find("alice"), std::string::npos);
  EXPECT_EQ(raw.user_tag.find("alice"), std::string::npos);
  EXPECT_FALSE(raw.user_tag.empty());
  ASSERT_EQ(raw.attributes.count("secret"), 1u);
  EXPECT_EQ(raw.attributes["secret"].find("MARKER"), std::string::npos);
  EXPECT_GT(raw.attributes["secret"].size(), std::string("MARKER-1234").size());
}

TEST_F(SessionManagerTest, GetByIdAndByCookieReturnTheSameSession) {
  session::Session s = MustCreate("alice", {{"cart", "[1,2]"}});
  absl::StatusOr<session::Session> by_id = manager_->Get(session::SessionKey::Id(s.info.id));
  absl::StatusOr<session::Session> by_cookie =
      manager_->Get(session::SessionKey::Cookie(s.cookie));
  ASSERT_TRUE(by_id.ok()) << by_id.status();
  ASSERT_TRUE(by_cookie.ok()) << by_cookie.status();
  EXPECT_EQ(by_id->info.id, s.info.id);
  EXPECT_EQ(by_cookie->info.id, s.info.id);
  EXPECT_EQ(by_id->attributes, s.attributes);
  EXPECT_EQ(by_cookie->attributes, s.attributes);
  EXPECT_EQ(by_cookie->info.user_id, "alice");
  EXPECT_EQ(by_cookie->cookie, s.cookie);
  EXPECT_EQ(events_.count("key:a"), 4) << "user id + one attribute, twice";
}

TEST_F(SessionManagerTest, GetRollsTheIdleTimeout) {
  session::Session s = MustCreate();
  clock_.Advance(absl::Minutes(20));
  absl::StatusOr<session::Session> got = manager_->Get(session::SessionKey::Id(s.info.id));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->info.last_access, clock_.Now());
  EXPECT_EQ(got->info.idle_expiry, clock_.Now() + absl::Minutes(30));
  clock_.Advance(absl::Minutes(20));  // 40m after creation
  EXPECT_TRUE(manager_->Get(session::SessionKey::Id(s.info.id)).ok());
}

TEST_F(SessionManagerTest, GetWithoutTouchDoesNotRollTheIdleTimeout) {
  session::Session s = MustCreate();
  clock_.Advance(absl::Minutes(20));
  absl::StatusOr<session::Session> got =
      manager_->Get(session::SessionKey::Id(s.info.id), /*touch=*/false);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->info.last_access, s.info.created);
  clock_.Advance(absl::Minutes(10));
  EXPECT_SESSION_NOT_FOUND(GetStatus(session::SessionKey::Id(s.info.id)));
}

TEST_F(SessionManagerTest, IdleExpiryIsEnforced) {
  session::Session s = MustCreate();
  clock_.Advance(absl::Minutes(30) - absl::Milliseconds(1));
  EXPECT_TRUE(GetStatus(session::SessionKey::Id(s.info.id)).ok());
  clock_.Advance(absl::Milliseconds(1));
  EXPECT_SESSION_NOT_FOUND(GetStatus(session::SessionKey::Id(s.info.id)));
  EXPECT_SESSION_NOT_FOUND(manager_->Touch(session::SessionKey::Id(s.info.id)).status());
  EXPECT_EQ(events_.not_found(session::NotFoundCause::kUnknown), 2);
  // Met expired once (then dropped): one expiry, however often it is asked.
  EXPECT_EQ(events_.count("expired"), 1);
}

TEST_F(SessionManagerTest, AbsoluteExpiryIsEnforcedEvenWhenActive) {
  session::Session s = MustCreate();
  const session::SessionKey key = session::SessionKey::Id(s.info.id);
  for (int i = 0; i < 23; ++i) {  // a request every 20 minutes for 7h40m
    clock_.Advance(absl::Minutes(20));
    ASSERT_TRUE(manager_->Get(key).ok()) << "request " << i;
  }
  absl::StatusOr<session::SessionInfo> info = manager_->Touch(key);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->idle_expiry, s.info.absolute_expiry) << "capped";
  clock_.Set(s.info.absolute_expiry);
  EXPECT_SESSION_NOT_FOUND(manager_->Get(key).status());
  session::UpdateParams update;
  update.set = {{"k", "v"}};
  EXPECT_SESSION_NOT_FOUND(manager_->Update(key, update).status());
}

TEST_F(SessionManagerTest, TouchRollsTheIdleTimeout) {
  session::Session s = MustCreate();
  clock_.Advance(absl::Minutes(25));
  absl::StatusOr<session::SessionInfo> info =
      manager_->Touch(session::SessionKey::Cookie(s.cookie));
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->last_access, clock_.Now());
  EXPECT_EQ(info->user_id, "alice");
  clock_.Advance(absl::Minutes(25));
  EXPECT_TRUE(GetStatus(session::SessionKey::Id(s.info.id)).ok());
}

TEST_F(SessionManagerTest, PerSessionShorterTimeoutsApply) {
  session::CreateParams short_idle;
  short_idle.idle_ttl = absl::Minutes(5);
  absl::StatusOr<session::Session> a = manager_->Create(short_idle);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->info.idle_expiry, clock_.Now() + absl::Minutes(5));

  session::CreateParams short_absolute;
  short_absolute.absolute_ttl = absl::Hours(1);
  absl::StatusOr<session::Session> b = manager_->Create(short_absolute);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->info.absolute_expiry, clock_.Now() + absl::Hours(1));

  const absl::Time created = clock_.Now();
  clock_.Advance(absl::Minutes(5));
  EXPECT_SESSION_NOT_FOUND(GetStatus(session::SessionKey::Id(a->info.id)));
  for (int i = 0; i < 3; ++i) {  // requests at 5m, 25m and 45m
    EXPECT_TRUE(manager_->Get(session::SessionKey::Id(b->info.id)).ok());
    clock_.Advance(absl::Minutes(20));
  }
  clock_.Set(created + absl::Hours(1) - absl::Milliseconds(1));
  EXPECT_TRUE(GetStatus(session::SessionKey::Id(b->info.id)).ok());
  clock_.Set(created + absl::Hours(1));  // idle until 1h15m, but capped
  EXPECT_SESSION_NOT_FOUND(GetStatus(session::SessionKey::Id(b->info.id)));
}

TEST_F(SessionManagerTest, TimeoutsLongerThanThePolicyOrNotPositiveAreRefused) {
  const std::vector<
      std::pair<std::optional<absl::Duration>, std::optional<absl::Duration>>>
      bad = {{absl::Minutes(31), std::nullopt},
             {std::nullopt, absl::Hours(9)},
             {absl::ZeroDuration(), std::nullopt},
             {std::nullopt, absl::ZeroDuration()},
             {-absl::Minutes(1), std::nullopt},
             {std::nullopt, -absl::Hours(1)},
             {absl::InfiniteDuration(), std::nullopt}};
  for (const auto& [idle, absolute] : bad) {
    session::CreateParams params;
    params.idle_ttl = idle;
    params.absolute_ttl = absolute;
    absl::Status s = manager_->Create(params).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_NE(s.message().find(idle ? "idle_ttl" : "absolute_ttl"),
              absl::string_view::npos)
        << s;
  }
  EXPECT_EQ(store_.size(), 0u);
  session::CreateParams equal;
  equal.idle_ttl = absl::Minutes(30);
  equal.absolute_ttl = absl::Hours(8);
  EXPECT_TRUE(manager_->Create(equal).ok());
}

TEST_F(SessionManagerTest, UpdateSetsDeletesAndBumpsTheVersion) {
  session::Session s = MustCreate("alice", {{"cart", "[]"}, {"theme", "dark"}});
  clock_.Advance(absl::Minutes(20));
  session::UpdateParams update;
  update.set = {{"cart", "[42]"}, {"lang", "fr"}};
  update.remove = {"theme"};
  absl::StatusOr<session::SessionInfo> info =
      manager_->Update(session::SessionKey::Cookie(s.cookie), update);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->version, 2u);
  EXPECT_EQ(info->user_id, "alice");
  EXPECT_EQ(info->last_access, clock_.Now()) << "an update is an access";

  clock_.Advance(absl::Minutes(20));  // alive only because of the update
  absl::StatusOr<session::Session> got = manager_->Get(session::SessionKey::Id(s.info.id));
  ASSERT_TRUE(got.ok()) << got.status();
  const absl::flat_hash_map<std::string, std::string> want = {{"cart", "[42]"},
                                                              {"lang", "fr"}};
  EXPECT_EQ(got->attributes, want);
  EXPECT_EQ(got->info.version, 2u);
}

TEST_F(SessionManagerTest, MatchingExpectedVersionApplies) {
  session::Session s = MustCreate();
  session::UpdateParams update;
  update.set = {{"cart", "[1]"}};
  update.expected_version = s.info.version;
  absl::StatusOr<session::SessionInfo> info =
      manager_->Update(session::SessionKey::Id(s.info.id), update);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->version, s.info.version + 1);
}

TEST_F(SessionManagerTest, StaleExpectedVersionIsAbortedAndChangesNothing) {
  session::Session s = MustCreate("alice", {{"cart", "[]"}});
  session::UpdateParams first;
  first.set = {{"cart", "[1]"}};
  ASSERT_TRUE(manager_->Update(session::SessionKey::Id(s.info.id), first).ok());

  session::UpdateParams stale;
  stale.set = {{"cart", "[2]"}};
  stale.remove = {"other"};
  stale.expected_version = s.info.version;  // 1, now 2
  EXPECT_EQ(manager_->Update(session::SessionKey::Id(s.info.id), stale).status().code(),
            absl::StatusCode::kAborted);
  EXPECT_EQ(events_.count("conflict"), 1);
  absl::StatusOr<session::Session> got = manager_->Get(session::SessionKey::Id(s.info.id));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->attributes.at("cart"), "[1]");
  EXPECT_EQ(got->info.version, 2u);
}

TEST_F(SessionManagerTest, SameAttributeIsLastWriteWins) {
  session::Session s = MustCreate();
  for (const char* value : {"one", "two", "three"}) {
    session::UpdateParams update;
    update.set = {{"cart", value}};
    ASSERT_TRUE(manager_->Update(session::SessionKey::Id(s.info.id), update).ok());
  }
  EXPECT_EQ(manager_->Get(session::SessionKey::Id(s.info.id))->attributes.at("cart"),
            "three");
}

TEST_F(SessionManagerTest, ConcurrentUpdatesOfDifferentAttributesAllSurvive) {
  session::Session s = MustCreate("alice", {});
  constexpr int kThreads = 8;
  constexpr int kPerThread = 8;  // 64 attributes: exactly the default limit
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        session::UpdateParams update;
        update.set = {
            {absl::StrCat("a", t, "_", i), absl::StrCat(t * 100 + i)}};
        if (!manager_->Update(session::SessionKey::Cookie(s.cookie), update).ok()) {
          failures.fetch_add(1);
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  absl::StatusOr<session::Session> got = manager_->Get(session::SessionKey::Id(s.info.id));
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->attributes.size(), size_t{kThreads * kPerThread});
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPerThread; ++i) {
      EXPECT_EQ(got->attributes[absl::StrCat("a", t, "_", i)],
                absl::StrCat(t * 100 + i));
    }
  }
  EXPECT_EQ(got->info.version, 1u + kThreads * kPerThread);
}

TEST_F(SessionManagerTest, DestroyIsIdempotent) {
  session::Session s = MustCreate();
  absl::StatusOr<bool> first = manager_->Destroy(session::SessionKey::Cookie(s.cookie));
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(*first);
  absl::StatusOr<bool> second = manager_->Destroy(session::SessionKey::Id(s.info.id));
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(*second);
  EXPECT_EQ(events_.count("destroyed"), 1);
  EXPECT_SESSION_NOT_FOUND(GetStatus(session::SessionKey::Id(s.info.id)));
  EXPECT_SESSION_NOT_FOUND(GetStatus(session::SessionKey::Cookie(s.cookie)));
}

TEST_F(SessionManagerTest, DestroyOfMalformedForgedOrUnknownKeysIsOkFalse) {
  session::Session s = MustCreate();
  const std::vector<session::SessionKey> keys = {
      session::SessionKey::Id(""),
      session::SessionKey::Id("not an id"),
      session::SessionKey::Id(std::string(1 << 20, 'a')),
      session::SessionKey::Id(std::string(43, 'A')),
      session::SessionKey::Cookie(""),
      session::SessionKey::Cookie("garbage"),
      session::SessionKey::Cookie(s.info.id + ".forgedsignature"),
      session::SessionKey::Cookie(s.info.id),
  };
  for (const session::SessionKey& key : keys) {
    absl::StatusOr<bool> destroyed = manager_->Destroy(key);
    ASSERT_TRUE(destroyed.ok()) << destroyed.status();
    EXPECT_FALSE(*destroyed) << key.value.substr(0, 60);
  }
  EXPECT_TRUE(GetStatus(session::SessionKey::Id(s.info.id)).ok())
      << "a forged cookie must not destroy the session it names";
}

TEST_F(SessionManagerTest, UpdateAfterDestroyDoesNotResurrect) {
  session::Session s = MustCreate();
  ASSERT_TRUE(manager_->Destroy(session::SessionKey::Id(s.info.id)).ok());
  session::UpdateParams late;  // a slow request finishing after logout
  late.set = {{"cart", "[9]"}};
  EXPECT_SESSION_NOT_FOUND(
      manager_->Update(session::SessionKey::Cookie(s.cookie), late).status());
  EXPECT_SESSION_NOT_FOUND(GetStatus(session::SessionKey::Id(s.info.id)));
  EXPECT_SESSION_NOT_FOUND(manager_->Touch(session::SessionKey::Id(s.info.id)).status());
  EXPECT_TRUE(manager_->ListUserSessions("alice")->empty());
}

TEST_F(SessionManagerTest, TheTombstoneOutlivesAnyWriteThatCouldTargetTheId) {
  session::Session s = MustCreate();
  clock_.Advance(absl::Minutes(10));
  const absl::Time destroyed_at = clock_.Now();
  ASSERT_TRUE(manager_->Destroy(session::SessionKey::Id(s.info.id)).ok());
  EXPECT_EQ(store_.tombstone_count(), 1u);
  store_.Sweep(destroyed_at + absl::Hours(8) - absl::Seconds(1));
  EXPECT_EQ(store_.tombstone_count(), 1u)
      << "must last the configured absolute TTL";
  store_.Sweep(destroyed_at + absl::Hours(8));
  EXPECT_EQ(store_.tombstone_count(), 0u);
}

TEST_F(SessionManagerTest, RegenerateMovesTheDataToANewId) {
  session::Session old = MustCreate("alice", {{"cart", "[7]"}, {"theme", "dark"}});
  session::UpdateParams update;
  update.set = {{"lang", "fr"}};
  ASSERT_TRUE(manager_->Update(session::SessionKey::Id(old.info.id), update).ok());
  clock_.Advance(absl::Minutes(10));

  absl::StatusOr<session::Session> fresh =
      manager_->Regenerate(session::SessionKey::Cookie(old.cookie));
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  EXPECT_NE(fresh->info.id, old.info.id);
  EXPECT_TRUE(crypto::IsWellFormedSessionId(fresh->info.id));
  EXPECT_NE(fresh->cookie, old.cookie);
  EXPECT_EQ(fresh->info.user_id, "alice");
  EXPECT_EQ(fresh->info.created, old.info.created);
  EXPECT_EQ(fresh->info.absolute_expiry, old.info.absolute_expiry);
  EXPECT_EQ(fresh->info.last_access, clock_.Now());
  EXPECT_EQ(fresh->info.version, 2u) << "same data, same version";
  const absl::flat_hash_map<std::string, std::string> want = {
      {"cart", "[7]"}, {"theme", "dark"}, {"lang", "fr"}};
  EXPECT_EQ(fresh->attributes, want);

  // The new id and cookie work, with the data re-sealed under the new id.
  absl::StatusOr<session::Session> by_cookie =
      manager_->Get(session::SessionKey::Cookie(fresh->cookie));
  ASSERT_TRUE(by_cookie.ok()) << by_cookie.status();
  EXPECT_EQ(by_cookie->attributes, want);
  EXPECT_EQ(by_cookie->info.user_id, "alice");
  // The old id and cookie are gone.
  EXPECT_SESSION_NOT_FOUND(GetStatus(session::SessionKey::Id(old.info.id)));
  EXPECT_SESSION_NOT_FOUND(GetStatus(session::SessionKey::Cookie(old.cookie)));
  EXPECT_SESSION_NOT_FOUND(
      manager_->Update(session::SessionKey::Id(old.info.id), update).status());
  absl::StatusOr<std::vector<session::SessionInfo>> listed =
      manager_->ListUserSessions("alice");
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].id, fresh->info.id);
}

TEST_F(SessionManagerTest, RegenerateKeepsAShorterPerSessionTimeout) {
  session::CreateParams params;
  params.idle_ttl = absl::Minutes(5);
  absl::StatusOr<session::Session> old = manager_->Create(params);
  ASSERT_TRUE(old.ok());
  absl::StatusOr<session::Session> fresh =
      manager_->Regenerate(session::SessionKey::Id(old->info.id));
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  clock_.Advance(absl::Minutes(5));
  EXPECT_SESSION_NOT_FOUND(GetStatus(session::SessionKey::Id(fresh->info.id)));
}

TEST_F(SessionManagerTest, RegenerateOfAnUnknownSessionIsNotFound) {
  session::Session s = MustCreate();
  ASSERT_TRUE(manager_->Destroy(session::SessionKey::Id(s.info.id)).ok());
  const size_t before = store_.size();
  EXPECT_SESSION_NOT_FOUND(
      manager_->Regenerate(session::SessionKey::Id(s.info.id)).status());
  EXPECT_SESSION_NOT_FOUND(
      manager_->Regenerate(session::SessionKey::Cookie("bad")).status());
  EXPECT_EQ(store_.size(), before);
}

// The metadata seal, on the memory store (which has no outside writer, but
// shares the session rules' path): a record whose sealed fields were changed
// is refused with the uniform NOT_FOUND and counted as tampered.
class MetadataSealTest : public SessionManagerTest {
 protected:
  // A copy of `s` under a fresh id, its metadata sealed for that id, then
  // `change` applied to the stored fields (not to the seal).
  std::string Forge(const session::Session& s,
                    absl::AnyInvocable<void(session::StoredSession&)> change) {
    session::StoredSession forged = Raw(s.info.id);
    absl::StatusOr<std::string> id = crypto::NewSessionId(*random_);
    EXPECT_TRUE(id.ok());
    forged.id = id.value_or("");
    forged.attributes.clear();
    absl::StatusOr<std::string> user =
        sealer_.Seal(forged.id, session::kUserEnvelopeName, s.info.user_id);
    EXPECT_TRUE(user.ok());
    forged.user_envelope = user.value_or("");
    absl::StatusOr<std::string> seal =
        session::SealSessionMetadata(sealer_, forged, s.info.user_id);
    EXPECT_TRUE(seal.ok());
    forged.metadata_seal = seal.value_or("");
    change(forged);
    EXPECT_TRUE(store_.Create(forged).ok());
    return forged.id;
  }
};

TEST_F(MetadataSealTest, AnUnchangedForgeryOpensSoTheOthersTestTheSeal) {
  session::Session s = MustCreate("alice", {});
  const std::string id = Forge(s, [](session::StoredSession&) {});
  EXPECT_TRUE(GetStatus(session::SessionKey::Id(id)).ok());
}

TEST_F(MetadataSealTest, ALaterAbsoluteExpiryIsRefused) {
  session::Session s = MustCreate("alice", {});
  const std::string id = Forge(s, [](session::StoredSession& r) {
    r.absolute_expiry += absl::Hours(24 * 365);
  });
  EXPECT_SESSION_NOT_FOUND(GetStatus(session::SessionKey::Id(id)));
  EXPECT_SESSION_NOT_FOUND(manager_->Touch(session::SessionKey::Id(id)).status());
  EXPECT_SESSION_NOT_FOUND(
      manager_->Update(session::SessionKey::Id(id), session::UpdateParams{}).status());
  EXPECT_SESSION_NOT_FOUND(manager_->Regenerate(session::SessionKey::Id(id)).status());
  EXPECT_EQ(events_.not_found(session::NotFoundCause::kTamperedMetadata), 4);
}

TEST_F(MetadataSealTest, ALongerIdleTimeoutOrAnotherCreationTimeIsRefused) {
  session::Session s = MustCreate("alice", {});
  const std::string idle = Forge(s, [](session::StoredSession& r) {
    r.idle_ttl += absl::Hours(1);
  });
  EXPECT_SESSION_NOT_FOUND(GetStatus(session::SessionKey::Id(idle)));
  const std::string created =
      Forge(s, [](session::StoredSession& r) { r.created -= absl::Seconds(1); });
  EXPECT_SESSION_NOT_FOUND(GetStatus(session::SessionKey::Id(created)));
  EXPECT_EQ(events_.not_found(session::NotFoundCause::kTamperedMetadata), 2);
}

TEST_F(MetadataSealTest, AnotherOwnerOrNoOwnerIsRefused) {
  session::Session s = MustCreate("alice", {});
  session::Session bob = MustCreate("bob", {});
  const std::string retagged = Forge(s, [&](session::StoredSession& r) {
    r.user_tag = Raw(bob.info.id).user_tag;
  });
  EXPECT_SESSION_NOT_FOUND(GetStatus(session::SessionKey::Id(retagged)));
  const std::string anonymous = Forge(s, [](session::StoredSession& r) {
    r.user_tag.clear();
    r.user_envelope.clear();
  });
  EXPECT_SESSION_NOT_FOUND(GetStatus(session::SessionKey::Id(anonymous)));
  EXPECT_EQ(events_.not_found(session::NotFoundCause::kTamperedMetadata), 2);
  // Not listed as bob's, so not his to log out either.
  absl::StatusOr<std::vector<session::SessionInfo>> bobs =
      manager_->ListUserSessions("bob");
  ASSERT_TRUE(bobs.ok());
  ASSERT_EQ(bobs->size(), 1u);
  EXPECT_EQ((*bobs)[0].id, bob.info.id);
}

TEST_F(MetadataSealTest, AMissingSealOrOneOfAnotherSessionIsRefused) {
  session::Session s = MustCreate("alice", {});
  session::Session other = MustCreate("alice", {});
  const std::string unsealed =
      Forge(s, [](session::StoredSession& r) { r.metadata_seal.clear(); });
  EXPECT_SESSION_NOT_FOUND(GetStatus(session::SessionKey::Id(unsealed)));
  EXPECT_EQ(events_.not_found(session::NotFoundCause::kTamperedMetadata), 1);
  const std::string moved = Forge(s, [&](session::StoredSession& r) {
    r.metadata_seal = Raw(other.info.id).metadata_seal;
  });
  EXPECT_SESSION_NOT_FOUND(GetStatus(session::SessionKey::Id(moved)));
  EXPECT_EQ(events_.not_found(session::NotFoundCause::kTamperedMetadata), 2);
  EXPECT_EQ(events_.count("decrypt_failed:auth_failed"), 1);
}

// A session without a seal (an earlier release's instance still serves it
// during a rolling upgrade) or with a broken one is refused on read, but its
// sealed owner is proof enough to log it out: "log out everywhere" ends it.
TEST_F(MetadataSealTest, LogoutEverywhereAlsoEndsUnsealedSessionsOfTheUser) {
  session::Session s = MustCreate("alice", {});
  const std::string unsealed =
      Forge(s, [](session::StoredSession& r) { r.metadata_seal.clear(); });
  session::Session bob = MustCreate("bob", {});
  const std::string bobs_unsealed =
      Forge(bob, [](session::StoredSession& r) { r.metadata_seal.clear(); });
  absl::StatusOr<uint32_t> ended = manager_->DestroyUserSessions("alice", std::nullopt);
  ASSERT_TRUE(ended.ok()) << ended.status();
  EXPECT_EQ(*ended, 2u);
  session::ReadOptions options;
  options.now = clock_.Now();
  options.touch = false;
  EXPECT_TRUE(absl::IsNotFound(store_.Get(unsealed, options).status()));
  EXPECT_TRUE(absl::IsNotFound(store_.Get(s.info.id, options).status()));
  // Another user's session is no business of alice's logout.
  EXPECT_TRUE(store_.Get(bobs_unsealed, options).ok());
}

TEST_F(MetadataSealTest, RegenerateSealsForTheNewId) {
  session::Session s = MustCreate("alice", {{"cart", "[1]"}});
  absl::StatusOr<session::Session> fresh = manager_->Regenerate(session::SessionKey::Id(s.info.id));
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  EXPECT_NE(Raw(fresh->info.id).metadata_seal, "");
  EXPECT_TRUE(GetStatus(session::SessionKey::Id(fresh->info.id)).ok());
  EXPECT_EQ(events_.not_found(session::NotFoundCause::kTamperedMetadata), 0);
}

}  // namespace
}  // namespace stateside::testing
