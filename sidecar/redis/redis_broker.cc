// RedisBroker: lifecycle, presence, channels, publishing and incoming
// frames (queries: redis_broker_queries.cc; Lua: realtime_scripts.cc).
#include "sidecar/redis/broker_replies.h"
#include "sidecar/redis/redis_broker.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "sidecar/common/status_macros.h"
#include "sidecar/redis/realtime_scripts.h"

namespace stateside::redis {
namespace {

using broker_internal::AV;
using broker_internal::ToUint;
using broker_internal::Unexpected;

using realtime::ConnPresence;
using realtime::ConnRef;
using realtime::Event;
using realtime::TargetKind;

// Seal place of every realtime frame; the name is the channel it travels on.
constexpr char kSealPlace[] = "rt";

std::string Millis(absl::Duration d) {
  return std::to_string(std::max<int64_t>(1, absl::ToInt64Milliseconds(d)));
}


absl::Status FirstError(const std::vector<absl::StatusOr<RedisReply>>& results) {
  for (const auto& r : results) {
    if (!r.ok()) return r.status();
  }
  return absl::OkStatus();
}

absl::Status ValidateOptions(const RedisClient* client, const RedisBrokerOptions& o) {
  const auto bad = [](std::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat("redis broker: ", AV(what)));
  };
  if (client == nullptr) return bad("a Redis client is required");
  if (o.sealer == nullptr || o.keyring == nullptr) return bad("sealer and keyring are required");
  RETURN_IF_ERROR(realtime::ValidateName("instance_id", o.instance_id, 1, realtime::kMaxNameBytes));
  if (o.instance_id.find('/') != std::string::npos) return bad("instance_id must not contain '/'");
  if (o.presence_ttl < absl::Milliseconds(1)) return bad("presence_ttl must be at least 1ms");
  if (o.history_size < 1 || o.history_size > 1000000) return bad("history_size must be 1..1000000");
  if (o.history_bytes < 1) return bad("history_bytes must be at least 1");
  if (o.history_ttl < absl::Milliseconds(1) || o.sequence_ttl < absl::Milliseconds(1)) {
    return bad("history_ttl and sequence_ttl must be at least 1ms");
  }
  return absl::OkStatus();
}

}  // namespace

RedisBroker::RedisBroker(RedisClient* client, RedisBrokerOptions options)
    : client_(client),
      options_(std::move(options)),
      alive_key_(absl::StrCat(options_.prefix, "rt:alive:", options_.instance_id)),
      idx_key_(absl::StrCat(options_.prefix, "rt:idx:", options_.instance_id)),
      instances_key_(absl::StrCat(options_.prefix, "rt:instances")),
      inst_channel_(absl::StrCat(options_.prefix, "rt:c:inst:", options_.instance_id)),
      inst_channel_prefix_(absl::StrCat(options_.prefix, "rt:c:inst:")),
      all_channel_(absl::StrCat(options_.prefix, "rt:c:all")),
      room_channel_prefix_(absl::StrCat(options_.prefix, "rt:c:room:")),
      add_(RedisScript::Create(
          absl::StrCat(realtime_scripts::kPresenceLib, realtime_scripts::kAddPresence))),
      remove_(RedisScript::Create(
          absl::StrCat(realtime_scripts::kPresenceLib, realtime_scripts::kRemovePresence))),
      sync_(RedisScript::Create(
          absl::StrCat(realtime_scripts::kPresenceLib, realtime_scripts::kSyncPresence))),
      refresh_(RedisScript::Create(
          absl::StrCat(realtime_scripts::kPresenceLib, realtime_scripts::kRefresh))),
      remove_instance_(RedisScript::Create(
          absl::StrCat(realtime_scripts::kPresenceLib, realtime_scripts::kRemoveInstance))),
      live_fields_(RedisScript::Create(realtime_scripts::kLiveFields)),
      publish_room_(RedisScript::Create(realtime_scripts::kPublishRoom)),
      publish_user_(RedisScript::Create(realtime_scripts::kPublishUser)),
      history_(RedisScript::Create(realtime_scripts::kHistory)),
      lane_(std::make_unique<WriteLane>(client, kMaxQueuedWrites, kMaxQueuedBytes)),
      inflight_(std::make_shared<InFlight>()),
      idle_(inflight_->idle.get_future()) {}

