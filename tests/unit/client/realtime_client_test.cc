// stateside::Client's realtime calls against an in-process fake
// RealtimeService: the retry policy, request and reply mapping, and
// client-side validation. (Subscribe: realtime_subscription_test.cc.)
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "stateside/client.h"
#include "stateside/realtime.h"
#include "tests/unit/client/fake_realtime_service.h"
#include "tests/unit/client/realtime_fixture.h"

namespace stateside {
namespace {

using client_internal::IsIdempotent;
using client_internal::Rpc;
using client_internal::RpcName;
using client_internal::kRealtimeRpcs;
using testing::RealtimeClientTest;
using testing::Ref;
using testing::kLong;
using testing::RoomDelivery;
using ::testing::ElementsAre;

const grpc::Status kUnavailable(grpc::StatusCode::UNAVAILABLE, "redis down");

// --- Retry policy ---

TEST_F(RealtimeClientTest, IdempotentCallsAreRetriedOnUnavailable) {
  auto client = Connected();
  ASSERT_NE(client, nullptr);
  for (Rpc rpc : kRealtimeRpcs) {
    if (!IsIdempotent(rpc)) continue;
    const int before = fake_->calls(rpc);
    fake_->FailNext(rpc, 2, kUnavailable);
    EXPECT_TRUE(Invoke(*client, rpc).ok()) << RpcName(rpc);
    EXPECT_EQ(fake_->calls(rpc) - before, 3) << RpcName(rpc);
  }
}

TEST_F(RealtimeClientTest, PublishIsRetriedWithItsRequestId) {
  for (Rpc rpc : kRealtimeRpcs) {
    EXPECT_EQ(IsIdempotent(rpc), rpc != Rpc::kPublish) << RpcName(rpc);
  }
  auto client = Connected();
  ASSERT_NE(client, nullptr);
  fake_->FailNext(Rpc::kPublish, 1, kUnavailable);
  auto published = client->Publish(PublishTarget::Room("lobby"), "chat", "hi");
  ASSERT_TRUE(published.ok()) << published.status();
  EXPECT_EQ(fake_->calls(Rpc::kPublish), 2);
  const std::string first = fake_->last_publish().request_id();
  EXPECT_EQ(first.size(), 32u);
  ASSERT_TRUE(client->Publish(PublishTarget::Room("lobby"), "chat", "hi").ok());
  EXPECT_NE(fake_->last_publish().request_id(), first);
}

TEST_F(RealtimeClientTest, RoomMembersIsRetriedUntilMaxRetries) {
  ClientOptions o = Options();
  o.max_retries = 2;
  auto client = Connected(o);
  ASSERT_NE(client, nullptr);
  fake_->FailNext(Rpc::kRoomMembers, 100, kUnavailable);
  EXPECT_EQ(client->RoomMembers("lobby").status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(fake_->calls(Rpc::kRoomMembers), 3);
}

TEST_F(RealtimeClientTest, OtherErrorsAreNotRetriedAndKeepCodeAndMessage) {
  auto client = Connected();
  ASSERT_NE(client, nullptr);
  fake_->FailNext(Rpc::kJoin, 1,
                  grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "rooms[0]: too long"));
  const absl::Status status = client->Join("c1", {"lobby"});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "rooms[0]: too long");
  EXPECT_EQ(fake_->calls(Rpc::kJoin), 1);
}

// --- Request and reply mapping ---

TEST_F(RealtimeClientTest, RegisterConnectionSendsConnUserAndRooms) {
  auto client = Connected();
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->RegisterConnection("c1", "alice", {"lobby", "r2"}).ok());
  const v1::RegisterConnectionRequest r = fake_->last_register();
  EXPECT_EQ(r.conn_id(), "c1");
  EXPECT_EQ(r.user_id(), "alice");
  EXPECT_THAT(r.rooms(), ElementsAre("lobby", "r2"));
  // user and rooms are optional.
  ASSERT_TRUE(client->RegisterConnection("c2").ok());
  EXPECT_EQ(fake_->last_register().user_id(), "");
  EXPECT_EQ(fake_->last_register().rooms_size(), 0);
}

