// An in-process gRPC server of the sidecar's services (memory stores, a fake
// clock, small limits) on a Unix socket in a temp dir, and stubs on a real
// channel to it; a SessionCaller makes the session and opt-out calls over
// either transport, so a TEST_P runs the same assertions on both.
#ifndef STATESIDE_TESTS_UNIT_RPC_RPC_FIXTURE_H_
#define STATESIDE_TESTS_UNIT_RPC_RPC_FIXTURE_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <ostream>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
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
#include "sidecar/session/memory_request_store.h"
#include "sidecar/session/memory_store.h"
#include "sidecar/session/request_ledger.h"
#include "sidecar/session/session_manager.h"
#include "stateside/v1/analytics.grpc.pb.h"
#include "stateside/v1/lifecycle.grpc.pb.h"
#include "stateside/v1/session.grpc.pb.h"
#include "tests/support/fake_clock.h"
#include "tests/support/temp_dir.h"

namespace stateside::rpc {

enum class Transport { kUnary, kPipe };

// The ErrorInfo of a status's details (an empty one if it has none).
v1::ErrorInfo ErrorInfoOf(const grpc::Status& status);

// "Unary" / "Pipe": the parameter names of a TEST_P over Transport, and
// how gtest prints one.
std::string TransportName(const ::testing::TestParamInfo<Transport>& info);
void PrintTo(Transport transport, std::ostream* os);

// The session (and opt-out) operations with their unary signatures, made
// either by the unary RPCs or over SessionService.Pipe: one call per
// PipeRequest, all calls on one long-lived stream (as the client library
// does), answered by id. A stream that ends fails the calls it carried with
// its own status (what the unary RPC would have got from gRPC, e.g. an
// oversized message), and the next call opens a new stream. Over Pipe, every
// error is also checked (EXPECT) against the unary RPC's answer to the same
// request: same code, and same message unless the stream itself ended
// (gRPC's limits name the message's size). Every call has a 10 s deadline
// (the unary context's, or the PipeCall's timeout).
// Thread-safe: calls may be made from many threads at once; one of the
// waiting callers reads the stream for all of them.
class SessionCaller {
 public:
  SessionCaller(Transport transport, v1::SessionService::Stub* sessions,
                v1::AnalyticsService::Stub* analytics);
  ~SessionCaller();
  SessionCaller(const SessionCaller&) = delete;
  SessionCaller& operator=(const SessionCaller&) = delete;

  Transport transport() const { return transport_; }

  grpc::Status Create(const v1::CreateSessionRequest& request,
                      v1::CreateSessionResponse* response);
  grpc::Status Get(const v1::GetSessionRequest& request, v1::GetSessionResponse* response);
  grpc::Status Update(const v1::UpdateSessionRequest& request,
                      v1::UpdateSessionResponse* response);
  grpc::Status Touch(const v1::TouchSessionRequest& request,
                     v1::TouchSessionResponse* response);
  grpc::Status Destroy(const v1::DestroySessionRequest& request,
                       v1::DestroySessionResponse* response);
  grpc::Status Regenerate(const v1::RegenerateSessionRequest& request,
                          v1::RegenerateSessionResponse* response);
  grpc::Status ListUserSessions(const v1::ListUserSessionsRequest& request,
                                v1::ListUserSessionsResponse* response);
  grpc::Status DestroyUserSessions(const v1::DestroyUserSessionsRequest& request,
                                   v1::DestroyUserSessionsResponse* response);
  grpc::Status SetOptOut(const v1::SetOptOutRequest& request, v1::SetOptOutResponse* response);
  grpc::Status GetOptOut(const v1::GetOptOutRequest& request, v1::GetOptOutResponse* response);

  // Half-closes the open stream, if any, and returns how it ended (OK for
  // none). REQUIRES: no call in progress.
  grpc::Status Close();

 private:
  struct Stream;

