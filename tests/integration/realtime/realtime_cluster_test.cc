// Realtime fan-out and the k-of-N target, on real processes: three (or
// four) sidecars on one redis-server. Room, user, connection, broadcast and
// except deliveries reach exactly the right connections on the right
// instances; an instance that is not concerned receives nothing from Redis
// (its stateside_realtime_received_total does not move); bad input through
// a real sidecar is refused with the exact code and leaves it serving.
//
// "Receives nothing" is proven with a marker: after the events under test,
// a connection-targeted marker is published to the instance; Redis hands a
// subscriber connection its messages in publish order, so the marker must
// be the first thing its stream reads.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/realtime/realtime_fixture.h"
#include "tests/support/wait.h"

namespace stateside::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kReceived[] = "stateside_realtime_received_total";
constexpr char kNoTarget[] = "stateside_realtime_dropped_total{reason=\"no_target\"}";
constexpr char kPublishedRoom[] = "stateside_realtime_published_total{target=\"room\"}";
constexpr char kDelivered[] = "stateside_realtime_delivered_total";
constexpr char kLatencyCount[] = "stateside_realtime_delivery_latency_seconds_count";

class RealtimeRoutingTest : public RealtimeClusterTest {
 protected:
  // Starts pod-a, pod-b, pod-c, each with one Subscribe stream (no
  // connections yet).
  void StartThree() {
    ASSERT_NO_FATAL_FAILURE(StartPod(a_, "pod-a"));
    ASSERT_NO_FATAL_FAILURE(StartPod(b_, "pod-b"));
    ASSERT_NO_FATAL_FAILURE(StartPod(c_, "pod-c"));
    sa_ = OpenStream(a_);
    sb_ = OpenStream(b_);
    sc_ = OpenStream(c_);
  }

  // The next delivery of `stream`, which must be one (not a gap).
  static v1::Delivery Expect(EventStream& stream, const std::string& who) {
    std::optional<v1::RealtimeEvent> event = stream.Next();
    EXPECT_TRUE(event.has_value()) << who << ": no event";
    if (!event.has_value()) return {};
    EXPECT_TRUE(event->has_delivery()) << who << ": " << event->ShortDebugString();
    return event->delivery();
  }

  Pod a_, b_, c_;
  std::unique_ptr<EventStream> sa_, sb_, sc_;
};

TEST_F(RealtimeRoutingTest, ARoomEventReachesExactlyItsMembersOnTheirInstances) {
  ASSERT_NO_FATAL_FAILURE(StartThree());
  // Connection ids are per instance: both A and B have an "x1".
  ASSERT_TRUE(Register(a_, "x1", "ann", {"r"}).ok());
  ASSERT_TRUE(Register(a_, "a2", "", {"r", "s"}).ok());
  ASSERT_TRUE(Register(b_, "x1", "", {"r"}).ok());
  ASSERT_TRUE(Register(b_, "b2", "bob", {"s"}).ok());
  ASSERT_TRUE(Register(c_, "c1", "", {"other"}).ok());
  const double ra = a_.Metric(kReceived), rb = b_.Metric(kReceived), rc = c_.Metric(kReceived);
  const double pc = c_.Metric(kPublishedRoom), da = a_.Metric(kDelivered),
               la = a_.Metric(kLatencyCount);

  v1::PublishResponse published;
  ASSERT_TRUE(Publish(c_, ToRoom("r", "hello", "chat"), &published).ok());
  EXPECT_EQ(published.sequence(), 1u);
  EXPECT_EQ(published.instances(), 2);  // A and B hold the room's channel, C does not

  const v1::Delivery at_a = Expect(*sa_, "pod-a");
  EXPECT_EQ(at_a.target(), v1::TARGET_ROOM);
  EXPECT_EQ(at_a.to(), "r");
  EXPECT_EQ(at_a.event(), "chat");
  EXPECT_EQ(at_a.payload(), "hello");
  EXPECT_EQ(at_a.sequence(), 1u);
  EXPECT_EQ(at_a.origin_instance(), "pod-c");
  EXPECT_GT(at_a.published_at().seconds(), 0);
  EXPECT_THAT(at_a.conn_ids(), ElementsAre("a2", "x1"));
  const v1::Delivery at_b = Expect(*sb_, "pod-b");
  EXPECT_THAT(at_b.conn_ids(), ElementsAre("x1"));  // not b2: not a member
  EXPECT_EQ(at_b.sequence(), 1u);
  EXPECT_EQ(at_b.payload(), "hello");

  // Nothing else anywhere, and C (no member) got nothing at all.
  ExpectNothingBeforeMarker(a_, c_, *sc_, "c1");
  ExpectNothingBeforeMarker(c_, a_, *sa_, "a2");
  ExpectNothingBeforeMarker(c_, b_, *sb_, "b2");
  EXPECT_EQ(a_.Metric(kReceived) - ra, 2);  // the event and the marker
  EXPECT_EQ(b_.Metric(kReceived) - rb, 2);
  EXPECT_EQ(c_.Metric(kReceived) - rc, 1);  // the marker only
  EXPECT_EQ(c_.Metric(kPublishedRoom) - pc, 1);
  EXPECT_EQ(a_.Metric(kDelivered) - da, 2);  // written to A's one stream
  EXPECT_EQ(a_.Metric(kLatencyCount) - la, 2);
}

