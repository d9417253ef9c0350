// RedisSubscriber: the wanted set and per-channel confirmations, the calls
// from any thread, and the parsing of subscribe-mode pushes. The connection
// itself (I/O thread, handshake, timers, reconnect) is in
// redis_subscriber_connection.cc. See the header for the contract.
#include "sidecar/redis/redis_subscriber.h"

#include <algorithm>
#include <utility>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "sidecar/redis/resp.h"

namespace stateside::redis {
namespace {

namespace asio = boost::asio;
using std::chrono::steady_clock;

// Channels per SUBSCRIBE/UNSUBSCRIBE: keeps one command (and Redis's time on
// it) small when thousands of rooms come back after a reconnect.
constexpr size_t kChannelsPerCommand = 1000;

// What a reply is, never its content (which may be stored data).
std::string Describe(const Reply& r) {
  switch (r.type) {
    case Reply::Type::kNil: return "nil";
    case Reply::Type::kString: return "a bulk string";
    case Reply::Type::kStatus: return absl::StrCat("status ", absl::CHexEscape(r.str.substr(0, 32)));
    case Reply::Type::kInteger: return "an integer";
    case Reply::Type::kArray: return absl::StrCat("an array of ", r.elements.size());
    case Reply::Type::kError: return "an error";
  }
  return "?";
}

}  // namespace

absl::StatusOr<std::unique_ptr<RedisSubscriber>> RedisSubscriber::Create(RedisOptions options,
                                                                         Callbacks callbacks) {
  if (absl::Status s = ValidateConnectionOptions(options, "redis subscriber"); !s.ok()) {
    return s;
  }
  std::unique_ptr<RedisSubscriber> s(
      new RedisSubscriber(std::move(options), std::move(callbacks), /*sharded=*/false));
  if (absl::Status status = s->Init(); !status.ok()) return status;
  return s;
}

absl::StatusOr<std::unique_ptr<RedisSubscriber>> RedisSubscriber::CreateSharded(
    RedisOptions options, RedisNode node, Callbacks callbacks) {
  options.topology = RedisTopology::kCluster;
  options.nodes = {std::move(node)};
  if (absl::Status s = ValidateConnectionOptions(options, "redis shard subscriber"); !s.ok()) {
    return s;
  }
  std::unique_ptr<RedisSubscriber> s(
      new RedisSubscriber(std::move(options), std::move(callbacks), /*sharded=*/true));
  if (absl::Status status = s->Init(); !status.ok()) return status;
  return s;
}

// ---- Calls from any thread -------------------------------------------------

void RedisSubscriber::Subscribe(std::vector<std::string> channels,
                                absl::AnyInvocable<void(absl::Status) &&> done) {
  absl::Status answer;
  {
    absl::MutexLock lock(&mu_);
    const bool session = state_ == State::kSubscribing || state_ == State::kUp;
    if (state_ == State::kClosed) {
      answer = absl::UnavailableError("redis: subscriber closed");
    } else {
      std::vector<std::string> to_send;
      Waiter waiter;
      for (std::string& channel : channels) {
        const bool added = wanted_.insert(channel).second;
        if (!session || confirmed_.contains(channel)) continue;
        // In a session every wanted channel has a SUBSCRIBE out already,
        // unless it was not wanted until now.
        if (added) {
          ++unconfirmed_[channel];
          to_send.push_back(channel);
        }
        waiter.remaining.insert(std::move(channel));
      }
      if (!session) {
        answer = absl::UnavailableError(
            absl::StrCat("redis: subscriber not connected to ", options_.Describe(),
                         "; the channels are subscribed when it is"));
      } else if (!waiter.remaining.empty()) {
        QueueChannelsLocked(/*subscribe=*/true, to_send);
        waiter.done = std::move(done);
        waiters_.push_back(std::move(waiter));
        return;
      }
    }
  }
  if (done) std::move(done)(answer);
}

void RedisSubscriber::Unsubscribe(std::vector<std::string> channels) {
  absl::MutexLock lock(&mu_);
  const bool session = state_ == State::kSubscribing || state_ == State::kUp;
  std::vector<std::string> to_send;
  for (std::string& channel : channels) {
    if (wanted_.erase(channel) == 0 || !session) continue;
    // A SUBSCRIBE still in flight stays in unconfirmed_: its confirmation
    // comes first and answers whoever waits for it.
    confirmed_.erase(channel);
    to_send.push_back(std::move(channel));
  }
  QueueChannelsLocked(/*subscribe=*/false, to_send);
}

bool RedisSubscriber::connected() const {
  absl::MutexLock lock(&mu_);
  return state_ == State::kUp;
}

size_t RedisSubscriber::wanted_channels() const {
  absl::MutexLock lock(&mu_);
  return wanted_.size();
}

RedisSubscriber::Stats RedisSubscriber::stats() const {
  Stats s;
  s.messages = messages_.load(std::memory_order_relaxed);
  s.connects = connects_.load(std::memory_order_relaxed);
  s.disconnects = disconnects_.load(std::memory_order_relaxed);
  s.protocol_errors = protocol_errors_.load(std::memory_order_relaxed);
  return s;
}

// ---- Outgoing bytes --------------------------------------------------------

void RedisSubscriber::QueueChannelsLocked(bool subscribe,
                                          const std::vector<std::string>& channels) {
  const char* command = sharded_ ? (subscribe ? "SSUBSCRIBE" : "SUNSUBSCRIBE")
                                 : (subscribe ? "SUBSCRIBE" : "UNSUBSCRIBE");
  // The channels of one SSUBSCRIBE must share a slot (else CROSSSLOT).
  const size_t per_command = sharded_ ? 1 : kChannelsPerCommand;
  for (size_t i = 0; i < channels.size(); i += per_command) {
    const size_t end = std::min(channels.size(), i + per_command);
    std::vector<std::string> args;
    args.reserve(end - i + 1);
    args.push_back(command);
    args.insert(args.end(), channels.begin() + i, channels.begin() + end);
    QueueLocked(args, end - i);  // Redis confirms each channel separately
  }
}

void RedisSubscriber::QueueLocked(const std::vector<std::string>& args, size_t replies) {
  AppendCommand(args, &out_);
  const SteadyTime deadline = steady_clock::now() + command_timeout_;
  owed_.insert(owed_.end(), replies, deadline);
  if (!flush_posted_) {
    flush_posted_ = true;
    asio::post(*io_, [this] { Flush(); });
  }
}

// ---- Connection lifecycle (I/O thread) -------------------------------------

void RedisSubscriber::StartResubscribeLocked(Deferred* out) {
  unconfirmed_.clear();
  confirmed_.clear();
  owed_.clear();
  if (wanted_.empty()) {
    state_ = State::kUp;
    up_since_ = absl::Now();
    out->restored.emplace(down_since_, up_since_);
    return;
  }
  // The restore waiter turns the state to kUp when the channels wanted now
  // are all confirmed; later Subscribes wait on their own.
  Waiter restore;
  restore.restore = true;
  restore.remaining = wanted_;
  std::vector<std::string> all(wanted_.begin(), wanted_.end());
  for (const std::string& channel : all) unconfirmed_[channel] = 1;
  QueueChannelsLocked(/*subscribe=*/true, all);
  waiters_.push_back(std::move(restore));
}

absl::Status RedisSubscriber::OnPush(Reply reply, Deferred* out) {
  auto protocol_error = [this](absl::string_view what) {
    protocol_errors_.fetch_add(1, std::memory_order_relaxed);
    return absl::UnavailableError(absl::StrCat("redis: protocol error in subscribe mode: ", what,
                                               " from ", options_.Describe()));
  };
  if (reply.is_error()) {
    if (sharded_ && absl::StartsWith(reply.str, "MOVED ")) {
      return absl::UnavailableError(absl::StrCat("redis: shard subscriber: ", options_.Describe(),
                                                 " answered ", reply.str.substr(0, 64),
                                                 "; the channel's slot moved"));
    }
    return protocol_error(absl::StrCat("error reply ", reply.str));
  }
  // Outside subscribe mode (no channel subscribed yet, or none left) a PING
  // is answered +PONG; inside it, ["pong", ""].
  const bool status_pong = reply.is_status() && reply.str == "PONG";
  const bool push = reply.is_array() && reply.elements.size() >= 2 &&
                    reply.elements[0].is_string();
  if (!status_pong && !push) return protocol_error(absl::StrCat("unexpected ", Describe(reply)));
  absl::string_view kind = status_pong ? "pong" : absl::string_view(reply.elements[0].str);
  // Shard channels' pushes are the classic ones with an "s" in front.
  if (sharded_ && (kind == "smessage" || kind == "ssubscribe" || kind == "sunsubscribe")) {
    kind.remove_prefix(1);
  } else if (sharded_ && kind != "pong") {
    return protocol_error(absl::StrCat("unexpected push \"", absl::CHexEscape(kind), "\""));
  }
  const bool triple = push && reply.elements.size() == 3 && reply.elements[1].is_string();

  // A string payload (PUBLISH), or a structured one where it is expected
  // (__redis__:invalidate).
  const bool structured = triple && !reply.elements[2].is_string();
  if (kind == "message" && triple && (!structured || callbacks_.on_structured_message)) {
    const std::string& channel = reply.elements[1].str;
    bool wanted;
    {
      absl::MutexLock lock(&mu_);
      wanted = wanted_.contains(channel);
    }
    // Messages of a channel being unsubscribed may still be on the wire.
    if (wanted) {
      messages_.fetch_add(1, std::memory_order_relaxed);
      if (structured) {
        callbacks_.on_structured_message(channel, reply.elements[2]);
      } else if (callbacks_.on_message) {
        callbacks_.on_message(channel, reply.elements[2].str);
      }
    }
    return absl::OkStatus();
  }
  const bool confirmation = (kind == "subscribe" || kind == "unsubscribe") && triple &&
                            reply.elements[2].is_integer();
  if (!confirmation && kind != "pong") {
    return protocol_error(absl::StrCat("unexpected push \"", absl::CHexEscape(kind), "\""));
  }
  absl::MutexLock lock(&mu_);
  // Unasked, Redis unsubscribes a shard channel whose slot left the node
  // (Unsubscribe forgets a channel's confirmation before it asks).
  if (sharded_ && kind == "unsubscribe" && confirmed_.contains(reply.elements[1].str)) {
    return absl::UnavailableError(absl::StrCat("redis: shard subscriber: ", options_.Describe(),
                                               " dropped a channel: its slot moved"));
  }
  if (owed_.empty()) return protocol_error(absl::StrCat("unrequested ", kind));
  owed_.pop_front();
  if (kind != "subscribe") return absl::OkStatus();
  const std::string& channel = reply.elements[1].str;
  auto it = unconfirmed_.find(channel);
  if (it == unconfirmed_.end()) return protocol_error("confirmation of an unrequested SUBSCRIBE");
  if (--it->second > 0) return absl::OkStatus();  // a later SUBSCRIBE is still owed
  unconfirmed_.erase(it);
  if (wanted_.contains(channel)) confirmed_.insert(channel);
  for (auto w = waiters_.begin(); w != waiters_.end();) {
    w->remaining.erase(channel);
    if (!w->remaining.empty()) {
      ++w;
      continue;
    }
    if (w->restore) {
      state_ = State::kUp;
      up_since_ = absl::Now();
      out->restored.emplace(down_since_, up_since_);
    } else if (w->done) {
      out->dones.emplace_back(std::move(w->done), absl::OkStatus());
    }
    w = waiters_.erase(w);
  }
  return absl::OkStatus();
}

void RedisSubscriber::Run(Deferred& deferred) {
  if (deferred.down && callbacks_.on_down) callbacks_.on_down(*deferred.down);
  for (auto& [done, status] : deferred.dones) std::move(done)(status);
  if (deferred.restored && callbacks_.on_restored) {
    callbacks_.on_restored(deferred.restored->first, deferred.restored->second);
  }
}

}  // namespace stateside::redis