absl::StatusOr<std::unique_ptr<RedisBroker>> RedisBroker::Create(RedisClient* client,
                                                                 RedisBrokerOptions options) {
  RETURN_IF_ERROR(ValidateOptions(client, options));
  std::unique_ptr<RedisBroker> broker(new RedisBroker(client, std::move(options)));
  RedisBroker* self = broker.get();
  RedisSubscriber::Callbacks callbacks;
  callbacks.on_message = [self](std::string_view channel, std::string_view payload) {
    self->OnMessage(channel, payload);
  };
  // The loss itself is reported as a gap once restored.
  callbacks.on_down = [self](absl::Time) { self->NotifyState(false); };
  callbacks.on_restored = [self](absl::Time since, absl::Time until) {
    self->OnRestored(since, until);
    self->NotifyState(true);
  };
  ASSIGN_OR_RETURN(broker->subscriber_,
                   RedisSubscriber::Create(client->options(), std::move(callbacks)));
  // Wanted from the start, so the first on_restored covers it (and is kept
  // for Start if it comes first).
  broker->subscriber_->Subscribe({broker->inst_channel_}, [](absl::Status) {});
  return broker;
}

RedisBroker::~RedisBroker() {
  Stop();
  subscriber_.reset();  // joins its thread: no more OnMessage/OnRestored
  lane_.reset();        // every write has answered
  inflight_.reset();
  idle_.wait();         // and every read
}

void RedisBroker::Start(Sink* sink) {
  absl::MutexLock lock(&sink_mu_);
  sink_ = sink;
  started_ = true;
  if (pending_gap_.has_value()) {
    const auto [since, until] = *pending_gap_;
    pending_gap_.reset();
    sink_->OnGap(since, until);
    presence_lost_.fetch_add(1);
    sink_->OnPresenceLost();
  }
}

void RedisBroker::Stop() {
  absl::MutexLock lock(&sink_mu_);
  sink_ = nullptr;
  started_ = true;
}

// ---- Names ------------------------------------------------------------------

std::string RedisBroker::Tag(std::string_view purpose, std::string_view name) const {
  return crypto::Keyring::Blind(options_.keyring->primary(), purpose, name);
}

std::string RedisBroker::RoomChannel(std::string_view room) const {
  return absl::StrCat(room_channel_prefix_, Tag("room", room));
}

std::string RedisBroker::RoomLogKey(std::string_view room) const {
  return absl::StrCat(options_.prefix, "rt:log:", Tag("room", room));
}

std::string RedisBroker::RoomSequenceKey(std::string_view room) const {
  return absl::StrCat(options_.prefix, "rt:seq:", Tag("room", room));
}

std::string RedisBroker::PageMac(const crypto::Keyring::Key& key, std::string_view room_tag,
                                 std::string_view field) const {
  return crypto::Keyring::Blind(key, "rt-page", absl::StrCat(AV(room_tag), AV(field)));
}

std::vector<std::string> RedisBroker::PresenceKeys() const {
  return {alive_key_, idx_key_, instances_key_};
}

std::vector<std::string> RedisBroker::PresenceArgs() const {
  return {options_.prefix, options_.instance_id, Millis(options_.presence_ttl)};
}

// ---- Presence -------------------------------------------------------------------

void RedisBroker::NoteListed(const absl::StatusOr<RedisReply>& reply) {
  if (!reply.ok() || !reply->is_integer()) return;
  if (reply->integer == 0 && presence_written_.load()) lost_pending_.store(true);
  presence_written_.store(true);
}