TEST_F(RealtimeRoutingTest, AUserEventReachesEveryConnectionOfThatUserAndNoOtherInstance) {
  ASSERT_NO_FATAL_FAILURE(StartThree());
  ASSERT_TRUE(Register(a_, "x1", "ann").ok());
  ASSERT_TRUE(Register(a_, "a2", "ann", {"r"}).ok());
  ASSERT_TRUE(Register(a_, "a3", "bob").ok());
  ASSERT_TRUE(Register(b_, "b1", "bob").ok());
  ASSERT_TRUE(Register(c_, "x1", "ann").ok());
  const double ra = a_.Metric(kReceived), rb = b_.Metric(kReceived), rc = c_.Metric(kReceived);

  v1::PublishResponse published;
  ASSERT_TRUE(Publish(b_, ToUser("ann", "for-ann"), &published).ok());
  EXPECT_EQ(published.instances(), 2);  // A's and C's channels; not B's
  EXPECT_EQ(published.sequence(), 1u);  // ann's stream

  const v1::Delivery at_a = Expect(*sa_, "pod-a");
  EXPECT_EQ(at_a.target(), v1::TARGET_USER);
  EXPECT_EQ(at_a.to(), "ann");
  EXPECT_EQ(at_a.payload(), "for-ann");
  EXPECT_EQ(at_a.origin_instance(), "pod-b");
  EXPECT_THAT(at_a.conn_ids(), ElementsAre("a2", "x1"));  // not bob's a3
  const v1::Delivery at_c = Expect(*sc_, "pod-c");
  EXPECT_THAT(at_c.conn_ids(), ElementsAre("x1"));

  ExpectNothingBeforeMarker(a_, b_, *sb_, "b1");
  ExpectNothingBeforeMarker(b_, a_, *sa_, "a3");
  ExpectNothingBeforeMarker(b_, c_, *sc_, "x1");
  EXPECT_EQ(a_.Metric(kReceived) - ra, 2);
  EXPECT_EQ(b_.Metric(kReceived) - rb, 1);
  EXPECT_EQ(c_.Metric(kReceived) - rc, 2);
}

