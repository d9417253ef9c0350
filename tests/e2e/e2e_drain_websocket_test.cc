// End-to-end: test 5: WebSocket clients (through nginx) of a pod
// that restart.sh drains receive close code 1012; each reconnects through
// nginx with its cookie and is served by another, live pod with the same
// session. Clients of the other pods stay connected throughout.
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/e2e/local_cluster.h"
#include "tests/e2e/radar_calls.h"
#include "tests/support/subprocess.h"
#include "tests/support/web_client.h"

namespace stateside::testing {
namespace {

constexpr int kPods = 3;
constexpr int kClientsPerPod = 2;
constexpr int kMaxClients = 15;

struct Client {
  std::string user;
  std::string cookie;
  RadarSocket socket;
};

class DrainWebSocketE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto cluster = LocalCluster::Start(kPods);
    ASSERT_TRUE(cluster.ok()) << cluster.status().message();
    cluster_ = *std::move(cluster);
  }
  void TearDown() override {
    if (cluster_ == nullptr) return;
    if (HasFailure()) {
      fprintf(stderr, "[e2e] logs after the failure:\n%s", cluster_->LogTails().c_str());
    }
    StopAndCheck(*cluster_);
  }

  std::unique_ptr<LocalCluster> cluster_;
};

TEST_F(DrainWebSocketE2eTest, ClientsOfADrainingPodGet1012AndResumeOnAnotherPod) {
  const int nginx = cluster_->nginx_port();
  std::set<std::string> pods;
  for (int pod = 1; pod <= kPods; ++pod) pods.insert(LocalCluster::Instance(pod));

  // Connect until every pod holds at least two clients (so that several
  // share the drained pod's fate): the hello names the instance nginx chose.
  std::vector<Client> clients;
  std::map<std::string, int> per_pod;
  auto spread = [&] {
    if (per_pod.size() < pods.size()) return false;
    for (const auto& [pod, count] : per_pod) {
      if (count < kClientsPerPod) return false;
    }
    return true;
  };
  while (!spread() && static_cast<int>(clients.size()) < kMaxClients) {
    Client client;
    client.user = absl::StrCat("ws-user-", clients.size());
    auto cookie = Login(nginx, client.user);
    ASSERT_TRUE(cookie.ok()) << cookie.status();
    client.cookie = *cookie;
    auto socket = OpenSocket(nginx, client.cookie);
    ASSERT_TRUE(socket.ok()) << client.user << ": " << socket.status();
    ASSERT_TRUE(pods.count(socket->instance())) << socket->hello.dump();
    ASSERT_EQ(socket->hello.value("user", ""), client.user) << socket->hello.dump();
    ++per_pod[socket->instance()];
    client.socket = *std::move(socket);
    clients.push_back(std::move(client));
  }
  ASSERT_TRUE(spread()) << "after " << clients.size() << " clients, not every pod holds "
                        << kClientsPerPod << ": "
      << absl::StrJoin(per_pod, ",", absl::PairFormatter(":"));

  const std::string drained = clients.front().socket.instance();
  const int drained_pod = std::stoi(drained.substr(drained.find('-') + 1));
  fprintf(stderr, "[e2e] %zu WebSocket clients (%s); restarting %s\n", clients.size(),
          absl::StrJoin(per_pod, ",", absl::PairFormatter(":")).c_str(), drained.c_str());
  RunResult restart;
  std::thread restarter([&] { restart = cluster_->Restart(drained_pod); });

  for (Client& client : clients) {
    if (client.socket.instance() != drained) continue;
    // Whatever arrives before the close (nothing is expected) is skipped.
    std::string before_close;
    absl::StatusOr<WebSocketClient::Message> message;
    while ((message = client.socket.ws->Read(absl::Seconds(30))).ok() && !message->closed) {
      absl::StrAppend(&before_close, message->text, " ");
    }
    ASSERT_TRUE(message.ok()) << client.user << " on " << drained << ": " << message.status()
                              << " (after: " << before_close << ")";
    EXPECT_EQ(message->close_code, 1012) << client.user << " on " << drained;
    const absl::Time closed_at = absl::Now();

    // Reconnect at once, while the drained pod is still going away.
    auto again = OpenSocket(nginx, client.cookie);
    ASSERT_TRUE(again.ok()) << client.user << " reconnecting: " << again.status();
    EXPECT_NE(again->instance(), drained) << again->hello.dump();
    EXPECT_TRUE(pods.count(again->instance())) << again->hello.dump();
    EXPECT_EQ(again->hello.value("user", ""), client.user) << again->hello.dump();
    fprintf(stderr, "[e2e] %s: 1012 from %s, resumed on %s after %s\n", client.user.c_str(),
            drained.c_str(), again->instance().c_str(),
            absl::FormatDuration(absl::Now() - closed_at).c_str());
    client.socket = *std::move(again);
    auto me = HttpCall(nginx, RadarGet("/me", client.cookie));
    ASSERT_TRUE(me.ok()) << me.status();
    EXPECT_EQ(me->status, 200) << Describe(*me);
    EXPECT_EQ(BodyJson(*me).value("user", ""), client.user) << me->body;
  }
  restarter.join();
  EXPECT_EQ(restart.exit_status, 0) << "restart.sh " << drained_pod << "\n--- stdout:\n"
                                    << restart.out << "--- stderr:\n" << restart.err;

  // Every connection (the untouched ones and the resumed ones) still works.
  for (Client& client : clients) {
    const absl::Status joined = Join(*client.socket.ws, "after-restart");
    EXPECT_TRUE(joined.ok()) << client.user << " on " << client.socket.instance() << ": "
                             << joined;
  }
}

}  // namespace
}  // namespace stateside::testing
