// End-to-end tests 1, 2, 3 and 6 on one local cluster (redis-server,
// 3 pods of sidecar + radar-app, nginx) started by deploy/local/up.sh: one
// cookie served by every instance, broadcasts across instances (room and
// user), concurrent cart writes, and a logout racing a slow request.
#include <latch>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/e2e/local_cluster.h"
#include "tests/e2e/radar_calls.h"
#include "tests/support/wait.h"
#include "tests/support/web_client.h"

namespace stateside::testing {
namespace {

using ::testing::ElementsAreArray;

constexpr int kPods = 3;

class ClusterE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // The test hooks let test 6 slow a POST /cart down (X-Radar-Delay-Ms).
    auto cluster = LocalCluster::Start(kPods, {{"RADAR_TEST_HOOKS", "true"}});
    if (cluster.ok()) {
      cluster_ = *std::move(cluster);
    } else {
      start_error_ = std::string(cluster.status().message());
    }
  }
  static void TearDownTestSuite() {
    if (cluster_ != nullptr) StopAndCheck(*cluster_);
    cluster_.reset();
  }

  void SetUp() override { ASSERT_NE(cluster_, nullptr) << start_error_; }
  void TearDown() override {
    if (HasFailure() && cluster_ != nullptr) {
      fprintf(stderr, "[e2e] logs after the failure:\n%s", cluster_->LogTails().c_str());
    }
  }

  static int Nginx() { return cluster_->nginx_port(); }
  static int App(int pod) { return cluster_->app_port(pod); }

  static std::set<std::string> PodNames() {
    std::set<std::string> names;
    for (int pod = 1; pod <= kPods; ++pod) names.insert(LocalCluster::Instance(pod));
    return names;
  }

  static inline std::unique_ptr<LocalCluster> cluster_;
  static inline std::string start_error_;
};

// Every field of `expected` is in `actual` with that value (more fields may
// come: the contract lists these).
::testing::AssertionResult HasFields(const nlohmann::json& actual,
                                     const nlohmann::json& expected) {
  for (const auto& [key, value] : expected.items()) {
    if (!actual.contains(key) || actual[key] != value) {
      return ::testing::AssertionFailure()
             << "field " << key << " is not " << value.dump() << " in " << actual.dump();
    }
  }
  return ::testing::AssertionSuccess();
}

// The cookie's value (what the sidecar issued): "name=value" → "value".
std::string CookieValue(const std::string& cookie) {
  return cookie.substr(cookie.find('=') + 1);
}

// Test 1. Which instance answered is read from each response's X-Instance-Id
// (and the body's "instance"), never assumed from the balancing policy.
// Sequential requests on one keep-alive connection: least_conn breaks ties by
// round robin, so even one request at a time reaches every pod.
TEST_F(ClusterE2eTest, OneCookieIsServedByEveryInstanceThroughNginx) {
  auto cookie = Login(Nginx(), "alice");
  ASSERT_TRUE(cookie.ok()) << cookie.status();

  auto connection = HttpConnection::Open(Nginx());
  ASSERT_TRUE(connection.ok()) << connection.status();
  std::map<std::string, int> by_instance;
  for (int i = 0; i < 30; ++i) {
    auto response = (*connection)->Send(RadarGet("/me", *cookie));
    ASSERT_TRUE(response.ok()) << "request " << i << ": " << response.status();
    ASSERT_EQ(response->status, 200) << "request " << i << ": " << Describe(*response);
    const nlohmann::json body = BodyJson(*response);
    EXPECT_EQ(body.value("user", ""), "alice") << response->body;
    const std::string instance = response->Header("X-Instance-Id");
    EXPECT_EQ(body.value("instance", ""), instance) << response->body;
    ++by_instance[instance];
  }
  std::vector<std::string> seen;
  for (const auto& [instance, count] : by_instance) {
    seen.push_back(absl::StrCat(instance, ":", count));
    EXPECT_TRUE(PodNames().count(instance)) << "unexpected X-Instance-Id '" << instance << "'";
  }
  fprintf(stderr, "[e2e] 30 GET /me answered by %s\n", absl::StrJoin(seen, " ").c_str());
  EXPECT_EQ(by_instance.size(), 3u) << "instances that answered: " << absl::StrJoin(seen, " ");
}

