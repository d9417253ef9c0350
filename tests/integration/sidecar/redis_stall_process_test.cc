// A stalled Redis against the real binary: with its gRPC threads at their
// default (two: the sidecar is pinned to two CPUs), session calls waiting on a paused
// redis-server (SIGSTOP: it accepts nothing and answers nothing) must not
// hold those threads, so the calls that need no Redis (GetInstance, a Pipe
// call with a malformed key) still answer; once Redis resumes, every waiting
// call answers what it would have. The calls waiting are observed through
// stateside_rpc_in_flight on /metrics, never a sleep.
#include <sched.h>

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "stateside/v1/analytics.grpc.pb.h"
#include "stateside/v1/lifecycle.grpc.pb.h"
#include "stateside/v1/session.grpc.pb.h"
#include "tests/support/redis_server.h"
#include "tests/support/sidecar_process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_secrets.h"
#include "tests/support/wait.h"
#include "tests/unit/admin/http_test_client.h"

namespace stateside {
namespace {

namespace v1 = ::stateside::v1;

void SetDeadline(grpc::ClientContext* context, absl::Duration in) {
  context->set_deadline(absl::ToChronoTime(absl::Now() + in));
}

// A unary call run on its own thread, for calls that wait on the paused Redis.
struct Pending {
  grpc::ClientContext context;
  grpc::Status status;
  std::thread thread;

  ~Pending() {
    if (thread.joinable()) thread.join();
  }
};

// The first two CPUs this process may run on (fewer if it has fewer).
std::vector<int> TwoCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE && cpus.size() < 2; ++cpu) {
    if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  }
  return cpus;
}

class RedisStallProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto redis = testing::RedisServer::Start();
    ASSERT_TRUE(redis.ok()) << redis.status();
    redis_ = *std::move(redis);
    // The gRPC thread count is left at the binary's default. The command
    // timeout outlasts the test, so a call waiting on Redis keeps waiting.
    auto sidecar = testing::StartSidecarProcess(
        {.socket_path = socket_,
         .env = {{"REDIS_URL", redis_->url()},
                 {"SESSION_ENCRYPTION_KEY", testing::kTestKeyHex},
                 {"SESSION_SECRET", testing::kTestSecret},
                 {"STATESIDE_REDIS_COMMAND_TIMEOUT", "60s"},
                 {"INSTANCE_ID", "stall"}},
         .clear_env = true,
         .log_path = dir_.File("sidecar.log"),
         // gRPC sizes its callback threads by the cores it sees: pinned to
         // two, it has as many as the calls below block, on any machine.
         .cpus = TwoCpus()});
    ASSERT_TRUE(sidecar.ok()) << sidecar.status();
    sidecar_.emplace(*std::move(sidecar));
    port_ = sidecar_->admin_port;
    channel_ = grpc::CreateChannel("unix:" + socket_, grpc::InsecureChannelCredentials());
    sessions_ = v1::SessionService::NewStub(channel_);
    ASSERT_TRUE(testing::WaitFor([&] { return !NewSession("probe").empty(); }, absl::Seconds(20)))
        << sidecar_->process.ReadLog();
  }

  void TearDown() override { ResumeAndJoin(); }

  // Lets whatever waits on Redis answer, and joins the pending calls; a
  // test runs it before the responses they write go (absl::Cleanup), also
  // when an assertion returns early.
  void ResumeAndJoin() {
    if (redis_ != nullptr) redis_->Resume();
    pending_.clear();
  }

  // A new session of `user`: its id, "" on failure.
  std::string NewSession(const std::string& user) {
    v1::CreateSessionRequest request;
    request.set_user_id(user);
    v1::CreateSessionResponse response;
    grpc::ClientContext context;
    SetDeadline(&context, absl::Seconds(5));
    if (!sessions_->Create(&context, request, &response).ok()) return "";
    return response.session().metadata().id();
  }

  // Runs `call` (30 s deadline) on a thread of its own: it may wait on Redis.
  void StartPending(std::function<grpc::Status(grpc::ClientContext*)> call) {
    auto pending = std::make_unique<Pending>();
    SetDeadline(&pending->context, absl::Seconds(30));
    pending->thread = std::thread([pending = pending.get(), call = std::move(call)] {
      pending->status = call(&pending->context);
    });
    pending_.push_back(std::move(pending));
  }

  // stateside_rpc_in_flight on /metrics; -1 if it cannot be read.
  double InFlight() {
    auto connection = testing::RawConnection::Connect(port_);
    if (!connection.ok() || !connection->Send(testing::GetRequest("/metrics"))) return -1;
    std::optional<testing::RawResponse> got = connection->ReadResponse(absl::Seconds(5));
    if (!got.has_value()) return -1;
    for (absl::string_view line : absl::StrSplit(got->body, '\n')) {
      double value = 0;
      if (absl::ConsumePrefix(&line, "stateside_rpc_in_flight ") &&
          absl::SimpleAtod(line, &value)) {
        return value;
      }
    }
    return -1;
  }

  // Waits until `n` calls are in flight (entered, not answered).
  ::testing::AssertionResult InFlightReaches(double n) {
    double last = -1;
    if (testing::WaitFor([&] { return (last = InFlight()) == n; }, absl::Seconds(10))) {
      return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure() << "stateside_rpc_in_flight is " << last
                                         << ", expected " << n;
  }

  // While Redis is paused: calls that need no Redis still answer at once.
  void ExpectServedWithoutRedis() {
    auto lifecycle = v1::LifecycleService::NewStub(channel_);
    v1::GetInstanceRequest request;
    v1::GetInstanceResponse response;
    grpc::ClientContext context;
    SetDeadline(&context, absl::Seconds(3));
    const grpc::Status status = lifecycle->GetInstance(&context, request, &response);
    EXPECT_TRUE(status.ok()) << "GetInstance while Redis is paused: " << status.error_code()
                             << " " << status.error_message()
                             << " (gRPC threads held by calls waiting on Redis)";
    EXPECT_EQ(response.instance().id(), "stall");
    // A session call decided without Redis, on another unary call.
    v1::GetSessionRequest get;
    get.mutable_key()->set_id("not-a-session-id");
    v1::GetSessionResponse got;
    grpc::ClientContext get_context;
    SetDeadline(&get_context, absl::Seconds(3));
    EXPECT_EQ(sessions_->Get(&get_context, get, &got).error_code(), grpc::StatusCode::NOT_FOUND);
  }

  testing::TempDir dir_;
  std::string socket_ = dir_.File("api.sock");
  std::unique_ptr<testing::RedisServer> redis_;
  std::optional<testing::SidecarProcess> sidecar_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::SessionService::Stub> sessions_;
  int port_ = 0;
  std::vector<std::unique_ptr<Pending>> pending_;  // joined after Resume
};

