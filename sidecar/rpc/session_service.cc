// SessionService handlers.
#include "sidecar/rpc/session_service.h"

#include <optional>
#include <utility>
#include <vector>

#include "sidecar/rpc/convert.h"
#include "sidecar/rpc/unary_call.h"

namespace stateside::rpc {
namespace {

using CreateCall = UnaryCall<v1::CreateSessionRequest, v1::CreateSessionResponse>;
using GetCall = UnaryCall<v1::GetSessionRequest, v1::GetSessionResponse>;
using UpdateCall = UnaryCall<v1::UpdateSessionRequest, v1::UpdateSessionResponse>;
using TouchCall = UnaryCall<v1::TouchSessionRequest, v1::TouchSessionResponse>;
using DestroyCall = UnaryCall<v1::DestroySessionRequest, v1::DestroySessionResponse>;
using RegenerateCall =
    UnaryCall<v1::RegenerateSessionRequest, v1::RegenerateSessionResponse>;
using ListCall =
    UnaryCall<v1::ListUserSessionsRequest, v1::ListUserSessionsResponse>;
using DestroyUserCall =
    UnaryCall<v1::DestroyUserSessionsRequest, v1::DestroyUserSessionsResponse>;

absl::Status MissingUserId() {
  return absl::InvalidArgumentError("user_id: required");
}

// The key of a request that names one session.
template <typename Request>
absl::StatusOr<SessionKey> KeyOf(const Request& request) {
  return KeyFromProto(request.has_key(), request.key(), "key");
}

}  // namespace

grpc::ServerUnaryReactor* SessionService::Create(Context* context,
                                                 const Bytes* request,
                                                 Bytes* response) {
  return CreateCall::Start(context, request, response, Meter("SessionService/Create"), [this](CreateCall* call) {
    auto params = CreateParamsFromProto(call->request());
    if (!params.ok()) return call->Finish(params.status());
    call->Finish(sessions_->Create(*params),
                 [](Session session, v1::CreateSessionResponse* out) {
                   ToProto(session, out->mutable_session());
                 });
  });
}

grpc::ServerUnaryReactor* SessionService::Get(Context* context,
                                              const Bytes* request,
                                              Bytes* response) {
  return GetCall::Start(context, request, response, Meter("SessionService/Get"), [this](GetCall* call) {
    auto key = KeyOf(call->request());
    if (!key.ok()) return call->Finish(key.status());
    // Async: a gRPC thread never waits for the store (there are two).
    sessions_->GetAsync(*key, /*touch=*/!call->request().no_touch(),
                        [call](absl::StatusOr<Session> session) {
                          call->Finish(std::move(session),
                                       [](Session s, v1::GetSessionResponse* out) {
                                         ToProto(s, out->mutable_session());
                                       });
                        });
  });
}

grpc::ServerUnaryReactor* SessionService::Update(Context* context,
                                                 const Bytes* request,
                                                 Bytes* response) {
  return UpdateCall::Start(context, request, response, Meter("SessionService/Update"), [this](UpdateCall* call) {
    auto key = KeyOf(call->request());
    if (!key.ok()) return call->Finish(key.status());
    sessions_->UpdateAsync(*key, UpdateParamsFromProto(call->request()),
                           [call](absl::StatusOr<SessionInfo> info) {
                             call->Finish(std::move(info),
                                          [](const SessionInfo& i,
                                             v1::UpdateSessionResponse* out) {
                                            ToProto(i, out->mutable_metadata());
                                          });
                           });
  });
}

grpc::ServerUnaryReactor* SessionService::Touch(Context* context,
                                                const Bytes* request,
                                                Bytes* response) {
  return TouchCall::Start(context, request, response, Meter("SessionService/Touch"), [this](TouchCall* call) {
    auto key = KeyOf(call->request());
    if (!key.ok()) return call->Finish(key.status());
    call->Finish(sessions_->Touch(*key),
                 [](const SessionInfo& info, v1::TouchSessionResponse* out) {
                   ToProto(info, out->mutable_metadata());
                 });
  });
}

grpc::ServerUnaryReactor* SessionService::Destroy(Context* context,
                                                  const Bytes* request,
                                                  Bytes* response) {
  return DestroyCall::Start(context, request, response, Meter("SessionService/Destroy"), [this](DestroyCall* call) {
    auto key = KeyOf(call->request());
    if (!key.ok()) return call->Finish(key.status());
    call->Finish(sessions_->Destroy(*key),
                 [](bool existed, v1::DestroySessionResponse* out) {
                   out->set_existed(existed);
                 });
  });
}

grpc::ServerUnaryReactor* SessionService::Regenerate(Context* context,
                                                     const Bytes* request,
                                                     Bytes* response) {
  return RegenerateCall::Start(
      context, request, response, Meter("SessionService/Regenerate"), [this](RegenerateCall* call) {
        auto key = KeyOf(call->request());
        if (!key.ok()) return call->Finish(key.status());
        call->Finish(sessions_->Regenerate(*key),
                     [](Session session, v1::RegenerateSessionResponse* out) {
                       ToProto(session, out->mutable_session());
                     });
      });
}

grpc::ServerUnaryReactor* SessionService::ListUserSessions(Context* context,
                                                           const Bytes* request,
                                                           Bytes* response) {
  return ListCall::Start(context, request, response, Meter("SessionService/ListUserSessions"), [this](ListCall* call) {
    const std::string& user_id = call->request().user_id();
    if (user_id.empty()) return call->Finish(MissingUserId());
    call->Finish(sessions_->ListUserSessions(user_id),
                 [](const std::vector<SessionInfo>& infos,
                    v1::ListUserSessionsResponse* out) {
                   for (const SessionInfo& info : infos) {
                     ToProto(info, out->add_sessions());
                   }
                 });
  });
}

grpc::ServerUnaryReactor* SessionService::DestroyUserSessions(Context* context,
                                                              const Bytes* request,
                                                              Bytes* response) {
  return DestroyUserCall::Start(
      context, request, response, Meter("SessionService/DestroyUserSessions"), [this](DestroyUserCall* call) {
        const v1::DestroyUserSessionsRequest& r = call->request();
        if (r.user_id().empty()) return call->Finish(MissingUserId());
        // An empty `keep` message (neither id nor cookie) is no keep at all,
        // which is also what the manager makes of a keep naming no session.
        std::optional<SessionKey> keep;
        if (r.has_keep() && r.keep().kind_case() != v1::SessionKey::KIND_NOT_SET) {
          auto key = KeyFromProto(true, r.keep(), "keep");
          if (!key.ok()) return call->Finish(key.status());
          keep = *std::move(key);
        }
        call->Finish(sessions_->DestroyUserSessions(r.user_id(), keep),
                     [](uint32_t destroyed, v1::DestroyUserSessionsResponse* out) {
                       out->set_destroyed(destroyed);
                     });
      });
}

}  // namespace stateside::rpc
