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
#ifndef STATESIDE_SIDECAR_SESSION_MEMORY_STORE_H_
#define STATESIDE_SIDECAR_SESSION_MEMORY_STORE_H_

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "sidecar/session/store.h"

namespace stateside {

class MemorySessionStore final : public SessionStore {
 public:
  // REQUIRES: max_sessions > 0.
  explicit MemorySessionStore(size_t max_sessions);

  MemorySessionStore(const MemorySessionStore&) = delete;
  MemorySessionStore& operator=(const MemorySessionStore&) = delete;

  absl::Status Create(const StoredSession& session) override;
  absl::StatusOr<StoredSession> Get(std::string_view id,
                                    const ReadOptions& options) override;
  absl::StatusOr<StoredSession> Update(std::string_view id,
                                       const Mutation& mutation) override;
  absl::StatusOr<bool> Destroy(std::string_view id, absl::Time now,
                               absl::Time tombstone_until) override;
  absl::StatusOr<std::vector<StoredSession>> ListByUser(
      std::string_view user_tag, absl::Time now) override;

  // Drops the sessions that are no longer live at `now` and the tombstones
  // that have run out. Returns how many entries (of both kinds) it dropped.
  // The server calls it periodically; O(number of entries).
  size_t Sweep(absl::Time now);

  // Session records held (live, or expired and not yet swept).
  size_t size() const;
  // Tombstones held.
  size_t tombstone_count() const;

 private:
  using SessionMap = absl::flat_hash_map<std::string, StoredSession>;

  // Removes the session at `it` and its user-index entry.
  void EraseLocked(SessionMap::iterator it) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  size_t SweepSessionsLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  size_t SweepTombstonesLocked(absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The live session with this id, or nullptr (an expired one is erased).
  StoredSession* FindLiveLocked(std::string_view id, absl::Time now,
                                bool* expired = nullptr)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AddTombstoneLocked(const std::string& id, absl::Time now,
                          absl::Time until) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Constant after construction.
  const size_t max_sessions_;

  mutable absl::Mutex mu_;
  SessionMap sessions_ ABSL_GUARDED_BY(mu_);
  // id -> tombstone_until.
  absl::flat_hash_map<std::string, absl::Time> tombstones_ ABSL_GUARDED_BY(mu_);
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

}  // namespace stateside

#endif  // STATESIDE_SIDECAR_SESSION_MEMORY_STORE_H_
