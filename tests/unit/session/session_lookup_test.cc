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
class CorruptingStore final : public session::SessionStore {
 public:
  CorruptingStore(session::SessionStore* inner, std::function<void(session::StoredSession&)> f)
      : inner_(inner), damage_(std::move(f)) {}
  absl::Status Create(const session::StoredSession& s) override {
    return inner_->Create(s);
  }
  absl::StatusOr<std::vector<std::string>> CreateCapped(
      const session::StoredSession& s, const session::UserCap& cap) override {
    return inner_->CreateCapped(s, cap);
  }
  absl::StatusOr<session::StoredSession> Get(std::string_view id,
                                    const session::ReadOptions& o) override {
    absl::StatusOr<session::StoredSession> s = inner_->Get(id, o);
    if (s.ok()) damage_(*s);
    return s;
  }
  absl::StatusOr<session::StoredSession> Update(std::string_view id,
                                       const session::Mutation& m) override {
    absl::StatusOr<session::StoredSession> s = inner_->Update(id, m);
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
  absl::StatusOr<session::UserIndexPage> ListByUserPage(std::string_view tag,
                                               absl::Time now, absl::Time after,
                                               size_t limit) override {
    absl::StatusOr<session::UserIndexPage> page =
        inner_->ListByUserPage(tag, now, after, limit);
    if (page.ok()) {
      for (session::StoredSession& s : page->sessions) damage_(s);
    }
    return page;
  }
  absl::StatusOr<std::vector<session::StoredSession>> ListByUser(
      std::string_view tag, absl::Time now) override {
    absl::StatusOr<std::vector<session::StoredSession>> list =
        inner_->ListByUser(tag, now);
    if (list.ok()) {
      for (session::StoredSession& s : *list) damage_(s);
    }
    return list;
  }

 private:
  session::SessionStore* const inner_;
  std::function<void(session::StoredSession&)> damage_;
};

class SessionLookupTest : public SessionManagerTest {
 protected:
  // A manager reading store_ through `damage`.
  std::unique_ptr<session::SessionManager> DamagedManager(
      std::function<void(session::StoredSession&)> damage) {
    corrupting_ = std::make_unique<CorruptingStore>(&store_, std::move(damage));
    return std::make_unique<session::SessionManager>(corrupting_.get(), &sealer_,
                                            signer_.get(), random_.get(),
                                            &clock_, TestPolicy(), &events_);
  }

  // Every way of naming a session, for a key that must not be served: each
  // answers the one NOT_FOUND and reports `cause` once per call.
  void ExpectNotFoundEverywhere(session::SessionManager& manager, const session::SessionKey& key,
                                session::NotFoundCause cause) {
    events_.Reset();
    EXPECT_SESSION_NOT_FOUND(manager.Get(key).status());
    EXPECT_SESSION_NOT_FOUND(manager.Get(key, false).status());
    EXPECT_SESSION_NOT_FOUND(manager.Touch(key).status());
    session::UpdateParams update;
    update.set = {{"k", "v"}};
    EXPECT_SESSION_NOT_FOUND(manager.Update(key, update).status());
    EXPECT_SESSION_NOT_FOUND(manager.Regenerate(key).status());
    EXPECT_EQ(events_.not_found(cause), 5) << session::NotFoundCauseName(cause);
    EXPECT_EQ(events_.total_not_found(), 5);
  }

