// stateside.v1.SessionService over a SessionManager: every RPC is a thin
// callback-API handler that checks the wire format, converts, calls the
// manager and finishes the call (see unary_call.h for why the methods take
// raw bytes). Handlers do not block beyond the manager's call; a manager
// with async completions would finish the same UnaryCall from its callback.
// Thread-safe: no state besides the manager pointer.
#ifndef STATESIDE_SIDECAR_RPC_SESSION_SERVICE_H_
#define STATESIDE_SIDECAR_RPC_SESSION_SERVICE_H_

#include <string_view>

#include "sidecar/admin/metrics.h"
#include "sidecar/rpc/unary_call.h"
#include "sidecar/session/session_manager.h"
#include "stateside/v1/session.grpc.pb.h"

namespace stateside::rpc {

namespace internal {
using V1Sessions = v1::SessionService;
using SessionServiceBase = V1Sessions::WithRawCallbackMethod_Create<
    V1Sessions::WithRawCallbackMethod_Get<V1Sessions::WithRawCallbackMethod_Update<
        V1Sessions::WithRawCallbackMethod_Touch<V1Sessions::WithRawCallbackMethod_Destroy<
            V1Sessions::WithRawCallbackMethod_Regenerate<
                V1Sessions::WithRawCallbackMethod_ListUserSessions<
                    V1Sessions::WithRawCallbackMethod_DestroyUserSessions<
                        V1Sessions::CallbackService>>>>>>>>;
}  // namespace internal

class SessionService final : public internal::SessionServiceBase {
 public:
  // REQUIRES: `sessions` (and `metrics`, if not null) outlive the service.
  explicit SessionService(SessionManager* sessions,
                          admin::Metrics* metrics = nullptr)
      : sessions_(sessions), metrics_(metrics) {}

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

 private:
  RpcMeter Meter(std::string_view method) const { return {metrics_, method}; }

  SessionManager* const sessions_;
  admin::Metrics* const metrics_;
};

}  // namespace stateside::rpc

#endif  // STATESIDE_SIDECAR_RPC_SESSION_SERVICE_H_
