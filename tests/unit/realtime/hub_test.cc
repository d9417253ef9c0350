// The hub's routing and presence on an in-process cluster: several hubs,
// each with its own MemoryBroker on one MemoryCluster (the same rules the
// Redis broker follows, without Redis).
#include "sidecar/realtime/hub.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sidecar/realtime/memory_broker.h"
#include "tests/support/fake_clock.h"
#include "tests/support/wait.h"

namespace stateside::realtime {
namespace {

using ::stateside::testing::WaitFor;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

class CountingMetrics : public RealtimeMetrics {
 public:
  void Published(TargetKind) override {}
  void Received() override { ++received; }
  void Dropped(std::string_view reason, uint64_t count) override {
    absl::MutexLock lock(&mu);
    dropped[std::string(reason)] += count;
  }
  void Gap(std::string_view) override {}
  void CapRefused(std::string_view cap) override {
    absl::MutexLock lock(&mu);
    ++refused[std::string(cap)];
  }
  uint64_t Refused(const std::string& cap) {
    absl::MutexLock lock(&mu);
    return refused[cap];
  }
  uint64_t Dropped(const std::string& reason) {
    absl::MutexLock lock(&mu);
    return dropped[reason];
  }
  std::atomic<int> received{0};
  absl::Mutex mu;
  std::map<std::string, uint64_t> dropped;
  std::map<std::string, uint64_t> refused;
};

// Drains a subscriber queue as soon as it is woken (unless paused). What it
// received lives apart, shared with the queue's wake: a broker thread may
// still wake a queue whose Collector is gone (the hub keeps its subscribers
// until the end), and must not touch freed memory.
class Collector {
 public:
  explicit Collector(RealtimeHub* hub, bool paused = false, bool holding = false)
      : state_(std::make_shared<State>(paused)) {
    queue_ = hub->AddSubscriber([state = state_] { state->Drain(); }, holding);
    {
      absl::MutexLock lock(&state_->mu);
      state_->queue = queue_.get();
    }
    Drain();  // a wake before the line above found no queue
  }
  void Drain() { state_->Drain(); }
  void Resume() {
    {
      absl::MutexLock lock(&state_->mu);
      state_->paused = false;
    }
    Drain();
  }
  std::vector<QueueItem> items() {
    absl::MutexLock lock(&state_->mu);
    return state_->items;
  }
  // Payloads of the deliveries received so far.
  std::vector<std::string> payloads() {
    std::vector<std::string> out;
    for (const QueueItem& item : items()) {
      if (item.delivery != nullptr) out.push_back(item.delivery->event.payload);
    }
    return out;
  }
  bool Has(const std::string& payload) {
    for (const std::string& p : payloads()) {
      if (p == payload) return true;
    }
    return false;
  }
  SubscriberQueue& queue() { return *queue_; }
  const std::shared_ptr<SubscriberQueue>& shared_queue() { return queue_; }
  // "<payload>@<sequence>" of each delivery, "gap:<after>/<first>" of each
  // resume notice, in queue order.
  std::vector<std::string> trace() {
    std::vector<std::string> out;
    for (const QueueItem& item : items()) {
      if (item.delivery != nullptr) {
        out.push_back(absl::StrCat(item.delivery->event.payload, "@",
                                   item.delivery->event.sequence));
      } else if (item.gap->reason == GapNotice::Reason::kResumeIncomplete) {
        out.push_back(absl::StrCat("gap:", item.gap->after_sequence, "/",
                                   item.gap->first_sequence));
      }
    }
    return out;
  }

 private:
  struct State {
    explicit State(bool paused) : paused(paused) {}
    void Drain() {
      absl::MutexLock lock(&mu);
      // Null until the constructor set it; the queue outlives every wake.
      if (paused || queue == nullptr) return;
      while (std::optional<QueueItem> item = queue->Pop()) items.push_back(*std::move(item));
    }
    absl::Mutex mu;
    bool paused ABSL_GUARDED_BY(mu);
    SubscriberQueue* queue ABSL_GUARDED_BY(mu) = nullptr;
    std::vector<QueueItem> items ABSL_GUARDED_BY(mu);
  };
  std::shared_ptr<State> state_;
  std::shared_ptr<SubscriberQueue> queue_;
};

absl::Status Wait(const std::function<void(Broker::Done)>& op) {
  absl::Notification done;
  absl::Status result;
  op([&](absl::Status s) {
    result = s;
    done.Notify();
  });
  done.WaitForNotification();
  return result;
}

template <typename T>
absl::StatusOr<T> WaitFor(const std::function<void(Broker::Reply<T>)>& op) {
  absl::Notification done;
  absl::StatusOr<T> result = absl::UnknownError("not answered");
  op([&](absl::StatusOr<T> r) {
    result = std::move(r);
    done.Notify();
  });
  done.WaitForNotification();
  return result;
}

class HubTest : public ::testing::Test {
 protected:
  struct Node {
    std::unique_ptr<MemoryBroker> broker;
    CountingMetrics metrics;
    std::unique_ptr<RealtimeHub> hub;
    std::unique_ptr<Collector> collector;
  };

