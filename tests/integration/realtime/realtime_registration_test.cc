// RegisterConnection's promises at their edges, on real processes: while
// the sidecar answers /health/ready 200, connections can be registered; a
// Subscribe stream refused for one of its connections leaves the app's own
// registrations alone. Its own binary: both document defects found while
// writing the realtime acceptance tests (see each test's comment), which
// must not hide the other binaries' results while they fail.
#include <optional>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/integration/realtime/realtime_fixture.h"
#include "tests/support/wait.h"
#include "tests/unit/admin/http_test_client.h"

namespace stateside::testing {
namespace {

// Readiness (/health/ready) says the sidecar serves; for RealtimeService
// that needs its pub/sub connection too. Here Redis admits only the
// sidecar's two command connections (maxclients 2), so the subscription
// connection is refused: whenever the sidecar says it is ready, registering
// a connection must work (or it must not say so).
class RealtimeReadinessTest : public RealtimeClusterTest {
 protected:
  void SetUp() override {
    RedisServerOptions options;
    options.extra_config = {"maxclients 2"};
    auto redis = RedisServer::Start(options);
    ASSERT_TRUE(redis.ok()) << redis.status();
    redis_ = *std::move(redis);
  }

  static bool Ready(const Pod& pod) {
    absl::StatusOr<RawConnection> conn = RawConnection::Connect(pod.admin_port);
    if (!conn.ok() || !conn->Send(GetRequest("/health/ready"))) return false;
    std::optional<RawResponse> response = conn->ReadResponse(absl::Seconds(5));
    return response.has_value() && response->status == 200;
  }
};

TEST_F(RealtimeReadinessTest, WhileReadyConnectionsCanBeRegistered) {
  Pod a;
  ASSERT_NO_FATAL_FAILURE(StartPod(a, "pod-a", {}, /*realtime_probe=*/false));
  int ready_checks = 0;
  std::string refused;
  // Watch the promise for a few seconds (the subscriber retries meanwhile).
  WaitFor(
      [&] {
        if (!Ready(a)) return false;
        ++ready_checks;
        const grpc::Status s = Register(a, "c1", "ann", {"r"});
        if (!s.ok()) refused = absl::StrCat(s.error_code(), " ", s.error_message());
        return !s.ok();
      },
      absl::Seconds(3), absl::Milliseconds(50));
  EXPECT_EQ(refused, "") << "/health/ready answered 200, yet RegisterConnection failed";
  RecordProperty("ready_checks", ready_checks);
}

// SubscribeRequest.connections are "registered for the life of this stream
// and unregistered when it ends": a stream that could not register one
// (here: the app registered that id under another user, ALREADY_EXISTS)
// never owned it and must not unregister it when it ends.
class RealtimeRefusedStreamTest : public RealtimeClusterTest {};

TEST_F(RealtimeRefusedStreamTest, ARefusedStreamLeavesTheAppsConnectionAlone) {
  Pod a, b;
  ASSERT_NO_FATAL_FAILURE(StartPod(a, "pod-a"));
  ASSERT_NO_FATAL_FAILURE(StartPod(b, "pod-b"));
  ASSERT_TRUE(Register(b, "app-1", "ann", {"r"}).ok());
  v1::SubscribeRequest clash;
  v1::RegisterConnectionRequest* other = clash.add_connections();
  other->set_conn_id("app-1");
  other->set_user_id("bob");
  {
    EventStream refused(b.rt.get(), clash);
    const std::optional<grpc::Status> end = refused.WaitEnded(absl::Seconds(10));
    ASSERT_TRUE(end.has_value());
    EXPECT_EQ(end->error_code(), grpc::StatusCode::ALREADY_EXISTS) << end->error_message();
  }
  // The stream is gone on the sidecar's side too (its OnDone has run).
  ASSERT_TRUE(WaitFor([&] { return b.Metric("stateside_realtime_subscribers") == 0; }));
  EXPECT_EQ(MemberSet(a, "r"), (std::set<Ref>{{"pod-b", "app-1"}}))
      << "the refused stream unregistered the app's connection";
  EXPECT_EQ(UserConns(a, "ann"), (std::set<Ref>{{"pod-b", "app-1"}}));
  v1::UnregisterConnectionRequest unregister;
  unregister.set_conn_id("app-1");
  v1::UnregisterConnectionResponse gone;
  ASSERT_TRUE(b.rt->UnregisterConnection(Ctx().get(), unregister, &gone).ok());
  EXPECT_TRUE(gone.found()) << "the refused stream unregistered the app's connection";
}

}  // namespace
}  // namespace stateside::testing
