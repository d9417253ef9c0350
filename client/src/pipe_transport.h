// CallTransport over SessionService.Pipe: one stream at a time per channel
// ("lane"), attempts spread over the lanes in turn, each tagged with an id
// and answered, possibly out of order, by that id. While a write is in
// flight, new calls queue; the next write carries all of them (the client
// half of the batching the sidecar does on its side).
//
// - A stream that ends fails the attempts it carried with UNAVAILABLE; the
//   next attempt on that lane opens a new stream.
// - A stream that ends UNIMPLEMENTED before answering anything means the
//   sidecar has no Pipe: its attempts, and every later one, go to the unary
//   fallback (they never ran).
// - An attempt unanswered at its deadline ends DEADLINE_EXCEEDED here, even
//   if the sidecar never answers; a later answer for it is ignored.
// - A lane holding max_calls attempts refuses more with RESOURCE_EXHAUSTED.
// - Each stream writes nothing until the sidecar's initial metadata has
//   announced the largest message it accepts (stateside-max-message-bytes);
//   every write stays below it, and an attempt larger than it by itself fails
//   RESOURCE_EXHAUSTED unsent (at once once the lane knows the limit), since
//   sending it would end the stream for every call it carries. A sidecar
//   that announces nothing gets writes of at most 256 KiB.
//
// Thread-safe. Attempts' callbacks run without any lock held.
#ifndef STATESIDE_CLIENT_SRC_PIPE_TRANSPORT_H_
#define STATESIDE_CLIENT_SRC_PIPE_TRANSPORT_H_

#include <grpcpp/channel.h>

#include <atomic>
#include <cstddef>
#include <memory>
#include <vector>

#include "client/src/call_transport.h"
#include "client/src/timer.h"

namespace stateside::client_internal {

class PipeTransport final : public CallTransport {
 public:
  // One lane per channel (give each its own connection). REQUIRES: channels
  // non-empty, max_calls >= 1; `fallback` and `timer` outlive this, and
  // `timer` is stopped only after Shutdown().
  PipeTransport(const std::vector<std::shared_ptr<::grpc::Channel>>& channels,
                size_t max_calls, CallTransport* fallback, Timer* timer);
  ~PipeTransport() override;  // Shutdown()

  void Start(v1::PipeCall call, absl::Time deadline, OutcomeCallback done) override;
  // Cancels the open streams (their attempts end CANCELLED) and waits until
  // every stream has ended and its callbacks have run.
  void Shutdown() override;

 private:
  class Lane;
  class Stream;

  CallTransport* const fallback_;
  std::vector<std::unique_ptr<Lane>> lanes_;
  std::atomic<size_t> next_lane_{0};
  // Set for good once the sidecar answered a stream UNIMPLEMENTED.
  std::atomic<bool> unary_only_{false};
};

}  // namespace stateside::client_internal

#endif  // STATESIDE_CLIENT_SRC_PIPE_TRANSPORT_H_
