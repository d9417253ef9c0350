// End-to-end: test 4: a rolling restart of all 3 pods, one at a
// time with deploy/local/restart.sh, under continuous load through nginx
// (wrk: GET /me, and every fourth request a POST /analytics/opt-out write)
// → not one failed request or connection error, each pod stops
// cleanly (restart.sh checks exit 0), a write in flight on the restarted pod
// completes, and every session is still valid afterwards on every pod.
// The pods run radar-app, or the Node.js example app (client/node/example)
// when STATESIDE_LOCAL_APP=node (ctest's e2e_rolling_restart_node): the same
// routes and drain, so the same test.
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/e2e/local_cluster.h"
#include "tests/e2e/radar_calls.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"
#include "tests/support/web_client.h"

namespace stateside::testing {
namespace {

constexpr char kWrk[] = "/usr/bin/wrk";
constexpr int kPods = 3;
constexpr int kUsers = 20;
constexpr int kConnections = 16;  // wrk's -c
// The load's upper bound: it normally ends (SIGINT) as soon as the three
// restarts are done, ~15-25 s; the test fails if they outlast it.
constexpr absl::Duration kMaxLoad = absl::Seconds(120);

// wrk's Lua script: each request carries one of the users' cookies in turn;
// every fourth is a POST (an opt-out write, which nginx does not retry on
// another pod, so a pod that drops it fails the test), the rest GET /me.
// response() counts anything but 200 (wrk's own status error count lets 3xx
// pass), the POSTs answered 200 (their body, unlike /me's, names the
// "subject") and the instances that answered; done() prints every counter on
// one fixed line for the test to parse. A failed POST counts as non-200 or as
// a socket error like any request; `posts` - `posts_ok` is at most the
// requests in flight when wrk is stopped.
std::string WrkScript(const std::vector<std::string>& cookies) {
  std::string list;
  for (const std::string& c : cookies) absl::StrAppend(&list, "  \"", c, "\",\n");
  return absl::StrCat("local cookies = {\n", list, "}\n", R"lua(
local threads = {}
function setup(thread)
  thread:set("offset", #threads)
  table.insert(threads, thread)
end
function init(args)
  counter = offset
  responses = 0
  non200 = 0
  posts = 0
  posts_ok = 0
  first_bad = ""
  seen = {}
end
function request()
  counter = counter + 1
  local cookie = cookies[(counter % #cookies) + 1]
  if counter % 4 == 0 then
    posts = posts + 1
    local body = string.format('{"opted_out":%s}', counter % 8 == 0 and "true" or "false")
    return wrk.format("POST", "/analytics/opt-out",
                      { ["Cookie"] = cookie, ["Content-Type"] = "application/json" }, body)
  end
  return wrk.format("GET", "/me", { ["Cookie"] = cookie })
end
function response(status, headers, body)
  responses = responses + 1
  if status == 200 and string.find(body, '"subject"', 1, true) then posts_ok = posts_ok + 1 end
  local instance = headers["X-Instance-Id"] or headers["x-instance-id"] or "none"
  seen[instance] = (seen[instance] or 0) + 1
  if status ~= 200 then
    non200 = non200 + 1
    if first_bad == "" then first_bad = status .. " " .. instance .. " " .. body end
  end
end
function done(summary, latency, requests)
  local responses, non200, posts, posts_ok, seen, bad = 0, 0, 0, 0, {}, ""
  for _, t in ipairs(threads) do
    responses = responses + t:get("responses")
    non200 = non200 + t:get("non200")
    posts = posts + t:get("posts")
    posts_ok = posts_ok + t:get("posts_ok")
    if bad == "" then bad = t:get("first_bad") end
    for instance, n in pairs(t:get("seen")) do seen[instance] = (seen[instance] or 0) + n end
  end
  local instances = ""
  for instance, n in pairs(seen) do instances = instances .. instance .. "=" .. n .. "," end
  io.write(string.format(
      "E2E_SUMMARY requests=%d responses=%d non200=%d posts=%d posts_ok=%d connect=%d " ..
      "read=%d write=%d timeout=%d status=%d instances=%s\n",
      summary.requests, responses, non200, posts, posts_ok, summary.errors.connect,
      summary.errors.read,
      summary.errors.write, summary.errors.timeout, summary.errors.status, instances))
  io.write("E2E_FIRST_BAD " .. bad .. "\n")
end
)lua");
}

// The counters of the E2E_SUMMARY line ("instances" as its text).
std::optional<std::map<std::string, std::string>> ParseSummary(const std::string& output) {
  const size_t at = output.find("E2E_SUMMARY ");
  if (at == std::string::npos) return std::nullopt;
  const std::string line = output.substr(at + 12, output.find('\n', at) - at - 12);
  std::map<std::string, std::string> fields;
  for (absl::string_view field : absl::StrSplit(line, ' ', absl::SkipEmpty())) {
    std::pair<std::string, std::string> kv = absl::StrSplit(field, absl::MaxSplits('=', 1));
    fields[kv.first] = kv.second;
  }
  return fields;
}

int64_t Counter(const std::map<std::string, std::string>& fields, const std::string& name) {
  int64_t n = -1;
  auto it = fields.find(name);
  if (it == fields.end() || !absl::SimpleAtoi(it->second, &n)) return -1;
  return n;
}

class RollingRestartE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(access(kWrk, X_OK), 0)
        << kWrk << " is missing: install the Debian package wrk (scripts/test does)";
    const char* app = std::getenv("STATESIDE_LOCAL_APP");
    app_ = app != nullptr && *app ? app : "radar";
    // Test hooks: the slow in-flight write of each restart (X-Radar-Delay-Ms).
    auto cluster = LocalCluster::Start(
        kPods, {{"RADAR_TEST_HOOKS", "true"}, {"STATESIDE_LOCAL_APP", app_}});
    ASSERT_TRUE(cluster.ok()) << cluster.status().message();
    cluster_ = *std::move(cluster);
    // The pods run the app asked for (its program is the first argument).
    for (int pod = 1; pod <= kPods; ++pod) {
      std::string pid;
      std::ifstream(absl::StrCat(cluster_->dir(), "/pod-", pod, "/app.pid")) >> pid;
      std::string program;
      std::getline(std::ifstream("/proc/" + pid + "/cmdline"), program, '\0');
      EXPECT_TRUE(absl::EndsWith(program, app_ == "node" ? "node" : "radar-app"))
          << "pod-" << pod << " runs " << program << ", not the " << app_ << " app";
    }
  }
  void TearDown() override {
    if (cluster_ == nullptr) return;
    if (HasFailure()) {
      fprintf(stderr, "[e2e] logs after the failure:\n%s", cluster_->LogTails().c_str());
    }
    StopAndCheck(*cluster_);
  }

  // Size of nginx's access log (it grows with every request served).
  int64_t AccessLogSize() const {
    std::ifstream in(cluster_->dir() + "/nginx/access.log", std::ios::ate | std::ios::binary);
    return in ? static_cast<int64_t>(in.tellg()) : int64_t{-1};
  }
  // Waits until nginx has logged about `requests` more requests.
  bool LoadFlows(int requests) const {
    const int64_t from = AccessLogSize();
    return WaitFor([&] { return AccessLogSize() > from + 150 * requests; }, absl::Seconds(15));
  }

  std::string app_;  // radar or node
  std::unique_ptr<LocalCluster> cluster_;
  TempDir dir_;
};

// Besides wrk's GET /me through nginx, a slow POST /cart is in flight on each
// pod as it is restarted. nginx retries a failed GET on another pod, so the
// load alone does not see a pod that goes away without draining (checked:
// SIGKILL, or STATESIDE_DRAIN_TIMEOUT=0s, leave wrk at zero errors); that
// write, sent to the pod directly, and restart.sh's clean-exit check do.
TEST_F(RollingRestartE2eTest, RestartingEveryPodUnderLoadFailsNoRequestAndKeepsEverySession) {
  const int nginx = cluster_->nginx_port();
  std::vector<std::string> cookies;
  for (int i = 0; i < kUsers; ++i) {
    auto cookie = Login(nginx, absl::StrCat("user-", i));
    ASSERT_TRUE(cookie.ok()) << cookie.status();
    cookies.push_back(*cookie);
  }
  auto writer = Login(nginx, "in-flight-writer");
  ASSERT_TRUE(writer.ok()) << writer.status();
  { std::ofstream(dir_.File("load.lua")) << WrkScript(cookies); }

  // wrk at the lowest priority: on 2 cores a closed-loop load generator
  // otherwise starves the restart scripts (each restart took 10-15 s instead
  // of ~4 s), while nginx and the pods are what is under test. It runs until
  // the restarts are over (SIGINT: wrk stops and reports), at most kMaxLoad.
  SubprocessOptions options;
  options.argv = {"nice", "-n", "19", kWrk, "-t2", absl::StrCat("-c", kConnections),
                  absl::StrCat("-d", absl::ToInt64Seconds(kMaxLoad), "s"), "--timeout", "5s",
                  "-s", dir_.File("load.lua"), absl::StrCat("http://127.0.0.1:", nginx, "/me")};
  options.log_path = dir_.File("wrk.log");
  auto wrk = Subprocess::Start(options);
  ASSERT_TRUE(wrk.ok()) << wrk.status();
  const absl::Time load_start = absl::Now();
  ASSERT_TRUE(LoadFlows(500)) << "no load reached nginx's access log; wrk: " << wrk->ReadLog();

  std::vector<absl::StatusOr<HttpResponse>> writes(kPods + 1, absl::UnknownError("not sent"));
  for (int pod = 1; pod <= kPods; ++pod) {
    // The write sleeps 5 s (after reading the session) before writing. The
    // pod accepts it: restart.sh takes a moment to signal and the pod keeps
    // serving through its 1 s pre-stop delay. The drain begins well before
    // the write ends, so it must wait for it (and its answer says
    // Connection: close). Waiting here for proof that the write is in flight
    // (e.g. its session read) cost seconds under ASan, enough for the write to
    // end before the drain began.
    HttpRequest slow = RadarPost("/cart", {{"item", absl::StrCat("in-flight-", pod)}}, *writer);
    slow.headers.emplace_back("X-Radar-Delay-Ms", "5000");
    std::thread writer_thread([&, pod] {
      writes[pod] = HttpCall(cluster_->app_port(pod), slow, absl::Seconds(20));
    });

    const absl::Time start = absl::Now();
    RunResult restart = cluster_->Restart(pod);
    fprintf(stderr, "[e2e] restart.sh %d: exit %d after %s (load running for %s)\n", pod,
            restart.exit_status, absl::FormatDuration(absl::Now() - start).c_str(),
            absl::FormatDuration(absl::Now() - load_start).c_str());
    writer_thread.join();
    // Non-fatal from here: wrk's report below still says what the load saw.
    EXPECT_EQ(restart.exit_status, 0) << "restart.sh " << pod << "\n--- stdout:\n"
                                      << restart.out << "--- stderr:\n" << restart.err;
    if (const auto& written = writes[pod]; written.ok()) {
      EXPECT_EQ(written->status, 200) << "in-flight write on pod " << pod << ": "
                                      << Describe(*written);
      // Answered during the drain (Connection: close), so it was in flight then.
      EXPECT_FALSE(written->keep_alive) << "in-flight write on pod " << pod;
    } else {
      ADD_FAILURE() << "in-flight write on pod " << pod << ": " << written.status();
    }
    // The restarted pod serves again before the next one goes.
    ASSERT_TRUE(LoadFlows(200)) << "the load stopped after restarting pod " << pod;
  }
  ASSERT_TRUE(wrk->running()) << "the restarts outlasted " << kMaxLoad << " of load";
  wrk->Signal(SIGINT);

  const std::optional<int> wrk_exit = wrk->Wait(absl::Seconds(30));
  const std::string output = wrk->ReadLog();
  fprintf(stderr, "[e2e] wrk:\n%s", output.c_str());
  ASSERT_EQ(wrk_exit, 0) << output;
  auto summary = ParseSummary(output);
  ASSERT_TRUE(summary.has_value()) << "no E2E_SUMMARY line from the Lua done(): " << output;
  EXPECT_GE(Counter(*summary, "requests"), 1000) << "hardly any load: " << output;
  EXPECT_EQ(Counter(*summary, "responses"), Counter(*summary, "requests")) << output;
  EXPECT_EQ(Counter(*summary, "non200"), 0) << output;
  // The writes, on their own: many, and every one answered but those still in
  // flight when wrk stopped (at most one per connection).
  EXPECT_GE(Counter(*summary, "posts_ok"), 200) << "hardly any writes in the load: " << output;
  EXPECT_LE(Counter(*summary, "posts") - Counter(*summary, "posts_ok"), kConnections)
      << "POSTs sent but not answered 200: " << output;
  EXPECT_EQ(Counter(*summary, "status"), 0) << output;
  for (const char* error : {"connect", "read", "write", "timeout"}) {
    EXPECT_EQ(Counter(*summary, error), 0) << "socket errors (" << error << "): " << output;
  }
  // wrk's own report agrees (it prints these lines only when non-zero).
  EXPECT_EQ(output.find("Non-2xx or 3xx responses"), std::string::npos) << output;
  EXPECT_EQ(output.find("Socket errors"), std::string::npos) << output;

  // Every session survived, on every (restarted) pod and through nginx.
  for (int i = 0; i < kUsers; ++i) {
    for (int port : {nginx, cluster_->app_port(1), cluster_->app_port(2), cluster_->app_port(3)}) {
      auto me = HttpCall(port, RadarGet("/me", cookies[i]));
      ASSERT_TRUE(me.ok()) << me.status();
      EXPECT_EQ(me->status, 200) << "user-" << i << " on port " << port << ": " << Describe(*me);
      EXPECT_EQ(BodyJson(*me).value("user", ""), absl::StrCat("user-", i)) << me->body;
    }
  }
  // And so did the writes that were in flight during the drains.
  auto me = HttpCall(nginx, RadarGet("/me", *writer));
  ASSERT_TRUE(me.ok()) << me.status();
  ASSERT_EQ(me->status, 200) << Describe(*me);
  EXPECT_EQ(BodyJson(*me)["cart"],
            (nlohmann::json{"in-flight-1", "in-flight-2", "in-flight-3"}))
      << me->body;
}

}  // namespace
}  // namespace stateside::testing
