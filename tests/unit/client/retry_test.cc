// The retry policy: which calls are retried, on which codes, and the backoff.
#include "client/src/retry.h"

#include <set>
#include <string>

#include "gtest/gtest.h"

namespace stateside::client_internal {
namespace {

TEST(RetryPolicyTest, OnlyCreateUpdateAndRegenerateAreNotIdempotent) {
  const std::set<Rpc> not_idempotent = {Rpc::kCreateSession, Rpc::kUpdateSession,
                                        Rpc::kRegenerateSession};
  for (Rpc rpc : kAllRpcs) {
    EXPECT_EQ(IsIdempotent(rpc), not_idempotent.count(rpc) == 0) << RpcName(rpc);
  }
}

TEST(RetryPolicyTest, CreateRegenerateAndPublishCarryARequestId) {
  const std::set<Rpc> with_request_id = {Rpc::kCreateSession, Rpc::kRegenerateSession,
                                         Rpc::kPublish};
  for (Rpc rpc : kAllRpcs) {
    EXPECT_EQ(CarriesRequestId(rpc), with_request_id.count(rpc) == 1) << RpcName(rpc);
  }
  for (Rpc rpc : kRealtimeRpcs) {
    EXPECT_EQ(CarriesRequestId(rpc), with_request_id.count(rpc) == 1) << RpcName(rpc);
  }
  // Only UpdateSession is neither idempotent nor safe to retry.
  for (Rpc rpc : kAllRpcs) EXPECT_EQ(IsRetryable(rpc), rpc != Rpc::kUpdateSession) << RpcName(rpc);
  for (Rpc rpc : kRealtimeRpcs) EXPECT_TRUE(IsRetryable(rpc)) << RpcName(rpc);
}

TEST(RetryPolicyTest, RequestIdsAre128RandomBitsInHex) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const std::string id = NewRequestId();
    ASSERT_EQ(id.size(), 32u) << id;
    EXPECT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos) << id;
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(RetryPolicyTest, RetriesRetryableCallsOnUnavailableOnly) {
  for (int code = 0; code <= 16; ++code) {
    const auto c = static_cast<absl::StatusCode>(code);
    for (Rpc rpc : kAllRpcs) {
      const bool expected = c == absl::StatusCode::kUnavailable && IsRetryable(rpc);
      EXPECT_EQ(ShouldRetry(rpc, c, 0, 3), expected)
          << RpcName(rpc) << " " << absl::StatusCodeToString(c);
    }
  }
}

TEST(RetryPolicyTest, StopsAfterMaxRetries) {
  const auto unavailable = absl::StatusCode::kUnavailable;
  EXPECT_TRUE(ShouldRetry(Rpc::kGetSession, unavailable, 2, 3));
  EXPECT_FALSE(ShouldRetry(Rpc::kGetSession, unavailable, 3, 3));
  EXPECT_FALSE(ShouldRetry(Rpc::kGetSession, unavailable, 0, 0));
}

TEST(BackoffTest, StaysWithinHalfCapAndCap) {
  const absl::Duration initial = absl::Milliseconds(20), max = absl::Seconds(1);
  const absl::Duration caps[] = {absl::Milliseconds(20), absl::Milliseconds(40),
                                 absl::Milliseconds(80), absl::Milliseconds(160),
                                 absl::Milliseconds(320), absl::Milliseconds(640),
                                 absl::Seconds(1), absl::Seconds(1)};
  for (int retry = 1; retry <= 8; ++retry) {
    const absl::Duration cap = caps[retry - 1];
    EXPECT_EQ(BackoffDelay(retry, initial, max, 0.0), cap / 2) << retry;
    EXPECT_EQ(BackoffDelay(retry, initial, max, 1.0), cap) << retry;
    const absl::Duration mid = BackoffDelay(retry, initial, max, 0.5);
    EXPECT_GT(mid, cap / 2);
    EXPECT_LT(mid, cap);
  }
}

TEST(BackoffTest, ClampsJitterAndNeverOverflows) {
  const absl::Duration initial = absl::Milliseconds(20), max = absl::Seconds(1);
  EXPECT_EQ(BackoffDelay(1, initial, max, -5.0), absl::Milliseconds(10));
  EXPECT_EQ(BackoffDelay(1, initial, max, 7.0), absl::Milliseconds(20));
  EXPECT_EQ(BackoffDelay(1'000'000, initial, max, 1.0), max);
  EXPECT_EQ(BackoffDelay(1'000'000, initial, max, 0.0), max / 2);
}

TEST(BackoffTest, InitialAboveMaxIsCappedAtMax) {
  EXPECT_EQ(BackoffDelay(1, absl::Seconds(5), absl::Seconds(1), 1.0), absl::Seconds(1));
}

}  // namespace
}  // namespace stateside::client_internal
