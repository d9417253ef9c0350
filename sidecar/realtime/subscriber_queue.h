// One Subscribe stream's queue: the events for this instance's connections
// waiting to be written to the app. Bounded by a number of events and of
// payload bytes: when the app reads too slowly, new events are dropped for
// this subscriber only, counted, and a gap notice takes their place, so
// memory never grows without bound and the app learns what it lost.
//
// Thread-safe. `wake` runs (on the pushing thread, without the queue's lock)
// whenever the queue turns non-empty; the consumer then Pop()s until empty.
#ifndef STATESIDE_SIDECAR_REALTIME_SUBSCRIBER_QUEUE_H_
#define STATESIDE_SIDECAR_REALTIME_SUBSCRIBER_QUEUE_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "sidecar/realtime/event.h"

namespace stateside::realtime {

// An event with the local connections it is for; shared by every subscriber.
struct Delivery {
  Event event;
  std::vector<std::string> conn_ids;
};

struct GapNotice {
  enum class Reason { kSubscriberOverflow, kRedisDisconnected };
  Reason reason = Reason::kSubscriberOverflow;
  uint64_t dropped = 0;  // kSubscriberOverflow
  absl::Time from;
  absl::Time to;
};

// Exactly one of the two is set.
struct QueueItem {
  std::shared_ptr<const Delivery> delivery;
  std::optional<GapNotice> gap;
};

class SubscriberQueue {
 public:
  SubscriberQueue(size_t max_events, size_t max_bytes, std::function<void()> wake);
  SubscriberQueue(const SubscriberQueue&) = delete;
  SubscriberQueue& operator=(const SubscriberQueue&) = delete;

  // Queues the delivery; false if it was dropped (queue full or closed).
  bool Push(std::shared_ptr<const Delivery> delivery, absl::Time now);
  // Queues a loss window of the broker; consecutive ones merge.
  void PushGap(const GapNotice& gap);
  // The next item, or nullopt when empty. Drops since the last delivery come
  // out as one kSubscriberOverflow notice, in the place the events would have
  // had.
  std::optional<QueueItem> Pop();
  // Pushes are refused from now on; Pop still drains what is queued. Wakes
  // the consumer, which ends its stream once the queue is empty.
  void Close();
  bool closed() const;

  size_t depth() const;
  uint64_t dropped_total() const;

 private:
  bool ReadyLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  GapNotice TakeOverflowLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const size_t max_events_;
  const size_t max_bytes_;
  const std::function<void()> wake_;

  mutable absl::Mutex mu_;
  std::deque<QueueItem> items_ ABSL_GUARDED_BY(mu_);
  size_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
  size_t events_ ABSL_GUARDED_BY(mu_) = 0;  // deliveries in items_
  uint64_t pending_dropped_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time first_drop_ ABSL_GUARDED_BY(mu_);
  absl::Time last_drop_ ABSL_GUARDED_BY(mu_);
  uint64_t dropped_total_ ABSL_GUARDED_BY(mu_) = 0;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace stateside::realtime

#endif  // STATESIDE_SIDECAR_REALTIME_SUBSCRIBER_QUEUE_H_
