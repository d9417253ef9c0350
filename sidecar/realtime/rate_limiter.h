// Token buckets per user: at most `rate` events per second on average, and
// `burst` at once. Per instance (each sidecar keeps its own buckets), so a
// user whose publishes spread over N instances gets up to N times the rate:
// the bound is on what one instance writes, cheaply, without a Redis round
// trip per publish.
//
// Memory is bounded: at most `max_users` buckets. A full bucket holds
// nothing worth keeping, so when the table is full those are dropped; if
// every bucket is still in use, a new user's publish is allowed untracked
// (the cap yields before memory does).
//
// Thread-safe.
#ifndef STATESIDE_SIDECAR_REALTIME_RATE_LIMITER_H_
#define STATESIDE_SIDECAR_REALTIME_RATE_LIMITER_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace stateside::realtime {

class UserRateLimiter {
 public:
  // rate 0 = no limit (Allow always true). REQUIRES: burst >= 1.
  UserRateLimiter(double rate, double burst, size_t max_users = 65536)
      : rate_(rate), burst_(burst), max_users_(max_users) {}

  // Takes one token of `user`'s bucket; false if it is empty.
  bool Allow(std::string_view user, absl::Time now);

  double rate() const { return rate_; }

 private:
  struct Bucket {
    double tokens;
    absl::Time updated;
  };
  double Refilled(const Bucket& bucket, absl::Time now) const;

  const double rate_;
  const double burst_;
  const size_t max_users_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Bucket> buckets_ ABSL_GUARDED_BY(mu_);
};

}  // namespace stateside::realtime

#endif  // STATESIDE_SIDECAR_REALTIME_RATE_LIMITER_H_
