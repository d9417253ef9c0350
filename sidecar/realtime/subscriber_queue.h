// One Subscribe stream's queue: the events for this instance's connections
// waiting to be written to the app. Bounded by a number of events and of
// payload bytes: when the app reads too slowly, new events are dropped for
// this subscriber only, counted, and a gap notice takes their place, so
// memory never grows without bound and the app learns what it lost.
//
// A queue made `holding` serves a resume (RealtimeHub::Resume): live events
// wait aside, under the same bounds, while the replay goes ahead of them
// (PushReplay). Each resumed stream then gets a cover (Cover): the replay's
// upper bound N, everything at or below N that the log held having been
// replayed (the rest at or below N is in the kResumeIncomplete notice
// already queued). Release() appends what waited, leaving out what a cover
// holds, and for kCoverTtl after the resume later live arrivals at or below
// N are left out too (a replayed event that arrives live, or one that
// crossed a newer one: on Redis a user stream's sequence is assigned and
// logged before the event is sent). A Redis loss window keeps the covers:
// what was replayed was delivered. Streams no resume named have no covers:
// their events pass in arrival order, a crossed one late after a newer one.
// The price of the window: a stream whose sequence restarts within kCoverTtl
// of the resume (its log evicted or its counter lost) has its events up to N
// left out until the window ends.
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
  // How long a resume's covers last: arrivals cross by milliseconds.
  static constexpr absl::Duration kCoverTtl = absl::Seconds(30);

  SubscriberQueue(size_t max_events, size_t max_bytes, std::function<void()> wake,
                  bool holding = false);
  SubscriberQueue(const SubscriberQueue&) = delete;
  SubscriberQueue& operator=(const SubscriberQueue&) = delete;

  // Queues the delivery; false if it was dropped (queue full or closed).
  // True, with *stale set, if a resume's cover left it out.
  bool Push(std::shared_ptr<const Delivery> delivery, absl::Time now, bool* stale = nullptr);
  // Queues a loss window of the broker; consecutive ones merge. A
  // kResumeIncomplete notice goes ahead of held events, like a replay.
  void PushGap(const GapNotice& gap);
  // The replay of a holding queue: queued ahead of the held live events.
  bool PushReplay(std::shared_ptr<const Delivery> delivery, absl::Time now);
  // Live events of `stream_key` (StreamKey) up to `sequence` are covered
  // by the replay, until now + kCoverTtl. One per resume point.
  void Cover(const std::string& stream_key, uint64_t sequence, absl::Time now);
  // Ends holding: the held events follow, those a cover holds left out.
  // Returns how many were left out.
  uint64_t Release(absl::Time now);
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
  // True if a live cover holds `delivery` (then it is left out).
  bool CoveredLocked(const Delivery& delivery, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  GapNotice TakeOverflowLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const size_t max_events_;
  const size_t max_bytes_;
  const std::function<void()> wake_;

  mutable absl::Mutex mu_;
  std::deque<QueueItem> items_ ABSL_GUARDED_BY(mu_);
  // Live events waiting for the replay (holding_); counted in events_, bytes_.
  std::deque<QueueItem> held_ ABSL_GUARDED_BY(mu_);
  bool holding_ ABSL_GUARDED_BY(mu_);
  // StreamKey -> the replay's upper bound, and when the cover ends. At most
  // one per resume point; empty (the fast path) for a queue that did not
  // resume, and again once kCoverTtl passed.
  struct CoverEntry {
    uint64_t sequence = 0;
    absl::Time until;
  };
  absl::flat_hash_map<std::string, CoverEntry> covers_ ABSL_GUARDED_BY(mu_);
  absl::Time covers_until_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();  // the latest end
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
