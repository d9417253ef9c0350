#include "client/src/unary_transport.h"

#include <utility>
#include <vector>

#include "client/src/convert.h"

namespace stateside::client_internal {

UnaryTransport::UnaryTransport(const std::shared_ptr<::grpc::Channel>& channel)
    : sessions_(v1::SessionService::NewStub(channel)),
      analytics_(v1::AnalyticsService::NewStub(channel)) {}

UnaryTransport::~UnaryTransport() { Shutdown(); }

template <typename Request, typename Response, typename Rpc, typename Store>
void UnaryTransport::Issue(Request request, absl::Time deadline, OutcomeCallback done,
                           Rpc rpc, Store store) {
  struct Attempt : Running {
    Request request;
    Response response;
    OutcomeCallback done;
  };
  auto attempt = std::make_shared<Attempt>();
  Attempt* a = attempt.get();
  a->request = std::move(request);
  a->done = std::move(done);
  a->context.set_deadline(absl::ToChronoTime(deadline));
  bool refused = false;
  {
    absl::MutexLock lock(&mu_);
    refused = shut_down_;
    if (!refused) running_.emplace(a, std::move(attempt));
  }
  if (refused) {
    return a->done(Outcome{absl::CancelledError("the client is shutting down"), {}});
  }
  rpc(&a->context, &a->request, &a->response, [this, a, store](::grpc::Status status) {
    Outcome outcome{FromGrpcStatus(status), {}};
    if (outcome.status.ok()) store(outcome.result, a->response);
    a->done(std::move(outcome));
    // Free the attempt (its context holds a reference to the channel) while
    // `finishing_` keeps Shutdown waiting, so the Client — and with it the
    // last reference to the channel — is certainly alive: dropping a
    // channel's last reference on a gRPC callback thread deadlocks gRPC's
    // callback thread pool, which then crashes.
    std::shared_ptr<Running> attempt;
    {
      absl::MutexLock lock(&mu_);
      auto it = running_.find(a);
      attempt = std::move(it->second);
      running_.erase(it);  // before the free: a new attempt may reuse the address
      ++finishing_;
    }
    attempt.reset();
    absl::MutexLock lock(&mu_);
    --finishing_;
  });
}

void UnaryTransport::Start(v1::PipeCall call, absl::Time deadline, OutcomeCallback done) {
  v1::SessionService::Stub::async_interface* s = sessions_->async();
  v1::AnalyticsService::Stub::async_interface* a = analytics_->async();
  // One case per operation: the unary RPC, and where its response goes.
#define STATESIDE_UNARY_CASE(kCase, field, Request, Response, service, method)      \
  case v1::PipeCall::kCase:                                                         \
    return Issue<v1::Request, v1::Response>(                                        \
        std::move(*call.mutable_##field()), deadline, std::move(done),              \
        [service](::grpc::ClientContext* c, const v1::Request* q, v1::Response* r,  \
                  std::function<void(::grpc::Status)> f) {                          \
          service->method(c, q, r, std::move(f));                                   \
        },                                                                          \
        [](v1::PipeResult& result, v1::Response& r) { result.mutable_##field()->Swap(&r); })
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

void UnaryTransport::Shutdown() {
  std::vector<std::shared_ptr<Running>> running;
  {
    absl::MutexLock lock(&mu_);
    shut_down_ = true;
    for (const auto& [key, attempt] : running_) running.push_back(attempt);
  }
  // Unlocked: a callback that TryCancel runs at once takes mu_. The shared
  // pointers keep the contexts alive meanwhile.
  for (const auto& attempt : running) attempt->context.TryCancel();
  running.clear();
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](UnaryTransport* t) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t->mu_) {
        return t->running_.empty() && t->finishing_ == 0;
      },
      this));
}

}  // namespace stateside::client_internal