TEST_F(RealtimeClientTest, UnregisterReportsWhetherTheConnectionWasFound) {
  auto client = Connected();
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->RegisterConnection("c1").ok());
  EXPECT_EQ(client->UnregisterConnection("c1").value(), true);
  EXPECT_EQ(fake_->last_unregister().conn_id(), "c1");
  EXPECT_EQ(client->UnregisterConnection("c1").value(), false);
}

TEST_F(RealtimeClientTest, JoinAndLeaveSendTheirRooms) {
  auto client = Connected();
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->Join("c1", {"a", "b"}).ok());
  EXPECT_EQ(fake_->last_join().conn_id(), "c1");
  EXPECT_THAT(fake_->last_join().rooms(), ElementsAre("a", "b"));
  ASSERT_TRUE(client->Leave("c2", {"b"}).ok());
  EXPECT_EQ(fake_->last_leave().conn_id(), "c2");
  EXPECT_THAT(fake_->last_leave().rooms(), ElementsAre("b"));
}

TEST_F(RealtimeClientTest, PublishMapsEveryTargetEventPayloadAndExcept) {
  auto client = Connected();
  ASSERT_NE(client, nullptr);
  const std::string binary("\0\xff\n", 3);
  auto room = client->Publish(PublishTarget::Room("lobby"), "chat", binary,
                              {{"", "c1"}, {"inst-2", "c9"}});
  ASSERT_TRUE(room.ok()) << room.status();
  EXPECT_EQ(room->sequence, 12u);
  EXPECT_EQ(room->instances, 2);
  v1::PublishRequest r = fake_->last_publish();
  EXPECT_EQ(r.room(), "lobby");
  EXPECT_EQ(r.event(), "chat");
  EXPECT_EQ(r.payload(), binary);
  ASSERT_EQ(r.exclude_size(), 2);
  EXPECT_EQ(r.exclude(0).instance_id(), "");
  EXPECT_EQ(r.exclude(0).conn_id(), "c1");
  EXPECT_EQ(r.exclude(1).instance_id(), "inst-2");
  EXPECT_EQ(r.exclude(1).conn_id(), "c9");

  auto user = client->Publish(PublishTarget::User("alice"), "", "x");
  ASSERT_TRUE(user.ok()) << user.status();
  EXPECT_EQ(user->sequence, 0u);
  EXPECT_EQ(fake_->last_publish().user_id(), "alice");
  EXPECT_EQ(fake_->last_publish().exclude_size(), 0);

  ASSERT_TRUE(client->Publish(PublishTarget::Connection({"inst-3", "c7"}), "e", "x").ok());
  r = fake_->last_publish();
  ASSERT_TRUE(r.has_connection());
  EXPECT_EQ(r.connection().instance_id(), "inst-3");
  EXPECT_EQ(r.connection().conn_id(), "c7");

  ASSERT_TRUE(client->Publish(PublishTarget::All(), "e", "").ok());
  EXPECT_EQ(fake_->last_publish().target_case(), v1::PublishRequest::kAll);
  EXPECT_TRUE(fake_->last_publish().all());
}

TEST_F(RealtimeClientTest, RoomMembersSendsPagingAndMapsThePage) {
  auto client = Connected();
  ASSERT_NE(client, nullptr);
  fake_->SetRoomMembers({Ref("i1", "a"), Ref("i1", "b"), Ref("i2", "c")}, 2);
  auto first = client->RoomMembers("lobby", 50);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(fake_->last_room_members().room(), "lobby");
  EXPECT_EQ(fake_->last_room_members().page_size(), 50);
  EXPECT_EQ(first->count, 3);
  EXPECT_THAT(first->members, ElementsAre(ConnectionRef{"i1", "a"}, ConnectionRef{"i1", "b"}));
  ASSERT_FALSE(first->next_page_token.empty());
  auto second = client->RoomMembers("lobby", 50, first->next_page_token);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(fake_->last_room_members().page_token(), first->next_page_token);
  EXPECT_THAT(second->members, ElementsAre(ConnectionRef{"i2", "c"}));
  EXPECT_EQ(second->next_page_token, "");
}

