// stateside.v1.SessionService: every unary RPC is a thin callback-API
// handler that checks the wire format and runs the shared operation
// (operations.h), which finishes the call, possibly from the store's thread
// or an offload thread (see unary_call.h for why the methods take raw bytes). Pipe carries the same
// operations, and the opt-outs, multiplexed on one stream (pipe.h).
// Thread-safe: no state besides the managers.
#ifndef STATESIDE_SIDECAR_RPC_SESSION_SERVICE_H_
#define STATESIDE_SIDECAR_RPC_SESSION_SERVICE_H_

#include <cstddef>
#include <string_view>

#include "sidecar/admin/metrics.h"
#include "sidecar/rpc/operations.h"
#include "sidecar/rpc/unary_call.h"
#include "sidecar/session/change_feed.h"
#include "sidecar/session/session_manager.h"
#include "stateside/v1/session.grpc.pb.h"

namespace stateside::rpc {

namespace internal {
using V1Sessions = v1::SessionService;
// Every method raw (so the typed callback variants, whose Pipe would clash
// with the raw one, are not in the chain): over the plain Service.
using SessionServiceBase = V1Sessions::WithRawCallbackMethod_WatchSessionEvents<
    V1Sessions::WithRawCallbackMethod_Pipe<
    V1Sessions::WithRawCallbackMethod_Create<
    V1Sessions::WithRawCallbackMethod_Get<V1Sessions::WithRawCallbackMethod_Update<
        V1Sessions::WithRawCallbackMethod_Touch<V1Sessions::WithRawCallbackMethod_Destroy<
            V1Sessions::WithRawCallbackMethod_Regenerate<
                V1Sessions::WithRawCallbackMethod_ListUserSessions<
                    V1Sessions::WithRawCallbackMethod_DestroyUserSessions<
                        V1Sessions::Service>>>>>>>>>>;
}  // namespace internal

class SessionService final : public internal::SessionServiceBase {
 public:
  // REQUIRES: `sessions` (and `opt_outs`, `metrics`, `requests`, `changes`,
  // `hub`, if not null) outlive the service. Without `opt_outs`, Pipe
  // answers its opt-out calls UNIMPLEMENTED; without `requests` a request_id
  // is ignored; without `changes`, WatchSessionEvents answers UNIMPLEMENTED;
  // without `hub`, so does DestroyUserSessions' close_connections.
  // `max_message_bytes`: the server's receive limit, which Pipe announces to
  // its clients. `offload` (may be null) as Operations'.
  SessionService(session::SessionManager* sessions, OptOutManager* opt_outs,
                 admin::Metrics* metrics, size_t max_message_bytes,
                 const session::RequestLedger* requests = nullptr,
                 session::ChangeFeed* changes = nullptr, realtime::RealtimeHub* hub = nullptr,
                 Offload* offload = nullptr)
      : ops_(sessions, opt_outs, requests, hub, offload),
        metrics_(metrics),
        max_message_bytes_(max_message_bytes),
        changes_(changes) {}

  using Context = grpc::CallbackServerContext;
  using Bytes = grpc::ByteBuffer;
  grpc::ServerUnaryReactor* Create(Context* context, const Bytes* request,
                                   Bytes* response) override;
  grpc::ServerUnaryReactor* Get(Context* context, const Bytes* request,
                                Bytes* response) override;
  grpc::ServerUnaryReactor* Update(Context* context, const Bytes* request,
                                   Bytes* response) override;
  grpc::ServerUnaryReactor* Touch(Context* context, const Bytes* request,
                                  Bytes* response) override;
  grpc::ServerUnaryReactor* Destroy(Context* context, const Bytes* request,
                                    Bytes* response) override;
  grpc::ServerUnaryReactor* Regenerate(Context* context, const Bytes* request,
                                       Bytes* response) override;
  grpc::ServerUnaryReactor* ListUserSessions(Context* context,
                                             const Bytes* request,
                                             Bytes* response) override;
  grpc::ServerUnaryReactor* DestroyUserSessions(Context* context,
                                                const Bytes* request,
                                                Bytes* response) override;
  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* Pipe(Context* context) override;
  grpc::ServerWriteReactor<grpc::ByteBuffer>* WatchSessionEvents(Context* context,
                                                                 const Bytes* request) override;

 private:
  RpcMeter Meter(std::string_view method) const { return {metrics_, method}; }

  const Operations ops_;
  admin::Metrics* const metrics_;
  const size_t max_message_bytes_;
  session::ChangeFeed* const changes_;
};

}  // namespace stateside::rpc

#endif  // STATESIDE_SIDECAR_RPC_SESSION_SERVICE_H_