TEST_F(RedisStallProcessTest, DestroysWaitingOnAPausedRedisHoldNoGrpcThread) {
  const std::string first = NewSession("alice");
  const std::string second = NewSession("bob");
  const std::string piped = NewSession("carol");
  ASSERT_FALSE(first.empty() || second.empty() || piped.empty());
  ASSERT_TRUE(InFlightReaches(0));
  redis_->Pause();

  // Two unary Destroys, as many as gRPC has threads (the sidecar runs on two
  // CPUs).
  std::vector<std::string> ids = {first, second};
  std::vector<v1::DestroySessionResponse> destroyed(ids.size());
  absl::Cleanup join = [this] { ResumeAndJoin(); };
  for (size_t i = 0; i < ids.size(); ++i) {
    StartPending([this, id = ids[i], out = &destroyed[i]](grpc::ClientContext* context) {
      v1::DestroySessionRequest request;
      request.mutable_key()->set_id(id);
      return sessions_->Destroy(context, request, out);
    });
  }
  ASSERT_TRUE(InFlightReaches(2));
  ExpectServedWithoutRedis();

  // A Pipe with a Destroy waiting on Redis and a Get that needs none: the
  // Get is answered while the Destroy waits.
  grpc::ClientContext pipe_context;
  SetDeadline(&pipe_context, absl::Seconds(30));
  auto pipe = sessions_->Pipe(&pipe_context);
  v1::PipeRequest calls;
  v1::PipeCall* destroy = calls.add_calls();
  destroy->set_id(1);
  destroy->mutable_destroy()->mutable_key()->set_id(piped);
  v1::PipeCall* get = calls.add_calls();
  get->set_id(2);
  get->mutable_get()->mutable_key()->set_id("not-a-session-id");
  ASSERT_TRUE(pipe->Write(calls));
  v1::PipeResponse answers;
  ASSERT_TRUE(pipe->Read(&answers));
  ASSERT_EQ(answers.results_size(), 1);
  EXPECT_EQ(answers.results(0).id(), 2u);
  EXPECT_EQ(answers.results(0).code(), grpc::StatusCode::NOT_FOUND);
  ASSERT_TRUE(InFlightReaches(3));  // the three Destroys, still waiting
  ExpectServedWithoutRedis();

  redis_->Resume();
  for (size_t i = 0; i < pending_.size(); ++i) {
    pending_[i]->thread.join();
    EXPECT_TRUE(pending_[i]->status.ok()) << pending_[i]->status.error_message();
    EXPECT_TRUE(destroyed[i].existed()) << "Destroy of " << ids[i];
  }
  ASSERT_TRUE(pipe->Read(&answers));
  ASSERT_EQ(answers.results_size(), 1);
  EXPECT_EQ(answers.results(0).id(), 1u);
  EXPECT_EQ(answers.results(0).code(), grpc::StatusCode::OK);
  EXPECT_TRUE(answers.results(0).destroy().existed());
  pipe->WritesDone();
  EXPECT_TRUE(pipe->Finish().ok());
  EXPECT_TRUE(InFlightReaches(0));

  // They are gone.
  for (const std::string& id : {first, second, piped}) {
    v1::GetSessionRequest request;
    request.mutable_key()->set_id(id);
    v1::GetSessionResponse response;
    grpc::ClientContext context;
    SetDeadline(&context, absl::Seconds(5));
    EXPECT_EQ(sessions_->Get(&context, request, &response).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
}

// The multi-step calls run on the offload pool: two logouts everywhere
// waiting on the paused Redis hold no gRPC thread either.
TEST_F(RedisStallProcessTest, LogoutsEverywhereWaitingOnAPausedRedisHoldNoGrpcThread) {
  const std::string first = NewSession("dave");
  const std::string second = NewSession("erin");
  ASSERT_FALSE(first.empty() || second.empty());
  ASSERT_TRUE(InFlightReaches(0));
  redis_->Pause();

  const std::vector<std::string> users = {"dave", "erin"};
  std::vector<v1::DestroyUserSessionsResponse> destroyed(users.size());
  absl::Cleanup join = [this] { ResumeAndJoin(); };
  for (size_t i = 0; i < users.size(); ++i) {
    StartPending([this, user = users[i], out = &destroyed[i]](grpc::ClientContext* context) {
      v1::DestroyUserSessionsRequest request;
      request.set_user_id(user);
      return sessions_->DestroyUserSessions(context, request, out);
    });
  }
  ASSERT_TRUE(InFlightReaches(2));
  ExpectServedWithoutRedis();

  redis_->Resume();
  for (size_t i = 0; i < pending_.size(); ++i) {
    pending_[i]->thread.join();
    EXPECT_TRUE(pending_[i]->status.ok()) << pending_[i]->status.error_message();
    EXPECT_EQ(destroyed[i].destroyed(), 1u) << "logout of " << users[i];
  }
  EXPECT_TRUE(InFlightReaches(0));
}

// Every other kind of session call waiting on the paused Redis: the async
// ones (Touch, an anonymous Create) and the offloaded ones (a user's Create,
// Regenerate, ListUserSessions, SetOptOut), more of them than gRPC has
// threads.
TEST_F(RedisStallProcessTest, EveryKindOfSessionCallWaitingOnAPausedRedisHoldsNoGrpcThread) {
  const std::string touched = NewSession("frank");
  const std::string regenerated = NewSession("");
  ASSERT_FALSE(touched.empty() || regenerated.empty());
  ASSERT_TRUE(InFlightReaches(0));
  redis_->Pause();

  v1::TouchSessionResponse touch;
  v1::CreateSessionResponse anonymous, owned;
  v1::RegenerateSessionResponse regenerate;
  v1::ListUserSessionsResponse listed;
  v1::SetOptOutResponse opted_out;
  auto analytics = v1::AnalyticsService::NewStub(channel_);
  absl::Cleanup join = [this] { ResumeAndJoin(); };
  StartPending([&](grpc::ClientContext* context) {
    v1::TouchSessionRequest request;
    request.mutable_key()->set_id(touched);
    return sessions_->Touch(context, request, &touch);
  });
  StartPending([&](grpc::ClientContext* context) {
    return sessions_->Create(context, v1::CreateSessionRequest(), &anonymous);
  });
  StartPending([&](grpc::ClientContext* context) {
    v1::CreateSessionRequest request;
    request.set_user_id("grace");
    return sessions_->Create(context, request, &owned);
  });
  StartPending([&](grpc::ClientContext* context) {
    v1::RegenerateSessionRequest request;
    request.mutable_key()->set_id(regenerated);
    return sessions_->Regenerate(context, request, &regenerate);
  });
  StartPending([&](grpc::ClientContext* context) {
    v1::ListUserSessionsRequest request;
    request.set_user_id("frank");
    return sessions_->ListUserSessions(context, request, &listed);
  });
  StartPending([&](grpc::ClientContext* context) {
    v1::SetOptOutRequest request;
    request.set_subject("frank");
    request.set_opted_out(true);
    return analytics->SetOptOut(context, request, &opted_out);
  });
  ASSERT_TRUE(InFlightReaches(6));
  ExpectServedWithoutRedis();

  redis_->Resume();
  for (const auto& pending : pending_) {
    pending->thread.join();
    EXPECT_TRUE(pending->status.ok()) << pending->status.error_message();
  }
  EXPECT_EQ(touch.metadata().id(), touched);
  EXPECT_FALSE(anonymous.session().metadata().id().empty());
  EXPECT_EQ(owned.session().metadata().user_id(), "grace");
  EXPECT_NE(regenerate.session().metadata().id(), regenerated);
  ASSERT_EQ(listed.sessions_size(), 1);
  EXPECT_EQ(listed.sessions(0).id(), touched);
  EXPECT_TRUE(InFlightReaches(0));
}

}  // namespace
}  // namespace stateside