TEST_F(RealtimeRoutingTest, AConnectionEventReachesThatConnectionOnItsInstanceOnly) {
  ASSERT_NO_FATAL_FAILURE(StartThree());
  // The same connection id on every instance: only the one named counts.
  ASSERT_TRUE(Register(a_, "x1", "ann", {"r"}).ok());
  ASSERT_TRUE(Register(b_, "x1", "ann", {"r"}).ok());
  ASSERT_TRUE(Register(c_, "x1", "ann", {"r"}).ok());
  const double ra = a_.Metric(kReceived), rb = b_.Metric(kReceived), rc = c_.Metric(kReceived);
  const double nb = b_.Metric(kNoTarget);

  v1::PublishResponse published;
  ASSERT_TRUE(Publish(a_, ToConn("pod-b", "x1", "to-b"), &published).ok());
  EXPECT_EQ(published.instances(), 1);
  const v1::Delivery at_b = Expect(*sb_, "pod-b");
  EXPECT_EQ(at_b.target(), v1::TARGET_CONNECTION);
  EXPECT_EQ(at_b.to(), "x1");
  EXPECT_EQ(at_b.payload(), "to-b");
  EXPECT_EQ(at_b.origin_instance(), "pod-a");
  EXPECT_THAT(at_b.conn_ids(), ElementsAre("x1"));

  // An empty instance_id means the publisher's own instance.
  ASSERT_TRUE(Publish(c_, ToConn("", "x1", "to-self"), &published).ok());
  EXPECT_EQ(published.instances(), 1);
  const v1::Delivery at_c = Expect(*sc_, "pod-c");
  EXPECT_EQ(at_c.payload(), "to-self");
  EXPECT_THAT(at_c.conn_ids(), ElementsAre("x1"));

  // A connection B does not have: B's channel carries it, B drops it.
  ASSERT_TRUE(Publish(a_, ToConn("pod-b", "nobody", "lost"), &published).ok());

  ExpectNothingBeforeMarker(c_, a_, *sa_, "x1");
  ExpectNothingBeforeMarker(a_, b_, *sb_, "x1");
  ExpectNothingBeforeMarker(a_, c_, *sc_, "x1");
  EXPECT_EQ(a_.Metric(kReceived) - ra, 1);  // the marker only
  EXPECT_EQ(b_.Metric(kReceived) - rb, 3);  // to-b, the unknown one, the marker
  EXPECT_EQ(c_.Metric(kReceived) - rc, 2);  // to-self, the marker
  EXPECT_EQ(b_.Metric(kNoTarget) - nb, 1);
}

TEST_F(RealtimeRoutingTest, ABroadcastReachesEveryConnectionAndSkipsAnInstanceWithNone) {
  ASSERT_NO_FATAL_FAILURE(StartThree());
  ASSERT_TRUE(Register(a_, "a1", "ann", {"r"}).ok());
  ASSERT_TRUE(Register(a_, "a2", "").ok());
  ASSERT_TRUE(Register(b_, "b1", "bob").ok());
  // C has a subscriber but no connection: it must not even hold the
  // broadcast channel.
  const double ra = a_.Metric(kReceived), rb = b_.Metric(kReceived), rc = c_.Metric(kReceived);

  v1::PublishResponse published;
  ASSERT_TRUE(Publish(b_, ToAll("everyone"), &published).ok());
  EXPECT_EQ(published.instances(), 2);
  const v1::Delivery at_a = Expect(*sa_, "pod-a");
  EXPECT_EQ(at_a.target(), v1::TARGET_ALL);
  EXPECT_EQ(at_a.payload(), "everyone");
  EXPECT_THAT(at_a.conn_ids(), ElementsAre("a1", "a2"));
  const v1::Delivery at_b = Expect(*sb_, "pod-b");  // the publisher's own instance too
  EXPECT_THAT(at_b.conn_ids(), ElementsAre("b1"));

  // C gets a connection now (Register returns once its channels are
  // subscribed, after the broadcast went out): the marker comes first.
  ASSERT_TRUE(Register(c_, "c1", "").ok());
  ExpectNothingBeforeMarker(a_, c_, *sc_, "c1");
  EXPECT_EQ(c_.Metric(kReceived) - rc, 1);

  // And from now on C is part of every broadcast.
  ASSERT_TRUE(Publish(a_, ToAll("everyone-2"), &published).ok());
  EXPECT_EQ(published.instances(), 3);
  EXPECT_THAT(Expect(*sa_, "pod-a").conn_ids(), ElementsAre("a1", "a2"));
  EXPECT_THAT(Expect(*sb_, "pod-b").conn_ids(), ElementsAre("b1"));
  const v1::Delivery at_c = Expect(*sc_, "pod-c");
  EXPECT_EQ(at_c.payload(), "everyone-2");
  EXPECT_THAT(at_c.conn_ids(), ElementsAre("c1"));

  ExpectNothingBeforeMarker(c_, a_, *sa_, "a2");
  ExpectNothingBeforeMarker(c_, b_, *sb_, "b1");
  EXPECT_EQ(a_.Metric(kReceived) - ra, 3);
  EXPECT_EQ(b_.Metric(kReceived) - rb, 3);
  EXPECT_EQ(c_.Metric(kReceived) - rc, 2);
}

