// SentinelMonitor: master discovery through Redis Sentinel. See
// sentinel_monitor.h for the contract.
#include "sidecar/redis/sentinel_monitor.h"

#include <algorithm>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "sidecar/redis/resp.h"
#include "sidecar/redis/transport.h"

namespace stateside::redis {
namespace {

namespace asio = boost::asio;

std::chrono::milliseconds ToChrono(absl::Duration d) {
  return std::chrono::milliseconds(std::max<int64_t>(1, absl::ToInt64Milliseconds(d)));
}

std::string SentinelList(const std::vector<RedisNode>& nodes) {
  std::string out;
  for (const RedisNode& n : nodes) absl::StrAppend(&out, out.empty() ? "" : ",", NodeName(n));
  return out;
}

}  // namespace

std::string NodeName(const RedisNode& node) {
  const bool v6 = node.host.find(':') != std::string::npos;
  return absl::StrCat(v6 ? "[" : "", node.host, v6 ? "]" : "", ":", node.port);
}

std::string RoleOf(const Reply& role_reply) {
  if (!role_reply.is_array() || role_reply.elements.empty()) return "";
  return role_reply.elements[0].str;
}

// One conversation with one sentinel: connect, AUTH when configured, the
// given commands, then every further reply to `on_reply` until the handler,
// the peer, the deadline or the owner ends it; `on_closed` hears how, once.
// I/O thread only; the pending handlers keep it alive.
class SentinelMonitor::Link : public std::enable_shared_from_this<Link> {
 public:
  // A non-OK result closes the link with that status.
  using OnReply = std::function<absl::Status(const Reply&)>;
  using OnClosed = std::function<void(const absl::Status&)>;

  Link(asio::io_context* io, TransportFactory* factory, RedisNode node,
       const RedisOptions& options)
      : node_(std::move(node)),
        options_(options),
        transport_(factory->NewTo(node_)),
        parser_(options.max_reply_bytes, options.max_reply_elements),
        deadline_(*io) {}

  void Open(const std::vector<std::vector<std::string>>& commands, absl::Duration deadline,
            OnReply on_reply, OnClosed on_closed) {
    on_reply_ = std::move(on_reply);
    on_closed_ = std::move(on_closed);
    auto self = shared_from_this();
    deadline_.expires_after(ToChrono(deadline));
    deadline_.async_wait([self](const boost::system::error_code& ec) {
      if (ec) return;
      self->Close(absl::UnavailableError(
          absl::StrCat("redis: sentinel ", NodeName(self->node_), " did not answer in time")));
    });
    if (!options_.sentinel_password.empty()) {
      std::vector<std::string> auth = {"AUTH"};
      if (!options_.sentinel_username.empty()) auth.push_back(options_.sentinel_username);
      auth.push_back(options_.sentinel_password);
      AppendCommand(auth, &out_);
      auth_owed_ = true;
    }
    for (const auto& command : commands) AppendCommand(command, &out_);
    transport_->AsyncConnect([self](absl::Status status) {
      if (self->closed_) return;
      if (!status.ok()) return self->Close(status);
      self->connected_ = true;
      self->Read();
      self->Flush();
    });
  }

  void Send(const std::vector<std::string>& command) {
    AppendCommand(command, &out_);
    Flush();
  }

  void ClearDeadline() { deadline_.cancel(); }

  // Idempotent; `on_closed` runs on the first call only.
  void Close(const absl::Status& why) {
    if (closed_) return;
    closed_ = true;
    deadline_.cancel();
    transport_->Close();
    // on_reply_ stays: it may be the caller (closed_ keeps it from running again).
    OnClosed done = std::move(on_closed_);
    on_closed_ = nullptr;
    if (done) done(why);
  }

  // Closes without telling anyone (the owner is going away).
  void Drop() {
    on_closed_ = nullptr;
    Close(absl::CancelledError("closed"));
  }

  const RedisNode& node() const { return node_; }

 private:
  void Flush() {
    if (!connected_ || writing_ || out_.empty() || closed_) return;
    writing_ = true;
    std::string bytes;
    bytes.swap(out_);
    auto self = shared_from_this();
    transport_->AsyncWrite(std::move(bytes), [self](absl::Status status) {
      self->writing_ = false;
      if (self->closed_) return;
      if (!status.ok()) return self->Close(status);
      self->Flush();
    });
  }