// Test 2, rooms: a WebSocket on pod 1 joins a room; a broadcast posted to
// pod 3 reaches it, stamped with the publisher's instance.
TEST_F(ClusterE2eTest, RoomBroadcastPostedOnPod3ReachesAWebSocketOnPod1) {
  auto listener = Login(App(1), "room-listener");
  ASSERT_TRUE(listener.ok()) << listener.status();
  auto socket = OpenSocket(App(1), *listener);
  ASSERT_TRUE(socket.ok()) << socket.status();
  EXPECT_EQ(socket->instance(), "pod-1") << socket->hello.dump();
  EXPECT_EQ(socket->hello.value("user", ""), "room-listener") << socket->hello.dump();
  const absl::Status joined = Join(*socket->ws, "lobby");
  ASSERT_TRUE(joined.ok()) << joined;

  auto speaker = Login(App(3), "room-speaker");
  ASSERT_TRUE(speaker.ok()) << speaker.status();
  // Only a member may broadcast into a room: the speaker's socket (on pod 2)
  // joins it, and pod 3 finds it in the cluster's presence.
  auto speaker_socket = OpenSocket(App(2), *speaker);
  ASSERT_TRUE(speaker_socket.ok()) << speaker_socket.status();
  ASSERT_TRUE(Join(*speaker_socket->ws, "lobby").ok());
  auto published = HttpCall(
      App(3), RadarPost("/broadcast", {{"room", "lobby"}, {"msg", "hello from pod 3"}}, *speaker));
  ASSERT_TRUE(published.ok()) << published.status();
  ASSERT_EQ(published->status, 200) << Describe(*published);
  EXPECT_EQ(published->Header("X-Instance-Id"), "pod-3");
  EXPECT_GE(BodyJson(*published).value("instances", 0), 1) << published->body;

  auto message = NextJson(*socket->ws);
  ASSERT_TRUE(message.ok()) << message.status();
  EXPECT_TRUE(HasFields(*message, {{"event", "message"},
                                   {"room", "lobby"},
                                   {"msg", "hello from pod 3"},
                                   {"from", "room-speaker"},
                                   {"instance", "pod-3"}}));
}

// Test 2, users: bob is connected on pods 1 and 2, carol on pod 1. A message
// addressed to bob, posted on pod 3, reaches both of bob's connections and
// not carol's: carol's next message is the marker sent to her afterwards.
TEST_F(ClusterE2eTest, UserMessageReachesTheUsersConnectionsOnTwoInstancesOnly) {
  auto bob = Login(Nginx(), "bob");
  auto carol = Login(Nginx(), "carol");
  ASSERT_TRUE(bob.ok()) << bob.status();
  ASSERT_TRUE(carol.ok()) << carol.status();
  auto bob1 = OpenSocket(App(1), *bob);
  auto bob2 = OpenSocket(App(2), *bob);
  auto carol1 = OpenSocket(App(1), *carol);
  ASSERT_TRUE(bob1.ok()) << bob1.status();
  ASSERT_TRUE(bob2.ok()) << bob2.status();
  ASSERT_TRUE(carol1.ok()) << carol1.status();
  EXPECT_EQ(bob1->instance(), "pod-1");
  EXPECT_EQ(bob2->instance(), "pod-2");
  EXPECT_EQ(bob2->hello.value("user", ""), "bob");
  EXPECT_NE(bob1->hello.value("conn", ""), bob2->hello.value("conn", ""));

  // The registrations are cluster-wide (presence) before anything is sent to
  // bob: the hello does not promise that the sidecar has finished.
  std::string presence;
  ASSERT_TRUE(WaitFor(
      [&] {
        RunResult run = cluster_->Statesidectl(3, {"presence", "--user", "bob"});
        presence = run.out + run.err;
        return run.exit_status == 0 &&
               nlohmann::json::parse(run.out, nullptr, false).value("count", 0) == 2;
      },
      absl::Seconds(10), absl::Milliseconds(50)))
      << "bob's connections as presence sees them: " << presence;

  auto publisher = Login(App(3), "dispatcher");
  ASSERT_TRUE(publisher.ok()) << publisher.status();
  auto to_bob = HttpCall(
      App(3), RadarPost("/broadcast", {{"user", "bob"}, {"msg", "for bob only"}}, *publisher));
  ASSERT_TRUE(to_bob.ok()) << to_bob.status();
  ASSERT_EQ(to_bob->status, 200) << Describe(*to_bob);
  // Routed to the two instances holding bob's connections, not broadcast.
  EXPECT_EQ(BodyJson(*to_bob).value("instances", -1), 2) << to_bob->body;

  const nlohmann::json expected = {{"event", "message"}, {"user", "bob"},
                                   {"msg", "for bob only"}, {"from", "dispatcher"},
                                   {"instance", "pod-3"}};
  for (RadarSocket* socket : {&*bob1, &*bob2}) {
    auto message = NextJson(*socket->ws);
    ASSERT_TRUE(message.ok()) << socket->instance() << ": " << message.status();
    EXPECT_TRUE(HasFields(*message, expected)) << socket->instance();
  }

  auto marker = HttpCall(
      App(3), RadarPost("/broadcast", {{"user", "carol"}, {"msg", "marker"}}, *publisher));
  ASSERT_TRUE(marker.ok()) << marker.status();
  ASSERT_EQ(marker->status, 200) << Describe(*marker);
  auto first_for_carol = NextJson(*carol1->ws);
  ASSERT_TRUE(first_for_carol.ok()) << first_for_carol.status();
  EXPECT_EQ(first_for_carol->value("msg", ""), "marker")
      << "carol received something before her marker: " << first_for_carol->dump();
}

