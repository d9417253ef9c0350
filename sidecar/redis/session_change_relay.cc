// RedisChangeRelay: sealed session changes on one pub/sub channel.
#include "sidecar/redis/session_change_relay.h"

#include <algorithm>
#include <chrono>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "sidecar/common/status_macros.h"
#include "sidecar/common/string_view.h"
#include "sidecar/redis/shard_subscriber.h"

namespace stateside::redis {
namespace {

// Seal place of every change frame; the name is the channel.
constexpr char kSealPlace[] = "se";

// Frames held back while a probe is answered, at most; beyond, they are
// published (a watcher elsewhere may be waiting for them).
constexpr size_t kMaxHeld = 4096;

// Frames waiting for the lane, at most (count, bytes): beyond, a publish
// fails at once, as it would if Redis were not reachable. Small: the relay's
// destructor waits for what is queued, one batch of up to 1024 per round
// trip, so against a Redis that stopped answering this bounds that wait to
// a few command timeouts.
constexpr size_t kMaxQueuedFrames = 4096;
constexpr size_t kMaxQueuedBytes = 4u << 20;

// The gate's time: steady, in ns (a wall-clock step must not stretch or
// cut a hold-off).
int64_t SteadyNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

// Whether a frame is published. Open (quiet_until 0) until a publish
// answers that it reached no subscriber; then quiet until that publish's
// send time plus the hold-off: frames are suppressed. The first frame after
// is the probe: frames meanwhile are held until it is answered. A probe
// that reached someone opens the gate and publishes the held frames after
// it; one that failed opens it and loses them with it (as any failed
// publish loses its change); one that reached nobody suppresses them (unless
// it was answered after its own hold-off: then they go out) and starts the
// next hold-off. Any subscription confirmed before the
// publish that saw none reports its window up to its confirmation plus the
// hold-off, and a suppressed frame was sent before the end of that window.
struct RedisChangeRelay::Gate {
  Gate(WriteLane* lane, std::string channel, const char* command,
       std::shared_ptr<Counters> counters)
      : lane(lane), channel(std::move(channel)), command(command),
        counters(std::move(counters)) {}

  // Publishes `frame`, holds it back or suppresses it.
  static void Offer(const std::shared_ptr<Gate>& gate, std::string frame);
  // Whether a frame offered now would be suppressed (counted as such if
  // so): the relay then neither encodes nor seals it. A frame that is not
  // goes to Offer, which decides again.
  bool Suppressed();

  WriteLane* const lane;  // every frame, in the order offered
  const std::string channel;
  const char* const command;
  const std::shared_ptr<Counters> counters;

  // Steady ns until which frames are suppressed; 0: open. Read without the
  // lock on every frame, written under it.
  std::atomic<int64_t> quiet_until{0};
  absl::Mutex mu;
  bool probing ABSL_GUARDED_BY(mu) = false;
  std::vector<std::string> held ABSL_GUARDED_BY(mu);