  void Read() {
    auto self = shared_from_this();
    transport_->AsyncRead([self](absl::Status status, std::string_view data) {
      if (self->closed_) return;
      if (!status.ok()) return self->Close(status);
      self->parser_.Feed(data);
      while (!self->closed_) {
        absl::StatusOr<std::optional<Reply>> next = self->parser_.Next();
        if (!next.ok()) {
          return self->Close(absl::UnavailableError(
              absl::StrCat("redis: sentinel ", NodeName(self->node_), ": ",
                           next.status().message())));
        }
        if (!next->has_value()) break;
        if (absl::Status s = self->Handle(**next); !s.ok()) return self->Close(s);
      }
      if (!self->closed_) self->Read();
    });
  }

  absl::Status Handle(const Reply& reply) {
    if (reply.is_error() && (absl::StartsWith(reply.str, "NOAUTH") ||
                             absl::StartsWith(reply.str, "WRONGPASS") ||
                             absl::StartsWith(reply.str, "ERR AUTH") || auth_owed_)) {
      if (absl::StartsWith(reply.str, "NOAUTH")) {
        return absl::FailedPreconditionError(
            absl::StrCat("redis: sentinel ", NodeName(node_), " needs a password: ", reply.str,
                         " (set REDIS_SENTINEL_PASSWORD)"));
      }
      return absl::FailedPreconditionError(
          absl::StrCat("redis: sentinel ", NodeName(node_), " refused AUTH: ", reply.str,
                       options_.sentinel_username.empty()
                           ? " (check REDIS_SENTINEL_PASSWORD)"
                           : " (check REDIS_SENTINEL_USERNAME and REDIS_SENTINEL_PASSWORD)"));
    }
    if (auth_owed_) {
      auth_owed_ = false;
      return absl::OkStatus();
    }
    if (!on_reply_) return absl::OkStatus();
    return on_reply_(reply);
  }

  const RedisNode node_;
  const RedisOptions& options_;
  std::shared_ptr<Transport> transport_;
  RespParser parser_;
  asio::steady_timer deadline_;
  OnReply on_reply_;
  OnClosed on_closed_;
  std::string out_;
  bool connected_ = false;
  bool writing_ = false;
  bool closed_ = false;
  bool auth_owed_ = false;
};

// What one sentinel said about the master.
struct SentinelMonitor::Outcome {
  enum class Kind { kAddress, kUnknown, kFailed } kind = Kind::kFailed;
  RedisNode master;
  absl::Status error;
};

SentinelMonitor::SentinelMonitor(asio::io_context* io, TransportFactory* factory,
                                 const RedisOptions& options, Listener listener,
                                 absl::Duration refresh_interval,
                                 absl::Duration stale_grace)
    : io_(io),
      factory_(factory),
      options_(options),
      listener_(std::move(listener)),
      refresh_interval_(refresh_interval),
      stale_grace_(stale_grace),
      sentinels_(SentinelList(options.nodes)),
      tick_(*io) {}

SentinelMonitor::~SentinelMonitor() = default;

void SentinelMonitor::Start() {
  Resolve();
  ArmTick();
}

void SentinelMonitor::Refresh() { Resolve(); }

void SentinelMonitor::Shutdown() {
  closed_ = true;
  tick_.cancel();
  if (query_ != nullptr) query_->Drop();
  if (subscription_ != nullptr) subscription_->Drop();
  query_.reset();
  subscription_.reset();
}

void SentinelMonitor::ArmTick() {
  tick_.expires_after(ToChrono(refresh_interval_));
  tick_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || closed_) return;
    Resolve();
    if (subscription_ != nullptr && subscribed_) {
      // A subscription that stopped answering is silently lost: every tick
      // sends a PING and the next one drops the link if it is still owed.
      if (pings_owed_ > 0) {
        subscription_->Close(absl::UnavailableError(absl::StrCat(
            "redis: sentinel ", NodeName(subscription_->node()), " stopped answering")));
      } else {
        ++pings_owed_;
        subscription_->Send({"PING"});
      }
    }
    ArmTick();
  });
}

void SentinelMonitor::Resolve() {
  if (closed_) return;
  if (resolving_) {
    again_ = true;
    return;
  }
  resolving_ = true;
  round_pushes_ = pushes_;
  asked_ = 0;
  asking_ = preferred_ % options_.nodes.size();
  unknown_answers_ = 0;
  stale_answers_ = 0;
  auth_error_ = absl::OkStatus();
  unreachable_ = absl::OkStatus();
  AskNext();
}

