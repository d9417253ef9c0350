// Protobuf ⇄ public types and grpc::Status → absl::Status.
#include "client/src/convert.h"

#include <string>
#include <utility>

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

// The sidecar's ErrorInfo survives into the absl::Status, unary and Pipe.
TEST(ConvertTest, TheErrorReasonOfTheDetailsAndOfAPipeResultIsKept) {
  v1::ErrorInfo info;
  info.set_reason("SESSION_LIMIT");
  info.set_domain("stateside.v1");
  (*info.mutable_metadata())["field"] = "user_id";
  v1::RpcStatus details;
  details.set_code(8);
  google::protobuf::Any* any = details.add_details();
  any->set_type_url("type.googleapis.com/google.rpc.ErrorInfo");
  info.SerializeToString(any->mutable_value());
  const absl::Status unary = FromGrpcStatus(
      grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "too many", details.SerializeAsString()));
  EXPECT_EQ(unary.code(), absl::StatusCode::kResourceExhausted);
  std::optional<ErrorReason> reason = ErrorReasonOf(unary);
  ASSERT_TRUE(reason.has_value());
  EXPECT_EQ(reason->reason, "SESSION_LIMIT");
  EXPECT_EQ(reason->domain, "stateside.v1");
  EXPECT_EQ(reason->metadata.at("field"), "user_id");

  v1::PipeResult result;
  result.set_code(5);
  result.set_message("session not found");
  result.mutable_error_info()->set_reason("NOT_FOUND");
  const absl::Status piped = FromPipeResult(result);
  EXPECT_EQ(piped.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(piped.message(), "session not found");
  ASSERT_TRUE(ErrorReasonOf(piped).has_value());
  EXPECT_EQ(ErrorReasonOf(piped)->reason, "NOT_FOUND");

  // No details, garbage details, a client-side error: no reason.
  EXPECT_FALSE(ErrorReasonOf(FromGrpcStatus(grpc::Status(grpc::StatusCode::NOT_FOUND, "x"))));
  EXPECT_FALSE(ErrorReasonOf(
      FromGrpcStatus(grpc::Status(grpc::StatusCode::NOT_FOUND, "x", "\xff\xff"))));
  EXPECT_FALSE(ErrorReasonOf(absl::InvalidArgumentError("bad id")));
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

TEST(ConvertTest, GetInstanceCarriesTheApiRevisionAndCapabilities) {
  v1::GetInstanceResponse response;
  response.mutable_instance()->set_id("pod-1");
  response.set_api_revision(3);
  response.mutable_capabilities()->set_pipe(true);
  response.mutable_capabilities()->set_reflection(true);
  response.mutable_capabilities()->set_request_ids(true);
  response.mutable_capabilities()->set_realtime_resume(true);
  response.mutable_capabilities()->set_topology(v1::TOPOLOGY_SENTINEL);
  InstanceInfo info = InstanceFromProto(response);
  EXPECT_EQ(info.id, "pod-1");
  EXPECT_EQ(info.api_revision, 3u);
  EXPECT_TRUE(info.capabilities.pipe);
  EXPECT_FALSE(info.capabilities.session_events);
  EXPECT_TRUE(info.capabilities.reflection);
  EXPECT_TRUE(info.capabilities.request_ids);
  EXPECT_TRUE(info.capabilities.realtime_resume);
  EXPECT_EQ(info.capabilities.topology, StoreTopology::kSentinel);
  EXPECT_EQ(StoreTopologyName(info.capabilities.topology), "sentinel");

  // A topology this client does not know, and a sidecar that says nothing.
  response.mutable_capabilities()->set_topology(static_cast<v1::Topology>(99));
  EXPECT_EQ(InstanceFromProto(response).capabilities.topology, StoreTopology::kUnspecified);
  info = InstanceFromProto(v1::GetInstanceResponse());
  EXPECT_EQ(info.api_revision, 0u);
  EXPECT_FALSE(info.capabilities.pipe);
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

// Every attribute arrives with its exact bytes (binary, empty, large), and
// the cookie and metadata with them, when the response's strings are moved
// out rather than copied.
TEST(ConvertTest, ASessionsBytesArriveWhole) {
  v1::Session s;
  s.mutable_metadata()->set_id("sid");
  s.mutable_metadata()->set_user_id("u1");
  s.mutable_metadata()->set_version(7);
  const std::string binary("a\0b\xff", 4);
  const std::string large(64 * 1024, 'x');
  (*s.mutable_attributes())["bin"] = binary;
  (*s.mutable_attributes())["empty"] = "";
  (*s.mutable_attributes())["large"] = large;
  s.set_cookie("sid.signature");
  const Session session = SessionFromProto(std::move(s));
  EXPECT_EQ(session.info.id, "sid");
  EXPECT_EQ(session.info.user_id, "u1");
  EXPECT_EQ(session.info.version, 7u);
  EXPECT_EQ(session.attributes, (Attributes{{"bin", binary}, {"empty", ""}, {"large", large}}));
  EXPECT_EQ(session.cookie, "sid.signature");
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
