// The RequestStore conformance suite, and the request ledger's over it: what
// every backend of session/request_store.h keeps (the embedded memory store,
// Redis, Redis Cluster), and that a call with a request_id applies once on
// each. Instantiate with a factory per backend:
//
//   INSTANTIATE_TEST_SUITE_P(Memory, RequestStoreConformanceTest,
//       ::testing::Values(RequestStoreFactory{"memory", [] { ... }}),
//       RequestStoreFactoryName);
//   (and the same for RequestLedgerConformanceTest)
//
// Real time throughout (a Redis entry expires by Redis's clock).
#ifndef STATESIDE_TESTS_SUPPORT_REQUEST_STORE_CONFORMANCE_H_
#define STATESIDE_TESTS_SUPPORT_REQUEST_STORE_CONFORMANCE_H_

#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "sidecar/common/clock.h"
#include "sidecar/common/error_reason.h"
#include "sidecar/crypto/envelope.h"
#include "sidecar/crypto/keyring.h"
#include "sidecar/crypto/random.h"
#include "sidecar/session/request_ledger.h"
#include "sidecar/session/request_store.h"
#include "tests/support/wait.h"

namespace stateside::testing {

struct RequestStoreFactory {
  std::string name;
  // A fresh, empty store; null fails the test (e.g. no redis-server).
  std::function<std::unique_ptr<session::RequestStore>()> make;
};
inline std::string RequestStoreFactoryName(
    const ::testing::TestParamInfo<RequestStoreFactory>& info) {
  return info.param.name;
}
inline void PrintTo(const RequestStoreFactory& f, std::ostream* os) { *os << f.name; }

// Replace, waited for.
inline absl::StatusOr<bool> ReplaceNow(session::RequestStore& store, std::string_view key,
                                       std::string_view expected, std::string_view value,
                                       absl::Duration ttl = absl::Minutes(1)) {
  absl::Notification done;
  absl::StatusOr<bool> result;
  const absl::Time now = absl::Now();
  store.Replace(key, expected, value, now, now + ttl, [&](absl::StatusOr<bool> r) {
    result = std::move(r);
    done.Notify();
  });
  done.WaitForNotification();
  return result;
}

class RequestStoreConformanceTest : public ::testing::TestWithParam<RequestStoreFactory> {
 protected:
  void SetUp() override {
    store_ = GetParam().make();
    ASSERT_NE(store_, nullptr);
  }
  absl::StatusOr<std::optional<std::string>> Claim(std::string_view key, std::string_view value,
                                                   absl::Duration ttl = absl::Minutes(1)) {
    const absl::Time now = absl::Now();
    return store_->Claim(key, value, now, now + ttl);
  }

