// The sidecar binary on a real redis-server: sessions shared by two sidecar
// processes, the backend modes (fail closed, memory fallback), and Redis going
// away and coming back under a running sidecar (readiness debounced).
#include <grpcpp/grpcpp.h>
#include <sys/stat.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "stateside/v1/lifecycle.grpc.pb.h"
#include "stateside/v1/session.grpc.pb.h"
#include "tests/support/redis_server.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"
#include "tests/support/test_secrets.h"

namespace stateside {
namespace {

using ::testing::HasSubstr;
using testing::Subprocess;

testing::RedisServerOptions PasswordProtected(std::string password) {
  testing::RedisServerOptions options;
  options.requirepass = std::move(password);
  return options;
}

namespace v1 = ::stateside::v1;
namespace health = ::grpc::health::v1;

constexpr const char* kKeyHex = ::stateside::testing::kTestKeyHex;
constexpr char kSecret[] = "integration-test-secret-0123456789abcdef";

std::unique_ptr<grpc::ClientContext> Context(int seconds = 5) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
  return context;
}

// One sidecar process and a channel to its socket.
class Sidecar {
 public:
  Sidecar(const testing::TempDir& dir, const std::string& name,
          std::map<std::string, std::string> env)
      : socket_(dir.File(name + ".sock")) {
    env["STATESIDE_SOCKET"] = socket_;
    env["STATESIDE_ADMIN_ADDR"] = "127.0.0.1:0";
    env["SESSION_ENCRYPTION_KEY"] = kKeyHex;
    env["SESSION_SECRET"] = kSecret;
    env["INSTANCE_ID"] = name;
    testing::SubprocessOptions options;
    options.argv = {testing::BinPath("stateside")};
    options.env = std::move(env);
    options.clear_env = true;
    options.log_path = dir.File(name + ".log");
    auto process = Subprocess::Start(options);
    EXPECT_TRUE(process.ok()) << process.status();
    process_ = std::make_unique<Subprocess>(*std::move(process));
    channel_ = grpc::CreateChannel("unix:" + socket_, grpc::InsecureChannelCredentials());
  }

  // Waits until the sidecar answers gRPC at all (ready or not).
  bool WaitAnswering() {
    return testing::WaitFor([&] {
      v1::GetInstanceResponse response;
      return process_->running() &&
             v1::LifecycleService::NewStub(channel_)
                 ->GetInstance(Context(1).get(), {}, &response)
                 .ok();
    }, absl::Seconds(20));
  }

  health::HealthCheckResponse::ServingStatus Health() {
    health::HealthCheckResponse response;
    if (!health::Health::NewStub(channel_)->Check(Context(1).get(), {}, &response).ok()) {
      return health::HealthCheckResponse::UNKNOWN;
    }
    return response.status();
  }

  bool WaitHealth(health::HealthCheckResponse::ServingStatus want) {
    return testing::WaitFor([&] { return Health() == want; }, absl::Seconds(20));
  }

  v1::Instance Instance() {
    v1::GetInstanceResponse response;
    EXPECT_TRUE(v1::LifecycleService::NewStub(channel_)
                    ->GetInstance(Context().get(), {}, &response)
                    .ok());
    return response.instance();
  }

  std::unique_ptr<v1::SessionService::Stub> Sessions() {
    return v1::SessionService::NewStub(channel_);
  }

  Subprocess& process() { return *process_; }

 private:
  std::string socket_;
  std::unique_ptr<Subprocess> process_;
  std::shared_ptr<grpc::Channel> channel_;
};

grpc::Status Create(Sidecar& sidecar, const std::string& user, v1::Session* out,
                    int deadline_seconds = 5) {
  v1::CreateSessionRequest request;
  request.set_user_id(user);
  (*request.mutable_attributes())["cart"] = "[]";
  v1::CreateSessionResponse response;
  grpc::Status status =
      sidecar.Sessions()->Create(Context(deadline_seconds).get(), request, &response);
  if (out != nullptr) *out = response.session();
  return status;
}

class SidecarRedisTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto redis = testing::RedisServer::Start();
    ASSERT_TRUE(redis.ok()) << redis.status();
    redis_ = *std::move(redis);
  }

  std::map<std::string, std::string> RedisEnv() {
    return {{"REDIS_URL", redis_->url()}, {"STATESIDE_REDIS_CONNECT_TIMEOUT", "1s"}};
  }

  testing::TempDir dir_;
  std::unique_ptr<testing::RedisServer> redis_;
};

