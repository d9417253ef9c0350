// AnalyticsService, LifecycleService, health, and hostile bytes on the socket.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include <grpcpp/generic/generic_stub.h>

#include "absl/synchronization/notification.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/rpc/rpc_fixture.h"

namespace stateside::rpc {
namespace {

// The opt-out RPCs, over the unary RPCs and over SessionService.Pipe.
class AnalyticsServiceTest : public RpcTransportTest {};
INSTANTIATE_TEST_SUITE_P(Transports, AnalyticsServiceTest, kBothTransports, TransportName);
INSTANTIATE_TEST_SUITE_P(Offloaded, AnalyticsServiceTest, kBothTransports, TransportName);
using LifecycleServiceTest = RpcTest;
using HealthTest = RpcTest;
using HostileBytesTest = RpcTest;
namespace health = ::grpc::health::v1;

TEST_P(AnalyticsServiceTest, SetGetAndClearAnOptOut) {
  v1::SetOptOutRequest set;
  set.set_subject("user-1");
  set.set_opted_out(true);
  v1::SetOptOutResponse set_response;
  ASSERT_TRUE(calls_->SetOptOut(set, &set_response).ok());

  v1::GetOptOutRequest get;
  get.set_subject("user-1");
  v1::GetOptOutResponse got;
  ASSERT_TRUE(calls_->GetOptOut(get, &got).ok());
  EXPECT_TRUE(got.opted_out());
  get.set_subject("user-2");
  ASSERT_TRUE(calls_->GetOptOut(get, &got).ok());
  EXPECT_FALSE(got.opted_out());

  set.set_opted_out(false);
  ASSERT_TRUE(calls_->SetOptOut(set, &set_response).ok());
  get.set_subject("user-1");
  ASSERT_TRUE(calls_->GetOptOut(get, &got).ok());
  EXPECT_FALSE(got.opted_out());
}

TEST_P(AnalyticsServiceTest, TtlExpiresOnTheClock) {
  v1::SetOptOutRequest set;
  set.set_subject("s");
  set.set_opted_out(true);
  set.mutable_ttl()->set_seconds(60);
  v1::SetOptOutResponse set_response;
  ASSERT_TRUE(calls_->SetOptOut(set, &set_response).ok());
  v1::GetOptOutRequest get;
  get.set_subject("s");
  v1::GetOptOutResponse got;
  clock_.Advance(absl::Seconds(59));
  ASSERT_TRUE(calls_->GetOptOut(get, &got).ok());
  EXPECT_TRUE(got.opted_out());
  clock_.Advance(absl::Seconds(2));
  ASSERT_TRUE(calls_->GetOptOut(get, &got).ok());
  EXPECT_FALSE(got.opted_out());
}

TEST_P(AnalyticsServiceTest, BadSubjectsAndTtlsAreInvalidArgument) {
  v1::SetOptOutResponse set_response;
  v1::GetOptOutResponse got;
  for (const std::string& subject :
       {std::string(), std::string(257, 's'), std::string("tab\there"),
        std::string("\xff")}) {
    v1::SetOptOutRequest set;
    set.set_subject(subject);
    set.set_opted_out(true);
    EXPECT_EQ(calls_->SetOptOut(set, &set_response).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
    v1::GetOptOutRequest get;
    get.set_subject(subject);
    EXPECT_EQ(calls_->GetOptOut(get, &got).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
  v1::SetOptOutRequest set;
  set.set_subject("ok");
  set.set_opted_out(true);
  set.mutable_ttl()->set_seconds(-1);
  EXPECT_EQ(calls_->SetOptOut(set, &set_response).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  set.mutable_ttl()->set_seconds(0);
  EXPECT_EQ(calls_->SetOptOut(set, &set_response).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(LifecycleServiceTest, GetInstanceDescribesThisInstance) {
  clock_.Advance(absl::Seconds(75));
  instance_->set_admin_address("127.0.0.1:9464");
  v1::GetInstanceResponse response;
  ASSERT_TRUE(lifecycle_stub_->GetInstance(Context().get(), {}, &response).ok());
  const v1::Instance& instance = response.instance();
  EXPECT_EQ(instance.id(), "rpc-test");
  EXPECT_EQ(instance.hostname(), "host");
  EXPECT_EQ(instance.pid(), 42);
  EXPECT_EQ(instance.version(), "9.9.9");
  EXPECT_EQ(instance.uptime().seconds(), 75);
  EXPECT_EQ(instance.start_time().seconds(),
            absl::ToUnixSeconds(clock_.Now() - absl::Seconds(75)));
  EXPECT_EQ(instance.backend(), "memory");
  EXPECT_EQ(instance.admin_address(), "127.0.0.1:9464");
  EXPECT_TRUE(instance.ready());
  EXPECT_EQ(instance.drain_state(), v1::DRAIN_STATE_SERVING);

  instance_->set_drain_state(lifecycle::DrainState::kDraining);
  instance_->set_ready(false);
  ASSERT_TRUE(lifecycle_stub_->GetInstance(Context().get(), {}, &response).ok());
  EXPECT_EQ(response.instance().drain_state(), v1::DRAIN_STATE_DRAINING);
  EXPECT_FALSE(response.instance().ready());
}

// A client checks what the sidecar serves instead of parsing its version.
TEST_F(LifecycleServiceTest, GetInstanceReportsTheApiRevisionAndCapabilities) {
  v1::GetInstanceResponse response;
  ASSERT_TRUE(lifecycle_stub_->GetInstance(Context().get(), {}, &response).ok());
  EXPECT_EQ(response.api_revision(), kApiRevision);
  EXPECT_GE(response.api_revision(), 3u);
  EXPECT_TRUE(response.capabilities().request_ids());
  EXPECT_TRUE(response.capabilities().pipe());
  EXPECT_FALSE(response.capabilities().session_events());
  EXPECT_TRUE(response.capabilities().reflection());
  EXPECT_FALSE(response.capabilities().realtime_resume()) << "this fixture serves no RealtimeService";
  // The fixture's server runs on the embedded memory store.
  EXPECT_EQ(response.capabilities().topology(), v1::TOPOLOGY_MEMORY);
}

// Without a registry (the memory backend) the cluster is this instance.
TEST_F(LifecycleServiceTest, WithoutARegistryListInstancesIsThisInstance) {
  v1::ListInstancesResponse list;
  ASSERT_TRUE(lifecycle_stub_->ListInstances(Context().get(), {}, &list).ok());
  ASSERT_EQ(list.instances_size(), 1);
  EXPECT_EQ(list.instances(0).id(), instance_->id());
  EXPECT_EQ(list.instances(0).backend(), "memory");
}

// Without a drain controller they must say so, not hang or lie.
TEST_F(LifecycleServiceTest, DrainRpcsWithoutAControllerAreUnimplemented) {
  v1::ReportDrainedResponse reported;
  EXPECT_EQ(lifecycle_stub_->ReportDrained(Context().get(), {}, &reported).error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
  v1::DrainResponse drained;
  EXPECT_EQ(lifecycle_stub_->Drain(Context().get(), {}, &drained).error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
  auto context = Context();
  auto reader = lifecycle_stub_->WatchDrain(context.get(), {});
  v1::DrainEvent event;
  EXPECT_FALSE(reader->Read(&event));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::UNIMPLEMENTED);
}

TEST_F(HealthTest, FollowsSetServing) {
  health::HealthCheckRequest request;
  health::HealthCheckResponse response;
  ASSERT_TRUE(health_stub_->Check(Context().get(), request, &response).ok());
  EXPECT_EQ(response.status(), health::HealthCheckResponse::SERVING);
  request.set_service("stateside.v1.SessionService");
  ASSERT_TRUE(health_stub_->Check(Context().get(), request, &response).ok());
  EXPECT_EQ(response.status(), health::HealthCheckResponse::SERVING);

  server_->SetServing(false);
  ASSERT_TRUE(health_stub_->Check(Context().get(), request, &response).ok());
  EXPECT_EQ(response.status(), health::HealthCheckResponse::NOT_SERVING);
  request.set_service("no.such.Service");
  EXPECT_EQ(health_stub_->Check(Context().get(), request, &response).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

// Writes `bytes` on a fresh raw connection to the socket and closes it
// (half-close first, so the server reads everything).
void SendRaw(const std::string& path, const std::string& bytes, bool keep_open,
             int* fd_out) {
  const int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(bytes.size()));
  if (keep_open) {
    *fd_out = fd;
  } else {
    close(fd);
  }
}

TEST_F(HostileBytesTest, GarbageOnTheSocketDoesNotStopService) {
  std::string garbage;
  for (int i = 0; i < 64 * 1024; ++i) garbage.push_back(static_cast<char>(i * 131 + 7));
  int half_preface_fd = -1;
  int junk_fd = -1;
  SendRaw(socket_path_, garbage, /*keep_open=*/false, nullptr);
  // Half an HTTP/2 preface, then silence with the connection left open.
  SendRaw(socket_path_, "PRI * HTTP/2.0\r\n\r", /*keep_open=*/true, &half_preface_fd);
  // A full preface followed by a nonsense frame.
  SendRaw(socket_path_,
          std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") + std::string(9, '\xff') +
              "junk",
          /*keep_open=*/true, &junk_fd);
  SendRaw(socket_path_, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", false, nullptr);

  // Other clients are served throughout.
  const v1::Session session = CreateSession("after-garbage");
  EXPECT_FALSE(session.metadata().id().empty());
  health::HealthCheckResponse response;
  ASSERT_TRUE(health_stub_->Check(Context().get(), {}, &response).ok());
  close(half_preface_fd);
  close(junk_fd);
}

// grpc++'s typed callback handlers would answer UNIMPLEMENTED here; ours
// parse the bytes themselves and say what is wrong.
TEST_F(HostileBytesTest, UndecodableRequestsAreInvalidArgument) {
  grpc::GenericStub stub(channel_);
  for (const std::string method :
       {"/stateside.v1.SessionService/Create", "/stateside.v1.SessionService/Get",
        "/stateside.v1.SessionService/Update", "/stateside.v1.SessionService/Touch",
        "/stateside.v1.SessionService/Destroy",
        "/stateside.v1.SessionService/Regenerate",
        "/stateside.v1.SessionService/ListUserSessions",
        "/stateside.v1.SessionService/DestroyUserSessions",
        "/stateside.v1.AnalyticsService/SetOptOut",
        "/stateside.v1.AnalyticsService/GetOptOut",
        "/stateside.v1.LifecycleService/GetInstance"}) {
    SCOPED_TRACE(method);
    grpc::Slice slice(std::string("\xff\xff\xff\xff", 4));  // truncated varint
    grpc::ByteBuffer request(&slice, 1);
    grpc::ByteBuffer response;
    absl::Notification done;
    grpc::Status status;
    auto context = Context();
    stub.UnaryCall(context.get(), method, grpc::StubOptions(), &request, &response,
                   [&](grpc::Status s) {
                     status = std::move(s);
                     done.Notify();
                   });
    done.WaitForNotification();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << status.error_message();
    EXPECT_THAT(status.error_message(), ::testing::HasSubstr("malformed request"));
  }
  CreateSession();  // and the server is fine
}

}  // namespace
}  // namespace stateside::rpc
