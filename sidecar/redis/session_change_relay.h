// RedisChangeRelay: the session changes of every sidecar on one Redis
// (standalone, Sentinel or Cluster), over one pub/sub channel. Each
// sidecar publishes its own changes there (fire and forget: a change is
// never held back by Redis) and subscribes to it through the same
// subscriber machinery as realtime (RedisSubscriber; on Cluster a
// ShardedSubscriber and SPUBLISH to a shard channel), handing the other
// sidecars' changes to its ChangeFeed. Its own come back too and are
// skipped: the feed delivered them locally at once.
//
// The channel is "<prefix>{se}:changes" on every topology. On Cluster the
// hash tag puts it in one slot: every sidecar needs every change, so one
// shard carries each change once to each sidecar, instead of classic
// PUBLISH crossing the cluster bus to every node.
//
// Nothing readable reaches Redis: every frame is sealed (place "se",
// bound to the channel's name), so the session ids, user ids and attribute
// names it carries are as protected as the sessions themselves.
//
// Publishing is gated on someone listening: PUBLISH/SPUBLISH answer how
// many subscribers received the frame, and after one that reached none the
// relay stops publishing for kPublishHoldOff (counted as suppressed; such a
// change is not even encoded and sealed), then sends one frame as a probe
// (the others meanwhile held back until it is answered: published after it
// if it reached someone, suppressed with it if not, lost with it if it
// failed). So a Redis nobody watches on carries about one frame per
// hold-off instead of one per change.
//
// At most once: a publish that fails (Redis unreachable, too many frames
// waiting to be sent) loses its change, counted in publish_failed and
// reported to no watcher. A change published while a subscription is down
// is lost too; that loss window is reported to the feed (OnRemoteLost) once
// the subscription is back, including the first one after start. Each window
// is reported up to kPublishHoldOff past the confirmation: a sidecar that
// saw no subscriber just before may still be holding off. A watcher added
// before that end starts with the rest of the window as its own gap. A
// frame arriving while the subscription is not confirmed is dropped: it
// falls within the window about to be reported (one still on the wire
// from before the last watcher left would otherwise precede the gap).
//
// In order: one sidecar's frames go out through a WriteLane (one batch in
// flight, pipelined on one connection), so the others receive its changes
// in the order it made them; separate commands would spread over the
// client's connections and could overtake each other.
//
// Thread-safe. Callbacks run on the Redis client's and the subscriber's
// I/O threads. REQUIRES: the client, the sealer and the feed outlive it.
#ifndef STATESIDE_SIDECAR_REDIS_SESSION_CHANGE_RELAY_H_
#define STATESIDE_SIDECAR_REDIS_SESSION_CHANGE_RELAY_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "sidecar/crypto/envelope.h"
#include "sidecar/redis/redis_client.h"
#include "sidecar/redis/redis_subscriber.h"
#include "sidecar/redis/write_lane.h"
#include "sidecar/session/change_feed.h"

namespace stateside::redis {

struct ChangeRelayStats {
  uint64_t published = 0;      // PUBLISH/SPUBLISH sent
  uint64_t publish_failed = 0;  // answered with an error (the change is lost)
  uint64_t received = 0;        // other sidecars' changes handed to the feed
  uint64_t dropped = 0;         // frames that did not open or decode
  uint64_t suppressed = 0;      // not published: no subscriber was there
};

class RedisChangeRelay final : public session::ChangeFeed::Relay {
 public:
  // How long publishing stops after a publish that reached no subscriber.
  static constexpr absl::Duration kPublishHoldOff = absl::Seconds(1);

  // Returns at once; the feed's relay is this one until the destructor. It
  // publishes every change of this instance, and subscribes to the others'
  // while the feed has a watcher (an instance nobody watches on does not
  // receive and open every instance's changes, and its own frames reaching
  // it would keep every instance's publish gate open): the subscription is
  // made in the background when a watcher is added to a feed that had none,
  // the window until it is confirmed reported to the watchers as a loss,
  // and dropped when the last watcher is removed.
  static absl::StatusOr<std::unique_ptr<RedisChangeRelay>> Create(
      RedisClient* client, const crypto::Sealer* sealer, session::ChangeFeed* feed,
      std::string_view prefix);
  // Unsets the feed's relay, closes the subscription (no callback after).
  // REQUIRES: no change is being reported meanwhile.
  ~RedisChangeRelay() override;
  RedisChangeRelay(const RedisChangeRelay&) = delete;
  RedisChangeRelay& operator=(const RedisChangeRelay&) = delete;

  void Send(const session::SessionChange& change) override;
  std::optional<session::ChangeGap> Watched() override;
  void Unwatched() override;

  // The channel's subscription (made while the feed has a watcher) is up
  // and confirmed.
  bool subscribed() const {
    return subscribing_.load() && confirmed_.load() == generation_.load() &&
           subscriber_->connected();
  }
  const std::string& channel() const { return channel_; }
  ChangeRelayStats stats() const;
  // A publish reached no subscriber: publishing is held off (or probing).
  bool holding_off() const;

 private:
  struct Counters {
    std::atomic<uint64_t> published{0}, publish_failed{0}, received{0}, dropped{0},
        suppressed{0};
  };
  // The publish gate (defined in the .cc), shared with the publishes'
  // callbacks.
  struct Gate;

  RedisChangeRelay(RedisClient* client, const crypto::Sealer* sealer, session::ChangeFeed* feed,
                   std::string_view prefix);
  void OnMessage(std::string_view channel, std::string_view payload);
  // The subscription was confirmed (first or again) at `at`, after a loss
  // since `since`: reported to the feed, up to the hold-off past `at`.
  void Confirmed(absl::Time since, absl::Time at);

  // Constant after construction.
  RedisClient* const client_;
  const crypto::Sealer* const sealer_;
  session::ChangeFeed* const feed_;
  const std::string channel_;
  const char* const publish_;  // PUBLISH, or SPUBLISH on Cluster
  // Shared with the publishes' callbacks, which may outlive the relay.
  const std::shared_ptr<Counters> counters_;
  // The frames' order: destroyed after the gate's last use (the relay's
  // destructor unhooks the feed first), waiting for their answers.
  const std::unique_ptr<WriteLane> lane_;
  const std::shared_ptr<Gate> gate_;
  std::unique_ptr<ChannelSubscriber> subscriber_;  // set once in Create

  // Orders the subscription's changes (Watched, Unwatched).
  absl::Mutex sub_mu_;
  // The channel is wanted: from a watcher added to a feed that had none
  // until the last is removed. Written under sub_mu_.
  std::atomic<bool> subscribing_{false};
  // Counts the subscriptions wanted and dropped (written under sub_mu_): a
  // confirmation of one dropped since is ignored.
  std::atomic<uint64_t> generation_{0};
  // The generation whose SUBSCRIBE was confirmed on the current
  // connection; 0: none.
  std::atomic<uint64_t> confirmed_{0};
  // The generation confirmed at least once (a loss since does not reset
  // it): until then, every watcher was added since pending_since_.
  std::atomic<uint64_t> confirmed_once_{0};
  // When the current generation was wanted (its window's start, if a
  // restore rather than its SUBSCRIBE's answer confirms it).
  absl::Time pending_since_ ABSL_GUARDED_BY(sub_mu_);
  // Until when (Unix ns) the last confirmation's loss window reaches.
  std::atomic<int64_t> lost_until_{0};
};

}  // namespace stateside::redis

#endif  // STATESIDE_SIDECAR_REDIS_SESSION_CHANGE_RELAY_H_
