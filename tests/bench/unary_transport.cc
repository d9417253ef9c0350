// Unary calls through the generated callback stubs: stub->async()->Get(...).
#include "tests/bench/unary_transport.h"

#include <chrono>
#include <functional>
#include <optional>
#include <utility>

#include "absl/time/time.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "stateside/v1/analytics.grpc.pb.h"
#include "stateside/v1/session.grpc.pb.h"

namespace stateside::bench {
namespace {

namespace v1 = ::stateside::v1;
namespace health = ::grpc::health::v1;

// The stubs of one channel.
struct Stubs {
  explicit Stubs(const std::shared_ptr<grpc::Channel>& channel)
      : health(health::Health::NewStub(channel)),
        sessions(v1::SessionService::NewStub(channel)),
        analytics(v1::AnalyticsService::NewStub(channel)) {}
  std::unique_ptr<health::Health::Stub> health;
  std::unique_ptr<v1::SessionService::Stub> sessions;
  std::unique_ptr<v1::AnalyticsService::Stub> analytics;
};

using DoneFn = std::function<void(grpc::Status)>;

template <typename Request, typename Response>
class UnaryTransport final : public Transport {
 public:
  // Starts the op's RPC on one channel's stubs.
  using Launcher = void (*)(Stubs&, grpc::ClientContext*, const Request*,
                            Response*, DoneFn);

  UnaryTransport(const TransportParams& params, const Request& prototype,
                 Launcher launch)
      : launch_(launch),
        sink_(params.sink),
        call_timeout_(absl::ToChronoNanoseconds(params.call_timeout)),
        slots_(new Slot[params.slots]) {
    for (const auto& channel : params.channels) {
      stubs_.push_back(std::make_unique<Stubs>(channel));
    }
    for (size_t i = 0; i < params.slots; ++i) slots_[i].request = prototype;
  }

  void Issue(size_t slot) override {
    Slot& s = slots_[slot];
    // A ClientContext serves one call only: a fresh one per call.
    s.context.emplace();
    s.context->set_deadline(std::chrono::system_clock::now() + call_timeout_);
    // [this, slot] fits std::function's inline buffer: no allocation per call.
    launch_(*stubs_[slot % stubs_.size()], &*s.context, &s.request, &s.response,
            [this, slot](grpc::Status status) { Done(slot, status); });
  }

 private:
  // One caller's state; touched only by its one outstanding call.
  struct Slot {
    std::optional<grpc::ClientContext> context;
    Request request;
    Response response;
  };

  void Done(size_t slot, const grpc::Status& status) {
    // gRPC has released the call before running this callback, so the
    // context may go now (and the sink may start the slot's next call).
    slots_[slot].context.reset();
    sink_->OnCallDone(slot, status.error_code());
  }

  const Launcher launch_;
  CompletionSink* const sink_;
  const std::chrono::nanoseconds call_timeout_;
  std::vector<std::unique_ptr<Stubs>> stubs_;
  // ClientContext cannot move, so the slots never do either.
  const std::unique_ptr<Slot[]> slots_;
};

template <typename Request, typename Response>
std::unique_ptr<Transport> Make(
    const TransportParams& params, const Request& prototype,
    typename UnaryTransport<Request, Response>::Launcher launch) {
  return std::make_unique<UnaryTransport<Request, Response>>(params, prototype,
                                                             launch);
}

}  // namespace

std::unique_ptr<Transport> MakeUnaryTransport(TransportParams params) {
  const Workload& w = *params.workload;
  switch (w.op) {
    case Op::kPing:
      return Make<health::HealthCheckRequest, health::HealthCheckResponse>(
          params, w.ping,
          [](Stubs& s, grpc::ClientContext* c, const health::HealthCheckRequest* q,
             health::HealthCheckResponse* r, DoneFn done) {
            s.health->async()->Check(c, q, r, std::move(done));
          });
    case Op::kSessionGet:
      return Make<v1::GetSessionRequest, v1::GetSessionResponse>(
          params, w.get,
          [](Stubs& s, grpc::ClientContext* c, const v1::GetSessionRequest* q,
             v1::GetSessionResponse* r, DoneFn done) {
            s.sessions->async()->Get(c, q, r, std::move(done));
          });
    case Op::kSessionUpdate:
      return Make<v1::UpdateSessionRequest, v1::UpdateSessionResponse>(
          params, w.update,
          [](Stubs& s, grpc::ClientContext* c, const v1::UpdateSessionRequest* q,
             v1::UpdateSessionResponse* r, DoneFn done) {
            s.sessions->async()->Update(c, q, r, std::move(done));
          });
    case Op::kSessionCreate:
      return Make<v1::CreateSessionRequest, v1::CreateSessionResponse>(
          params, w.create,
          [](Stubs& s, grpc::ClientContext* c, const v1::CreateSessionRequest* q,
             v1::CreateSessionResponse* r, DoneFn done) {
            s.sessions->async()->Create(c, q, r, std::move(done));
          });
    case Op::kOptOutGet:
      return Make<v1::GetOptOutRequest, v1::GetOptOutResponse>(
          params, w.opt_out_get,
          [](Stubs& s, grpc::ClientContext* c, const v1::GetOptOutRequest* q,
             v1::GetOptOutResponse* r, DoneFn done) {
            s.analytics->async()->GetOptOut(c, q, r, std::move(done));
          });
    case Op::kEmpty:  // a Pipe call: refused by ParseBenchOptions on unary
    // Open-loop operations: RunRealtime drives them, never a transport.
    case Op::kRealtimeXInstance:
    case Op::kRealtimeFanout:
      return nullptr;
  }
  return nullptr;
}

}  // namespace stateside::bench
