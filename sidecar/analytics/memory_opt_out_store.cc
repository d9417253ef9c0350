// MemoryOptOutStore: opt-out flags in a hash map under a mutex.
#include "sidecar/analytics/memory_opt_out_store.h"

#include <algorithm>
#include <cassert>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "sidecar/common/string_view.h"

namespace stateside {

MemoryOptOutStore::MemoryOptOutStore(size_t max_entries)
    : max_entries_(max_entries) {
  assert(max_entries > 0);
}

absl::Status MemoryOptOutStore::Set(std::string_view tag, bool opted_out,
                                    absl::Time now, absl::Time expiry) {
  absl::MutexLock lock(&mu_);
  auto it = flags_.find(Sv(tag));
  // A flag that would already be expired is the same as no flag.
  if (!opted_out || expiry <= now) {
    if (it != flags_.end()) flags_.erase(it);
    return absl::OkStatus();
  }
  if (it != flags_.end()) {
    // Replaced, not extended: the newest Set says how long the flag lasts.
    // A shorter expiry may break the lower bound; keep it a lower bound.
    it->second = expiry;
    earliest_expiry_ = std::min(earliest_expiry_, expiry);
    return absl::OkStatus();
  }
  if (flags_.size() >= max_entries_ && now >= earliest_expiry_) {
    SweepLocked(now);
  }
  if (flags_.size() >= max_entries_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the memory opt-out store is full (", max_entries_, " entries)"));
  }
  flags_.emplace(std::string(tag), expiry);
  earliest_expiry_ = std::min(earliest_expiry_, expiry);
  return absl::OkStatus();
}

absl::StatusOr<bool> MemoryOptOutStore::Get(std::string_view tag,
                                            absl::Time now) {
  absl::MutexLock lock(&mu_);
  auto it = flags_.find(Sv(tag));
  if (it == flags_.end()) return false;
  if (now < it->second) return true;
  flags_.erase(it);
  return false;
}

absl::StatusOr<bool> MemoryOptOutStore::Refile(std::string_view from,
                                                std::string_view to,
                                                std::string_view /*sealed_subject*/,
                                                absl::Time now) {
  absl::MutexLock lock(&mu_);
  auto it = flags_.find(Sv(from));
  if (it == flags_.end()) return false;
  const absl::Time expiry = it->second;
  flags_.erase(it);
  if (expiry <= now) return false;
  // Same size as before the erase: never refused for being full.
  flags_.try_emplace(std::string(to), expiry);
  return true;
}

size_t MemoryOptOutStore::Sweep(absl::Time now) {
  absl::MutexLock lock(&mu_);
  return SweepLocked(now);
}

size_t MemoryOptOutStore::size() const {
  absl::MutexLock lock(&mu_);
  return flags_.size();
}

size_t MemoryOptOutStore::SweepLocked(absl::Time now) {
  size_t dropped = 0;
  absl::Time earliest = absl::InfiniteFuture();
  for (auto it = flags_.begin(); it != flags_.end();) {
    auto current = it++;  // erase() does not invalidate the others
    if (current->second <= now) {
      flags_.erase(current);
      ++dropped;
    } else {
      earliest = std::min(earliest, current->second);
    }
  }
  earliest_expiry_ = earliest;
  return dropped;
}

}  // namespace stateside
