// The wired Server in-process: the socket file, every service reachable over
// a real channel, health, the message-size limit, stop and cleanup.
#include "sidecar/server/server.h"

#include <grpcpp/grpcpp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "stateside/v1/analytics.grpc.pb.h"
#include "stateside/v1/lifecycle.grpc.pb.h"
#include "stateside/v1/session.grpc.pb.h"
#include "tests/support/fake_clock.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_secrets.h"

namespace stateside {
namespace {

using ::testing::HasSubstr;
namespace v1 = ::stateside::v1;
namespace health = ::grpc::health::v1;

class ServerTest : public ::testing::Test {
 protected:
  absl::StatusOr<std::unique_ptr<Server>> Make(Environment env = {}) {
    if (env.count("STATESIDE_SOCKET") == 0) env["STATESIDE_SOCKET"] = socket_;
    if (env.count("INSTANCE_ID") == 0) env["INSTANCE_ID"] = "test-instance";
    // The admin listener takes a free port: tests run in parallel.
    if (env.count("STATESIDE_ADMIN_ADDR") == 0) env["STATESIDE_ADMIN_ADDR"] = "127.0.0.1:0";
    auto line = ParseCommandLine({"stateside"}, env);
    if (!line.ok()) return line.status();
    auto random = crypto::NewSecureRandom();
    auto identity = lifecycle::MakeIdentity(line->config.instance_id, *random,
                                            clock_.Now());
    if (!identity.ok()) return identity.status();
    ServerOptions options;
    options.clock = &clock_;
    return Server::Create(std::move(line->config), *identity, std::move(options));
  }

  std::shared_ptr<grpc::Channel> Channel() {
    return grpc::CreateChannel("unix:" + socket_,
                               grpc::InsecureChannelCredentials());
  }

  static std::unique_ptr<grpc::ClientContext> Context() {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(std::chrono::system_clock::now() +
                          std::chrono::seconds(10));
    return context;
  }

