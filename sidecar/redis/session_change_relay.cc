// RedisChangeRelay: sealed session changes on one pub/sub channel.
#include "sidecar/redis/session_change_relay.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "sidecar/common/status_macros.h"
#include "sidecar/common/string_view.h"
#include "sidecar/redis/shard_subscriber.h"

namespace stateside::redis {
namespace {

// Seal place of every change frame; the name is the channel.
constexpr char kSealPlace[] = "se";

}  // namespace

RedisChangeRelay::RedisChangeRelay(RedisClient* client, const crypto::Sealer* sealer,
                                   session::ChangeFeed* feed, std::string_view prefix)
    : client_(client),
      sealer_(sealer),
      feed_(feed),
      channel_(absl::StrCat(Sv(prefix), "{se}:changes")),
      publish_(client->options().topology == RedisTopology::kCluster ? "SPUBLISH" : "PUBLISH"),
      counters_(std::make_shared<Counters>()) {}

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
  callbacks.on_down = [self](absl::Time) { self->confirmed_.store(false); };
  callbacks.on_restored = [self, feed](absl::Time since, absl::Time until) {
    if (self->subscribing_.load()) self->confirmed_.store(true);
    feed->OnRemoteLost(since, until);
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

void RedisChangeRelay::Watched() {
  bool first = false;
  if (!subscribing_.compare_exchange_strong(first, true)) return;
  // Until the SUBSCRIBE is confirmed the others' changes do not arrive: the
  // watchers are told of that window as of a lost subscription. Not in a
  // session yet (UNAVAILABLE): the subscriber subscribes the wanted channel
  // once connected, and on_restored reports the window since its start.
  const absl::Time since = absl::Now();
  subscriber_->Subscribe({channel_}, [this, since](absl::Status status) {
    if (!status.ok()) return;
    confirmed_.store(true);
    feed_->OnRemoteLost(since, absl::Now());
  });
}

RedisChangeRelay::~RedisChangeRelay() {
  feed_->SetRelay(nullptr);
  subscriber_.reset();  // joins its threads: no OnMessage after this
}

void RedisChangeRelay::Send(const session::SessionChange& change) {
  absl::StatusOr<std::string> sealed =
      sealer_->Seal(kSealPlace, channel_, session::EncodeChange(change));
  if (!sealed.ok()) {
    counters_->publish_failed.fetch_add(1);
    return;
  }
  counters_->published.fetch_add(1);
  client_->Execute(RedisCommand({publish_, channel_, *std::move(sealed)}),
                   [counters = counters_](absl::StatusOr<Reply> reply) {
                     if (!reply.ok()) counters->publish_failed.fetch_add(1);
                   });
}

void RedisChangeRelay::OnMessage(std::string_view channel, std::string_view payload) {
  if (channel != channel_) return;
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
  counters_->received.fetch_add(1);
  feed_->OnRemote(*std::move(change));
}

ChangeRelayStats RedisChangeRelay::stats() const {
  return ChangeRelayStats{counters_->published.load(), counters_->publish_failed.load(),
                          counters_->received.load(), counters_->dropped.load()};
}

}  // namespace stateside::redis
