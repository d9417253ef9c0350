// One implementation of every session and opt-out operation, shared by the
// unary handlers (session_service.cc, analytics_service.cc) and the Pipe
// stream (pipe.cc): a proto request in, a proto response out, and the status
// the unary RPC answers. So both transports give the same answers and codes
// by construction.
//
// No operation holds the calling (gRPC) thread for a store round trip: Get,
// Update, Touch, Destroy and an anonymous Create without a request_id
// complete asynchronously on the store's thread (Redis); the others, which
// take several round trips or block in their managers, run on the Offload
// pool when one is given (see offload.h), and inline without one (the memory
// store, which never waits).
//
// `probe` (may be null) tells whether the call still wants an answer: an
// offloaded operation that its call's cancellation or deadline overtook
// while it waited for a thread is answered the probe's status without
// running (offload.h). The others ignore it.
//
// `done` runs exactly once: on the calling thread, on the store's thread or
// on an offload thread; it must not block. `response` must stay alive and
// untouched until then. The request is only read before the call returns
// (what a later step needs is copied).
// Thread-safe: no state besides the managers.
#ifndef STATESIDE_SIDECAR_RPC_OPERATIONS_H_
#define STATESIDE_SIDECAR_RPC_OPERATIONS_H_

#include <optional>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "sidecar/analytics/opt_out_manager.h"
#include "sidecar/rpc/offload.h"
#include "sidecar/rpc/request_once.h"
#include "sidecar/session/request_ledger.h"
#include "sidecar/realtime/hub.h"
#include "sidecar/session/session_manager.h"
#include "stateside/v1/analytics.pb.h"
#include "stateside/v1/session.pb.h"

namespace stateside::rpc {

// The realtime event DestroyUserSessions' close_connections publishes to
// the user (session.proto): the app closes the connections it names.
inline constexpr const char* kCloseConnectionsEvent = realtime::kCloseEventName;
inline constexpr char kCloseConnectionsPayload[] = "sessions_destroyed";

class Operations {
 public:
  using Done = absl::AnyInvocable<void(absl::Status) &&>;

  // A Get or Update of a transport that reuses its per-call state (a pool
  // per connection or stream): the call goes down to the store and back as
  // this one object (session::SessionCall), with no closure allocated on
  // the way. OperationDone runs once, as `done` would, the response written.
  class Call : public session::SessionCall {
   public:
    virtual void OperationDone(absl::Status status) = 0;

   private:
    friend class Operations;
    void SessionRead(absl::StatusOr<session::Session> session) final;
    void SessionUpdated(absl::StatusOr<session::SessionInfo> info) final;
    v1::GetSessionResponse* get_ = nullptr;        // a Get's response
    v1::UpdateSessionResponse* update_ = nullptr;  // an Update's
  };

  // Either manager may be null when a service needs only the other; calling
  // an operation of a missing manager answers UNIMPLEMENTED. Without a
  // ledger a request_id is ignored (every call applies). `hub` (may be
  // null: close_connections answers UNIMPLEMENTED) carries
  // DestroyUserSessions' close_connections to the user's connections.
  // `offload` (may be null: they run inline) runs the operations that wait
  // on their store; a full pool answers them UNAVAILABLE (reason OVERLOADED).
  Operations(session::SessionManager* sessions, OptOutManager* opt_outs,
             const session::RequestLedger* requests = nullptr,
             realtime::RealtimeHub* hub = nullptr, Offload* offload = nullptr)
      : sessions_(sessions), opt_outs_(opt_outs), requests_(requests), hub_(hub),
        offload_(offload) {}

  void Create(const v1::CreateSessionRequest& request, v1::CreateSessionResponse* response,
              Done done,
              Offload::Probe probe = nullptr) const;
  void Get(const v1::GetSessionRequest& request, v1::GetSessionResponse* response,
           Done done,
              Offload::Probe probe = nullptr) const;
  void Update(const v1::UpdateSessionRequest& request, v1::UpdateSessionResponse* response,
              Done done,
              Offload::Probe probe = nullptr) const;
  // Get and Update of a reused call (Call): call->OperationDone gets the
  // status. The forms above run these with a call of their own.
  void GetOn(const v1::GetSessionRequest& request, v1::GetSessionResponse* response,
             Call* call) const;
  void UpdateOn(const v1::UpdateSessionRequest& request, v1::UpdateSessionResponse* response,
                Call* call) const;
  void Touch(const v1::TouchSessionRequest& request, v1::TouchSessionResponse* response,
             Done done,
              Offload::Probe probe = nullptr) const;
  void Destroy(const v1::DestroySessionRequest& request, v1::DestroySessionResponse* response,
               Done done,
              Offload::Probe probe = nullptr) const;
  void Regenerate(const v1::RegenerateSessionRequest& request,
                  v1::RegenerateSessionResponse* response, Done done,
              Offload::Probe probe = nullptr) const;
  void ListUserSessions(const v1::ListUserSessionsRequest& request,
                        v1::ListUserSessionsResponse* response, Done done,
              Offload::Probe probe = nullptr) const;
  void DestroyUserSessions(const v1::DestroyUserSessionsRequest& request,
                           v1::DestroyUserSessionsResponse* response, Done done,
              Offload::Probe probe = nullptr) const;
  void SetOptOut(const v1::SetOptOutRequest& request, v1::SetOptOutResponse* response,
                 Done done,
              Offload::Probe probe = nullptr) const;
  void GetOptOut(const v1::GetOptOutRequest& request, v1::GetOptOutResponse* response,
                 Done done,
              Offload::Probe probe = nullptr) const;

 private:
  // Runs `work` (which ends by calling the Done it is given) on offload_, or
  // inline without one; a refusal of the pool, or the probe's status when a
  // thread takes it, answers `done` without running `work`.
  void Offloaded(absl::AnyInvocable<void(Done) &&> work, Done done,
                 Offload::Probe probe) const;
  // RunOnce (request_once.h) of `run` under `claim`, offloaded.
  // The call of a plain Get or Update (operations.cc).
  class AloneCall;
  template <typename Response>
  void OffloadedOnce(std::optional<OnceClaim> claim, Response* response,
                     absl::AnyInvocable<void(Done) &&> run, Done done,
                     Offload::Probe probe) const;

  session::SessionManager* const sessions_;
  OptOutManager* const opt_outs_;
  const session::RequestLedger* const requests_;
  realtime::RealtimeHub* const hub_;
  Offload* const offload_;
};

}  // namespace stateside::rpc

#endif  // STATESIDE_SIDECAR_RPC_OPERATIONS_H_