  explicit HubTest(MemoryClusterOptions options = {}) : cluster_(&clock_, options) {}

  void SetUp() override {
    for (const char* id : {"pod-a", "pod-b", "pod-c", "pod-d"}) {
      auto node = std::make_unique<Node>();
      node->broker = cluster_.NewBroker(id);
      HubOptions options;
      options.instance_id = id;
      options.queue_events = queue_events_;
      node->hub = std::make_unique<RealtimeHub>(options, node->broker.get(), &clock_,
                                                &node->metrics);
      node->hub->Start();
      node->collector = std::make_unique<Collector>(node->hub.get(), paused_);
      nodes_[id] = std::move(node);
    }
  }

  RealtimeHub& hub(const std::string& id) { return *nodes_.at(id)->hub; }
  Collector& got(const std::string& id) { return *nodes_.at(id)->collector; }

  void Register(const std::string& id, const std::string& conn, const std::string& user,
                std::vector<std::string> rooms) {
    ASSERT_TRUE(Wait([&](Broker::Done done) {
                  hub(id).Register(ConnPresence{conn, user, std::move(rooms)}, std::move(done));
                }).ok());
  }

  PublishResult Publish(const std::string& from, Event event) {
    absl::StatusOr<PublishResult> result =
        WaitFor<PublishResult>([&](Broker::Reply<PublishResult> done) {
          hub(from).Publish(event, std::move(done));
        });
    EXPECT_TRUE(result.ok()) << result.status();
    return result.value_or(PublishResult{});
  }

  static Event ToRoom(const std::string& room, const std::string& payload) {
    Event e;
    e.target = TargetKind::kRoom;
    e.to = room;
    e.payload = payload;
    return e;
  }

  // Everything published before this reached every instance (one
  // dispatcher, in publish order): publish a broadcast seen by all.
  void Settle() {
    static int n = 0;
    const std::string marker = "settle-" + std::to_string(++n);
    for (auto& [id, node] : nodes_) Register(id, "settle-" + id, "", {});
    Event e;
    e.target = TargetKind::kAll;
    e.payload = marker;
    Publish("pod-a", e);
    for (auto& [id, node] : nodes_) {
      ASSERT_TRUE(WaitFor([&] { return node->collector->Has(marker); }, absl::Seconds(10)));
    }
  }

  std::vector<std::string> DeliveredTo(const std::string& id, const std::string& payload) {
    for (const QueueItem& item : got(id).items()) {
      if (item.delivery != nullptr && item.delivery->event.payload == payload) {
        return item.delivery->conn_ids;
      }
    }
    return {};
  }

