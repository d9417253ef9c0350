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
// Threading. The server runs on one io_context (its "loop"): accepted
// connections are adopted there, and their reads, the parsing of their
// frames and the start of every call run on that thread. With a Redis
// session store (standalone, Sentinel, Cluster) the loop is the store's
// RedisClient's own I/O thread (RedisClient::io_context()): a Get read from
// the socket reaches the Redis connection's write buffer, and its reply
// comes back, on that one thread, so a batch of frames costs no thread
// wake-up in the sidecar. The calls of one read are written to Redis in one
// write per Redis connection they are spread over (2 by default, per node
// on Cluster): each connection's flush is queued behind the read's handler,
// on the same thread, without a wake-up. What the frames cost that thread
// (parsing, sealing Update values, refusals, decrypting near cache hits) is
// time the Redis replies wait: it counts in the Redis latency figures
// (stateside_redis_command_duration_seconds, /info) and in the command
// timeout, and a turn of one connection is bounded (kTurnCalls). With the memory store (no Redis client)
// the server owns its loop and its thread. The accept itself stays on the
// PeerGate's thread (SO_PEERCRED, once per connection), which hands the
// socket to the loop. Everything on the loop is non-blocking (the sockets,
// the sends), so a frame client that reads slowly never stalls the Redis
// replies that share the thread; only the CPU of parsing is spent there.
//
// Each call is parsed on its own and run by the shared code of the Pipe
// stream (rpc/pipe_call.h), so it answers what Pipe would. A call other
// than Get or Update answers UNIMPLEMENTED (the connection stays); a
// malformed call answers INVALID_ARGUMENT with its id when readable; a
// duplicate in-flight id answers INVALID_ARGUMENT (DUPLICATE_CALL_ID). A
// broken stream — a frame of length 0 or above max_frame_bytes, a payload
// that is not a PipeRequest, more than kMaxCallsPerFrame calls — closes the
// connection, logged (at most once a second, with the number left out)
// and counted in stateside_frame_connections_closed_total{reason}.
//
// Answers go out from the thread that completes the call (the Redis I/O
// thread, which is the loop itself unless the near cache's reader carried a
// read; the loop for the memory store and a near cache hit): the results of
// one CompletionBatch form one frame, written with a non-blocking send
// under the connection's lock; only a full socket buffer hands the rest to
// the loop. So a Redis reply reaches the app without a thread hop in the
// sidecar.
//
// Backpressure: a frame is handled only when its calls fit in
// kMaxOutstanding unanswered ones, and reading stops while
// kMaxQueuedBytes wait for the wire (checked before each frame, so the
// answers of the frame being handled may go beyond it). Fairness: one turn
// of a connection handles at most about kTurnCalls calls or kTurnBytes
// before the rest is posted behind the other work of the loop (the Redis
// replies above all). Thread-safety:
// StopReading, Shutdown and the destructor from any thread but the loop's
// (serialised by shutdown_mu_); they wait for work they post to the loop,
// so called on the loop they abort the process (rather than hang it). The
// rest is internal.
#ifndef STATESIDE_SIDECAR_SERVER_FRAME_SERVER_H_
#define STATESIDE_SIDECAR_SERVER_FRAME_SERVER_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
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
  // One turn of a connection on the loop handles whole frames until it has
  // handled kTurnCalls calls or parsed kTurnBytes (whichever comes first; a
  // turn handles at least one frame), then posts the rest of its work (the
  // frames still buffered, then the next read) behind whatever else waits on
  // the loop. The bound is needed because calls that complete at once
  // (refusals, near cache hits, calls a down or overloaded Redis connection
  // refuses) give their room in kMaxOutstanding back at once: without it one
  // read handler could answer tens of thousands of calls in one go while the
  // Redis replies, the gRPC callers waiting for them and the other
  // connections sharing the thread wait (and the command timer runs).
  static constexpr size_t kTurnCalls = 256;
  static constexpr size_t kTurnBytes = 64 << 10;
  // A connection keeps at most this many per-call objects for its next
  // calls (CallPool): a call reuses one of a call that is done, so a
  // connection makes one per call in flight at its busiest, up to this, and
  // one per call beyond it only during a burst.
  static constexpr size_t kKeptCalls = 64;

  // Listens on `path` and starts serving. REQUIRES: PrepareSocketPath(path)
  // succeeded and the caller set the umask the socket is born with; `ops`
  // and `metrics` (may be null) outlive the server. An empty `allowed_uids`
  // lets every peer in (the socket's mode is the protection). `loop`: the
  // io_context to serve on (the Redis client's), run by one thread until
  // Shutdown has returned; null: the server runs its own.
  static absl::StatusOr<std::unique_ptr<FrameServer>> Start(
      const std::string& path, std::vector<uint32_t> allowed_uids, const rpc::Operations* ops,
      admin::Metrics* metrics, size_t max_frame_bytes,
      boost::asio::io_context* loop = nullptr);
  // Shutdown(now). Not on the loop (see Thread-safety). After a Shutdown it touches nothing of the loop, so a
  // given loop may be gone by then.
  ~FrameServer();
  FrameServer(const FrameServer&) = delete;
  FrameServer& operator=(const FrameServer&) = delete;

  // Stops accepting (connecting fails at once) and stops reading new
  // frames; returns at once (the calls in flight go on answering).
  // Idempotent; Shutdown does it first.
  void StopReading();
  // StopReading, then lets the calls in flight answer until `deadline`,
  // then closes every connection and waits until no call is left (the store
  // ends each by its command timeout). When it returns nothing of the server
  // is left on the loop (no connection, no handler). Idempotent.
  void Shutdown(absl::Time deadline);

  // For tests: `observer` is called on the loop at the end of every turn of
  // a connection (frames handled, then a read or a post or a pause) with
  // the number of calls that turn handled. REQUIRES: called on the loop.
  void ObserveTurnsForTest(std::function<void(size_t calls)> observer) {
    turn_observer_ = std::move(observer);
  }
  // For tests: the per-call objects the connections have made so far.
  size_t CallsMadeForTest() const { return calls_made_.load(); }

  class Connection;

 private:
  FrameServer(std::unique_ptr<PeerGate> gate, const rpc::Operations* ops, admin::Metrics* metrics,
              size_t max_frame_bytes, boost::asio::io_context* loop);
  void Adopt(int fd);  // on the loop
  friend class Connection;
  void Closed(std::string_view reason);  // a connection closed for a broken stream
  // Logs why a connection closes for a broken stream, at most once per
  // kWarningInterval: the log is written on the loop (the Redis I/O thread),
  // so a client that keeps breaking its streams must not make it write
  // without bound. The next warning says how many were left out; the
  // counter of closes counts each.
  void Warn(std::string_view reason, std::string_view detail);
  static constexpr absl::Duration kWarningInterval = absl::Seconds(1);
  void Gone();                           // a connection was destroyed
  void StopReadingLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(shutdown_mu_);
  // Runs `step` on every live connection, on the loop; waited for.
  void EachConnection(void (Connection::*step)());

  const rpc::Operations* const ops_;
  admin::Metrics* const metrics_;
  const size_t max_frame_bytes_;
  // The server's own loop and its thread, without a given loop.
  std::unique_ptr<boost::asio::io_context> own_io_;
  boost::asio::io_context& io_;  // the loop served on: own_io_ or the given one
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  std::unique_ptr<PeerGate> gate_;
  std::thread thread_;
  std::function<void(size_t)> turn_observer_;  // the loop only
  std::atomic<size_t> calls_made_{0};  // by the connections' pools

  absl::Mutex shutdown_mu_;  // one Shutdown at a time (the drain's and Stop's)
  bool drained_ ABSL_GUARDED_BY(shutdown_mu_) = false;  // a Shutdown is done
  absl::Mutex mu_;
  std::vector<std::weak_ptr<Connection>> connections_ ABSL_GUARDED_BY(mu_);
  size_t live_ ABSL_GUARDED_BY(mu_) = 0;  // connections not yet destroyed
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time last_warning_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  size_t warnings_suppressed_ ABSL_GUARDED_BY(mu_) = 0;  // since the last warning
};

}  // namespace stateside

#endif  // STATESIDE_SIDECAR_SERVER_FRAME_SERVER_H_
