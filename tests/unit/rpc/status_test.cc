// absl::Status -> grpc::Status: codes one to one, internal details hidden.
#include "sidecar/rpc/status.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace stateside::rpc {
namespace {

TEST(StatusTest, OkIsOk) { EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok()); }

TEST(StatusTest, EveryCodeMapsToTheSameGrpcCodeWithItsMessage) {
  for (int raw = 1; raw <= 16; ++raw) {
    const auto code = static_cast<absl::StatusCode>(raw);
    SCOPED_TRACE(absl::StatusCodeToString(code));
    const grpc::Status status = ToGrpcStatus(absl::Status(code, "why"));
    EXPECT_EQ(static_cast<int>(status.error_code()), raw);
    if (code != absl::StatusCode::kInternal &&
        code != absl::StatusCode::kUnknown &&
        code != absl::StatusCode::kDataLoss) {
      EXPECT_EQ(status.error_message(), "why");
    }
  }
}

TEST(StatusTest, TheCodesClientsActOnAreExact) {
  EXPECT_EQ(ToGrpcStatus(absl::NotFoundError("x")).error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(ToGrpcStatus(absl::InvalidArgumentError("x")).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ToGrpcStatus(absl::AbortedError("x")).error_code(),
            grpc::StatusCode::ABORTED);
  EXPECT_EQ(ToGrpcStatus(absl::UnavailableError("x")).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(ToGrpcStatus(absl::ResourceExhaustedError("x")).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(ToGrpcStatus(absl::FailedPreconditionError("x")).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

TEST(StatusTest, InternalDetailsDoNotReachTheClient) {
  for (const absl::Status& s :
       {absl::InternalError("key k0 bytes 0xdeadbeef"),
        absl::UnknownError("key k0 bytes 0xdeadbeef"),
        absl::DataLossError("key k0 bytes 0xdeadbeef")}) {
    const grpc::Status status = ToGrpcStatus(s);
    EXPECT_FALSE(status.ok());
    EXPECT_THAT(status.error_message(), ::testing::Not(::testing::HasSubstr("deadbeef")));
    EXPECT_FALSE(status.error_message().empty());
  }
}

}  // namespace
}  // namespace stateside::rpc
