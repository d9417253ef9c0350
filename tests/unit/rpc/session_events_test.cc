// SessionService.WatchSessionEvents over a real channel on the memory store:
// `watching` first, every kind of change with names and never values, the
// filter by kind, the memory store's sweep reporting expiries, the gap of a
// watcher that reads too slowly, the end on shutdown; DestroyUserSessions'
// close_connections reaching the user's realtime connections.
#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sidecar/realtime/hub.h"
#include "sidecar/realtime/memory_broker.h"
#include "sidecar/session/change_feed.h"
#include "stateside/v1/realtime.grpc.pb.h"
#include "stateside/v1/session.grpc.pb.h"
#include "tests/unit/rpc/rpc_fixture.h"

namespace stateside::rpc {
namespace {

using ::testing::ElementsAre;

class SessionEventsTest : public RpcTest {
 protected:
  void SetUp() override {
    cluster_ = std::make_unique<realtime::MemoryCluster>(&clock_);
    broker_ = cluster_->NewBroker("rpc-test");
    realtime::HubOptions options;
    options.instance_id = "rpc-test";
    hub_ = std::make_unique<realtime::RealtimeHub>(options, broker_.get(), &clock_);
    hub_->Start();
    feed_ = std::make_unique<session::ChangeFeed>("rpc-test", &clock_, queue_events_);
    realtime_hub_ = hub_.get();
    realtime_broker_ = broker_.get();
    session_changes_ = feed_.get();
    RpcTest::SetUp();
    session_store_->SetExpiryListener(
        [this](const session::StoredSession& expired) { sessions_->ReportExpired(expired); });
  }

  void TearDown() override {
    RpcTest::TearDown();
    hub_.reset();
  }

  // A watch stream of `kinds`, its `watching` already read.
  struct Watch {
    std::unique_ptr<grpc::ClientContext> context;
    std::unique_ptr<grpc::ClientReader<v1::SessionEvent>> reader;
  };
  Watch StartWatch(std::vector<v1::SessionEventKind> kinds = {}) {
    Watch watch{Context(), nullptr};
    v1::WatchSessionEventsRequest request;
    for (v1::SessionEventKind kind : kinds) request.add_kinds(kind);
    watch.reader = session_stub_->WatchSessionEvents(watch.context.get(), request);
    v1::SessionEvent first;
    EXPECT_TRUE(watch.reader->Read(&first));
    EXPECT_TRUE(first.watching());
    return watch;
  }
  static v1::SessionEvent Next(Watch& watch) {
    v1::SessionEvent event;
    EXPECT_TRUE(watch.reader->Read(&event));
    return event;
  }
  // Waits (on the stream, no sleep) for the next event and expects a change.
  static v1::SessionChange NextChange(Watch& watch) {
    v1::SessionEvent event = Next(watch);
    EXPECT_TRUE(event.has_change()) << event.DebugString();
    return event.change();
  }

