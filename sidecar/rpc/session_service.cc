// SessionService handlers: each parses the request (unary_call.h) and runs
// the shared operation (operations.h); Pipe is pipe.cc's.
#include "sidecar/rpc/session_service.h"

#include <utility>

#include "sidecar/rpc/pipe.h"
#include "sidecar/rpc/watch_session_events.h"
#include "sidecar/rpc/unary_call.h"

namespace stateside::rpc {
namespace {

using CreateCall = UnaryCall<v1::CreateSessionRequest, v1::CreateSessionResponse>;
using GetCall = UnaryCall<v1::GetSessionRequest, v1::GetSessionResponse>;
using UpdateCall = UnaryCall<v1::UpdateSessionRequest, v1::UpdateSessionResponse>;
using TouchCall = UnaryCall<v1::TouchSessionRequest, v1::TouchSessionResponse>;
using DestroyCall = UnaryCall<v1::DestroySessionRequest, v1::DestroySessionResponse>;
using RegenerateCall = UnaryCall<v1::RegenerateSessionRequest, v1::RegenerateSessionResponse>;
using ListCall = UnaryCall<v1::ListUserSessionsRequest, v1::ListUserSessionsResponse>;
using DestroyUserCall =
    UnaryCall<v1::DestroyUserSessionsRequest, v1::DestroyUserSessionsResponse>;

}  // namespace

grpc::ServerUnaryReactor* SessionService::Create(Context* context, const Bytes* request,
                                             Bytes* response) {
  return RunOperation<CreateCall>(context, request, response, Meter("SessionService/Create"), ops_,
                     &Operations::Create);
}

grpc::ServerUnaryReactor* SessionService::Get(Context* context, const Bytes* request,
                                             Bytes* response) {
  return RunOperation<GetCall>(context, request, response, Meter("SessionService/Get"), ops_,
                     &Operations::Get);
}

grpc::ServerUnaryReactor* SessionService::Update(Context* context, const Bytes* request,
                                             Bytes* response) {
  return RunOperation<UpdateCall>(context, request, response, Meter("SessionService/Update"), ops_,
                     &Operations::Update);
}

grpc::ServerUnaryReactor* SessionService::Touch(Context* context, const Bytes* request,
                                             Bytes* response) {
  return RunOperation<TouchCall>(context, request, response, Meter("SessionService/Touch"), ops_,
                     &Operations::Touch);
}

grpc::ServerUnaryReactor* SessionService::Destroy(Context* context, const Bytes* request,
                                             Bytes* response) {
  return RunOperation<DestroyCall>(context, request, response, Meter("SessionService/Destroy"), ops_,
                     &Operations::Destroy);
}

grpc::ServerUnaryReactor* SessionService::Regenerate(Context* context, const Bytes* request,
                                             Bytes* response) {
  return RunOperation<RegenerateCall>(context, request, response, Meter("SessionService/Regenerate"), ops_,
                     &Operations::Regenerate);
}

grpc::ServerUnaryReactor* SessionService::ListUserSessions(Context* context, const Bytes* request,
                                             Bytes* response) {
  return RunOperation<ListCall>(context, request, response, Meter("SessionService/ListUserSessions"), ops_,
                     &Operations::ListUserSessions);
}

grpc::ServerUnaryReactor* SessionService::DestroyUserSessions(Context* context, const Bytes* request,
                                             Bytes* response) {
  return RunOperation<DestroyUserCall>(context, request, response, Meter("SessionService/DestroyUserSessions"), ops_,
                     &Operations::DestroyUserSessions);
}

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* SessionService::Pipe(
    Context* context) {
  return PipeReactor::Start(context, &ops_, metrics_, max_message_bytes_);
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* SessionService::WatchSessionEvents(
    Context* context, const Bytes* request) {
  if (changes_ == nullptr) {
    class Refuse final : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
     public:
      Refuse() {
        Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                            "this server does not serve session events"));
      }
      void OnDone() override { delete this; }
    };
    return new Refuse();
  }
  return WatchSessionEventsReactor::Start(changes_, request);
}

}  // namespace stateside::rpc
