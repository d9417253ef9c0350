// RealtimeService.Subscribe: one server-streaming reactor per stream. It
// registers the stream's own connections (if any), then writes `subscribed`,
// then every item of its hub queue (deliveries and gap notices) in order, one
// write in flight at a time. With resume points the queue holds live events
// while the hub replays the streams' logs into it (RealtimeHub::Resume). The queue is bounded (see SubscriberQueue), so a
// slow reader costs dropped events, never memory. The stream ends with OK
// never: CANCELLED when the app goes, UNAVAILABLE when the sidecar shuts
// down (after what was queued is written), or the registration's error.
//
// Thread-safety: queue wake-ups, OnWriteDone and OnCancel may race; state is
// under the Shared mutex, which outlives the reactor for late wake-ups
// (stream_reactor.h). OnDone removes the queue, unregisters the stream's
// connections and deletes the reactor.
#ifndef STATESIDE_SIDECAR_RPC_SUBSCRIBE_REACTOR_H_
#define STATESIDE_SIDECAR_RPC_SUBSCRIBE_REACTOR_H_

#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/server_callback.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "sidecar/admin/metrics.h"
#include "sidecar/realtime/hub.h"
#include "sidecar/rpc/stream_reactor.h"

namespace stateside::rpc {

class SubscribeReactor final
    : public StreamReactor<grpc::ServerWriteReactor<grpc::ByteBuffer>, grpc::ByteBuffer> {
 public:
  // REQUIRES: hub (and metrics, may be null) outlive the call.
  static SubscribeReactor* Start(realtime::RealtimeHub* hub, admin::Metrics* metrics,
                                 const grpc::ByteBuffer* request);

  void OnDone() override;

 private:
  SubscribeReactor(realtime::RealtimeHub* hub, admin::Metrics* metrics);
  ~SubscribeReactor() override = default;

  void Begin(const grpc::ByteBuffer* request);
  void OnRegistered(absl::Status status);
  Step NextLocked() override ABSL_EXCLUSIVE_LOCKS_REQUIRED(shared_->mu);

  realtime::RealtimeHub* const hub_;
  admin::Metrics* const metrics_;
  std::shared_ptr<realtime::SubscriberQueue> queue_;  // set in Begin
  // Registered by this stream; set once its registrations have answered.
  std::vector<std::string> owned_conns_;
  // Replayed once the registrations have answered (then cleared).
  std::vector<realtime::RealtimeHub::ResumePoint> resume_;

  bool registered_ ABSL_GUARDED_BY(shared_->mu) = false;
  bool subscribed_sent_ ABSL_GUARDED_BY(shared_->mu) = false;
  absl::Status end_ ABSL_GUARDED_BY(shared_->mu);  // why the stream ends
};

}  // namespace stateside::rpc

#endif  // STATESIDE_SIDECAR_RPC_SUBSCRIBE_REACTOR_H_
