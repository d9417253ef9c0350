// CallTransport over the unary RPCs (SessionService and AnalyticsService):
// one callback-API call per attempt, answered as a PipeResult. Used when the
// Client has no streams, and as the fallback of the Pipe transport.
// Thread-safe.
#ifndef STATESIDE_CLIENT_SRC_UNARY_TRANSPORT_H_
#define STATESIDE_CLIENT_SRC_UNARY_TRANSPORT_H_

#include <grpcpp/channel.h>

#include <memory>

#include "client/src/call_transport.h"
#include "client/src/rpc_set.h"
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
  std::unique_ptr<v1::SessionService::Stub> sessions_;
  std::unique_ptr<v1::AnalyticsService::Stub> analytics_;
  RpcSet calls_;
};

}  // namespace stateside::client_internal

#endif  // STATESIDE_CLIENT_SRC_UNARY_TRANSPORT_H_
