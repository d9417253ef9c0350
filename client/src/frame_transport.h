// CallTransport over the sidecar's frame socket (`<socket_path>.frames`,
// proto/frames.h): GetSession and UpdateSession as length-prefixed
// PipeRequest/PipeResponse frames on a plain Unix socket, without gRPC's
// per-message machinery or thread wake-ups. Every other operation goes to
// `fallback` (the Pipe or unary transport), and so does a Get or Update
// while the socket is absent or refuses (the client tries it again a second
// later, and also after a connection that ended before answering anything:
// a sidecar refusing this uid, or going away) or whose request is larger
// than kMaxFrameRequestBytes.
//
// One connection per client. Start writes the call's frame from the
// caller's thread (a non-blocking send; what the socket cannot take yet is
// written by the I/O thread); calls started by callbacks on the I/O thread
// are written together, in one send, once those callbacks return. One
// client I/O thread reads the answers and runs the callbacks itself,
// without another hop; a callback must not block (it delays the answers
// behind it). Semantics as the Pipe transport's: each
// attempt tagged with an id and its remaining time (call.timeout); an
// attempt unanswered at its deadline ends DEADLINE_EXCEEDED here; a
// connection that ends fails the attempts it carried with UNAVAILABLE (the
// retry policy then decides, as for a Pipe stream that ends); more than
// max_calls attempts in flight fail RESOURCE_EXHAUSTED.
//
// Thread-safe. Callbacks run without any lock held.
#ifndef STATESIDE_CLIENT_SRC_FRAME_TRANSPORT_H_
#define STATESIDE_CLIENT_SRC_FRAME_TRANSPORT_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "client/src/call_transport.h"
#include "client/src/deadline_sweep.h"
#include "client/src/timer.h"

namespace stateside::client_internal {

class FrameTransport final : public CallTransport {
 public:
  // A Get or Update whose frame would be larger goes to the fallback: the
  // sidecar closes a connection on a frame above its limit (which it does
  // not announce here), failing every call on it.
  static constexpr size_t kMaxFrameRequestBytes = 256 << 10;
  // After a failed connect, the fallback carries the calls this long.
  static constexpr absl::Duration kReconnectDelay = absl::Seconds(1);

  // REQUIRES: max_calls >= 1; `fallback` and `timer` outlive this, and
  // `timer` is stopped only after Shutdown().
  FrameTransport(std::string path, size_t max_calls, CallTransport* fallback, Timer* timer);
  ~FrameTransport() override;  // Shutdown()

  void Start(v1::PipeCall call, absl::Time deadline, OutcomeCallback done) override;
  // Closes the connection (its attempts end CANCELLED) and joins the I/O
  // thread; later attempts end CANCELLED.
  void Shutdown() override;

 private:
  struct Pending {
    OutcomeCallback done;
    v1::PipeCall call;  // until serialised (its timeout set then)
    absl::Time deadline;
  };

  // Connects if not connected and not waiting out kReconnectDelay.
  bool ConnectedLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Serialises unsent calls into out_ while it is below kWriteChunk,
  // skipping those expired.
  void FillLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes what out_ holds and the unsent calls without blocking; false if
  // the socket failed.
  bool WriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Wake();
  void Loop();  // the I/O thread
  // Reads what the socket has; answers the attempts it completes.
  void ReadAvailable(int fd);
  // The deadline sweep (deadlines_): ends the attempts whose deadline has
  // passed.
  void ExpireDue();

  const std::string path_;
  const size_t max_calls_;
  CallTransport* const fallback_;
  int wake_read_ = -1;
  int wake_write_ = -1;

  absl::Mutex mu_;
  // The connection; closed only by the I/O thread (so the descriptor it
  // polls stays ours), once broken_ says so.
  int fd_ ABSL_GUARDED_BY(mu_) = -1;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  bool answered_ ABSL_GUARDED_BY(mu_) = false;  // the connection sent a frame
  absl::Time reconnect_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  std::string out_ ABSL_GUARDED_BY(mu_);  // frames not yet written
  std::deque<uint64_t> unsent_ ABSL_GUARDED_BY(mu_);  // ids of calls not in out_ yet
  absl::flat_hash_map<uint64_t, Pending> pending_ ABSL_GUARDED_BY(mu_);
  DeadlineSweep deadlines_ ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  bool disabled_ ABSL_GUARDED_BY(mu_) = false;  // no I/O thread could start

  // I/O thread only.
  std::string in_;
  size_t in_end_ = 0;
  std::thread thread_;
};

}  // namespace stateside::client_internal

#endif  // STATESIDE_CLIENT_SRC_FRAME_TRANSPORT_H_
