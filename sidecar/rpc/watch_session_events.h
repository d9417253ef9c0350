// SessionService.WatchSessionEvents: one server-streaming reactor per
// stream. It adds a watcher of the kinds asked for to the ChangeFeed,
// writes `watching`, then every item of the watcher's queue (changes and
// gaps) in order, one write in flight at a time. The queue is bounded
// (ChangeWatcher), so a slow reader costs dropped changes, never memory,
// and never slows a session call. The stream ends CANCELLED when the
// client goes, UNAVAILABLE when the sidecar shuts down (after what was
// queued is written), INVALID_ARGUMENT for a bad request.
//
// Thread-safety: queue wake-ups, OnWriteDone and OnCancel may race; state
// is under the Shared mutex, which outlives the reactor for late wake-ups
// (stream_reactor.h). OnDone removes the watcher and deletes the reactor.
#ifndef STATESIDE_SIDECAR_RPC_WATCH_SESSION_EVENTS_H_
#define STATESIDE_SIDECAR_RPC_WATCH_SESSION_EVENTS_H_

#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/server_callback.h>

#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "sidecar/rpc/stream_reactor.h"
#include "sidecar/session/change_feed.h"

namespace stateside::rpc {

class WatchSessionEventsReactor final
    : public StreamReactor<grpc::ServerWriteReactor<grpc::ByteBuffer>, grpc::ByteBuffer> {
 public:
  // REQUIRES: feed outlives the call.
  static WatchSessionEventsReactor* Start(session::ChangeFeed* feed,
                                          const grpc::ByteBuffer* request);

  void OnDone() override;

 private:
  explicit WatchSessionEventsReactor(session::ChangeFeed* feed) : feed_(feed) {}
  ~WatchSessionEventsReactor() override = default;

  Step NextLocked() override ABSL_EXCLUSIVE_LOCKS_REQUIRED(shared_->mu);

  session::ChangeFeed* const feed_;
  std::shared_ptr<session::ChangeWatcher> watcher_;  // set in Start, if the request parsed

  bool watching_sent_ ABSL_GUARDED_BY(shared_->mu) = false;
  absl::Status end_ ABSL_GUARDED_BY(shared_->mu);  // why the stream ends
};

}  // namespace stateside::rpc

#endif  // STATESIDE_SIDECAR_RPC_WATCH_SESSION_EVENTS_H_
