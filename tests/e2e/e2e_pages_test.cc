// The two pages in the browser: radar's demo page through nginx during a
// rolling restart of every pod (its strip of answering pods shows more than
// one, its room survives the WebSocket's reconnect to another pod after the
// drain's 1012 with no gap, the hammer's 50 concurrent cart adds, fired
// while the first pod drains, all stay in the cart), then the admin status
// page of each pod, checked against `statesidectl info` and `instances`.
// A message missed while the page's socket was away shows as a gap.
// Screenshots of both go to docs/images/ with STATESIDE_UPDATE_SCREENSHOTS=1.
#include <fstream>
#include <future>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/e2e/browser_fixture.h"
#include "tests/e2e/local_cluster.h"
#include "tests/e2e/radar_calls.h"
#include "tests/support/wait.h"
#include "tests/support/web_client.h"

namespace stateside::testing {
namespace {

constexpr int kHammerAdds = 50;

class PagesE2eTest : public BrowserE2eTest {
 protected:
  // Sends `msg` into the room from the page and waits until it is shown
  // with its sequence number.
  ::testing::AssertionResult SendAndSee(const std::string& msg, int sequence) {
    if (absl::Status s = TypeInto("#msg", msg); !s.ok()) return ::testing::AssertionFailure() << s;
    if (absl::Status s = ClickOn("#send"); !s.ok()) return ::testing::AssertionFailure() << s;
    const std::string text = TextOf("#error");
    if (!text.empty()) return ::testing::AssertionFailure() << "#error: " << text;
    return TextShows("#messages", absl::StrCat("#", sequence, " "));
  }

  // The pods the strip has seen answer.
  std::set<std::string> PodsInStrip() {
    std::set<std::string> pods;
    auto listed = driver_->Execute(
        "return [...document.querySelectorAll('#pods li')].map((li) => li.textContent);");
    if (!listed.ok() || !listed->is_array()) return pods;
    for (const auto& entry : *listed) {
      const std::string text = entry.get<std::string>();
      pods.insert(text.substr(0, text.find(' ')));
    }
    return pods;
  }

