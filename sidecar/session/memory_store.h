// The embedded session store: every session in this process's memory, for a
// single instance or as the opt-in fallback when Redis is down. Implements the
// SessionStore contract exactly as the Redis store does (it holds the same
// encrypted envelopes), with expiry driven by the `now` the caller passes.
//
// Thread-safe: one mutex guards everything, so every operation is atomic with
// respect to every other (not only per session).
//
// Memory is bounded:
//  - at most `max_sessions` session records (live, or expired but not yet
//    swept). Create on a full store first sweeps the expired ones, then answers
//    RESOURCE_EXHAUSTED. Session size is bounded by the caller's
//    MutationLimits.
//  - at most `max_sessions` tombstones, counted separately so that logouts can
//    never fill the store for new logins. When that table is full (after
//    dropping expired tombstones) an arbitrary tombstone is dropped early. That
//    is safe here, unlike on Redis: Update only ever modifies a session that is
//    present and live under the same lock, so a missing tombstone cannot let a
//    late write resurrect anything. Tombstones exist in this store only to keep
//    the contract identical (Create on a destroyed id → ALREADY_EXISTS).
//  - the user index holds exactly one entry per session record; entries go
//    with their session (Destroy, Sweep, or an expired session met on a read).
//  - at most `max_sessions` user epochs (one per user that logged out
//    everywhere within an absolute TTL). Every epoch value comes from one
//    counter, so an advance always yields a value never seen before; a user
//    with no entry reads `epoch_floor_`, which rises to the counter whenever
//    an entry goes (its time ran out, or the table was full). So a dropped
//    entry never reads as an older value (no ABA for the post-check of
//    SessionManager::Create); the price is that a Create of a user with no
//    entry that straddles such a drop sees a change and retires its session.
//  - a tombstone left by Retire also holds the successor's id. Should the
//    tombstone table be full, dropping one of those early can let a session
//    regenerated in the middle of a logout-everywhere escape it; the table
//    fills only with as many logouts as the store holds sessions.
#ifndef STATESIDE_SIDECAR_SESSION_MEMORY_STORE_H_
#define STATESIDE_SIDECAR_SESSION_MEMORY_STORE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "sidecar/session/store.h"

namespace stateside::session {

class MemorySessionStore final : public SessionStore {
 public:
  // REQUIRES: max_sessions > 0.
  explicit MemorySessionStore(size_t max_sessions);

  MemorySessionStore(const MemorySessionStore&) = delete;
  MemorySessionStore& operator=(const MemorySessionStore&) = delete;

  absl::Status Create(const StoredSession& session) override;
  absl::StatusOr<std::vector<std::string>> CreateCapped(
      const StoredSession& session, const UserCap& cap) override;
  absl::StatusOr<StoredSession> Get(std::string_view id,
                                    const ReadOptions& options) override;
  absl::StatusOr<StoredSession> Update(std::string_view id,
                                       const Mutation& mutation) override;
  absl::StatusOr<bool> Destroy(std::string_view id, absl::Time now,
                               absl::Time tombstone_until) override;
  absl::StatusOr<std::vector<StoredSession>> ListByUser(
      std::string_view user_tag, absl::Time now) override;
  absl::StatusOr<UserIndexPage> ListByUserPage(std::string_view user_tag,
                                               absl::Time now, absl::Time after,
                                               size_t limit) override;
  absl::Status Retire(std::string_view id, uint64_t expected_version,
                      std::string_view successor, absl::Time now,
                      absl::Time tombstone_until) override;
  absl::StatusOr<std::string> Successor(std::string_view id) override;
  absl::StatusOr<uint64_t> UserEpoch(std::string_view user_tag) override;
  absl::Status AdvanceUserEpoch(std::string_view user_tag, absl::Time now,
                                absl::Time until) override;

  // Drops the sessions that are no longer live at `now` and the tombstones
  // and user epochs that have run out. Returns how many entries (of all
  // kinds) it dropped. Each session dropped goes to the expiry listener
  // (metadata only), after the lock is released.
  // The server calls it periodically; O(number of entries).
  size_t Sweep(absl::Time now);

  // Told of every session Sweep drops (the session events' EXPIRED: an
  // expiry met by a read is the reader's to report instead). Runs on the
  // sweeping thread; must not block. REQUIRES: set before the first Sweep.
  void SetExpiryListener(std::function<void(const StoredSession&)> listener) {
    expiry_listener_ = std::move(listener);
  }

  // Session records held (live, or expired and not yet swept).
  size_t size() const;
  // Tombstones held.
  size_t tombstone_count() const;

 private:
  using SessionMap = absl::flat_hash_map<std::string, StoredSession>;
  struct Tombstone {
    absl::Time until;
    std::string successor;  // set by Retire
  };
  struct Epoch {
    uint64_t value;
    absl::Time until;
  };

  // Create's checks and insertion, under the lock.
  absl::Status CreateLocked(const StoredSession& session)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Removes the session at `it` and its user-index entry.
  void EraseLocked(SessionMap::iterator it) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // `expired` (if given) receives the metadata of the sessions dropped.
  size_t SweepSessionsLocked(absl::Time now,
                             std::vector<StoredSession>* expired = nullptr)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  size_t SweepTombstonesLocked(absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The live session with this id, or nullptr (an expired one is erased).
  StoredSession* FindLiveLocked(std::string_view id, absl::Time now,
                                bool* expired = nullptr)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AddTombstoneLocked(const std::string& id, absl::Time now,
                          absl::Time until, std::string successor = "")
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  size_t SweepEpochsLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Constant after construction (the listener: after SetExpiryListener).
  const size_t max_sessions_;
  std::function<void(const StoredSession&)> expiry_listener_;

  mutable absl::Mutex mu_;
  SessionMap sessions_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Tombstone> tombstones_ ABSL_GUARDED_BY(mu_);
  // user_tag -> revocation epoch (see the top of the file).
  absl::flat_hash_map<std::string, Epoch> epochs_ ABSL_GUARDED_BY(mu_);
  uint64_t epoch_counter_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t epoch_floor_ ABSL_GUARDED_BY(mu_) = 0;
  // user_tag -> ids of its session records (anonymous sessions not indexed).
  absl::flat_hash_map<std::string, absl::flat_hash_set<std::string>> by_user_
      ABSL_GUARDED_BY(mu_);
  // Lower bounds of the earliest expiry among sessions_ / tombstones_. Expiry
  // only ever moves later (a touch), so a stale value stays a lower bound;
  // while now < bound nothing can have expired and a full store answers
  // RESOURCE_EXHAUSTED without an O(n) sweep.
  absl::Time earliest_session_expiry_ ABSL_GUARDED_BY(mu_) =
      absl::InfiniteFuture();
  absl::Time earliest_tombstone_expiry_ ABSL_GUARDED_BY(mu_) =
      absl::InfiniteFuture();
};

}  // namespace stateside::session

#endif  // STATESIDE_SIDECAR_SESSION_MEMORY_STORE_H_
