// RealtimeService over a real channel: every call's mapping, validation with
// exact codes, and the Subscribe stream (subscribed first, deliveries, gaps,
// the end on shutdown), on an in-process cluster of two hubs.
#include <grpcpp/generic/generic_stub.h>

#include <memory>
#include <string>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sidecar/realtime/hub.h"
#include "sidecar/realtime/memory_broker.h"
#include "sidecar/rpc/realtime_service.h"
#include "stateside/v1/realtime.grpc.pb.h"
#include "tests/support/wait.h"
#include "tests/unit/rpc/rpc_fixture.h"

namespace stateside::rpc {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class RealtimeServiceTest : public RpcTest {
 protected:
  void SetUp() override {
    cluster_ = std::make_unique<realtime::MemoryCluster>(&clock_);
    broker_ = cluster_->NewBroker("rpc-test");
    realtime::HubOptions options;
    options.instance_id = "rpc-test";
    options.queue_events = queue_events_;
    hub_ = std::make_unique<realtime::RealtimeHub>(options, broker_.get(), &clock_);
    hub_->Start();
    // A second instance in the same cluster, driven directly.
    other_broker_ = cluster_->NewBroker("other");
    realtime::HubOptions other;
    other.instance_id = "other";
    other_ = std::make_unique<realtime::RealtimeHub>(other, other_broker_.get(), &clock_);
    other_->Start();
    realtime_hub_ = hub_.get();
    realtime_broker_ = broker_.get();
    RpcTest::SetUp();
    stub_ = v1::RealtimeService::NewStub(channel_);
  }

  void TearDown() override {
    RpcTest::TearDown();
    other_.reset();
    hub_.reset();
  }

  grpc::Status Register(const std::string& conn, const std::string& user,
                        std::vector<std::string> rooms) {
    v1::RegisterConnectionRequest request;
    request.set_conn_id(conn);
    request.set_user_id(user);
    for (auto& room : rooms) request.add_rooms(room);
    v1::RegisterConnectionResponse response;
    return stub_->RegisterConnection(Context().get(), request, &response);
  }

  grpc::Status Publish(const v1::PublishRequest& request, v1::PublishResponse* response) {
    return stub_->Publish(Context().get(), request, response);
  }

  grpc::Status Publish(const v1::PublishRequest& request) {
    v1::PublishResponse response;
    return Publish(request, &response);
  }

  static v1::PublishRequest ToRoom(const std::string& room, const std::string& payload) {
    v1::PublishRequest request;
    request.set_room(room);
    request.set_event("chat");
    request.set_payload(payload);
    return request;
  }

  // Reads the next message of a stream with the test deadline.
  static v1::RealtimeEvent Read(grpc::ClientReader<v1::RealtimeEvent>* reader) {
    v1::RealtimeEvent event;
    EXPECT_TRUE(reader->Read(&event)) << "the stream ended";
    return event;
  }

