// An in-process gRPC server implementing the Stateside API (sessions,
// analytics, lifecycle, health) on a Unix socket, with scripted failures, so
// the client's retries, deadlines and readiness wait can be observed.
// Thread-safe: the test thread scripts while gRPC threads serve.
#ifndef STATESIDE_TESTS_UNIT_CLIENT_FAKE_SIDECAR_H_
#define STATESIDE_TESTS_UNIT_CLIENT_FAKE_SIDECAR_H_

#include <grpcpp/grpcpp.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "client/src/retry.h"
#include "grpc/health/v1/health.pb.h"
#include "stateside/v1/lifecycle.pb.h"
#include "stateside/v1/session.pb.h"

namespace stateside::testing {

using client_internal::Rpc;

class FakeSidecar {
 public:
  // Listens on `socket_path` (created by gRPC).
  static absl::StatusOr<std::unique_ptr<FakeSidecar>> Start(
      const std::string& socket_path);
  ~FakeSidecar();

  // The next `n` calls of `rpc` answer `status`; later ones succeed.
  void FailNext(Rpc rpc, int n, grpc::Status status);
  // Calls of `rpc` wait until Unblock() (or until the caller cancels).
  void Block(Rpc rpc);
  void Unblock();
  // What Health.Check answers (SERVING at start).
  void SetHealth(grpc::health::v1::HealthCheckResponse::ServingStatus status);

  // --- WatchDrain: every stream replays the drain events so far (SERVING
  // first), then waits for more. ---
  // Appends an event for every watcher (present and future).
  void PushDrainEvent(v1::DrainState state, int64_t deadline_seconds = 0);
  // Open and future streams end with `status` once they have sent every event.
  void EndDrainStreams(grpc::Status status = grpc::Status::OK);
  // A Drain call pushes DRAINING (deadline_seconds) and DRAINED, then ends
  // the streams OK, as the real sidecar does when no app needs waiting for.
  void DrainImmediatelyOnRequest(int64_t deadline_seconds);
  // The last Drain request that was accepted.
  v1::DrainRequest last_drain() const;
  int watch_calls() const;
  // Streams open right now.
  int watchers() const;

  // How many calls of `rpc` arrived (including failed ones).
  int calls(Rpc rpc) const;
  v1::UpdateSessionRequest last_update() const;
  v1::CreateSessionRequest last_create() const;
  // Regenerate answers CannedSession() whatever the request asks (owner
  // "alice"): a sidecar of API revision 1 ignores user_id.
  v1::RegenerateSessionRequest last_regenerate() const;
  // The request_id of every Create and Regenerate attempt, in order.
  std::vector<std::string> request_ids() const;

  // The session every Get/Regenerate returns: id kSessionId, attributes
  // {"cart": "[]", "blob": "\0\xff\n"}, version 7, fixed timestamps.
  static v1::Session CannedSession();
  static constexpr char kSessionId[] = "c2Vzc2lvbi1pZC1mb3ItdGVzdHMtMDEyMzQ1Njc4OWE";
  static constexpr char kCookie[] = "c2Vzc2lvbi1pZC1mb3ItdGVzdHMtMDEyMzQ1Njc4OWE.sig";

  // Called by the service implementations on entry: counts the call, waits
  // if blocked, returns the scripted failure or OK.
  grpc::Status Enter(Rpc rpc, grpc::ServerContext* context);
  grpc::health::v1::HealthCheckResponse::ServingStatus health() const;
  void RecordUpdate(const v1::UpdateSessionRequest& request);
  void RecordCreate(const v1::CreateSessionRequest& request);
  void RecordRegenerate(const v1::RegenerateSessionRequest& request);
  grpc::Status ServeWatchDrain(grpc::ServerContext* context,
                               grpc::ServerWriter<v1::DrainEvent>* writer);
  // Called by the Drain implementation after Enter succeeded.
  void OnDrain(const v1::DrainRequest& request);

 private:
  struct Services;
  FakeSidecar();

  mutable absl::Mutex mu_;
  std::map<Rpc, int> calls_ ABSL_GUARDED_BY(mu_);
  std::map<Rpc, std::pair<int, grpc::Status>> failures_ ABSL_GUARDED_BY(mu_);
  std::map<Rpc, bool> blocked_ ABSL_GUARDED_BY(mu_);
  bool unblocked_ ABSL_GUARDED_BY(mu_) = false;
  grpc::health::v1::HealthCheckResponse::ServingStatus health_ ABSL_GUARDED_BY(mu_) =
      grpc::health::v1::HealthCheckResponse::SERVING;
  v1::UpdateSessionRequest last_update_ ABSL_GUARDED_BY(mu_);
  v1::CreateSessionRequest last_create_ ABSL_GUARDED_BY(mu_);
  v1::RegenerateSessionRequest last_regenerate_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> request_ids_ ABSL_GUARDED_BY(mu_);
  absl::CondVar drain_cv_;  // signalled when the fields below change
  std::vector<v1::DrainEvent> drain_events_ ABSL_GUARDED_BY(mu_);
  std::optional<grpc::Status> drain_end_ ABSL_GUARDED_BY(mu_);
  std::optional<int64_t> drain_on_request_ ABSL_GUARDED_BY(mu_);
  v1::DrainRequest last_drain_ ABSL_GUARDED_BY(mu_);
  int watch_calls_ ABSL_GUARDED_BY(mu_) = 0;
  int watchers_ ABSL_GUARDED_BY(mu_) = 0;

  std::unique_ptr<Services> services_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace stateside::testing

#endif  // STATESIDE_TESTS_UNIT_CLIENT_FAKE_SIDECAR_H_
