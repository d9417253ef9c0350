// Realtime presence on real processes: three sidecars on one
// redis-server answer RoomMembers and UserConnections for the whole cluster,
// right after joins, leaves and unregisters; a room's members page stably;
// realtime serves through the app's drain and a drained instance's
// connections are gone as soon as it has exited; a killed instance's vanish
// within the documented bound (3 heartbeats); a frozen one drops out and
// comes back by itself; a restarted one clears its predecessor's; a
// Subscribe stream's own connections live as long as the stream.
#include <signal.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "stateside/v1/lifecycle.grpc.pb.h"
#include "tests/integration/realtime/realtime_fixture.h"
#include "tests/support/sidecar_process.h"
#include "tests/support/wait.h"

namespace stateside::testing {
namespace {

using ::testing::HasSubstr;

class RealtimePresenceTest : public RealtimeClusterTest {
 protected:
  void StartThree(const std::map<std::string, std::string>& env = {}) {
    ASSERT_NO_FATAL_FAILURE(StartPod(a_, "pod-a", env));
    ASSERT_NO_FATAL_FAILURE(StartPod(b_, "pod-b", env));
    ASSERT_NO_FATAL_FAILURE(StartPod(c_, "pod-c", env));
  }

  Pod a_, b_, c_;
};

// Long enough that no presence entry can expire during a test that checks
// what a drain removed (the TTL is 3 heartbeats).
const std::map<std::string, std::string> kSlowHeartbeat = {
    {"STATESIDE_HEARTBEAT_INTERVAL", "60s"}};

TEST_F(RealtimePresenceTest, AnswersFollowJoinsLeavesAndUnregistersAtOnce) {
  ASSERT_NO_FATAL_FAILURE(StartThree(kSlowHeartbeat));
  ASSERT_TRUE(Register(a_, "a1", "ann", {"r"}).ok());
  ASSERT_TRUE(Register(b_, "b1", "ann", {"r", "s"}).ok());
  ASSERT_TRUE(Register(c_, "c1", "bob", {"s"}).ok());
  ASSERT_TRUE(Register(c_, "a1", "", {"s"}).ok());  // same id as A's, another instance

  // Every instance gives the same cluster-wide answer, right away.
  for (const Pod* pod : {&a_, &b_, &c_}) {
    SCOPED_TRACE(pod->name);
    EXPECT_EQ(MemberSet(*pod, "r"), (std::set<Ref>{{"pod-a", "a1"}, {"pod-b", "b1"}}));
    EXPECT_EQ(MemberSet(*pod, "s"),
              (std::set<Ref>{{"pod-b", "b1"}, {"pod-c", "c1"}, {"pod-c", "a1"}}));
    EXPECT_EQ(UserConns(*pod, "ann"), (std::set<Ref>{{"pod-a", "a1"}, {"pod-b", "b1"}}));
    EXPECT_EQ(UserConns(*pod, "bob"), (std::set<Ref>{{"pod-c", "c1"}}));
  }
  int64_t count = -1;
  ASSERT_TRUE(Members(a_, "s", 100, &count).has_value());
  EXPECT_EQ(count, 3);
  ASSERT_TRUE(Members(a_, "nobody-here", 100, &count).has_value());
  EXPECT_EQ(count, 0);
  EXPECT_EQ(UserConns(a_, "nobody"), std::set<Ref>{});

  ASSERT_TRUE(Join(c_, "c1", {"r"}).ok());
  EXPECT_EQ(MemberSet(a_, "r"),
            (std::set<Ref>{{"pod-a", "a1"}, {"pod-b", "b1"}, {"pod-c", "c1"}}));

  ASSERT_TRUE(Leave(b_, "b1", {"r"}).ok());
  EXPECT_EQ(MemberSet(c_, "r"), (std::set<Ref>{{"pod-a", "a1"}, {"pod-c", "c1"}}));
  EXPECT_EQ(MemberSet(c_, "s"),  // only the room it left
            (std::set<Ref>{{"pod-b", "b1"}, {"pod-c", "c1"}, {"pod-c", "a1"}}));
  EXPECT_EQ(UserConns(c_, "ann"), (std::set<Ref>{{"pod-a", "a1"}, {"pod-b", "b1"}}));

  v1::UnregisterConnectionRequest unregister;
  unregister.set_conn_id("a1");
  v1::UnregisterConnectionResponse gone;
  ASSERT_TRUE(a_.rt->UnregisterConnection(Ctx().get(), unregister, &gone).ok());
  EXPECT_TRUE(gone.found());
  EXPECT_EQ(MemberSet(b_, "r"), (std::set<Ref>{{"pod-c", "c1"}}));
  EXPECT_EQ(UserConns(b_, "ann"), (std::set<Ref>{{"pod-b", "b1"}}));
  // C's "a1" is another connection: still there.
  EXPECT_EQ(MemberSet(b_, "s"),
            (std::set<Ref>{{"pod-b", "b1"}, {"pod-c", "c1"}, {"pod-c", "a1"}}));
  ASSERT_TRUE(a_.rt->UnregisterConnection(Ctx().get(), unregister, &gone).ok());
  EXPECT_FALSE(gone.found());

  ASSERT_TRUE(Unregister(b_, "b1").ok());
  EXPECT_EQ(UserConns(a_, "ann"), std::set<Ref>{});
  EXPECT_EQ(MemberSet(a_, "s"), (std::set<Ref>{{"pod-c", "c1"}, {"pod-c", "a1"}}));
}

TEST_F(RealtimePresenceTest, ManyMembersPageInAStableOrderWithoutDuplicatesOrGaps) {
  ASSERT_NO_FATAL_FAILURE(StartThree(kSlowHeartbeat));
  constexpr int kPerPod = 100;
  std::set<Ref> expected;
  for (Pod* pod : {&a_, &b_, &c_}) {
    for (int i = 0; i < kPerPod; ++i) {
      const std::string conn = absl::StrFormat("m%03d", i);
      ASSERT_TRUE(Register(*pod, conn, "", {"big"}).ok());
      expected.emplace(pod->name, conn);
    }
  }
  constexpr int kPage = 64;
  v1::RoomMembersRequest request;
  request.set_room("big");
  request.set_page_size(kPage);
  std::vector<Ref> listed;
  int pages = 0;
  std::string first_token;
  while (true) {
    v1::RoomMembersResponse page;
    ASSERT_TRUE(b_.rt->RoomMembers(Ctx().get(), request, &page).ok());
    ++pages;
    EXPECT_EQ(page.count(), 3 * kPerPod);
    for (const auto& m : page.members()) listed.emplace_back(m.instance_id(), m.conn_id());
    if (page.next_page_token().empty()) {
      EXPECT_LE(page.members_size(), kPage);
      break;
    }
    EXPECT_EQ(page.members_size(), kPage);
    if (first_token.empty()) first_token = page.next_page_token();
    request.set_page_token(page.next_page_token());
    ASSERT_LT(pages, 100) << "pages never end";
  }
  EXPECT_EQ(pages, (3 * kPerPod + kPage - 1) / kPage);
  EXPECT_EQ(listed.size(), expected.size());
  EXPECT_EQ(std::set<Ref>(listed.begin(), listed.end()), expected);  // and no duplicates
  // The same order from another instance.
  EXPECT_EQ(Members(c_, "big", kPage), listed);
  EXPECT_EQ(Members(a_, "big", 1000), listed);

  // Members leaving and joining between pages: every member present for the
  // whole listing appears exactly once.
  request.set_page_token("");
  v1::RoomMembersResponse page1;
  ASSERT_TRUE(a_.rt->RoomMembers(Ctx().get(), request, &page1).ok());
  ASSERT_EQ(page1.members_size(), kPage);
  const Ref gone_early(page1.members(3).instance_id(), page1.members(3).conn_id());
  const Ref gone_late = listed.back();
  ASSERT_TRUE(Leave(gone_early.first == "pod-a" ? a_ : gone_early.first == "pod-b" ? b_ : c_,
                    gone_early.second, {"big"})
                  .ok());
  ASSERT_TRUE(Leave(gone_late.first == "pod-a" ? a_ : gone_late.first == "pod-b" ? b_ : c_,
                    gone_late.second, {"big"})
                  .ok());
  ASSERT_TRUE(Register(b_, "zz-new", "", {"big"}).ok());
  std::vector<Ref> second(listed.begin(), listed.begin() + kPage);
  request.set_page_token(page1.next_page_token());
  while (true) {
    v1::RoomMembersResponse page;
    ASSERT_TRUE(a_.rt->RoomMembers(Ctx().get(), request, &page).ok());
    for (const auto& m : page.members()) second.emplace_back(m.instance_id(), m.conn_id());
    if (page.next_page_token().empty()) break;
    request.set_page_token(page.next_page_token());
    ASSERT_LT(second.size(), 1000u);
  }
  std::set<Ref> stayed = expected;
  stayed.erase(gone_early);
  stayed.erase(gone_late);
  const std::set<Ref> second_set(second.begin(), second.end());
  EXPECT_EQ(second_set.size(), second.size()) << "a member listed twice";
  for (const Ref& m : stayed) EXPECT_TRUE(second_set.contains(m)) << m.first << "/" << m.second;
  EXPECT_FALSE(second_set.contains(gone_late));

  // A token is good for its own room only; page sizes are 1..1000.
  v1::RoomMembersRequest other;
  other.set_room("other-room");
  other.set_page_token(first_token);
  v1::RoomMembersResponse refused;
  grpc::Status s = a_.rt->RoomMembers(Ctx().get(), other, &refused);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("page_token"));
  other.set_page_token("");
  other.set_page_size(1001);
  s = a_.rt->RoomMembers(Ctx().get(), other, &refused);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
}

TEST_F(RealtimePresenceTest, ADrainedInstancesConnectionsAreGoneWhenItHasExited) {
  ASSERT_NO_FATAL_FAILURE(StartThree(kSlowHeartbeat));
  ASSERT_TRUE(Register(a_, "a1", "ann", {"r"}).ok());
  ASSERT_TRUE(Register(c_, "c1", "ann", {"r"}).ok());
  ASSERT_TRUE(Register(c_, "c2", "bob", {"r", "s"}).ok());
  std::unique_ptr<EventStream> stream = OpenStream(c_);
  ASSERT_EQ(MemberSet(a_, "r"),
            (std::set<Ref>{{"pod-a", "a1"}, {"pod-c", "c1"}, {"pod-c", "c2"}}));

  // No app watches the drain: straight to exit.
  ASSERT_EQ(StopSidecar(*c_.process, absl::Seconds(20)), 0) << c_.process->ReadLog();
  // At once: the TTL is minutes away.
  EXPECT_EQ(MemberSet(a_, "r"), (std::set<Ref>{{"pod-a", "a1"}}));
  EXPECT_EQ(MemberSet(b_, "s"), std::set<Ref>{});
  EXPECT_EQ(UserConns(b_, "ann"), (std::set<Ref>{{"pod-a", "a1"}}));
  EXPECT_EQ(UserConns(b_, "bob"), std::set<Ref>{});
  EXPECT_THAT(c_.process->ReadLog(), HasSubstr("realtime connections removed from the cluster"));
  // Its Subscribe stream ended UNAVAILABLE, not with a crash or a hang.
  const std::optional<grpc::Status> end = stream->WaitEnded(absl::Seconds(10));
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(end->error_code(), grpc::StatusCode::UNAVAILABLE) << end->error_message();
  // And nothing is sent its way any more.
  v1::PublishResponse published;
  ASSERT_TRUE(Publish(b_, ToRoom("r", "x"), &published).ok());
  EXPECT_EQ(published.instances(), 1);
  ASSERT_TRUE(Publish(b_, ToUser("bob", "x"), &published).ok());
  EXPECT_EQ(published.instances(), 0);
}

// The drain (docs/OPERATIONS.md), t=P..P+D: pub/sub keeps serving while the app drains (it
// tells its WebSocket clients to reconnect elsewhere meanwhile); the
// connections leave the cluster when the sidecar shuts down after it.
TEST_F(RealtimePresenceTest, RealtimeServesThroughTheAppsDrainAndLeavesAfterIt) {
  // The drain waits for ReportDrained, not for its timeout.
  ASSERT_NO_FATAL_FAILURE(StartThree(
      {{"STATESIDE_HEARTBEAT_INTERVAL", "60s"}, {"STATESIDE_DRAIN_TIMEOUT", "25s"}}));
  ASSERT_TRUE(Register(a_, "a1", "", {"r"}).ok());
  ASSERT_TRUE(Register(c_, "c1", "", {"r"}).ok());
  std::unique_ptr<EventStream> stream = OpenStream(c_);
  auto lifecycle = v1::LifecycleService::NewStub(
      grpc::CreateChannel("unix:" + c_.socket, grpc::InsecureChannelCredentials()));
  grpc::ClientContext watch_context;
  watch_context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
  std::unique_ptr<grpc::ClientReader<v1::DrainEvent>> watch =
      lifecycle->WatchDrain(&watch_context, v1::WatchDrainRequest());
  v1::DrainEvent state;
  ASSERT_TRUE(watch->Read(&state));
  ASSERT_EQ(state.state(), v1::DRAIN_STATE_SERVING);

  c_.process->Signal(SIGTERM);
  ASSERT_TRUE(watch->Read(&state));
  ASSERT_EQ(state.state(), v1::DRAIN_STATE_DRAINING);
  // The app is draining: everything realtime still works on C.
  ASSERT_TRUE(Register(c_, "c2", "", {"r"}).ok());
  EXPECT_EQ(MemberSet(a_, "r"),
            (std::set<Ref>{{"pod-a", "a1"}, {"pod-c", "c1"}, {"pod-c", "c2"}}));
  v1::PublishResponse published;
  ASSERT_TRUE(Publish(a_, ToRoom("r", "while-draining"), &published).ok());
  EXPECT_EQ(published.instances(), 2);
  std::optional<v1::Delivery> got = stream->NextDelivery();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->payload(), "while-draining");
  EXPECT_THAT(got->conn_ids(), ::testing::ElementsAre("c1", "c2"));
  ASSERT_TRUE(Publish(c_, ToRoom("r", "from-draining"), &published).ok());
  got = stream->NextDelivery();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->payload(), "from-draining");

  // The app reports; the sidecar leaves the cluster and exits.
  v1::ReportDrainedResponse reported;
  ASSERT_TRUE(lifecycle->ReportDrained(Ctx().get(), {}, &reported).ok());
  ASSERT_EQ(c_.process->Wait(absl::Seconds(20)), 0) << c_.process->ReadLog();
  EXPECT_THAT(c_.process->ReadLog(), HasSubstr("app drain finished"));
  EXPECT_EQ(MemberSet(a_, "r"), (std::set<Ref>{{"pod-a", "a1"}}));
  const std::optional<grpc::Status> end = stream->WaitEnded(absl::Seconds(10));
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(end->error_code(), grpc::StatusCode::UNAVAILABLE);
  while (watch->Read(&state)) {
  }
  watch->Finish();
}