  size_t queue_events_ = session::ChangeFeed::kQueueEvents;
  std::unique_ptr<realtime::MemoryCluster> cluster_;
  std::unique_ptr<realtime::Broker> broker_;
  std::unique_ptr<realtime::RealtimeHub> hub_;
  std::unique_ptr<session::ChangeFeed> feed_;
};

TEST_F(SessionEventsTest, EveryKindIsReportedWithNamesNeverValues) {
  Watch watch = StartWatch();
  const v1::Session created = CreateSession("ann", {{"cart", "secret-cart"}});
  v1::SessionChange change = NextChange(watch);
  EXPECT_EQ(change.kind(), v1::SESSION_EVENT_KIND_CREATED);
  EXPECT_EQ(change.session_id(), created.metadata().id());
  EXPECT_EQ(change.user_id(), "ann");
  EXPECT_EQ(change.origin_instance(), "rpc-test");
  EXPECT_EQ(change.time().seconds(), absl::ToUnixSeconds(clock_.Now()));

  v1::UpdateSessionRequest update;
  *update.mutable_key() = CookieKey(created);
  (*update.mutable_set())["theme"] = "dark";
  update.add_remove("cart");
  v1::UpdateSessionResponse updated;
  ASSERT_TRUE(calls_->Update(update, &updated).ok());
  change = NextChange(watch);
  EXPECT_EQ(change.kind(), v1::SESSION_EVENT_KIND_UPDATED);
  EXPECT_THAT(change.attributes(), ElementsAre("cart", "theme"));
  EXPECT_EQ(change.DebugString().find("dark"), std::string::npos);

  v1::RegenerateSessionRequest regenerate;
  *regenerate.mutable_key() = IdKey(created);
  v1::RegenerateSessionResponse regenerated;
  ASSERT_TRUE(calls_->Regenerate(regenerate, &regenerated).ok());
  change = NextChange(watch);
  EXPECT_EQ(change.kind(), v1::SESSION_EVENT_KIND_REGENERATED);
  EXPECT_EQ(change.session_id(), regenerated.session().metadata().id());
  EXPECT_EQ(change.previous_session_id(), created.metadata().id());

  v1::DestroySessionRequest destroy;
  *destroy.mutable_key() = IdKey(regenerated.session());
  v1::DestroySessionResponse destroyed;
  ASSERT_TRUE(calls_->Destroy(destroy, &destroyed).ok());
  change = NextChange(watch);
  EXPECT_EQ(change.kind(), v1::SESSION_EVENT_KIND_DESTROYED);
  EXPECT_EQ(change.session_id(), regenerated.session().metadata().id());
  EXPECT_EQ(change.user_id(), "");  // a Destroy by key does not read the owner

  // Expired: met by a read (no owner), and dropped by the sweep (owner known).
  const v1::Session read_late = CreateSession("bob");
  const v1::Session swept = CreateSession("cid");
  EXPECT_EQ(NextChange(watch).kind(), v1::SESSION_EVENT_KIND_CREATED);
  EXPECT_EQ(NextChange(watch).kind(), v1::SESSION_EVENT_KIND_CREATED);
  clock_.Advance(absl::Hours(2));  // past the idle TTL
  v1::GetSessionRequest get;
  *get.mutable_key() = IdKey(read_late);
  v1::GetSessionResponse got;
  EXPECT_EQ(calls_->Get(get, &got).error_code(), grpc::StatusCode::NOT_FOUND);
  change = NextChange(watch);
  EXPECT_EQ(change.kind(), v1::SESSION_EVENT_KIND_EXPIRED);
  EXPECT_EQ(change.session_id(), read_late.metadata().id());
  EXPECT_EQ(session_store_->Sweep(clock_.Now()), 1u);
  change = NextChange(watch);
  EXPECT_EQ(change.kind(), v1::SESSION_EVENT_KIND_EXPIRED);
  EXPECT_EQ(change.session_id(), swept.metadata().id());
  EXPECT_EQ(change.user_id(), "cid");
  watch.context->TryCancel();
}

TEST_F(SessionEventsTest, AWatchGetsOnlyTheKindsItAskedFor) {
  Watch destroyed_only = StartWatch({v1::SESSION_EVENT_KIND_DESTROYED});
  Watch all = StartWatch();
  const v1::Session a = CreateSession("ann");
  CreateSession("ann");
  v1::DestroyUserSessionsRequest logout;
  logout.set_user_id("ann");
  *logout.mutable_keep() = IdKey(a);
  v1::DestroyUserSessionsResponse out;
  ASSERT_TRUE(calls_->DestroyUserSessions(logout, &out).ok());
  ASSERT_EQ(out.destroyed(), 1u);
  // The full watch sees both creates, then the destroy; the filtered one
  // sees the destroy first.
  EXPECT_EQ(NextChange(all).kind(), v1::SESSION_EVENT_KIND_CREATED);
  EXPECT_EQ(NextChange(all).kind(), v1::SESSION_EVENT_KIND_CREATED);
  EXPECT_EQ(NextChange(all).kind(), v1::SESSION_EVENT_KIND_DESTROYED);
  const v1::SessionChange change = NextChange(destroyed_only);
  EXPECT_EQ(change.kind(), v1::SESSION_EVENT_KIND_DESTROYED);
  EXPECT_EQ(change.user_id(), "ann");
  EXPECT_NE(change.session_id(), a.metadata().id());
  destroyed_only.context->TryCancel();
  all.context->TryCancel();
}

TEST_F(SessionEventsTest, AnUnknownKindIsInvalidArgument) {
  auto context = Context();
  v1::WatchSessionEventsRequest request;
  request.add_kinds(v1::SESSION_EVENT_KIND_CREATED);
  request.add_kinds(static_cast<v1::SessionEventKind>(9));
  auto reader = session_stub_->WatchSessionEvents(context.get(), request);
  v1::SessionEvent event;
  EXPECT_FALSE(reader->Read(&event));
  const grpc::Status status = reader->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "kinds: 9 is not a SessionEventKind this sidecar knows");

