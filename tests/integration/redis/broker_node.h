// What the RedisBroker tests share: a sink that records what a broker handed
// it, blocking wrappers of the broker's asynchronous calls, a "sidecar" Node
// (its own client, sink and broker) and a fixture that starts them.
// Test-only; Node is used from the test thread, RecordingSink from any.
#ifndef STATESIDE_TESTS_INTEGRATION_REDIS_BROKER_NODE_H_
#define STATESIDE_TESTS_INTEGRATION_REDIS_BROKER_NODE_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "sidecar/crypto/envelope.h"
#include "sidecar/crypto/keyring.h"
#include "sidecar/crypto/random.h"
#include "sidecar/redis/redis_broker.h"
#include "tests/integration/redis/redis_fixture.h"
#include "tests/support/wait.h"

namespace stateside::testing::broker_test {

namespace rt = ::stateside::realtime;

// What a broker handed its sink; `log` keeps the order of gaps and losses.
class RecordingSink : public rt::Broker::Sink {
 public:
  void OnEvent(rt::Event event) override {
    absl::MutexLock lock(&mu_);
    events_.push_back(std::move(event));
  }
  void OnGap(absl::Time from, absl::Time to) override {
    absl::MutexLock lock(&mu_);
    log_.push_back("gap");
    gaps_.emplace_back(from, to);
  }
  void OnPresenceLost() override {
    absl::MutexLock lock(&mu_);
    log_.push_back("lost");
  }
  std::vector<rt::Event> events() {
    absl::MutexLock lock(&mu_);
    return events_;
  }
  std::vector<rt::Event> events(rt::TargetKind target) {
    std::vector<rt::Event> out;
    for (rt::Event& e : events()) {
      if (e.target == target) out.push_back(std::move(e));
    }
    return out;
  }
  bool Got(const std::string& payload) {
    for (const rt::Event& e : events()) {
      if (e.payload == payload) return true;
    }
    return false;
  }
  std::vector<std::string> log() {
    absl::MutexLock lock(&mu_);
    return log_;
  }
  std::vector<std::pair<absl::Time, absl::Time>> gaps() {
    absl::MutexLock lock(&mu_);
    return gaps_;
  }

 private:
  absl::Mutex mu_;
  std::vector<rt::Event> events_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> log_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<absl::Time, absl::Time>> gaps_ ABSL_GUARDED_BY(mu_);
};

// Runs an asynchronous broker call and waits for its answer.
template <typename T>
absl::StatusOr<T> Await(const std::function<void(rt::Broker::Reply<T>)>& call) {
  struct State {
    absl::Mutex mu;
    std::optional<absl::StatusOr<T>> result ABSL_GUARDED_BY(mu);
  };
  auto state = std::make_shared<State>();
  call([state](absl::StatusOr<T> r) {
    absl::MutexLock lock(&state->mu);
    state->result = std::move(r);
  });
  absl::MutexLock lock(&state->mu);
  auto answered = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state->mu) {
    return state->result.has_value();
  };
  if (!state->mu.AwaitWithTimeout(absl::Condition(&answered), absl::Seconds(15))) {
    return absl::DeadlineExceededError("never answered");
  }
  return *std::move(state->result);
}

inline absl::Status AwaitDone(const std::function<void(rt::Broker::Done)>& call) {
  return Await<bool>([&](rt::Broker::Reply<bool> reply) {
           call([reply = std::move(reply)](absl::Status s) mutable {
             if (s.ok()) return std::move(reply)(true);
             std::move(reply)(std::move(s));
           });
         })
      .status();
}

inline rt::Event RoomEvent(std::string room, std::string payload) {
  rt::Event e;
  e.target = rt::TargetKind::kRoom;
  e.to = std::move(room);
  e.name = "chat";
  e.payload = std::move(payload);
  e.published_at = absl::Now();
  return e;
}

inline rt::Event Targeted(rt::TargetKind target, std::string to, std::string payload, std::string inst = "") {
  rt::Event e = RoomEvent(std::move(to), std::move(payload));
  e.target = target;
  e.to_instance = std::move(inst);
  if (target == rt::TargetKind::kAll) e.to.clear();
  return e;
}

inline std::vector<std::string> Fields(const std::vector<rt::ConnRef>& refs) {
  std::vector<std::string> out;
  for (const rt::ConnRef& r : refs) out.push_back(absl::StrCat(r.instance, "/", r.conn));
  return out;
}

// One "sidecar": its own client, sink and broker.
struct Node {
  std::unique_ptr<redis::RedisClient> client;
  std::unique_ptr<RecordingSink> sink;
  std::unique_ptr<redis::RedisBroker> broker;
  std::string id;

