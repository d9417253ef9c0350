// The C++ client on the frame socket (ClientOptions::frames), against the
// real sidecar on the memory store and on a real redis-server: Get and
// Update travel as frames (the sidecar counts them under
// SessionService/Frames.*), everything else over gRPC; a sidecar without
// the frame socket is reached over gRPC alone, with the same answers.
#include <map>
#include <memory>
#include <string>
#include <tuple>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "stateside/client.h"
#include "tests/support/sidecar_process.h"
#include "tests/support/temp_dir.h"
#include "tests/unit/admin/http_test_client.h"

namespace stateside {
namespace {

// (on Redis, the sidecar serves the frame socket)
using Param = std::tuple<bool, bool>;

class FramesClientTest : public ::testing::TestWithParam<Param> {
 protected:
  void SetUp() override {
    const auto [on_redis, frames] = GetParam();
    std::map<std::string, std::string> env;
    if (!frames) env["STATESIDE_FRAMES"] = "false";
    auto started = testing::StartBackendSidecar(
        on_redis, {.socket_path = dir_.File("api.sock"),
                   .env = std::move(env),
                   .log_path = dir_.File("sidecar.log")});
    ASSERT_TRUE(started.ok()) << started.status();
    backend_ = std::make_unique<testing::BackendSidecar>(*std::move(started));
    ClientOptions options;
    options.socket_path = dir_.File("api.sock");
    options.call_timeout = absl::Seconds(10);
    auto client = Client::Connect(options);
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = *std::move(client);
  }

  void TearDown() override {
    client_.reset();
    if (backend_ != nullptr) testing::StopSidecar(backend_->sidecar.process, absl::Seconds(10));
  }

  // The sum of stateside_rpc_requests_total for `method` (all codes).
  double Requests(std::string_view method) {
    auto got = testing::Exchange(backend_->sidecar.admin_port, testing::GetRequest("/metrics"));
    if (!got.has_value()) return -1;
    const std::string label = absl::StrCat("method=\"", std::string(method), "\"");
    double sum = 0;
    for (absl::string_view line : absl::StrSplit(got->body, '\n')) {
      if (!absl::StartsWith(line, "stateside_rpc_requests_total{") ||
          !absl::StrContains(line, label)) {
        continue;
      }
      double value = 0;
      const size_t space = line.rfind(' ');
      if (space != absl::string_view::npos && absl::SimpleAtod(line.substr(space + 1), &value)) {
        sum += value;
      }
    }
    return sum;
  }

  testing::TempDir dir_;
  std::unique_ptr<testing::BackendSidecar> backend_;
  std::unique_ptr<Client> client_;
};

TEST_P(FramesClientTest, GetAndUpdateTakeTheFrameSocketWhenItIsServed) {
  const bool frames = std::get<1>(GetParam());
  absl::StatusOr<Session> created = client_->CreateSession("", {{"cart", "[1]"}});
  ASSERT_TRUE(created.ok()) << created.status();
  const SessionRef ref = SessionRef::Id(created->info.id);

  absl::StatusOr<SessionInfo> updated = client_->UpdateSession(ref, {{"cart", "[1,2]"}});
  ASSERT_TRUE(updated.ok()) << updated.status();
  absl::StatusOr<Session> got = client_->GetSession(ref);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->attributes.at("cart"), "[1,2]");
  EXPECT_EQ(got->info.version, updated->version);
  // A version conflict and an unknown session: the errors of the gRPC path.
  absl::StatusOr<SessionInfo> conflict =
      client_->UpdateSession(ref, {{"cart", "[]"}}, {}, updated->version + 7);
  EXPECT_EQ(conflict.status().code(), absl::StatusCode::kAborted) << conflict.status();
  EXPECT_EQ(client_->GetSession(SessionRef::Id("none")).status().code(),
            absl::StatusCode::kNotFound);
  // Touch is not a frame call: gRPC carries it either way.
  EXPECT_TRUE(client_->TouchSession(ref).ok());

  EXPECT_EQ(Requests("SessionService/Frames.Get"), frames ? 2 : 0);
  EXPECT_EQ(Requests("SessionService/Frames.Update"), frames ? 2 : 0);
  EXPECT_EQ(Requests("SessionService/Pipe.Get"), frames ? 0 : 2);
  EXPECT_EQ(Requests("SessionService/Pipe.Touch"), 1);
}

TEST_P(FramesClientTest, ManyAsyncCallsInFlightEachGetTheirOwnAnswer) {
  constexpr int kSessions = 50;
  std::vector<std::string> ids;
  for (int i = 0; i < kSessions; ++i) {
    absl::StatusOr<Session> s = client_->CreateSession("", {{"n", std::to_string(i)}});
    ASSERT_TRUE(s.ok()) << s.status();
    ids.push_back(s->info.id);
  }
  absl::Mutex mu;
  int answered = 0;
  int right = 0;
  for (int round = 0; round < 20; ++round) {
    for (int i = 0; i < kSessions; ++i) {
      client_->GetSessionAsync(SessionRef::Id(ids[i]), true, [&, i](absl::StatusOr<Session> s) {
        absl::MutexLock lock(&mu);
        ++answered;
        if (s.ok() && s->attributes.at("n") == std::to_string(i)) ++right;
      });
    }
  }
  absl::MutexLock lock(&mu);
  mu.Await(absl::Condition(
      +[](int* n) { return *n == 20 * kSessions; }, &answered));
  EXPECT_EQ(right, 20 * kSessions);
}

INSTANTIATE_TEST_SUITE_P(Sidecars, FramesClientTest,
                         ::testing::Combine(::testing::Bool(), ::testing::Bool()),
                         [](const ::testing::TestParamInfo<Param>& info) {
                           return absl::StrCat(std::get<0>(info.param) ? "Redis" : "Memory",
                                               std::get<1>(info.param) ? "Frames" : "NoFrames");
                         });

}  // namespace
}  // namespace stateside
