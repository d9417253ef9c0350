// absl::Status -> grpc::Status: codes one to one, internal details hidden.
#include "sidecar/rpc/status.h"

#include "sidecar/common/error_reason.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace stateside::rpc {
namespace {

// The ErrorInfo of the grpc::Status's details (reason "" if none).
v1::ErrorInfo DetailOf(const grpc::Status& status) {
  v1::RpcStatus details;
  v1::ErrorInfo info;
  EXPECT_TRUE(details.ParseFromString(status.error_details()));
  EXPECT_EQ(details.code(), static_cast<int>(status.error_code()));
  EXPECT_EQ(details.message(), status.error_message());
  EXPECT_EQ(details.details_size(), 1);
  for (const google::protobuf::Any& any : details.details()) {
    EXPECT_EQ(any.type_url(), "type.googleapis.com/google.rpc.ErrorInfo");
    EXPECT_TRUE(info.ParseFromString(any.value()));
  }
  return info;
}

TEST(StatusTest, ANamedReasonTravelsWithItsFieldAndLimit) {
  const v1::ErrorInfo info = DetailOf(ToGrpcStatus(WithReason(
      absl::InvalidArgumentError("attribute 'a' is 9 bytes"), "ATTRIBUTE_TOO_LARGE",
      "attributes", "max_attribute_bytes")));
  EXPECT_EQ(info.reason(), "ATTRIBUTE_TOO_LARGE");
  EXPECT_EQ(info.domain(), "stateside.v1");
  EXPECT_EQ(info.metadata().at("field"), "attributes");
  EXPECT_EQ(info.metadata().at("limit"), "max_attribute_bytes");
}

TEST(StatusTest, OtherErrorsGetTheirReasonFromTheCodeAndTheFieldFromTheMessage) {
  EXPECT_EQ(DetailOf(ToGrpcStatus(absl::NotFoundError("session not found"))).reason(), "NOT_FOUND");
  EXPECT_EQ(DetailOf(ToGrpcStatus(absl::AbortedError("version is 3"))).reason(), "VERSION_MISMATCH");
  EXPECT_EQ(DetailOf(ToGrpcStatus(absl::UnavailableError("redis down"))).reason(), "UNAVAILABLE");
  v1::ErrorInfo info = DetailOf(ToGrpcStatus(absl::InvalidArgumentError("user_id: required")));
  EXPECT_EQ(info.reason(), "INVALID_ARGUMENT");
  EXPECT_EQ(info.metadata().at("field"), "user_id");
  info = DetailOf(ToGrpcStatus(absl::InvalidArgumentError("page_token is not a next_page_token")));
  EXPECT_EQ(info.metadata().at("field"), "page_token");
  // Prose is no field name.
  EXPECT_EQ(DetailOf(ToGrpcStatus(absl::InvalidArgumentError("attribute name is empty")))
                .metadata().count("field"), 0u);
}

TEST(StatusTest, InternalErrorsRevealNoReasonFromInside) {
  const v1::ErrorInfo info = DetailOf(ToGrpcStatus(
      WithReason(absl::InternalError("hiredis: secret detail"), "SECRET_THING", "secret_field")));
  EXPECT_EQ(info.reason(), "INTERNAL");
  EXPECT_TRUE(info.metadata().empty());
}

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