void SentinelMonitor::AskNext() {
  auto link = std::make_shared<Link>(io_, factory_, options_.nodes[asking_], options_);
  query_ = link;
  auto outcome = std::make_shared<Outcome>();
  link->Open(
      {{"SENTINEL", "GET-MASTER-ADDR-BY-NAME", options_.sentinel_master}},
      options_.connect_timeout + options_.command_timeout,
      [link_ptr = link.get(), outcome](const Reply& reply) {
        // [host, port], or nil for a name this sentinel does not monitor.
        int port = 0;
        if (reply.is_array() && reply.elements.size() == 2 &&
            absl::SimpleAtoi(reply.elements[1].str, &port) && port > 0 && port < 65536) {
          outcome->kind = Outcome::Kind::kAddress;
          outcome->master = RedisNode{reply.elements[0].str, port};
        } else if (reply.is_nil() || (reply.is_array() && reply.elements.empty())) {
          outcome->kind = Outcome::Kind::kUnknown;
        } else {
          return absl::UnavailableError(absl::StrCat(
              "redis: sentinel ", NodeName(link_ptr->node()),
              " answered GET-MASTER-ADDR-BY-NAME with ", reply.is_error() ? reply.str : "junk"));
        }
        link_ptr->Close(absl::OkStatus());
        return absl::OkStatus();
      },
      [this, link, outcome](const absl::Status& status) mutable {
        if (closed_ || query_ != link) return;
        query_.reset();
        link.reset();  // breaks the cycle through this handler
        if (!status.ok()) {
          outcome->kind = Outcome::Kind::kFailed;
          outcome->error = status;
        }
        OnAnswer(std::move(*outcome));
      });
}

void SentinelMonitor::OnAnswer(Outcome outcome) {
  const size_t n = options_.nodes.size();
  switch (outcome.kind) {
    case Outcome::Kind::kAddress:
      if (round_pushes_ != pushes_) {
        // Asked before the latest push: older news than the master in use.
        resolving_ = false;
        break;
      }
      if (superseded_.has_value() && outcome.master == *superseded_ &&
          absl::Now() < superseded_until_) {
        // A sentinel that has not switched yet: ask the next one.
        ++stale_answers_;
        break;
      }
      if (superseded_.has_value() && outcome.master == master()) superseded_.reset();
      preferred_ = asking_;
      resolving_ = false;
      Publish(outcome.master, absl::OkStatus());
      Subscribe();
      break;
    case Outcome::Kind::kUnknown:
      ++unknown_answers_;
      break;
    case Outcome::Kind::kFailed:
      if (absl::IsFailedPrecondition(outcome.error)) {
        auth_error_ = outcome.error;
      } else {
        unreachable_ = outcome.error;
      }
      break;
  }
  if (resolving_) {
    if (++asked_ < n) {
      asking_ = (asking_ + 1) % n;
      return AskNext();
    }
    // Nobody named a master. A name the sentinels answered about is a
    // verdict (no master: never fall back to any node); a refused AUTH or
    // silence leaves the master in use as it was, checked by ROLE anyway.
    resolving_ = false;
    if (stale_answers_ > 0) {
      // The sentinels that answered lag behind the push: keep its master.
    } else if (unknown_answers_ > 0) {
      Publish(std::nullopt, absl::FailedPreconditionError(absl::StrCat(
                                "redis: the sentinels at ", sentinels_,
                                " know no master named \"", options_.sentinel_master,
                                "\" (REDIS_SENTINEL_MASTER)")));
    } else if (!auth_error_.ok()) {
      Publish(master(), auth_error_);
    } else {
      Publish(master(), absl::UnavailableError(absl::StrCat(
                            "redis: no sentinel answered at ", sentinels_, " (REDIS_URL): ",
                            unreachable_.message())));
    }
  }
  if (again_ && !resolving_) {
    again_ = false;
    Resolve();
  }
}

