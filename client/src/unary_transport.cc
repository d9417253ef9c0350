#include "client/src/unary_transport.h"

#include <utility>
#include <vector>

#include "client/src/convert.h"

namespace stateside::client_internal {

UnaryTransport::UnaryTransport(const std::shared_ptr<::grpc::Channel>& channel)
    : sessions_(v1::SessionService::NewStub(channel)),
      analytics_(v1::AnalyticsService::NewStub(channel)) {}

UnaryTransport::~UnaryTransport() { Shutdown(); }

void UnaryTransport::Start(v1::PipeCall call, absl::Time deadline, OutcomeCallback done) {
  v1::SessionService::Stub::async_interface* s = sessions_->async();
  v1::AnalyticsService::Stub::async_interface* a = analytics_->async();
  // One case per operation: the unary RPC, and where its response goes.
#define STATESIDE_UNARY_CASE(kCase, field, Request, Response, service, method)      \
  case v1::PipeCall::kCase:                                                         \
    return calls_.Issue<v1::Request, v1::Response>(                                 \
        std::move(*call.mutable_##field()), deadline,                               \
        [service](::grpc::ClientContext* c, const v1::Request* q, v1::Response* r,  \
                  std::function<void(::grpc::Status)> f) {                          \
          service->method(c, q, r, std::move(f));                                   \
        },                                                                          \
        [done = std::move(done)](absl::Status status, v1::Response& r) mutable {    \
          Outcome outcome{std::move(status), {}};                                   \
          if (outcome.status.ok()) outcome.result.mutable_##field()->Swap(&r);      \
          done(std::move(outcome));                                                 \
        })
  switch (call.op_case()) {
    STATESIDE_UNARY_CASE(kCreate, create, CreateSessionRequest, CreateSessionResponse, s,
                         Create);
    STATESIDE_UNARY_CASE(kGet, get, GetSessionRequest, GetSessionResponse, s, Get);
    STATESIDE_UNARY_CASE(kUpdate, update, UpdateSessionRequest, UpdateSessionResponse, s,
                         Update);
    STATESIDE_UNARY_CASE(kTouch, touch, TouchSessionRequest, TouchSessionResponse, s, Touch);
    STATESIDE_UNARY_CASE(kDestroy, destroy, DestroySessionRequest, DestroySessionResponse,
                         s, Destroy);
    STATESIDE_UNARY_CASE(kRegenerate, regenerate, RegenerateSessionRequest,
                         RegenerateSessionResponse, s, Regenerate);
    STATESIDE_UNARY_CASE(kListUserSessions, list_user_sessions, ListUserSessionsRequest,
                         ListUserSessionsResponse, s, ListUserSessions);
    STATESIDE_UNARY_CASE(kDestroyUserSessions, destroy_user_sessions,
                         DestroyUserSessionsRequest, DestroyUserSessionsResponse, s,
                         DestroyUserSessions);
    STATESIDE_UNARY_CASE(kSetOptOut, set_opt_out, SetOptOutRequest, SetOptOutResponse, a,
                         SetOptOut);
    STATESIDE_UNARY_CASE(kGetOptOut, get_opt_out, GetOptOutRequest, GetOptOutResponse, a,
                         GetOptOut);
    case v1::PipeCall::OP_NOT_SET:
      break;
  }
#undef STATESIDE_UNARY_CASE
  done(Outcome{absl::InternalError("client bug: a call with no operation"), {}});
}

void UnaryTransport::Shutdown() { calls_.Shutdown(); }

}  // namespace stateside::client_internal