TEST_F(RealtimeRoutingTest, ExceptedConnectionsAreSkippedOnTheirOwnInstanceOnly) {
  ASSERT_NO_FATAL_FAILURE(StartThree());
  ASSERT_TRUE(Register(a_, "x1", "ann", {"r"}).ok());
  ASSERT_TRUE(Register(a_, "a2", "ann", {"r"}).ok());
  ASSERT_TRUE(Register(b_, "x1", "bob", {"r"}).ok());
  ASSERT_TRUE(Register(b_, "b2", "ann", {"r"}).ok());
  ASSERT_TRUE(Register(c_, "c1", "ann", {"r"}).ok());
  const double nc = c_.Metric(kNoTarget);

  // A room event from B except A's x1 (B's x1 still gets it), B's own b2
  // (empty instance: the publisher's) and C's only member.
  v1::PublishRequest room = ToRoom("r", "room-except");
  AddExcept(room, "pod-a", "x1");
  AddExcept(room, "", "b2");
  AddExcept(room, "pod-c", "c1");
  v1::PublishResponse published;
  ASSERT_TRUE(Publish(b_, room, &published).ok());
  EXPECT_EQ(published.instances(), 3);
  v1::Delivery d = Expect(*sa_, "pod-a");
  EXPECT_EQ(d.payload(), "room-except");
  EXPECT_THAT(d.conn_ids(), ElementsAre("a2"));
  d = Expect(*sb_, "pod-b");
  EXPECT_EQ(d.payload(), "room-except");
  EXPECT_THAT(d.conn_ids(), ElementsAre("x1"));
  // C received it and found no one left to hand it to.
  ASSERT_TRUE(WaitFor([&] { return c_.Metric(kNoTarget) - nc == 1; }));

  // A broadcast except B's x1.
  v1::PublishRequest all = ToAll("all-except");
  AddExcept(all, "pod-b", "x1");
  ASSERT_TRUE(Publish(a_, all, &published).ok());
  EXPECT_EQ(published.instances(), 3);
  EXPECT_THAT(Expect(*sa_, "pod-a").conn_ids(), ElementsAre("a2", "x1"));
  EXPECT_THAT(Expect(*sb_, "pod-b").conn_ids(), ElementsAre("b2"));
  EXPECT_THAT(Expect(*sc_, "pod-c").conn_ids(), ElementsAre("c1"));

  // A user event except the sender's own connection (A's a2).
  v1::PublishRequest user = ToUser("ann", "user-except");
  AddExcept(user, "", "a2");
  ASSERT_TRUE(Publish(a_, user, &published).ok());
  EXPECT_EQ(published.instances(), 3);
  d = Expect(*sa_, "pod-a");
  EXPECT_EQ(d.payload(), "user-except");
  EXPECT_THAT(d.conn_ids(), ElementsAre("x1"));
  EXPECT_THAT(Expect(*sb_, "pod-b").conn_ids(), ElementsAre("b2"));
  EXPECT_THAT(Expect(*sc_, "pod-c").conn_ids(), ElementsAre("c1"));

  // C's stream saw neither the room event nor anything else.
  ExpectNothingBeforeMarker(a_, a_, *sa_, "x1");
  ExpectNothingBeforeMarker(a_, b_, *sb_, "x1");
  ExpectNothingBeforeMarker(a_, c_, *sc_, "c1");
}

