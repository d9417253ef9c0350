// RedisBroker: lifecycle, names, channels, publishing and incoming frames
// (presence: redis_broker_presence.cc; queries: redis_broker_queries.cc;
// Lua: realtime_scripts.cc).
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
#include "sidecar/redis/shard_subscriber.h"

namespace stateside::redis {
namespace {

using broker_internal::AV;
using broker_internal::Millis;
using broker_internal::ToUint;
using broker_internal::Unexpected;

using realtime::ConnPresence;
using realtime::ConnRef;
using realtime::Event;
using realtime::TargetKind;

// Seal place of every realtime frame; the name is the channel it travels on.
constexpr char kSealPlace[] = "rt";

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
      alive_key_(AliveKey(options_.instance_id)),
      idx_key_(IndexKey(options_.instance_id)),
      // Not the previous layout's rt:instances: during a rolling upgrade the
      // two versions would unlist each other at every heartbeat.
      listed_key_(absl::StrCat(options_.prefix, "rt:listed")),
      // Cluster: classic PUBLISH is broadcast over the cluster bus to every
      // node; a shard channel costs only its own shard.
      sharded_(client->options().topology == RedisTopology::kCluster),
      publish_(sharded_ ? "SPUBLISH" : "PUBLISH"),
      inst_channel_(InstanceChannel(options_.instance_id)),
      inst_channel_prefix_(absl::StrCat(options_.prefix, "rt:c2:inst:")),
      all_channel_(absl::StrCat(options_.prefix, sharded_ ? "rt:{all}:c" : "rt:c2:all")),
      room_channel_prefix_(absl::StrCat(options_.prefix, sharded_ ? "rt:{r:" : "rt:c2:room:")),
      index_add_(RedisScript::Create(realtime_scripts::kIndexAdd)),
      index_remove_(RedisScript::Create(realtime_scripts::kIndexRemove)),
      dead_index_(RedisScript::Create(realtime_scripts::kDeadIndex)),
      drop_swept_(RedisScript::Create(realtime_scripts::kDropSwept)),
      publish_stream_(RedisScript::Create(realtime_scripts::PublishStream(sharded_))),
      append_user_(RedisScript::Create(realtime_scripts::AppendUserStream())),
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
  if (broker->sharded_) {
    ASSIGN_OR_RETURN(broker->subscriber_, ShardedSubscriber::Create(client, std::move(callbacks)));
  } else {
    ASSIGN_OR_RETURN(broker->subscriber_,
                     RedisSubscriber::Create(client->options(), std::move(callbacks)));
  }
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
  return RoomChannelOfTag(Tag("room", room));
}

std::string RedisBroker::RoomChannelOfTag(std::string_view room_tag) const {
  return absl::StrCat(room_channel_prefix_, AV(room_tag), sharded_ ? "}:c" : "");
}

bool RedisBroker::IsRoomChannel(std::string_view channel) const {
  return absl::StartsWith(AV(channel), room_channel_prefix_) &&
         (!sharded_ || absl::EndsWith(AV(channel), "}:c"));
}

std::string RedisBroker::InstanceChannel(std::string_view instance) const {
  if (sharded_) return absl::StrCat(options_.prefix, "rt:{i:", AV(instance), "}:c");
  return absl::StrCat(options_.prefix, "rt:c2:inst:", AV(instance));
}

// Hash tags: a room's keys share the slot of "r:<rb>", a user's that of
// "u:<ub>", an instance's that of "i:<inst>".
std::string RedisBroker::RoomLogKey(std::string_view room) const {
  return absl::StrCat(options_.prefix, "rt:{r:", Tag("room", room), "}:log");
}

std::string RedisBroker::RoomSequenceKey(std::string_view room) const {
  return absl::StrCat(options_.prefix, "rt:{r:", Tag("room", room), "}:seq");
}

std::string RedisBroker::StreamLogKey(const realtime::StreamRef& stream) const {
  return absl::StrCat(PlaceOf(stream).keys, "log");
}

// A stream's keys share the slot of its channel (see realtime_scripts.cc).
RedisBroker::StreamPlace RedisBroker::PlaceOf(const realtime::StreamRef& stream) const {
  StreamPlace place;
  switch (stream.target) {
    case TargetKind::kRoom: {
      const std::string room_tag = Tag("room", stream.to);
      place.keys = absl::StrCat(options_.prefix, "rt:{r:", room_tag, "}:");
      place.channel = RoomChannelOfTag(room_tag);
      place.seal_name = place.channel;
      break;
    }
    case TargetKind::kUser:
      place.keys = absl::StrCat(options_.prefix, "rt:{u:", Tag("user", stream.to), "}:");
      // One sealed frame may go to several instance channels (a user's), so
      // it is bound to the family; the receiver checks the addressing.
      place.seal_name = inst_channel_prefix_;
      break;
    case TargetKind::kConnection:
      place.keys = absl::StrCat(options_.prefix, "rt:{i:", AV(stream.to_instance), "}:k:",
                                Tag("conn", stream.to), ":");
      place.channel = InstanceChannel(stream.to_instance);
      place.seal_name = inst_channel_prefix_;
      break;
    case TargetKind::kAll:
      place.keys = absl::StrCat(options_.prefix, "rt:{all}:");
      place.channel = all_channel_;
      place.seal_name = all_channel_;
      break;
  }
  return place;
}

std::string RedisBroker::RoomMembersKey(std::string_view room) const {
  return EntryKey(absl::StrCat("r:", Tag("room", room)));
}

std::string RedisBroker::UserKey(std::string_view user) const {
  return EntryKey(absl::StrCat("u:", Tag("user", user)));
}

std::string RedisBroker::AliveKey(std::string_view instance) const {
  return absl::StrCat(options_.prefix, "rt:{i:", AV(instance), "}:alive");
}

std::string RedisBroker::IndexKey(std::string_view instance) const {
  return absl::StrCat(options_.prefix, "rt:{i:", AV(instance), "}:idx");
}

std::string RedisBroker::EntryKey(std::string_view tag) const {
  const std::string_view kind = tag.substr(0, 2);
  if (kind == "r:") return absl::StrCat(options_.prefix, "rt:{", AV(tag), "}:members");
  if (kind == "u:") return absl::StrCat(options_.prefix, "rt:{", AV(tag), "}:conns");
  return std::string();
}

std::string RedisBroker::Field(std::string_view conn) const {
  return absl::StrCat(options_.instance_id, "/", AV(conn));
}

std::string RedisBroker::PageMac(const crypto::Keyring::Key& key, std::string_view room_tag,
                                 std::string_view field) const {
  return crypto::Keyring::Blind(key, "rt-page", absl::StrCat(AV(room_tag), AV(field)));
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

std::vector<std::string> RedisBroker::AppendArgs(std::string channel, std::string sealed) const {
  return {std::move(channel),
          std::move(sealed),
          std::to_string(options_.history_size),
          std::to_string(options_.history_bytes),
          Millis(options_.history_ttl),
          Millis(options_.sequence_ttl)};
}

void RedisBroker::Publish(Event event, Reply<realtime::PublishResult> done) {
  if (event.target == TargetKind::kConnection && event.to_instance.empty()) {
    event.to_instance = options_.instance_id;
  }
  event.sequence = 0;
  if (event.target < TargetKind::kRoom || event.target > TargetKind::kAll) {
    return std::move(done)(absl::InvalidArgumentError("target: unknown kind"));
  }
  const StreamPlace place = PlaceOf(realtime::StreamOf(event));
  absl::StatusOr<std::string> sealed =
      options_.sealer->Seal(kSealPlace, place.seal_name, realtime::EncodeEvent(event));
  if (!sealed.ok()) return std::move(done)(sealed.status());
  // A control event (a cluster-wide operation) or a transient one is routed
  // like the target's events but is no event of its stream: sequence 0, no
  // log entry.
  const bool logged = event.control == realtime::Control::kNone && !event.transient;
  if (event.target == TargetKind::kUser) {
    return PublishUser(place, *std::move(sealed), logged, std::move(done));
  }
  std::vector<RedisCommand> commands;
  if (logged) {
    commands.push_back(publish_stream_->Call(
        {absl::StrCat(place.keys, "seq"), absl::StrCat(place.keys, "log"),
         absl::StrCat(place.keys, "logbytes")},
        AppendArgs(place.channel, *std::move(sealed))));
  } else {
    commands.push_back(RedisCommand({publish_, place.channel, absl::StrCat("0 ", *sealed)}));
  }
  lane_->Submit(std::move(commands), [logged, done = std::move(done)](Results results) mutable {
    absl::StatusOr<RedisReply>& r = results[0];
    if (!r.ok()) return std::move(done)(r.status());
    uint64_t seq = 0, receivers = 0;
    const bool parsed = logged ? r->is_array() && r->elements.size() == 2 &&
                                     ToUint(r->elements[0], &seq) &&
                                     ToUint(r->elements[1], &receivers)
                               : ToUint(*r, &receivers);
    if (!parsed) return std::move(done)(Unexpected("publish", *r));
    realtime::PublishResult result;
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
  const bool on_room = IsRoomChannel(channel);
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
  // Every frame carries its stream's sequence number (a sender of an older
  // version sent 0 for all but rooms).
  bool fits = false;
  switch (event->target) {
    case TargetKind::kRoom:
      fits = on_room && (seq > 0 || event->control != realtime::Control::kNone);
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
  event->sequence = seq;
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
