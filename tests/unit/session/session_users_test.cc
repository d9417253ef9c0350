// SessionManager per-user operations (ListUserSessions, DestroyUserSessions)
// and key rotation: sessions written under an older key stay readable,
// listable and destroyable after the keyring becomes [new, old].
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "sidecar/session/session_manager.h"
#include "tests/support/logout_race_scenarios.h"
#include "tests/unit/session/session_test_fixture.h"

namespace stateside::testing {
namespace {

std::vector<std::string> IdsOf(const std::vector<session::SessionInfo>& infos) {
  std::vector<std::string> ids;
  for (const session::SessionInfo& info : infos) ids.push_back(info.id);
  return ids;
}

using SessionUsersTest = SessionManagerTest;

// Two managers over the one memory store, for the interleavings of
// tests/support/logout_race_scenarios.h.
class SessionRaceTest : public SessionManagerTest {
 protected:
  SessionRaceTest()
      : other_(&store_, &sealer_, signer_.get(), random_.get(), &clock_,
               TestPolicy(), &events_) {}
  session::SessionManager other_;
};

TEST_F(SessionRaceTest, CreateStoppedBeforeItsWriteDoesNotSurvive) {
  races::CreateStoppedBeforeItsWriteDoesNotSurvive(*manager_, other_);
}
TEST_F(SessionRaceTest, CreateStoppedAfterItsWriteDoesNotSurvive) {
  races::CreateStoppedAfterItsWriteDoesNotSurvive(*manager_, other_);
}
TEST_F(SessionRaceTest, RegenerateStoppedBeforeRetiringDoesNotSurvive) {
  races::RegenerateStoppedBeforeRetiringDoesNotSurvive(*manager_, other_);
}
TEST_F(SessionRaceTest, RegenerateInsideTheLogoutIsFollowed) {
  races::RegenerateInsideTheLogoutIsFollowed(*manager_, other_);
}
TEST_F(SessionRaceTest, RegenerateKeepsAnUpdateThatLandsDuringTheCopy) {
  races::RegenerateKeepsAnUpdateThatLandsDuringTheCopy(*manager_, other_);
}
TEST_F(SessionRaceTest, RegenerateGivesUpOnASessionThatNeverSettles) {
  races::RegenerateGivesUpOnASessionThatNeverSettles(*manager_, other_);
}

TEST_F(SessionUsersTest, ListUserSessionsShowsTheUsersLiveSessionsOldestFirst) {
  session::Session a1 = MustCreate("alice");
  clock_.Advance(absl::Seconds(1));
  session::Session a2 = MustCreate("alice");
  clock_.Advance(absl::Seconds(1));
  session::Session a3 = MustCreate("alice");
  MustCreate("bob");
  MustCreate("");
  MustCreate("alice2");
  ASSERT_TRUE(manager_->Destroy(session::SessionKey::Id(a2.info.id)).ok());

  absl::StatusOr<std::vector<session::SessionInfo>> list =
      manager_->ListUserSessions("alice");
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(IdsOf(*list), (std::vector<std::string>{a1.info.id, a3.info.id}));
  for (const session::SessionInfo& info : *list) {
    EXPECT_EQ(info.user_id, "alice");
    EXPECT_EQ(info.version, 1u);
    EXPECT_EQ(info.absolute_expiry, info.created + absl::Hours(8));
  }

  clock_.Advance(absl::Minutes(29));
  ASSERT_TRUE(manager_->Touch(session::SessionKey::Id(a3.info.id)).ok());
  clock_.Advance(absl::Minutes(2));  // a1 idle-expired
  list = manager_->ListUserSessions("alice");
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(IdsOf(*list), std::vector<std::string>{a3.info.id});
  EXPECT_TRUE(manager_->ListUserSessions("carol")->empty());
}

TEST_F(SessionUsersTest, ListUserSessionsPagesThroughTheIndex) {
  std::vector<std::string> made;
  for (int i = 0; i < 5; ++i) {
    made.push_back(MustCreate("alice").info.id);
    // Finer than a microsecond: a token must not round the bound.
    clock_.Advance(absl::Nanoseconds(1));
  }
  MustCreate("bob");
  std::vector<std::vector<std::string>> pages;
  std::string token;
  do {
    absl::StatusOr<session::UserSessionsPage> page =
        manager_->ListUserSessionsPage("alice", token, 2);
    ASSERT_TRUE(page.ok()) << page.status();
    pages.push_back(IdsOf(page->sessions));
    token = page->next_page_token;
  } while (!token.empty() && pages.size() < 10);
  EXPECT_EQ(pages, (std::vector<std::vector<std::string>>{
                       {made[0], made[1]}, {made[2], made[3]}, {made[4]}}));
  EXPECT_EQ(IdsOf(*manager_->ListUserSessions("alice")), made);

  // 0 is the default page size; more than the maximum is the maximum.
  for (uint32_t size : {0u, session::kMaxUserPageSize + 1, 1u << 31}) {
    absl::StatusOr<session::UserSessionsPage> all =
        manager_->ListUserSessionsPage("alice", "", size);
    ASSERT_TRUE(all.ok()) << all.status();
    EXPECT_EQ(IdsOf(all->sessions), made);
    EXPECT_EQ(all->next_page_token, "");
  }
}

TEST_F(SessionUsersTest, APageTokenThatWasNotHandedOutIsInvalidArgument) {
  MustCreate("alice");
  clock_.Advance(absl::Seconds(1));
  MustCreate("alice");
  absl::StatusOr<session::UserSessionsPage> first =
      manager_->ListUserSessionsPage("alice", "", 1);
  ASSERT_TRUE(first.ok());
  ASSERT_FALSE(first->next_page_token.empty());
  for (const std::string& bad :
       {std::string("garbage!"), std::string("cDE6"), std::string(100, 'A'),
        first->next_page_token.substr(1)}) {
    absl::Status status = manager_->ListUserSessionsPage("alice", bad, 1).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(status.message().find("page_token"), std::string::npos);
  }
  EXPECT_TRUE(
      manager_->ListUserSessionsPage("alice", first->next_page_token, 1).ok());
}

TEST_F(SessionUsersTest, DestroyUserSessionsWalksEveryPage) {
  // More sessions than one internal page (kDefaultUserPageSize), so more
  // than the default per-user cap.
  session::SessionPolicy policy = TestPolicy();
  policy.limits.max_sessions_per_user = 0;
  Rebuild(std::move(policy));
  session::Session kept = MustCreate("alice");
  for (int i = 0; i < 250; ++i) MustCreate("alice");
  MustCreate("bob");
  absl::StatusOr<uint32_t> destroyed =
      manager_->DestroyUserSessions("alice", session::SessionKey::Id(kept.info.id));
  ASSERT_TRUE(destroyed.ok()) << destroyed.status();
  EXPECT_EQ(*destroyed, 250u);
  EXPECT_EQ(IdsOf(*manager_->ListUserSessions("alice")),
            std::vector<std::string>{kept.info.id});
  EXPECT_EQ(manager_->ListUserSessions("bob")->size(), 1u);
}

TEST_F(SessionUsersTest, UserIdsAreValidated) {
  EXPECT_EQ(manager_->ListUserSessions("").status().code(),
            absl::StatusCode::kInvalidArgument);
  absl::Status long_id =
      manager_->ListUserSessions(std::string(257, 'u')).status();
  EXPECT_EQ(long_id.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(long_id.message().find("max_user_id_bytes"), std::string::npos);
  EXPECT_EQ(manager_->DestroyUserSessions("", std::nullopt).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(manager_->DestroyUserSessions(std::string(257, 'u'), std::nullopt)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(manager_->ListUserSessions(std::string(256, 'u')).ok());
}

TEST_F(SessionUsersTest, DestroyUserSessionsLogsOutEverywhere) {
  session::Session a1 = MustCreate("alice");
  session::Session a2 = MustCreate("alice");
  session::Session bob = MustCreate("bob");
  absl::StatusOr<uint32_t> n =
      manager_->DestroyUserSessions("alice", std::nullopt);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 2u);
  EXPECT_SESSION_NOT_FOUND(GetStatus(session::SessionKey::Id(a1.info.id)));
  EXPECT_SESSION_NOT_FOUND(GetStatus(session::SessionKey::Cookie(a2.cookie)));
  EXPECT_TRUE(GetStatus(session::SessionKey::Id(bob.info.id)).ok());
  EXPECT_TRUE(manager_->ListUserSessions("alice")->empty());
  EXPECT_EQ(manager_->DestroyUserSessions("alice", std::nullopt).value_or(99),
            0u);
  // A late write to a logged-out session does not bring it back.
  session::UpdateParams late;
  late.set = {{"cart", "[1]"}};
  EXPECT_SESSION_NOT_FOUND(
      manager_->Update(session::SessionKey::Id(a1.info.id), late).status());
  EXPECT_SESSION_NOT_FOUND(GetStatus(session::SessionKey::Id(a1.info.id)));
}

TEST_F(SessionUsersTest, DestroyUserSessionsCanKeepTheCurrentOne) {
  session::Session a1 = MustCreate("alice");
  session::Session a2 = MustCreate("alice");
  session::Session a3 = MustCreate("alice");
  absl::StatusOr<uint32_t> n =
      manager_->DestroyUserSessions("alice", session::SessionKey::Cookie(a2.cookie));
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 2u);
  EXPECT_EQ(IdsOf(*manager_->ListUserSessions("alice")),
            std::vector<std::string>{a2.info.id});
  EXPECT_TRUE(GetStatus(session::SessionKey::Cookie(a2.cookie)).ok());

  session::Session a4 = MustCreate("alice");
  n = manager_->DestroyUserSessions("alice", session::SessionKey::Id(a4.info.id));
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1u);
  EXPECT_EQ(IdsOf(*manager_->ListUserSessions("alice")),
            std::vector<std::string>{a4.info.id});
}

TEST_F(SessionUsersTest, AForgedKeepKeepsNothing) {
  session::Session a1 = MustCreate("alice");
  std::string forged = a1.cookie;
  forged[a1.info.id.size() + 5] ^= 0x01;
  absl::StatusOr<uint32_t> n =
      manager_->DestroyUserSessions("alice", session::SessionKey::Cookie(forged));
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1u);
  EXPECT_SESSION_NOT_FOUND(GetStatus(session::SessionKey::Id(a1.info.id)));
}

TEST_F(SessionUsersTest, KeepingAnotherUsersSessionProtectsNothingOfIt) {
  session::Session bob = MustCreate("bob");
  MustCreate("alice");
  EXPECT_EQ(manager_->DestroyUserSessions("alice", session::SessionKey::Id(bob.info.id))
                .value_or(99),
            1u);
  EXPECT_TRUE(GetStatus(session::SessionKey::Id(bob.info.id)).ok());
}

TEST_F(SessionUsersTest, ABlindIndexCollisionDoesNotLeakAnotherUser) {
  session::Session alice = MustCreate("alice");
  // A session of mallory filed under alice's tag, as a tag collision (or a
  // tampered index) would do.
  session::Session mallory = MustCreate("mallory");
  session::StoredSession forged = Raw(mallory.info.id);
  forged.id = std::string(43, 'M');
  forged.user_tag = Raw(alice.info.id).user_tag;
  absl::StatusOr<std::string> env =
      sealer_.Seal(forged.id, session::kUserEnvelopeName, "mallory");
  ASSERT_TRUE(env.ok());
  forged.user_envelope = *env;
  forged.attributes.clear();
  absl::StatusOr<std::string> seal =
      session::SealSessionMetadata(sealer_, forged, "mallory");
  ASSERT_TRUE(seal.ok());
  forged.metadata_seal = *seal;
  ASSERT_TRUE(store_.Create(forged).ok());

  absl::StatusOr<std::vector<session::SessionInfo>> list =
      manager_->ListUserSessions("alice");
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(IdsOf(*list), std::vector<std::string>{alice.info.id});
  EXPECT_EQ(manager_->DestroyUserSessions("alice", std::nullopt).value_or(99),
            1u);
  EXPECT_TRUE(GetStatus(session::SessionKey::Id(forged.id)).ok())
      << "mallory's session must survive alice's logout";
}

class KeyRotationTest : public SessionManagerTest {
 protected:
  // The manager after a rotation: keyring [b, a] over the same store.
  void Rotate() {
    rotated_keys_ = MakeKeyring({"b", "a"});
    rotated_sealer_ =
        std::make_unique<crypto::Sealer>(rotated_keys_.get(), random_.get());
    rotated_ = std::make_unique<session::SessionManager>(
        &store_, rotated_sealer_.get(), signer_.get(), random_.get(), &clock_,
        TestPolicy(), &events_);
  }
  std::unique_ptr<crypto::Keyring> rotated_keys_;
  std::unique_ptr<crypto::Sealer> rotated_sealer_;
  std::unique_ptr<session::SessionManager> rotated_;
};

TEST_F(KeyRotationTest, SessionsWrittenUnderTheOldKeyStayReadable) {
  session::Session old = MustCreate("alice", {{"cart", "[1]"}});
  Rotate();
  events_.Reset();
  absl::StatusOr<session::Session> got = rotated_->Get(session::SessionKey::Cookie(old.cookie));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->attributes.at("cart"), "[1]");
  EXPECT_EQ(got->info.user_id, "alice");
  EXPECT_EQ(events_.count("key:a"), 2);