void RedisBroker::WritePresence(std::vector<RedisCommand> commands, bool rewrites_all,
                                bool needs_channel, Done done) {
  // Both must hold before a connection is reachable: its entries are written
  // and this instance's channel is subscribed.
  struct Join {
    absl::Mutex mu;
    int pending ABSL_GUARDED_BY(mu) = 0;
    absl::Status status ABSL_GUARDED_BY(mu);
    Done done ABSL_GUARDED_BY(mu);
  };
  auto join = std::make_shared<Join>();
  {
    absl::MutexLock lock(&join->mu);
    join->pending = needs_channel ? 2 : 1;
    join->done = std::move(done);
  }
  auto finish = [join](absl::Status status) {
    Done done;
    absl::Status result;
    {
      absl::MutexLock lock(&join->mu);
      if (join->status.ok() && !status.ok()) join->status = std::move(status);
      if (--join->pending > 0) return;
      done = std::move(join->done);
      result = join->status;
    }
    std::move(done)(std::move(result));
  };
  lane_->Submit(std::move(commands), [this, rewrites_all, finish](Results results) {
    // A write that failed leaves Redis behind the hub (which keeps its local
    // state): the next Refresh asks for a SyncPresence. A sync rewrites
    // everything, so finding itself unlisted is expected there.
    if (!FirstError(results).ok()) {
      lost_pending_.store(true);
    } else {
      for (const auto& r : results) {
        if (rewrites_all) {
          presence_written_.store(true);
        } else {
          NoteListed(r);
        }
      }
    }
    finish(FirstError(results));
  });
  if (needs_channel) {
    subscriber_->Subscribe({inst_channel_}, [finish](absl::Status s) { finish(std::move(s)); });
  }
}

void RedisBroker::AddPresence(const ConnPresence& conn, Done done) {
  std::vector<std::string> args = PresenceArgs();
  args.push_back(conn.conn);
  args.push_back(conn.user.empty() ? std::string() : Tag("user", conn.user));
  for (const std::string& room : conn.rooms) args.push_back(Tag("room", room));
  std::vector<RedisCommand> commands;
  commands.push_back(add_->Call(PresenceKeys(), std::move(args)));
  WritePresence(std::move(commands), /*rewrites_all=*/false, /*needs_channel=*/true,
                std::move(done));
}

void RedisBroker::RemovePresence(const ConnPresence& conn, bool all, Done done) {
  std::vector<std::string> args = PresenceArgs();
  args.push_back(conn.conn);
  args.push_back(all ? "1" : "0");
  args.push_back(conn.user.empty() ? std::string() : Tag("user", conn.user));
  for (const std::string& room : conn.rooms) args.push_back(Tag("room", room));
  std::vector<RedisCommand> commands;
  commands.push_back(remove_->Call(PresenceKeys(), std::move(args)));
  WritePresence(std::move(commands), /*rewrites_all=*/false, /*needs_channel=*/false,
                std::move(done));
}

void RedisBroker::SyncPresence(std::vector<ConnPresence> conns, Done done) {
  std::vector<RedisCommand> commands;
  std::vector<std::string> args = PresenceArgs();
  args.push_back("1");  // the first chunk clears
  size_t in_chunk = 0;
  for (const ConnPresence& conn : conns) {
    if (in_chunk == kSyncChunk) {
      commands.push_back(sync_->Call(PresenceKeys(), std::move(args)));
      args = PresenceArgs();
      args.push_back("0");
      in_chunk = 0;
    }
    args.push_back(conn.conn);
    args.push_back(conn.user.empty() ? std::string() : Tag("user", conn.user));
    args.push_back(std::to_string(conn.rooms.size()));
    for (const std::string& room : conn.rooms) args.push_back(Tag("room", room));
    ++in_chunk;
  }
  commands.push_back(sync_->Call(PresenceKeys(), std::move(args)));
  // One lane item: the chunks go back to back on one connection, in order.
  WritePresence(std::move(commands), /*rewrites_all=*/true, /*needs_channel=*/true,
                std::move(done));
}