  // Waits until the page's #status says the socket is in the room again.
  ::testing::AssertionResult Rejoined() {
    return TextShows("#status", "connected to pod-", absl::Seconds(30));
  }
};

TEST_F(PagesE2eTest, RadarPageSurvivesARollingRestartAndStatusPagesMatchStatesidectl) {
  const absl::Time start = absl::Now();
  absl::Status step = driver_->SetWindowSize(1100, 1500);
  ASSERT_TRUE(step.ok()) << step;
  step = driver_->Navigate(absl::StrCat("http://127.0.0.1:", cluster_->nginx_port(), "/"));
  ASSERT_TRUE(step.ok()) << step;

  // Log in, add to the cart, opt out (read back, usually on another pod).
  ASSERT_TRUE(TypeInto("#user", "pages-user").ok());
  ASSERT_TRUE(ClickOn("#login").ok());
  ASSERT_TRUE(TextShows("#me", "pages-user"));
  ASSERT_TRUE(TypeInto("#item", "radar").ok());
  ASSERT_TRUE(ClickOn("#add").ok());
  ASSERT_TRUE(TextShows("#cart", "radar"));
  ASSERT_TRUE(TextShows("#optout-state", "not opted out (read on pod-"));
  ASSERT_TRUE(ClickOn("#optout").ok());
  EXPECT_TRUE(WaitFor(
      [&] { return absl::StartsWith(TextOf("#optout-state"), "opted out (read on pod-"); },
      absl::Seconds(15), absl::Milliseconds(100)))
      << "#optout-state: " << TextOf("#optout-state");
  EXPECT_TRUE(TextShows("#log", "POST /analytics/opt-out"));

  // Join the room; the first message is #1, tagged with the pod it was
  // published on.
  ASSERT_TRUE(TypeInto("#room", "pages-room").ok());
  ASSERT_TRUE(ClickOn("#join").ok());
  ASSERT_TRUE(TextShows("#status", "connected to pod-"));
  const std::string first_pod = TextOf("#socket-pod");
  ASSERT_TRUE(absl::StartsWith(first_pod, "pod-")) << first_pod;
  ASSERT_TRUE(SendAndSee("before the restart", 1));
  EXPECT_TRUE(TextShows("#messages", "pages-user: before the restart"));

  // The rolling restart, beginning with the pod that holds the socket. While
  // it drains (the page saw its 1012), the hammer fires its adds.
  std::vector<int> order = {first_pod.back() - '0'};
  for (int pod = 1; pod <= kPods; ++pod) {
    if (pod != order.front()) order.push_back(pod);
  }
  auto restart = std::async(std::launch::async, [&] { return cluster_->Restart(order[0]); });
  // "closed 1012" shows only until the reconnect; the notice stays.
  ASSERT_TRUE(WaitFor(
      [&] {
        auto closed = driver_->Execute(
            "return document.getElementById('status').textContent.startsWith('closed') || "
            "document.getElementById('notices').textContent.includes('after close');");
        return closed.ok() && closed->is_boolean() && closed->get<bool>();
      },
      absl::Seconds(30), absl::Milliseconds(50)))
      << "the page never saw its socket close; #status: " << TextOf("#status");
  ASSERT_TRUE(TypeInto("#hammer-n", std::to_string(kHammerAdds)).ok());
  ASSERT_TRUE(ClickOn("#hammer").ok());
  RunResult restarted = restart.get();
  ASSERT_EQ(restarted.exit_status, 0) << restarted.out << restarted.err;
  EXPECT_TRUE(TextShows("#hammer-result",
                        absl::StrCat("hammer: ", kHammerAdds, " of ", kHammerAdds, " adds kept (",
                                     kHammerAdds, " answered 200"),
                        absl::Seconds(30)));
  ASSERT_TRUE(TextShows("#notices", absl::StrCat("reconnected: ", first_pod, " \u2192 pod-"),
                        absl::Seconds(30)));
  EXPECT_TRUE(TextShows("#notices", "after close 1012"));
  ASSERT_TRUE(Rejoined());
  EXPECT_NE(TextOf("#socket-pod"), first_pod);
  ASSERT_TRUE(SendAndSee("after the first restart", 2));

  for (size_t i = 1; i < order.size(); ++i) {
    RunResult again = cluster_->Restart(order[i]);
    ASSERT_EQ(again.exit_status, 0) << again.out << again.err;
  }
  ASSERT_TRUE(Rejoined());
  ASSERT_TRUE(SendAndSee("after the rolling restart", 3));
  EXPECT_TRUE(TextShows("#messages", "after the rolling restart"));
  EXPECT_FALSE(absl::StrContains(TextOf("#notices"), "gap")) << TextOf("#notices");
  // A gap: the page's socket goes away (without reconnecting), another user
  // posts into the room meanwhile, the page joins again: its next message
  // skips a sequence number, and the page says so.
  auto other = Login(cluster_->app_port(1), "pages-other");
  ASSERT_TRUE(other.ok()) << other.status();
  auto other_socket = OpenSocket(cluster_->app_port(1), *other);
  ASSERT_TRUE(other_socket.ok()) << other_socket.status();
  ASSERT_TRUE(Join(*other_socket->ws, "pages-room").ok());
  auto away = driver_->Execute("retries = kMaxRetries; ws.close(4000); return true;");
  ASSERT_TRUE(away.ok()) << away.status();
  ASSERT_TRUE(TextShows("#status", "closed 4000"));
  auto missed = HttpCall(cluster_->app_port(1),
                         RadarPost("/broadcast",
                                   {{"room", "pages-room"}, {"msg", "while the page was away"}},
                                   *other));
  ASSERT_TRUE(missed.ok()) << missed.status();
  ASSERT_EQ(missed->status, 200) << Describe(*missed);
  ASSERT_TRUE(ClickOn("#join").ok());
  ASSERT_TRUE(Rejoined());
  ASSERT_TRUE(SendAndSee("back again", 5));
  EXPECT_TRUE(TextShows("#notices", "gap in pages-room: #3 \u2192 #5, 1 message(s) missed"));
  EXPECT_FALSE(absl::StrContains(TextOf("#messages"), "while the page was away"));

  const std::set<std::string> pods = PodsInStrip();
  EXPECT_GE(pods.size(), 2u) << "the strip shows one pod only";
  EXPECT_TRUE(TextShows("#cart-count", std::to_string(kHammerAdds + 1)));
  ASSERT_TRUE(Screenshot("radar-page.png").ok());
  // Every input has a label, and on a phone-sized window nothing needs a
  // sideways scroll.
  auto labelled = driver_->Execute(
      "return [...document.querySelectorAll('input')].filter((i) => i.labels.length == 0)"
      ".map((i) => i.id);");
  ASSERT_TRUE(labelled.ok()) << labelled.status();
  EXPECT_TRUE(labelled->empty()) << "inputs without a label: " << labelled->dump();
  ASSERT_TRUE(driver_->SetWindowSize(390, 844).ok());
  auto fits = driver_->Execute(
      "return document.documentElement.scrollWidth <= document.documentElement.clientWidth;");
  ASSERT_TRUE(fits.ok()) << fits.status();
  EXPECT_EQ(*fits, true) << "the page is wider than a phone's screen";
  ASSERT_TRUE(driver_->SetWindowSize(1100, 1500).ok());
  fprintf(stderr, "[e2e] radar page: %zu pods in the strip, rolling restart done after %s\n",
          pods.size(), absl::FormatDuration(absl::Now() - start).c_str());

  // The status page of each pod says what statesidectl says.
  std::ifstream password_file(cluster_->dir() + "/secrets/redis_password");
  std::string redis_password;
  std::getline(password_file, redis_password);
  ASSERT_GE(redis_password.size(), 16u) << "no Redis password in " << cluster_->dir();
  RunResult listed = cluster_->Statesidectl(1, {"instances"});
  ASSERT_EQ(listed.exit_status, 0) << listed.err;
  const nlohmann::json instances = nlohmann::json::parse(listed.out, nullptr, false);
  ASSERT_TRUE(instances.contains("instances")) << listed.out;
  ASSERT_EQ(instances["instances"].size(), static_cast<size_t>(kPods)) << listed.out;
  for (int pod = 1; pod <= kPods; ++pod) {
    SCOPED_TRACE(LocalCluster::Instance(pod));
    RunResult info_run = cluster_->Statesidectl(pod, {"info"});
    ASSERT_EQ(info_run.exit_status, 0) << info_run.err;
    const nlohmann::json info = nlohmann::json::parse(info_run.out, nullptr, false);
    ASSERT_TRUE(info.is_object()) << info_run.out;
    // A view starts the next registry listing and shows the last one: the
    // page is loaded again (as its own refresh would, sooner) until it lists
    // every instance statesidectl listed.
    const std::string status_page =
        absl::StrCat("http://127.0.0.1:", cluster_->admin_port(pod), "/");
    std::string listed_here;
    EXPECT_TRUE(WaitFor(
        [&] {
          if (!driver_->Navigate(status_page).ok()) return false;
          listed_here = TextOf("#instances");
          // Each row: id, drain state, ready, as statesidectl has them.
          for (const auto& instance : instances["instances"]) {
            const std::string row = absl::StrCat(
                instance.value("id", "?"), " ",
                absl::AsciiStrToUpper(instance.value("drain_state", "?")), " ",
                instance.value("ready", false) ? "yes" : "no");
            if (!absl::StrContains(listed_here, row)) return false;
          }
          return true;
        },
        absl::Seconds(20), absl::Milliseconds(300)))
        << "the status page's instances: " << listed_here;
    EXPECT_EQ(TextOf("#instance-id"), info.value("id", "?"));
    EXPECT_EQ(TextOf("#version"), info.value("version", "?"));
    EXPECT_EQ(absl::AsciiStrToUpper(TextOf("#drain-state")),
              absl::AsciiStrToUpper(info.value("drain_state", "?")));
    EXPECT_TRUE(absl::StartsWith(TextOf("#ready"), info.value("ready", false) ? "yes" : "no"))
        << TextOf("#ready");
    EXPECT_TRUE(absl::EndsWith(TextOf("#host-pid"), absl::StrCat("/ ", info.value("pid", 0))))
        << TextOf("#host-pid");
    EXPECT_EQ(TextOf("#backend-kind"), info.value("backend", "?"));
    EXPECT_TRUE(TextShows("#keys", "k0"));
    // Never a secret: the Redis password is in no page.
    EXPECT_FALSE(absl::StrContains(driver_->PageSource(), redis_password));
    EXPECT_TRUE(TextShows("#sessions", "live"));
    if (pod == 1) {
      ASSERT_TRUE(Screenshot("admin-status-page.png").ok());
    }
  }
  fprintf(stderr, "[e2e] pages checked in %s\n",
          absl::FormatDuration(absl::Now() - start).c_str());
}

}  // namespace
}  // namespace stateside::testing