  absl::StatusOr<realtime::PublishResult> Publish(rt::Event e) {
    e.origin = id;
    return Await<realtime::PublishResult>(
        [&](rt::Broker::Reply<realtime::PublishResult> r) { broker->Publish(e, std::move(r)); });
  }
  absl::Status Watch(const std::string& room) {
    return AwaitDone([&](rt::Broker::Done d) { broker->WatchRoom(room, std::move(d)); });
  }
  absl::Status Broadcast(bool on) {
    return AwaitDone([&](rt::Broker::Done d) { broker->WatchBroadcast(on, std::move(d)); });
  }
  absl::Status Add(rt::ConnPresence conn) {
    return AwaitDone([&](rt::Broker::Done d) { broker->AddPresence(conn, std::move(d)); });
  }
  absl::Status Remove(rt::ConnPresence conn, bool all) {
    return AwaitDone([&](rt::Broker::Done d) { broker->RemovePresence(conn, all, std::move(d)); });
  }
  absl::Status Sync(std::vector<rt::ConnPresence> conns) {
    return AwaitDone(
        [&](rt::Broker::Done d) { broker->SyncPresence(std::move(conns), std::move(d)); });
  }
  absl::StatusOr<realtime::MembersPage> Members(const std::string& room, int size = 0,
                                                const std::string& token = "") {
    return Await<realtime::MembersPage>([&](rt::Broker::Reply<realtime::MembersPage> r) {
      broker->RoomMembers(room, size, token, std::move(r));
    });
  }
  std::vector<std::string> MemberFields(const std::string& room) {
    absl::StatusOr<realtime::MembersPage> page = Members(room, 1000);
    EXPECT_TRUE(page.ok()) << page.status();
    return page.ok() ? Fields(page->members) : std::vector<std::string>{"<error>"};
  }
  std::vector<std::string> UserFields(const std::string& user) {
    absl::StatusOr<std::vector<rt::ConnRef>> conns = Await<std::vector<rt::ConnRef>>(
        [&](rt::Broker::Reply<std::vector<rt::ConnRef>> r) { broker->UserConnections(user, std::move(r)); });
    EXPECT_TRUE(conns.ok()) << conns.status();
    return conns.ok() ? Fields(*conns) : std::vector<std::string>{"<error>"};
  }
  absl::StatusOr<realtime::HistoryPage> History(const std::string& room, uint64_t after,
                                                int limit = 0) {
    return Await<realtime::HistoryPage>([&](rt::Broker::Reply<realtime::HistoryPage> r) {
      broker->History(room, after, limit, std::move(r));
    });
  }
  absl::StatusOr<realtime::HistoryPage> StreamHistory(const rt::StreamRef& stream,
                                                      uint64_t after) {
    return Await<realtime::HistoryPage>([&](rt::Broker::Reply<realtime::HistoryPage> r) {
      broker->StreamHistory(stream, after, 0, std::move(r));
    });
  }
};

// A fixture's sealing kit and a way to start brokers: each test has its own
// prefix and a fresh key "k1".
class BrokerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    random_ = crypto::NewSecureRandom();
    absl::StatusOr<std::string> key = RandomBytes(*random_, 32);
    ASSERT_TRUE(key.ok());
    absl::StatusOr<std::unique_ptr<crypto::Keyring>> keyring =
        crypto::Keyring::Create({{"k1", *key}});
    ASSERT_TRUE(keyring.ok()) << keyring.status();
    keyring_ = *std::move(keyring);
    sealer_ = std::make_unique<crypto::Sealer>(keyring_.get(), random_.get());
    prefix_ = UniquePrefix();
  }

  redis::RedisBrokerOptions Options(const std::string& id) {
    redis::RedisBrokerOptions o;
    o.prefix = prefix_;
    o.instance_id = id;
    o.sealer = sealer_.get();
    o.keyring = keyring_.get();
    return o;
  }

  // A started broker on `url` whose first subscription is confirmed (its
  // first gap reached the sink), so its instance channel receives.
  std::unique_ptr<Node> StartOn(const std::string& url, redis::RedisBrokerOptions options,
                                redis::RedisOptions client_options = FastRedisOptions()) {
    auto node = std::make_unique<Node>();
    node->id = options.instance_id;
    node->client = ConnectedClient(url, std::move(client_options));
    if (node->client == nullptr) return nullptr;
    node->sink = std::make_unique<RecordingSink>();
    absl::StatusOr<std::unique_ptr<redis::RedisBroker>> broker =
        redis::RedisBroker::Create(node->client.get(), std::move(options));
    EXPECT_TRUE(broker.ok()) << broker.status();
    if (!broker.ok()) return nullptr;
    node->broker = *std::move(broker);
    node->broker->Start(node->sink.get());
    EXPECT_TRUE(WaitFor([&] { return node->sink->gaps().size() == 1; }, absl::Seconds(30)))
        << node->id << " never subscribed";
    return node;
  }

  std::unique_ptr<RandomSource> random_;
  std::unique_ptr<crypto::Keyring> keyring_;
  std::unique_ptr<crypto::Sealer> sealer_;
  std::string prefix_;
};

}  // namespace stateside::testing::broker_test

#endif  // STATESIDE_TESTS_INTEGRATION_REDIS_BROKER_NODE_H_
