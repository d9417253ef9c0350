// CallTransport over the unary RPCs (SessionService and AnalyticsService):
// one callback-API call per attempt, answered as a PipeResult. Used when the
// Client has no streams, and as the fallback of the Pipe transport.
// Thread-safe.
#ifndef STATESIDE_CLIENT_SRC_UNARY_TRANSPORT_H_
#define STATESIDE_CLIENT_SRC_UNARY_TRANSPORT_H_

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>

#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "client/src/call_transport.h"
#include "stateside/v1/analytics.grpc.pb.h"
#include "stateside/v1/session.grpc.pb.h"

namespace stateside::client_internal {

class UnaryTransport final : public CallTransport {
 public:
  explicit UnaryTransport(const std::shared_ptr<::grpc::Channel>& channel);
  ~UnaryTransport() override;  // Shutdown()

  void Start(v1::PipeCall call, absl::Time deadline, OutcomeCallback done) override;
  void Shutdown() override;

 private:
  // Issues `rpc(context, request, response, on_done)` for a call of type
  // Request/Response; `store` moves the response into the PipeResult.
  template <typename Request, typename Response, typename Rpc, typename Store>
  void Issue(Request request, absl::Time deadline, OutcomeCallback done, Rpc rpc,
             Store store);

  struct Running {
    virtual ~Running() = default;
    ::grpc::ClientContext context;
  };

  std::unique_ptr<v1::SessionService::Stub> sessions_;
  std::unique_ptr<v1::AnalyticsService::Stub> analytics_;

  absl::Mutex mu_;
  // The calls running (each keyed by itself), for Shutdown to cancel them;
  // shared so that Shutdown can cancel one outside the lock.
  absl::flat_hash_map<Running*, std::shared_ptr<Running>> running_ ABSL_GUARDED_BY(mu_);
  // Callbacks past their entry's removal, still freeing their call.
  int finishing_ ABSL_GUARDED_BY(mu_) = 0;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace stateside::client_internal

#endif  // STATESIDE_CLIENT_SRC_UNARY_TRANSPORT_H_
