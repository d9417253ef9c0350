// OptOutStore on Redis: one string key per blinded subject tag, holding its
// expiry, with a PEXPIRE as garbage collection; Get compares the stored expiry
// with the caller's `now`. One round trip per call.
//
// Thread-safe; calls block until Redis answers. REQUIRES: not called on the
// client's I/O thread.
#ifndef STATESIDE_SIDECAR_REDIS_REDIS_OPT_OUT_STORE_H_
#define STATESIDE_SIDECAR_REDIS_REDIS_OPT_OUT_STORE_H_

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

  // "<prefix>o:{<tag>}"
  std::string Key(std::string_view tag) const;

 private:
  RedisClient* const client_;
  const std::string prefix_;
};

}  // namespace stateside::redis

#endif  // STATESIDE_SIDECAR_REDIS_REDIS_OPT_OUT_STORE_H_
