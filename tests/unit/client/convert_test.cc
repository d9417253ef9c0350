// Protobuf ⇄ public types and grpc::Status → absl::Status.
#include "client/src/convert.h"

#include "gtest/gtest.h"

namespace stateside::client_internal {
namespace {

TEST(ConvertTest, GrpcStatusKeepsEveryCodeAndTheMessage) {
  EXPECT_TRUE(FromGrpcStatus(grpc::Status::OK).ok());
  for (int code = 1; code <= 16; ++code) {
    const absl::Status s =
        FromGrpcStatus(grpc::Status(static_cast<grpc::StatusCode>(code), "why"));
    EXPECT_EQ(static_cast<int>(s.code()), code);
    EXPECT_EQ(s.message(), "why");
  }
  EXPECT_EQ(FromGrpcStatus(grpc::Status(grpc::StatusCode::ABORTED, "x")).code(),
            absl::StatusCode::kAborted);
}

TEST(ConvertTest, TimestampsAndDurationsRoundTrip) {
  google::protobuf::Timestamp ts;
  ts.set_seconds(1'700'000'000);
  ts.set_nanos(5);
  EXPECT_EQ(TimeFromProto(ts), absl::FromUnixSeconds(1'700'000'000) + absl::Nanoseconds(5));

  google::protobuf::Duration d;
  ASSERT_TRUE(DurationToProto(absl::Milliseconds(1500), &d).ok());
  EXPECT_EQ(d.seconds(), 1);
  EXPECT_EQ(d.nanos(), 500'000'000);
  EXPECT_EQ(DurationFromProto(d), absl::Milliseconds(1500));
  ASSERT_TRUE(DurationToProto(-absl::Milliseconds(1500), &d).ok());
  EXPECT_EQ(d.seconds(), -1);  // same sign, as the proto requires
  EXPECT_EQ(d.nanos(), -500'000'000);
  EXPECT_EQ(DurationToProto(absl::InfiniteDuration(), &d).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ConvertTest, SessionRefPicksTheOneofField) {
  v1::SessionKey key;
  SessionRefToProto(SessionRef::Cookie("a.b"), &key);
  EXPECT_EQ(key.kind_case(), v1::SessionKey::kCookie);
  EXPECT_EQ(key.cookie(), "a.b");
  SessionRefToProto(SessionRef::Id(""), &key);
  // An empty id is still sent as an id (the sidecar answers INVALID_ARGUMENT).
  EXPECT_EQ(key.kind_case(), v1::SessionKey::kId);
}

TEST(ConvertTest, HealthStatuses) {
  using R = grpc::health::v1::HealthCheckResponse;
  EXPECT_EQ(ServingStatusFromProto(R::SERVING), ServingStatus::kServing);
  EXPECT_EQ(ServingStatusFromProto(R::NOT_SERVING), ServingStatus::kNotServing);
  EXPECT_EQ(ServingStatusFromProto(R::SERVICE_UNKNOWN), ServingStatus::kServiceUnknown);
  EXPECT_EQ(ServingStatusFromProto(R::UNKNOWN), ServingStatus::kUnknown);
}

}  // namespace
}  // namespace stateside::client_internal