  testing::FakeClock clock_;
  MemoryCluster cluster_;
  size_t queue_events_ = 1024;
  bool paused_ = false;
  std::map<std::string, std::unique_ptr<Node>> nodes_;
};

TEST_F(HubTest, RoomEventReachesExactlyTheMembersWithIncreasingSequences) {
  Register("pod-a", "a1", "ann", {"lobby"});
  Register("pod-a", "a2", "bob", {"other"});
  Register("pod-b", "b1", "cat", {"lobby"});
  Register("pod-c", "c1", "dan", {});

  const PublishResult first = Publish("pod-c", ToRoom("lobby", "hello"));
  const PublishResult second = Publish("pod-c", ToRoom("lobby", "again"));
  EXPECT_EQ(first.sequence + 1, second.sequence);
  EXPECT_EQ(first.instances, 2) << "two of four instances have members";

  ASSERT_TRUE(WaitFor([&] { return got("pod-b").Has("again"); }));
  Settle();
  EXPECT_THAT(DeliveredTo("pod-a", "hello"), ElementsAre("a1"));
  EXPECT_THAT(DeliveredTo("pod-b", "hello"), ElementsAre("b1"));
  EXPECT_THAT(DeliveredTo("pod-c", "hello"), IsEmpty());
  EXPECT_EQ(nodes_["pod-c"]->metrics.received, 1) << "only the settle broadcast";
  EXPECT_EQ(nodes_["pod-d"]->metrics.received, 1);
  for (const QueueItem& item : got("pod-a").items()) {
    if (item.delivery && item.delivery->event.payload == "again") {
      EXPECT_EQ(item.delivery->event.sequence, second.sequence);
      EXPECT_EQ(item.delivery->event.origin, "pod-c");
    }
  }
}

TEST_F(HubTest, UserEventReachesEveryConnectionOfTheUserOnEveryInstance) {
  Register("pod-a", "a1", "ann", {});
  Register("pod-b", "b1", "ann", {});
  Register("pod-b", "b2", "ann", {});
  Register("pod-b", "b3", "bob", {});
  Event e;
  e.target = TargetKind::kUser;
  e.to = "ann";
  e.payload = "for-ann";
  EXPECT_EQ(Publish("pod-c", e).instances, 2);
  Settle();
  EXPECT_THAT(DeliveredTo("pod-a", "for-ann"), ElementsAre("a1"));
  EXPECT_THAT(DeliveredTo("pod-b", "for-ann"), ElementsAre("b1", "b2"));
  EXPECT_THAT(DeliveredTo("pod-c", "for-ann"), IsEmpty());
}

TEST_F(HubTest, ConnectionEventReachesOnlyThatConnectionOfThatInstance) {
  Register("pod-a", "same-id", "", {});
  Register("pod-b", "same-id", "", {});
  Event e;
  e.target = TargetKind::kConnection;
  e.to = "same-id";
  e.to_instance = "pod-b";
  e.payload = "direct";
  EXPECT_EQ(Publish("pod-a", e).instances, 1);
  Event local = e;
  local.to_instance = "";  // this instance
  local.payload = "local";
  Publish("pod-a", local);
  Settle();
  EXPECT_THAT(DeliveredTo("pod-b", "direct"), ElementsAre("same-id"));
  EXPECT_THAT(DeliveredTo("pod-a", "direct"), IsEmpty());
  EXPECT_THAT(DeliveredTo("pod-a", "local"), ElementsAre("same-id"));
  EXPECT_THAT(DeliveredTo("pod-b", "local"), IsEmpty());
}

TEST_F(HubTest, BroadcastSkipsInstancesWithoutConnectionsAndHonoursExcept) {
  Register("pod-a", "a1", "", {"r"});
  Register("pod-a", "a2", "", {"r"});
  Register("pod-b", "b1", "", {"r"});
  Event e;
  e.target = TargetKind::kAll;
  e.payload = "everyone";
  e.except = {{"", "a1"}, {"pod-b", "b1"}};
  EXPECT_EQ(Publish("pod-a", e).instances, 2);
  Event room = ToRoom("r", "room-except");
  room.except = {{"pod-a", "a2"}};
  Publish("pod-b", room);
  ASSERT_TRUE(WaitFor([&] { return got("pod-a").Has("room-except"); }));
  EXPECT_THAT(DeliveredTo("pod-a", "everyone"), ElementsAre("a2"));
  EXPECT_THAT(DeliveredTo("pod-b", "everyone"), IsEmpty()) << "its only connection is excepted";
  EXPECT_EQ(nodes_["pod-b"]->metrics.Dropped("no_target"), 1u);
  EXPECT_EQ(nodes_["pod-c"]->metrics.received, 0) << "no connections: not even broadcasts";
  EXPECT_THAT(DeliveredTo("pod-a", "room-except"), ElementsAre("a1"));
}

TEST_F(HubTest, PresenceFollowsJoinsLeavesUnregistersAndShutdown) {
  Register("pod-a", "a1", "ann", {"lobby"});
  Register("pod-b", "b1", "ann", {});
  ASSERT_TRUE(Wait([&](Broker::Done d) { hub("pod-b").Join("b1", {"lobby"}, std::move(d)); }).ok());
  auto members = [&] {
    absl::StatusOr<MembersPage> page = WaitFor<MembersPage>(
        [&](Broker::Reply<MembersPage> d) { nodes_["pod-c"]->broker->RoomMembers("lobby", 0, "", std::move(d)); });
    std::vector<std::string> out;
    for (const ConnRef& m : page->members) out.push_back(m.instance + "/" + m.conn);
    return out;
  };
  EXPECT_THAT(members(), ElementsAre("pod-a/a1", "pod-b/b1"));

  ASSERT_TRUE(Wait([&](Broker::Done d) { hub("pod-a").Leave("a1", {"lobby"}, std::move(d)); }).ok());
  EXPECT_THAT(members(), ElementsAre("pod-b/b1"));

  absl::StatusOr<bool> found = WaitFor<bool>(
      [&](Broker::Reply<bool> d) { hub("pod-b").Unregister("b1", std::move(d)); });
  EXPECT_TRUE(found.ok() && *found);
  EXPECT_THAT(members(), IsEmpty());

  absl::StatusOr<std::vector<ConnRef>> ann = WaitFor<std::vector<ConnRef>>(
      [&](auto d) { nodes_["pod-c"]->broker->UserConnections("ann", std::move(d)); });
  ASSERT_TRUE(ann.ok());
  ASSERT_EQ(ann->size(), 1u);
  EXPECT_EQ((*ann)[0], (ConnRef{"pod-a", "a1"}));

  ASSERT_TRUE(hub("pod-a").Shutdown().ok());
  ann = WaitFor<std::vector<ConnRef>>(
      [&](auto d) { nodes_["pod-c"]->broker->UserConnections("ann", std::move(d)); });
  EXPECT_THAT(*ann, IsEmpty()) << "a drained instance's connections go at once";
  EXPECT_TRUE(got("pod-a").queue().closed());
  EXPECT_EQ(Wait([&](Broker::Done d) { hub("pod-a").Register({"late", "", {}}, std::move(d)); })
                .code(),
            absl::StatusCode::kUnavailable);
}

TEST_F(HubTest, RefusesConflictingAndUnknownConnections) {
  Register("pod-a", "a1", "ann", {});
  EXPECT_EQ(Wait([&](Broker::Done d) { hub("pod-a").Register({"a1", "bob", {}}, std::move(d)); })
                .code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_TRUE(Wait([&](Broker::Done d) {
                hub("pod-a").Register({"a1", "ann", {"more"}}, std::move(d));
              }).ok())
      << "registering again with the same user is a retry, and adds rooms";
  EXPECT_EQ(Wait([&](Broker::Done d) { hub("pod-a").Join("nobody", {"r"}, std::move(d)); }).code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(Wait([&](Broker::Done d) { hub("pod-a").Leave("nobody", {"r"}, std::move(d)); }).code(),
            absl::StatusCode::kNotFound);
  absl::StatusOr<bool> found =
      WaitFor<bool>([&](Broker::Reply<bool> d) { hub("pod-a").Unregister("nobody", std::move(d)); });
  EXPECT_TRUE(found.ok() && !*found);
}

TEST_F(HubTest, BroadcastInterestEndsWithTheLastConnection) {
  Register("pod-a", "a1", "", {"r1", "r2"});
  EXPECT_EQ(nodes_["pod-a"]->broker->channels_held(), 3) << "two rooms + broadcasts";
  ASSERT_TRUE(WaitFor<bool>([&](Broker::Reply<bool> d) {
                hub("pod-a").Unregister("a1", std::move(d));
              }).ok());
  EXPECT_EQ(nodes_["pod-a"]->broker->channels_held(), 0);
}

TEST_F(HubTest, RedisGapReachesEverySubscriber) {
  hub("pod-a").OnGap(absl::FromUnixSeconds(10), absl::FromUnixSeconds(12));
  std::vector<QueueItem> items = got("pod-a").items();
  ASSERT_EQ(items.size(), 1u);
  ASSERT_TRUE(items[0].gap.has_value());
  EXPECT_EQ(items[0].gap->reason, GapNotice::Reason::kRedisDisconnected);
  EXPECT_EQ(items[0].gap->to - items[0].gap->from, absl::Seconds(2));
}

class SlowSubscriberHubTest : public HubTest {
 protected:
  SlowSubscriberHubTest() {
    queue_events_ = 4;
    paused_ = true;
  }
};

TEST_F(SlowSubscriberHubTest, DropsPastTheQueueAndSignalsHowMany) {
  Register("pod-a", "a1", "", {"r"});
  for (int i = 0; i < 10; ++i) Publish("pod-b", ToRoom("r", "m" + std::to_string(i)));
  ASSERT_TRUE(WaitFor([&] { return nodes_["pod-a"]->metrics.received == 10; }));
  EXPECT_EQ(nodes_["pod-a"]->metrics.Dropped("overflow"), 6u);
  EXPECT_EQ(got("pod-a").queue().depth(), 4u);
  got("pod-a").Resume();
  std::vector<QueueItem> items = got("pod-a").items();
  ASSERT_EQ(items.size(), 5u);
  EXPECT_EQ(items[3].delivery->event.payload, "m3");
  ASSERT_TRUE(items[4].gap.has_value());
  EXPECT_EQ(items[4].gap->dropped, 6u);
}

class HistoryHubTest : public HubTest {
 protected:
  HistoryHubTest() : HubTest(MemoryClusterOptions{.history_size = 5}) {}
};

TEST_F(HistoryHubTest, ServesTheWindowAndSaysWhenItNoLongerReaches) {
  for (int i = 1; i <= 8; ++i) Publish("pod-a", ToRoom("r", "m" + std::to_string(i)));
  auto history = [&](uint64_t after, int limit) {
    return WaitFor<HistoryPage>([&](Broker::Reply<HistoryPage> d) {
      nodes_["pod-b"]->broker->History("r", after, limit, std::move(d));
    });
  };
  absl::StatusOr<HistoryPage> inside = history(5, 0);
  ASSERT_TRUE(inside.ok());
  EXPECT_TRUE(inside->complete);
  ASSERT_EQ(inside->events.size(), 3u);
  EXPECT_EQ(inside->events[0].sequence, 6u);
  EXPECT_EQ(inside->events[0].payload, "m6");
  EXPECT_EQ(inside->last_sequence, 8u);
  EXPECT_EQ(inside->first_sequence, 4u);

  absl::StatusOr<HistoryPage> outside = history(1, 0);
  EXPECT_FALSE(outside->complete) << "events 2 and 3 were trimmed";
  EXPECT_EQ(outside->events.size(), 5u);

  absl::StatusOr<HistoryPage> paged = history(3, 2);
  EXPECT_TRUE(paged->complete);
  EXPECT_TRUE(paged->more);
  EXPECT_EQ(paged->events.size(), 2u);

  EXPECT_EQ(history(0, 1001).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(history(8, 0)->complete) << "nothing after the latest";
}

// A hub of its own with small caps, on the fixture's cluster and clock.
class CappedHubTest : public HubTest {
 protected:
  void SetUp() override {
    HubTest::SetUp();
    broker_ = cluster_.NewBroker("capped");
    HubOptions options;
    options.instance_id = "capped";
    options.max_rooms_per_connection = 2;
    options.publish_rate_per_user = 1;
    options.publish_burst_per_user = 2;
    capped_ = std::make_unique<RealtimeHub>(options, broker_.get(), &clock_, &metrics_);
    capped_->Start();
  }
  void TearDown() override { capped_.reset(); }

  absl::Status PublishAs(const std::string& sender) {
    return WaitFor<PublishResult>([&](Broker::Reply<PublishResult> done) {
             capped_->Publish(ToRoom("r", "x"), sender, std::move(done));
           })
        .status();
  }

  CountingMetrics metrics_;
  std::unique_ptr<MemoryBroker> broker_;
  std::unique_ptr<RealtimeHub> capped_;
};

TEST_F(CappedHubTest, PublishesPerSenderUserFollowATokenBucket) {
  EXPECT_TRUE(PublishAs("mallory").ok());
  EXPECT_TRUE(PublishAs("mallory").ok());
  const absl::Status refused = PublishAs("mallory");
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted) << refused;
  EXPECT_THAT(refused.message(), ::testing::HasSubstr("STATESIDE_PUBLISH_RATE_PER_USER"));
  EXPECT_EQ(metrics_.Refused("publish_rate_per_user"), 1u);
  // Another sender has its own bucket; no sender is not limited.
  EXPECT_TRUE(PublishAs("alice").ok());
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(PublishAs("").ok());
  // One second refills one token, not more than the burst after long.
  clock_.Advance(absl::Seconds(1));
  EXPECT_TRUE(PublishAs("mallory").ok());
  EXPECT_FALSE(PublishAs("mallory").ok());
  clock_.Advance(absl::Hours(1));
  EXPECT_TRUE(PublishAs("mallory").ok());
  EXPECT_TRUE(PublishAs("mallory").ok());
  EXPECT_FALSE(PublishAs("mallory").ok());
}

TEST_F(CappedHubTest, RoomsPerConnectionAreCappedNamingTheSetting) {
  ASSERT_TRUE(Wait([&](Broker::Done d) {
                capped_->Register({"c1", "ann", {"a"}}, std::move(d));
              }).ok());
  EXPECT_TRUE(Wait([&](Broker::Done d) { capped_->Join("c1", {"a", "b"}, std::move(d)); }).ok());
  const absl::Status refused =
      Wait([&](Broker::Done d) { capped_->Join("c1", {"c"}, std::move(d)); });
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted) << refused;
  EXPECT_THAT(refused.message(), ::testing::HasSubstr("STATESIDE_MAX_ROOMS_PER_CONNECTION"));
  EXPECT_EQ(metrics_.Refused("rooms_per_connection"), 1u);
}

class ByteCappedHistoryTest : public HubTest {
 protected:
  ByteCappedHistoryTest() : HubTest(MemoryClusterOptions{.history_bytes = 250}) {}
};

TEST_F(ByteCappedHistoryTest, TheLogKeepsTheNewestEventsThatFitItsBytes) {
  // 100 bytes each (no event name): two fit in 250 bytes, three do not.
  for (int i = 1; i <= 5; ++i) Publish("pod-a", ToRoom("r", std::string(99, 'm') + std::to_string(i)));
  absl::StatusOr<HistoryPage> page = WaitFor<HistoryPage>([&](Broker::Reply<HistoryPage> d) {
    nodes_["pod-b"]->broker->History("r", 0, 0, std::move(d));
  });
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_FALSE(page->complete);
  ASSERT_EQ(page->events.size(), 2u);
  EXPECT_EQ(page->events[0].sequence, 4u);
  EXPECT_EQ(page->events[1].sequence, 5u);
  EXPECT_EQ(page->first_sequence, 4u);

  // One event larger than the whole budget still stays (the newest always does).
  Publish("pod-a", ToRoom("r", std::string(1000, 'L')));
  page = WaitFor<HistoryPage>([&](Broker::Reply<HistoryPage> d) {
    nodes_["pod-b"]->broker->History("r", 0, 0, std::move(d));
  });
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->events.size(), 1u);
  EXPECT_EQ(page->events[0].sequence, 6u);
}

// Connection-state recovery on the memory store: every target has its own
// stream of sequences; a subscriber that resumes gets exactly what it missed
// per stream, then the live events, each once.

Event To(TargetKind target, const std::string& to, const std::string& payload,
         const std::string& instance = "") {
  Event e;
  e.target = target;
  e.to = to;
  e.to_instance = instance;
  e.payload = payload;
  return e;
}


class ResumeHubTest : public HubTest {
 protected:
  ResumeHubTest() : HubTest(MemoryClusterOptions{.history_size = 4}) {}

