// SessionManager lookups that cannot be served: unknown, expired, destroyed,
// malformed, forged and undecryptable sessions all answer the same NOT_FOUND,
// and only the events say why. Also cookie-secret and key rotation on reads.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "sidecar/session/session_manager.h"
#include "tests/unit/session/session_test_fixture.h"

namespace stateside::testing {
namespace {

// A store that damages what it returns, as a corrupted backend would.
class CorruptingStore final : public SessionStore {
 public:
  CorruptingStore(SessionStore* inner, std::function<void(StoredSession&)> f)
      : inner_(inner), damage_(std::move(f)) {}
  absl::Status Create(const StoredSession& s) override {
    return inner_->Create(s);
  }
  absl::StatusOr<std::vector<std::string>> CreateCapped(
      const StoredSession& s, const UserCap& cap) override {
    return inner_->CreateCapped(s, cap);
  }
  absl::StatusOr<StoredSession> Get(std::string_view id,
                                    const ReadOptions& o) override {
    absl::StatusOr<StoredSession> s = inner_->Get(id, o);
    if (s.ok()) damage_(*s);
    return s;
  }
  absl::StatusOr<StoredSession> Update(std::string_view id,
                                       const Mutation& m) override {
    absl::StatusOr<StoredSession> s = inner_->Update(id, m);
    if (s.ok()) damage_(*s);
    return s;
  }
  absl::StatusOr<bool> Destroy(std::string_view id, absl::Time now,
                               absl::Time until) override {
    return inner_->Destroy(id, now, until);
  }
  absl::Status Retire(std::string_view id, uint64_t version,
                      std::string_view successor, absl::Time now,
                      absl::Time until) override {
    return inner_->Retire(id, version, successor, now, until);
  }
  absl::StatusOr<std::string> Successor(std::string_view id) override {
    return inner_->Successor(id);
  }
  absl::StatusOr<uint64_t> UserEpoch(std::string_view tag) override {
    return inner_->UserEpoch(tag);
  }
  absl::Status AdvanceUserEpoch(std::string_view tag, absl::Time now,
                                absl::Time until) override {
    return inner_->AdvanceUserEpoch(tag, now, until);
  }
  absl::StatusOr<UserIndexPage> ListByUserPage(std::string_view tag,
                                               absl::Time now, absl::Time after,
                                               size_t limit) override {
    absl::StatusOr<UserIndexPage> page =
        inner_->ListByUserPage(tag, now, after, limit);
    if (page.ok()) {
      for (StoredSession& s : page->sessions) damage_(s);
    }
    return page;
  }
  absl::StatusOr<std::vector<StoredSession>> ListByUser(
      std::string_view tag, absl::Time now) override {
    absl::StatusOr<std::vector<StoredSession>> list =
        inner_->ListByUser(tag, now);
    if (list.ok()) {
      for (StoredSession& s : *list) damage_(s);
    }
    return list;
  }

 private:
  SessionStore* const inner_;
  std::function<void(StoredSession&)> damage_;
};

class SessionLookupTest : public SessionManagerTest {
 protected:
  // A manager reading store_ through `damage`.
  std::unique_ptr<SessionManager> DamagedManager(
      std::function<void(StoredSession&)> damage) {
    corrupting_ = std::make_unique<CorruptingStore>(&store_, std::move(damage));
    return std::make_unique<SessionManager>(corrupting_.get(), &sealer_,
                                            signer_.get(), random_.get(),
                                            &clock_, TestPolicy(), &events_);
  }

  // Every way of naming a session, for a key that must not be served: each
  // answers the one NOT_FOUND and reports `cause` once per call.
  void ExpectNotFoundEverywhere(SessionManager& manager, const SessionKey& key,
                                NotFoundCause cause) {
    events_.Reset();
    EXPECT_SESSION_NOT_FOUND(manager.Get(key).status());
    EXPECT_SESSION_NOT_FOUND(manager.Get(key, false).status());
    EXPECT_SESSION_NOT_FOUND(manager.Touch(key).status());
    UpdateParams update;
    update.set = {{"k", "v"}};
    EXPECT_SESSION_NOT_FOUND(manager.Update(key, update).status());
    EXPECT_SESSION_NOT_FOUND(manager.Regenerate(key).status());
    EXPECT_EQ(events_.not_found(cause), 5) << NotFoundCauseName(cause);
    EXPECT_EQ(events_.total_not_found(), 5);
  }