TEST_F(RealtimePresenceTest, AKilledInstancesConnectionsVanishWithinThreeHeartbeats) {
  constexpr absl::Duration kHeartbeat = absl::Milliseconds(300);
  // Round trips and scheduling on a loaded 2-core machine; far below what a
  // TTL that is not enforced (or a 4th+ heartbeat) would take.
  constexpr absl::Duration kMargin = absl::Milliseconds(1000);
  ASSERT_NO_FATAL_FAILURE(StartThree({{"STATESIDE_HEARTBEAT_INTERVAL", "300ms"}}));
  ASSERT_TRUE(Register(a_, "a1", "ann", {"r"}).ok());
  ASSERT_TRUE(Register(c_, "c1", "ann", {"r"}).ok());
  ASSERT_TRUE(Register(c_, "c2", "bob", {"r"}).ok());
  const std::set<Ref> all = {{"pod-a", "a1"}, {"pod-c", "c1"}, {"pod-c", "c2"}};
  // Presence outlives several heartbeats while the instance lives.
  const absl::Time registered = absl::Now();
  ASSERT_TRUE(WaitFor([&] { return absl::Now() - registered > 4 * kHeartbeat; },
                      absl::Seconds(5), absl::Milliseconds(50)));
  ASSERT_EQ(MemberSet(b_, "r"), all);

  c_.process->Kill();  // no drain, no removal
  const absl::Time killed = absl::Now();
  // Still listed right after the kill: the answer is not simply "gone".
  EXPECT_EQ(MemberSet(b_, "r"), all);
  EXPECT_EQ(UserConns(b_, "bob"), (std::set<Ref>{{"pod-c", "c2"}}));
  ASSERT_TRUE(WaitFor(
      [&] {
        return MemberSet(b_, "r") == std::set<Ref>{{"pod-a", "a1"}} &&
               UserConns(b_, "bob") == std::set<Ref>{};
      },
      absl::Seconds(10)));
  const absl::Duration gone_after = absl::Now() - killed;
  EXPECT_LT(gone_after, 3 * kHeartbeat + kMargin) << gone_after;
  EXPECT_EQ(UserConns(a_, "ann"), (std::set<Ref>{{"pod-a", "a1"}}));
  RecordProperty("gone_after_ms", static_cast<int>(absl::ToInt64Milliseconds(gone_after)));
  // Nothing is routed to the dead instance any more.
  v1::PublishResponse published;
  ASSERT_TRUE(Publish(a_, ToUser("bob", "x"), &published).ok());
  EXPECT_EQ(published.instances(), 0);
  ASSERT_TRUE(Publish(a_, ToUser("ann", "x"), &published).ok());
  EXPECT_EQ(published.instances(), 1);
}

