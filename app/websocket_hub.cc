// WebSocketHub: the connection map and the realtime stream's reader.
#include "app/websocket_hub.h"

#include <algorithm>
#include <memory>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "app/http_util.h"
#include "app/websocket_session.h"
#include "spdlog/spdlog.h"

namespace radar {
namespace {

constexpr absl::Duration kInitialBackoff = absl::Milliseconds(100);
constexpr absl::Duration kMaxBackoff = absl::Seconds(2);

std::shared_ptr<const std::string> Text(const Json& json) {
  return std::make_shared<const std::string>(
      json.dump(-1, ' ', false, Json::error_handler_t::replace));
}

}  // namespace

WebSocketHub::WebSocketHub(stateside::Client* client, absl::Duration session_check_interval)
    : client_(client), session_check_interval_(session_check_interval) {}

WebSocketHub::~WebSocketHub() { Stop(); }

absl::Status WebSocketHub::Start() {
  absl::StatusOr<std::unique_ptr<stateside::Subscription>> subscription = client_->Subscribe();
  if (!subscription.ok()) return subscription.status();
  {
    absl::MutexLock lock(&mu_);
    subscription_ = *std::move(subscription);
  }
  thread_ = std::thread([this] { Run(); });
  checker_ = std::thread([this] { CheckSessions(); });
  return absl::OkStatus();
}

void WebSocketHub::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    if (subscription_ != nullptr) subscription_->Cancel();
  }
  if (thread_.joinable()) thread_.join();
  if (checker_.joinable()) checker_.join();
  absl::MutexLock lock(&mu_);
  subscription_.reset();  // no thread is inside Next() any more
}

void WebSocketHub::Run() {
  for (;;) {
    stateside::Subscription* subscription;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
      subscription = subscription_.get();
    }
    // Only this thread replaces subscription_, so the pointer stays valid.
    absl::StatusOr<stateside::RealtimeEvent> event = subscription->Next();
    if (event.ok()) {
      if (const auto* delivery = std::get_if<stateside::Delivery>(&*event)) {
        Remember(*delivery);
        Dispatch(*delivery);
      } else if (const auto* gap = std::get_if<stateside::Gap>(&*event)) {
        DispatchGap(*gap);
      } else {
        // A cluster-wide disconnect: the sidecar has unregistered them.
        const auto& gone = std::get<stateside::Disconnect>(*event).conn_ids;
        const absl::flat_hash_set<std::string> named(gone.begin(), gone.end());
        CloseWhere([&](const std::string& conn_id, const Entry&) { return named.contains(conn_id); });
      }
      continue;
    }
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
    }
    spdlog::warn("realtime stream ended ({}); subscribing again", event.status().ToString());
    if (!Resubscribe()) return;
    Reregister();
  }
}

bool WebSocketHub::Resubscribe() {
  absl::Duration backoff = kInitialBackoff;
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      // Interruptible wait: Stop() sets stopping_.
      mu_.AwaitWithTimeout(absl::Condition(&stopping_), backoff);
      if (stopping_) return false;
    }
    absl::StatusOr<std::unique_ptr<stateside::Subscription>> subscription =
        client_->Subscribe({}, ResumePoints());
    if (subscription.ok()) {
      absl::MutexLock lock(&mu_);
      if (stopping_) return false;
      subscription_ = *std::move(subscription);  // the old one has ended
      return true;
    }
    spdlog::warn("realtime: subscribe: {}", subscription.status().ToString());
    backoff = std::min(backoff * 2, kMaxBackoff);
  }
}

namespace {

std::string StreamName(const stateside::PublishTarget& target) {
  return absl::StrCat(std::string(stateside::TargetName(target.kind)), ":",
                      target.kind == stateside::Target::kConnection ? target.connection.conn_id
                                                                    : target.name);
}

}  // namespace

void WebSocketHub::Remember(const stateside::Delivery& delivery) {
  if (delivery.sequence == 0) return;  // a sidecar without per-stream sequences
  stateside::StreamPosition position = stateside::PositionOf(delivery);
  stateside::StreamPosition& known = positions_[StreamName(position.target)];
  if (position.sequence > known.sequence) known = std::move(position);
  // Bounded by what live sockets can receive: pruned whenever it doubles.
  if (positions_.size() > prune_at_) ForgetUnreachable();
}

