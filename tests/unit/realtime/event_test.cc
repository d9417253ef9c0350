#include "sidecar/realtime/event.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace stateside::realtime {
namespace {

using ::testing::HasSubstr;

Event Sample() {
  Event event;
  event.target = TargetKind::kConnection;
  event.to = "c-1";
  event.to_instance = "pod-a";
  event.name = "chat";
  event.payload = std::string("bin\0ary\r\n", 9);
  event.except = {{"pod-a", "c-2"}, {"pod-b", "c/3"}};
  event.published_at = absl::FromUnixMicros(1'700'000'000'123'456);
  event.origin = "pod-b";
  return event;
}

TEST(EventCodecTest, RoundTripsEveryField) {
  const Event event = Sample();
  absl::StatusOr<Event> back = DecodeEvent(EncodeEvent(event));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->target, event.target);
  EXPECT_EQ(back->to, event.to);
  EXPECT_EQ(back->to_instance, event.to_instance);
  EXPECT_EQ(back->name, event.name);
  EXPECT_EQ(back->payload, event.payload);
  EXPECT_EQ(back->except, event.except);
  EXPECT_EQ(back->published_at, event.published_at);
  EXPECT_EQ(back->origin, event.origin);
  EXPECT_EQ(back->sequence, 0u) << "the sequence travels beside the frame";
}

// Cluster-wide operations travel as version 2 frames; every other event
// stays version 1, which older instances read.
TEST(EventCodecTest, ControlEventsRoundTripAsVersionTwoOnly) {
  EXPECT_EQ(EncodeEvent(Sample())[0], 1);
  Event control = Sample();
  control.name.clear();
  control.payload.clear();
  control.control = Control::kJoin;
  control.rooms = {"r1", "r 2"};
  const std::string frame = EncodeEvent(control);
  EXPECT_EQ(frame[0], 2);
  absl::StatusOr<Event> back = DecodeEvent(frame);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->control, Control::kJoin);
  EXPECT_EQ(back->rooms, control.rooms);
  EXPECT_EQ(back->except, control.except);
  for (size_t n = 0; n < frame.size(); ++n) {
    EXPECT_FALSE(DecodeEvent(frame.substr(0, n)).ok()) << "prefix of " << n << " bytes";
  }
  std::string bad_control = frame;
  bad_control[frame.size() - 4 - 2 - 4 - 3 - 4 - 1] = 9;  // the control byte
  EXPECT_FALSE(DecodeEvent(bad_control).ok());
}

TEST(EventCodecTest, RefusesEveryTruncation) {
  const std::string frame = EncodeEvent(Sample());
  for (size_t n = 0; n < frame.size(); ++n) {
    EXPECT_FALSE(DecodeEvent(frame.substr(0, n)).ok()) << "prefix of " << n << " bytes";
  }
}

TEST(EventCodecTest, RefusesTrailingBytesBadVersionAndBadTarget) {
  std::string frame = EncodeEvent(Sample());
  EXPECT_FALSE(DecodeEvent(frame + "x").ok());
  std::string bad_version = frame;
  bad_version[0] = 2;
  EXPECT_FALSE(DecodeEvent(bad_version).ok());
  std::string bad_target = frame;
  bad_target[1] = 9;
  EXPECT_FALSE(DecodeEvent(bad_target).ok());
}

TEST(EventCodecTest, RefusesAnExceptCountLargerThanTheFrame) {
  Event event = Sample();
  event.except.clear();
  std::string frame = EncodeEvent(event);
  // The last four bytes are the except count: claim four billion entries.
  frame.replace(frame.size() - 4, 4, "\xff\xff\xff\xff");
  absl::StatusOr<Event> decoded = DecodeEvent(frame);
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ValidateNameTest, AcceptsPrintableAsciiWithinBounds) {
  EXPECT_TRUE(ValidateName("room", "lobby", 1, 256).ok());
  EXPECT_TRUE(ValidateName("event", "", 0, 128).ok());
  EXPECT_TRUE(ValidateName("room", std::string(256, 'r'), 1, 256).ok());
}

TEST(ValidateNameTest, RefusesEmptyTooLongSpacesAndControlBytes) {
  EXPECT_THAT(ValidateName("room", "", 1, 256).message(), HasSubstr("room: must be 1..256"));
  EXPECT_FALSE(ValidateName("room", std::string(257, 'r'), 1, 256).ok());
  EXPECT_THAT(ValidateName("room", "a b", 1, 256).message(), HasSubstr("printable"));
  EXPECT_FALSE(ValidateName("room", std::string("a\0b", 3), 1, 256).ok());
  EXPECT_FALSE(ValidateName("room", "caf\xc3\xa9", 1, 256).ok());
}

}  // namespace
}  // namespace stateside::realtime
