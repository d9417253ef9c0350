// RedisSubscriber's connection: construction and the I/O thread, connect and
// handshake, reads, writes, reply deadlines, liveness PINGs, reset and
// reconnect with backoff. The subscription bookkeeping and push parsing are
// in redis_subscriber.cc.
#include <algorithm>
#include <random>
#include <utility>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "sidecar/redis/redis_subscriber.h"
#include "sidecar/redis/resp.h"
#include "sidecar/redis/sentinel_monitor.h"
#include "sidecar/redis/transport.h"

namespace stateside::redis {
namespace {

namespace asio = boost::asio;
using std::chrono::steady_clock;

// Upper bound of the liveness PING interval (see the class comment).
constexpr absl::Duration kMaxPingInterval = absl::Seconds(1);

std::chrono::milliseconds ToChrono(absl::Duration d) {
  return std::chrono::milliseconds(std::max<int64_t>(1, absl::ToInt64Milliseconds(d)));
}

absl::Status Unavailable(const absl::Status& s) {
  return absl::IsUnavailable(s) ? s : absl::UnavailableError(s.message());
}

}  // namespace

// Everything the I/O thread owns.
struct RedisSubscriber::Io {
  explicit Io(asio::io_context* io)
      : connect_timer(*io), command_timer(*io), ping_timer(*io), reconnect_timer(*io) {}

