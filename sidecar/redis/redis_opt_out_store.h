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
  // One EVALSHA touching `from` and `to`: two keys in different hash slots,
  // so (like the realtime scripts) it needs a single Redis, not Cluster.
  absl::StatusOr<bool> Refile(std::string_view from, std::string_view to,
                              std::string_view sealed_subject, absl::Time now) override;

  // "<prefix>o:{<tag>}"
  std::string Key(std::string_view tag) const;

 private:
  RedisClient* const client_;
  const std::string prefix_;
  const std::shared_ptr<const RedisScript> refile_;
};

// The value of "<prefix>o:{<tag>}": the expiry in µs since the epoch, then,
// for flags set since key rotation became sweepable, one space and the
// subject sealed for the tag (an envelope: it names its key id).
std::string OptOutValue(absl::Time expiry, std::string_view sealed_subject);
// The parts of a stored value; false if it is not one.
bool ParseOptOutValue(std::string_view value, absl::Time* expiry,
                      std::string_view* sealed_subject);

// ARGV: expected current value of KEYS[1] ('' = any), sealed subject.
// Moves KEYS[1] to KEYS[2] keeping its expiry and PTTL (KEYS[2] is kept if
// it exists). Returns 0: KEYS[1] absent, 1: moved, 2: KEYS[1] differs from
// the expected value (untouched). Shared with the rewrap sweep.
extern const char kOptOutRefileScript[];

}  // namespace stateside::redis

#endif  // STATESIDE_SIDECAR_REDIS_REDIS_OPT_OUT_STORE_H_
