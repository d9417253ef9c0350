// An in-process gRPC server of the sidecar's services (memory stores, a fake
// clock, small limits) on a Unix socket in a temp dir, and stubs on a real
// channel to it.
#ifndef STATESIDE_TESTS_UNIT_RPC_RPC_FIXTURE_H_
#define STATESIDE_TESTS_UNIT_RPC_RPC_FIXTURE_H_

#include <grpcpp/grpcpp.h>

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "sidecar/admin/metrics.h"
#include "sidecar/analytics/memory_opt_out_store.h"
#include "sidecar/analytics/opt_out_manager.h"
#include "sidecar/crypto/cookie.h"
#include "sidecar/crypto/envelope.h"
#include "sidecar/crypto/keyring.h"
#include "sidecar/crypto/random.h"
#include "sidecar/lifecycle/drain_controller.h"
#include "sidecar/lifecycle/instance.h"
#include "sidecar/rpc/grpc_server.h"
#include "sidecar/session/memory_store.h"
#include "sidecar/session/session_manager.h"
#include "stateside/v1/analytics.grpc.pb.h"
#include "stateside/v1/lifecycle.grpc.pb.h"
#include "stateside/v1/session.grpc.pb.h"
#include "tests/support/fake_clock.h"
#include "tests/support/temp_dir.h"

namespace stateside::rpc {

class RpcTest : public ::testing::Test {
 protected:
  static constexpr size_t kMaxAttributes = 8;
  static constexpr size_t kMaxAttributeBytes = 1024;
  static constexpr size_t kMaxSessionBytes = 4096;
  static constexpr size_t kMaxMessageBytes = 16 * 1024;

  void SetUp() override;
  void TearDown() override;

  // A context with a deadline, so that no test can hang on a call.
  static std::unique_ptr<grpc::ClientContext> Context();

  // Create with these attributes for `user`; fails the test on error.
  v1::Session CreateSession(const std::string& user = "",
                            std::map<std::string, std::string> attributes = {});
  static v1::SessionKey IdKey(const v1::Session& session);
  static v1::SessionKey CookieKey(const v1::Session& session);

  // Set by a derived fixture before RpcTest::SetUp() to serve the drain
  // RPCs and count calls; null: those RPCs answer UNIMPLEMENTED.
  DrainController* drain_ = nullptr;
  std::function<void()> poke_;
  admin::Metrics* metrics_ = nullptr;
  // Set by a derived fixture to serve RealtimeService.
  realtime::RealtimeHub* realtime_hub_ = nullptr;
  realtime::Broker* realtime_broker_ = nullptr;

  testing::TempDir dir_;
  std::string socket_path_;
  testing::FakeClock clock_;
  std::unique_ptr<crypto::RandomSource> random_;
  std::unique_ptr<crypto::Keyring> keyring_;
  std::unique_ptr<crypto::Sealer> sealer_;
  std::unique_ptr<crypto::CookieSigner> signer_;
  std::unique_ptr<MemorySessionStore> session_store_;
  std::unique_ptr<MemoryOptOutStore> opt_out_store_;
  std::unique_ptr<SessionManager> sessions_;
  std::unique_ptr<OptOutManager> opt_outs_;
  std::unique_ptr<lifecycle::Instance> instance_;
  std::unique_ptr<GrpcServer> server_;

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::SessionService::Stub> session_stub_;
  std::unique_ptr<v1::AnalyticsService::Stub> analytics_stub_;
  std::unique_ptr<v1::LifecycleService::Stub> lifecycle_stub_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_stub_;
};

}  // namespace stateside::rpc

#endif  // STATESIDE_TESTS_UNIT_RPC_RPC_FIXTURE_H_
