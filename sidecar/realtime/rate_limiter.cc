#include "sidecar/realtime/rate_limiter.h"

#include <algorithm>

#include "absl/strings/string_view.h"

namespace stateside::realtime {

double UserRateLimiter::Refilled(const Bucket& bucket, absl::Time now) const {
  // A clock that steps back refills nothing (and takes nothing away).
  const double elapsed = std::max(0.0, absl::ToDoubleSeconds(now - bucket.updated));
  return std::min(burst_, bucket.tokens + elapsed * rate_);
}

bool UserRateLimiter::Allow(std::string_view user, absl::Time now) {
  if (rate_ <= 0) return true;
  absl::MutexLock lock(&mu_);
  // Debian's Abseil has its own string_view: look up through it.
  auto it = buckets_.find(absl::string_view(user.data(), user.size()));
  if (it == buckets_.end()) {
    if (buckets_.size() >= max_users_) {
      absl::erase_if(buckets_, [&](const auto& entry) {
        return Refilled(entry.second, now) >= burst_;
      });
      if (buckets_.size() >= max_users_) return true;
    }
    it = buckets_.emplace(std::string(user), Bucket{burst_, now}).first;
  }
  Bucket& bucket = it->second;
  bucket.tokens = Refilled(bucket, now);
  bucket.updated = std::max(bucket.updated, now);
  if (bucket.tokens < 1) return false;
  bucket.tokens -= 1;
  return true;
}

}  // namespace stateside::realtime
