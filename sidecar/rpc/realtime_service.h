// stateside.v1.RealtimeService over the realtime hub and its broker: unary
// handlers (raw bytes, see unary_call.h) that validate the names and limits
// of realtime.proto and complete asynchronously when the broker answers, and
// the Subscribe stream (subscribe_reactor.h). Thread-safe (no state of its
// own).
#ifndef STATESIDE_SIDECAR_RPC_REALTIME_SERVICE_H_
#define STATESIDE_SIDECAR_RPC_REALTIME_SERVICE_H_

#include <string_view>

#include "sidecar/admin/metrics.h"
#include "sidecar/realtime/broker.h"
#include "sidecar/realtime/hub.h"
#include "sidecar/rpc/offload.h"
#include "sidecar/rpc/unary_call.h"
#include "sidecar/session/request_ledger.h"
#include "stateside/v1/realtime.grpc.pb.h"

namespace stateside::rpc {

namespace internal {
using RS = v1::RealtimeService;
using RealtimeServiceBase = RS::WithRawCallbackMethod_RegisterConnection<
    RS::WithRawCallbackMethod_UnregisterConnection<RS::WithRawCallbackMethod_Join<
        RS::WithRawCallbackMethod_Leave<RS::WithRawCallbackMethod_Publish<
            RS::WithRawCallbackMethod_Subscribe<RS::WithRawCallbackMethod_RoomMembers<
                RS::WithRawCallbackMethod_UserConnections<
                    RS::WithRawCallbackMethod_History<RS::WithRawCallbackMethod_JoinConnections<
                        RS::WithRawCallbackMethod_LeaveConnections<
                            RS::WithRawCallbackMethod_DisconnectConnections<
                                RS::CallbackService>>>>>>>>>>>>;
}  // namespace internal

class RealtimeService final : public internal::RealtimeServiceBase {
 public:
  // REQUIRES: hub and broker (the hub's) outlive the service; metrics may
  // be null; without a ledger a Publish's request_id is ignored. A Publish
  // with a request_id claims its ledger entry on `offload` (see offload.h;
  // null: on the gRPC thread).
  RealtimeService(realtime::RealtimeHub* hub, realtime::Broker* broker,
                  admin::Metrics* metrics = nullptr,
                  const session::RequestLedger* requests = nullptr, Offload* offload = nullptr)
      : hub_(hub), broker_(broker), metrics_(metrics), requests_(requests), offload_(offload) {}

  grpc::ServerUnaryReactor* RegisterConnection(grpc::CallbackServerContext* context,
                                               const grpc::ByteBuffer* request,
                                               grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* UnregisterConnection(grpc::CallbackServerContext* context,
                                                 const grpc::ByteBuffer* request,
                                                 grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* Join(grpc::CallbackServerContext* context,
                                 const grpc::ByteBuffer* request,
                                 grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* Leave(grpc::CallbackServerContext* context,
                                  const grpc::ByteBuffer* request,
                                  grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* Publish(grpc::CallbackServerContext* context,
                                    const grpc::ByteBuffer* request,
                                    grpc::ByteBuffer* response) override;
  grpc::ServerWriteReactor<grpc::ByteBuffer>* Subscribe(grpc::CallbackServerContext* context,
                                                        const grpc::ByteBuffer* request) override;
  grpc::ServerUnaryReactor* RoomMembers(grpc::CallbackServerContext* context,
                                        const grpc::ByteBuffer* request,
                                        grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* UserConnections(grpc::CallbackServerContext* context,
                                            const grpc::ByteBuffer* request,
                                            grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* History(grpc::CallbackServerContext* context,
                                    const grpc::ByteBuffer* request,
                                    grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* JoinConnections(grpc::CallbackServerContext* context,
                                            const grpc::ByteBuffer* request,
                                            grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* LeaveConnections(grpc::CallbackServerContext* context,
                                             const grpc::ByteBuffer* request,
                                             grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* DisconnectConnections(grpc::CallbackServerContext* context,
                                                  const grpc::ByteBuffer* request,
                                                  grpc::ByteBuffer* response) override;

 private:
  RpcMeter Meter(std::string_view method) const { return {metrics_, method}; }
  // Validates the selector (and `rooms`, unless null) of a cluster-wide
  // operation and publishes its control event; finishes `call`.
  template <typename Call>
  void PublishControl(Call* call, const google::protobuf::RepeatedPtrField<std::string>* rooms,
                      realtime::Control control);

  realtime::RealtimeHub* const hub_;
  realtime::Broker* const broker_;
  admin::Metrics* const metrics_;
  const session::RequestLedger* const requests_;
  Offload* const offload_;
};

// Request validation (exposed for tests): INVALID_ARGUMENT naming the field.
absl::StatusOr<realtime::ConnPresence> ToConnPresence(const v1::RegisterConnectionRequest& request);
absl::StatusOr<realtime::Event> ToEvent(const v1::PublishRequest& request);
// A cluster-wide operation's control event; `rooms` null for a disconnect.
absl::StatusOr<realtime::Event> ToControl(
    const v1::ConnectionSelector& selector,
    const google::protobuf::RepeatedPtrField<std::string>* rooms, realtime::Control control);
// Subscribe's resume points: at most kMaxResumePoints, each naming one
// target (a connection without instance: `instance`), no stream twice.
absl::StatusOr<std::vector<realtime::RealtimeHub::ResumePoint>> ToResumePoints(
    const google::protobuf::RepeatedPtrField<v1::StreamPosition>& positions,
    const std::string& instance);
void ToProto(const realtime::StreamRef& stream, uint64_t sequence, v1::StreamPosition* out);
absl::Status ValidateRooms(const google::protobuf::RepeatedPtrField<std::string>& rooms);
// The Delivery message of an event for the given local connections.
void ToProto(const realtime::Event& event, const std::vector<std::string>& conn_ids,
             v1::Delivery* out);

}  // namespace stateside::rpc

#endif  // STATESIDE_SIDECAR_RPC_REALTIME_SERVICE_H_
