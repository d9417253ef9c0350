// One pipelined Redis connection: handshake, batching, FIFO replies, timeouts,
// reconnect. See connection.h for the contract.
#include "sidecar/redis/connection.h"

#include <algorithm>
#include <random>
#include <utility>

#include <boost/asio/post.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "sidecar/common/completion_batch.h"
#include "sidecar/redis/sentinel_monitor.h"

namespace stateside::redis {
namespace {

namespace asio = boost::asio;
using std::chrono::steady_clock;

std::chrono::milliseconds ToChrono(absl::Duration d) {
  return std::chrono::milliseconds(std::max<int64_t>(1, absl::ToInt64Milliseconds(d)));
}

}  // namespace

Connection::Connection(int index, asio::io_context* io, TransportFactory* factory,
                       const RedisOptions* options, ConnectionCounters* counters,
                       Observer* observer)
    : index_(index),
      io_(io),
      factory_(factory),
      options_(options),
      counters_(counters),
      observer_(observer),
      command_timeout_(ToChrono(options->command_timeout)),
      connect_timer_(*io),
      command_timer_(*io),
      idle_timer_(*io),
      reconnect_timer_(*io) {
  if (options->jitter) {
    jitter_ = options->jitter;
  } else {
    auto rng = std::make_shared<std::mt19937_64>(std::random_device{}() + index);
    jitter_ = [rng] { return std::uniform_real_distribution<double>(0.0, 1.0)(*rng); };
  }
}

std::string Connection::Endpoint() const {
  if (master_.has_value()) return absl::StrCat(master_->host, ":", master_->port);
  return options_->Describe();
}

bool Connection::ready() const {
  absl::MutexLock lock(&mu_);
  return state_ == State::kReady;
}

absl::Status Connection::Submit(Batch& batch) {
  absl::MutexLock lock(&mu_);
  return SubmitLocked(batch, /*internal=*/false);
}

absl::Status Connection::SubmitLocked(Batch& batch, bool internal) {
  if (!internal) {
    if (state_ != State::kReady) {
      return absl::UnavailableError(absl::StrCat("redis: connection ", index_, " not ready"));
    }
    if (outstanding_ + batch.callbacks.size() > options_->max_pending_commands ||
        outstanding_bytes_ + batch.bytes.size() > options_->max_pending_bytes) {
      return absl::UnavailableError(absl::StrCat(
          "redis: overloaded: ", outstanding_, " commands (", outstanding_bytes_,
          " bytes) already pending on connection ", index_));
    }
  }
  const SteadyTime deadline = steady_clock::now() + command_timeout_;
  const size_t n = batch.callbacks.size();
  const size_t share = n == 0 ? 0 : batch.bytes.size() / n;
  outstanding_ += n;
  outstanding_bytes_ += share * n;
  for (ReplyCallback& cb : batch.callbacks) pending_.push_back({std::move(cb), deadline, share});
  if (pending_bytes_.empty()) {
    pending_bytes_.swap(batch.bytes);
  } else {
    pending_bytes_.append(batch.bytes);
  }
  batch.bytes.clear();
  batch.callbacks.clear();
  if (!flush_posted_) {
    flush_posted_ = true;
    asio::post(*io_, [this] { Flush(); });
  }
  return absl::OkStatus();
}

void Connection::SubmitInternal(std::vector<std::string> args, ReplyCallback callback) {
  Batch batch;
  AppendCommand(args, &batch.bytes);
  batch.callbacks.push_back(std::move(callback));
  absl::MutexLock lock(&mu_);
  (void)SubmitLocked(batch, /*internal=*/true);
}

void Connection::Start() { Connect(); }

void Connection::Connect() {
  {
    absl::MutexLock lock(&mu_);
    if (state_ == State::kClosed) return;
    // No master known: nowhere to go until SetMaster and Reset.
    if (require_master_ && !master_.has_value()) return;
    state_ = State::kConnecting;
  }
  const uint64_t gen = ++generation_;
  transport_ = master_.has_value() ? factory_->NewTo(*master_) : factory_->New();
  parser_ = std::make_unique<RespParser>(options_->max_reply_bytes, options_->max_reply_elements);
  connect_timer_.expires_after(ToChrono(options_->connect_timeout));
  connect_timer_.async_wait([this, gen](const boost::system::error_code& ec) {
    if (ec || gen != generation_) return;
    Fail(absl::UnavailableError(absl::StrCat("redis: connect to ", Endpoint(), " timed out after ",
                                             absl::FormatDuration(options_->connect_timeout))));
  });
  transport_->AsyncConnect([this, gen](absl::Status status) {
    if (gen != generation_) return;
    if (!status.ok()) return Fail(status);
    OnTransportConnected();
  });
}

void Connection::OnTransportConnected() {
  last_activity_ = steady_clock::now();
  ReadLoop();
  // AUTH, SELECT and PING go out as one pipelined batch; the PING's answer
  // proves the peer speaks RESP and that we are allowed to talk.
  if (!options_->password.empty()) {
    std::vector<std::string> auth = {"AUTH"};
    if (!options_->username.empty()) auth.push_back(options_->username);
    auth.push_back(options_->password);
    SubmitInternal(std::move(auth), [this](absl::StatusOr<Reply> r) {
      OnHandshakeReply("AUTH", std::move(r), false);
    });
  }
  if (options_->db != 0) {
    SubmitInternal({"SELECT", std::to_string(options_->db)}, [this](absl::StatusOr<Reply> r) {
      OnHandshakeReply("SELECT", std::move(r), false);
    });
  }
  SubmitInternal({"PING"}, [this](absl::StatusOr<Reply> r) {
    OnHandshakeReply("PING", std::move(r), !require_master_);
  });
  if (require_master_) {
    SubmitInternal({"ROLE"}, [this](absl::StatusOr<Reply> r) {
      OnHandshakeReply("ROLE", std::move(r), true);
    });
  }
}

void Connection::OnHandshakeReply(const char* what, absl::StatusOr<Reply> reply, bool last) {
  if (!reply.ok()) return;  // the connection is already failing
  if (reply->is_error()) {
    std::string hint;
    if (absl::StartsWith(reply->str, "NOAUTH")) hint = " (the server needs a password in REDIS_URL)";
    return Fail(absl::UnavailableError(
        absl::StrCat("redis: ", what, " failed: ", reply->str, hint)));
  }
  if (std::string_view(what) == "ROLE") {
    // ROLE: ["master", offset, replicas] or ["slave", host, port, ...].
    const std::string role = RoleOf(*reply);
    if (role != "master") {
      Fail(absl::UnavailableError(absl::StrCat("redis: ", Endpoint(),
                                               " is not the master (ROLE: ", role,
                                               "); not writing to it, asking Sentinel again")));
      return observer_->OnNotMaster();
    }
  }
  if (!last) return;
  connect_timer_.cancel();
  attempt_ = 0;
  {
    absl::MutexLock lock(&mu_);
    state_ = State::kReady;
  }
  counters_->connects.fetch_add(1, std::memory_order_relaxed);
  observer_->OnReadyChanged(true);
  ArmIdleTimer();
}

void Connection::ReadLoop() {
  const uint64_t gen = generation_;
  transport_->AsyncRead([this, gen](absl::Status status, std::string_view data) {
    if (gen != generation_) return;
    if (!status.ok()) return Fail(status);
    last_activity_ = steady_clock::now();
    parser_->Feed(data);
    DrainReplies();
    if (gen == generation_) ReadLoop();
  });
}

void Connection::DrainReplies() {
  const uint64_t gen = generation_;
  const SteadyTime now = steady_clock::now();  // the replies of one read
  // What the callbacks leave for the end of the batch (a Pipe stream's one
  // write for all of its results here) runs when this returns.
  CompletionBatch batch;
  while (true) {
    absl::StatusOr<std::optional<Reply>> next = parser_->Next();
    if (!next.ok()) {
      counters_->protocol_errors.fetch_add(1, std::memory_order_relaxed);
      observer_->OnError("protocol");
      return Fail(absl::UnavailableError(
          absl::StrCat("redis: ", next.status().message(), " from ", Endpoint())));
    }
    if (!next->has_value()) break;
    if (in_flight_.empty()) {
      counters_->protocol_errors.fetch_add(1, std::memory_order_relaxed);
      observer_->OnError("protocol");
      return Fail(absl::UnavailableError(
          absl::StrCat("redis: protocol error: unexpected reply from ", Endpoint())));
    }
    Waiter waiter = std::move(in_flight_.front());
    in_flight_.pop_front();
    // A master demoted under us answers writes READONLY: leave it at once.
    const bool demoted = require_master_ && (*next)->is_error() &&
                         absl::StartsWith((*next)->str, "READONLY");
    {
      // Released before the callback runs, so whatever it (or the thread it
      // wakes) submits next sees the room this reply made.
      absl::MutexLock lock(&mu_);
      outstanding_ -= std::min<size_t>(outstanding_, 1);
      outstanding_bytes_ -= std::min(outstanding_bytes_, waiter.bytes);
    }
    counters_->replies.fetch_add(1, std::memory_order_relaxed);
    observer_->OnReply(now - waiter.sent);
    waiter.callback(std::move(**next));
    if (gen != generation_) return;  // the callback's outcome reset us
    if (demoted) {
      Fail(absl::UnavailableError(absl::StrCat(
          "redis: ", Endpoint(), " is no longer the master (READONLY); asking Sentinel again")));
      return observer_->OnNotMaster();
    }
  }
}

void Connection::Flush() {
  if (writing_) return;  // the write in flight flushes again when it completes
  std::string bytes;
  size_t commands = 0;
  {
    absl::MutexLock lock(&mu_);
    if (transport_ == nullptr || pending_.empty() ||
        (state_ != State::kReady && state_ != State::kConnecting)) {
      flush_posted_ = false;
      return;
    }
    bytes.swap(pending_bytes_);
    commands = pending_.size();
    const SteadyTime sent = steady_clock::now();
    for (Waiter& w : pending_) {
      w.sent = sent;
      in_flight_.push_back(std::move(w));
    }
    pending_.clear();
  }
  writing_ = true;
  counters_->batches_written.fetch_add(1, std::memory_order_relaxed);
  counters_->commands_written.fetch_add(commands, std::memory_order_relaxed);
  observer_->OnBatchWritten(commands);
  ArmCommandTimer();
  const uint64_t gen = generation_;
  transport_->AsyncWrite(std::move(bytes), [this, gen](absl::Status status) {
    if (gen != generation_) return;
    writing_ = false;
    if (!status.ok()) return Fail(status);
    last_activity_ = steady_clock::now();
    Flush();
  });
}

void Connection::ArmCommandTimer() {
  if (command_timer_armed_ || in_flight_.empty()) return;
  command_timer_armed_ = true;
  const uint64_t gen = generation_;
  command_timer_.expires_at(in_flight_.front().deadline);
  command_timer_.async_wait([this, gen](const boost::system::error_code& ec) {
    if (gen != generation_) return;
    command_timer_armed_ = false;
    if (ec || in_flight_.empty()) return;
    // FIFO: the front was written first, so its deadline is the earliest.
    if (in_flight_.front().deadline <= steady_clock::now()) {
      counters_->command_timeouts.fetch_add(1, std::memory_order_relaxed);
      observer_->OnError("timeout");
      observer_->OnCommandTimeout();
      return Fail(absl::UnavailableError(absl::StrCat(
          "redis: no reply from ", Endpoint(), " within ",
          absl::FormatDuration(options_->command_timeout), "; connection reset")));
    }
    ArmCommandTimer();
  });
}

void Connection::ArmIdleTimer() {
  const uint64_t gen = generation_;
  const auto interval = ToChrono(options_->idle_ping_interval);
  idle_timer_.expires_after(interval);
  idle_timer_.async_wait([this, gen, interval](const boost::system::error_code& ec) {
    if (ec || gen != generation_) return;
    if (in_flight_.empty() && steady_clock::now() - last_activity_ >= interval) {
      SubmitInternal({"PING"}, [](absl::StatusOr<Reply>) {});
    }
    ArmIdleTimer();
  });
}

void Connection::Probe() {
  if (transport_ == nullptr || !in_flight_.empty() || !ready()) return;
  SubmitInternal({"PING"}, [](absl::StatusOr<Reply>) {});
}

void Connection::FailAll(std::deque<Waiter> waiters, const absl::Status& error) {
  for (Waiter& w : waiters) w.callback(error);
}

void Connection::Fail(const absl::Status& error) {
  ++generation_;
  if (transport_ != nullptr) transport_->Close();
  transport_.reset();
  writing_ = false;
  command_timer_armed_ = false;
  connect_timer_.cancel();
  command_timer_.cancel();
  idle_timer_.cancel();
  bool was_ready = false, closed = false;
  std::deque<Waiter> lost = std::move(in_flight_);
  in_flight_.clear();
  {
    absl::MutexLock lock(&mu_);
    was_ready = state_ == State::kReady;
    closed = state_ == State::kClosed;
    if (!closed) state_ = State::kDisconnected;
    for (Waiter& w : pending_) lost.push_back(std::move(w));
    pending_.clear();
    pending_bytes_.clear();
    flush_posted_ = false;  // a stale posted Flush finds nothing and is harmless
    outstanding_ = 0;
    outstanding_bytes_ = 0;
  }
  if (was_ready) {
    counters_->disconnects.fetch_add(1, std::memory_order_relaxed);
    observer_->OnError("disconnect");
    observer_->OnReadyChanged(false);
  } else if (!closed) {
    counters_->connect_failures.fetch_add(1, std::memory_order_relaxed);
    observer_->OnError("connect");
  }
  if (!closed) observer_->OnConnectionError(error);
  FailAll(std::move(lost), error);
  if (closed) return;
  const absl::Duration delay =
      BackoffDelay(attempt_++, options_->backoff_initial, options_->backoff_max, jitter_());
  const uint64_t gen = generation_;
  reconnect_timer_.expires_after(ToChrono(delay));
  reconnect_timer_.async_wait([this, gen](const boost::system::error_code& ec) {
    if (ec || gen != generation_) return;
    Connect();
  });
}

void Connection::SetMaster(std::optional<RedisNode> master) {
  require_master_ = true;
  master_ = std::move(master);
}

void Connection::Reset(const absl::Status& why) {
  attempt_ = 0;
  if (transport_ != nullptr) return Fail(why);  // reconnects after the first backoff step
  // Down and waiting (for a timer or a master): go now.
  ++generation_;
  reconnect_timer_.cancel();
  Connect();
}

void Connection::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    state_ = State::kClosed;
  }
  reconnect_timer_.cancel();
  Fail(absl::UnavailableError("redis: client closed"));
}

}  // namespace stateside::redis
