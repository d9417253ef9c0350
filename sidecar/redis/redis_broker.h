// RedisBroker: the realtime Broker over Redis. Events travel on pub/sub
// channels (one per watched room, one per instance for user- and
// connection-targeted events, one for broadcasts); presence lives in hashes
// that heartbeats keep alive; each target stream (a room, a user, a
// connection, the broadcasts) has a sequence counter and a capped, TTL'd
// log for History and Subscribe's resume, in the slot of its channel. Key layout and scripts: realtime_scripts.cc and
// docs/REDIS_KEYS.md. Every command is single-slot (routed by its first
// key; PUBLISH has none): what spans a room's, a user's and an instance's
// slots is sent as separate commands, pipelined (presence:
// redis_broker_presence.cc). On Redis Cluster the channels are shard
// channels in the slot of their room or instance (SPUBLISH, and a
// ShardedSubscriber with a connection per master), so an event stays in one
// shard instead of crossing the cluster bus to every node.
//
// Nothing readable reaches Redis: rooms and users appear only as keyed blind
// tags, and every frame (channel message or log entry) is sealed, bound to
// the channel it travels on. Connection and instance ids are stored as they
// are (presence answers need them).
//
// Ordering: writes (presence, publishes, Refresh, RemoveInstance) go through
// one WriteLane, so Redis applies them in call order; reads, and the
// sweep's writes to dead instances' entries (after this instance's own
// refresh), go straight out. Indexes are read in HSCAN chunks, never whole.
// An instance's index lists at least every entry it has in room and user
// hashes (written before them, shrunk after them), so a resync or a sweep
// can always find what to delete.
//
// Thread-safe. Callbacks run on the Redis client's or the subscriber's I/O
// threads, or inline when Redis refuses at once. The Sink is called under
// one lock, one call at a time: from the subscriber's threads (events,
// gaps; on Cluster one thread per shard) and from Refresh (presence lost).
// Refresh and RemoveInstance block: never call them from a callback.
#ifndef STATESIDE_SIDECAR_REDIS_REDIS_BROKER_H_
#define STATESIDE_SIDECAR_REDIS_REDIS_BROKER_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "sidecar/crypto/envelope.h"
#include "sidecar/crypto/keyring.h"
#include "sidecar/realtime/broker.h"
#include "sidecar/redis/redis_client.h"
#include "sidecar/redis/redis_subscriber.h"
#include "sidecar/redis/write_lane.h"

namespace stateside::redis {

// Inside Broker, `Reply` names its callback template.
using RedisReply = Reply;

struct RedisBrokerOptions {
  std::string prefix = "stateside:";
  // 1..256 printable ASCII bytes, no '/'.
  std::string instance_id;
  const crypto::Sealer* sealer = nullptr;    // seals and opens frames
  const crypto::Keyring* keyring = nullptr;  // blind tags, page tokens
  // An instance that stops refreshing drops out of every answer this long
  // after its last presence write or Refresh.
  absl::Duration presence_ttl = absl::Seconds(6);
  // Per target stream: the log keeps at most this many events and this
  // many bytes of sealed frames (the oldest go first; the newest always
  // stays, see PublishStream) and is deleted this long after the stream's
  // last event.
  size_t history_size = 1000;
  size_t history_bytes = 1 << 20;
  absl::Duration history_ttl = absl::Hours(1);
  // A stream idle this long restarts its sequence at 1.
  absl::Duration sequence_ttl = absl::Hours(24);
  // Tests only: runs in a Refresh after the sweep's deletes, before it
  // checks which dead instances came back.
  std::function<void()> after_sweep_deletes;
};

struct RedisBrokerStats {
  uint64_t messages = 0;               // channel messages received
  uint64_t dropped_undecryptable = 0;  // frames (messages, log entries) that did not open
  uint64_t dropped_malformed = 0;      // no sequence prefix, undecodable, wrong channel
  uint64_t presence_lost = 0;          // OnPresenceLost signalled
  uint64_t instances_swept = 0;        // dead instances cleared by this one's Refresh
};

class RedisBroker final : public realtime::Broker {
 public:
  // The broker subscribes through its own RedisSubscriber (made from
  // client->options()); on Cluster through a ShardedSubscriber, publishing
  // with SPUBLISH to shard channels. INVALID_ARGUMENT for bad options.
  // REQUIRES: client, sealer and keyring outlive the broker.
  static absl::StatusOr<std::unique_ptr<RedisBroker>> Create(RedisClient* client,
                                                             RedisBrokerOptions options);
  // Stops, closes the subscription and waits for outstanding Redis replies.
  // REQUIRES: not called from a callback; no other call runs or starts.
  ~RedisBroker() override;
  RedisBroker(const RedisBroker&) = delete;
  RedisBroker& operator=(const RedisBroker&) = delete;

  // The first subscription (and every one after a disconnect) reports
  // OnGap(down since, restored) and then OnPresenceLost(): the hub writes its
  // presence again, which also clears what an earlier process with the same
  // instance id left behind.
  void Start(Sink* sink) override;
  // REQUIRES: not called from a Sink callback.
  void Stop() override;