  std::unique_ptr<CorruptingStore> corrupting_;
};

TEST_F(SessionLookupTest, UnknownIdIsNotFound) {
  ExpectNotFoundEverywhere(*manager_, session::SessionKey::Id(std::string(43, 'Q')),
                           session::NotFoundCause::kUnknown);
}

TEST_F(SessionLookupTest, ExpiredSessionIsNotFound) {
  session::Session s = MustCreate();
  clock_.Advance(absl::Hours(1));
  ExpectNotFoundEverywhere(*manager_, session::SessionKey::Cookie(s.cookie),
                           session::NotFoundCause::kUnknown);
}

TEST_F(SessionLookupTest, DestroyedSessionIsNotFound) {
  session::Session s = MustCreate();
  ASSERT_TRUE(manager_->Destroy(session::SessionKey::Id(s.info.id)).ok());
  ExpectNotFoundEverywhere(*manager_, session::SessionKey::Id(s.info.id),
                           session::NotFoundCause::kUnknown);
}

TEST_F(SessionLookupTest, MalformedIdsAreNotFound) {
  for (const std::string& id :
       {std::string(), std::string("short"), std::string(42, 'a'),
        std::string(44, 'a'), std::string(1 << 20, 'a'),
        std::string(42, 'a') + "=", std::string(42, 'a') + "/",
        std::string(42, 'a') + '\0', std::string(43, '\xff')}) {
    ExpectNotFoundEverywhere(*manager_, session::SessionKey::Id(id),
                             session::NotFoundCause::kMalformedKey);
  }
  // A cookie given where an id is expected is not an id.
  session::Session s = MustCreate();
  ExpectNotFoundEverywhere(*manager_, session::SessionKey::Id(s.cookie),
                           session::NotFoundCause::kMalformedKey);
}

TEST_F(SessionLookupTest, MalformedCookiesAreNotFound) {
  session::Session s = MustCreate();
  for (const std::string& cookie :
       {std::string(), std::string("."), std::string("garbage"), s.info.id,
        s.info.id + ".", "." + s.info.id, s.cookie + "A",
        s.cookie.substr(0, s.cookie.size() - 1), s.cookie + "=",
        s.info.id + "." + std::string(43, '*'), s.cookie + "." + s.info.id,
        std::string(4096, '.'), std::string(1 << 20, 'a'),
        s.info.id.substr(1) + s.cookie.substr(s.info.id.size())}) {
    ExpectNotFoundEverywhere(*manager_, session::SessionKey::Cookie(cookie),
                             session::NotFoundCause::kMalformedKey);
  }
}

TEST_F(SessionLookupTest, ForgedCookiesAreNotFound) {
  session::Session s = MustCreate();
  std::string flipped = s.cookie;
  char& c = flipped[s.info.id.size() + 10];  // inside the signature
  c = c == 'A' ? 'B' : 'A';
  session::Session other = MustCreate("bob");
  const std::string swapped =
      s.info.id + other.cookie.substr(other.info.id.size());
  auto foreign_signer = MakeSigner({std::string(32, 'F')});
  const std::string foreign = foreign_signer->Sign(s.info.id);
  for (const std::string& cookie : {flipped, swapped, foreign}) {
    ExpectNotFoundEverywhere(*manager_, session::SessionKey::Cookie(cookie),
                             session::NotFoundCause::kBadSignature);
  }
  EXPECT_TRUE(GetStatus(session::SessionKey::Cookie(s.cookie)).ok());
}

// Get and GetAsync through one call each: the cookies they answer.
std::vector<std::string> CookiesOfGets(session::SessionManager& manager,
                                       const session::SessionKey& key) {
  std::vector<std::string> cookies;
  absl::StatusOr<session::Session> got = manager.Get(key);
  EXPECT_TRUE(got.ok()) << got.status();
  if (got.ok()) cookies.push_back(got->cookie);
  bool answered = false;
  manager.GetAsync(key, /*touch=*/true,
                   [&](absl::StatusOr<session::Session> async) {
                     answered = true;
                     EXPECT_TRUE(async.ok()) << async.status();
                     if (async.ok()) cookies.push_back(async->cookie);
                   });
  EXPECT_TRUE(answered) << "the memory store answers at once";
  return cookies;
}

TEST_F(SessionLookupTest, ReadsAnswerAPrimarySecretCookieAsGiven) {
  session::Session s = MustCreate();
  const std::string signed_again = signer_->Sign(s.info.id);
  ASSERT_EQ(s.cookie, signed_again);
  EXPECT_EQ(CookiesOfGets(*manager_, session::SessionKey::Cookie(s.cookie)),
            std::vector<std::string>({s.cookie, s.cookie}));
  // By id there is nothing to answer as given: the cookie is signed.
  EXPECT_EQ(CookiesOfGets(*manager_, session::SessionKey::Id(s.info.id)),
            std::vector<std::string>({s.cookie, s.cookie}));
}

TEST_F(SessionLookupTest, CookiesSignedByAnOlderSecretStillVerify) {
  session::Session s = MustCreate();
  signer_ = MakeSigner({std::string(32, 'N'), SecretA()});
  Rebuild(TestPolicy());
  absl::StatusOr<session::Session> got = manager_->Get(session::SessionKey::Cookie(s.cookie));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_NE(got->cookie, s.cookie) << "re-signed with the new first secret";
  EXPECT_TRUE(GetStatus(session::SessionKey::Cookie(got->cookie)).ok());
  // Moved to the primary by both forms of Get, and answered as given from
  // then on.
  const std::string moved = signer_->Sign(s.info.id);
  EXPECT_EQ(got->cookie, moved);
  EXPECT_EQ(CookiesOfGets(*manager_, session::SessionKey::Cookie(s.cookie)),
            std::vector<std::string>({moved, moved}));
  EXPECT_EQ(CookiesOfGets(*manager_, session::SessionKey::Cookie(moved)),
            std::vector<std::string>({moved, moved}));
  // The old secret removed: the old cookie is refused as any forgery.
  signer_ = MakeSigner({std::string(32, 'N')});
  Rebuild(TestPolicy());
  ExpectNotFoundEverywhere(*manager_, session::SessionKey::Cookie(s.cookie),
                           session::NotFoundCause::kBadSignature);
  EXPECT_TRUE(GetStatus(session::SessionKey::Cookie(moved)).ok());
}

TEST_F(SessionLookupTest, SessionUnderAnUnknownKeyIsNotFound) {
  session::Session s = MustCreate();
  auto other_keys = MakeKeyring({"b"});
  crypto::Sealer other_sealer(other_keys.get(), random_.get());
  session::SessionManager other(&store_, &other_sealer, signer_.get(), random_.get(),
                       &clock_, TestPolicy(), &events_);
  EXPECT_SESSION_NOT_FOUND(other.Get(session::SessionKey::Id(s.info.id)).status());
  EXPECT_EQ(events_.count("decrypt_failed:unknown_key"), 1);
  EXPECT_TRUE(GetStatus(session::SessionKey::Id(s.info.id)).ok())
      << "the right keyring still reads it";
  ExpectNotFoundEverywhere(other, session::SessionKey::Id(s.info.id),
                           session::NotFoundCause::kUndecryptable);
}

TEST_F(SessionLookupTest, TamperedEnvelopeIsNotFound) {
  session::Session s = MustCreate("alice", {{"cart", "[]"}});
  auto manager = DamagedManager([](session::StoredSession& stored) {
    for (auto& [name, envelope] : stored.attributes) envelope.back() ^= 0x01;
  });
  events_.Reset();
  EXPECT_SESSION_NOT_FOUND(manager->Get(session::SessionKey::Id(s.info.id)).status());
  EXPECT_EQ(events_.not_found(session::NotFoundCause::kUndecryptable), 1);
  EXPECT_EQ(events_.count("decrypt_failed:auth_failed"), 1);
  EXPECT_SESSION_NOT_FOUND(
      manager->Regenerate(session::SessionKey::Id(s.info.id)).status());
  EXPECT_TRUE(GetStatus(session::SessionKey::Id(s.info.id)).ok())
      << "a failed regenerate leaves the session alone";
}

TEST_F(SessionLookupTest, TamperedUserEnvelopeIsNotFound) {
  session::Session s = MustCreate("alice", {});
  auto manager = DamagedManager(
      [](session::StoredSession& stored) { stored.user_envelope[20] ^= 0x40; });
  ExpectNotFoundEverywhere(*manager, session::SessionKey::Id(s.info.id),
                           session::NotFoundCause::kUndecryptable);
}

TEST_F(SessionLookupTest, TruncatedEnvelopeIsNotFound) {
  session::Session s = MustCreate("alice", {{"cart", "[]"}});
  auto manager = DamagedManager([](session::StoredSession& stored) {
    for (auto& [name, envelope] : stored.attributes) envelope.resize(3);
  });
  events_.Reset();
  EXPECT_SESSION_NOT_FOUND(manager->Get(session::SessionKey::Id(s.info.id)).status());
  EXPECT_EQ(events_.count("decrypt_failed:malformed"), 1);
  EXPECT_EQ(events_.not_found(session::NotFoundCause::kUndecryptable), 1);
}

TEST_F(SessionLookupTest, EnvelopeMovedToAnotherAttributeIsNotFound) {
  session::Session s = MustCreate("alice", {{"a", "1"}, {"b", "2"}});
  auto manager = DamagedManager([](session::StoredSession& stored) {
    std::swap(stored.attributes["a"], stored.attributes["b"]);
  });
  EXPECT_SESSION_NOT_FOUND(manager->Get(session::SessionKey::Id(s.info.id)).status());
  EXPECT_EQ(events_.count("decrypt_failed:auth_failed"), 1);
}

TEST_F(SessionLookupTest, EnvelopeMovedToAnotherSessionIsNotFound) {
  session::Session victim = MustCreate("alice", {{"cart", "secret"}});
  session::Session attacker = MustCreate("mallory", {{"cart", "mine"}});
  const std::string stolen = Raw(victim.info.id).attributes.at("cart");
  auto manager = DamagedManager([&](session::StoredSession& stored) {
    if (stored.id == attacker.info.id) stored.attributes["cart"] = stolen;
  });
  EXPECT_SESSION_NOT_FOUND(
      manager->Get(session::SessionKey::Id(attacker.info.id)).status());
  EXPECT_TRUE(manager->Get(session::SessionKey::Id(victim.info.id)).ok());
}

TEST_F(SessionLookupTest, ReadsCountTheKeyThatOpenedEachEnvelope) {
  session::Session s = MustCreate("alice", {{"a", "1"}, {"b", "2"}});
  events_.Reset();
  ASSERT_TRUE(manager_->Get(session::SessionKey::Id(s.info.id)).ok());
  EXPECT_EQ(events_.count("key:a"), 3);  // the user id and two attributes
}

}  // namespace
}  // namespace stateside::testing
