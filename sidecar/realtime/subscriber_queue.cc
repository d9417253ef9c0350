#include "sidecar/realtime/subscriber_queue.h"

#include <utility>

namespace stateside::realtime {
namespace {

size_t BytesOf(const Delivery& delivery) {
  size_t bytes = delivery.event.payload.size() + delivery.event.name.size() +
                 delivery.event.to.size();
  for (const std::string& id : delivery.conn_ids) bytes += id.size();
  return bytes;
}

}  // namespace

SubscriberQueue::SubscriberQueue(size_t max_events, size_t max_bytes,
                                 std::function<void()> wake)
    : max_events_(max_events), max_bytes_(max_bytes), wake_(std::move(wake)) {}

bool SubscriberQueue::Push(std::shared_ptr<const Delivery> delivery, absl::Time now) {
  const size_t bytes = BytesOf(*delivery);
  bool was_empty;
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return false;
    // An empty queue takes one event of any size, so a single large event
    // is never refused for its size alone.
    if (events_ >= max_events_ || (events_ > 0 && bytes_ + bytes > max_bytes_)) {
      if (pending_dropped_ == 0) first_drop_ = now;
      last_drop_ = now;
      ++pending_dropped_;
      ++dropped_total_;
      return false;
    }
    was_empty = !ReadyLocked();
    if (pending_dropped_ > 0) items_.push_back(QueueItem{nullptr, TakeOverflowLocked()});
    items_.push_back(QueueItem{std::move(delivery), std::nullopt});
    bytes_ += bytes;
    ++events_;
  }
  if (was_empty && wake_) wake_();
  return true;
}

void SubscriberQueue::PushGap(const GapNotice& gap) {
  bool was_empty;
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return;
    was_empty = !ReadyLocked();
    // Bounded: back-to-back loss windows become one.
    if (!items_.empty() && items_.back().gap.has_value() &&
        items_.back().gap->reason == gap.reason) {
      GapNotice& last = *items_.back().gap;
      last.dropped += gap.dropped;
      last.from = std::min(last.from, gap.from);
      last.to = std::max(last.to, gap.to);
    } else {
      items_.push_back(QueueItem{nullptr, gap});
    }
  }
  if (was_empty && wake_) wake_();
}

std::optional<QueueItem> SubscriberQueue::Pop() {
  absl::MutexLock lock(&mu_);
  if (items_.empty()) {
    if (pending_dropped_ == 0) return std::nullopt;
    // Everything queued went out; what was dropped came after it.
    return QueueItem{nullptr, TakeOverflowLocked()};
  }
  QueueItem item = std::move(items_.front());
  items_.pop_front();
  if (item.delivery != nullptr) {
    bytes_ -= BytesOf(*item.delivery);
    --events_;
  }
  return item;
}

void SubscriberQueue::Close() {
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return;
    closed_ = true;
  }
  if (wake_) wake_();
}

bool SubscriberQueue::closed() const {
  absl::MutexLock lock(&mu_);
  return closed_;
}

size_t SubscriberQueue::depth() const {
  absl::MutexLock lock(&mu_);
  return events_;
}

uint64_t SubscriberQueue::dropped_total() const {
  absl::MutexLock lock(&mu_);
  return dropped_total_;
}

bool SubscriberQueue::ReadyLocked() const { return !items_.empty() || pending_dropped_ > 0; }

GapNotice SubscriberQueue::TakeOverflowLocked() {
  GapNotice gap{GapNotice::Reason::kSubscriberOverflow, pending_dropped_, first_drop_, last_drop_};
  pending_dropped_ = 0;
  return gap;
}

}  // namespace stateside::realtime