  // A write after the rotation seals under b; old and new envelopes mix.
  session::UpdateParams update;
  update.set = {{"lang", "fr"}};
  ASSERT_TRUE(rotated_->Update(session::SessionKey::Id(old.info.id), update).ok());
  events_.Reset();
  got = rotated_->Get(session::SessionKey::Id(old.info.id));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->attributes.at("lang"), "fr");
  EXPECT_EQ(events_.count("key:a"), 2);
  EXPECT_EQ(events_.count("key:b"), 1);
}

TEST_F(KeyRotationTest, UserListingAndLogoutSpanTheRotation) {
  session::Session before = MustCreate("alice");
  clock_.Advance(absl::Seconds(1));
  Rotate();
  session::CreateParams params;
  params.user_id = "alice";
  absl::StatusOr<session::Session> after = rotated_->Create(params);
  ASSERT_TRUE(after.ok());
  EXPECT_NE(Raw(after->info.id).user_tag, Raw(before.info.id).user_tag)
      << "the index tag follows the primary key";

  absl::StatusOr<std::vector<session::SessionInfo>> list =
      rotated_->ListUserSessions("alice");
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(IdsOf(*list),
            (std::vector<std::string>{before.info.id, after->info.id}));

  // Regenerating an old session moves it to the new key's tag.
  absl::StatusOr<session::Session> regenerated =
      rotated_->Regenerate(session::SessionKey::Id(before.info.id));
  ASSERT_TRUE(regenerated.ok()) << regenerated.status();
  EXPECT_EQ(Raw(regenerated->info.id).user_tag, Raw(after->info.id).user_tag);

  EXPECT_EQ(rotated_->DestroyUserSessions("alice", std::nullopt).value_or(99),
            2u);
  EXPECT_TRUE(rotated_->ListUserSessions("alice")->empty());
}

}  // namespace
}  // namespace stateside::testing