TEST_F(RealtimeClientTest, UserConnectionsMapsTheReferences) {
  auto client = Connected();
  ASSERT_NE(client, nullptr);
  fake_->SetUserConnections({Ref("i1", "a"), Ref("i2", "b")});
  auto found = client->UserConnections("alice");
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(fake_->last_user_connections().user_id(), "alice");
  EXPECT_THAT(*found, ElementsAre(ConnectionRef{"i1", "a"}, ConnectionRef{"i2", "b"}));
}

TEST_F(RealtimeClientTest, HistoryMapsEventsAndTheWindow) {
  auto client = Connected();
  ASSERT_NE(client, nullptr);
  v1::HistoryResponse response;
  *response.add_events() = RoomDelivery("lobby", 4, "chat", "four", {}).delivery();
  *response.add_events() = RoomDelivery("lobby", 5, "chat", "five", {}).delivery();
  response.set_complete(false);
  response.set_first_sequence(4);
  response.set_last_sequence(9);
  response.set_more(true);
  fake_->SetHistory(response);
  auto history = client->History("lobby", 2, 2);
  ASSERT_TRUE(history.ok()) << history.status();
  EXPECT_EQ(fake_->last_history().room(), "lobby");
  EXPECT_EQ(fake_->last_history().after_sequence(), 2u);
  EXPECT_EQ(fake_->last_history().limit(), 2);
  ASSERT_EQ(history->events.size(), 2u);
  const Delivery& d = history->events[0];
  EXPECT_EQ(d.target, Target::kRoom);
  EXPECT_EQ(d.to, "lobby");
  EXPECT_EQ(d.event, "chat");
  EXPECT_EQ(d.payload, "four");
  EXPECT_EQ(d.sequence, 4u);
  EXPECT_EQ(d.published_at, absl::FromUnixMillis(1'700'000'000'250));
  EXPECT_EQ(d.origin_instance, "inst-2");
  EXPECT_EQ(history->events[1].sequence, 5u);
  EXPECT_FALSE(history->complete);
  EXPECT_EQ(history->first_sequence, 4u);
  EXPECT_EQ(history->last_sequence, 9u);
  EXPECT_TRUE(history->more);
}

TEST_F(RealtimeClientTest, EmptyOrNonUtf8NamesAreRejectedWithoutACall) {
  auto client = Connected();
  ASSERT_NE(client, nullptr);
  const std::string bad("\xff", 1);
  const std::vector<absl::Status> results = {
      client->RegisterConnection(""),
      client->RegisterConnection("c1", bad),
      client->RegisterConnection("c1", "u", {"lobby", ""}),
      client->UnregisterConnection("").status(),
      client->Join("", {"lobby"}),
      client->Join("c1", {bad}),
      client->Leave("c1", {""}),
      client->Publish(PublishTarget::Room(""), "e", "x").status(),
      client->Publish(PublishTarget::User(bad), "e", "x").status(),
      client->Publish(PublishTarget::Connection({"i1", ""}), "e", "x").status(),
      client->Publish(PublishTarget::All(), bad, "x").status(),
      client->Publish(PublishTarget::All(), "e", "x", {{"i1", ""}}).status(),
      client->Publish(PublishTarget{Target::kUnspecified, "", {}}, "e", "x").status(),
      client->Subscribe({{"", "alice", {}}}).status(),
      client->RoomMembers("").status(),
      client->RoomMembers("lobby", -1).status(),
      client->UserConnections("").status(),
      client->History("").status(),
      client->History("lobby", 0, -5).status(),
  };
  for (size_t i = 0; i < results.size(); ++i) {
    EXPECT_EQ(results[i].code(), absl::StatusCode::kInvalidArgument) << "case " << i;
  }
  for (Rpc rpc : kRealtimeRpcs) {
    EXPECT_EQ(fake_->calls(rpc), 0) << RpcName(rpc);
  }
  // The binary payload is not text: it is never checked.
  EXPECT_TRUE(client->Publish(PublishTarget::All(), "e", bad).ok());
}

// --- Async forms ---

// What an Async call handed its `done`, and how many times it ran.
template <typename T>
struct AsyncResult {
  absl::Mutex mu;
  std::optional<absl::StatusOr<T>> got ABSL_GUARDED_BY(mu);
  int runs ABSL_GUARDED_BY(mu) = 0;