  size_t queue_events_ = 1024;
  std::unique_ptr<realtime::MemoryCluster> cluster_;
  std::unique_ptr<realtime::MemoryBroker> broker_;
  std::unique_ptr<realtime::RealtimeHub> hub_;
  std::unique_ptr<realtime::MemoryBroker> other_broker_;
  std::unique_ptr<realtime::RealtimeHub> other_;
  std::unique_ptr<v1::RealtimeService::Stub> stub_;
};

TEST_F(RealtimeServiceTest, SubscribeSaysSubscribedThenDeliversRoomEvents) {
  auto context = Context();
  auto reader = stub_->Subscribe(context.get(), v1::SubscribeRequest());
  EXPECT_TRUE(Read(reader.get()).subscribed());
  ASSERT_TRUE(Register("c1", "ann", {"lobby"}).ok());

  // Published on the other instance; delivered here.
  absl::Notification published;
  realtime::Event event;
  event.target = realtime::TargetKind::kRoom;
  event.to = "lobby";
  event.name = "chat";
  event.payload = std::string("hi\0there", 8);
  other_->Publish(event, [&](absl::StatusOr<realtime::PublishResult> r) {
    EXPECT_TRUE(r.ok());
    EXPECT_EQ(r->instances, 1);
    published.Notify();
  });
  published.WaitForNotification();
  const v1::RealtimeEvent got = Read(reader.get());
  ASSERT_TRUE(got.has_delivery());
  EXPECT_EQ(got.delivery().target(), v1::TARGET_ROOM);
  EXPECT_EQ(got.delivery().to(), "lobby");
  EXPECT_EQ(got.delivery().event(), "chat");
  EXPECT_EQ(got.delivery().payload(), std::string("hi\0there", 8));
  EXPECT_THAT(got.delivery().conn_ids(), ElementsAre("c1"));
  EXPECT_EQ(got.delivery().sequence(), 1u);
  EXPECT_EQ(got.delivery().origin_instance(), "other");
  context->TryCancel();
}

TEST_F(RealtimeServiceTest, StreamConnectionsLiveExactlyAsLongAsTheStream) {
  v1::SubscribeRequest request;
  auto* conn = request.add_connections();
  conn->set_conn_id("cli-1");
  conn->set_user_id("ann");
  conn->add_rooms("ops");
  auto context = Context();
  auto reader = stub_->Subscribe(context.get(), request);
  EXPECT_TRUE(Read(reader.get()).subscribed());

  v1::RoomMembersRequest members;
  members.set_room("ops");
  v1::RoomMembersResponse response;
  ASSERT_TRUE(stub_->RoomMembers(Context().get(), members, &response).ok());
  ASSERT_EQ(response.count(), 1);
  EXPECT_EQ(response.members(0).instance_id(), "rpc-test");
  EXPECT_EQ(response.members(0).conn_id(), "cli-1");

  v1::PublishRequest to_user;
  to_user.set_user_id("ann");
  to_user.set_payload("psst");
  v1::PublishResponse published;
  ASSERT_TRUE(Publish(to_user, &published).ok());
  EXPECT_EQ(published.instances(), 1);
  const v1::RealtimeEvent got = Read(reader.get());
  EXPECT_EQ(got.delivery().target(), v1::TARGET_USER);
  EXPECT_THAT(got.delivery().conn_ids(), ElementsAre("cli-1"));

  context->TryCancel();
  v1::RealtimeEvent ignored;
  while (reader->Read(&ignored)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  ASSERT_TRUE(testing::WaitFor([&] {
    v1::RoomMembersResponse after;
    return stub_->RoomMembers(Context().get(), members, &after).ok() && after.count() == 0;
  }));
}

TEST_F(RealtimeServiceTest, StreamWithABadConnectionEndsWithItsError) {
  v1::SubscribeRequest request;
  request.add_connections()->set_conn_id("has space");
  auto context = Context();
  auto reader = stub_->Subscribe(context.get(), request);
  v1::RealtimeEvent event;
  EXPECT_FALSE(reader->Read(&event));
  const grpc::Status status = reader->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("conn_id"));
}

TEST_F(RealtimeServiceTest, ShutdownEndsStreamsUnavailableAndRefusesNewConnections) {
  auto context = Context();
  auto reader = stub_->Subscribe(context.get(), v1::SubscribeRequest());
  EXPECT_TRUE(Read(reader.get()).subscribed());
  ASSERT_TRUE(Register("c1", "", {"r"}).ok());
  ASSERT_TRUE(hub_->Shutdown().ok());
  v1::RealtimeEvent event;
  EXPECT_FALSE(reader->Read(&event));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(Register("c2", "", {}).error_code(), grpc::StatusCode::UNAVAILABLE);
  auto late_context = Context();
  auto late = stub_->Subscribe(late_context.get(), v1::SubscribeRequest());
  EXPECT_FALSE(late->Read(&event));
  EXPECT_EQ(late->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(RealtimeServiceTest, ConnectionTargetsAndExceptsAcrossInstances) {
  ASSERT_TRUE(Register("c1", "", {"r"}).ok());
  ASSERT_TRUE(Register("c2", "", {"r"}).ok());
  auto context = Context();
  auto reader = stub_->Subscribe(context.get(), v1::SubscribeRequest());
  EXPECT_TRUE(Read(reader.get()).subscribed());
  v1::PublishRequest direct;
  direct.mutable_connection()->set_conn_id("c2");
  direct.set_payload("direct");
  ASSERT_TRUE(Publish(direct).ok());
  EXPECT_THAT(Read(reader.get()).delivery().conn_ids(), ElementsAre("c2"));

  v1::PublishRequest all;
  all.set_all(true);
  all.set_payload("all-but-c1");
  all.add_exclude()->set_conn_id("c1");
  ASSERT_TRUE(Publish(all).ok());
  const v1::RealtimeEvent got = Read(reader.get());
  EXPECT_EQ(got.delivery().payload(), "all-but-c1");
  EXPECT_THAT(got.delivery().conn_ids(), ElementsAre("c2"));

  v1::PublishRequest elsewhere;
  elsewhere.mutable_connection()->set_instance_id("no-such-instance");
  elsewhere.mutable_connection()->set_conn_id("c1");
  v1::PublishResponse response;
  ASSERT_TRUE(Publish(elsewhere, &response).ok());
  EXPECT_EQ(response.instances(), 0) << "nobody listens for that instance";
}

TEST_F(RealtimeServiceTest, InvalidRequestsAreInvalidArgumentNamingTheField) {
  struct Case {
    std::string name;
    v1::PublishRequest request;
    std::string field;
  };
  std::vector<Case> cases;
  cases.push_back({"no target", v1::PublishRequest(), "target"});
  cases.push_back({"room with a space", ToRoom("a room", "x"), "room"});
  cases.push_back({"empty room", ToRoom("", "x"), "room"});
  {
    v1::PublishRequest r = ToRoom("r", "x");
    r.set_event(std::string(129, 'e'));
    cases.push_back({"event name too long", r, "event"});
  }
  {
    v1::PublishRequest r = ToRoom("r", "x");
    for (int i = 0; i < 1025; ++i) r.add_exclude()->set_conn_id("c" + std::to_string(i));
    cases.push_back({"too many excepts", r, "exclude"});
  }
  {
    v1::PublishRequest r = ToRoom("r", "x");
    auto* ref = r.add_exclude();
    ref->set_instance_id("a/b");
    ref->set_conn_id("c");
    cases.push_back({"instance with a slash", r, "exclude.instance_id"});
  }
  {
    v1::PublishRequest r;
    r.set_all(false);
    cases.push_back({"all=false", r, "all"});
  }
  {
    v1::PublishRequest r;
    r.set_user_id("ann\n");
    cases.push_back({"user with a newline", r, "user_id"});
  }
  {
    // The sidecar's own names: an app's stateside.close would close sockets.
    v1::PublishRequest r;
    r.set_user_id("ann");
    r.set_event("stateside.close");
    cases.push_back({"the sidecar's close", r, "event"});
    v1::PublishRequest room = ToRoom("r", "x");
    room.set_event("stateside.anything");
    cases.push_back({"a name the sidecar keeps", room, "event"});
  }
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const grpc::Status status = Publish(c.request);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(status.error_message(), HasSubstr(c.field));
  }
  {
    const v1::ErrorInfo info = ErrorInfoOf(Publish(cases.back().request));
    EXPECT_EQ(info.reason(), "INVALID_ARGUMENT");
    EXPECT_EQ(info.metadata().at("field"), "event");
    v1::PublishRequest near = ToRoom("r", "x");
    near.set_event("stateside");  // not the prefix
    EXPECT_TRUE(Publish(near).ok());
  }

  // Past the fixture's 16 KiB message limit gRPC refuses it itself; the
  // sidecar's limit admits the largest valid Publish (server.cc), so the
  // payload rule is checked on the conversion.
  absl::StatusOr<realtime::Event> too_large =
      ToEvent(ToRoom("r", std::string(64 * 1024 + 1, 'x')));
  EXPECT_EQ(too_large.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(too_large.status().message(), HasSubstr("payload: at most 65536 bytes"));
  EXPECT_TRUE(ToEvent(ToRoom("r", std::string(64 * 1024, 'x'))).ok());

  EXPECT_EQ(Register("", "", {}).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Register(std::string(129, 'c'), "", {}).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  std::vector<std::string> rooms(257, "r");
  EXPECT_EQ(Register("c", "", rooms).error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  v1::JoinRequest join;
  join.set_conn_id("unknown");
  join.add_rooms("r");
  v1::JoinResponse join_response;
  EXPECT_EQ(stub_->Join(Context().get(), join, &join_response).error_code(),
            grpc::StatusCode::NOT_FOUND);

  v1::RoomMembersRequest members;
  members.set_room("r");
  members.set_page_size(1001);
  v1::RoomMembersResponse members_response;
  EXPECT_EQ(stub_->RoomMembers(Context().get(), members, &members_response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  members.set_page_size(10);
  members.set_page_token("forged");
  EXPECT_EQ(stub_->RoomMembers(Context().get(), members, &members_response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  v1::HistoryRequest history;
  history.set_room("r");
  history.set_limit(-1);
  v1::HistoryResponse history_response;
  EXPECT_EQ(stub_->History(Context().get(), history, &history_response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(RealtimeServiceTest, UndecodableRequestsAreInvalidArgument) {
  grpc::GenericStub stub(channel_);
  for (const std::string method :
       {"/stateside.v1.RealtimeService/RegisterConnection",
        "/stateside.v1.RealtimeService/UnregisterConnection", "/stateside.v1.RealtimeService/Join",
        "/stateside.v1.RealtimeService/Leave", "/stateside.v1.RealtimeService/Publish",
        "/stateside.v1.RealtimeService/RoomMembers",
        "/stateside.v1.RealtimeService/UserConnections",
        "/stateside.v1.RealtimeService/History"}) {
    SCOPED_TRACE(method);
    grpc::Slice slice(std::string("\xff\xff\xff\xff", 4));
    grpc::ByteBuffer request(&slice, 1);
    grpc::ByteBuffer response;
    absl::Notification done;
    grpc::Status status;
    auto context = Context();
    stub.UnaryCall(context.get(), method, grpc::StubOptions(), &request, &response,
                   [&](grpc::Status s) {
                     status = std::move(s);
                     done.Notify();
                   });
    done.WaitForNotification();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(status.error_message(), HasSubstr("malformed request"));
  }
}

TEST_F(RealtimeServiceTest, HistoryAndPresenceAnswerThroughTheBroker) {
  ASSERT_TRUE(Register("c1", "ann", {"r"}).ok());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Publish(ToRoom("r", "m" + std::to_string(i))).ok());
  v1::HistoryRequest history;
  history.set_room("r");
  history.set_after_sequence(1);
  v1::HistoryResponse response;
  ASSERT_TRUE(stub_->History(Context().get(), history, &response).ok());
  EXPECT_TRUE(response.complete());
  ASSERT_EQ(response.events_size(), 2);
  EXPECT_EQ(response.events(0).sequence(), 2u);
  EXPECT_EQ(response.events(0).payload(), "m1");
  EXPECT_EQ(response.last_sequence(), 3u);

  v1::UserConnectionsRequest user;
  user.set_user_id("ann");
  v1::UserConnectionsResponse conns;
  ASSERT_TRUE(stub_->UserConnections(Context().get(), user, &conns).ok());
  ASSERT_EQ(conns.connections_size(), 1);
  EXPECT_EQ(conns.connections(0).conn_id(), "c1");

  v1::UnregisterConnectionRequest unregister;
  unregister.set_conn_id("c1");
  v1::UnregisterConnectionResponse gone;
  ASSERT_TRUE(stub_->UnregisterConnection(Context().get(), unregister, &gone).ok());
  EXPECT_TRUE(gone.found());
  ASSERT_TRUE(stub_->UnregisterConnection(Context().get(), unregister, &gone).ok());
  EXPECT_FALSE(gone.found());
}

// Publish with a request_id on the gRPC thread (no offload pool: the memory
// backend) and on the server's offload pool (Redis).
class PublishOnceTest : public RealtimeServiceTest,
                        public ::testing::WithParamInterface<size_t> {
 protected:
  void SetUp() override {
    offload_threads_ = GetParam();
    RealtimeServiceTest::SetUp();
  }
};
INSTANTIATE_TEST_SUITE_P(OffloadThreads, PublishOnceTest, ::testing::Values(0u, 2u));

// A Publish retried with its request_id answers the first answer and
// publishes once: the room's log holds one event, its sequence the first.
TEST_P(PublishOnceTest, APublishRetriedWithItsRequestIdPublishesOnce) {
  v1::PublishRequest request = ToRoom("once", "hello");
  request.set_sender_user_id("ann");
  request.set_request_id("publish-1");
  v1::PublishResponse first, retried;
  ASSERT_TRUE(Publish(request, &first).ok());
  ASSERT_TRUE(Publish(request, &retried).ok());
  EXPECT_EQ(first.sequence(), 1u);
  EXPECT_EQ(retried.sequence(), 1u);
  v1::HistoryRequest history;
  history.set_room("once");
  v1::HistoryResponse events;
  ASSERT_TRUE(stub_->History(Context().get(), history, &events).ok());
  ASSERT_EQ(events.events_size(), 1);
  EXPECT_EQ(events.last_sequence(), 1u);

  // Scoped by the sender: another sender's request_id is its own.
  request.set_sender_user_id("bob");
  ASSERT_TRUE(Publish(request, &retried).ok());
  EXPECT_EQ(retried.sequence(), 2u);
  // Another payload under a used request_id is refused, nothing published.
  request.set_payload("changed");
  const grpc::Status reused = Publish(request, &retried);
  EXPECT_EQ(reused.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(ErrorInfoOf(reused).reason(), "REQUEST_ID_REUSED");
  ASSERT_TRUE(stub_->History(Context().get(), history, &events).ok());
  EXPECT_EQ(events.last_sequence(), 2u);
  // Without one, every publish publishes.
  request.clear_request_id();
  ASSERT_TRUE(Publish(request, &retried).ok());
  ASSERT_TRUE(Publish(request, &retried).ok());
  EXPECT_EQ(retried.sequence(), 4u);
}

class SlowReaderRealtimeTest : public RealtimeServiceTest {
 protected:
  SlowReaderRealtimeTest() { queue_events_ = 8; }
};

// A stream that is not read: gRPC's flow control stops its writes, the
// queue fills, further events are dropped for it; when it reads again it
// gets what was queued and then a gap saying how many were lost.
TEST_F(SlowReaderRealtimeTest, DropsAreSignalledWhenTheReaderCatchesUp) {
  ASSERT_TRUE(Register("c1", "", {"r"}).ok());
  auto context = Context();
  auto reader = stub_->Subscribe(context.get(), v1::SubscribeRequest());
  EXPECT_TRUE(Read(reader.get()).subscribed());
  const std::string big(14 * 1024, 'p');  // fills the transport windows fast
  constexpr int kEvents = 1000;
  for (int i = 0; i < kEvents; ++i) ASSERT_TRUE(Publish(ToRoom("r", big)).ok());
  ASSERT_TRUE(testing::WaitFor([&] { return hub_->stats().queue_depth == 8; }));
  uint64_t delivered = 0, dropped = 0;
  while (delivered + dropped < kEvents) {
    const v1::RealtimeEvent event = Read(reader.get());
    if (event.has_delivery()) ++delivered;
    if (event.has_gap()) {
      EXPECT_EQ(event.gap().reason(), v1::Gap::REASON_SUBSCRIBER_OVERFLOW);
      dropped += event.gap().dropped();
    }
    if (::testing::Test::HasFailure()) break;
  }
  EXPECT_EQ(delivered + dropped, static_cast<uint64_t>(kEvents));
  EXPECT_GT(dropped, 0u);
  context->TryCancel();
}

}  // namespace
}  // namespace stateside::rpc