// A pod frozen for longer than the presence TTL (SIGSTOP: a VM pause, a
// stuck node) drops out of the answers like a dead one, and is listed again
// by itself once it runs again: its next heartbeat finds itself swept and
// writes its connections again.
TEST_F(RealtimePresenceTest, AFrozenInstanceDropsOutAndIsListedAgainWhenItRuns) {
  constexpr absl::Duration kHeartbeat = absl::Milliseconds(300);
  ASSERT_NO_FATAL_FAILURE(StartThree({{"STATESIDE_HEARTBEAT_INTERVAL", "300ms"}}));
  ASSERT_TRUE(Register(a_, "a1", "ann", {"r"}).ok());
  ASSERT_TRUE(Register(c_, "c1", "ann", {"r"}).ok());
  const std::set<Ref> all = {{"pod-a", "a1"}, {"pod-c", "c1"}};
  ASSERT_EQ(MemberSet(b_, "r"), all);

  c_.process->Signal(SIGSTOP);
  ASSERT_TRUE(WaitFor([&] { return MemberSet(b_, "r") == std::set<Ref>{{"pod-a", "a1"}}; },
                      absl::Seconds(10)));
  // Let a sweep (any live instance's heartbeat) delete its entries too.
  const absl::Time gone = absl::Now();
  ASSERT_TRUE(WaitFor([&] { return absl::Now() - gone > 3 * kHeartbeat; }, absl::Seconds(5),
                      absl::Milliseconds(50)));
  c_.process->Signal(SIGCONT);
  EXPECT_TRUE(WaitFor([&] { return MemberSet(b_, "r") == all; }, absl::Seconds(10)))
      << "the instance never wrote its connections again";
  EXPECT_EQ(UserConns(b_, "ann"), all);
  // And it is routed to again.
  std::unique_ptr<EventStream> stream = OpenStream(c_);
  v1::PublishResponse published;
  ASSERT_TRUE(Publish(a_, ToUser("ann", "back"), &published).ok());
  EXPECT_EQ(published.instances(), 2);
  std::optional<v1::Delivery> got = stream->NextDelivery();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->payload(), "back");
}