TEST_F(SidecarRedisTest, TwoSidecarsShareSessionsThroughRedis) {
  Sidecar a(dir_, "a", RedisEnv());
  Sidecar b(dir_, "b", RedisEnv());
  ASSERT_TRUE(a.WaitHealth(health::HealthCheckResponse::SERVING)) << a.process().ReadLog();
  ASSERT_TRUE(b.WaitHealth(health::HealthCheckResponse::SERVING)) << b.process().ReadLog();
  EXPECT_EQ(a.Instance().backend(), "redis");

  v1::Session created;
  ASSERT_TRUE(Create(a, "alice", &created).ok());

  v1::UpdateSessionRequest update;
  update.mutable_key()->set_cookie(created.cookie());
  (*update.mutable_set())["cart"] = R"(["book"])";
  v1::UpdateSessionResponse updated;
  ASSERT_TRUE(b.Sessions()->Update(Context().get(), update, &updated).ok());

  v1::GetSessionRequest get;
  get.mutable_key()->set_cookie(created.cookie());
  v1::GetSessionResponse got;
  ASSERT_TRUE(a.Sessions()->Get(Context().get(), get, &got).ok());
  EXPECT_EQ(got.session().attributes().at("cart"), R"(["book"])");
  EXPECT_EQ(got.session().metadata().user_id(), "alice");

  v1::DestroySessionRequest destroy;
  destroy.mutable_key()->set_id(created.metadata().id());
  v1::DestroySessionResponse destroyed;
  ASSERT_TRUE(b.Sessions()->Destroy(Context().get(), destroy, &destroyed).ok());
  EXPECT_TRUE(destroyed.existed());
  const grpc::Status after = a.Sessions()->Get(Context().get(), get, &got);
  EXPECT_EQ(after.error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(SidecarRedisTest, RedisGoingAwayFailsFastAndServiceResumesByItself) {
  Sidecar sidecar(dir_, "s", RedisEnv());
  ASSERT_TRUE(sidecar.WaitHealth(health::HealthCheckResponse::SERVING))
      << sidecar.process().ReadLog();
  ASSERT_TRUE(Create(sidecar, "alice", nullptr).ok());

  redis_->Kill();
  ASSERT_TRUE(sidecar.WaitHealth(health::HealthCheckResponse::NOT_SERVING))
      << sidecar.process().ReadLog();
  // Fail fast: UNAVAILABLE well before the call's own deadline.
  const absl::Time before = absl::Now();
  const grpc::Status down = Create(sidecar, "alice", nullptr, /*deadline_seconds=*/10);
  EXPECT_EQ(down.error_code(), grpc::StatusCode::UNAVAILABLE) << down.error_message();
  EXPECT_LT(absl::Now() - before, absl::Seconds(3));
  EXPECT_TRUE(sidecar.process().running());

  ASSERT_TRUE(redis_->Restart().ok());
  ASSERT_TRUE(sidecar.WaitHealth(health::HealthCheckResponse::SERVING))
      << sidecar.process().ReadLog();
  EXPECT_TRUE(Create(sidecar, "alice", nullptr).ok());
}

// A Redis outage shorter than STATESIDE_REDIS_READINESS_DEBOUNCE keeps the
// sidecar ready (while its calls fail fast); a longer one makes it not ready,
// no earlier than the debounce after Redis went away.
TEST_F(SidecarRedisTest, ReadinessStaysWithinTheDebounce) {
  auto env = RedisEnv();
  env["STATESIDE_REDIS_READINESS_DEBOUNCE"] = "30s";
  Sidecar sidecar(dir_, "debounced", env);
  ASSERT_TRUE(sidecar.WaitHealth(health::HealthCheckResponse::SERVING))
      << sidecar.process().ReadLog();

  redis_->Kill();
  // Both losses reported (the command connection and the realtime
  // subscription), and calls failing: readiness has seen the outage.
  ASSERT_TRUE(testing::WaitFor([&] {
    const std::string log = sidecar.process().ReadLog();
    return absl::StrContains(log, "redis unavailable") &&
           absl::StrContains(log, "realtime subscription lost");
  }, absl::Seconds(20))) << sidecar.process().ReadLog();
  EXPECT_EQ(Create(sidecar, "alice", nullptr).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(sidecar.Health(), health::HealthCheckResponse::SERVING);
  EXPECT_TRUE(sidecar.Instance().ready());

  ASSERT_TRUE(redis_->Restart().ok());
  ASSERT_TRUE(testing::WaitFor([&] { return Create(sidecar, "alice", nullptr).ok(); },
                               absl::Seconds(20)))
      << sidecar.process().ReadLog();
  EXPECT_EQ(sidecar.Health(), health::HealthCheckResponse::SERVING);
  EXPECT_THAT(sidecar.process().ReadLog(), ::testing::Not(HasSubstr("not ready until it is back")));
}

TEST_F(SidecarRedisTest, NotReadyOnlyAfterTheDebounce) {
  auto env = RedisEnv();
  env["STATESIDE_REDIS_READINESS_DEBOUNCE"] = "3s";
  Sidecar sidecar(dir_, "debounce-expires", env);
  ASSERT_TRUE(sidecar.WaitHealth(health::HealthCheckResponse::SERVING))
      << sidecar.process().ReadLog();

  const absl::Time killed = absl::Now();
  redis_->Kill();
  ASSERT_TRUE(sidecar.WaitHealth(health::HealthCheckResponse::NOT_SERVING))
      << sidecar.process().ReadLog();
  EXPECT_GE(absl::Now() - killed, absl::Seconds(3));
  EXPECT_FALSE(sidecar.Instance().ready());
  EXPECT_THAT(sidecar.process().ReadLog(),
              HasSubstr("STATESIDE_REDIS_READINESS_DEBOUNCE 3s): not ready until it is back"));

  ASSERT_TRUE(redis_->Restart().ok());
  ASSERT_TRUE(sidecar.WaitHealth(health::HealthCheckResponse::SERVING))
      << sidecar.process().ReadLog();
}

TEST_F(SidecarRedisTest, UnreachableRedisAtStartFailsClosedWithoutExiting) {
  auto env = RedisEnv();
  env["REDIS_URL"] = "redis://127.0.0.1:" + std::to_string(testing::PickFreePort());
  Sidecar sidecar(dir_, "closed", env);
  ASSERT_TRUE(sidecar.WaitAnswering()) << sidecar.process().ReadLog();
  EXPECT_EQ(sidecar.Health(), health::HealthCheckResponse::NOT_SERVING);
  EXPECT_FALSE(sidecar.Instance().ready());
  EXPECT_EQ(sidecar.Instance().backend(), "redis");
  EXPECT_EQ(Create(sidecar, "alice", nullptr).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(sidecar.process().running());
}

TEST_F(SidecarRedisTest, MemoryFallbackIsTakenAndAnnounced) {
  auto env = RedisEnv();
  env["REDIS_URL"] = "redis://127.0.0.1:" + std::to_string(testing::PickFreePort());
  env["STATESIDE_FALLBACK"] = "memory";
  Sidecar sidecar(dir_, "fallback", env);
  ASSERT_TRUE(sidecar.WaitHealth(health::HealthCheckResponse::SERVING))
      << sidecar.process().ReadLog();
  EXPECT_EQ(sidecar.Instance().backend(), "memory-fallback");
  EXPECT_TRUE(Create(sidecar, "alice", nullptr).ok());
  EXPECT_THAT(sidecar.process().ReadLog(), HasSubstr("EMBEDDED MEMORY STORE"));
}

TEST_F(SidecarRedisTest, WrongPasswordIsAClearError) {
  auto redis = testing::RedisServer::Start(PasswordProtected("right-password"));
  ASSERT_TRUE(redis.ok()) << redis.status();
  auto env = RedisEnv();
  env["REDIS_URL"] = "redis://:wrong-password@127.0.0.1:" + std::to_string((*redis)->port());
  Sidecar sidecar(dir_, "auth", env);
  ASSERT_TRUE(sidecar.WaitAnswering()) << sidecar.process().ReadLog();
  EXPECT_EQ(sidecar.Health(), health::HealthCheckResponse::NOT_SERVING);
  const std::string log = sidecar.process().ReadLog();
  EXPECT_THAT(log, HasSubstr("AUTH"));
  EXPECT_THAT(log, ::testing::Not(HasSubstr("wrong-password")));
}

}  // namespace
}  // namespace stateside