  // Set semantics, like the channels themselves (not reference-counted).
  void WatchRoom(std::string_view room, Done done) override;
  void UnwatchRoom(std::string_view room) override;
  void WatchBroadcast(bool on, Done done) override;

  // Done: OK once written and this instance's channel is subscribed.
  void AddPresence(const realtime::ConnPresence& conn, Done done) override;
  void RemovePresence(const realtime::ConnPresence& conn, bool all, Done done) override;
  // Three steps: read this instance's index; delete the entries it lists
  // that are not wanted any more and write the wanted ones; then shrink the
  // index to them.
  void SyncPresence(std::vector<realtime::ConnPresence> conns, Done done) override;
  absl::Status Refresh() override;
  absl::Status RemoveInstance() override;

  void Publish(realtime::Event event, Reply<realtime::PublishResult> done) override;

  void RoomMembers(std::string_view room, int page_size, std::string_view page_token,
                   Reply<realtime::MembersPage> done) override;
  void UserConnections(std::string_view user,
                       Reply<std::vector<realtime::ConnRef>> done) override;
  void StreamHistory(const realtime::StreamRef& stream, uint64_t after_sequence, int limit,
                     Reply<realtime::HistoryPage> done) override;

  int64_t channels_held() const override;
  RedisBrokerStats stats() const;

  // Whether the pub/sub connection is up with every channel confirmed:
  // until it is, connections cannot be registered (readiness waits for it).
  bool subscribed() const { return subscriber_->connected(); }
  // Called (on the subscriber's thread; must not block) when subscribed()
  // changes. Null to stop. REQUIRES: set before the changes it must see.
  void SetStateListener(std::function<void(bool subscribed)> listener);

  // Names in Redis (for tests and operators).
  std::string RoomChannel(std::string_view room) const;
  // P rt:c2:room:<rb>, Cluster: P rt:{r:<rb>}:c (the slot of the room's keys).
  std::string RoomChannelOfTag(std::string_view room_tag) const;
  bool IsRoomChannel(std::string_view channel) const;
  // P rt:c2:inst:<inst>, Cluster: P rt:{i:<inst>}:c (the slot of its keys).
  std::string InstanceChannel(std::string_view instance) const;
  std::string RoomLogKey(std::string_view room) const;
  std::string RoomSequenceKey(std::string_view room) const;
  // The log of any target stream (RoomLogKey for a room).
  std::string StreamLogKey(const realtime::StreamRef& stream) const;
  std::string RoomMembersKey(std::string_view room) const;
  std::string UserKey(std::string_view user) const;
  std::string AliveKey(std::string_view instance) const;
  std::string IndexKey(std::string_view instance) const;
  const std::string& listed_key() const { return listed_key_; }
  const std::string& instance_channel() const { return inst_channel_; }
  const std::string& broadcast_channel() const { return all_channel_; }

  // Connections (index fields) or hash fields per command of a sync or sweep.
  static constexpr size_t kSyncChunk = 500;
  // Hash entries remembered after failed writes (deleted by the next sync).
  static constexpr size_t kMaxUnsure = 65536;
  // Room and user entries (hash fields) a Refresh clears at most, across
  // dead instances (whole connections: one with more entries than the
  // budget goes alone).
  static constexpr size_t kSweepBudget = 10000;
  // Index fields an HSCAN asks for (COUNT): a reply stays far below the
  // client's reply bound even with 1024 rooms a connection.
  static constexpr size_t kScanCount = 100;
  // Commands (and their argument bytes) waiting in the write lane while a
  // batch is out; past either, writes fail UNAVAILABLE at once.
  static constexpr size_t kMaxQueuedWrites = 65536;
  static constexpr size_t kMaxQueuedBytes = 32u << 20;

 private:
  using Results = WriteLane::Results;
  // Where a target stream lives: its keys' common prefix (one slot), the
  // channel its events travel on (none for a user: its instances'), and
  // the name its frames are sealed under.
  struct StreamPlace {
    std::string keys;  // "<stream>:" of realtime_scripts.cc
    std::string channel;
    std::string seal_name;
  };
  StreamPlace PlaceOf(const realtime::StreamRef& stream) const;
  // Alive while a read's callback may still touch the broker; the
  // destructor waits for the last reference.
  struct InFlight {
    std::promise<void> idle;
    ~InFlight() { idle.set_value(); }
  };

  RedisBroker(RedisClient* client, RedisBrokerOptions options);

  std::string Tag(std::string_view purpose, std::string_view name) const;
  std::string PageMac(const crypto::Keyring::Key& key, std::string_view room_tag,
                      std::string_view field) const;
  // The hash of an index tag: "u:<ub>" -> the user's, "r:<rb>" -> the
  // room's members; "" for anything else.
  std::string EntryKey(std::string_view tag) const;
  std::string Field(std::string_view conn) const;  // "<self>/<conn>"

