// WatchSessionEventsReactor: a ChangeFeed watcher, written one item at a time.
#include "sidecar/rpc/watch_session_events.h"

#include <grpcpp/impl/codegen/proto_utils.h>
#include <grpcpp/support/status.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "sidecar/rpc/convert.h"
#include "sidecar/rpc/status.h"
#include "stateside/v1/session.pb.h"

namespace stateside::rpc {
namespace {

grpc::ByteBuffer Serialize(const v1::SessionEvent& event) {
  grpc::ByteBuffer buffer;
  bool own = false;
  // Serializing a message we built cannot fail short of memory exhaustion.
  (void)grpc::SerializationTraits<v1::SessionEvent>::Serialize(event, &buffer, &own);
  return buffer;
}

v1::SessionEvent EventOf(const session::ChangeItem& item) {
  v1::SessionEvent out;
  if (item.change != nullptr) {
    const session::SessionChange& c = *item.change;
    v1::SessionChange* change = out.mutable_change();
    // ChangeKind's values are SessionEventKind's.
    change->set_kind(static_cast<v1::SessionEventKind>(c.kind));
    change->set_session_id(c.session_id);
    change->set_user_id(c.user_id);
    ToProto(c.time, change->mutable_time());
    change->set_previous_session_id(c.previous_id);
    for (const std::string& name : c.attributes) change->add_attributes(name);
    change->set_origin_instance(c.origin);
    return out;
  }
  v1::Gap* gap = out.mutable_gap();
  gap->set_reason(item.gap->reason == session::ChangeGap::Reason::kOverflow
                      ? v1::Gap::REASON_SUBSCRIBER_OVERFLOW
                      : v1::Gap::REASON_REDIS_DISCONNECTED);
  gap->set_dropped(item.gap->dropped);
  ToProto(item.gap->from, gap->mutable_from_time());
  ToProto(item.gap->to, gap->mutable_to_time());
  return out;
}

// The KindBit mask of the request; INVALID_ARGUMENT for a kind that is
// unspecified or unknown to this sidecar.
absl::StatusOr<uint32_t> KindsOf(const grpc::ByteBuffer* request_bytes) {
  v1::WatchSessionEventsRequest request;
  grpc::ByteBuffer buffer(*request_bytes);
  if (!grpc::SerializationTraits<v1::WatchSessionEventsRequest>::Deserialize(&buffer, &request)
           .ok()) {
    return absl::InvalidArgumentError(
        "malformed request: not a valid stateside.v1.WatchSessionEventsRequest");
  }
  uint32_t kinds = 0;
  for (int kind : request.kinds()) {
    if (kind < 1 || kind > session::kMaxChangeKind) {
      return absl::InvalidArgumentError(
          absl::StrCat("kinds: ", kind, " is not a SessionEventKind this sidecar knows"));
    }
    kinds |= session::KindBit(static_cast<session::ChangeKind>(kind));
  }
  return kinds;
}

}  // namespace

WatchSessionEventsReactor* WatchSessionEventsReactor::Start(session::ChangeFeed* feed,
                                                            const grpc::ByteBuffer* request) {
  auto* reactor = new WatchSessionEventsReactor(feed);
  absl::StatusOr<uint32_t> kinds = KindsOf(request);
  // The feed may wake the reactor as soon as the watcher is added, before
  // watcher_ is set: NextLocked waits for it, set under the lock below.
  std::shared_ptr<session::ChangeWatcher> watcher;
  if (kinds.ok()) {
    std::shared_ptr<Shared> shared = reactor->shared_;
    watcher = feed->AddWatcher(*kinds, [shared] { Wake(shared); });
  }
  Step step;
  {
    absl::MutexLock lock(&reactor->shared_->mu);
    reactor->watcher_ = std::move(watcher);
    if (!kinds.ok()) {
      reactor->end_ = kinds.status();
      reactor->cancelled_ = true;  // finish with end_ instead of writing
    }
    step = reactor->NextLocked();
  }
  reactor->Carry(step);
  return reactor;
}

WatchSessionEventsReactor::Step WatchSessionEventsReactor::NextLocked() {
  Step step;
  if (writing_ || finished_) return step;
  if (cancelled_) {
    finished_ = true;
    step.finish = true;
    step.status = ToGrpcStatus(end_.ok() ? absl::CancelledError("watcher went away") : end_);
    return step;
  }
  if (!watching_sent_) {
    watching_sent_ = true;
    v1::SessionEvent event;
    event.set_watching(true);
    *BeginWriteLocked() = Serialize(event);
    step.write = true;
    return step;
  }
  if (watcher_ == nullptr) return step;  // Start sets it, then steps again
  if (std::optional<session::ChangeItem> item = watcher_->Pop(); item.has_value()) {
    *BeginWriteLocked() = Serialize(EventOf(*item));
    step.write = true;
    return step;
  }
  if (watcher_->closed()) {
    end_ = absl::UnavailableError("session events: the sidecar is shutting down");
    finished_ = true;
    step.finish = true;
    step.status = ToGrpcStatus(end_);
  }
  return step;
}

void WatchSessionEventsReactor::OnDone() {
  Detach();
  if (watcher_ != nullptr) feed_->RemoveWatcher(watcher_);
  delete this;
}

}  // namespace stateside::rpc