  Callback<T> Done() {
    return [this](absl::StatusOr<T> result) {
      absl::MutexLock lock(&mu);
      ++runs;
      got = std::move(result);
    };
  }
  // Waits (bounded) for the first run; the result.
  absl::StatusOr<T> Wait() {
    absl::MutexLock lock(&mu);
    auto ran = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return runs > 0; };
    if (!mu.AwaitWithTimeout(absl::Condition(&ran), kLong)) {
      return absl::DeadlineExceededError("done never ran");
    }
    return *got;
  }
  int Runs() {
    absl::MutexLock lock(&mu);
    return runs;
  }
};

TEST_F(RealtimeClientTest, AsyncFormsAnswerAsTheBlockingOnes) {
  auto client = Connected();
  ASSERT_NE(client, nullptr);
  fake_->SetRoomMembers({Ref("i1", "a"), Ref("i1", "b"), Ref("i2", "c")}, 2);
  fake_->SetUserConnections({Ref("i1", "a"), Ref("i2", "b")});

  auto blocking = client->Publish(PublishTarget::Room("lobby"), "chat", "hi",
                                  {{"i2", "c9"}}, "alice");
  ASSERT_TRUE(blocking.ok()) << blocking.status();
  const v1::PublishRequest sent_blocking = fake_->last_publish();
  AsyncResult<PublishResult> published;
  client->PublishAsync(PublishTarget::Room("lobby"), "chat", "hi", {{"i2", "c9"}}, "alice",
                       published.Done());
  absl::StatusOr<PublishResult> async = published.Wait();
  ASSERT_TRUE(async.ok()) << async.status();
  EXPECT_EQ(async->sequence, blocking->sequence);
  EXPECT_EQ(async->instances, blocking->instances);
  v1::PublishRequest sent_async = fake_->last_publish();
  EXPECT_EQ(sent_async.request_id().size(), 32u);
  EXPECT_NE(sent_async.request_id(), sent_blocking.request_id());
  sent_async.clear_request_id();
  v1::PublishRequest expected = sent_blocking;
  expected.clear_request_id();
  EXPECT_EQ(sent_async.DebugString(), expected.DebugString());

  auto page = client->RoomMembers("lobby", 50, "1");
  ASSERT_TRUE(page.ok()) << page.status();
  AsyncResult<RoomMembersPage> members;
  client->RoomMembersAsync("lobby", 50, "1", members.Done());
  absl::StatusOr<RoomMembersPage> async_page = members.Wait();
  ASSERT_TRUE(async_page.ok()) << async_page.status();
  EXPECT_EQ(async_page->count, page->count);
  EXPECT_EQ(async_page->members, page->members);
  EXPECT_EQ(async_page->next_page_token, page->next_page_token);
  EXPECT_EQ(fake_->last_room_members().page_token(), "1");

  auto mine = client->UserConnections("alice");
  ASSERT_TRUE(mine.ok()) << mine.status();
  AsyncResult<std::vector<ConnectionRef>> connections;
  client->UserConnectionsAsync("alice", connections.Done());
  absl::StatusOr<std::vector<ConnectionRef>> async_mine = connections.Wait();
  ASSERT_TRUE(async_mine.ok()) << async_mine.status();
  EXPECT_EQ(*async_mine, *mine);

  EXPECT_EQ(published.Runs(), 1);
  EXPECT_EQ(members.Runs(), 1);
  EXPECT_EQ(connections.Runs(), 1);
}

