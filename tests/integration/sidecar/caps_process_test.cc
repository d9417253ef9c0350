// The per-user and per-connection caps of the `stateside` binary on a real
// redis-server: sessions per user, rooms per connection,
// publishes per user and second, the bytes of a room's log; each refusal is
// RESOURCE_EXHAUSTED naming its setting and counted in
// stateside_cap_refusals_total{cap}. And the settings are checked at start.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "stateside/v1/realtime.grpc.pb.h"
#include "stateside/v1/session.grpc.pb.h"
#include "tests/support/admin_port.h"
#include "tests/support/redis_server.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_secrets.h"
#include "tests/support/wait.h"
#include "tests/unit/admin/http_test_client.h"

namespace stateside {
namespace {

namespace v1 = ::stateside::v1;
using ::testing::HasSubstr;
using testing::Subprocess;

constexpr const char* kSecret = ::stateside::testing::kTestSecret;

std::unique_ptr<grpc::ClientContext> Context() {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  return context;
}

class CapsProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto redis = testing::RedisServer::Start();
    ASSERT_TRUE(redis.ok()) << redis.status();
    redis_ = *std::move(redis);
  }

  std::map<std::string, std::string> BaseEnv() {
    return {{"REDIS_URL", redis_->url()},
            {"SESSION_ENCRYPTION_KEY", testing::kTestKeyHex},
            {"SESSION_SECRET", kSecret},
            {"STATESIDE_SOCKET", socket_},
            {"STATESIDE_ADMIN_ADDR", "127.0.0.1:0"},
            {"INSTANCE_ID", "caps"}};
  }

  // The binary with `settings` on top of the base ones, logging to `log`.
  absl::StatusOr<Subprocess> Launch(const std::map<std::string, std::string>& settings,
                                    const std::string& log) {
    auto env = BaseEnv();
    for (const auto& [name, value] : settings) env[name] = value;
    testing::SubprocessOptions options;
    options.argv = {testing::BinPath("stateside")};
    options.env = std::move(env);
    options.clear_env = true;
    options.log_path = dir_.File(log);
    return Subprocess::Start(options);
  }

  // Starts the sidecar with `caps` on top of the base settings and waits
  // for its admin port.
  void Start(const std::map<std::string, std::string>& caps) {
    auto process = Launch(caps, "sidecar.log");
    ASSERT_TRUE(process.ok()) << process.status();
    process_.emplace(*std::move(process));
    ASSERT_TRUE(testing::WaitFor(
        [&] {
          port_ = testing::AdminPortFromLog(process_->ReadLog(), "127.0.0.1").value_or(0);
          return port_ != 0;
        },
        absl::Seconds(20)))
        << process_->ReadLog();
    channel_ = grpc::CreateChannel("unix:" + socket_, grpc::InsecureChannelCredentials());
    // Ready: a session call answers (Redis connected).
    ASSERT_TRUE(testing::WaitFor(
        [&] {
          v1::ListUserSessionsRequest request;
          request.set_user_id("probe");
          v1::ListUserSessionsResponse response;
          return v1::SessionService::NewStub(channel_)
              ->ListUserSessions(Context().get(), request, &response)
              .ok();
        },
        absl::Seconds(20)))
        << process_->ReadLog();
  }

  grpc::Status Create(const std::string& user, std::string* id = nullptr) {
    v1::CreateSessionRequest request;
    request.set_user_id(user);
    v1::CreateSessionResponse response;
    grpc::Status status =
        v1::SessionService::NewStub(channel_)->Create(Context().get(), request, &response);
    if (id != nullptr) *id = response.session().metadata().id();
    return status;
  }

  grpc::Status Publish(const std::string& room, const std::string& sender,
                       const std::string& payload = "p", uint64_t* sequence = nullptr) {
    v1::PublishRequest request;
    request.set_room(room);
    request.set_event("e");
    request.set_payload(payload);
    request.set_sender_user_id(sender);
    v1::PublishResponse response;
    grpc::Status status =
        v1::RealtimeService::NewStub(channel_)->Publish(Context().get(), request, &response);
    if (sequence != nullptr) *sequence = response.sequence();
    return status;
  }

  // The value of stateside_cap_refusals_total{cap="<cap>"} on /metrics.
  std::string Refusals(const std::string& cap) {
    auto response = testing::RawConnection::Connect(port_);
    if (!response.ok() || !response->Send(testing::GetRequest("/metrics"))) return "?";
    std::optional<testing::RawResponse> got = response->ReadResponse(absl::Seconds(5));
    if (!got.has_value()) return "?";
    const std::string needle = absl::StrCat("stateside_cap_refusals_total{cap=\"", cap, "\"} ");
    const size_t at = got->body.find(needle);
    if (at == std::string::npos) return "absent";
    const size_t start = at + needle.size();
    return got->body.substr(start, got->body.find('\n', start) - start);
  }

  testing::TempDir dir_;
  std::string socket_ = dir_.File("api.sock");
  std::unique_ptr<testing::RedisServer> redis_;
  std::optional<Subprocess> process_;
  std::shared_ptr<grpc::Channel> channel_;
  int port_ = 0;
};

