// OptOutStore on Redis: one string key per blinded subject tag, holding its
// expiry, with a PEXPIRE as garbage collection; Get compares the stored expiry
// with the caller's `now`. One round trip per call.
//
// Thread-safe; calls block until Redis answers. REQUIRES: not called on the
// client's I/O thread.
#ifndef STATESIDE_SIDECAR_REDIS_REDIS_OPT_OUT_STORE_H_
#define STATESIDE_SIDECAR_REDIS_REDIS_OPT_OUT_STORE_H_

#include <memory>
#include <string>
#include <string_view>

#include "sidecar/analytics/opt_out_store.h"
#include "sidecar/redis/redis_client.h"

namespace stateside::redis {

class RedisOptOutStore final : public OptOutStore {
 public:
  // REQUIRES: client outlives the store.
  explicit RedisOptOutStore(RedisClient* client, std::string prefix = "stateside:");

  absl::Status Set(std::string_view tag, bool opted_out, absl::Time now,
                   absl::Time expiry) override;
  absl::StatusOr<bool> Get(std::string_view tag, absl::Time now) override;
  absl::Status SetWithSubject(std::string_view tag, absl::Time now, absl::Time expiry,
                              std::string_view sealed_subject) override;
  // See RefileOptOut: single-key steps, so it works on Redis Cluster too.
  absl::StatusOr<bool> Refile(std::string_view from, std::string_view to,
                              std::string_view sealed_subject, absl::Time now) override;

  // "<prefix>o:{<tag>}"
  std::string Key(std::string_view tag) const;

 private:
  RedisClient* const client_;
  const std::string prefix_;
};

// The value of "<prefix>o:{<tag>}": the expiry in µs since the epoch, then,
// for flags set since key rotation became sweepable, one space and the
// subject sealed for the tag (an envelope: it names its key id).
std::string OptOutValue(absl::Time expiry, std::string_view sealed_subject);
// The parts of a stored value; false if it is not one.
bool ParseOptOutValue(std::string_view value, absl::Time* expiry,
                      std::string_view* sealed_subject);

// Moves the flag at `from_key` to `to_key` with `sealed_subject`, keeping its
// expiry and PTTL (a flag already at `to_key` is kept). The two keys lie in
// different hash slots, so this is three single-key steps rather than one
// script: read `from_key` (if it holds `expected`; "" = anything), SET NX
// `to_key`, then delete `from_key` only if it still holds what was read (a
// compare-and-set: a concurrent rewrite of the old flag wins and stays). A
// failure between steps leaves both flags, never neither. Returns 0:
// `from_key` absent, 1: moved, 2: it differs from `expected` (untouched) or
// changed meanwhile. Blocking. Shared with the rewrap sweep.
absl::StatusOr<int> RefileOptOut(RedisClient& client, const std::string& from_key,
                                 const std::string& to_key, std::string_view expected,
                                 std::string_view sealed_subject);

}  // namespace stateside::redis

#endif  // STATESIDE_SIDECAR_REDIS_REDIS_OPT_OUT_STORE_H_