TEST_F(RealtimeClientTest, ConnectionAsyncFormsSendWhatTheBlockingOnesSend) {
  auto client = Connected();
  ASSERT_NE(client, nullptr);
  // A StatusCallback as the Callback<bool> AsyncResult records.
  const auto status_only = [](AsyncResult<bool>& result) -> StatusCallback {
    return [done = result.Done()](absl::Status status) mutable {
      done(status.ok() ? absl::StatusOr<bool>(true) : absl::StatusOr<bool>(status));
    };
  };
  AsyncResult<bool> registered;
  client->RegisterConnectionAsync("c1", "alice", {"lobby", "r2"}, status_only(registered));
  ASSERT_TRUE(registered.Wait().ok()) << registered.Wait().status();
  EXPECT_EQ(fake_->last_register().conn_id(), "c1");
  EXPECT_EQ(fake_->last_register().user_id(), "alice");
  EXPECT_THAT(fake_->last_register().rooms(), ElementsAre("lobby", "r2"));

  AsyncResult<bool> joined;
  client->JoinAsync("c1", {"a", "b"}, status_only(joined));
  ASSERT_TRUE(joined.Wait().ok()) << joined.Wait().status();
  EXPECT_EQ(fake_->last_join().conn_id(), "c1");
  EXPECT_THAT(fake_->last_join().rooms(), ElementsAre("a", "b"));

  AsyncResult<bool> left;
  client->LeaveAsync("c1", {"b"}, status_only(left));
  ASSERT_TRUE(left.Wait().ok()) << left.Wait().status();
  EXPECT_EQ(fake_->last_leave().conn_id(), "c1");
  EXPECT_THAT(fake_->last_leave().rooms(), ElementsAre("b"));

  // found: true for a registered connection, false once it is gone.
  AsyncResult<bool> first;
  client->UnregisterConnectionAsync("c1", first.Done());
  EXPECT_EQ(first.Wait().value_or(false), true);
  EXPECT_EQ(fake_->last_unregister().conn_id(), "c1");
  AsyncResult<bool> second;
  client->UnregisterConnectionAsync("c1", second.Done());
  EXPECT_EQ(second.Wait().value_or(true), false);

  // Retried on UNAVAILABLE as the blocking forms are; other codes kept.
  fake_->FailNext(Rpc::kRegisterConnection, 2, kUnavailable);
  AsyncResult<bool> retried;
  client->RegisterConnectionAsync("c2", "", {}, status_only(retried));
  ASSERT_TRUE(retried.Wait().ok()) << retried.Wait().status();
  EXPECT_EQ(fake_->calls(Rpc::kRegisterConnection), 4);
  fake_->FailNext(Rpc::kJoin, 1,
                  grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "rooms[0]: too long"));
  AsyncResult<bool> refused;
  client->JoinAsync("c2", {"lobby"}, status_only(refused));
  const absl::Status status = refused.Wait().status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "rooms[0]: too long");

  for (AsyncResult<bool>* result :
       {&registered, &joined, &left, &first, &second, &retried, &refused}) {
    EXPECT_EQ(result->Runs(), 1);
  }
}

TEST_F(RealtimeClientTest, AsyncFormsFollowTheRetryPolicy) {
  ClientOptions o = Options();
  o.max_retries = 2;
  auto client = Connected(o);
  ASSERT_NE(client, nullptr);
  // Retried, each attempt with the call's one request_id.
  fake_->FailNext(Rpc::kPublish, 2, kUnavailable);
  AsyncResult<PublishResult> published;
  client->PublishAsync(PublishTarget::User("bob"), "e", "x", {}, "", published.Done());
  ASSERT_TRUE(published.Wait().ok()) << published.Wait().status();
  EXPECT_EQ(fake_->calls(Rpc::kPublish), 3);
  // Until max_retries: the last UNAVAILABLE.
  fake_->FailNext(Rpc::kRoomMembers, 100, kUnavailable);
  AsyncResult<RoomMembersPage> members;
  client->RoomMembersAsync("lobby", 0, "", members.Done());
  EXPECT_EQ(members.Wait().status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(fake_->calls(Rpc::kRoomMembers), 3);
  // Other codes: once, code and message kept.
  fake_->FailNext(Rpc::kUserConnections, 1,
                  grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "user_id: too long"));
  AsyncResult<std::vector<ConnectionRef>> connections;
  client->UserConnectionsAsync("alice", connections.Done());
  const absl::Status status = connections.Wait().status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "user_id: too long");
  EXPECT_EQ(fake_->calls(Rpc::kUserConnections), 1);
  EXPECT_EQ(published.Runs(), 1);
  EXPECT_EQ(members.Runs(), 1);
  EXPECT_EQ(connections.Runs(), 1);
}