TEST_F(CapsProcessTest, SessionsPerUserAreCappedAndTheCapNamesItsSetting) {
  Start({{"STATESIDE_MAX_SESSIONS_PER_USER", "3"}});
  std::string first;
  ASSERT_TRUE(Create("alice", &first).ok());
  ASSERT_TRUE(Create("alice").ok());
  ASSERT_TRUE(Create("alice").ok());
  const grpc::Status refused = Create("alice");
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << refused.error_message();
  EXPECT_THAT(refused.error_message(), HasSubstr("STATESIDE_MAX_SESSIONS_PER_USER"));
  EXPECT_THAT(refused.error_message(), HasSubstr("3"));
  EXPECT_EQ(Refusals("sessions_per_user"), "1");
  // Another user, and an anonymous session, are not affected.
  EXPECT_TRUE(Create("bob").ok());
  EXPECT_TRUE(Create("").ok());

  // A destroyed session frees its place.
  v1::DestroySessionRequest destroy;
  destroy.mutable_key()->set_id(first);
  v1::DestroySessionResponse destroyed;
  ASSERT_TRUE(v1::SessionService::NewStub(channel_)
                  ->Destroy(Context().get(), destroy, &destroyed)
                  .ok());
  EXPECT_TRUE(Create("alice").ok());
}

TEST_F(CapsProcessTest, RoomsPerConnectionAreCapped) {
  Start({{"STATESIDE_MAX_ROOMS_PER_CONNECTION", "2"}});
  auto stub = v1::RealtimeService::NewStub(channel_);
  v1::RegisterConnectionRequest reg;
  reg.set_conn_id("c1");
  reg.set_user_id("alice");
  reg.add_rooms("r1");
  v1::RegisterConnectionResponse registered;
  ASSERT_TRUE(stub->RegisterConnection(Context().get(), reg, &registered).ok());

  v1::JoinRequest join;
  join.set_conn_id("c1");
  join.add_rooms("r2");
  v1::JoinResponse joined;
  ASSERT_TRUE(stub->Join(Context().get(), join, &joined).ok());
  join.clear_rooms();
  join.add_rooms("r3");
  const grpc::Status refused = stub->Join(Context().get(), join, &joined);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << refused.error_message();
  EXPECT_THAT(refused.error_message(), HasSubstr("STATESIDE_MAX_ROOMS_PER_CONNECTION"));
  EXPECT_EQ(Refusals("rooms_per_connection"), "1");
  // Joining a room it is in already is no new room.
  join.clear_rooms();
  join.add_rooms("r2");
  EXPECT_TRUE(stub->Join(Context().get(), join, &joined).ok());
}

TEST_F(CapsProcessTest, PublishesPerUserAreRateLimited) {
  // 1 event per second after a burst of 3: the fourth publish in a row
  // (well within a second) is refused.
  Start({{"STATESIDE_PUBLISH_RATE_PER_USER", "1"}, {"STATESIDE_PUBLISH_BURST_PER_USER", "3"}});
  for (int i = 0; i < 3; ++i) {
    const grpc::Status s = Publish("room", "mallory");
    ASSERT_TRUE(s.ok()) << i << ": " << s.error_message();
  }
  const grpc::Status refused = Publish("room", "mallory");
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << refused.error_message();
  EXPECT_THAT(refused.error_message(), HasSubstr("STATESIDE_PUBLISH_RATE_PER_USER"));
  EXPECT_EQ(Refusals("publish_rate_per_user"), "1");
  // Other senders have their own buckets.
  EXPECT_TRUE(Publish("room", "alice").ok());
  // The bucket refills: a publish succeeds again within a few seconds.
  EXPECT_TRUE(testing::WaitFor([&] { return Publish("room", "mallory").ok(); },
                               absl::Seconds(5)));
}

TEST_F(CapsProcessTest, RoomLogIsCappedInBytesOldestFirst) {
  // 128 KiB (the smallest allowed): three 60 KB events do not fit, two do.
  Start({{"STATESIDE_ROOM_HISTORY_BYTES", "131072"}, {"STATESIDE_PUBLISH_RATE_PER_USER", "0"}});
  const std::string payload(60000, 'x');
  uint64_t last = 0;
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(Publish("big", "alice", payload, &last).ok());
  }
  ASSERT_EQ(last, 6u);
  v1::HistoryRequest request;
  request.set_room("big");
  v1::HistoryResponse history;
  ASSERT_TRUE(v1::RealtimeService::NewStub(channel_)
                  ->History(Context().get(), request, &history)
                  .ok());
  ASSERT_EQ(history.events_size(), 2) << history.DebugString().substr(0, 300);
  EXPECT_EQ(history.events(0).sequence(), 5u);
  EXPECT_EQ(history.events(1).sequence(), 6u);
  EXPECT_EQ(history.first_sequence(), 5u);
  EXPECT_FALSE(history.complete());
}

TEST_F(CapsProcessTest, BadCapSettingsStopTheStartNamingTheSetting) {
  for (const auto& [name, value] :
       std::map<std::string, std::string>{{"STATESIDE_MAX_SESSIONS_PER_USER", "-1"},
                                          {"STATESIDE_SESSION_LIMIT_POLICY", "evict"},
                                          {"STATESIDE_MAX_ROOMS_PER_CONNECTION", "0"},
                                          {"STATESIDE_PUBLISH_RATE_PER_USER", "lots"},
                                          {"STATESIDE_PUBLISH_BURST_PER_USER", "0"},
                                          {"STATESIDE_ROOM_HISTORY_BYTES", "1000"}}) {
    auto process = Launch({{name, value}}, name + ".log");
    ASSERT_TRUE(process.ok()) << process.status();
    EXPECT_EQ(process->Wait(absl::Seconds(20)), 2) << name;
    EXPECT_THAT(process->ReadLog(), HasSubstr(name)) << name;
  }
}

}  // namespace
}  // namespace stateside
