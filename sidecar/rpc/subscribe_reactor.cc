// SubscribeReactor: registration, then the queue, one write at a time.
#include "sidecar/rpc/subscribe_reactor.h"

#include <grpcpp/impl/codegen/proto_utils.h>
#include <grpcpp/support/status.h>

#include <atomic>
#include <utility>

#include "absl/time/clock.h"
#include "sidecar/rpc/convert.h"
#include "sidecar/rpc/realtime_service.h"
#include "sidecar/rpc/status.h"
#include "stateside/v1/realtime.pb.h"

namespace stateside::rpc {
namespace {

grpc::ByteBuffer Serialize(const v1::RealtimeEvent& event) {
  grpc::ByteBuffer buffer;
  bool own = false;
  // Serializing a message we built cannot fail short of memory exhaustion.
  (void)grpc::SerializationTraits<v1::RealtimeEvent>::Serialize(event, &buffer, &own);
  return buffer;
}

v1::RealtimeEvent EventOf(const realtime::QueueItem& item) {
  using Reason = realtime::GapNotice::Reason;
  v1::RealtimeEvent out;
  if (item.delivery != nullptr && item.delivery->event.control == realtime::Control::kDisconnect) {
    for (const std::string& conn : item.delivery->conn_ids) {
      out.mutable_disconnect()->add_conn_ids(conn);
    }
    return out;
  }
  if (item.delivery != nullptr) {
    rpc::ToProto(item.delivery->event, item.delivery->conn_ids, out.mutable_delivery());
    return out;
  }
  v1::Gap* gap = out.mutable_gap();
  switch (item.gap->reason) {
    case Reason::kSubscriberOverflow:
      gap->set_reason(v1::Gap::REASON_SUBSCRIBER_OVERFLOW);
      gap->set_dropped(item.gap->dropped);
      break;
    case Reason::kRedisDisconnected:
      gap->set_reason(v1::Gap::REASON_REDIS_DISCONNECTED);
      break;
    case Reason::kResumeIncomplete:
      gap->set_reason(v1::Gap::REASON_RESUME_INCOMPLETE);
      rpc::ToProto(item.gap->stream, item.gap->after_sequence, gap->mutable_resume());
      gap->set_first_sequence(item.gap->first_sequence);
      return out;
  }
  rpc::ToProto(item.gap->from, gap->mutable_from_time());
  rpc::ToProto(item.gap->to, gap->mutable_to_time());
  return out;
}

}  // namespace

SubscribeReactor::SubscribeReactor(realtime::RealtimeHub* hub, admin::Metrics* metrics)
    : hub_(hub), metrics_(metrics) {}

SubscribeReactor* SubscribeReactor::Start(realtime::RealtimeHub* hub, admin::Metrics* metrics,
                                          const grpc::ByteBuffer* request) {
  auto* reactor = new SubscribeReactor(hub, metrics);
  reactor->Begin(request);
  return reactor;
}

void SubscribeReactor::Begin(const grpc::ByteBuffer* request_bytes) {
  v1::SubscribeRequest request;
  grpc::ByteBuffer buffer(*request_bytes);
  absl::Status status;
  std::vector<realtime::ConnPresence> conns;
  if (!grpc::SerializationTraits<v1::SubscribeRequest>::Deserialize(&buffer, &request).ok()) {
    status = absl::InvalidArgumentError(
        "malformed request: not a valid stateside.v1.SubscribeRequest");
  } else if (static_cast<size_t>(request.connections_size()) > realtime::kMaxRoomsPerRequest) {
    status = absl::InvalidArgumentError("connections: at most 256 per stream");
  }
  for (int i = 0; status.ok() && i < request.connections_size(); ++i) {
    absl::StatusOr<realtime::ConnPresence> conn = ToConnPresence(request.connections(i));
    if (!conn.ok()) {
      status = conn.status();
    } else {
      conns.push_back(*std::move(conn));
    }
  }
  if (status.ok()) {
    absl::StatusOr<std::vector<realtime::RealtimeHub::ResumePoint>> points =
        ToResumePoints(request.resume(), hub_->instance_id());
    if (points.ok()) {
      resume_ = *std::move(points);
    } else {
      status = points.status();
    }
  }
  std::shared_ptr<Shared> shared = shared_;
  // Holding from the start: what arrives before and during the replay
  // follows it.
  queue_ = hub_->AddSubscriber([shared] { Wake(shared); }, /*holding=*/!resume_.empty());
  if (!status.ok()) return OnRegistered(status);
  if (queue_->closed()) {
    return OnRegistered(absl::UnavailableError("realtime: the sidecar is shutting down"));
  }
  if (conns.empty()) return OnRegistered(absl::OkStatus());

  struct Pending {
    std::atomic<size_t> left;
    absl::Mutex mu;
    absl::Status first_error ABSL_GUARDED_BY(mu);
    // What this stream registered, and OnDone unregisters: never a
    // connection whose registration was refused (e.g. the app's own one,
    // registered under another user).
    std::vector<std::string> registered ABSL_GUARDED_BY(mu);
  };
  auto pending = std::make_shared<Pending>();
  pending->left = conns.size();
  for (auto& conn : conns) {
    std::string id = conn.conn;
    // The reactor stays alive until OnDone, which cannot come before the
    // stream is finished, and it is finished only in OnRegistered or later.
    hub_->Register(std::move(conn), [this, pending, id = std::move(id)](absl::Status s) {
      {
        absl::MutexLock lock(&pending->mu);
        // UNAVAILABLE keeps the connection in the hub (written again when
        // Redis is back): it is this stream's to unregister too.
        if (s.ok() || s.code() == absl::StatusCode::kUnavailable) {
          pending->registered.push_back(id);
        }
        if (!s.ok() && pending->first_error.ok()) pending->first_error = s;
      }
      if (pending->left.fetch_sub(1) != 1) return;
      absl::Status result;
      {
        absl::MutexLock lock(&pending->mu);
        result = pending->first_error;
        owned_conns_ = std::move(pending->registered);
      }
      OnRegistered(result);
    });
  }
}

void SubscribeReactor::OnRegistered(absl::Status status) {
  if (status.ok() && !resume_.empty()) {
    // `subscribed` goes out now; the replay follows it through the queue.
    // A replay that fails ends the stream (the app opens it again); the
    // answer may come after the reactor is gone.
    hub_->Resume(queue_, std::exchange(resume_, {}),
                 [shared = shared_](absl::Status replayed) {
                   if (replayed.ok()) return;
                   Wake(shared, [&](StreamReactor* base) {
                     auto* self = static_cast<SubscribeReactor*>(base);
                     self->shared_->mu.AssertHeld();
                     if (self->end_.ok()) self->end_ = std::move(replayed);
                     self->CancelLocked();
                   });
                 });
  }
  Step step;
  {
    absl::MutexLock lock(&shared_->mu);
    registered_ = true;
    if (!status.ok()) {
      end_ = std::move(status);
      cancelled_ = true;  // finish with end_ instead of writing
    }
    step = NextLocked();
  }
  Carry(step);
}

SubscribeReactor::Step SubscribeReactor::NextLocked() {
  Step step;
  if (writing_ || finished_ || !registered_) return step;
  if (cancelled_) {
    finished_ = true;
    step.finish = true;
    step.status = ToGrpcStatus(end_.ok() ? absl::CancelledError("subscriber went away") : end_);
    return step;
  }
  if (!subscribed_sent_) {
    subscribed_sent_ = true;
    v1::RealtimeEvent event;
    event.set_subscribed(true);
    *BeginWriteLocked() = Serialize(event);
    step.write = true;
    return step;
  }
  if (std::optional<realtime::QueueItem> item = queue_->Pop(); item.has_value()) {
    if (metrics_ != nullptr) {
      if (item->delivery != nullptr) {
        metrics_->RealtimeDelivered(
            absl::ToDoubleSeconds(absl::Now() - item->delivery->event.published_at));
      } else if (item->gap->reason == realtime::GapNotice::Reason::kSubscriberOverflow) {
        metrics_->RealtimeGap("overflow");
      }
    }
    *BeginWriteLocked() = Serialize(EventOf(*item));
    step.write = true;
    return step;
  }
  if (queue_->closed()) {
    end_ = absl::UnavailableError("realtime: the sidecar is shutting down");
    finished_ = true;
    step.finish = true;
    step.status = ToGrpcStatus(end_);
  }
  return step;
}

void SubscribeReactor::OnDone() {
  Detach();
  if (queue_ != nullptr) hub_->RemoveSubscriber(queue_);
  for (const std::string& conn : owned_conns_) {
    hub_->Unregister(conn, [](absl::StatusOr<bool>) {});
  }
  delete this;
}

}  // namespace stateside::rpc