  // Sends `call` (its id and timeout set here) and waits for its result.
  // The status is the result's code and message, or (*stream_ended set) the
  // stream's end.
  grpc::Status CallPipe(v1::PipeCall call, v1::PipeResult* result, bool* stream_ended);
  template <typename Stub, typename Request, typename Response>
  grpc::Status Call(Stub* stub,
                    grpc::Status (Stub::*unary)(grpc::ClientContext*, const Request&, Response*),
                    Request* (v1::PipeCall::*op)(), Response* (v1::PipeResult::*answer)(),
                    const Request& request, Response* response);
  // Reads one message of `stream` unlocked; marks it ended when it ends.
  void ReadOnce(Stream* stream) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Constant after construction.
  const Transport transport_;
  v1::SessionService::Stub* const sessions_;
  v1::AnalyticsService::Stub* const analytics_;

  absl::Mutex mu_;
  std::shared_ptr<Stream> stream_ ABSL_GUARDED_BY(mu_);  // null until the first call
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
};

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

  // Create (through calls_) with these attributes for `user`; fails the
  // test on error.
  v1::Session CreateSession(const std::string& user = "",
                            std::map<std::string, std::string> attributes = {});
  static v1::SessionKey IdKey(const v1::Session& session);
  static v1::SessionKey CookieKey(const v1::Session& session);

  // Set by a derived fixture before RpcTest::SetUp(): how calls_ calls.
  Transport transport_ = Transport::kUnary;
  // Set by a derived fixture before RpcTest::SetUp() to serve the drain
  // RPCs and count calls; null: those RPCs answer UNIMPLEMENTED.
  DrainController* drain_ = nullptr;
  std::function<void()> poke_;
  admin::Metrics* metrics_ = nullptr;
  // Set by a derived fixture to serve RealtimeService.
  realtime::RealtimeHub* realtime_hub_ = nullptr;
  realtime::Broker* realtime_broker_ = nullptr;
  // Set by a derived fixture to serve WatchSessionEvents: the manager
  // reports its changes there.
  session::ChangeFeed* session_changes_ = nullptr;
  // Set by a derived fixture: the server's offload pool (GrpcServerOptions),
  // so the calls that wait on a store run on it as they do on Redis.
  size_t offload_threads_ = 0;
  size_t offload_queue_ = 1024;

  testing::TempDir dir_;
  std::string socket_path_;
  testing::FakeClock clock_;
  std::unique_ptr<RandomSource> random_;
  std::unique_ptr<crypto::Keyring> keyring_;
  std::unique_ptr<crypto::Sealer> sealer_;
  std::unique_ptr<crypto::CookieSigner> signer_;
  std::unique_ptr<session::MemorySessionStore> session_store_;
  std::unique_ptr<MemoryOptOutStore> opt_out_store_;
  std::unique_ptr<session::SessionManager> sessions_;
  std::unique_ptr<OptOutManager> opt_outs_;
  std::unique_ptr<session::MemoryRequestStore> request_store_;
  std::unique_ptr<session::RequestLedger> requests_;
  std::unique_ptr<lifecycle::Instance> instance_;
  std::unique_ptr<GrpcServer> server_;

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::SessionService::Stub> session_stub_;
  std::unique_ptr<v1::AnalyticsService::Stub> analytics_stub_;
  std::unique_ptr<v1::LifecycleService::Stub> lifecycle_stub_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_stub_;
  // Over transport_; its stream is closed (and must end OK) in TearDown.
  std::unique_ptr<SessionCaller> calls_;
};

// Runs a TEST_P once over the unary RPCs and once over Pipe:
//   class FooTest : public RpcTransportTest {};
//   INSTANTIATE_TEST_SUITE_P(Transports, FooTest, kBothTransports, TransportName);
// An instantiation named kOffloadedPrefix runs them with the server's
// offload pool too (what a Redis backend has).
inline constexpr char kOffloadedPrefix[] = "Offloaded";
class RpcTransportTest : public RpcTest, public ::testing::WithParamInterface<Transport> {
 protected:
  void SetUp() override {
    transport_ = GetParam();
    const std::string suite =
        ::testing::UnitTest::GetInstance()->current_test_info()->test_suite_name();
    if (suite.rfind(std::string(kOffloadedPrefix) + "/", 0) == 0) offload_threads_ = 2;
    RpcTest::SetUp();
  }
};

inline const auto kBothTransports = ::testing::Values(Transport::kUnary, Transport::kPipe);

}  // namespace stateside::rpc

#endif  // STATESIDE_TESTS_UNIT_RPC_RPC_FIXTURE_H_