  std::unique_ptr<session::RequestStore> store_;
};

TEST_P(RequestStoreConformanceTest, AClaimStoresItsValueAndTheNextClaimReadsIt) {
  absl::StatusOr<std::optional<std::string>> first = Claim("t1", "P-first");
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE(first->has_value());
  absl::StatusOr<std::optional<std::string>> second = Claim("t1", "P-second");
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_TRUE(second->has_value());
  EXPECT_EQ(**second, "P-first");
  // Another key is another entry.
  absl::StatusOr<std::optional<std::string>> other = Claim("t2", "P-other");
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_FALSE(other->has_value());
}

TEST_P(RequestStoreConformanceTest, ReplaceNeedsTheExpectedValue) {
  ASSERT_TRUE(Claim("t1", "P-mine").ok());
  absl::StatusOr<bool> wrong = ReplaceNow(*store_, "t1", "P-theirs", "D-theirs");
  ASSERT_TRUE(wrong.ok()) << wrong.status();
  EXPECT_FALSE(*wrong);
  EXPECT_EQ(Claim("t1", "x")->value_or(""), "P-mine");
  absl::StatusOr<bool> right = ReplaceNow(*store_, "t1", "P-mine", "D-mine");
  ASSERT_TRUE(right.ok()) << right.status();
  EXPECT_TRUE(*right);
  EXPECT_EQ(Claim("t1", "x")->value_or(""), "D-mine");
  // Nothing there: nothing replaced, nothing written.
  absl::StatusOr<bool> absent = ReplaceNow(*store_, "t9", "P-mine", "D-mine");
  ASSERT_TRUE(absent.ok()) << absent.status();
  EXPECT_FALSE(*absent);
  EXPECT_FALSE(Claim("t9", "P-new")->has_value());
}

TEST_P(RequestStoreConformanceTest, ReplacingByNothingRemovesTheEntry) {
  ASSERT_TRUE(Claim("t1", "P-mine").ok());
  ASSERT_TRUE(ReplaceNow(*store_, "t1", "P-mine", "").value_or(false));
  absl::StatusOr<std::optional<std::string>> again = Claim("t1", "P-next");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(again->has_value());
}

TEST_P(RequestStoreConformanceTest, ValuesAreBytes) {
  const std::string value("D\0\xff\x01 binary\r\n", 13);
  ASSERT_TRUE(Claim("t1", "P").ok());
  ASSERT_TRUE(ReplaceNow(*store_, "t1", "P", value).value_or(false));
  EXPECT_EQ(Claim("t1", "x")->value_or(""), value);
}

TEST_P(RequestStoreConformanceTest, AnEntryEndsAtItsExpiry) {
  ASSERT_TRUE(Claim("t1", "P-short", absl::Milliseconds(200)).ok());
  EXPECT_TRUE(Claim("t1", "P-next")->has_value());
  // Until it expires every claim reads it; then one claims it anew.
  EXPECT_TRUE(WaitFor([&] {
    absl::StatusOr<std::optional<std::string>> r = Claim("t1", "P-next");
    return r.ok() && !r->has_value();
  }));
  EXPECT_EQ(Claim("t1", "x")->value_or(""), "P-next");
  // A replace keeps the new lifetime it is given.
  ASSERT_TRUE(ReplaceNow(*store_, "t1", "P-next", "D-long", absl::Hours(1)).value_or(false));
  EXPECT_EQ(Claim("t1", "x")->value_or(""), "D-long");
}

// The ledger over each store: keys, sealing and the claim protocol.
class RequestLedgerConformanceTest : public ::testing::TestWithParam<RequestStoreFactory> {
 protected:
  void SetUp() override {
    store_ = GetParam().make();
    ASSERT_NE(store_, nullptr);
    random_ = crypto::NewSecureRandom();
    auto keyring = crypto::Keyring::Create({{"k0", std::string(32, '\x07')}});
    ASSERT_TRUE(keyring.ok()) << keyring.status();
    keyring_ = *std::move(keyring);
    sealer_ = std::make_unique<crypto::Sealer>(keyring_.get(), random_.get());
    ledger_ = std::make_unique<session::RequestLedger>(store_.get(), keyring_.get(),
                                                       sealer_.get(), random_.get(), &clock_,
                                                       absl::Minutes(10));
  }

  // Once, waited for; `apply` answers inline (counted in applied_).
  session::RequestLedger::Answer Once(std::string_view scope, std::string_view request_id,
                                      std::string_view body,
                                      session::RequestLedger::Answer answer) {
    return OnceWith(scope, request_id, body,
                    [this, answer = std::move(answer)](session::RequestLedger::Reply reply) mutable {
                      ++applied_;
                      std::move(reply)(std::move(answer));
                    });
  }
  session::RequestLedger::Answer OnceWith(std::string_view scope, std::string_view request_id,
                                          std::string_view body,
                                          session::RequestLedger::Apply apply) {
    absl::Notification done;
    session::RequestLedger::Answer result = absl::UnknownError("not answered");
    ledger_->Once({.method = "Test/Call", .scope = scope, .request_id = request_id, .body = body},
                  std::move(apply), [&](session::RequestLedger::Answer a) {
                    result = std::move(a);
                    done.Notify();
                  });
    done.WaitForNotification();
    return result;
  }

