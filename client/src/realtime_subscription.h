// Subscription::Impl: one Subscribe stream read by its own thread into a
// bounded buffer (the contract is in stateside/realtime.h).
// Thread-safe: every method may be called from any thread.
#ifndef STATESIDE_CLIENT_SRC_REALTIME_SUBSCRIPTION_H_
#define STATESIDE_CLIENT_SRC_REALTIME_SUBSCRIPTION_H_

#include <grpcpp/grpcpp.h>

#include <deque>
#include <memory>
#include <optional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "stateside/realtime.h"
#include "stateside/v1/realtime.grpc.pb.h"

namespace stateside {

class Subscription::Impl {
 public:
  Impl(std::shared_ptr<::grpc::Channel> channel, v1::SubscribeRequest request);
  // Cancels the stream and joins the reader thread.
  ~Impl();
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  // Starts the reader thread (which opens the stream). Once.
  void Start();
  // Waits until the sidecar says `subscribed` (OK), the stream ends (its
  // status; UNAVAILABLE for a sidecar that could not be reached) or
  // `deadline` passes (DEADLINE_EXCEEDED; the caller then destroys this).
  absl::Status AwaitSubscribed(absl::Time deadline);

  absl::StatusOr<RealtimeEvent> Next(absl::Duration timeout);
  void Cancel();

 private:
  void Run();  // the reader thread
  // Maps how the stream ended to what Next reports (see realtime.h).
  absl::Status FinalStatus(const ::grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool HasRoomOrCancelled() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool SubscribedOrEnded() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool EventOrEnd() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Constant after construction. The stub holds its own channel reference.
  const std::unique_ptr<v1::RealtimeService::Stub> stub_;
  const v1::SubscribeRequest request_;
  // Used by the reader thread for the call and by Cancel() (TryCancel is
  // thread-safe, and works before the call starts: it is then cancelled at
  // once).
  ::grpc::ClientContext context_;
  std::thread thread_;  // set once by Start, joined by ~Impl

  mutable absl::Mutex mu_;
  bool subscribed_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;  // Cancel() was called
  // A protocol error found by the reader (it then cancels the call).
  absl::Status protocol_error_ ABSL_GUARDED_BY(mu_);
  std::deque<RealtimeEvent> buffer_ ABSL_GUARDED_BY(mu_);  // <= kMaxBufferedEvents
  std::optional<absl::Status> final_ ABSL_GUARDED_BY(mu_);  // set when the stream ended
};

}  // namespace stateside

#endif  // STATESIDE_CLIENT_SRC_REALTIME_SUBSCRIPTION_H_