  // A new subscriber of `id` resuming at `points`; returns it once the
  // replay is done.
  std::unique_ptr<Collector> ResumeAt(const std::string& id,
                                      std::vector<RealtimeHub::ResumePoint> points) {
    auto collector = std::make_unique<Collector>(&hub(id), false, /*holding=*/true);
    EXPECT_TRUE(Wait([&](Broker::Done done) {
                  hub(id).Resume(collector->shared_queue(), std::move(points), std::move(done));
                }).ok());
    return collector;
  }
};

TEST_F(ResumeHubTest, EveryTargetHasItsOwnSequence) {
  Register("pod-b", "b1", "ann", {"r"});
  EXPECT_EQ(Publish("pod-a", To(TargetKind::kRoom, "r", "x")).sequence, 1u);
  EXPECT_EQ(Publish("pod-a", To(TargetKind::kUser, "ann", "x")).sequence, 1u);
  EXPECT_EQ(Publish("pod-a", To(TargetKind::kUser, "ann", "x")).sequence, 2u);
  EXPECT_EQ(Publish("pod-a", To(TargetKind::kConnection, "b1", "x", "pod-b")).sequence, 1u);
  EXPECT_EQ(Publish("pod-a", To(TargetKind::kUser, "bob", "x")).sequence, 1u);
  EXPECT_EQ(Publish("pod-a", To(TargetKind::kAll, "", "x")).sequence, 1u);
  EXPECT_EQ(Publish("pod-a", To(TargetKind::kRoom, "r", "x")).sequence, 2u);
  ASSERT_TRUE(WaitFor([&] { return got("pod-b").payloads().size() == 6; }));
  // Delivered with their stream's sequence.
  EXPECT_THAT(got("pod-b").trace(), ElementsAre("x@1", "x@1", "x@2", "x@1", "x@1", "x@2"));
}

TEST_F(ResumeHubTest, AResumeReplaysExactlyTheMissedEventsPerTargetThenGoesLive) {
  Register("pod-b", "b1", "ann", {"r"});
  // Seen by the first stream: r@1, ann@1, b1@1, all@1.
  Publish("pod-a", To(TargetKind::kRoom, "r", "r1"));
  Publish("pod-a", To(TargetKind::kUser, "ann", "u1"));
  Publish("pod-a", To(TargetKind::kConnection, "b1", "c1", "pod-b"));
  Publish("pod-a", To(TargetKind::kAll, "", "a1"));
  // Missed (the app's stream was down): two of each but the broadcasts.
  Publish("pod-a", To(TargetKind::kRoom, "r", "r2"));
  Publish("pod-a", To(TargetKind::kUser, "ann", "u2"));
  Publish("pod-a", To(TargetKind::kConnection, "b1", "c2", "pod-b"));
  Publish("pod-a", To(TargetKind::kRoom, "r", "r3"));
  Publish("pod-a", To(TargetKind::kUser, "ann", "u3"));
  Publish("pod-a", To(TargetKind::kConnection, "b1", "c3", "pod-b"));
  ASSERT_TRUE(WaitFor([&] { return got("pod-b").Has("c3"); }));

  std::unique_ptr<Collector> resumed =
      ResumeAt("pod-b", {{{TargetKind::kRoom, "r", ""}, 1},
                         {{TargetKind::kUser, "ann", ""}, 1},
                         {{TargetKind::kConnection, "b1", "pod-b"}, 1},
                         {{TargetKind::kAll, "", ""}, 1}});
  // Then live: a new event of each kind, once.
  Publish("pod-a", To(TargetKind::kRoom, "r", "r4"));
  Publish("pod-a", To(TargetKind::kAll, "", "a2"));
  ASSERT_TRUE(WaitFor([&] { return resumed->Has("a2"); }));
  Settle();
  std::vector<std::string> trace = resumed->trace();
  trace.pop_back();  // the settle broadcast
  EXPECT_THAT(trace, ElementsAre("r2@2", "r3@3", "u2@2", "u3@3", "c2@2", "c3@3", "r4@4", "a2@2"));
}

TEST_F(ResumeHubTest, LiveEventsDuringTheReplayFollowItOnceEach) {
  Register("pod-b", "b1", "ann", {"r"});
  for (int i = 1; i <= 3; ++i) Publish("pod-a", To(TargetKind::kRoom, "r", absl::StrCat("r", i)));
  ASSERT_TRUE(WaitFor([&] { return got("pod-b").Has("r3"); }));
  // Published while the new queue holds, before the log is read: in the
  // replay and (later) live, delivered once.
  auto resumed = std::make_unique<Collector>(&hub("pod-b"), false, /*holding=*/true);
  Publish("pod-a", To(TargetKind::kRoom, "r", "r4"));
  ASSERT_TRUE(WaitFor([&] { return got("pod-b").Has("r4"); }));
  ASSERT_TRUE(Wait([&](Broker::Done done) {
                hub("pod-b").Resume(resumed->shared_queue(),
                                    {{{TargetKind::kRoom, "r", ""}, 2}}, std::move(done));
              }).ok());
  Publish("pod-a", To(TargetKind::kRoom, "r", "r5"));
  ASSERT_TRUE(WaitFor([&] { return resumed->Has("r5"); }));
  EXPECT_THAT(resumed->trace(), ElementsAre("r3@3", "r4@4", "r5@5"));
}

// On Redis a user stream's sequence is assigned before the event is sent,
// so arrivals can cross their sequence order and overlap the replay: the
// broker hands the hub an event the replay delivered, or an older one after
// a newer one, during the replay and after it. A subscriber that did not
// resume gets a crossed arrival late; the resumed one never gets what the
// replay gave twice within the cover window (a Redis loss window does not
// end it), and after the window a restarted stream is delivered again.
TEST_F(ResumeHubTest, LateAndCrossedArrivalsAroundTheReplay) {
  Register("pod-b", "b1", "ann", {});
  std::vector<Event> sent;
  for (int i = 1; i <= 3; ++i) {
    Event e = To(TargetKind::kUser, "ann", absl::StrCat("u", i));
    e.sequence = Publish("pod-a", e).sequence;
    sent.push_back(e);
  }
  ASSERT_TRUE(WaitFor([&] { return got("pod-b").Has("u3"); }));
  auto resumed = std::make_unique<Collector>(&hub("pod-b"), false, /*holding=*/true);
  hub("pod-b").OnEvent(sent[2]);  // 3 arrives late, while the queue holds
  hub("pod-b").OnEvent(sent[1]);  // and 2 after it
  ASSERT_TRUE(Wait([&](Broker::Done done) {
                hub("pod-b").Resume(resumed->shared_queue(),
                                    {{{TargetKind::kUser, "ann", ""}, 1}}, std::move(done));
              }).ok());
  EXPECT_EQ(nodes_["pod-b"]->metrics.Dropped("stale"), 2u) << "the held 3 and 2";
  hub("pod-b").OnGap(clock_.Now(), clock_.Now());
  Event u4 = To(TargetKind::kUser, "ann", "u4");
  u4.sequence = Publish("pod-a", u4).sequence;
  ASSERT_TRUE(WaitFor([&] { return resumed->Has("u4") && got("pod-b").Has("u4"); }));
  hub("pod-b").OnEvent(sent[2]);  // crossed: 3 after 4
  Publish("pod-a", To(TargetKind::kUser, "ann", "u5"));
  ASSERT_TRUE(WaitFor([&] { return resumed->Has("u5") && got("pod-b").Has("u5"); }));
  EXPECT_THAT(resumed->trace(), ElementsAre("u2@2", "u3@3", "u4@4", "u5@5"));
  EXPECT_EQ(nodes_["pod-b"]->metrics.Dropped("stale"), 3u);
  // The first stream did not resume: the late 3 and 2, and 3 again, came.
  EXPECT_THAT(got("pod-b").trace(),
              ElementsAre("u1@1", "u2@2", "u3@3", "u3@3", "u2@2", "u4@4", "u3@3", "u5@5"));
  // Past the window: a stream that restarted at 1 is delivered.
  clock_.Advance(SubscriberQueue::kCoverTtl);
  Event restarted = To(TargetKind::kUser, "ann", "again");
  restarted.sequence = 1;
  hub("pod-b").OnEvent(restarted);
  ASSERT_TRUE(WaitFor([&] { return resumed->Has("again"); }));
  EXPECT_EQ(nodes_["pod-b"]->metrics.Dropped("stale"), 3u);
}

// An older sidecar logged its stateside.close to a user with a sequence: a
// replay leaves it out (it was for the sockets of its time); the name is
// left alone on other targets (Publish refuses the prefix from apps).
TEST_F(ResumeHubTest, AReplaySkipsAUsersLoggedCloseOnly) {
  Register("pod-b", "b1", "ann", {"r"});
  Event close = To(TargetKind::kUser, "ann", "closed");
  close.name = kCloseEventName;
  EXPECT_EQ(Publish("pod-a", close).sequence, 1u);
  Publish("pod-a", To(TargetKind::kUser, "ann", "u2"));
  Event room = To(TargetKind::kRoom, "r", "room-close");
  room.name = kCloseEventName;
  Publish("pod-a", room);
  std::unique_ptr<Collector> resumed = ResumeAt(
      "pod-b", {{{TargetKind::kUser, "ann", ""}, 0}, {{TargetKind::kRoom, "r", ""}, 0}});
  EXPECT_THAT(resumed->trace(), ElementsAre("u2@2", "room-close@1"));
}

// Transient events are in no stream: for a user only, never for a room
// (whose receivers on Redis take only numbered events).
TEST_F(ResumeHubTest, OnlyAUserEventCanBeTransient) {
  for (TargetKind target : {TargetKind::kRoom, TargetKind::kConnection, TargetKind::kAll}) {
    Event event = To(target, target == TargetKind::kAll ? "" : "x", "t", "pod-b");
    event.transient = true;
    absl::StatusOr<PublishResult> result =
        WaitFor<PublishResult>([&](Broker::Reply<PublishResult> done) {
          hub("pod-a").Publish(event, std::move(done));
        });
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInternal);
  }
  Register("pod-b", "b1", "ann", {});
  Event event = To(TargetKind::kUser, "ann", "t");
  event.transient = true;
  EXPECT_EQ(Publish("pod-a", event).sequence, 0u);
  ASSERT_TRUE(WaitFor([&] { return got("pod-b").Has("t"); }));
  EXPECT_THAT(got("pod-b").trace(), ElementsAre("t@0"));
}

TEST_F(ResumeHubTest, AResumePastTheLogsReachGivesAGapThenWhatIsLeft) {
  Register("pod-b", "b1", "ann", {"r"});
  for (int i = 1; i <= 7; ++i) Publish("pod-a", To(TargetKind::kRoom, "r", absl::StrCat("r", i)));
  std::unique_ptr<Collector> resumed = ResumeAt("pod-b", {{{TargetKind::kRoom, "r", ""}, 1}});
  // The log holds the last 4 (4..7): 2 and 3 are lost.
  EXPECT_THAT(resumed->trace(), ElementsAre("gap:1/4", "r4@4", "r5@5", "r6@6", "r7@7"));
  // Inside the window: no gap.
  std::unique_ptr<Collector> inside = ResumeAt("pod-b", {{{TargetKind::kRoom, "r", ""}, 3}});
  EXPECT_THAT(inside->trace(), ElementsAre("r4@4", "r5@5", "r6@6", "r7@7"));
  // Up to date, or a stream never published to: nothing.
  EXPECT_THAT(ResumeAt("pod-b", {{{TargetKind::kRoom, "r", ""}, 7},
                                 {{TargetKind::kUser, "nobody", ""}, 0}})
                  ->trace(),
              IsEmpty());
}

TEST_F(ResumeHubTest, AnExcludedConnectionNeverReceivesAReplayedEvent) {
  Register("pod-b", "b1", "ann", {"r"});
  Register("pod-b", "b2", "bob", {"r"});
  Event not_b2 = To(TargetKind::kRoom, "r", "not-b2");
  not_b2.except = {ConnRef{"pod-b", "b2"}};
  Publish("pod-a", not_b2);
  Event nobody = To(TargetKind::kRoom, "r", "nobody");
  nobody.except = {ConnRef{"pod-b", "b1"}, ConnRef{"pod-b", "b2"}};
  Publish("pod-a", nobody);
  Publish("pod-a", To(TargetKind::kRoom, "r", "both"));
  std::unique_ptr<Collector> resumed = ResumeAt("pod-b", {{{TargetKind::kRoom, "r", ""}, 0}});
  EXPECT_THAT(resumed->payloads(), ElementsAre("not-b2", "both"));
  for (const QueueItem& item : resumed->items()) {
    if (item.delivery->event.payload == "not-b2") {
      EXPECT_THAT(item.delivery->conn_ids, ElementsAre("b1"));
    } else {
      EXPECT_THAT(item.delivery->conn_ids, ElementsAre("b1", "b2"));
    }
  }
}

// Cluster-wide operations on the memory store: every connection a target
// selects, on every instance, joins, leaves or is disconnected.
TEST_F(HubTest, ClusterWideJoinLeaveAndDisconnectReachEveryInstance) {
  Register("pod-a", "a1", "ann", {});
  Register("pod-b", "b1", "ann", {"old"});
  Register("pod-b", "b2", "ann", {});
  Register("pod-c", "c1", "bob", {"old"});
  const auto control = [](Control what, TargetKind target, const std::string& to,
                          std::vector<std::string> rooms) {
    Event e = To(target, to, "");
    e.control = what;
    e.rooms = std::move(rooms);
    return e;
  };
  Event join = control(Control::kJoin, TargetKind::kUser, "ann", {"r"});
  join.except = {ConnRef{"pod-b", "b2"}};
  const PublishResult joined = Publish("pod-d", join);
  EXPECT_EQ(joined.instances, 2);
  EXPECT_EQ(joined.sequence, 0u) << "no event of ann's stream";
  const auto members = [&](const std::string& room) {
    absl::StatusOr<MembersPage> page = WaitFor<MembersPage>([&](Broker::Reply<MembersPage> r) {
      nodes_["pod-d"]->broker->RoomMembers(room, 0, "", std::move(r));
    });
    std::vector<std::string> out;
    for (const ConnRef& m : page->members) out.push_back(m.instance + "/" + m.conn);
    return out;
  };
  ASSERT_TRUE(WaitFor([&] { return members("r").size() == 2; }));
  EXPECT_THAT(members("r"), ElementsAre("pod-a/a1", "pod-b/b1"));
  Publish("pod-d", To(TargetKind::kRoom, "r", "in-r"));
  ASSERT_TRUE(WaitFor([&] { return got("pod-b").Has("in-r"); }));
  EXPECT_THAT(DeliveredTo("pod-b", "in-r"), ElementsAre("b1"));
  EXPECT_THAT(DeliveredTo("pod-a", "in-r"), ElementsAre("a1"));

  Publish("pod-d", control(Control::kLeave, TargetKind::kRoom, "old", {"old"}));
  ASSERT_TRUE(WaitFor([&] { return members("old").empty(); }));

  Publish("pod-d", control(Control::kDisconnect, TargetKind::kUser, "ann", {}));
  ASSERT_TRUE(WaitFor([&] {
    return hub("pod-a").stats().connections == 0 && hub("pod-b").stats().connections == 0;
  }));
  Settle();
  const auto disconnected = [&](const std::string& id) {
    for (const QueueItem& item : got(id).items()) {
      if (item.delivery != nullptr && item.delivery->event.control == Control::kDisconnect) {
        return item.delivery->conn_ids;
      }
    }
    return std::vector<std::string>{};
  };
  EXPECT_THAT(disconnected("pod-a"), ElementsAre("a1"));
  EXPECT_THAT(disconnected("pod-b"), ElementsAre("b1", "b2"));
  EXPECT_THAT(disconnected("pod-c"), IsEmpty());
  EXPECT_EQ(hub("pod-c").stats().connections, 2) << "c1 and the settle connection stay";
}

}  // namespace
}  // namespace stateside::realtime
