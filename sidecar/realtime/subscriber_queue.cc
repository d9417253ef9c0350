#include "sidecar/realtime/subscriber_queue.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_map.h"

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
                                 std::function<void()> wake, bool holding)
    : max_events_(max_events),
      max_bytes_(max_bytes),
      wake_(std::move(wake)),
      holding_(holding) {}

bool SubscriberQueue::PushLocked(std::deque<QueueItem>& into,
                                 std::shared_ptr<const Delivery> delivery, absl::Time now) {
  const size_t bytes = BytesOf(*delivery);
  // An empty queue takes one event of any size, so a single large event
  // is never refused for its size alone.
  if (events_ >= max_events_ || (events_ > 0 && bytes_ + bytes > max_bytes_)) {
    if (pending_dropped_ == 0) first_drop_ = now;
    last_drop_ = now;
    ++pending_dropped_;
    ++dropped_total_;
    return false;
  }
  if (pending_dropped_ > 0) into.push_back(QueueItem{nullptr, TakeOverflowLocked()});
  into.push_back(QueueItem{std::move(delivery), std::nullopt});
  bytes_ += bytes;
  ++events_;
  return true;
}

bool SubscriberQueue::CoveredLocked(const Delivery& delivery, absl::Time now) {
  if (covers_.empty()) return false;
  if (now >= covers_until_) {  // every cover ended
    covers_.clear();
    return false;
  }
  // Sequence 0: no event of a stream (a disconnect, or a transient event).
  if (delivery.event.sequence == 0) return false;
  auto it = covers_.find(StreamKey(StreamOf(delivery.event)));
  return it != covers_.end() && now < it->second.until &&
         delivery.event.sequence <= it->second.sequence;
}

bool SubscriberQueue::Push(std::shared_ptr<const Delivery> delivery, absl::Time now,
                           bool* stale) {
  bool wake;
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return false;
    if (holding_) return PushLocked(held_, std::move(delivery), now);
    if (CoveredLocked(*delivery, now)) {  // replayed already
      if (stale != nullptr) *stale = true;
      return true;
    }
    const bool was_ready = ReadyLocked();
    if (!PushLocked(items_, std::move(delivery), now)) return false;
    wake = !was_ready;
  }
  if (wake && wake_) wake_();
  return true;
}

bool SubscriberQueue::PushReplay(std::shared_ptr<const Delivery> delivery, absl::Time now) {
  bool wake;
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return false;
    const bool was_ready = ReadyLocked();
    if (!PushLocked(items_, std::move(delivery), now)) return false;
    wake = !was_ready;
  }
  if (wake && wake_) wake_();
  return true;
}

void SubscriberQueue::Cover(const std::string& stream_key, uint64_t sequence, absl::Time now) {
  absl::MutexLock lock(&mu_);
  CoverEntry& cover = covers_[stream_key];
  cover.sequence = std::max(cover.sequence, sequence);
  cover.until = now + kCoverTtl;
  covers_until_ = std::max(covers_until_, cover.until);
}

uint64_t SubscriberQueue::Release(absl::Time now) {
  bool wake;
  uint64_t covered = 0;
  {
    absl::MutexLock lock(&mu_);
    if (!holding_) return 0;
    const bool was_ready = ReadyLocked();
    holding_ = false;
    std::deque<QueueItem> held;
    held.swap(held_);
    for (QueueItem& item : held) {
      if (item.delivery != nullptr && CoveredLocked(*item.delivery, now)) {
        bytes_ -= BytesOf(*item.delivery);
        --events_;
        ++covered;
        continue;
      }
      items_.push_back(std::move(item));
    }
    wake = !was_ready && ReadyLocked();
  }
  if (wake && wake_) wake_();
  return covered;
}

void SubscriberQueue::PushGap(const GapNotice& gap) {
  bool wake;
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return;
    // The covers stay: what the replay delivered was delivered.
    const bool was_ready = ReadyLocked();
    std::deque<QueueItem>& into =
        holding_ && gap.reason != GapNotice::Reason::kResumeIncomplete ? held_ : items_;
    // Bounded: back-to-back loss windows become one (resume notices are one
    // per resume point, each its own).
    if (gap.reason != GapNotice::Reason::kResumeIncomplete && !into.empty() &&
        into.back().gap.has_value() && into.back().gap->reason == gap.reason) {
      GapNotice& last = *into.back().gap;
      last.dropped += gap.dropped;
      last.from = std::min(last.from, gap.from);
      last.to = std::max(last.to, gap.to);
    } else {
      into.push_back(QueueItem{nullptr, gap});
    }
    wake = !was_ready && ReadyLocked();
  }
  if (wake && wake_) wake_();
}

std::optional<QueueItem> SubscriberQueue::Pop() {
  absl::MutexLock lock(&mu_);
  if (items_.empty()) {
    if (pending_dropped_ == 0 || holding_) return std::nullopt;
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

bool SubscriberQueue::ReadyLocked() const {
  return !items_.empty() || (!holding_ && pending_dropped_ > 0);
}

GapNotice SubscriberQueue::TakeOverflowLocked() {
  GapNotice gap{GapNotice::Reason::kSubscriberOverflow, pending_dropped_, first_drop_, last_drop_};
  pending_dropped_ = 0;
  return gap;
}

}  // namespace stateside::realtime