  SystemClock clock_;
  std::unique_ptr<session::RequestStore> store_;
  std::unique_ptr<RandomSource> random_;
  std::unique_ptr<crypto::Keyring> keyring_;
  std::unique_ptr<crypto::Sealer> sealer_;
  std::unique_ptr<session::RequestLedger> ledger_;
  int applied_ = 0;
};

TEST_P(RequestLedgerConformanceTest, ARetryAnswersTheFirstAnswerWithoutApplying) {
  EXPECT_EQ(Once("alice", "r1", "body", std::string("answer-1")).value_or(""), "answer-1");
  EXPECT_EQ(Once("alice", "r1", "body", std::string("answer-2")).value_or(""), "answer-1");
  EXPECT_EQ(applied_, 1);
  // Another request_id, scope or method is another call.
  EXPECT_EQ(Once("alice", "r2", "body", std::string("answer-3")).value_or(""), "answer-3");
  EXPECT_EQ(Once("bob", "r1", "body", std::string("answer-4")).value_or(""), "answer-4");
  EXPECT_EQ(applied_, 3);
}

TEST_P(RequestLedgerConformanceTest, TheSameRequestIdWithAnotherBodyIsRefused) {
  ASSERT_TRUE(Once("alice", "r1", "body-1", std::string("answer")).ok());
  const session::RequestLedger::Answer reused =
      Once("alice", "r1", "body-2", std::string("other"));
  EXPECT_EQ(reused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(PayloadOf(reused.status(), kReasonPayload), "REQUEST_ID_REUSED");
  EXPECT_EQ(PayloadOf(reused.status(), kFieldPayload), "request_id");
  EXPECT_EQ(applied_, 1);
}

TEST_P(RequestLedgerConformanceTest, ARetryWhileTheFirstRunsIsToldToRetryLater) {
  session::RequestLedger::Answer during = absl::UnknownError("not run");
  session::RequestLedger::Answer first = OnceWith(
      "alice", "r1", "body", [&](session::RequestLedger::Reply reply) {
        // The first call has not answered yet: a retry now meets its claim.
        during = Once("alice", "r1", "body", std::string("never"));
        std::move(reply)(std::string("answer-1"));
      });
  EXPECT_EQ(first.value_or(""), "answer-1");
  EXPECT_EQ(during.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(PayloadOf(during.status(), kReasonPayload), "REQUEST_IN_PROGRESS");
  EXPECT_EQ(applied_, 0);
  EXPECT_EQ(Once("alice", "r1", "body", std::string("never")).value_or(""), "answer-1");
}

TEST_P(RequestLedgerConformanceTest, AnErrorIsNotKeptAndTheRetryApplies) {
  const session::RequestLedger::Answer failed =
      Once("alice", "r1", "body", absl::NotFoundError("no such session"));
  EXPECT_EQ(failed.status(), absl::NotFoundError("no such session"));
  EXPECT_EQ(Once("alice", "r1", "body", std::string("answer")).value_or(""), "answer");
  EXPECT_EQ(applied_, 2);
}

TEST_P(RequestLedgerConformanceTest, ABadRequestIdIsInvalidArgumentAndNothingApplies) {
  for (const std::string& bad : {std::string(), std::string(129, 'a'), std::string("a b"),
                                 std::string("\x01", 1), std::string("caf\xc3\xa9")}) {
    const session::RequestLedger::Answer r = Once("alice", bad, "body", std::string("x"));
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(PayloadOf(r.status(), kFieldPayload), "request_id") << bad;
  }
  EXPECT_EQ(applied_, 0);
}

}  // namespace stateside::testing

#endif  // STATESIDE_TESTS_SUPPORT_REQUEST_STORE_CONFORMANCE_H_
