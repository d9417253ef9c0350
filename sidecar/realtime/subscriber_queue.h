// One Subscribe stream's queue: the events for this instance's connections
// waiting to be written to the app. Bounded by a number of events and of
// payload bytes: when the app reads too slowly, new events are dropped for
// this subscriber only, counted, and a gap notice takes their place, so
// memory never grows without bound and the app learns what it lost.
//
// A queue made `holding` serves a resume (RealtimeHub::Resume): live events
// wait aside, under the same bounds, while the replay goes ahead of them
// (PushReplay); Release() then appends what waited, minus what the replay
// covered. After it too, a live event at or below its stream's covered
// sequence is skipped, not dropped (it may still have been on its way), until
// one past it arrives: each sequence reaches the consumer once.
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
  SubscriberQueue(size_t max_events, size_t max_bytes, std::function<void()> wake,
                  bool holding = false);
  SubscriberQueue(const SubscriberQueue&) = delete;
  SubscriberQueue& operator=(const SubscriberQueue&) = delete;

  // Queues the delivery; false if it was dropped (queue full or closed).
  bool Push(std::shared_ptr<const Delivery> delivery, absl::Time now);
  // Queues a loss window of the broker; consecutive ones merge. A
  // kResumeIncomplete notice goes ahead of held events, like a replay.
  void PushGap(const GapNotice& gap);
  // The replay of a holding queue: queued ahead of the held live events.
  bool PushReplay(std::shared_ptr<const Delivery> delivery, absl::Time now);
  // Live events of `stream_key` (StreamKey) up to `sequence` are covered
  // by the replay.
  void Cover(const std::string& stream_key, uint64_t sequence);
  // Ends holding: the held events follow, the covered ones left out.
  void Release();
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
  // True if a live `delivery` is a sequence the replay covered.
  bool CoveredLocked(const Delivery& delivery) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  GapNotice TakeOverflowLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const size_t max_events_;
  const size_t max_bytes_;
  const std::function<void()> wake_;

  mutable absl::Mutex mu_;
  std::deque<QueueItem> items_ ABSL_GUARDED_BY(mu_);
  // Live events waiting for the replay (holding_); counted in events_, bytes_.
  std::deque<QueueItem> held_ ABSL_GUARDED_BY(mu_);
  bool holding_ ABSL_GUARDED_BY(mu_);
  // StreamKey -> the highest sequence the replay delivered or skipped.
  absl::flat_hash_map<std::string, uint64_t> covered_ ABSL_GUARDED_BY(mu_);
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