  // The write's Done, joined (when `needs_channel`) with the subscription
  // of this instance's channel: both must hold before a connection is
  // reachable.
  Done WithChannel(bool needs_channel, Done done);
  // A presence write's results: failed -> the next Refresh asks for a
  // resync, and `entries` (hash key, field) are remembered for it; SADD
  // answered 1 -> this instance had been unlisted (swept).
  void NoteWrite(const Results& results, size_t sadd_at,
                 std::vector<std::pair<std::string, std::string>> entries);
  std::vector<std::pair<std::string, std::string>> TakeUnsure();
  void AddUnsure(std::vector<std::pair<std::string, std::string>> entries);
  // Fields of a room or user hash whose instance is alive, sorted: HKEYS,
  // then one EXISTS per distinct instance, pipelined.
  // The write of a RemovePresence whose tags ("u:<ub>", "r:<rb>") are known.
  WriteLane::Step RemoveStep(const std::string& conn, bool all, std::vector<std::string> tags,
                             Done done);
  // The heartbeat's sweep of dead instances among `others` (listed ids).
  // Sent through the client, not the lane: it touches other instances'
  // entries only, which need no order with this instance's writes.
  absl::Status Sweep(const std::vector<std::string>& others);
  // `commands` through the client in pieces (WriteLane::Split), one after
  // the other; one result per command.
  Results CallPieces(std::vector<RedisCommand> commands);
  // `commands` through the lane in pieces, one after the other.
  Results CallLanePieces(std::vector<RedisCommand> commands);
  void LiveFields(std::string key, Reply<std::vector<std::string>> done);
  // `publish_stream_`'s arguments after the channel: frame and bounds.
  std::vector<std::string> AppendArgs(std::string channel, std::string sealed) const;
  // `logged`: the event takes the user stream's next sequence and a log
  // entry (a control event takes neither).
  void PublishUser(const StreamPlace& place, std::string sealed, bool logged,
                   Reply<realtime::PublishResult> done);
  absl::StatusOr<realtime::HistoryPage> ParseHistory(absl::StatusOr<RedisReply> reply,
                                                     const realtime::StreamRef& stream,
                                                     std::string_view seal_name, uint64_t after,
                                                     size_t limit);

  void OnMessage(std::string_view channel, std::string_view payload);
  void OnRestored(absl::Time since, absl::Time until);
  // Opens and decodes a sealed frame; counts and returns an error otherwise.
  absl::StatusOr<realtime::Event> OpenFrame(std::string_view name, std::string_view sealed);

  // Constant after construction.
  RedisClient* const client_;
  const RedisBrokerOptions options_;
  const std::string alive_key_, idx_key_, listed_key_;
  // Cluster: shard channels (SPUBLISH/SSUBSCRIBE), each in a slot.
  const bool sharded_;
  const char* const publish_;              // PUBLISH or SPUBLISH
  const std::string inst_channel_;         // InstanceChannel(self)
  const std::string inst_channel_prefix_;  // P rt:c2:inst: (seal name of its frames)
  const std::string all_channel_;          // P rt:c2:all, Cluster: P rt:{all}:c
  const std::string room_channel_prefix_;  // P rt:c2:room:, Cluster: P rt:{r:
  const std::shared_ptr<const RedisScript> index_add_, index_remove_, dead_index_, drop_swept_,
      publish_stream_, append_user_, history_;
  std::unique_ptr<ChannelSubscriber> subscriber_;  // set once in Create
  std::unique_ptr<WriteLane> lane_;              // every write, in call order
  std::shared_ptr<InFlight> inflight_;
  std::future<void> idle_;

  std::atomic<uint64_t> messages_{0}, undecryptable_{0}, malformed_{0}, presence_lost_{0},
      swept_{0};
  // This instance wrote presence since the last RemoveInstance; a write
  // failed or found it unlisted (swept): the next Refresh tells the sink.
  std::atomic<bool> presence_written_{false};
  std::atomic<bool> lost_pending_{false};
  // (hash key, field) of entries whose write failed partway: the next sync
  // deletes them unless it writes them again (on Cluster a failed pipeline
  // may have reached some slots and not others).
  absl::Mutex unsure_mu_;
  std::deque<std::pair<std::string, std::string>> unsure_ ABSL_GUARDED_BY(unsure_mu_);

  absl::Mutex listener_mu_;
  std::function<void(bool)> listener_ ABSL_GUARDED_BY(listener_mu_);
  void NotifyState(bool subscribed);

  // Held for every Sink call, so Stop() returns only once none runs.
  absl::Mutex sink_mu_;
  Sink* sink_ ABSL_GUARDED_BY(sink_mu_) = nullptr;
  bool started_ ABSL_GUARDED_BY(sink_mu_) = false;  // Start or Stop was called
  // A loss window reported before Start, handed to the sink by Start.
  std::optional<std::pair<absl::Time, absl::Time>> pending_gap_ ABSL_GUARDED_BY(sink_mu_);
};

}  // namespace stateside::redis

#endif  // STATESIDE_SIDECAR_REDIS_REDIS_BROKER_H_
