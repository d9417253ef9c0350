// Shared fixture of the SessionManager tests: a real keyring, sealer and
// cookie signer over a MemorySessionStore, a FakeClock and an event recorder.
#ifndef STATESIDE_TESTS_UNIT_SESSION_SESSION_TEST_FIXTURE_H_
#define STATESIDE_TESTS_UNIT_SESSION_SESSION_TEST_FIXTURE_H_

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "sidecar/crypto/cookie.h"
#include "sidecar/crypto/envelope.h"
#include "sidecar/crypto/keyring.h"
#include "sidecar/crypto/random.h"
#include "sidecar/session/memory_store.h"
#include "sidecar/session/session_events.h"
#include "sidecar/session/session_manager.h"
#include "tests/support/fake_clock.h"
#include "tests/support/recording_events.h"

namespace stateside::testing {

inline std::unique_ptr<crypto::Keyring> MakeKeyring(
    const std::vector<std::string>& ids) {
  std::vector<crypto::KeySpec> specs;
  for (const std::string& id : ids) {
    // Deterministic per id, so [b, a] holds the same "a" as [a].
    specs.push_back({id, std::string(32, id.empty() ? 'x' : id[0])});
  }
  auto keyring = crypto::Keyring::Create(std::move(specs));
  EXPECT_TRUE(keyring.ok()) << keyring.status();
  return keyring.ok() ? *std::move(keyring) : nullptr;
}

inline std::unique_ptr<crypto::CookieSigner> MakeSigner(
    std::vector<std::string> secrets) {
  auto signer = crypto::CookieSigner::Create(std::move(secrets));
  EXPECT_TRUE(signer.ok()) << signer.status();
  return signer.ok() ? *std::move(signer) : nullptr;
}

inline const std::string& SecretA() {
  static const std::string* const kSecret = new std::string(32, 'S');
  return *kSecret;
}

// The policy of most tests: idle 30m, absolute 8h, default limits.
inline session::SessionPolicy TestPolicy() {
  session::SessionPolicy policy;
  policy.idle_ttl = absl::Minutes(30);
  policy.absolute_ttl = absl::Hours(8);
  return policy;
}

class SessionManagerTest : public ::testing::Test {
 protected:
  SessionManagerTest()
      : random_(crypto::NewSecureRandom()),
        keyring_(MakeKeyring({"a"})),
        sealer_(keyring_.get(), random_.get()),
        signer_(MakeSigner({SecretA()})),
        store_(1000) {
    Rebuild(TestPolicy());
  }

  // Replaces the manager (same store, keys and clock) with another policy.
  void Rebuild(session::SessionPolicy policy) {
    manager_ = std::make_unique<session::SessionManager>(
        &store_, &sealer_, signer_.get(), random_.get(), &clock_,
        std::move(policy), &events_);
  }

  // Creates a session or fails the test.
  session::Session MustCreate(std::string user_id = "alice",
                     absl::flat_hash_map<std::string, std::string> attrs = {
                         {"cart", "[]"}}) {
    session::CreateParams params;
    params.user_id = std::move(user_id);
    params.attributes = std::move(attrs);
    absl::StatusOr<session::Session> session = manager_->Create(params);
    EXPECT_TRUE(session.ok()) << session.status();
    return session.ok() ? *std::move(session) : session::Session{};
  }

  // The stored record, bypassing the manager (no touch).
  session::StoredSession Raw(const std::string& id) {
    session::ReadOptions options;
    options.now = clock_.Now();
    options.touch = false;
    absl::StatusOr<session::StoredSession> s = store_.Get(id, options);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *std::move(s) : session::StoredSession{};
  }

  absl::Status GetStatus(const session::SessionKey& key) {
    return manager_->Get(key, /*touch=*/false).status();
  }

  FakeClock clock_;
  RecordingEvents events_;
  std::unique_ptr<RandomSource> random_;
  std::unique_ptr<crypto::Keyring> keyring_;
  crypto::Sealer sealer_;
  std::unique_ptr<crypto::CookieSigner> signer_;
  session::MemorySessionStore store_;
  std::unique_ptr<session::SessionManager> manager_;
};

// The one answer for every session that cannot be served.
#define EXPECT_SESSION_NOT_FOUND(expr)                             \
  do {                                                             \
    const ::absl::Status stateside_nf_ = (expr);                   \
    EXPECT_EQ(stateside_nf_.code(), ::absl::StatusCode::kNotFound) \
        << stateside_nf_;                                          \
    EXPECT_EQ(stateside_nf_.message(), "session not found");       \
  } while (0)

}  // namespace stateside::testing

#endif  // STATESIDE_TESTS_UNIT_SESSION_SESSION_TEST_FIXTURE_H_