TEST_F(RealtimeClientTest, AsyncPublishRetriesCarryOneRequestId) {
  auto client = Connected();
  ASSERT_NE(client, nullptr);
  fake_->FailNext(Rpc::kPublish, 1, kUnavailable);
  AsyncResult<PublishResult> first;
  client->PublishAsync(PublishTarget::Room("lobby"), "e", "x", {}, "", first.Done());
  ASSERT_TRUE(first.Wait().ok());
  AsyncResult<PublishResult> second;
  client->PublishAsync(PublishTarget::Room("lobby"), "e", "x", {}, "", second.Done());
  ASSERT_TRUE(second.Wait().ok());
  // The first call's attempt and its retry, then the second call.
  const std::vector<std::string> ids = fake_->publish_request_ids();
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids[0].size(), 32u);
  EXPECT_EQ(ids[1], ids[0]);
  EXPECT_NE(ids[2], ids[0]);
}

TEST_F(RealtimeClientTest, AsyncArgumentErrorsRunDoneOnTheCallingThreadWithoutACall) {
  auto client = Connected();
  ASSERT_NE(client, nullptr);
  const std::thread::id caller = std::this_thread::get_id();
  std::vector<absl::StatusCode> codes;
  std::vector<bool> here;
  auto record = [&](absl::Status status) {
    codes.push_back(status.code());
    here.push_back(std::this_thread::get_id() == caller);
  };
  client->PublishAsync(PublishTarget::Room(""), "e", "x", {}, "",
                       [&](absl::StatusOr<PublishResult> r) { record(r.status()); });
  client->PublishAsync(PublishTarget::All(), "e", "x", {}, std::string("\xff", 1),
                       [&](absl::StatusOr<PublishResult> r) { record(r.status()); });
  client->RoomMembersAsync("lobby", -1, "",
                           [&](absl::StatusOr<RoomMembersPage> r) { record(r.status()); });
  client->UserConnectionsAsync(
      "", [&](absl::StatusOr<std::vector<ConnectionRef>> r) { record(r.status()); });
  client->RegisterConnectionAsync("", "alice", {}, record);
  client->JoinAsync("c1", {""}, record);
  client->LeaveAsync("", {"lobby"}, record);
  client->UnregisterConnectionAsync("", [&](absl::StatusOr<bool> r) { record(r.status()); });
  // Recorded before the calls returned.
  ASSERT_EQ(codes.size(), 8u);
  for (size_t i = 0; i < codes.size(); ++i) {
    EXPECT_EQ(codes[i], absl::StatusCode::kInvalidArgument) << "case " << i;
    EXPECT_TRUE(here[i]) << "case " << i;
  }
  for (Rpc rpc : kRealtimeRpcs) EXPECT_EQ(fake_->calls(rpc), 0) << RpcName(rpc);
}

TEST_F(RealtimeClientTest, DestroyingTheClientEndsAsyncCallsWaitingToRetry) {
  ClientOptions o = Options();
  o.call_timeout = absl::Seconds(60);
  o.max_retries = 100;
  o.initial_backoff = absl::Seconds(20);
  o.max_backoff = absl::Seconds(20);
  auto client = Connected(o);
  ASSERT_NE(client, nullptr);
  fake_->FailNext(Rpc::kPublish, 1, kUnavailable);
  AsyncResult<PublishResult> published;
  client->PublishAsync(PublishTarget::Room("lobby"), "e", "x", {}, "", published.Done());
  // The first attempt failed; the retry waits 10..20 s on the timer.
  const absl::Time give_up = absl::Now() + kLong;
  while (fake_->calls(Rpc::kPublish) == 0 && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  ASSERT_EQ(fake_->calls(Rpc::kPublish), 1);
  const absl::Time destroyed_at = absl::Now();
  client.reset();
  EXPECT_LT(absl::Now() - destroyed_at, absl::Seconds(5));
  EXPECT_EQ(published.Runs(), 1);  // before the destructor returned
  EXPECT_EQ(published.Wait().status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(fake_->calls(Rpc::kPublish), 1);
}

}  // namespace
}  // namespace stateside
