// One Subscribe stream's queue: the events for this instance's connections
// waiting to be written to the app. A GapQueue (common/gap_queue.h), bounded
// by a number of events and of payload bytes: when the app reads too slowly,
// new events are dropped for this subscriber only, counted, and a gap notice
// takes their place, so memory never grows without bound and the app learns
// what it lost.
//
// Thread-safe. `wake` runs (on the pushing thread, without the queue's lock)
// whenever the queue turns non-empty; the consumer then Pop()s until empty.
#ifndef STATESIDE_SIDECAR_REALTIME_SUBSCRIBER_QUEUE_H_
#define STATESIDE_SIDECAR_REALTIME_SUBSCRIBER_QUEUE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "sidecar/common/gap_queue.h"
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
  SubscriberQueue(size_t max_events, size_t max_bytes, std::function<void()> wake)
      : queue_(max_events, max_bytes, std::move(wake)) {}
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
  void Close() { queue_.Close(); }
  bool closed() const { return queue_.closed(); }

  size_t depth() const { return queue_.depth(); }
  uint64_t dropped_total() const { return queue_.dropped_total(); }

 private:
  GapQueue<std::shared_ptr<const Delivery>, GapNotice::Reason,
           GapNotice::Reason::kSubscriberOverflow>
      queue_;
};

}  // namespace stateside::realtime

#endif  // STATESIDE_SIDECAR_REALTIME_SUBSCRIBER_QUEUE_H_