// "Log out everywhere" on pod 3 closes the user's sockets on pods 1 and 2
// at once: the published session-ended event, not the periodic session
// check (60 s by default), closes them.
TEST_F(ClusterE2eTest, LogOutEverywhereOnOnePodClosesTheUsersSocketsOnTheOthers) {
  auto first = Login(App(1), "dave");
  auto second = Login(App(2), "dave");
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(second.ok()) << second.status();
  auto on1 = OpenSocket(App(1), *first);
  auto on2 = OpenSocket(App(2), *second);
  ASSERT_TRUE(on1.ok()) << on1.status();
  ASSERT_TRUE(on2.ok()) << on2.status();
  std::string presence;
  ASSERT_TRUE(WaitFor(
      [&] {
        RunResult run = cluster_->Statesidectl(3, {"presence", "--user", "dave"});
        presence = run.out + run.err;
        return run.exit_status == 0 &&
               nlohmann::json::parse(run.out, nullptr, false).value("count", 0) == 2;
      },
      absl::Seconds(10), absl::Milliseconds(50)))
      << "dave's connections as presence sees them: " << presence;

  auto logout = HttpCall(App(3), RadarPost("/logout", {{"everywhere", true}}, *first));
  ASSERT_TRUE(logout.ok()) << logout.status();
  ASSERT_EQ(logout->status, 200) << Describe(*logout);
  for (RadarSocket* socket : {&*on1, &*on2}) {
    auto next = NextJson(*socket->ws, absl::Seconds(10));
    ASSERT_FALSE(next.ok()) << socket->instance() << " still open: " << next->dump();
    EXPECT_THAT(std::string(next.status().message()), ::testing::HasSubstr("1008"))
        << socket->instance();
  }
  auto me = HttpCall(App(1), RadarGet("/me", *second));
  ASSERT_TRUE(me.ok()) << me.status();
  EXPECT_EQ(me->status, 401);
}