  uint64_t generation = 0;  // bumped on every reset; stale handlers compare it
  std::optional<RedisNode> master;  // kSentinel: where to connect (none: wait)
  std::shared_ptr<Transport> transport;
  std::unique_ptr<RespParser> parser;
  std::deque<std::string> handshake;  // names of the handshake replies still owed
  bool writing = false;
  bool command_timer_armed = false;
  int attempt = 0;  // reconnect attempts since the last handshake
  SteadyTime last_activity;
  asio::steady_timer connect_timer;
  asio::steady_timer command_timer;
  asio::steady_timer ping_timer;
  asio::steady_timer reconnect_timer;
};

RedisSubscriber::RedisSubscriber(RedisOptions options, Callbacks callbacks, bool sharded)
    : options_(std::move(options)),
      callbacks_(std::move(callbacks)),
      sharded_(sharded),
      command_timeout_(ToChrono(options_.command_timeout)),
      ping_interval_(ToChrono(std::min(options_.idle_ping_interval, kMaxPingInterval))),
      io_(std::make_unique<asio::io_context>(1)) {
  if (options_.jitter) {
    jitter_ = options_.jitter;
  } else {
    auto rng = std::make_shared<std::mt19937_64>(std::random_device{}());
    jitter_ = [rng] { return std::uniform_real_distribution<double>(0.0, 1.0)(*rng); };
  }
  absl::MutexLock lock(&mu_);
  down_since_ = absl::Now();
}

absl::Status RedisSubscriber::Init() {
  auto factory = TransportFactory::Create(io_.get(), options_);
  if (!factory.ok()) return factory.status();
  factory_ = *std::move(factory);
  io_state_ = std::make_unique<Io>(io_.get());
  if (options_.topology == RedisTopology::kSentinel) {
    sentinel_ = std::make_unique<SentinelMonitor>(
        io_.get(), factory_.get(), options_,
        [this](const std::optional<RedisNode>& master, const absl::Status&) { OnMaster(master); });
    asio::post(*io_, [this] { sentinel_->Start(); });
  }
  asio::post(*io_, [this] { Connect(); });
  thread_ = std::thread([io = io_.get()] {
    // The guard keeps run() going while everything waits on a timer; the
    // destructor's task stops it.
    auto guard = asio::make_work_guard(*io);
    io->run();
  });
  return absl::OkStatus();
}

RedisSubscriber::~RedisSubscriber() {
  if (thread_.joinable()) {
    asio::post(*io_, [this] {
      Shutdown();
      io_->stop();
    });
    thread_.join();
  }
  // Timers before their context, and the context (whose queued handlers may
  // hold transports) before the factory that made them.
  sentinel_.reset();
  io_state_.reset();
  io_.reset();
}

void RedisSubscriber::Flush() {
  Io& io = *io_state_;
  std::string bytes;
  {
    absl::MutexLock lock(&mu_);
    flush_posted_ = false;
    // A write in flight flushes again when it completes.
    if (io.writing || io.transport == nullptr) return;
    bytes.swap(out_);
  }
  if (bytes.empty()) return;
  io.writing = true;
  ArmCommandTimer();
  const uint64_t gen = io.generation;
  io.transport->AsyncWrite(std::move(bytes), [this, gen](absl::Status status) {
    Io& io = *io_state_;
    if (gen != io.generation) return;
    io.writing = false;
    if (!status.ok()) return Fail(status);
    Flush();
  });
}

void RedisSubscriber::Connect() {
  Io& io = *io_state_;
  {
    absl::MutexLock lock(&mu_);
    if (state_ == State::kClosed) return;
  }
  // Sentinel, no master known yet: OnMaster connects when one is.
  if (sentinel_ != nullptr && !io.master.has_value()) return;
  const uint64_t gen = ++io.generation;
  if (io.master.has_value()) {
    io.transport = factory_->NewTo(*io.master);
  } else if (options_.topology == RedisTopology::kCluster && !options_.nodes.empty()) {
    // Cluster: a classic PUBLISH reaches every node, so any seed will do;
    // each attempt after a failure tries the next one. Sharded: the one
    // node given.
    io.transport = factory_->NewTo(options_.nodes[io.attempt % options_.nodes.size()]);
  } else {
    io.transport = factory_->New();
  }
  io.parser = std::make_unique<RespParser>(options_.max_reply_bytes, options_.max_reply_elements);
  io.handshake.clear();
  io.connect_timer.expires_after(ToChrono(options_.connect_timeout));
  io.connect_timer.async_wait([this, gen](const boost::system::error_code& ec) {
    if (ec || gen != io_state_->generation) return;
    Fail(absl::UnavailableError(absl::StrCat("redis: subscriber connect to ", options_.Describe(),
                                             " timed out after ",
                                             absl::FormatDuration(options_.connect_timeout))));
  });
  io.transport->AsyncConnect([this, gen](absl::Status status) {
    if (gen != io_state_->generation) return;
    if (!status.ok()) return Fail(status);
    OnTransportConnected();
  });
}

void RedisSubscriber::OnTransportConnected() {
  Io& io = *io_state_;
  io.last_activity = steady_clock::now();
  ReadLoop();
  // AUTH, SELECT (harmless: channels are global) and a PING that proves the
  // peer speaks RESP, pipelined; the connect timer covers their replies.
  absl::MutexLock lock(&mu_);
  if (!options_.password.empty()) {
    std::vector<std::string> auth = {"AUTH"};
    if (!options_.username.empty()) auth.push_back(options_.username);
    auth.push_back(options_.password);
    QueueLocked(auth, 0);
    io.handshake.push_back("AUTH");
  }
  if (options_.db != 0) {
    QueueLocked({"SELECT", std::to_string(options_.db)}, 0);
    io.handshake.push_back("SELECT");
  }
  if (!callbacks_.client_name.empty()) {
    QueueLocked({"CLIENT", "SETNAME", callbacks_.client_name}, 0);
    io.handshake.push_back("CLIENT SETNAME");
    QueueLocked({"CLIENT", "ID"}, 0);
    io.handshake.push_back("CLIENT ID");
  }
  QueueLocked({"PING"}, 0);
  io.handshake.push_back("PING");
  if (sentinel_ != nullptr) {
    QueueLocked({"ROLE"}, 0);
    io.handshake.push_back("ROLE");
  }
}

void RedisSubscriber::ReadLoop() {
  const uint64_t gen = io_state_->generation;
  io_state_->transport->AsyncRead([this, gen](absl::Status status, std::string_view data) {
    Io& io = *io_state_;
    if (gen != io.generation) return;
    if (!status.ok()) return Fail(status);
    io.last_activity = steady_clock::now();
    io.parser->Feed(data);
    DrainReplies();
    if (gen == io.generation) ReadLoop();
  });
}

void RedisSubscriber::DrainReplies() {
  Io& io = *io_state_;
  const uint64_t gen = io.generation;
  while (gen == io.generation) {
    absl::StatusOr<std::optional<Reply>> next = io.parser->Next();
    if (!next.ok()) {
      protocol_errors_.fetch_add(1, std::memory_order_relaxed);
      return Fail(absl::UnavailableError(
          absl::StrCat("redis: ", next.status().message(), " from ", options_.Describe())));
    }
    if (!next->has_value()) return;
    Deferred deferred;
    const absl::Status status = io.handshake.empty() ? OnPush(std::move(**next), &deferred)
                                                     : OnHandshakeReply(**next, &deferred);
    Run(deferred);
    if (!status.ok()) return Fail(status);
  }
}

absl::Status RedisSubscriber::OnHandshakeReply(const Reply& reply, Deferred* out) {
  Io& io = *io_state_;
  const std::string what = std::move(io.handshake.front());
  io.handshake.pop_front();
  if (reply.is_error()) {
    std::string hint;
    if (absl::StartsWith(reply.str, "NOAUTH")) hint = " (the server needs a password in REDIS_URL)";
    return absl::UnavailableError(absl::StrCat("redis: ", what, " failed: ", reply.str, hint));
  }
  if (what == "PING" && (!reply.is_status() || reply.str != "PONG")) {
    protocol_errors_.fetch_add(1, std::memory_order_relaxed);
    return absl::UnavailableError(
        absl::StrCat("redis: protocol error: PING not answered +PONG by ", options_.Describe()));
  }
  if (what == "CLIENT ID") {
    if (!reply.is_integer()) {
      protocol_errors_.fetch_add(1, std::memory_order_relaxed);
      return absl::UnavailableError(absl::StrCat(
          "redis: protocol error: CLIENT ID not answered by an integer by ", options_.Describe()));
    }
    if (callbacks_.on_client_id) callbacks_.on_client_id(reply.integer);
  }
  if (what == "ROLE" && RoleOf(reply) != "master") {
    sentinel_->Refresh();
    return absl::UnavailableError(absl::StrCat(
        "redis: subscriber: ", NodeName(*io.master),
        " is not the master; asking Sentinel again"));
  }
  if (!io.handshake.empty()) return absl::OkStatus();
  io.connect_timer.cancel();
  io.attempt = 0;
  connects_.fetch_add(1, std::memory_order_relaxed);
  {
    absl::MutexLock lock(&mu_);
    state_ = State::kSubscribing;
    StartResubscribeLocked(out);
  }
  ArmPingTimer();
  return absl::OkStatus();
}

void RedisSubscriber::ArmCommandTimer() {
  Io& io = *io_state_;
  if (io.command_timer_armed) return;
  SteadyTime deadline;
  {
    absl::MutexLock lock(&mu_);
    if (owed_.empty()) return;
    deadline = owed_.front();  // the oldest reply owed is due first
  }
  io.command_timer_armed = true;
  const uint64_t gen = io.generation;
  io.command_timer.expires_at(deadline);
  io.command_timer.async_wait([this, gen](const boost::system::error_code& ec) {
    Io& io = *io_state_;
    if (gen != io.generation) return;
    io.command_timer_armed = false;
    if (ec) return;
    bool expired;
    {
      absl::MutexLock lock(&mu_);
      expired = !owed_.empty() && owed_.front() <= steady_clock::now();
    }
    if (expired) {
      return Fail(absl::UnavailableError(absl::StrCat(
          "redis: no reply from ", options_.Describe(), " within ",
          absl::FormatDuration(options_.command_timeout), "; subscriber connection reset")));
    }
    ArmCommandTimer();
  });
}

void RedisSubscriber::ArmPingTimer() {
  Io& io = *io_state_;
  const uint64_t gen = io.generation;
  io.ping_timer.expires_after(ping_interval_);
  io.ping_timer.async_wait([this, gen](const boost::system::error_code& ec) {
    Io& io = *io_state_;
    if (ec || gen != io.generation) return;
    {
      absl::MutexLock lock(&mu_);
      // Replies already owed watch the connection; otherwise ask for one.
      if (owed_.empty() && steady_clock::now() - io.last_activity >= ping_interval_) {
        QueueLocked({"PING"}, 1);
      }
    }
    ArmPingTimer();
  });
}

void RedisSubscriber::Fail(const absl::Status& error, absl::Time lost_since) {
  Io& io = *io_state_;
  ++io.generation;
  if (io.transport != nullptr) io.transport->Close();
  io.transport.reset();
  io.handshake.clear();
  io.writing = false;
  io.command_timer_armed = false;
  io.connect_timer.cancel();
  io.command_timer.cancel();
  io.ping_timer.cancel();
  Deferred deferred;
  bool closed, was_session;
  {
    absl::MutexLock lock(&mu_);
    closed = state_ == State::kClosed;
    was_session = state_ == State::kSubscribing || state_ == State::kUp;
    if (state_ == State::kUp) {
      down_since_ = std::max(up_since_, std::min(absl::Now(), lost_since));
      deferred.down = down_since_;
    }
    if (!closed) state_ = State::kConnecting;
    unconfirmed_.clear();
    confirmed_.clear();
    owed_.clear();
    out_.clear();
    for (Waiter& w : waiters_) {
      if (w.done) deferred.dones.emplace_back(std::move(w.done), Unavailable(error));
    }
    waiters_.clear();
  }
  if (was_session) disconnects_.fetch_add(1, std::memory_order_relaxed);
  Run(deferred);
  if (closed) return;
  const absl::Duration delay =
      BackoffDelay(io.attempt++, options_.backoff_initial, options_.backoff_max, jitter_());
  const uint64_t gen = io.generation;
  io.reconnect_timer.expires_after(ToChrono(delay));
  io.reconnect_timer.async_wait([this, gen](const boost::system::error_code& ec) {
    if (ec || gen != io_state_->generation) return;
    Connect();
  });
}

void RedisSubscriber::OnMaster(const std::optional<RedisNode>& master) {
  Io& io = *io_state_;
  if (master == io.master) return;
  io.master = master;
  io.attempt = 0;
  if (io.transport != nullptr) {
    // Lost like any connection: on_down now, on_restored once resubscribed
    // on the new master, for a gap that starts when a sentinel last named
    // the old master: from any moment since, the publishers (following
    // their own monitor) may have been publishing on the new one.
    return Fail(absl::UnavailableError("redis: subscriber: the master moved; reconnecting"),
                sentinel_->previous_master_confirmed_at());
  }
  ++io.generation;  // a pending reconnect is moot: go now
  io.reconnect_timer.cancel();
  Connect();
}

void RedisSubscriber::Shutdown() {
  if (sentinel_ != nullptr) sentinel_->Shutdown();
  {
    absl::MutexLock lock(&mu_);
    state_ = State::kClosed;
  }
  io_state_->reconnect_timer.cancel();
  Fail(absl::UnavailableError("redis: subscriber closed"));
}

}  // namespace stateside::redis
