// Retries that cannot apply twice, end to end: the C++ client talks to the
// real sidecar binary (embedded memory store, or a real redis-server)
// through a proxy that cuts the connection once the sidecar has applied a
// call and starts to answer it (tests/support/cutting_proxy.h). The client
// sees UNAVAILABLE, retries with the request_id it generated for the call,
// and the sidecar answers the first answer: one session created, one
// session regenerated, one event published.
#include <memory>
#include <ostream>
#include <string>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "stateside/client.h"
#include "tests/support/cutting_proxy.h"
#include "tests/support/sidecar_process.h"
#include "tests/support/temp_dir.h"

namespace stateside {
namespace {

enum class Backend { kMemory, kRedis };
enum class Transport { kUnary, kPipe };
using Param = std::tuple<Backend, Transport>;

void PrintTo(Backend backend, std::ostream* os) {
  *os << (backend == Backend::kMemory ? "memory" : "redis");
}
void PrintTo(Transport transport, std::ostream* os) {
  *os << (transport == Transport::kUnary ? "unary" : "pipe");
}

std::string ParamName(const ::testing::TestParamInfo<Param>& info) {
  return absl::StrCat(std::get<0>(info.param) == Backend::kMemory ? "Memory" : "Redis",
                      std::get<1>(info.param) == Transport::kUnary ? "Unary" : "Pipe");
}

class RetrySidecarTest : public ::testing::TestWithParam<Param> {
 protected:
  void SetUp() override {
    testing::SidecarProcessOptions options;
    options.socket_path = dir_.File("api.sock");
    options.log_path = dir_.File("sidecar.log");
    const bool on_redis = std::get<0>(GetParam()) == Backend::kRedis;
    auto started = testing::StartBackendSidecar(on_redis, std::move(options));
    ASSERT_TRUE(started.ok()) << started.status();
    backend_ = std::make_unique<testing::BackendSidecar>(*std::move(started));
    auto proxy = testing::CuttingProxy::Start(dir_.File("proxy.sock"), dir_.File("api.sock"));
    ASSERT_TRUE(proxy.ok()) << proxy.status();
    proxy_ = *std::move(proxy);

    ClientOptions through;
    through.socket_path = proxy_->path();
    through.call_timeout = absl::Seconds(10);
    through.streams = std::get<1>(GetParam()) == Transport::kPipe ? 1 : 0;
    auto client = Client::Connect(through);
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = *std::move(client);
    ClientOptions direct = through;
    direct.socket_path = dir_.File("api.sock");
    auto checker = Client::Connect(direct);
    ASSERT_TRUE(checker.ok()) << checker.status();
    checker_ = *std::move(checker);
    // A first call opens the client's connection (and its Pipe stream,
    // whose headers come at once), so an armed cut meets an answer.
    ASSERT_EQ(client_->GetSession(SessionRef::Id("none")).status().code(),
              absl::StatusCode::kNotFound);
  }

  void TearDown() override {
    client_.reset();
    checker_.reset();
    proxy_.reset();
    if (backend_ != nullptr) testing::StopSidecar(backend_->sidecar.process, absl::Seconds(10));
  }

  testing::TempDir dir_;
  std::unique_ptr<testing::BackendSidecar> backend_;
  std::unique_ptr<testing::CuttingProxy> proxy_;
  std::unique_ptr<Client> client_;   // through the proxy
  std::unique_ptr<Client> checker_;  // straight to the sidecar
};

INSTANTIATE_TEST_SUITE_P(Backends, RetrySidecarTest,
                         ::testing::Combine(::testing::Values(Backend::kMemory, Backend::kRedis),
                                            ::testing::Values(Transport::kUnary,
                                                              Transport::kPipe)),
                         ParamName);

TEST_P(RetrySidecarTest, ACreateWhoseAnswerIsLostIsAppliedOnce) {
  proxy_->Arm();
  absl::StatusOr<Session> created = client_->CreateSession("carol", {{"cart", "[7]"}});
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(proxy_->cuts(), 1) << "the answer was not cut: the test proved nothing";
  absl::StatusOr<std::vector<SessionInfo>> sessions = checker_->ListUserSessions("carol");
  ASSERT_TRUE(sessions.ok()) << sessions.status();
  ASSERT_EQ(sessions->size(), 1u) << "the retry created a second session";
  EXPECT_EQ((*sessions)[0].id, created->info.id);
  absl::StatusOr<Session> read = checker_->GetSession(SessionRef::Cookie(created->cookie));
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->attributes.at("cart"), "[7]");
}

TEST_P(RetrySidecarTest, ARegenerateWhoseAnswerIsLostAnswersTheNewSession) {
  absl::StatusOr<Session> guest = client_->CreateSession("");
  ASSERT_TRUE(guest.ok()) << guest.status();
  RegenerateOptions login;
  login.user_id = "dave";
  proxy_->Arm();
  absl::StatusOr<Session> regenerated =
      client_->RegenerateSession(SessionRef::Cookie(guest->cookie), login);
  ASSERT_TRUE(regenerated.ok()) << regenerated.status();
  EXPECT_EQ(proxy_->cuts(), 1) << "the answer was not cut: the test proved nothing";
  EXPECT_NE(regenerated->info.id, guest->info.id);
  EXPECT_EQ(regenerated->info.user_id, "dave");
  absl::StatusOr<std::vector<SessionInfo>> sessions = checker_->ListUserSessions("dave");
  ASSERT_TRUE(sessions.ok()) << sessions.status();
  ASSERT_EQ(sessions->size(), 1u);
  EXPECT_EQ((*sessions)[0].id, regenerated->info.id);
  EXPECT_TRUE(checker_->GetSession(SessionRef::Cookie(regenerated->cookie)).ok());
  EXPECT_EQ(checker_->GetSession(SessionRef::Id(guest->info.id)).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_P(RetrySidecarTest, APublishWhoseAnswerIsLostIsPublishedOnce) {
  const std::string room = "retry-room";
  proxy_->Arm();
  absl::StatusOr<PublishResult> published =
      client_->Publish(PublishTarget::Room(room), "note", "hello", {}, "erin");
  ASSERT_TRUE(published.ok()) << published.status();
  EXPECT_EQ(proxy_->cuts(), 1) << "the answer was not cut: the test proved nothing";
  EXPECT_EQ(published->sequence, 1u);
  absl::StatusOr<RoomHistory> history = checker_->History(room);
  ASSERT_TRUE(history.ok()) << history.status();
  EXPECT_EQ(history->last_sequence, 1u) << "the retry published the event again";
  ASSERT_EQ(history->events.size(), 1u);
  EXPECT_EQ(history->events[0].payload, "hello");
}

}  // namespace
}  // namespace stateside