// Test 3: 50 POST /cart with distinct items, all in flight at once, each on
// its own connection through nginx (so on several instances): every item is
// in the cart afterwards.
TEST_F(ClusterE2eTest, FiftyConcurrentCartAddsAllSurvive) {
  constexpr int kItems = 50;
  auto cookie = Login(Nginx(), "shopper");
  ASSERT_TRUE(cookie.ok()) << cookie.status();

  std::vector<std::string> items;
  for (int i = 0; i < kItems; ++i) items.push_back(absl::StrFormat("item-%02d", i));
  std::vector<std::string> outcomes(kItems);  // "" = 200 with the item echoed
  std::vector<std::string> instances(kItems);
  std::latch connected(kItems);
  std::vector<std::thread> threads;
  for (int i = 0; i < kItems; ++i) {
    threads.emplace_back([&, i] {
      auto connection = HttpConnection::Open(Nginx());
      connected.arrive_and_wait();  // every connection open: send together
      if (!connection.ok()) {
        outcomes[i] = connection.status().ToString();
        return;
      }
      auto response = (*connection)->Send(
          RadarPost("/cart", {{"item", items[i]}}, *cookie), absl::Seconds(30));
      if (!response.ok()) {
        outcomes[i] = response.status().ToString();
      } else if (response->status != 200 ||
                 BodyJson(*response).value("item", "") != items[i]) {
        outcomes[i] = Describe(*response);
      } else {
        instances[i] = response->Header("X-Instance-Id");
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < kItems; ++i) EXPECT_EQ(outcomes[i], "") << items[i];
  const std::set<std::string> served_by(instances.begin(), instances.end());
  EXPECT_GE(served_by.size(), 2u) << "the adds were not spread: " << absl::StrJoin(served_by, ",");

  auto me = HttpCall(Nginx(), RadarGet("/me", *cookie));
  ASSERT_TRUE(me.ok()) << me.status();
  ASSERT_EQ(me->status, 200) << Describe(*me);
  const nlohmann::json cart = BodyJson(*me)["cart"];
  ASSERT_TRUE(cart.is_array()) << me->body;
  EXPECT_THAT(cart.get<std::vector<std::string>>(), ElementsAreArray(items)) << me->body;
}

// The session's last access as the sidecar stores it (read without rolling
// it), "" if the session is not found.
std::string LastAccess(const LocalCluster& cluster, const std::string& cookie) {
  RunResult run =
      cluster.Statesidectl(1, {"session", "get", "--no-touch", CookieValue(cookie)});
  if (run.exit_status != 0) return "";
  return nlohmann::json::parse(run.out, nullptr, false).value("last_access", "");
}

// Test 6: a POST /cart on pod 1 reads the session and then waits 3 s
// (X-Radar-Delay-Ms, test hooks on; long enough for the polling below and
// the logout under ASan on a loaded machine) before writing; meanwhile the user logs
// out through pod 2. The slow write answers 401 and does not bring the
// session back: no instance knows it afterwards, and the user has none.
TEST_F(ClusterE2eTest, LogoutRacingASlowRequestLeavesTheSessionDestroyed) {
  auto cookie = Login(App(1), "racer");
  ASSERT_TRUE(cookie.ok()) << cookie.status();
  const std::string read_before = LastAccess(*cluster_, *cookie);
  ASSERT_NE(read_before, "") << "statesidectl does not find the fresh session";

  struct Outcome {
    absl::StatusOr<HttpResponse> response = absl::UnknownError("not sent");
    absl::Time done;
  } slow;
  HttpRequest slow_request = RadarPost("/cart", {{"item", "too-late"}}, *cookie);
  slow_request.headers.emplace_back("X-Radar-Delay-Ms", "3000");
  std::thread slow_thread([&] {
    slow.response = HttpCall(App(1), slow_request, absl::Seconds(20));
    slow.done = absl::Now();
  });

  // The race is only a race once the slow request has read the session:
  // reading it rolls last_access (which statesidectl --no-touch does not).
  const bool read = WaitFor([&] { return LastAccess(*cluster_, *cookie) != read_before; },
                            absl::Seconds(5), absl::Milliseconds(10));
  auto logout = HttpCall(App(2), RadarPost("/logout", nullptr, *cookie));
  const absl::Time logout_done = absl::Now();
  slow_thread.join();
  EXPECT_TRUE(read) << "the slow request never read the session (last_access stays "
                    << read_before << ")";

  ASSERT_TRUE(logout.ok()) << logout.status();
  EXPECT_EQ(logout->status, 200) << Describe(*logout);
  EXPECT_EQ(logout->Header("X-Instance-Id"), "pod-2");
  EXPECT_EQ(BodyJson(*logout).value("logged_out", false), true) << logout->body;
  const std::string cleared = CookieHeader(*logout);
  EXPECT_TRUE(!cleared.empty() && cleared.back() == '=') << "Set-Cookie: " << cleared;

  ASSERT_TRUE(slow.response.ok()) << slow.response.status();
  EXPECT_LT(logout_done, slow.done) << "the logout did not overtake the slow request";
  EXPECT_EQ(slow.response->status, 401) << Describe(*slow.response);

  auto me = HttpCall(Nginx(), RadarGet("/me", *cookie));
  ASSERT_TRUE(me.ok()) << me.status();
  EXPECT_EQ(me->status, 401) << Describe(*me);
  for (int pod = 1; pod <= kPods; ++pod) {
    auto on_pod = HttpCall(App(pod), RadarGet("/me", *cookie));
    ASSERT_TRUE(on_pod.ok()) << on_pod.status();
    EXPECT_EQ(on_pod->status, 401) << "pod " << pod << ": " << Describe(*on_pod);
    RunResult list = cluster_->Statesidectl(pod, {"session", "list", "--user", "racer"});
    ASSERT_EQ(list.exit_status, 0) << list.err;
    const nlohmann::json sessions = nlohmann::json::parse(list.out, nullptr, false);
    EXPECT_EQ(sessions.value("sessions", nlohmann::json::array()).size(), 0u)
        << "pod " << pod << ": " << list.out;
  }
  RunResult get = cluster_->Statesidectl(1, {"session", "get", "--no-touch", CookieValue(*cookie)});
  EXPECT_EQ(get.exit_status, 1) << get.out << get.err;
  EXPECT_THAT(get.err, ::testing::HasSubstr("NOT_FOUND"));
}

}  // namespace
}  // namespace stateside::testing