absl::Status RedisBroker::Refresh() {
  std::vector<RedisCommand> commands;
  std::vector<std::string> args = PresenceArgs();
  args.push_back(std::to_string(kSweepBudget));
  commands.push_back(refresh_->Call(PresenceKeys(), std::move(args)));
  Results results = lane_->Call(std::move(commands));
  if (!results[0].ok()) return results[0].status();
  const RedisReply& reply = *results[0];
  uint64_t listed = 0, swept = 0;
  if (!reply.is_array() || reply.elements.size() != 2 || !ToUint(reply.elements[0], &listed) ||
      !ToUint(reply.elements[1], &swept)) {
    return Unexpected("refresh", reply);
  }
  swept_.fetch_add(swept);
  const bool pending = lost_pending_.exchange(false);
  const bool lost = pending || (listed == 0 && presence_written_.load());
  if (lost) {
    // Swept while this instance was not refreshing, lost by Redis, or a
    // presence write failed: the hub writes its connections again.
    absl::MutexLock lock(&sink_mu_);
    if (sink_ != nullptr) {
      presence_lost_.fetch_add(1);
      sink_->OnPresenceLost();
    } else if (!started_) {
      lost_pending_.store(true);  // for the first Refresh after Start
    }
  }
  return absl::OkStatus();
}

absl::Status RedisBroker::RemoveInstance() {
  std::vector<RedisCommand> commands;
  commands.push_back(remove_instance_->Call(PresenceKeys(), PresenceArgs()));
  Results results = lane_->Call(std::move(commands));
  presence_written_.store(false);
  lost_pending_.store(false);
  return results[0].status();
}

// ---- Channels ---------------------------------------------------------------

void RedisBroker::WatchRoom(std::string_view room, Done done) {
  subscriber_->Subscribe({RoomChannel(room)}, std::move(done));
}

void RedisBroker::UnwatchRoom(std::string_view room) { subscriber_->Unsubscribe({RoomChannel(room)}); }

void RedisBroker::WatchBroadcast(bool on, Done done) {
  if (on) return subscriber_->Subscribe({all_channel_}, std::move(done));
  subscriber_->Unsubscribe({all_channel_});
  std::move(done)(absl::OkStatus());
}

int64_t RedisBroker::channels_held() const {
  return static_cast<int64_t>(subscriber_->wanted_channels());
}

RedisBrokerStats RedisBroker::stats() const {
  RedisBrokerStats s;
  s.messages = messages_.load();
  s.dropped_undecryptable = undecryptable_.load();
  s.dropped_malformed = malformed_.load();
  s.presence_lost = presence_lost_.load();
  s.instances_swept = swept_.load();
  return s;
}

// ---- Publish ------------------------------------------------------------------

void RedisBroker::Publish(Event event, Reply<realtime::PublishResult> done) {
  if (event.target == TargetKind::kConnection && event.to_instance.empty()) {
    event.to_instance = options_.instance_id;
  }
  event.sequence = 0;
  const TargetKind target = event.target;
  std::string name;  // the seal's name: the channel (or the instance channels' prefix)
  std::string room_tag;
  switch (target) {
    case TargetKind::kRoom:
      room_tag = Tag("room", event.to);
      name = absl::StrCat(room_channel_prefix_, room_tag);
      break;
    case TargetKind::kUser:
    case TargetKind::kConnection:
      // One sealed frame may go to several instance channels (a user's), so
      // it is bound to the family; the receiver checks the addressing.
      name = inst_channel_prefix_;
      break;
    case TargetKind::kAll:
      name = all_channel_;
      break;
    default:
      return std::move(done)(absl::InvalidArgumentError("target: unknown kind"));
  }
  absl::StatusOr<std::string> sealed =
      options_.sealer->Seal(kSealPlace, name, realtime::EncodeEvent(event));
  if (!sealed.ok()) return std::move(done)(sealed.status());

  std::vector<RedisCommand> commands;
  const std::string& p = options_.prefix;
  switch (target) {
    case TargetKind::kRoom:
      commands.push_back(publish_room_->Call(
          {absl::StrCat(p, "rt:seq:", room_tag), absl::StrCat(p, "rt:log:", room_tag),
           absl::StrCat(p, "rt:logbytes:", room_tag)},
          {name, *std::move(sealed), std::to_string(options_.history_size),
           std::to_string(options_.history_bytes), Millis(options_.history_ttl),
           Millis(options_.sequence_ttl)}));
      break;
    case TargetKind::kUser:
      commands.push_back(publish_user_->Call({absl::StrCat(p, "rt:user:", Tag("user", event.to))},
                                             {p, absl::StrCat("0 ", *sealed)}));
      break;
    case TargetKind::kConnection:
      commands.push_back(RedisCommand({"PUBLISH", absl::StrCat(inst_channel_prefix_, event.to_instance),
                                       absl::StrCat("0 ", *sealed)}));
      break;
    default:
      commands.push_back(RedisCommand({"PUBLISH", all_channel_, absl::StrCat("0 ", *sealed)}));
      break;
  }
  lane_->Submit(std::move(commands), [target, done = std::move(done)](Results results) mutable {
    absl::StatusOr<RedisReply>& r = results[0];
    if (!r.ok()) return std::move(done)(r.status());
    realtime::PublishResult result;
    uint64_t seq = 0, receivers = 0;
    if (target == TargetKind::kRoom) {
      if (!r->is_array() || r->elements.size() != 2 || !ToUint(r->elements[0], &seq) ||
          !ToUint(r->elements[1], &receivers)) {
        return std::move(done)(Unexpected("publish", *r));
      }
    } else if (!ToUint(*r, &receivers)) {
      return std::move(done)(Unexpected("publish", *r));
    }
    result.sequence = seq;
    result.instances = static_cast<int64_t>(receivers);
    std::move(done)(result);
  });
}

