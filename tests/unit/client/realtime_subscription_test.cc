// stateside::Subscription against an in-process fake RealtimeService: the
// stream's lifecycle (subscribed, order, timeouts, cancellation, endings,
// destruction), flow control and thread-safety.
#include <algorithm>
#include <atomic>
#include <set>
#include <thread>
#include <variant>
#include <vector>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "stateside/client.h"
#include "stateside/realtime.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"
#include "tests/unit/client/fake_realtime_service.h"
#include "tests/unit/client/realtime_fixture.h"

namespace stateside {
namespace {

using client_internal::Rpc;
using testing::ExpectDelivery;
using testing::ExpectGap;
using testing::OverflowGap;
using testing::RealtimeClientTest;
using testing::RedisGap;
using testing::RoomDelivery;
using testing::WaitFor;
using testing::kLong;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

using RealtimeSubscriptionTest = RealtimeClientTest;

TEST_F(RealtimeSubscriptionTest, SubscribeSendsItsConnections) {
  auto client = Connected();
  ASSERT_NE(client, nullptr);
  auto sub = Subscribed(*client, {{"c1", "alice", {"lobby", "r2"}}, {"c2", "", {}}});
  ASSERT_NE(sub, nullptr);
  const v1::SubscribeRequest r = fake_->last_subscribe();
  ASSERT_EQ(r.connections_size(), 2);
  EXPECT_EQ(r.connections(0).conn_id(), "c1");
  EXPECT_EQ(r.connections(0).user_id(), "alice");
  EXPECT_THAT(r.connections(0).rooms(), ElementsAre("lobby", "r2"));
  EXPECT_EQ(r.connections(1).conn_id(), "c2");
}

TEST_F(RealtimeSubscriptionTest, SubscribeSendsItsResumePointsAndReadsTheirGap) {
  auto client = Connected();
  ASSERT_NE(client, nullptr);
  Delivery seen;
  seen.target = Target::kConnection;
  seen.to = "c1";
  seen.sequence = 4;
  const StreamPosition at_c1 = PositionOf(seen);
  auto sub = client->Subscribe({}, {{PublishTarget::Room("lobby"), 7},
                                    {PublishTarget::User("alice"), 2},
                                    at_c1,
                                    {PublishTarget::All(), 9}});
  ASSERT_TRUE(sub.ok()) << sub.status();
  const v1::SubscribeRequest r = fake_->last_subscribe();
  ASSERT_EQ(r.resume_size(), 4);
  EXPECT_EQ(r.resume(0).room(), "lobby");
  EXPECT_EQ(r.resume(0).sequence(), 7u);
  EXPECT_EQ(r.resume(1).user_id(), "alice");
  EXPECT_EQ(r.resume(2).connection().instance_id(), "") << "this instance";
  EXPECT_EQ(r.resume(2).connection().conn_id(), "c1");
  EXPECT_EQ(r.resume(2).sequence(), 4u);
  EXPECT_TRUE(r.resume(3).all());

  v1::RealtimeEvent incomplete;
  incomplete.mutable_gap()->set_reason(v1::Gap::REASON_RESUME_INCOMPLETE);
  incomplete.mutable_gap()->mutable_resume()->set_room("lobby");
  incomplete.mutable_gap()->mutable_resume()->set_sequence(7);
  incomplete.mutable_gap()->set_first_sequence(12);
  fake_->PushEvent(incomplete);
  const Gap gap = ExpectGap((*sub)->Next(kLong));
  EXPECT_EQ(gap.reason, Gap::Reason::kResumeIncomplete);
  EXPECT_EQ(GapReasonName(gap.reason), "resume-incomplete");
  ASSERT_TRUE(gap.resume.has_value());
  EXPECT_EQ(gap.resume->target.kind, Target::kRoom);
  EXPECT_EQ(gap.resume->target.name, "lobby");
  EXPECT_EQ(gap.resume->sequence, 7u);
  EXPECT_EQ(gap.first_sequence, 12u);

  EXPECT_EQ(client->Subscribe({}, {{PublishTarget::Room(""), 1}}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(RealtimeSubscriptionTest, SubscribeWaitsForSubscribedWithinTheCallTimeout) {
  ClientOptions o = Options();
  o.call_timeout = absl::Milliseconds(300);
  auto client = Connected(o);
  ASSERT_NE(client, nullptr);
  fake_->HoldSubscribed(true);
  const absl::Time start = absl::Now();
  auto sub = client->Subscribe();
  EXPECT_EQ(sub.status().code(), absl::StatusCode::kDeadlineExceeded) << sub.status();
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(300));
  EXPECT_EQ(fake_->calls(Rpc::kSubscribe), 1);
}

TEST_F(RealtimeSubscriptionTest, SubscribeReturnsOnceSubscribedIsReleased) {
  auto client = Connected();
  ASSERT_NE(client, nullptr);
  fake_->HoldSubscribed(true);
  std::atomic<bool> returned{false};
  absl::StatusOr<std::unique_ptr<Subscription>> sub;
  std::thread subscriber([&] {
    sub = client->Subscribe();
    returned = true;
  });
  ASSERT_TRUE(WaitFor([&] { return fake_->calls(Rpc::kSubscribe) == 1; }));
  EXPECT_FALSE(returned.load());
  fake_->HoldSubscribed(false);
  subscriber.join();
  ASSERT_TRUE(sub.ok()) << sub.status();
}

TEST_F(RealtimeSubscriptionTest, EventPublishedRightAfterSubscribeReachesIt) {
  auto client = Connected();
  ASSERT_NE(client, nullptr);
  auto sub = Subscribed(*client);
  ASSERT_NE(sub, nullptr);
  fake_->PushEvent(RoomDelivery("lobby", 1, "chat", "hello", {"c1"}));
  EXPECT_EQ(ExpectDelivery((*sub).Next(kLong)).payload, "hello");
}

TEST_F(RealtimeSubscriptionTest, NextReturnsDeliveriesAndGapsInOrder) {
  auto client = Connected();
  ASSERT_NE(client, nullptr);
  auto sub = Subscribed(*client);
  ASSERT_NE(sub, nullptr);
  fake_->PushEvent(RoomDelivery("lobby", 7, "chat", "one", {"c1", "c2"}));
  fake_->PushEvent(OverflowGap(5));
  fake_->PushEvent(RedisGap(1'700'000'000, 1'700'000'003));
  fake_->PushEvent(RoomDelivery("lobby", 13, "chat", "two", {"c2"}));

  const Delivery first = ExpectDelivery(sub->Next(kLong));
  EXPECT_EQ(first.target, Target::kRoom);
  EXPECT_EQ(first.to, "lobby");
  EXPECT_EQ(first.event, "chat");
  EXPECT_EQ(first.payload, "one");
  EXPECT_THAT(first.conn_ids, ElementsAre("c1", "c2"));
  EXPECT_EQ(first.sequence, 7u);
  EXPECT_EQ(first.published_at, absl::FromUnixMillis(1'700'000'000'250));
  EXPECT_EQ(first.origin_instance, "inst-2");

  const Gap overflow = ExpectGap(sub->Next(kLong));
  EXPECT_EQ(overflow.reason, Gap::Reason::kSubscriberOverflow);
  EXPECT_EQ(overflow.dropped, 5u);
  EXPECT_FALSE(overflow.from.has_value());

  const Gap redis = ExpectGap(sub->Next(kLong));
  EXPECT_EQ(redis.reason, Gap::Reason::kRedisDisconnected);
  EXPECT_EQ(redis.from, absl::FromUnixSeconds(1'700'000'000));
  EXPECT_EQ(redis.to, absl::FromUnixSeconds(1'700'000'003));

  EXPECT_EQ(ExpectDelivery(sub->Next(kLong)).sequence, 13u);
}

TEST_F(RealtimeSubscriptionTest, NextTimesOutWithoutEndingTheStream) {
  auto client = Connected();
  ASSERT_NE(client, nullptr);
  auto sub = Subscribed(*client);
  ASSERT_NE(sub, nullptr);
  EXPECT_EQ(sub->Next(absl::Milliseconds(50)).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(sub->Next(absl::ZeroDuration()).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  fake_->PushEvent(RoomDelivery("lobby", 1, "chat", "later", {}));
  EXPECT_EQ(ExpectDelivery(sub->Next(kLong)).payload, "later");
}

TEST_F(RealtimeSubscriptionTest, CancelUnblocksNextInAnotherThread) {
  auto client = Connected();
  ASSERT_NE(client, nullptr);
  auto sub = Subscribed(*client);
  ASSERT_NE(sub, nullptr);
  ASSERT_TRUE(WaitFor([&] { return fake_->streams() == 1; }));
  absl::Status result;
  std::thread reader([&] { result = sub->Next().status(); });
  sub->Cancel();
  reader.join();
  EXPECT_EQ(result.code(), absl::StatusCode::kCancelled) << result;
  EXPECT_EQ(sub->Next(kLong).status().code(), absl::StatusCode::kCancelled);
  sub->Cancel();  // again: harmless
  // The sidecar sees the stream end (and would unregister its connections).
  EXPECT_TRUE(WaitFor([&] { return fake_->streams() == 0; }));
}

TEST_F(RealtimeSubscriptionTest, StreamEndedBySidecarGivesBufferedEventsThenItsStatus) {
  auto client = Connected();
  ASSERT_NE(client, nullptr);
  auto sub = Subscribed(*client);
  ASSERT_NE(sub, nullptr);
  fake_->PushEvent(RoomDelivery("lobby", 1, "chat", "a", {}));
  fake_->PushEvent(RoomDelivery("lobby", 2, "chat", "b", {}));
  fake_->EndStreams(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "too many"));
  EXPECT_EQ(ExpectDelivery(sub->Next(kLong)).payload, "a");
  EXPECT_EQ(ExpectDelivery(sub->Next(kLong)).payload, "b");
  for (int i = 0; i < 2; ++i) {
    const absl::Status end = sub->Next(kLong).status();
    EXPECT_EQ(end.code(), absl::StatusCode::kResourceExhausted) << end;
    EXPECT_EQ(end.message(), "too many");
  }
}

TEST_F(RealtimeSubscriptionTest, StreamEndedNormallyIsOutOfRange) {
  auto client = Connected();
  ASSERT_NE(client, nullptr);
  auto sub = Subscribed(*client);
  ASSERT_NE(sub, nullptr);
  fake_->EndStreams(grpc::Status::OK);
  EXPECT_EQ(sub->Next(kLong).status().code(), absl::StatusCode::kOutOfRange);
}

TEST_F(RealtimeSubscriptionTest, SidecarGoingAwayIsUnavailable) {
  auto client = Connected();
  ASSERT_NE(client, nullptr);
  auto sub = Subscribed(*client);
  ASSERT_NE(sub, nullptr);
  fake_.reset();
  const absl::Status end = sub->Next(kLong).status();
  EXPECT_EQ(end.code(), absl::StatusCode::kUnavailable) << end;
}

TEST_F(RealtimeSubscriptionTest, StreamCancelledBySidecarIsUnavailableNotCancelled) {
  auto client = Connected();
  ASSERT_NE(client, nullptr);
  auto sub = Subscribed(*client);
  ASSERT_NE(sub, nullptr);
  fake_->EndStreams(grpc::Status(grpc::StatusCode::CANCELLED, "shutting down"));
  const absl::Status end = sub->Next(kLong).status();
  EXPECT_EQ(end.code(), absl::StatusCode::kUnavailable) << end;
  EXPECT_THAT(end.message(), HasSubstr("shutting down"));
}

TEST_F(RealtimeSubscriptionTest, SubscribeToMissingSidecarIsUnavailable) {
  ClientOptions o = Options();
  o.wait_until_ready = false;
  fake_.reset();
  auto client = Connected(o);
  ASSERT_NE(client, nullptr);
  auto sub = client->Subscribe();
  EXPECT_EQ(sub.status().code(), absl::StatusCode::kUnavailable) << sub.status();
}

TEST_F(RealtimeSubscriptionTest, FirstMessageOtherThanSubscribedIsAProtocolError) {
  auto client = Connected();
  ASSERT_NE(client, nullptr);
  fake_->BreakProtocol();
  auto sub = client->Subscribe();
  EXPECT_EQ(sub.status().code(), absl::StatusCode::kInternal) << sub.status();
  EXPECT_THAT(sub.status().message(), HasSubstr("subscribed"));
}

TEST_F(RealtimeSubscriptionTest, DestroyingAnIdleSubscriptionDoesNotHang) {
  auto client = Connected();
  ASSERT_NE(client, nullptr);
  auto sub = Subscribed(*client);
  ASSERT_NE(sub, nullptr);
  ASSERT_TRUE(WaitFor([&] { return fake_->streams() == 1; }));
  sub.reset();  // the reader thread is blocked in Read
  EXPECT_TRUE(WaitFor([&] { return fake_->streams() == 0; }));
}

TEST_F(RealtimeSubscriptionTest, DestroyingWithAFullBufferDoesNotHang) {
  auto client = Connected();
  ASSERT_NE(client, nullptr);
  auto sub = Subscribed(*client);
  ASSERT_NE(sub, nullptr);
  // More than the client buffers: its reader thread ends up waiting for room.
  for (int i = 1; i <= 3 * Subscription::kMaxBufferedEvents; ++i) {
    fake_->PushEvent(RoomDelivery("lobby", i, "chat", "x", {}));
  }
  ASSERT_TRUE(WaitFor([&] { return fake_->written() > Subscription::kMaxBufferedEvents + 1; }));
  sub.reset();
  EXPECT_TRUE(WaitFor([&] { return fake_->streams() == 0; }));
}

// The subscription shares the Client's connection: an app that stops
// reading must stall only its own stream (HTTP/2 stream flow control), not
// the other calls.
// Its teardown sometimes takes ~10 s: after this much streaming, gRPC 1.51's
// library shutdown (when the fake, the test's last gRPC object, goes) may
// wait out its 10 s deadline for an I/O object the in-process *sync server*
// leaves behind. Checked with client and server in two processes: only the
// server's process waits; the client library's shutdown is prompt.
TEST_F(RealtimeSubscriptionTest, AStalledSubscriptionDoesNotBlockOtherCalls) {
  auto client = Connected();
  ASSERT_NE(client, nullptr);
  auto sub = Subscribed(*client);
  ASSERT_NE(sub, nullptr);
  const std::string payload(32 << 10, 'x');
  constexpr int kEvents = 400;  // ~12 MiB: far more than any window
  for (int i = 1; i <= kEvents; ++i) {
    fake_->PushEvent(RoomDelivery("lobby", i, "chat", payload, {}));
  }
  ASSERT_TRUE(WaitFor([&] { return fake_->written() > Subscription::kMaxBufferedEvents + 1; }));
  EXPECT_TRUE(client->Join("c1", {"lobby"}).ok());
  EXPECT_TRUE(client->Publish(PublishTarget::Room("lobby"), "chat", "hi").ok());
  // Nothing was lost on the way: reading resumes where it stopped.
  for (int i = 1; i <= kEvents; ++i) {
    const Delivery d = ExpectDelivery(sub->Next(kLong));
    ASSERT_EQ(d.sequence, static_cast<uint64_t>(i));
  }
}

TEST_F(RealtimeSubscriptionTest, ConcurrentReadersShareTheEventsWithoutDuplicates) {
  auto client = Connected();
  ASSERT_NE(client, nullptr);
  auto sub = Subscribed(*client);
  ASSERT_NE(sub, nullptr);
  constexpr int kEvents = 200;
  for (int i = 1; i <= kEvents; ++i) fake_->PushEvent(RoomDelivery("lobby", i, "e", "x", {}));
  std::vector<uint64_t> seen[2];
  std::atomic<int> total{0};
  std::vector<std::thread> readers;
  for (auto& mine : seen) {
    readers.emplace_back([&sub, &mine, &total] {
      while (total.load() < kEvents) {
        auto event = sub->Next(absl::Milliseconds(20));
        if (event.status().code() == absl::StatusCode::kDeadlineExceeded) continue;
        if (!event.ok()) return;
        mine.push_back(std::get<Delivery>(*event).sequence);
        ++total;
      }
    });
  }
  for (auto& t : readers) t.join();
  std::set<uint64_t> all(seen[0].begin(), seen[0].end());
  all.insert(seen[1].begin(), seen[1].end());
  EXPECT_EQ(seen[0].size() + seen[1].size(), static_cast<size_t>(kEvents));
  EXPECT_EQ(all.size(), static_cast<size_t>(kEvents));
  // Each reader sees its share in order.
  for (const auto& mine : seen) EXPECT_TRUE(std::is_sorted(mine.begin(), mine.end()));
}

TEST_F(RealtimeSubscriptionTest, SubscriptionOutlivesItsClient) {
  auto client = Connected();
  ASSERT_NE(client, nullptr);
  auto sub = Subscribed(*client);
  ASSERT_NE(sub, nullptr);
  client.reset();
  fake_->PushEvent(RoomDelivery("lobby", 1, "chat", "still here", {}));
  EXPECT_EQ(ExpectDelivery(sub->Next(kLong)).payload, "still here");
}

}  // namespace
}  // namespace stateside