  testing::TempDir dir_;
  std::string socket_ = dir_.File("run/api.sock");
  testing::FakeClock clock_;
};

TEST_F(ServerTest, StartedServerAnswersEveryService) {
  auto server = Make();
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_TRUE((*server)->Start().ok());
  auto channel = Channel();

  auto health_stub = health::Health::NewStub(channel);
  for (const std::string service :
       {"", "stateside.v1.SessionService", "stateside.v1.AnalyticsService",
        "stateside.v1.LifecycleService"}) {
    health::HealthCheckRequest request;
    request.set_service(service);
    health::HealthCheckResponse response;
    ASSERT_TRUE(health_stub->Check(Context().get(), request, &response).ok());
    EXPECT_EQ(response.status(), health::HealthCheckResponse::SERVING) << service;
  }

  auto lifecycle_stub = v1::LifecycleService::NewStub(channel);
  v1::GetInstanceResponse instance;
  ASSERT_TRUE(lifecycle_stub->GetInstance(Context().get(), {}, &instance).ok());
  EXPECT_EQ(instance.instance().id(), "test-instance");
  EXPECT_EQ(instance.instance().pid(), getpid());
  EXPECT_EQ(instance.instance().backend(), "memory");
  EXPECT_TRUE(instance.instance().ready());
  EXPECT_EQ(instance.instance().drain_state(), v1::DRAIN_STATE_SERVING);
  EXPECT_EQ(instance.instance().start_time().seconds(),
            absl::ToUnixSeconds(clock_.Now()));

  auto sessions = v1::SessionService::NewStub(channel);
  v1::CreateSessionRequest create;
  create.set_user_id("alice");
  (*create.mutable_attributes())["cart"] = "[]";
  v1::CreateSessionResponse created;
  ASSERT_TRUE(sessions->Create(Context().get(), create, &created).ok());
  v1::GetSessionRequest get;
  get.mutable_key()->set_cookie(created.session().cookie());
  v1::GetSessionResponse got;
  ASSERT_TRUE(sessions->Get(Context().get(), get, &got).ok());
  EXPECT_EQ(got.session().attributes().at("cart"), "[]");
  EXPECT_EQ(got.session().metadata().user_id(), "alice");

  auto analytics = v1::AnalyticsService::NewStub(channel);
  v1::SetOptOutRequest set;
  set.set_subject("alice");
  set.set_opted_out(true);
  v1::SetOptOutResponse set_response;
  ASSERT_TRUE(analytics->SetOptOut(Context().get(), set, &set_response).ok());
  v1::GetOptOutRequest get_opt;
  get_opt.set_subject("alice");
  v1::GetOptOutResponse opted;
  ASSERT_TRUE(analytics->GetOptOut(Context().get(), get_opt, &opted).ok());
  EXPECT_TRUE(opted.opted_out());
}

TEST_F(ServerTest, SessionsTimeOutOnTheInjectedClock) {
  auto server = Make({{"SESSION_IDLE_TTL", "10m"}});
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_TRUE((*server)->Start().ok());
  auto sessions = v1::SessionService::NewStub(Channel());
  v1::CreateSessionResponse created;
  ASSERT_TRUE(sessions->Create(Context().get(), {}, &created).ok());
  v1::GetSessionRequest get;
  get.mutable_key()->set_id(created.session().metadata().id());
  v1::GetSessionResponse got;
  ASSERT_TRUE(sessions->Get(Context().get(), get, &got).ok());
  clock_.Advance(absl::Minutes(11));
  EXPECT_EQ(sessions->Get(Context().get(), get, &got).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(ServerTest, SocketIsCreatedWithMode0660InANewDirectory) {
  auto server = Make();
  ASSERT_TRUE(server.ok());
  ASSERT_TRUE((*server)->Start().ok());
  struct stat st {};
  ASSERT_EQ(lstat(socket_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0660u) << std::oct << (st.st_mode & 0777);
}

TEST_F(ServerTest, StopRemovesTheSocketAndEndsService) {
  auto server = Make();
  ASSERT_TRUE(server.ok());
  ASSERT_TRUE((*server)->Start().ok());
  (*server)->Stop(absl::Seconds(1));
  struct stat st {};
  EXPECT_NE(lstat(socket_.c_str(), &st), 0);
  EXPECT_FALSE((*server)->instance().ready());
  (*server)->Stop(absl::Seconds(1));  // idempotent
}

TEST_F(ServerTest, SecondServerOnALiveSocketIsRefused) {
  auto first = Make();
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE((*first)->Start().ok());
  auto second = Make({{"INSTANCE_ID", "second"}});
  ASSERT_TRUE(second.ok());
  absl::Status status = (*second)->Start();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("STATESIDE_SOCKET: another process is listening"));
  second->reset();
  // The first still serves, and still owns its socket file.
  auto lifecycle_stub = v1::LifecycleService::NewStub(Channel());
  v1::GetInstanceResponse instance;
  ASSERT_TRUE(lifecycle_stub->GetInstance(Context().get(), {}, &instance).ok());
  EXPECT_EQ(instance.instance().id(), "test-instance");
}

TEST_F(ServerTest, SetReadyDrivesHealthAndInstance) {
  auto server = Make();
  ASSERT_TRUE(server.ok());
  ASSERT_TRUE((*server)->Start().ok());
  (*server)->SetReady(false);
  auto health_stub = health::Health::NewStub(Channel());
  health::HealthCheckResponse response;
  ASSERT_TRUE(health_stub->Check(Context().get(), {}, &response).ok());
  EXPECT_EQ(response.status(), health::HealthCheckResponse::NOT_SERVING);
  EXPECT_FALSE((*server)->instance().ready());
  (*server)->SetReady(true);
  ASSERT_TRUE(health_stub->Check(Context().get(), {}, &response).ok());
  EXPECT_EQ(response.status(), health::HealthCheckResponse::SERVING);
}

TEST_F(ServerTest, OversizedRequestIsRefusedByGrpc) {
  auto server = Make({{"STATESIDE_MAX_SESSION_BYTES", "1024"},
                      {"STATESIDE_MAX_ATTRIBUTE_BYTES", "1024"}});
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_TRUE((*server)->Start().ok());
  auto sessions = v1::SessionService::NewStub(Channel());
  v1::CreateSessionRequest create;
  // The gRPC limit is the larger of the session limit and the largest valid
  // Publish (about 330 KiB), plus framing: 512 KiB is past it.
  (*create.mutable_attributes())["big"] = std::string(512 * 1024, 'x');
  v1::CreateSessionResponse created;
  grpc::Status status = sessions->Create(Context().get(), create, &created);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << status.error_message();
  // Under the gRPC limit but over the session limit: the session rules say no.
  (*create.mutable_attributes())["big"] = std::string(2048, 'x');
  status = sessions->Create(Context().get(), create, &created);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
      << status.error_message();
}

TEST_F(ServerTest, UnreachableRedisFailsClosedUnlessTheMemoryFallbackIsChosen) {
  const std::string dead = "redis://127.0.0.1:" + std::to_string(testing::PickFreePort());
  auto closed = Make({{"REDIS_URL", dead},
                      {"STATESIDE_REDIS_CONNECT_TIMEOUT", "100ms"},
                      {"SESSION_ENCRYPTION_KEY", testing::kTestKeyHex},
                      {"SESSION_SECRET", ::stateside::testing::kTestSecret}});
  ASSERT_TRUE(closed.ok()) << closed.status();
  EXPECT_EQ((*closed)->instance().backend(), "redis");

  auto fallback = Make({{"REDIS_URL", dead},
                        {"STATESIDE_FALLBACK", "memory"},
                        {"STATESIDE_REDIS_CONNECT_TIMEOUT", "100ms"},
                        {"SESSION_ENCRYPTION_KEY", testing::kTestKeyHex},
                        {"SESSION_SECRET", ::stateside::testing::kTestSecret}});
  ASSERT_TRUE(fallback.ok()) << fallback.status();
  EXPECT_EQ((*fallback)->instance().backend(), "memory-fallback");
}

TEST_F(ServerTest, ABuildThatFailsHalfWayIsAnErrorNotACrash) {
  // Readable (so the configuration accepts it) but no certificate: the Redis
  // client refuses it while the server is being built, before realtime is.
  const std::string ca = dir_.WriteFile("not-a-ca.pem", "not a certificate\n");
  auto server = Make({{"REDIS_URL", "rediss://127.0.0.1:1"},
                      {"STATESIDE_REDIS_TLS_CA_FILE", ca},
                      {"SESSION_ENCRYPTION_KEY", testing::kTestKeyHex},
                      {"SESSION_SECRET", ::stateside::testing::kTestSecret}});
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument) << server.status();
}

TEST_F(ServerTest, ConfiguredKeysAndSecretsAreUsedAndWipedFromConfig) {
  auto server = Make({{"SESSION_ENCRYPTION_KEYS",
                       std::string("new:") + testing::kTestKeyHex +
                           ",old:" + testing::kOtherTestKeyHex},
                      {"SESSION_SECRET", ::stateside::testing::kTestSecret}});
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_EQ((*server)->keyring().primary().id, "new");
  EXPECT_EQ((*server)->keyring().keys().size(), 2u);
  EXPECT_TRUE((*server)->config().encryption_keys.empty());
  EXPECT_TRUE((*server)->config().session_secrets.empty());
}

TEST_F(ServerTest, ADrainingServerNeverTurnsReadyAgain) {
  auto server = Make();
  ASSERT_TRUE(server.ok());
  ASSERT_TRUE((*server)->Start().ok());
  EXPECT_TRUE((*server)->instance().ready());
  (*server)->drain().StartDrain("test");  // no watcher: drains at once
  EXPECT_FALSE((*server)->instance().ready());
  // A backend that comes back (the Redis listener) does not undo a drain.
  (*server)->SetReady(true);
  EXPECT_FALSE((*server)->instance().ready());
  EXPECT_TRUE((*server)->WaitForStopped(absl::Seconds(10)));
  EXPECT_NE((*server)->admin_port(), 0);
}

TEST_F(ServerTest, RequestShutdownWakesTheWaiter) {
  auto server = Make();
  ASSERT_TRUE(server.ok());
  EXPECT_FALSE((*server)->WaitForShutdownRequest(absl::Milliseconds(1)));
  (*server)->RequestShutdown();
  (*server)->RequestShutdown();  // idempotent
  EXPECT_TRUE((*server)->WaitForShutdownRequest());
}

}  // namespace
}  // namespace stateside