  std::unique_ptr<CorruptingStore> corrupting_;
};

TEST_F(SessionLookupTest, UnknownIdIsNotFound) {
  ExpectNotFoundEverywhere(*manager_, SessionKey::Id(std::string(43, 'Q')),
                           NotFoundCause::kUnknown);
}

TEST_F(SessionLookupTest, ExpiredSessionIsNotFound) {
  Session s = MustCreate();
  clock_.Advance(absl::Hours(1));
  ExpectNotFoundEverywhere(*manager_, SessionKey::Cookie(s.cookie),
                           NotFoundCause::kUnknown);
}

TEST_F(SessionLookupTest, DestroyedSessionIsNotFound) {
  Session s = MustCreate();
  ASSERT_TRUE(manager_->Destroy(SessionKey::Id(s.info.id)).ok());
  ExpectNotFoundEverywhere(*manager_, SessionKey::Id(s.info.id),
                           NotFoundCause::kUnknown);
}

TEST_F(SessionLookupTest, MalformedIdsAreNotFound) {
  for (const std::string& id :
       {std::string(), std::string("short"), std::string(42, 'a'),
        std::string(44, 'a'), std::string(1 << 20, 'a'),
        std::string(42, 'a') + "=", std::string(42, 'a') + "/",
        std::string(42, 'a') + '\0', std::string(43, '\xff')}) {
    ExpectNotFoundEverywhere(*manager_, SessionKey::Id(id),
                             NotFoundCause::kMalformedKey);
  }
  // A cookie given where an id is expected is not an id.
  Session s = MustCreate();
  ExpectNotFoundEverywhere(*manager_, SessionKey::Id(s.cookie),
                           NotFoundCause::kMalformedKey);
}

TEST_F(SessionLookupTest, MalformedCookiesAreNotFound) {
  Session s = MustCreate();
  for (const std::string& cookie :
       {std::string(), std::string("."), std::string("garbage"), s.info.id,
        s.info.id + ".", "." + s.info.id, s.cookie + "A",
        s.cookie.substr(0, s.cookie.size() - 1), s.cookie + "=",
        s.info.id + "." + std::string(43, '*'), s.cookie + "." + s.info.id,
        std::string(4096, '.'), std::string(1 << 20, 'a'),
        s.info.id.substr(1) + s.cookie.substr(s.info.id.size())}) {
    ExpectNotFoundEverywhere(*manager_, SessionKey::Cookie(cookie),
                             NotFoundCause::kMalformedKey);
  }
}

TEST_F(SessionLookupTest, ForgedCookiesAreNotFound) {
  Session s = MustCreate();
  std::string flipped = s.cookie;
  char& c = flipped[s.info.id.size() + 10];  // inside the signature
  c = c == 'A' ? 'B' : 'A';
  Session other = MustCreate("bob");
  const std::string swapped =
      s.info.id + other.cookie.substr(other.info.id.size());
  auto foreign_signer = MakeSigner({std::string(32, 'F')});
  const std::string foreign = foreign_signer->Sign(s.info.id);
  for (const std::string& cookie : {flipped, swapped, foreign}) {
    ExpectNotFoundEverywhere(*manager_, SessionKey::Cookie(cookie),
                             NotFoundCause::kBadSignature);
  }
  EXPECT_TRUE(GetStatus(SessionKey::Cookie(s.cookie)).ok());
}

TEST_F(SessionLookupTest, CookiesSignedByAnOlderSecretStillVerify) {
  Session s = MustCreate();
  signer_ = MakeSigner({std::string(32, 'N'), SecretA()});
  Rebuild(TestPolicy());
  absl::StatusOr<Session> got = manager_->Get(SessionKey::Cookie(s.cookie));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_NE(got->cookie, s.cookie) << "re-signed with the new first secret";
  EXPECT_TRUE(GetStatus(SessionKey::Cookie(got->cookie)).ok());
}

TEST_F(SessionLookupTest, SessionUnderAnUnknownKeyIsNotFound) {
  Session s = MustCreate();
  auto other_keys = MakeKeyring({"b"});
  crypto::Sealer other_sealer(other_keys.get(), random_.get());
  SessionManager other(&store_, &other_sealer, signer_.get(), random_.get(),
                       &clock_, TestPolicy(), &events_);
  EXPECT_SESSION_NOT_FOUND(other.Get(SessionKey::Id(s.info.id)).status());
  EXPECT_EQ(events_.count("decrypt_failed:unknown_key"), 1);
  EXPECT_TRUE(GetStatus(SessionKey::Id(s.info.id)).ok())
      << "the right keyring still reads it";
  ExpectNotFoundEverywhere(other, SessionKey::Id(s.info.id),
                           NotFoundCause::kUndecryptable);
}

TEST_F(SessionLookupTest, TamperedEnvelopeIsNotFound) {
  Session s = MustCreate("alice", {{"cart", "[]"}});
  auto manager = DamagedManager([](StoredSession& stored) {
    for (auto& [name, envelope] : stored.attributes) envelope.back() ^= 0x01;
  });
  events_.Reset();
  EXPECT_SESSION_NOT_FOUND(manager->Get(SessionKey::Id(s.info.id)).status());
  EXPECT_EQ(events_.not_found(NotFoundCause::kUndecryptable), 1);
  EXPECT_EQ(events_.count("decrypt_failed:auth_failed"), 1);
  EXPECT_SESSION_NOT_FOUND(
      manager->Regenerate(SessionKey::Id(s.info.id)).status());
  EXPECT_TRUE(GetStatus(SessionKey::Id(s.info.id)).ok())
      << "a failed regenerate leaves the session alone";
}

TEST_F(SessionLookupTest, TamperedUserEnvelopeIsNotFound) {
  Session s = MustCreate("alice", {});
  auto manager = DamagedManager(
      [](StoredSession& stored) { stored.user_envelope[20] ^= 0x40; });
  ExpectNotFoundEverywhere(*manager, SessionKey::Id(s.info.id),
                           NotFoundCause::kUndecryptable);
}

TEST_F(SessionLookupTest, TruncatedEnvelopeIsNotFound) {
  Session s = MustCreate("alice", {{"cart", "[]"}});
  auto manager = DamagedManager([](StoredSession& stored) {
    for (auto& [name, envelope] : stored.attributes) envelope.resize(3);
  });
  events_.Reset();
  EXPECT_SESSION_NOT_FOUND(manager->Get(SessionKey::Id(s.info.id)).status());
  EXPECT_EQ(events_.count("decrypt_failed:malformed"), 1);
  EXPECT_EQ(events_.not_found(NotFoundCause::kUndecryptable), 1);
}

TEST_F(SessionLookupTest, EnvelopeMovedToAnotherAttributeIsNotFound) {
  Session s = MustCreate("alice", {{"a", "1"}, {"b", "2"}});
  auto manager = DamagedManager([](StoredSession& stored) {
    std::swap(stored.attributes["a"], stored.attributes["b"]);
  });
  EXPECT_SESSION_NOT_FOUND(manager->Get(SessionKey::Id(s.info.id)).status());
  EXPECT_EQ(events_.count("decrypt_failed:auth_failed"), 1);
}

TEST_F(SessionLookupTest, EnvelopeMovedToAnotherSessionIsNotFound) {
  Session victim = MustCreate("alice", {{"cart", "secret"}});
  Session attacker = MustCreate("mallory", {{"cart", "mine"}});
  const std::string stolen = Raw(victim.info.id).attributes.at("cart");
  auto manager = DamagedManager([&](StoredSession& stored) {
    if (stored.id == attacker.info.id) stored.attributes["cart"] = stolen;
  });
  EXPECT_SESSION_NOT_FOUND(
      manager->Get(SessionKey::Id(attacker.info.id)).status());
  EXPECT_TRUE(manager->Get(SessionKey::Id(victim.info.id)).ok());
}

TEST_F(SessionLookupTest, ReadsCountTheKeyThatOpenedEachEnvelope) {
  Session s = MustCreate("alice", {{"a", "1"}, {"b", "2"}});
  events_.Reset();
  ASSERT_TRUE(manager_->Get(SessionKey::Id(s.info.id)).ok());
  EXPECT_EQ(events_.count("key:a"), 3);  // the user id and two attributes
}

}  // namespace
}  // namespace stateside::testing