// The target: a room whose members are on k = 2 of N = 4 instances
// costs Redis deliveries to 2 instances, shown by the publish answer and by
// every instance's received counter.
TEST_F(RealtimeRoutingTest, ARoomOnKOfNInstancesCostsKDeliveries) {
  Pod d;
  ASSERT_NO_FATAL_FAILURE(StartThree());
  ASSERT_NO_FATAL_FAILURE(StartPod(d, "pod-d"));
  std::unique_ptr<EventStream> sd = OpenStream(d);
  ASSERT_TRUE(Register(a_, "a1", "", {"r"}).ok());
  ASSERT_TRUE(Register(b_, "b1", "", {"r"}).ok());
  ASSERT_TRUE(Register(c_, "c1", "", {"elsewhere"}).ok());
  ASSERT_TRUE(Register(d, "d1", "").ok());
  const double ra = a_.Metric(kReceived), rb = b_.Metric(kReceived), rc = c_.Metric(kReceived),
               rd = d.Metric(kReceived);

  constexpr int kEvents = 5;
  for (int i = 1; i <= kEvents; ++i) {
    v1::PublishResponse published;
    ASSERT_TRUE(Publish(i % 2 == 0 ? c_ : d, ToRoom("r", absl::StrCat("e", i)), &published).ok());
    EXPECT_EQ(published.instances(), 2) << "event " << i;
    EXPECT_EQ(published.sequence(), static_cast<uint64_t>(i));
  }
  for (int i = 1; i <= kEvents; ++i) {
    for (EventStream* s : {sa_.get(), sb_.get()}) {
      const v1::Delivery got = Expect(*s, "a member");
      EXPECT_EQ(got.payload(), absl::StrCat("e", i));
      EXPECT_EQ(got.sequence(), static_cast<uint64_t>(i));
    }
  }
  EXPECT_EQ(a_.Metric(kReceived) - ra, kEvents);
  EXPECT_EQ(b_.Metric(kReceived) - rb, kEvents);
  EXPECT_EQ(c_.Metric(kReceived) - rc, 0);
  EXPECT_EQ(d.Metric(kReceived) - rd, 0);
  // And nothing is still on its way to them: the markers come first.
  ExpectNothingBeforeMarker(a_, c_, *sc_, "c1");
  ExpectNothingBeforeMarker(a_, d, *sd, "d1");
  EXPECT_EQ(c_.Metric(kReceived) - rc, 1);  // the marker only
  EXPECT_EQ(d.Metric(kReceived) - rd, 1);

  // B's last member leaves: B drops the room's channel, k = 1.
  ASSERT_TRUE(Leave(b_, "b1", {"r"}).ok());
  Fence(b_, "b1");
  v1::PublishResponse published;
  ASSERT_TRUE(Publish(c_, ToRoom("r", "after-leave"), &published).ok());
  EXPECT_EQ(published.instances(), 1);
  EXPECT_EQ(Expect(*sa_, "pod-a").payload(), "after-leave");
  ExpectNothingBeforeMarker(a_, b_, *sb_, "b1");
  EXPECT_EQ(b_.Metric(kReceived) - rb, kEvents + 1);
}

// ---- Bad input through a real sidecar ---------------------------------------------

class RealtimeBadInputTest : public RealtimeClusterTest {};

// A raw unary call of `method` with `bytes` as the request.
grpc::Status RawUnary(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                      const std::string& bytes) {
  grpc::GenericStub stub(channel);
  grpc::Slice slice(bytes);
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  absl::Notification done;
  grpc::Status status;
  auto context = Ctx();
  stub.UnaryCall(context.get(), method, grpc::StubOptions(), &request, &response,
                 [&](grpc::Status s) {
                   status = std::move(s);
                   done.Notify();
                 });
  done.WaitForNotification();
  return status;
}