 private:
  static void Publish(const std::shared_ptr<Gate>& gate, std::string frame, bool probe,
                      int64_t sent);
  void Answered(bool probe, int64_t sent, const absl::StatusOr<Reply>& reply);
  // Sends `frame` after every frame before it; `done` gets its answer.
  void Send(std::string frame, absl::AnyInvocable<void(absl::StatusOr<Reply>)> done);
  // Publishes the held frames, in order.
  void ReleaseHeldLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
};

void RedisChangeRelay::Gate::Offer(const std::shared_ptr<Gate>& gate, std::string frame) {
  const int64_t now = SteadyNanos();
  bool probe = false;
  if (gate->quiet_until.load() != 0) {
    absl::MutexLock lock(&gate->mu);
    if (gate->quiet_until.load() != 0) {
      if (gate->probing) {
        if (gate->held.size() < kMaxHeld) {
          gate->held.push_back(std::move(frame));
          return;
        }
        // Full: the held frames go out now (behind the probe), and this one
        // after them, so that nothing overtakes them.
        gate->ReleaseHeldLocked();
      } else if (now < gate->quiet_until.load()) {
        gate->counters->suppressed.fetch_add(1);
        return;
      } else {
        gate->probing = true;
        probe = true;
      }
    }
  }
  Publish(gate, std::move(frame), probe, now);
}

bool RedisChangeRelay::Gate::Suppressed() {
  if (quiet_until.load() == 0) return false;
  const int64_t now = SteadyNanos();
  absl::MutexLock lock(&mu);
  if (quiet_until.load() == 0 || probing || now >= quiet_until.load()) return false;
  counters->suppressed.fetch_add(1);
  return true;
}

void RedisChangeRelay::Gate::Publish(const std::shared_ptr<Gate>& gate, std::string frame,
                                     bool probe, int64_t sent) {
  gate->counters->published.fetch_add(1);
  gate->Send(std::move(frame), [gate, probe, sent](absl::StatusOr<Reply> reply) {
    gate->Answered(probe, sent, reply);
  });
}

void RedisChangeRelay::Gate::Send(std::string frame,
                                  absl::AnyInvocable<void(absl::StatusOr<Reply>)> done) {
  std::vector<RedisCommand> commands;
  commands.push_back(RedisCommand({command, channel, std::move(frame)}));
  lane->Submit(std::move(commands), [done = std::move(done)](WriteLane::Results results) mutable {
    done(std::move(results.front()));
  });
}

void RedisChangeRelay::Gate::Answered(bool probe, int64_t sent,
                                      const absl::StatusOr<Reply>& reply) {
  const bool failed = !reply.ok() || reply->type == Reply::Type::kError;
  if (failed) counters->publish_failed.fetch_add(1);
  const bool nobody = !failed && reply->type == Reply::Type::kInteger && reply->integer == 0;
  if (!nobody && !probe) return;
  absl::MutexLock lock(&mu);
  if (nobody) {
    const int64_t until = sent + absl::ToInt64Nanoseconds(kPublishHoldOff);
    if (until > quiet_until.load()) quiet_until.store(until);
    if (probe) {
      probing = false;
      if (SteadyNanos() < until) {
        counters->suppressed.fetch_add(held.size());
        held.clear();
      } else {
        // Answered after its own hold-off: the frames held meanwhile may
        // have been made after a watcher's window; they go out.
        ReleaseHeldLocked();
      }
    }
    return;
  }
  probing = false;
  if (failed) {
    // Nothing is known: the gate opens. The held frames are lost as the
    // probe was (as any failed publish is); not sent from a failure, which
    // may come from the client's shutdown.
    counters->publish_failed.fetch_add(held.size());
    held.clear();
    quiet_until.store(0);
    return;
  }
  // The probe reached someone: the held frames go out after it, before the
  // gate opens to the frames behind them.
  ReleaseHeldLocked();
  quiet_until.store(0);
}

void RedisChangeRelay::Gate::ReleaseHeldLocked() {
  // Under the lock, so that no frame offered once the gate opens goes
  // before them; their answers only count failures (this lock may still be
  // held when a refusal answers at once).
  for (std::string& frame : held) {
    counters->published.fetch_add(1);
    Send(std::move(frame), [counters = counters](absl::StatusOr<Reply> answer) {
      if (!answer.ok() || answer->type == Reply::Type::kError) {
        counters->publish_failed.fetch_add(1);
      }
    });
  }
  held.clear();
}

RedisChangeRelay::RedisChangeRelay(RedisClient* client, const crypto::Sealer* sealer,
                                   session::ChangeFeed* feed, std::string_view prefix)
    : client_(client),
      sealer_(sealer),
      feed_(feed),
      channel_(absl::StrCat(Sv(prefix), "{se}:changes")),
      publish_(client->options().topology == RedisTopology::kCluster ? "SPUBLISH" : "PUBLISH"),
      counters_(std::make_shared<Counters>()),
      lane_(std::make_unique<WriteLane>(client, kMaxQueuedFrames, kMaxQueuedBytes)),
      gate_(std::make_shared<Gate>(lane_.get(), channel_, publish_, counters_)) {}

absl::StatusOr<std::unique_ptr<RedisChangeRelay>> RedisChangeRelay::Create(
    RedisClient* client, const crypto::Sealer* sealer, session::ChangeFeed* feed,
    std::string_view prefix) {
  std::unique_ptr<RedisChangeRelay> relay(new RedisChangeRelay(client, sealer, feed, prefix));
  RedisChangeRelay* self = relay.get();
  RedisSubscriber::Callbacks callbacks;
  callbacks.on_message = [self](std::string_view channel, std::string_view payload) {
    self->OnMessage(channel, payload);
  };
  // The window is reported once restored (the subscriber's connection, with
  // every wanted channel subscribed again).
  callbacks.on_down = [self](absl::Time) { self->confirmed_.store(0); };
  callbacks.on_restored = [self](absl::Time since, absl::Time until) {
    // Under the lock: a generation wanted since (Unwatched and Watched
    // meanwhile) is not confirmed by this restore's state read before, and
    // no frame reaches the watchers between the confirmation and the gap.
    absl::MutexLock lock(&self->sub_mu_);
    const bool subscribing = self->subscribing_.load();
    const uint64_t generation = self->generation_.load();
    // A subscription never confirmed yet was wanted since pending_since_,
    // and every watcher came since: that is the window's start, whether the
    // subscriber's loss started later (a SUBSCRIBE in flight when the
    // connection failed) or earlier (the subscriber, down or not yet
    // connected when the channel was wanted, reports since then).
    if (subscribing && self->confirmed_once_.load() != generation) {
      since = self->pending_since_;
    }
    self->Confirmed(since, until);  // the gap first, then the frames
    if (subscribing) {
      self->confirmed_.store(generation);
      self->confirmed_once_.store(generation);
    }
  };
  if (client->options().topology == RedisTopology::kCluster) {
    ASSIGN_OR_RETURN(relay->subscriber_, ShardedSubscriber::Create(client, std::move(callbacks)));
  } else {
    ASSIGN_OR_RETURN(relay->subscriber_,
                     RedisSubscriber::Create(client->options(), std::move(callbacks)));
  }
  feed->SetRelay(self);
  if (feed->watchers() > 0) self->Watched();  // watchers added before the relay
  return relay;
}

std::optional<session::ChangeGap> RedisChangeRelay::Watched() {
  absl::MutexLock lock(&sub_mu_);
  if (subscribing_.load()) {
    // Subscribed already (or about to be: that confirmation reports to this
    // watcher too). A window reported before it was added may still be open.
    const absl::Time now = absl::Now();
    const absl::Time until = absl::FromUnixNanos(lost_until_.load());
    if (until <= now) return std::nullopt;
    return session::ChangeGap{session::ChangeGap::Reason::kRemoteLost, 0, now, until};
  }
  // Until the SUBSCRIBE is confirmed the others' changes do not arrive: the
  // watchers are told of that window as of a lost subscription. Not in a
  // session yet (UNAVAILABLE): the subscriber subscribes the wanted channel
  // once connected, and on_restored reports the window since its start.
  subscribing_.store(true);
  const uint64_t generation = generation_.fetch_add(1) + 1;
  const absl::Time since = absl::Now();
  pending_since_ = since;
  subscriber_->Subscribe({channel_}, [this, since, generation](absl::Status status) {
    if (!status.ok() || generation_.load() != generation) return;
    // The gap first, then the frames (they come on this thread).
    Confirmed(since, absl::Now());
    confirmed_.store(generation);
    confirmed_once_.store(generation);
  });
  return std::nullopt;  // the window is reported once the subscription is confirmed
}

void RedisChangeRelay::Unwatched() {
  absl::MutexLock lock(&sub_mu_);
  // A watcher added since is served by the subscription as it is.
  if (!subscribing_.load() || feed_->watchers() > 0) return;
  subscribing_.store(false);
  generation_.fetch_add(1);
  confirmed_.store(0);
  // Its own frames no longer reach it: with nobody else listening, every
  // instance's publish gate closes. The next watcher subscribes again and
  // starts with the window until that is confirmed (Watched).
  subscriber_->Unsubscribe({channel_});
}

void RedisChangeRelay::Confirmed(absl::Time since, absl::Time at) {
  // Another sidecar's last publish before the SUBSCRIBE may have reached
  // nobody: it holds off until at most kPublishHoldOff past `at`.
  const absl::Time until = at + kPublishHoldOff;
  // Before the watchers are copied. Confirmations race (a restore on the
  // subscriber's thread, a SUBSCRIBE's answer on a connection's): the end
  // never moves back.
  const int64_t until_ns = absl::ToUnixNanos(until);
  int64_t current = lost_until_.load();
  while (current < until_ns && !lost_until_.compare_exchange_weak(current, until_ns)) {
  }
  feed_->OnRemoteLost(since, until);
}

RedisChangeRelay::~RedisChangeRelay() {
  feed_->SetRelay(nullptr);
  subscriber_.reset();  // joins its threads: no OnMessage after this
}

void RedisChangeRelay::Send(const session::SessionChange& change) {
  // Nobody listens: most changes stop here, before the encoding and the
  // seal (a random nonce and an AEAD each) they would cost for nothing.
  if (gate_->Suppressed()) return;
  absl::StatusOr<std::string> sealed =
      sealer_->Seal(kSealPlace, channel_, session::EncodeChange(change));
  if (!sealed.ok()) {
    counters_->publish_failed.fetch_add(1);
    return;
  }
  Gate::Offer(gate_, *std::move(sealed));
}

void RedisChangeRelay::OnMessage(std::string_view channel, std::string_view payload) {
  if (channel != channel_) return;
  // Not confirmed yet: a frame published before a previous subscription
  // ended may still arrive once the channel is wanted again, older than
  // the gap the watchers are about to get; it falls in that gap's window.
  if (confirmed_.load() != generation_.load()) return;
  absl::StatusOr<crypto::Opened> opened = sealer_->Open(kSealPlace, channel_, payload);
  if (!opened.ok()) {
    counters_->dropped.fetch_add(1);
    return;
  }
  absl::StatusOr<session::SessionChange> change = session::DecodeChange(opened->plaintext);
  if (!change.ok()) {
    counters_->dropped.fetch_add(1);
    return;
  }
  if (change->origin == feed_->instance_id()) return;  // delivered locally already
  // Checked again under the lock: the last watcher may have left and the
  // next been added while the frame was opened.
  absl::ReaderMutexLock lock(&sub_mu_);
  if (confirmed_.load() != generation_.load()) return;
  counters_->received.fetch_add(1);
  feed_->OnRemote(*std::move(change));
}

bool RedisChangeRelay::holding_off() const { return gate_->quiet_until.load() != 0; }

ChangeRelayStats RedisChangeRelay::stats() const {
  return ChangeRelayStats{counters_->published.load(), counters_->publish_failed.load(),
                          counters_->received.load(), counters_->dropped.load(),
                          counters_->suppressed.load()};
}

}  // namespace stateside::redis
