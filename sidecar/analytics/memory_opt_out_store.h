// The embedded opt-out store: flags in this process's memory, each with its
// own expiry, at most `max_entries` of them (a Set on a full store first drops
// the expired ones, then answers RESOURCE_EXHAUSTED). Thread-safe: one mutex.
#ifndef STATESIDE_SIDECAR_ANALYTICS_MEMORY_OPT_OUT_STORE_H_
#define STATESIDE_SIDECAR_ANALYTICS_MEMORY_OPT_OUT_STORE_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "sidecar/analytics/opt_out_store.h"

namespace stateside {

class MemoryOptOutStore final : public OptOutStore {
 public:
  // REQUIRES: max_entries > 0.
  explicit MemoryOptOutStore(size_t max_entries);

  MemoryOptOutStore(const MemoryOptOutStore&) = delete;
  MemoryOptOutStore& operator=(const MemoryOptOutStore&) = delete;

  absl::Status Set(std::string_view tag, bool opted_out, absl::Time now,
                   absl::Time expiry) override;
  absl::StatusOr<bool> Get(std::string_view tag, absl::Time now) override;
  absl::StatusOr<bool> Refile(std::string_view from, std::string_view to,
                              std::string_view sealed_subject,
                              absl::Time now) override;

  // Drops the flags expired at `now`; returns how many. O(entries).
  size_t Sweep(absl::Time now);
  // Flags held (including expired ones not yet swept).
  size_t size() const;

 private:
  size_t SweepLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Constant after construction.
  const size_t max_entries_;

  mutable absl::Mutex mu_;
  // tag -> expiry.
  absl::flat_hash_map<std::string, absl::Time> flags_ ABSL_GUARDED_BY(mu_);
  // Lower bound of the earliest expiry in flags_ (lowered on every write,
  // exact after a sweep), so a full store with nothing expired refuses in
  // O(1) instead of sweeping on every Set.
  absl::Time earliest_expiry_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
};

}  // namespace stateside

#endif  // STATESIDE_SIDECAR_ANALYTICS_MEMORY_OPT_OUT_STORE_H_