  request.clear_kinds();
  request.add_kinds(v1::SESSION_EVENT_KIND_UNSPECIFIED);
  auto context2 = Context();
  reader = session_stub_->WatchSessionEvents(context2.get(), request);
  EXPECT_FALSE(reader->Read(&event));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

class SessionEventsOverflowTest : public SessionEventsTest {
 protected:
  void SetUp() override {
    queue_events_ = 2;
    SessionEventsTest::SetUp();
  }
};

TEST_F(SessionEventsOverflowTest, AWatcherThatFallsBehindGetsAGapNotAllTheChanges) {
  // A watcher that reads nothing: the changes pile up past its queue of 2,
  // while the calls go on unhindered. gRPC's own buffers may take a few
  // before the queue fills, so enough are made to overflow any of them.
  std::shared_ptr<session::ChangeWatcher> stalled = feed_->AddWatcher(0, [] {});
  Watch watch = StartWatch({v1::SESSION_EVENT_KIND_CREATED});
  for (int i = 0; i < 10; ++i) CreateSession("ann");
  EXPECT_EQ(stalled->dropped_total(), 8u);
  EXPECT_EQ(stalled->Pop()->change->kind, session::ChangeKind::kCreated);
  EXPECT_EQ(stalled->Pop()->change->kind, session::ChangeKind::kCreated);
  const std::optional<session::ChangeItem> gap = stalled->Pop();
  ASSERT_TRUE(gap.has_value() && gap->gap.has_value());
  EXPECT_EQ(gap->gap->reason, session::ChangeGap::Reason::kOverflow);
  EXPECT_EQ(gap->gap->dropped, 8u);
  EXPECT_FALSE(stalled->Pop().has_value());
  feed_->RemoveWatcher(stalled);

  // Over the stream: whatever got through, then one gap counting the rest,
  // and every change made is either delivered or counted.
  uint64_t seen = 0, dropped = 0;
  while (seen + dropped < 10) {
    const v1::SessionEvent event = Next(watch);
    if (event.has_gap()) {
      EXPECT_EQ(event.gap().reason(), v1::Gap::REASON_SUBSCRIBER_OVERFLOW);
      dropped += event.gap().dropped();
    } else {
      ASSERT_TRUE(event.has_change());
      ++seen;
    }
  }
  EXPECT_EQ(seen + dropped, 10u);
  watch.context->TryCancel();
}

TEST_F(SessionEventsTest, ShutdownEndsTheStreamUnavailable) {
  Watch watch = StartWatch();
  feed_->Shutdown();
  v1::SessionEvent event;
  EXPECT_FALSE(watch.reader->Read(&event));
  EXPECT_EQ(watch.reader->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(SessionEventsTest, DestroyUserSessionsCanCloseTheUsersConnections) {
  auto realtime = v1::RealtimeService::NewStub(channel_);
  auto context = Context();
  v1::SubscribeRequest subscribe;
  auto* conn = subscribe.add_connections();
  conn->set_conn_id("tab-1");
  conn->set_user_id("ann");
  auto reader = realtime->Subscribe(context.get(), subscribe);
  v1::RealtimeEvent event;
  ASSERT_TRUE(reader->Read(&event));
  ASSERT_TRUE(event.subscribed());

  CreateSession("ann");
  v1::DestroyUserSessionsRequest logout;
  logout.set_user_id("ann");
  logout.set_close_connections(true);
  v1::DestroyUserSessionsResponse out;
  ASSERT_TRUE(calls_->DestroyUserSessions(logout, &out).ok());
  EXPECT_EQ(out.destroyed(), 1u);
  ASSERT_TRUE(reader->Read(&event));
  ASSERT_TRUE(event.has_delivery()) << event.DebugString();
  EXPECT_EQ(event.delivery().target(), v1::TARGET_USER);
  EXPECT_EQ(event.delivery().to(), "ann");
  EXPECT_EQ(event.delivery().event(), "stateside.close");
  EXPECT_EQ(event.delivery().payload(), "sessions_destroyed");
  EXPECT_THAT(event.delivery().conn_ids(), ElementsAre("tab-1"));
  EXPECT_EQ(event.delivery().sequence(), 0u) << "no event of the user's stream";

  // Not in the user's log: a stream resuming from the start of it gets
  // the user's later event, and never the close (it would close sockets
  // opened after the logout).
  v1::PublishRequest later;
  later.set_user_id("ann");
  later.set_event("later");
  v1::PublishResponse published;
  ASSERT_TRUE(realtime->Publish(Context().get(), later, &published).ok());
  EXPECT_EQ(published.sequence(), 1u);
  ASSERT_TRUE(reader->Read(&event));
  EXPECT_EQ(event.delivery().event(), "later");
  auto resumed_context = Context();
  v1::SubscribeRequest resume;
  auto* tab2 = resume.add_connections();
  tab2->set_conn_id("tab-2");
  tab2->set_user_id("ann");
  resume.add_resume()->set_user_id("ann");  // after sequence 0
  auto resumed = realtime->Subscribe(resumed_context.get(), resume);
  ASSERT_TRUE(resumed->Read(&event));
  ASSERT_TRUE(event.subscribed());
  ASSERT_TRUE(resumed->Read(&event));
  ASSERT_TRUE(event.has_delivery()) << event.DebugString();
  EXPECT_EQ(event.delivery().event(), "later");
  EXPECT_EQ(event.delivery().sequence(), 1u);
  resumed_context->TryCancel();

  // A user id realtime cannot hold (a space) has no connections: OK, and
  // nothing is published.
  logout.set_user_id("ann smith");
  ASSERT_TRUE(calls_->DestroyUserSessions(logout, &out).ok());
  EXPECT_EQ(out.destroyed(), 0u);
  context->TryCancel();
}

TEST_F(SessionEventsTest, TheCapabilityIsAnnounced) {
  v1::GetInstanceResponse response;
  ASSERT_TRUE(lifecycle_stub_->GetInstance(Context().get(), {}, &response).ok());
  EXPECT_TRUE(response.capabilities().session_events());
  EXPECT_EQ(response.api_revision(), 3u);
}

}  // namespace
}  // namespace stateside::rpc
