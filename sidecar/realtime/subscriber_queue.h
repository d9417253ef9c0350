// One Subscribe stream's queue: the events for this instance's connections
// waiting to be written to the app. Bounded by a number of events and of
// payload bytes: when the app reads too slowly, new events are dropped for
// this subscriber only, counted, and a gap notice takes their place, so
// memory never grows without bound and the app learns what it lost.
//
// Each stream's sequence reaches the consumer once and in increasing order:
// the queue keeps a high-water mark per stream (StreamKey), the highest
// sequence it queued or a replay covered, and skips a live event at or below
// it (a duplicate, or one that arrived after a newer one: on Redis a
// sequence is assigned before the event is sent, so two publishers' events
// may cross). A mark not advanced for kMarkTtl is forgotten (a stream idle
// that long may restart at 1; arrivals cross by milliseconds), and so is
// every mark at a Redis loss window (Redis may have lost the counters).
//
// A queue made `holding` serves a resume (RealtimeHub::Resume): live events
// wait aside, under the same bounds, while the replay goes ahead of them
// (PushReplay); Release() then appends what waited, each checked against
// the marks the replay left, so the hand-off never repeats an event.
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
#include "absl/container/flat_hash_map.h"
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
  enum class Reason { kSubscriberOverflow, kRedisDisconnected, kResumeIncomplete };
  Reason reason = Reason::kSubscriberOverflow;
  uint64_t dropped = 0;  // kSubscriberOverflow
  absl::Time from;
  absl::Time to;
  // kResumeIncomplete: the stream, the resume point asked for, and the
  // first sequence replayed (0: none); those in between are lost.
  StreamRef stream;
  uint64_t after_sequence = 0;
  uint64_t first_sequence = 0;
};

// Exactly one of the two is set.
struct QueueItem {
  std::shared_ptr<const Delivery> delivery;
  std::optional<GapNotice> gap;
};

class SubscriberQueue {
 public:
  // How long a stream's high-water mark outlives its last advance.
  static constexpr absl::Duration kMarkTtl = absl::Minutes(1);

  SubscriberQueue(size_t max_events, size_t max_bytes, std::function<void()> wake,
                  bool holding = false);
  SubscriberQueue(const SubscriberQueue&) = delete;
  SubscriberQueue& operator=(const SubscriberQueue&) = delete;

  // Queues the delivery; false if it was dropped (queue full or closed).
  // True, with *stale set, if it was left out at or below its stream's
  // mark.
  bool Push(std::shared_ptr<const Delivery> delivery, absl::Time now, bool* stale = nullptr);
  // Queues a loss window of the broker; consecutive ones merge. A
  // kResumeIncomplete notice goes ahead of held events, like a replay.
  void PushGap(const GapNotice& gap);
  // The replay of a holding queue: queued ahead of the held live events.
  bool PushReplay(std::shared_ptr<const Delivery> delivery, absl::Time now);
  // Live events of `stream_key` (StreamKey) up to `sequence` are covered
  // by the replay.
  void Cover(const std::string& stream_key, uint64_t sequence, absl::Time now);
  // Ends holding: the held events follow, those at or below their stream's
  // mark left out.
  void Release(absl::Time now);
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
  // Appends to `into` (items_ or held_) within the bounds; false: dropped.
  bool PushLocked(std::deque<QueueItem>& into, std::shared_ptr<const Delivery> delivery,
                  absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // True if `delivery` is at or below its stream's mark (then it is left
  // out); otherwise it becomes the mark.
  bool StaleLocked(const Delivery& delivery, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Raises the mark of `stream_key` to `sequence`.
  void MarkLocked(const std::string& stream_key, uint64_t sequence, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  GapNotice TakeOverflowLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const size_t max_events_;
  const size_t max_bytes_;
  const std::function<void()> wake_;

  mutable absl::Mutex mu_;
  std::deque<QueueItem> items_ ABSL_GUARDED_BY(mu_);
  // Live events waiting for the replay (holding_); counted in events_, bytes_.
  std::deque<QueueItem> held_ ABSL_GUARDED_BY(mu_);
  bool holding_ ABSL_GUARDED_BY(mu_);
  // StreamKey -> the highest sequence queued or covered, and when.
  struct Mark {
    uint64_t sequence = 0;
    absl::Time at;
  };
  absl::flat_hash_map<std::string, Mark> marks_ ABSL_GUARDED_BY(mu_);
  absl::Time marks_swept_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
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