// ---- Incoming -------------------------------------------------------------------

void RedisBroker::OnMessage(std::string_view channel, std::string_view payload) {
  messages_.fetch_add(1);
  const bool on_inst = channel == inst_channel_;
  const bool on_all = channel == all_channel_;
  const bool on_room = absl::StartsWith(AV(channel), room_channel_prefix_);
  // "<seq> <sealed frame>"
  const size_t space = payload.find(' ');
  uint64_t seq = 0;
  if (!(on_inst || on_all || on_room) || space == std::string_view::npos || space == 0 ||
      space > 20 || !absl::SimpleAtoi(AV(payload.substr(0, space)), &seq)) {
    malformed_.fetch_add(1);
    return;
  }
  absl::StatusOr<Event> event =
      OpenFrame(on_inst ? std::string_view(inst_channel_prefix_) : channel, payload.substr(space + 1));
  if (!event.ok()) return;  // counted
  bool fits = false;
  switch (event->target) {
    case TargetKind::kRoom:
      fits = on_room && seq > 0;
      break;
    case TargetKind::kUser:
      fits = on_inst;
      break;
    case TargetKind::kConnection:
      fits = on_inst && event->to_instance == options_.instance_id;
      break;
    case TargetKind::kAll:
      fits = on_all;
      break;
  }
  if (!fits) {
    malformed_.fetch_add(1);
    return;
  }
  event->sequence = event->target == TargetKind::kRoom ? seq : 0;
  absl::MutexLock lock(&sink_mu_);
  if (sink_ != nullptr) sink_->OnEvent(*std::move(event));
}

absl::StatusOr<Event> RedisBroker::OpenFrame(std::string_view name, std::string_view sealed) {
  absl::StatusOr<crypto::Opened> opened = options_.sealer->Open(kSealPlace, name, sealed);
  if (!opened.ok()) {
    undecryptable_.fetch_add(1);
    return opened.status();
  }
  absl::StatusOr<Event> event = realtime::DecodeEvent(opened->plaintext);
  if (!event.ok()) malformed_.fetch_add(1);
  return event;
}

void RedisBroker::SetStateListener(std::function<void(bool subscribed)> listener) {
  absl::MutexLock lock(&listener_mu_);
  listener_ = std::move(listener);
}

void RedisBroker::NotifyState(bool subscribed) {
  absl::MutexLock lock(&listener_mu_);
  if (listener_) listener_(subscribed);
}

void RedisBroker::OnRestored(absl::Time since, absl::Time until) {
  absl::MutexLock lock(&sink_mu_);
  if (sink_ == nullptr) {
    // Before Start: kept for it (the earliest loss counts).
    if (!started_) {
      const absl::Time from = pending_gap_.has_value() ? pending_gap_->first : since;
      pending_gap_.emplace(from, until);
    }
    return;
  }
  sink_->OnGap(since, until);
  presence_lost_.fetch_add(1);
  sink_->OnPresenceLost();
}

}  // namespace stateside::redis