void SentinelMonitor::Subscribe() {
  if (closed_ || subscription_ != nullptr) return;
  const size_t index = preferred_ % options_.nodes.size();
  auto link = std::make_shared<Link>(io_, factory_, options_.nodes[index], options_);
  subscription_ = link;
  subscribed_ = false;
  pings_owed_ = 0;
  link->Open(
      {{"SUBSCRIBE", "+switch-master", "+promoted-slave"}},
      options_.connect_timeout + options_.command_timeout,
      [this, link_ptr = link.get()](const Reply& reply) -> absl::Status {
        // Pushes: ["subscribe", channel, n], ["message", channel, payload],
        // and ["pong", ""] for a PING in subscribed mode.
        if (!reply.is_array() || reply.elements.empty()) {
          return absl::UnavailableError("redis: unexpected reply on the sentinel subscription");
        }
        const std::string& kind = reply.elements[0].str;
        if (kind == "subscribe") {
          subscribed_ = true;
          link_ptr->ClearDeadline();
          absl::MutexLock lock(&mu_);
          subscribed_to_ = NodeName(link_ptr->node());
        } else if (kind == "pong") {
          pings_owed_ = 0;
        } else if (kind == "message" && reply.elements.size() == 3) {
          return OnSwitchMessage(reply.elements[1].str, reply.elements[2].str);
        }
        return absl::OkStatus();
      },
      [this, link](const absl::Status&) mutable {
        if (closed_ || subscription_ != link) return;
        subscription_.reset();
        link.reset();
        subscribed_ = false;
        {
          absl::MutexLock lock(&mu_);
          subscribed_to_.clear();
        }
        // Try another sentinel; the resolve subscribes again when it works
        // (else the next tick retries).
        preferred_ = (preferred_ + 1) % options_.nodes.size();
        Resolve();
      });
}

absl::Status SentinelMonitor::OnSwitchMessage(const std::string& channel,
                                              const std::string& payload) {
  std::vector<std::string> parts = absl::StrSplit(payload, ' ', absl::SkipEmpty());
  // +switch-master: "<master name> <old ip> <old port> <new ip> <new port>",
  // from every sentinel once the new configuration is out.
  // +promoted-slave: "slave <ip>:<port> <ip> <port> @ <master name> <old ip>
  // <old port>", from the sentinel leading the failover as soon as the
  // replica reports itself master: leaving the old master then, rather than
  // at the switch a second or so later, narrows the window in which it still
  // takes writes that the failover discards.
  const bool promoted = channel == "+promoted-slave";
  const size_t name = promoted ? 5 : 0, host = promoted ? 2 : 3, port_at = promoted ? 3 : 4;
  const size_t old_host = promoted ? 6 : 1, old_port_at = promoted ? 7 : 2;
  int port = 0, old_port = 0;
  if (parts.size() < std::max({name, port_at, old_port_at}) + 1 ||
      !absl::SimpleAtoi(parts[port_at], &port) || port < 1 || port > 65535 ||
      !absl::SimpleAtoi(parts[old_port_at], &old_port) || old_port < 1 || old_port > 65535) {
    return absl::UnavailableError(
        absl::StrCat("redis: malformed ", channel, " message from a sentinel: ", payload));
  }
  if (parts[name] != options_.sentinel_master) return absl::OkStatus();
  RedisNode next{parts[host], port};
  RedisNode old{parts[old_host], old_port};
  ++pushes_;
  if (old != next) {
    superseded_ = std::move(old);
    superseded_until_ = absl::Now() + stale_grace_;
  }
  Publish(std::move(next), absl::OkStatus());
  return absl::OkStatus();
}

void SentinelMonitor::Publish(std::optional<RedisNode> master, absl::Status error) {
  if (closed_) return;
  bool changed;
  {
    absl::MutexLock lock(&mu_);
    changed = master != master_ || error.code() != error_.code() ||
              error.message() != error_.message();
    if (master_.has_value() && master.has_value() && *master_ != *master) {
      ++changes_;
      previous_confirmed_at_ = confirmed_at_;
    }
    // An OK status comes with a master a sentinel named just now.
    if (error.ok() && master.has_value()) confirmed_at_ = absl::Now();
    master_ = master;
    error_ = error;
  }
  if (changed && listener_) listener_(master, error);
}

std::optional<RedisNode> SentinelMonitor::master() const {
  absl::MutexLock lock(&mu_);
  return master_;
}

absl::Status SentinelMonitor::last_error() const {
  absl::MutexLock lock(&mu_);
  return error_;
}

uint64_t SentinelMonitor::changes() const {
  absl::MutexLock lock(&mu_);
  return changes_;
}

absl::Time SentinelMonitor::previous_master_confirmed_at() const {
  absl::MutexLock lock(&mu_);
  return previous_confirmed_at_;
}

std::string SentinelMonitor::subscribed_to() const {
  absl::MutexLock lock(&mu_);
  return subscribed_to_;
}

}  // namespace stateside::redis
