// The feed of session changes to this instance's watchers
// (SessionService.WatchSessionEvents): the session rules report every
// change here (SessionChanges); the feed hands it to each watcher that
// wants its kind and, through a Relay (Redis pub/sub, when configured), to
// the other instances, whose changes come back in through OnRemote.
//
// Each watcher has a bounded queue: a watcher that reads too slowly loses
// changes, counted and reported as one gap in their place, so the session
// calls never wait for a watcher and memory never grows with one. A loss
// of the relay's subscription is reported to every watcher as a gap.
//
// Thread-safe. `wake` runs on the reporting thread, without the feed's or
// the queue's lock, whenever a queue turns non-empty or closes.
#ifndef STATESIDE_SIDECAR_SESSION_CHANGE_FEED_H_
#define STATESIDE_SIDECAR_SESSION_CHANGE_FEED_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "sidecar/common/clock.h"
#include "sidecar/common/gap_queue.h"
#include "sidecar/session/session_change.h"

namespace stateside::session {

// Changes may have been lost.
struct ChangeGap {
  enum class Reason {
    kOverflow,     // the watcher's queue was full: `dropped` changes
    kRemoteLost,   // the relay's subscription was down during [from, to]
  };
  Reason reason = Reason::kOverflow;
  uint64_t dropped = 0;
  absl::Time from;
  absl::Time to;
};

// Exactly one of the two is set.
struct ChangeItem {
  std::shared_ptr<const SessionChange> change;
  std::optional<ChangeGap> gap;
};

// A bit per ChangeKind (1 << kind); 0 or kAllKinds: every kind.
inline constexpr uint32_t kAllKinds = 0x3e;
inline uint32_t KindBit(ChangeKind kind) { return 1u << static_cast<uint8_t>(kind); }

// One watcher's queue: a GapQueue (common/gap_queue.h) of the changes of
// the kinds it wants. Thread-safe.
class ChangeWatcher {
 public:
  // Bytes of changes (ids and names) a queue holds at most besides its
  // count: far above 1024 changes of usual size.
  static constexpr size_t kMaxBytes = 4 << 20;

  ChangeWatcher(uint32_t kinds, size_t max_events, std::function<void()> wake)
      : kinds_(kinds == 0 ? kAllKinds : kinds), queue_(max_events, kMaxBytes, std::move(wake)) {}
  ChangeWatcher(const ChangeWatcher&) = delete;
  ChangeWatcher& operator=(const ChangeWatcher&) = delete;

  bool Wants(ChangeKind kind) const { return (kinds_ & KindBit(kind)) != 0; }
  // Queues the change; false if it was dropped (full or closed).
  bool Push(std::shared_ptr<const SessionChange> change, absl::Time now);
  // Queues a loss window; back-to-back ones merge.
  void PushGap(const ChangeGap& gap);
  // The next item, or nullopt. Drops since the last queued change come out
  // as one kOverflow gap, where the changes would have been.
  std::optional<ChangeItem> Pop();
  // Pushes are refused from now on; Pop still drains the queue.
  void Close() { queue_.Close(); }
  bool closed() const { return queue_.closed(); }
  uint64_t dropped_total() const { return queue_.dropped_total(); }

 private:
  const uint32_t kinds_;
  GapQueue<std::shared_ptr<const SessionChange>, ChangeGap::Reason,
           ChangeGap::Reason::kOverflow>
      queue_;
};

class ChangeFeed final : public SessionChanges {
 public:
  // Carries this instance's changes to the others. Send must not block.
  class Relay {
   public:
    virtual ~Relay() = default;
    virtual void Send(const SessionChange& change) = 0;
    // A watcher was added (called without the feed's lock). A relay need
    // receive the other instances' changes only once someone here watches.
    // Returns the loss the new watcher starts with, if any: a window,
    // reaching into the future, in which the other instances' changes may
    // still be missing (one already reported to the watchers there were).
    virtual std::optional<ChangeGap> Watched() { return std::nullopt; }
    // The last watcher was removed (called without the feed's lock; one
    // may have been added again since, which the relay reads off
    // watchers()). A relay may stop receiving until the next Watched.
    virtual void Unwatched() {}
  };

  // Changes a watcher's queue holds before it drops.
  static constexpr size_t kQueueEvents = 1024;

  // REQUIRES: clock outlives the feed.
  ChangeFeed(std::string instance_id, const Clock* clock, size_t queue_events = kQueueEvents);

  // `relay` outlives the feed or is unset (nullptr) first, while no change
  // is being reported. From then on the relay's Watched is called for each
  // watcher added and Unwatched when the last is removed; watchers added
  // before are the relay's to find (watchers()).
  void SetRelay(Relay* relay);

  // A change this instance made: stamped with its origin, queued to the
  // watchers that want its kind, then relayed.
  void OnChange(SessionChange change) override;
  // A change another instance relayed.
  void OnRemote(SessionChange change);
  // The relay's subscription was down during [from, to]: every watcher
  // gets a kRemoteLost gap.
  void OnRemoteLost(absl::Time from, absl::Time to);

  // A new watcher of `kinds` (KindBit mask; 0: every kind). After Shutdown
  // its queue is born closed. Its queue starts with the relay's loss still
  // open, if any (Relay::Watched).
  std::shared_ptr<ChangeWatcher> AddWatcher(uint32_t kinds, std::function<void()> wake);
  // Removes a watcher; the relay is told when it was the last
  // (Relay::Unwatched).
  void RemoveWatcher(const std::shared_ptr<ChangeWatcher>& watcher);
  // Closes every queue (streams end once drained); later watchers are born
  // closed.
  void Shutdown();

  size_t watchers() const;
  const std::string& instance_id() const { return instance_id_; }

 private:
  void Deliver(std::shared_ptr<const SessionChange> change);

  // Constant after construction.
  const std::string instance_id_;
  const Clock* const clock_;
  const size_t queue_events_;
  std::atomic<Relay*> relay_{nullptr};

  mutable absl::Mutex mu_;
  std::vector<std::shared_ptr<ChangeWatcher>> watchers_ ABSL_GUARDED_BY(mu_);
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace stateside::session

#endif  // STATESIDE_SIDECAR_SESSION_CHANGE_FEED_H_
