// RequestStore on Redis: one string key per request-id tag,
// "<prefix>r:{<tag>}", with a PEXPIRE of its lifetime; each step is a
// one-key script, so every key of a script is in one hash slot (Redis
// Cluster). See docs/REDIS_KEYS.md.
//
// Thread-safe. Claim blocks until Redis answers (REQUIRES: not on the
// client's I/O thread); Replace completes on the I/O thread.
#ifndef STATESIDE_SIDECAR_REDIS_REDIS_REQUEST_STORE_H_
#define STATESIDE_SIDECAR_REDIS_REDIS_REQUEST_STORE_H_

#include <string>
#include <string_view>

#include "sidecar/redis/redis_client.h"
#include "sidecar/session/request_store.h"

namespace stateside::redis {

class RedisRequestStore final : public session::RequestStore {
 public:
  // REQUIRES: client outlives the store.
  explicit RedisRequestStore(RedisClient* client, std::string prefix = "stateside:");

  absl::StatusOr<std::optional<std::string>> Claim(std::string_view key, std::string_view value,
                                                   absl::Time now, absl::Time until) override;
  void Replace(std::string_view key, std::string_view expected, std::string_view value,
               absl::Time now, absl::Time until, Done done) override;

  // "<prefix>r:{<tag>}"
  std::string Key(std::string_view tag) const;

 private:
  RedisClient* const client_;
  const std::string prefix_;
};

}  // namespace stateside::redis

#endif  // STATESIDE_SIDECAR_REDIS_REDIS_REQUEST_STORE_H_
