// Subscription: a synchronous Subscribe reader on its own thread, a bounded
// buffer, and Next/Cancel (see realtime_subscription.h and realtime.h).
#include "client/src/realtime_subscription.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "client/src/convert.h"
#include "client/src/realtime_internal.h"

namespace stateside {

Subscription::Impl::Impl(std::shared_ptr<::grpc::Channel> channel,
                         v1::SubscribeRequest request)
    : stub_(v1::RealtimeService::NewStub(std::move(channel))),
      request_(std::move(request)) {}

Subscription::Impl::~Impl() {
  Cancel();
  if (thread_.joinable()) thread_.join();
}

void Subscription::Impl::Start() { thread_ = std::thread([this] { Run(); }); }

bool Subscription::Impl::HasRoomOrCancelled() const {
  return cancelled_ || buffer_.size() < static_cast<size_t>(kMaxBufferedEvents);
}

bool Subscription::Impl::SubscribedOrEnded() const {
  return subscribed_ || final_.has_value() || cancelled_;
}

bool Subscription::Impl::EventOrEnd() const {
  return !buffer_.empty() || final_.has_value() || cancelled_;
}

void Subscription::Impl::Run() {
  // Not wait_for_ready: a missing sidecar is UNAVAILABLE at once (and
  // Client::Subscribe retries it within its deadline).
  std::unique_ptr<::grpc::ClientReader<v1::RealtimeEvent>> reader =
      stub_->Subscribe(&context_, request_);
  v1::RealtimeEvent message;
  while (reader->Read(&message)) {
    absl::MutexLock lock(&mu_);
    if (!subscribed_) {
      if (!message.has_subscribed()) {
        protocol_error_ = absl::InternalError(
            "protocol error: the sidecar's first Subscribe message is not `subscribed`");
        break;
      }
      subscribed_ = true;
      continue;
    }
    std::optional<RealtimeEvent> event = client_internal::EventFromProto(message);
    if (!event) continue;  // a repeated `subscribed`, or a kind newer than us
    // Flow control: while the app has kMaxBufferedEvents unread, stop
    // reading, so that the sidecar's bounded queue (not this process's
    // memory) absorbs a slow app, and reports what it drops.
    mu_.Await(absl::Condition(this, &Impl::HasRoomOrCancelled));
    if (cancelled_) break;
    buffer_.push_back(std::move(*event));
  }
  {
    absl::MutexLock lock(&mu_);
    // Finish() waits for the end of the stream: after a break, end it here.
    if (!protocol_error_.ok() || cancelled_) context_.TryCancel();
  }
  const ::grpc::Status status = reader->Finish();
  absl::MutexLock lock(&mu_);
  final_ = FinalStatus(status);
}

absl::Status Subscription::Impl::FinalStatus(const ::grpc::Status& status) {
  if (cancelled_) return absl::CancelledError("subscription cancelled");
  if (!protocol_error_.ok()) return protocol_error_;
  if (status.ok()) {
    return absl::OutOfRangeError("the sidecar ended the subscription");
  }
  // We did not cancel: the sidecar did (e.g. while shutting down). For the
  // app that is the sidecar going away, not its own Cancel().
  if (status.error_code() == ::grpc::StatusCode::CANCELLED) {
    return absl::UnavailableError(absl::StrCat(
        "the sidecar cancelled the subscription: ", status.error_message()));
  }
  return client_internal::FromGrpcStatus(status);
}

absl::Status Subscription::Impl::AwaitSubscribed(absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  if (!mu_.AwaitWithDeadline(absl::Condition(this, &Impl::SubscribedOrEnded), deadline)) {
    return absl::DeadlineExceededError(
        "the sidecar did not confirm the subscription in time");
  }
  if (cancelled_) return absl::CancelledError("subscription cancelled");
  if (subscribed_) return absl::OkStatus();
  if (final_->code() == absl::StatusCode::kOutOfRange) {
    return absl::UnavailableError("the sidecar ended the stream before `subscribed`");
  }
  return *final_;
}

absl::StatusOr<RealtimeEvent> Subscription::Impl::Next(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  if (!mu_.AwaitWithTimeout(absl::Condition(this, &Impl::EventOrEnd), timeout)) {
    return absl::DeadlineExceededError(
        absl::StrCat("no event within ", absl::FormatDuration(timeout)));
  }
  if (cancelled_) return absl::CancelledError("subscription cancelled");
  if (!buffer_.empty()) {
    RealtimeEvent event = std::move(buffer_.front());
    buffer_.pop_front();
    return event;
  }
  return *final_;
}

void Subscription::Impl::Cancel() {
  {
    absl::MutexLock lock(&mu_);
    if (cancelled_) return;
    cancelled_ = true;
    buffer_.clear();
  }
  // Unblocks the reader's Read (or cancels the call as soon as it starts).
  context_.TryCancel();
}

Subscription::Subscription(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Subscription::~Subscription() = default;

absl::StatusOr<RealtimeEvent> Subscription::Next(absl::Duration timeout) {
  return impl_->Next(timeout);
}

void Subscription::Cancel() { impl_->Cancel(); }

}  // namespace stateside