// A raw server-streaming call (Subscribe) with `bytes` as the request.
grpc::Status RawStream(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                       const std::string& bytes) {
  grpc::Slice slice(bytes);
  grpc::ByteBuffer request(&slice, 1);
  auto context = Ctx();
  std::unique_ptr<grpc::ClientReader<grpc::ByteBuffer>> reader(
      grpc::internal::ClientReaderFactory<grpc::ByteBuffer>::Create(
          channel.get(),
          grpc::internal::RpcMethod(method.c_str(), grpc::internal::RpcMethod::SERVER_STREAMING),
          context.get(), request));
  grpc::ByteBuffer message;
  while (reader->Read(&message)) {
  }
  return reader->Finish();
}

TEST_F(RealtimeBadInputTest, RefusedExactlyAndTheSidecarServesOn) {
  Pod a, b;
  ASSERT_NO_FATAL_FAILURE(StartPod(a, "pod-a"));
  ASSERT_NO_FATAL_FAILURE(StartPod(b, "pod-b"));
  std::unique_ptr<EventStream> sb = OpenStream(b);
  ASSERT_TRUE(Register(b, "b1", "", {"r"}).ok());
  ASSERT_TRUE(Register(b, "b2", "", {"r"}).ok());

  // One byte over the payload limit.
  grpc::Status s = Publish(a, ToRoom("r", std::string((64 << 10) + 1, 'p')));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("payload"));

  // The largest valid Publish: a 64 KiB payload and 1024 excepts of the
  // longest ids (one of them B's b2), accepted and delivered intact.
  std::string payload(64 << 10, '\0');
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(i * 7 + 3);
  v1::PublishRequest largest = ToRoom("r", payload, std::string(128, 'e'));
  AddExcept(largest, "pod-b", "b2");
  for (int i = 1; i < 1024; ++i) {
    std::string instance(128, 'i'), conn(128, 'c');
    const std::string n = absl::StrCat(i);
    instance.replace(0, n.size(), n);
    conn.replace(0, n.size(), n);
    AddExcept(largest, instance, conn);
  }
  v1::PublishResponse published;
  s = Publish(a, largest, &published);
  ASSERT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
  EXPECT_EQ(published.instances(), 1);
  std::optional<v1::Delivery> got = sb->NextDelivery();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->payload(), payload);
  EXPECT_THAT(got->conn_ids(), ElementsAre("b1"));

  // One except too many.
  AddExcept(largest, "pod-x", "one-more");
  s = Publish(a, largest);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("exclude"));

  // Bytes that are no protobuf at all, to every realtime method.
  auto channel = grpc::CreateChannel("unix:" + a.socket, grpc::InsecureChannelCredentials());
  const std::string garbage("\xff\xff\xff\xff\x0f\x80", 6);
  for (const char* method :
       {"RegisterConnection", "UnregisterConnection", "Join", "Leave", "Publish", "RoomMembers",
        "UserConnections", "History"}) {
    const grpc::Status raw =
        RawUnary(channel, absl::StrCat("/stateside.v1.RealtimeService/", method), garbage);
    EXPECT_EQ(raw.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << method << ": " << raw.error_message();
  }
  const grpc::Status raw =
      RawStream(channel, "/stateside.v1.RealtimeService/Subscribe", garbage);
  EXPECT_EQ(raw.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << raw.error_message();

  // Still serving, and still delivering.
  EXPECT_TRUE(a.process->running());
  ASSERT_TRUE(Publish(a, ToRoom("r", "still-here"), &published).ok());
  got = sb->NextDelivery();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->payload(), "still-here");
  EXPECT_THAT(got->conn_ids(), ElementsAre("b1", "b2"));
}

}  // namespace
}  // namespace stateside::testing