void WebSocketHub::ForgetUnreachable() {
  absl::flat_hash_set<std::string> wanted = {StreamName(stateside::PublishTarget::All())};
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [conn_id, entry] : connections_) {
      wanted.insert(StreamName(stateside::PublishTarget::Connection({"", conn_id})));
      if (!entry.user.empty()) wanted.insert(StreamName(stateside::PublishTarget::User(entry.user)));
      for (const std::string& room : entry.rooms) {
        wanted.insert(StreamName(stateside::PublishTarget::Room(room)));
      }
    }
  }
  std::erase_if(positions_, [&](const auto& item) { return !wanted.contains(item.first); });
  prune_at_ = std::max<size_t>(4096, 2 * positions_.size());
}

std::vector<stateside::StreamPosition> WebSocketHub::ResumePoints() {
  constexpr size_t kMaxPoints = 256;  // SubscribeRequest.resume
  ForgetUnreachable();
  std::vector<stateside::StreamPosition> points;
  for (const auto& [name, position] : positions_) {
    if (points.size() == kMaxPoints) break;
    points.push_back(position);
  }
  return points;
}

void WebSocketHub::Reregister() {
  // A restarted sidecar has forgotten our connections (memory store) or
  // may have dropped them from presence: register the live ones again.
  std::vector<std::pair<std::string, Entry>> live;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [conn_id, entry] : connections_) live.emplace_back(conn_id, entry);
  }
  // On the Async form, kMaxReregistering at a time instead of one round
  // trip after another; returns once every call answered (each answers
  // exactly once, within the client's call_timeout). Shared: an answer may
  // still be unlocking it when this returns.
  constexpr size_t kMaxReregistering = 64;
  struct Progress {
    absl::Mutex mu;
    size_t in_flight ABSL_GUARDED_BY(mu) = 0;
    size_t failed ABSL_GUARDED_BY(mu) = 0;
  };
  auto progress = std::make_shared<Progress>();
  for (const auto& [conn_id, entry] : live) {
    {
      absl::MutexLock lock(&progress->mu);
      progress->mu.Await(absl::Condition(
          +[](size_t* n) { return *n < kMaxReregistering; }, &progress->in_flight));
      ++progress->in_flight;
    }
    const std::vector<std::string> rooms(entry.rooms.begin(), entry.rooms.end());
    client_->RegisterConnectionAsync(
        conn_id, entry.user, rooms, [progress, conn_id = conn_id](absl::Status status) {
          if (!status.ok()) spdlog::warn("realtime: re-register {}: {}", conn_id, status.ToString());
          absl::MutexLock lock(&progress->mu);
          --progress->in_flight;
          if (!status.ok()) ++progress->failed;
        });
  }
  absl::MutexLock lock(&progress->mu);
  progress->mu.Await(
      absl::Condition(+[](size_t* n) { return *n == 0; }, &progress->in_flight));
  spdlog::info("realtime: subscribed again; re-registered {} connection(s), {} failed",
               live.size() - progress->failed, progress->failed);
}

void WebSocketHub::Add(const std::string& conn_id, std::weak_ptr<WebSocketSession> session,
                       const SocketOwner& owner) {
  absl::MutexLock lock(&mu_);
  connections_[conn_id] = Entry{std::move(session), owner.user, owner.session_id, {}};
}

void WebSocketHub::Remove(const std::string& conn_id) {
  absl::MutexLock lock(&mu_);
  connections_.erase(conn_id);
}

void WebSocketHub::SetMembership(const std::string& conn_id, const std::string& room,
                                 bool member) {
  absl::MutexLock lock(&mu_);
  auto it = connections_.find(conn_id);
  if (it == connections_.end()) return;
  if (member) {
    it->second.rooms.insert(room);
  } else {
    it->second.rooms.erase(room);
  }
}

void WebSocketHub::CloseAll(boost::beast::websocket::close_code code, absl::Duration spread) {
  std::vector<std::shared_ptr<WebSocketSession>> sessions;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [conn_id, entry] : connections_) {
      if (auto session = entry.session.lock()) sessions.push_back(std::move(session));
    }
  }
  // Random order: the map's order would close the same clients first on
  // every pod, and reconnect them in one wave.
  absl::BitGen gen;
  std::shuffle(sessions.begin(), sessions.end(), gen);
  const absl::Time start = absl::Now();
  for (size_t i = 0; i < sessions.size(); ++i) {
    sessions[i]->Close(code);
    if (i + 1 == sessions.size() || spread <= absl::ZeroDuration()) continue;
    // The (i+1)-th close is due at start + spread * (i+1) / n. Stop() ends
    // the wait: the rest close at once.
    const absl::Time due = start + spread * static_cast<double>(i + 1) /
                                       static_cast<double>(sessions.size());
    absl::MutexLock lock(&mu_);
    if (mu_.AwaitWithDeadline(absl::Condition(&stopping_), due)) spread = absl::ZeroDuration();
  }
}