// A crashed pod that comes back under the same INSTANCE_ID (a restarted
// container) must not keep its previous process's connections alive: its
// heartbeats would otherwise refresh them forever.
TEST_F(RealtimePresenceTest, AnInstanceRestartedUnderItsIdClearsWhatItsPreviousProcessLeft) {
  ASSERT_NO_FATAL_FAILURE(StartThree(kSlowHeartbeat));
  ASSERT_TRUE(Register(a_, "a1", "ann", {"r"}).ok());
  ASSERT_TRUE(Register(c_, "c1", "ann", {"r"}).ok());
  ASSERT_TRUE(Register(c_, "c2", "bob", {"r"}).ok());
  c_.process->Kill();
  ASSERT_EQ(MemberSet(a_, "r"),
            (std::set<Ref>{{"pod-a", "a1"}, {"pod-c", "c1"}, {"pod-c", "c2"}}));

  Pod again;
  ASSERT_NO_FATAL_FAILURE(StartPod(again, "pod-c", kSlowHeartbeat));
  EXPECT_TRUE(WaitFor([&] { return MemberSet(a_, "r") == std::set<Ref>{{"pod-a", "a1"}}; },
                      absl::Seconds(10)))
      << "the old process's connections outlive it";
  EXPECT_EQ(UserConns(b_, "bob"), std::set<Ref>{});
  // The new process's own connections are listed as usual.
  ASSERT_TRUE(Register(again, "c9", "bob", {"r"}).ok());
  EXPECT_EQ(MemberSet(b_, "r"), (std::set<Ref>{{"pod-a", "a1"}, {"pod-c", "c9"}}));
  EXPECT_EQ(UserConns(b_, "bob"), (std::set<Ref>{{"pod-c", "c9"}}));
}

