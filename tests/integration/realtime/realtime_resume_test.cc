// Connection-state recovery on real processes on one redis-server: every
// target (room, user, connection, broadcasts) has its own sequence, and a
// Subscribe stream opened with resume points replays exactly the events the
// app missed per stream, then goes live; a resume point the log no longer
// reaches gives a Gap; an excluded connection is never named by a replay.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/realtime/realtime_fixture.h"

namespace stateside::testing {
namespace {

using ::testing::ElementsAre;

class RealtimeResumeTest : public RealtimeClusterTest {
 protected:
  static v1::StreamPosition Room(const std::string& room, uint64_t sequence) {
    v1::StreamPosition p;
    p.set_room(room);
    p.set_sequence(sequence);
    return p;
  }
  static v1::StreamPosition User(const std::string& user, uint64_t sequence) {
    v1::StreamPosition p;
    p.set_user_id(user);
    p.set_sequence(sequence);
    return p;
  }
  static v1::StreamPosition Conn(const std::string& conn, uint64_t sequence) {
    v1::StreamPosition p;
    p.mutable_connection()->set_conn_id(conn);  // this instance
    p.set_sequence(sequence);
    return p;
  }
  static v1::StreamPosition All(uint64_t sequence) {
    v1::StreamPosition p;
    p.set_all(true);
    p.set_sequence(sequence);
    return p;
  }

