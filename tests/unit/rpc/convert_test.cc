// Proto <-> domain conversion and the wire-format checks.
#include "sidecar/rpc/convert.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace stateside::rpc {
namespace {

TEST(ConvertTest, TimestampsKeepNanoseconds) {
  google::protobuf::Timestamp ts;
  ToProto(absl::FromUnixSeconds(1'700'000'000) + absl::Nanoseconds(123456789), &ts);
  EXPECT_EQ(ts.seconds(), 1'700'000'000);
  EXPECT_EQ(ts.nanos(), 123456789);
}

TEST(ConvertTest, DurationsRoundTrip) {
  google::protobuf::Duration d;
  ToProto(absl::Seconds(90) + absl::Milliseconds(5), &d);
  EXPECT_EQ(d.seconds(), 90);
  EXPECT_EQ(d.nanos(), 5'000'000);
  auto back = PositiveDurationFromProto(d, "ttl");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, absl::Seconds(90) + absl::Milliseconds(5));
}

TEST(ConvertTest, NonPositiveOrMalformedDurationsAreInvalid) {
  google::protobuf::Duration d;
  auto expect_invalid = [&](int64_t seconds, int32_t nanos) {
    d.set_seconds(seconds);
    d.set_nanos(nanos);
    auto r = PositiveDurationFromProto(d, "idle_ttl");
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument)
        << seconds << "s " << nanos << "ns";
    EXPECT_THAT(std::string(r.status().message()), ::testing::StartsWith("idle_ttl: "));
  };
  expect_invalid(0, 0);
  expect_invalid(-1, 0);
  expect_invalid(0, -1);
  expect_invalid(1, 1'000'000'000);
  expect_invalid(int64_t{1} << 62, 0);
}

// PipeCall.timeout: zero means "none", so it is allowed; the rest is
// checked as every Duration.
TEST(ConvertTest, NonNegativeDurationsAllowZeroAndRefuseTheRest) {
  google::protobuf::Duration d;
  auto zero = NonNegativeDurationFromProto(d, "timeout");
  ASSERT_TRUE(zero.ok()) << zero.status();
  EXPECT_EQ(*zero, absl::ZeroDuration());
  d.set_seconds(2);
  d.set_nanos(5);
  EXPECT_EQ(*NonNegativeDurationFromProto(d, "timeout"), absl::Seconds(2) + absl::Nanoseconds(5));
  for (auto [seconds, nanos] : {std::pair<int64_t, int32_t>{-1, 0}, {1, -1},
                                {1, 1'000'000'000}, {int64_t{1} << 62, 0}}) {
    d.set_seconds(seconds);
    d.set_nanos(nanos);
    auto r = NonNegativeDurationFromProto(d, "timeout");
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument)
        << seconds << "s " << nanos << "ns";
    EXPECT_THAT(std::string(r.status().message()), ::testing::StartsWith("timeout: "));
  }
}

TEST(ConvertTest, KeysNeedExactlyANonEmptyBoundedIdOrCookie) {
  v1::SessionKey key;
  EXPECT_EQ(KeyFromProto(false, key, "key").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(KeyFromProto(true, key, "key").status().code(),
            absl::StatusCode::kInvalidArgument);
  key.set_id("");
  EXPECT_EQ(KeyFromProto(true, key, "key").status().code(),
            absl::StatusCode::kInvalidArgument);
  key.set_id(std::string(kMaxKeyBytes + 1, 'a'));
  EXPECT_EQ(KeyFromProto(true, key, "key").status().code(),
            absl::StatusCode::kInvalidArgument);
  key.set_id("abc");
  auto parsed = KeyFromProto(true, key, "key");
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->kind, session::SessionKey::Kind::kId);
  EXPECT_EQ(parsed->value, "abc");
  key.set_cookie("abc.sig");
  parsed = KeyFromProto(true, key, "key");
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->kind, session::SessionKey::Kind::kCookie);
  key.set_cookie("");
  EXPECT_EQ(KeyFromProto(true, key, "keep").status().message(), "keep: cookie is empty");
}

TEST(ConvertTest, UpdateParamsCarryEveryField) {
  v1::UpdateSessionRequest request;
  (*request.mutable_set())["a"] = "1";
  request.add_remove("b");
  auto params = UpdateParamsFromProto(request);
  EXPECT_EQ(params.set.at("a"), "1");
  EXPECT_THAT(params.remove, ::testing::ElementsAre("b"));
  EXPECT_FALSE(params.expected_version.has_value());
  request.set_expected_version(0);  // 0 is a value, distinct from unset
  params = UpdateParamsFromProto(request);
  ASSERT_TRUE(params.expected_version.has_value());
  EXPECT_EQ(*params.expected_version, 0u);
}

TEST(ConvertTest, SessionToProtoCarriesEverything) {
  session::Session session;
  session.info.id = "id";
  session.info.user_id = "u";
  session.info.created = absl::FromUnixSeconds(10);
  session.info.last_access = absl::FromUnixSeconds(11);
  session.info.idle_expiry = absl::FromUnixSeconds(12);
  session.info.absolute_expiry = absl::FromUnixSeconds(13);
  session.info.version = 7;
  session.attributes["k"] = std::string("v\0w", 3);
  session.cookie = "id.sig";
  v1::Session out;
  ToProto(session, &out);
  EXPECT_EQ(out.metadata().id(), "id");
  EXPECT_EQ(out.metadata().user_id(), "u");
  EXPECT_EQ(out.metadata().created().seconds(), 10);
  EXPECT_EQ(out.metadata().last_access().seconds(), 11);
  EXPECT_EQ(out.metadata().idle_expiry().seconds(), 12);
  EXPECT_EQ(out.metadata().absolute_expiry().seconds(), 13);
  EXPECT_EQ(out.metadata().version(), 7u);
  EXPECT_EQ(out.attributes().at("k"), std::string("v\0w", 3));
  EXPECT_EQ(out.cookie(), "id.sig");
}

}  // namespace
}  // namespace stateside::rpc
