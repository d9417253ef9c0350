// The request-id store conformance suite and the request ledger's, on the
// embedded memory store, the memory store's own bound, and that nothing of
// a call reaches a store in plaintext.
#include "sidecar/session/memory_request_store.h"

#include <memory>
#include <string>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "sidecar/common/clock.h"
#include "sidecar/crypto/envelope.h"
#include "sidecar/crypto/keyring.h"
#include "sidecar/crypto/random.h"
#include "sidecar/session/request_ledger.h"
#include "tests/support/request_store_conformance.h"

namespace stateside::testing {
namespace {

RequestStoreFactory MemoryRequests() {
  return {"memory", [] { return std::make_unique<session::MemoryRequestStore>(1000); }};
}

INSTANTIATE_TEST_SUITE_P(Memory, RequestStoreConformanceTest, ::testing::Values(MemoryRequests()),
                         RequestStoreFactoryName);
INSTANTIATE_TEST_SUITE_P(Memory, RequestLedgerConformanceTest,
                         ::testing::Values(MemoryRequests()), RequestStoreFactoryName);

// Records what reaches the store, to show that none of it is plaintext.
class RecordingRequestStore final : public session::RequestStore {
 public:
  absl::StatusOr<std::optional<std::string>> Claim(std::string_view key, std::string_view value,
                                                   absl::Time now, absl::Time until) override {
    seen_.append(key).append(value);
    return inner_.Claim(key, value, now, until);
  }
  void Replace(std::string_view key, std::string_view expected, std::string_view value,
               absl::Time now, absl::Time until, Done done) override {
    seen_.append(key).append(value);
    inner_.Replace(key, expected, value, now, until, std::move(done));
  }
  const std::string& seen() const { return seen_; }

 private:
  session::MemoryRequestStore inner_{100};
  std::string seen_;
};

TEST(RequestLedgerTest, NothingOfTheCallReachesTheStoreInPlaintext) {
  RecordingRequestStore store;
  std::unique_ptr<RandomSource> random = crypto::NewSecureRandom();
  auto keyring = crypto::Keyring::Create({{"k0", std::string(32, '\x05')}});
  ASSERT_TRUE(keyring.ok()) << keyring.status();
  crypto::Sealer sealer(keyring->get(), random.get());
  SystemClock clock;
  session::RequestLedger ledger(&store, keyring->get(), &sealer, random.get(), &clock,
                                absl::Minutes(10));
  for (int attempt = 0; attempt < 2; ++attempt) {
    absl::Notification done;
    std::string answer;
    ledger.Once({.method = "Test/Call", .scope = "scope-alice", .request_id = "rid-12345",
                 .body = "body-plaintext"},
                [](session::RequestLedger::Reply reply) {
                  std::move(reply)(std::string("answer-plaintext"));
                },
                [&](session::RequestLedger::Answer a) {
                  answer = a.value_or("");
                  done.Notify();
                });
    done.WaitForNotification();
    EXPECT_EQ(answer, "answer-plaintext");
  }
  ASSERT_FALSE(store.seen().empty());
  for (const char* plain : {"scope-alice", "rid-12345", "body-plaintext", "answer-plaintext",
                            "Test/Call"}) {
    EXPECT_EQ(store.seen().find(plain), std::string::npos) << plain;
  }
}

TEST(MemoryRequestStoreTest, AFullStoreDropsExpiredEntriesThenRefuses) {
  session::MemoryRequestStore store(2);
  const absl::Time now = absl::FromUnixSeconds(1700000000);
  ASSERT_TRUE(store.Claim("a", "P", now, now + absl::Seconds(1)).ok());
  ASSERT_TRUE(store.Claim("b", "P", now, now + absl::Seconds(10)).ok());
  EXPECT_EQ(store.Claim("c", "P", now, now + absl::Seconds(10)).status().code(),
            absl::StatusCode::kResourceExhausted);
  // "a" has expired by then: it makes room.
  const absl::Time later = now + absl::Seconds(2);
  absl::StatusOr<std::optional<std::string>> c = store.Claim("c", "P", later, later + absl::Seconds(10));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->has_value());
  EXPECT_EQ(store.size(), 2u);
  EXPECT_EQ(store.Sweep(now + absl::Hours(1)), 2u);
  EXPECT_EQ(store.size(), 0u);
}

}  // namespace
}  // namespace stateside::testing