  // Publishes and returns the sequence number (0 on failure).
  static uint64_t Send(const Pod& pod, const v1::PublishRequest& request) {
    v1::PublishResponse response;
    const grpc::Status s = Publish(pod, request, &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return response.sequence();
  }

  // "<payload>@<sequence>" of the next `n` messages ("gap:<after>/<first>"
  // for a resume gap, "?" for anything else or nothing).
  static std::vector<std::string> Take(EventStream& stream, int n) {
    std::vector<std::string> out;
    for (int i = 0; i < n; ++i) {
      std::optional<v1::RealtimeEvent> event = stream.Next();
      if (!event.has_value()) {
        out.push_back("?");
      } else if (event->has_delivery()) {
        out.push_back(absl::StrCat(event->delivery().payload(), "@", event->delivery().sequence()));
      } else if (event->has_gap() &&
                 event->gap().reason() == v1::Gap::REASON_RESUME_INCOMPLETE) {
        out.push_back(absl::StrCat("gap:", event->gap().resume().sequence(), "/",
                                   event->gap().first_sequence()));
      } else {
        out.push_back("?");
      }
    }
    return out;
  }
};

TEST_F(RealtimeResumeTest, AResumeReplaysExactlyTheMissedEventsPerTargetThenGoesLive) {
  Pod a, b;
  ASSERT_NO_FATAL_FAILURE(StartPod(a, "pod-a"));
  ASSERT_NO_FATAL_FAILURE(StartPod(b, "pod-b"));
  ASSERT_TRUE(Register(b, "b1", "ann", {"r"}).ok());
  {
    std::unique_ptr<EventStream> first = OpenStream(b);
    EXPECT_EQ(Send(a, ToRoom("r", "r1")), 1u);
    EXPECT_EQ(Send(a, ToUser("ann", "u1")), 1u);
    EXPECT_EQ(Send(a, ToConn("pod-b", "b1", "c1")), 1u);
    EXPECT_EQ(Send(a, ToAll("a1")), 1u);
    EXPECT_THAT(Take(*first, 4), ElementsAre("r1@1", "u1@1", "c1@1", "a1@1"));
  }  // the app's stream goes down
  EXPECT_EQ(Send(a, ToRoom("r", "r2")), 2u);
  EXPECT_EQ(Send(a, ToUser("ann", "u2")), 2u);
  EXPECT_EQ(Send(a, ToConn("pod-b", "b1", "c2")), 2u);
  EXPECT_EQ(Send(a, ToRoom("r", "r3")), 3u);
  EXPECT_EQ(Send(a, ToUser("ann", "u3")), 3u);
  EXPECT_EQ(Send(a, ToUser("bob", "not-ann")), 1u) << "each user has a stream of its own";

  v1::SubscribeRequest request;
  *request.add_resume() = Room("r", 1);
  *request.add_resume() = User("ann", 1);
  *request.add_resume() = Conn("b1", 1);
  *request.add_resume() = All(1);
  std::unique_ptr<EventStream> resumed = OpenStream(b, false, request);
  EXPECT_THAT(Take(*resumed, 5), ElementsAre("r2@2", "r3@3", "u2@2", "u3@3", "c2@2"));
  // Then live, each event once.
  EXPECT_EQ(Send(a, ToRoom("r", "r4")), 4u);
  EXPECT_EQ(Send(a, ToAll("a2")), 2u);
  EXPECT_THAT(Take(*resumed, 2), ElementsAre("r4@4", "a2@2"));
  ExpectNothingBeforeMarker(a, b, *resumed, "b1");
}

TEST_F(RealtimeResumeTest, AResumePastTheLogsReachGivesAGapThenWhatIsLeft) {
  Pod a, b;
  // 128 KiB of frames per stream: two events of 60 KiB at most.
  ASSERT_NO_FATAL_FAILURE(StartPod(a, "pod-a", {{"STATESIDE_ROOM_HISTORY_BYTES", "131072"}}));
  ASSERT_NO_FATAL_FAILURE(StartPod(b, "pod-b", {{"STATESIDE_ROOM_HISTORY_BYTES", "131072"}}));
  ASSERT_TRUE(Register(b, "b1", "ann", {"r"}).ok());
  const std::string big(60 << 10, 'x');
  for (int i = 1; i <= 5; ++i) ASSERT_EQ(Send(a, ToRoom("r", absl::StrCat("r", i, big))), i);

  v1::SubscribeRequest request;
  *request.add_resume() = Room("r", 1);
  std::unique_ptr<EventStream> resumed = OpenStream(b, false, request);
  std::optional<v1::RealtimeEvent> gap = resumed->Next();
  ASSERT_TRUE(gap.has_value() && gap->has_gap()) << (gap ? gap->ShortDebugString() : "none");
  EXPECT_EQ(gap->gap().reason(), v1::Gap::REASON_RESUME_INCOMPLETE);
  EXPECT_EQ(gap->gap().resume().room(), "r");
  EXPECT_EQ(gap->gap().resume().sequence(), 1u);
  const uint64_t first = gap->gap().first_sequence();
  EXPECT_GE(first, 4u);
  EXPECT_LE(first, 5u);
  for (uint64_t seq = first; seq <= 5; ++seq) {
    std::optional<v1::Delivery> d = resumed->NextDelivery();
    ASSERT_TRUE(d.has_value());
    EXPECT_EQ(d->sequence(), seq);
    EXPECT_EQ(d->payload().substr(0, 2), absl::StrCat("r", seq));
  }
  // Inside the window: no gap.
  v1::SubscribeRequest inside;
  *inside.add_resume() = Room("r", 4);
  std::unique_ptr<EventStream> again = OpenStream(b, false, inside);
  std::optional<v1::RealtimeEvent> next = again->Next();
  ASSERT_TRUE(next.has_value() && next->has_delivery());
  EXPECT_EQ(next->delivery().sequence(), 5u);
}

TEST_F(RealtimeResumeTest, AnExcludedConnectionNeverReceivesAReplayedEvent) {
  Pod a, b;
  ASSERT_NO_FATAL_FAILURE(StartPod(a, "pod-a"));
  ASSERT_NO_FATAL_FAILURE(StartPod(b, "pod-b"));
  ASSERT_TRUE(Register(b, "b1", "ann", {"r"}).ok());
  ASSERT_TRUE(Register(b, "b2", "bob", {"r"}).ok());
  v1::PublishRequest not_b2 = ToRoom("r", "not-b2");
  AddExcept(not_b2, "pod-b", "b2");
  Send(a, not_b2);
  v1::PublishRequest nobody = ToRoom("r", "nobody");
  AddExcept(nobody, "pod-b", "b1");
  AddExcept(nobody, "pod-b", "b2");
  Send(a, nobody);
  Send(a, ToRoom("r", "both"));

  v1::SubscribeRequest request;
  *request.add_resume() = Room("r", 0);
  std::unique_ptr<EventStream> resumed = OpenStream(b, false, request);
  std::optional<v1::Delivery> d = resumed->NextDelivery();
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->payload(), "not-b2");
  EXPECT_THAT(d->conn_ids(), ElementsAre("b1"));
  d = resumed->NextDelivery();
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->payload(), "both") << "an event every local connection excluded is not replayed";
  EXPECT_THAT(d->conn_ids(), ElementsAre("b1", "b2"));
}

TEST_F(RealtimeResumeTest, BadResumePointsAreRefusedNamingTheField) {
  Pod b;
  ASSERT_NO_FATAL_FAILURE(StartPod(b, "pod-b"));
  const auto refused = [&](const v1::SubscribeRequest& request) {
    EventStream stream(b.rt.get(), request);
    std::optional<grpc::Status> status = stream.WaitEnded(absl::Seconds(10));
    return status.has_value() ? *status : grpc::Status(grpc::StatusCode::UNKNOWN, "open");
  };
  v1::SubscribeRequest unset;
  unset.add_resume()->set_sequence(3);
  grpc::Status s = refused(unset);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), ::testing::HasSubstr("resume.target"));
  v1::SubscribeRequest twice;
  *twice.add_resume() = Room("r", 1);
  *twice.add_resume() = Room("r", 2);
  s = refused(twice);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), ::testing::HasSubstr("resume: a stream named twice"));
  v1::SubscribeRequest bad_room;
  *bad_room.add_resume() = Room("a room", 1);
  s = refused(bad_room);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), ::testing::HasSubstr("resume.room"));
}

}  // namespace
}  // namespace stateside::testing
