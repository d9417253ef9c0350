// Cluster-wide operations on real processes on one redis-server: the
// connections a room or a user selects join or leave rooms, or are
// disconnected, on every sidecar (JoinConnections, LeaveConnections,
// DisconnectConnections), and bad input is refused naming the field.
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/realtime/realtime_fixture.h"
#include "tests/support/wait.h"

namespace stateside::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class RealtimeConnectionsTest : public RealtimeClusterTest {
 protected:
  static v1::ConnectionSelector OfUser(const std::string& user) {
    v1::ConnectionSelector s;
    s.set_user_id(user);
    return s;
  }
  static v1::ConnectionSelector OfRoom(const std::string& room) {
    v1::ConnectionSelector s;
    s.set_room(room);
    return s;
  }
  static grpc::Status JoinAll(const Pod& pod, const v1::ConnectionSelector& of,
                              const std::vector<std::string>& rooms,
                              int64_t* instances = nullptr) {
    v1::JoinConnectionsRequest request;
    *request.mutable_connections() = of;
    for (const std::string& room : rooms) request.add_rooms(room);
    v1::JoinConnectionsResponse response;
    grpc::Status s = pod.rt->JoinConnections(Ctx().get(), request, &response);
    if (instances != nullptr) *instances = response.instances();
    return s;
  }
  static grpc::Status LeaveAll(const Pod& pod, const v1::ConnectionSelector& of,
                               const std::vector<std::string>& rooms) {
    v1::LeaveConnectionsRequest request;
    *request.mutable_connections() = of;
    for (const std::string& room : rooms) request.add_rooms(room);
    v1::LeaveConnectionsResponse response;
    return pod.rt->LeaveConnections(Ctx().get(), request, &response);
  }
  static grpc::Status DisconnectAll(const Pod& pod, const v1::ConnectionSelector& of) {
    v1::DisconnectConnectionsRequest request;
    *request.mutable_connections() = of;
    v1::DisconnectConnectionsResponse response;
    return pod.rt->DisconnectConnections(Ctx().get(), request, &response);
  }
  // The next Disconnect of `stream`, skipping anything else.
  static std::vector<std::string> NextDisconnect(EventStream& stream) {
    for (int i = 0; i < 10; ++i) {
      std::optional<v1::RealtimeEvent> event = stream.Next();
      if (!event.has_value()) break;
      if (event->has_disconnect()) {
        return {event->disconnect().conn_ids().begin(), event->disconnect().conn_ids().end()};
      }
    }
    return {"<none>"};
  }
};

TEST_F(RealtimeConnectionsTest, EveryConnectionOfAUserJoinsLeavesAndIsDisconnectedClusterWide) {
  Pod a, b;
  ASSERT_NO_FATAL_FAILURE(StartPod(a, "pod-a"));
  ASSERT_NO_FATAL_FAILURE(StartPod(b, "pod-b"));
  std::unique_ptr<EventStream> sa = OpenStream(a);
  std::unique_ptr<EventStream> sb = OpenStream(b);
  ASSERT_TRUE(Register(a, "a1", "alice").ok());
  ASSERT_TRUE(Register(b, "b1", "alice", {"old"}).ok());
  ASSERT_TRUE(Register(b, "b2", "bob", {"old"}).ok());

  // Every connection of alice, on both sidecars, joins r (asked of pod-a).
  int64_t instances = 0;
  ASSERT_TRUE(JoinAll(a, OfUser("alice"), {"r"}, &instances).ok());
  EXPECT_EQ(instances, 2);
  ASSERT_TRUE(WaitFor([&] {
    std::optional<std::set<Ref>> members = MemberSet(a, "r");
    return members.has_value() && members->size() == 2;
  }));
  EXPECT_EQ(*MemberSet(b, "r"), (std::set<Ref>{{"pod-a", "a1"}, {"pod-b", "b1"}}));
  // Presence may be written before the room's SUBSCRIBE is confirmed.
  Fence(a, "a1");
  Fence(b, "b1");
  v1::PublishResponse published;
  ASSERT_TRUE(Publish(b, ToRoom("r", "to-r"), &published).ok());
  EXPECT_EQ(published.instances(), 2) << "both sidecars subscribed to r";
  std::optional<v1::Delivery> d = sa->NextDelivery();
  ASSERT_TRUE(d.has_value());
  EXPECT_THAT(d->conn_ids(), ElementsAre("a1"));
  d = sb->NextDelivery();
  ASSERT_TRUE(d.has_value());
  EXPECT_THAT(d->conn_ids(), ElementsAre("b1"));

  // Every member of "old" leaves it, except b2.
  v1::ConnectionSelector old = OfRoom("old");
  v1::ConnectionRef* keep = old.add_exclude();
  keep->set_instance_id("pod-b");
  keep->set_conn_id("b2");
  ASSERT_TRUE(LeaveAll(a, old, {"old"}).ok());
  ASSERT_TRUE(WaitFor([&] {
    std::optional<std::set<Ref>> members = MemberSet(a, "old");
    return members.has_value() && members->size() == 1;
  }));
  EXPECT_EQ(*MemberSet(a, "old"), (std::set<Ref>{{"pod-b", "b2"}}));

  // Alice is disconnected everywhere: unregistered, and each stream is told.
  ASSERT_TRUE(DisconnectAll(b, OfUser("alice")).ok());
  EXPECT_THAT(NextDisconnect(*sa), ElementsAre("a1"));
  EXPECT_THAT(NextDisconnect(*sb), ElementsAre("b1"));
  ASSERT_TRUE(WaitFor([&] {
    std::optional<std::set<Ref>> conns = UserConns(a, "alice");
    return conns.has_value() && conns->empty();
  }));
  EXPECT_EQ(*UserConns(a, "bob"), (std::set<Ref>{{"pod-b", "b2"}}));
  ExpectNothingBeforeMarker(a, b, *sb, "b2");
}

TEST_F(RealtimeConnectionsTest, BadSelectorsAndRoomsAreRefusedNamingTheField) {
  Pod a;
  ASSERT_NO_FATAL_FAILURE(StartPod(a, "pod-a"));
  grpc::Status s = JoinAll(a, v1::ConnectionSelector(), {"r"});
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("connections.target"));
  s = JoinAll(a, OfUser("alice"), {});
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("rooms: at least one"));
  s = LeaveAll(a, OfRoom("a room"), {"r"});
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("connections.room"));
  v1::ConnectionSelector bad_exclude = OfUser("alice");
  bad_exclude.add_exclude()->set_conn_id("");
  s = DisconnectAll(a, bad_exclude);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("connections.exclude"));
}

}  // namespace
}  // namespace stateside::testing