template <typename Match>
size_t WebSocketHub::CloseWhere(Match match) {
  std::vector<std::shared_ptr<WebSocketSession>> sessions;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [conn_id, entry] : connections_) {
      if (!match(conn_id, entry)) continue;
      if (auto session = entry.session.lock()) sessions.push_back(std::move(session));
    }
  }
  for (const auto& session : sessions) session->Close(websocket::close_code::policy_error);
  return sessions.size();
}

size_t WebSocketHub::CloseSession(const std::string& session_id) {
  return CloseWhere([&](const std::string&, const Entry& entry) {
    return entry.session_id == session_id;
  });
}

size_t WebSocketHub::CloseUser(const std::string& user) {
  return CloseWhere([&](const std::string&, const Entry& entry) { return entry.user == user; });
}

void WebSocketHub::CheckSessions() {
  for (;;) {
    absl::flat_hash_set<std::string> session_ids;
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(this, &WebSocketHub::CheckDue),
                           session_check_interval_);
      if (stopping_) return;
      check_now_ = false;
      for (const auto& [conn_id, entry] : connections_) session_ids.insert(entry.session_id);
    }
    // One read per session, however many sockets it has open. NOT_FOUND
    // (logged out, expired) ends its sockets; an unreachable sidecar does
    // not: the next round tries again.
    for (const std::string& id : session_ids) {
      absl::StatusOr<stateside::Session> session =
          client_->GetSession(stateside::SessionRef::Id(id), /*touch=*/false);
      if (session.ok()) continue;
      if (session.status().code() != absl::StatusCode::kNotFound) {
        spdlog::warn("ws: session check: {}", session.status().ToString());
        continue;
      }
      const size_t closed = CloseSession(id);
      if (closed > 0) spdlog::info("ws: session ended: closing {} socket(s)", closed);
    }
  }
}

size_t WebSocketHub::size() const {
  absl::MutexLock lock(&mu_);
  return connections_.size();
}

void WebSocketHub::Dispatch(const stateside::Delivery& delivery) {
  if (delivery.event == kCloseConnectionsEvent) {
    // A logout everywhere on some instance: these sockets' user has no
    // session left.
    const absl::flat_hash_set<std::string> named(delivery.conn_ids.begin(),
                                                 delivery.conn_ids.end());
    CloseWhere([&](const std::string& conn_id, const Entry&) { return named.contains(conn_id); });
    return;
  }
  if (delivery.event == kSessionEndedEvent) {
    // A logout on some instance. "everywhere": every session of the user
    // is gone, close the user's sockets named here; else find out which.
    const Json payload = Json::parse(delivery.payload, nullptr, /*allow_exceptions=*/false);
    if (payload.is_object() && payload.value("everywhere", false)) {
      const absl::flat_hash_set<std::string> named(delivery.conn_ids.begin(),
                                                   delivery.conn_ids.end());
      CloseWhere([&](const std::string& conn_id, const Entry&) { return named.contains(conn_id); });
    } else {
      absl::MutexLock lock(&mu_);
      check_now_ = true;
    }
    return;
  }
  Json out = {{"event", delivery.event}};
  const Json payload = Json::parse(delivery.payload, nullptr, /*allow_exceptions=*/false);
  if (!payload.is_discarded() && payload.is_object()) {
    for (const auto& [key, value] : payload.items()) {
      if (key != "event") out[key] = value;
    }
  } else {
    out["payload"] = delivery.payload;  // dumped with invalid UTF-8 replaced
  }
  if (delivery.sequence != 0) out["sequence"] = delivery.sequence;
  const std::shared_ptr<const std::string> text = Text(out);

  std::vector<std::shared_ptr<WebSocketSession>> sessions;
  {
    absl::MutexLock lock(&mu_);
    for (const std::string& conn_id : delivery.conn_ids) {
      auto it = connections_.find(conn_id);
      if (it == connections_.end()) continue;  // closed meanwhile
      if (auto session = it->second.session.lock()) sessions.push_back(std::move(session));
    }
  }
  for (const auto& session : sessions) session->Send(text);
}

void WebSocketHub::DispatchGap(const stateside::Gap& gap) {
  // A gap is the stream's, not one connection's: every client may have
  // missed something.
  const auto text = Text(Json{{"event", "gap"},
                              {"reason", stateside::GapReasonName(gap.reason)},
                              {"dropped", gap.dropped}});
  std::vector<std::shared_ptr<WebSocketSession>> sessions;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [conn_id, entry] : connections_) {
      if (auto session = entry.session.lock()) sessions.push_back(std::move(session));
    }
  }
  for (const auto& session : sessions) session->Send(text);
}

}  // namespace radar
