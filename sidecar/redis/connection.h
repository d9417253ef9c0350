// One pipelined connection to Redis: connects (with AUTH, SELECT and a PING
// that proves the peer speaks RESP), writes every command submitted while a
// write is in flight as the next single batch, matches replies FIFO, enforces
// connect/command timeouts, pings when idle, and reconnects with backoff.
// While it is not ready it refuses commands (UNAVAILABLE) instead of queueing.
//
// Thread-safety: Submit() may be called from any thread; everything else runs
// on the io_context's single thread. Callbacks run on that thread.
#ifndef STATESIDE_SIDECAR_REDIS_CONNECTION_H_
#define STATESIDE_SIDECAR_REDIS_CONNECTION_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "sidecar/redis/redis_options.h"
#include "sidecar/redis/reply.h"
#include "sidecar/redis/resp.h"
#include "sidecar/redis/transport.h"

namespace stateside::redis {

// Counters shared by the connections of one client (monotonic).
struct ConnectionCounters {
  std::atomic<uint64_t> batches_written{0};   // write system calls' worth of batches
  std::atomic<uint64_t> commands_written{0};  // commands in those batches
  std::atomic<uint64_t> replies{0};
  std::atomic<uint64_t> connects{0};          // handshakes completed
  std::atomic<uint64_t> connect_failures{0};  // attempts that never became ready
  std::atomic<uint64_t> disconnects{0};       // ready connections lost
  std::atomic<uint64_t> command_timeouts{0};
  std::atomic<uint64_t> protocol_errors{0};
};

class Connection {
 public:
  // A raw reply (a Redis error reply is a Reply of type kError here), or
  // UNAVAILABLE when the command was lost with its connection.
  using ReplyCallback = absl::AnyInvocable<void(absl::StatusOr<Reply>)>;

  // Several encoded commands that go out contiguously, one callback each, in
  // order.
  struct Batch {
    std::string bytes;
    std::vector<ReplyCallback> callbacks;
  };

  // What the owner hears about (on the I/O thread).
  class Observer {
   public:
    virtual ~Observer() = default;
    virtual void OnReadyChanged(bool ready) = 0;
    virtual void OnConnectionError(const absl::Status& error) = 0;
    // A reply did not come in time: the server may be hung, so the owner
    // probes its other connections rather than wait for their idle PINGs.
    virtual void OnCommandTimeout() = 0;
    // For metrics: a batch went out; a reply came `rtt` after its batch was
    // handed to the socket; a failure of `kind` ("timeout", "protocol",
    // "connect", "disconnect").
    virtual void OnBatchWritten(size_t commands) {}
    virtual void OnReply(std::chrono::nanoseconds rtt) {}
    virtual void OnError(std::string_view kind) {}
    // With a master required (SetMaster): the node answered ROLE with
    // something other than "master", or a command with READONLY; the
    // connection has failed already, and the owner should ask Sentinel
    // again (and leave the node on its other connections too).
    virtual void OnNotMaster() {}
  };

  // REQUIRES: every pointer outlives the connection; the io_context's thread
  // is joined before the connection is destroyed.
  Connection(int index, boost::asio::io_context* io, TransportFactory* factory,
             const RedisOptions* options, ConnectionCounters* counters, Observer* observer);
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Any thread. Queues the batch for the next write and returns OK (the batch
  // is consumed), or returns UNAVAILABLE and leaves the batch untouched when
  // the connection is not ready or its pending bounds would be exceeded.
  absl::Status Submit(Batch& batch);

  bool ready() const;

  // I/O thread only.
  void Start();
  // Sends a PING now if the connection is ready and idle (a hung server is
  // then found within one command timeout).
  void Probe();
  // Fails everything outstanding with UNAVAILABLE("redis: client closed") and
  // stops reconnecting.
  void Shutdown();

  // Sentinel: from now on connect to `master` (none known: stay down until
  // one is set) and accept a node only if ROLE says it is the master; a
  // READONLY reply (the node was demoted) fails the connection the same way.
  // Call Reset afterwards to move a live connection.
  void SetMaster(std::optional<RedisNode> master);
  // Fails everything outstanding with `why` and reconnects at once.
  void Reset(const absl::Status& why);

 private:
  enum class State { kConnecting, kReady, kDisconnected, kClosed };
  using SteadyTime = std::chrono::steady_clock::time_point;
  struct Waiter {
    ReplyCallback callback;
    SteadyTime deadline;
    size_t bytes;  // share of the batch, for the pending-bytes bound
    SteadyTime sent{};  // when its batch was handed to the socket
  };

  absl::Status SubmitLocked(Batch& batch, bool internal) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SubmitInternal(std::vector<std::string> args, ReplyCallback callback);
  void Connect();
  void OnTransportConnected();
  void OnHandshakeReply(const char* what, absl::StatusOr<Reply> reply, bool last);
  void ReadLoop();
  void DrainReplies();
  void Flush();
  void ArmCommandTimer();
  void ArmIdleTimer();
  void Fail(const absl::Status& error);
  void FailAll(std::deque<Waiter> waiters, const absl::Status& error);
  std::string Endpoint() const;

  // Constant after construction.
  const int index_;
  boost::asio::io_context* const io_;
  TransportFactory* const factory_;
  const RedisOptions* const options_;
  ConnectionCounters* const counters_;
  Observer* const observer_;
  const std::chrono::milliseconds command_timeout_;
  std::function<double()> jitter_;

  // Shared with submitting threads.
  mutable absl::Mutex mu_;
  State state_ ABSL_GUARDED_BY(mu_) = State::kDisconnected;
  std::string pending_bytes_ ABSL_GUARDED_BY(mu_);    // next batch, encoded
  std::deque<Waiter> pending_ ABSL_GUARDED_BY(mu_);   // its callbacks
  bool flush_posted_ ABSL_GUARDED_BY(mu_) = false;    // a Flush is on its way
  size_t outstanding_ ABSL_GUARDED_BY(mu_) = 0;       // pending + in flight
  size_t outstanding_bytes_ ABSL_GUARDED_BY(mu_) = 0;

  // I/O thread only.
  uint64_t generation_ = 0;  // bumped on every reset; stale handlers compare it
  std::shared_ptr<Transport> transport_;
  std::unique_ptr<RespParser> parser_;
  std::deque<Waiter> in_flight_;  // written, awaiting replies, FIFO
  bool writing_ = false;
  bool command_timer_armed_ = false;
  int attempt_ = 0;  // reconnect attempts since the last ready
  bool require_master_ = false;      // set by SetMaster: ROLE in the handshake
  std::optional<RedisNode> master_;  // where to connect when require_master_
  SteadyTime last_activity_;
  boost::asio::steady_timer connect_timer_;
  boost::asio::steady_timer command_timer_;
  boost::asio::steady_timer idle_timer_;
  boost::asio::steady_timer reconnect_timer_;
};

}  // namespace stateside::redis

#endif  // STATESIDE_SIDECAR_REDIS_CONNECTION_H_
