// The frame socket: SessionService's Get and Update as length-prefixed
// frames of the same PipeRequest/PipeResponse the Pipe stream carries
// (proto/frames.h), on a second Unix socket beside STATESIDE_SOCKET
// (`<STATESIDE_SOCKET>.frames`), without gRPC's per-message machinery. gRPC
// stays for everything else and is the client's fallback.
//
// Protection: the same as the gRPC socket's: born 0660 in the same checked
// directory (the caller's umask and PrepareSocketPath), and with
// STATESIDE_ALLOWED_UIDS the same SO_PEERCRED check per connection
// (PeerGate): a refused connection is closed before a byte is read.
//
// A connection's frames are read on the server's one I/O thread; each call
// is parsed on its own and run by the shared code of the Pipe stream
// (rpc/pipe_call.h), so it answers what Pipe would. A call other than Get
// or Update answers UNIMPLEMENTED (the connection stays); a malformed call
// answers INVALID_ARGUMENT with its id when readable; a duplicate in-flight
// id answers INVALID_ARGUMENT (DUPLICATE_CALL_ID). A broken stream — a
// frame of length 0 or above max_frame_bytes, a payload that is not a
// PipeRequest, more than kMaxCallsPerFrame calls — closes the connection,
// logged and counted in stateside_frame_connections_closed_total{reason}.
//
// Answers go out from the thread that completes the call (the store's: the
// Redis I/O thread, or the reading thread for the memory store): the
// results of one CompletionBatch form one frame, written with a
// non-blocking send under the connection's lock; only a full socket buffer
// hands the rest to the I/O thread. So a Redis reply reaches the app
// without a thread hop in the sidecar.
//
// Backpressure: a frame is handled only when its calls fit in
// kMaxOutstanding unanswered ones, and reading stops while
// kMaxQueuedBytes wait for the wire (checked before each frame, so the
// answers of the frame being handled may go beyond it). Thread-safety: Shutdown from one
// owning thread; the rest is internal.
#ifndef STATESIDE_SIDECAR_SERVER_FRAME_SERVER_H_
#define STATESIDE_SIDECAR_SERVER_FRAME_SERVER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/executor_work_guard.hpp>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "sidecar/admin/metrics.h"
#include "sidecar/rpc/operations.h"
#include "sidecar/server/peer_gate.h"

namespace stateside {

class FrameServer {
 public:
  static constexpr size_t kMaxOutstanding = 1024;      // per connection
  static constexpr size_t kMaxQueuedBytes = 4 << 20;   // per connection
  static constexpr size_t kMaxCallsPerFrame = 1024;
  static_assert(kMaxCallsPerFrame <= kMaxOutstanding, "a frame must fit in an idle connection");
  // A response frame holds results up to this size (or a single larger one).
  static constexpr size_t kMaxWriteBytes = 1 << 20;

  // Listens on `path` and starts serving. REQUIRES: PrepareSocketPath(path)
  // succeeded and the caller set the umask the socket is born with; `ops`
  // and `metrics` (may be null) outlive the server. An empty `allowed_uids`
  // lets every peer in (the socket's mode is the protection).
  static absl::StatusOr<std::unique_ptr<FrameServer>> Start(const std::string& path,
                                                            std::vector<uint32_t> allowed_uids,
                                                            const rpc::Operations* ops,
                                                            admin::Metrics* metrics,
                                                            size_t max_frame_bytes);
  ~FrameServer();  // Shutdown(now)
  FrameServer(const FrameServer&) = delete;
  FrameServer& operator=(const FrameServer&) = delete;

  // Stops accepting (connecting fails at once) and stops reading new
  // frames; returns at once (the calls in flight go on answering).
  // Idempotent; Shutdown does it first.
  void StopReading();
  // StopReading, then lets the calls in flight answer until `deadline`,
  // then closes every connection and waits until no call is left (the store
  // ends each by its command timeout). Idempotent.
  void Shutdown(absl::Time deadline);

  class Connection;

 private:
  FrameServer(std::unique_ptr<PeerGate> gate, const rpc::Operations* ops, admin::Metrics* metrics,
              size_t max_frame_bytes);
  void Adopt(int fd);  // on the I/O thread
  friend class Connection;
  void Closed(std::string_view reason);  // a connection closed for a broken stream
  void Gone();                           // a connection was destroyed
  void StopReadingLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(shutdown_mu_);
  // Runs `step` on every live connection, on the I/O thread; waited for.
  void EachConnection(void (Connection::*step)());

  const rpc::Operations* const ops_;
  admin::Metrics* const metrics_;
  const size_t max_frame_bytes_;
  boost::asio::io_context io_{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::unique_ptr<PeerGate> gate_;
  std::thread thread_;

  absl::Mutex shutdown_mu_;  // one Shutdown at a time (the drain's and Stop's)
  absl::Mutex mu_;
  std::vector<std::weak_ptr<Connection>> connections_ ABSL_GUARDED_BY(mu_);
  size_t live_ ABSL_GUARDED_BY(mu_) = 0;  // connections not yet destroyed
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace stateside

#endif  // STATESIDE_SIDECAR_SERVER_FRAME_SERVER_H_