// Connections given in the SubscribeRequest (statesidectl subscribe) live
// exactly as long as the stream.
TEST_F(RealtimePresenceTest, ConnectionsOfASubscribeStreamLiveAsLongAsTheStream) {
  ASSERT_NO_FATAL_FAILURE(StartThree(kSlowHeartbeat));
  v1::SubscribeRequest request;
  v1::RegisterConnectionRequest* conn = request.add_connections();
  conn->set_conn_id("cli-1");
  conn->set_user_id("ann");
  conn->add_rooms("r");
  conn->add_rooms("s");
  request.add_connections()->set_conn_id("cli-2");
  auto stream = OpenStream(b_, /*paused=*/false, request);
  // `subscribed` means registered: listed at once, events reach them.
  EXPECT_EQ(MemberSet(a_, "r"), (std::set<Ref>{{"pod-b", "cli-1"}}));
  EXPECT_EQ(UserConns(c_, "ann"), (std::set<Ref>{{"pod-b", "cli-1"}}));
  v1::PublishResponse published;
  ASSERT_TRUE(Publish(a_, ToRoom("s", "hi"), &published).ok());
  EXPECT_EQ(published.instances(), 1);
  std::optional<v1::Delivery> got = stream->NextDelivery();
  ASSERT_TRUE(got.has_value());
  EXPECT_THAT(got->conn_ids(), ::testing::ElementsAre("cli-1"));

  stream.reset();  // the app goes away
  EXPECT_TRUE(WaitFor([&] { return MemberSet(a_, "r") == std::set<Ref>{}; }));
  EXPECT_TRUE(WaitFor([&] { return UserConns(c_, "ann") == std::set<Ref>{}; }));
  // B holds no connection, so no broadcast channel (its UNSUBSCRIBE is not
  // awaited by the unregistration, hence "soon").
  EXPECT_TRUE(WaitFor([&] {
    return Publish(a_, ToAll("anyone?"), &published).ok() && published.instances() == 0;
  }));

  // Bad connections refuse the stream with the field named.
  v1::SubscribeRequest bad;
  bad.add_connections()->set_conn_id("has space");
  EventStream refused(b_.rt.get(), bad);
  const std::optional<grpc::Status> end = refused.WaitEnded(absl::Seconds(10));
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(end->error_code(), grpc::StatusCode::INVALID_ARGUMENT) << end->error_message();
  EXPECT_THAT(end->error_message(), HasSubstr("conn_id"));
}

}  // namespace
}  // namespace stateside::testing
