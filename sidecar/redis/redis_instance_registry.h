// The cluster registry on Redis: one hash, <prefix>instances, field = instance
// id, value = "<expiry ms> <JSON record>". Expiry is computed and checked with
// Redis's own clock (TIME inside the scripts), so clock skew between the
// instances cannot keep a dead record alive or drop a live one. A listing
// returns the live records and deletes the expired ones (HGETALL of a hash
// with one field per instance: no SCAN, no keyspace notifications). The hash
// itself carries a PEXPIRE of twice the longest record TTL as a backstop, so a
// cluster that is gone leaves nothing behind. One key: Cluster-ready.
#ifndef STATESIDE_SIDECAR_REDIS_REDIS_INSTANCE_REGISTRY_H_
#define STATESIDE_SIDECAR_REDIS_REDIS_INSTANCE_REGISTRY_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/time/time.h"
#include "sidecar/lifecycle/registry.h"
#include "sidecar/redis/redis_client.h"

namespace stateside::redis {

class RedisInstanceRegistry final : public lifecycle::InstanceRegistry {
 public:
  // REQUIRES: client outlives the registry; ttl >= 1 ms.
  RedisInstanceRegistry(RedisClient* client, std::string prefix, absl::Duration ttl);

  absl::Status Heartbeat(const lifecycle::InstanceRecord& record) override;
  absl::Status Remove(std::string_view id) override;
  void List(ListDone done) override;

  const std::string& key() const { return key_; }

  // The stored JSON form (exposed for tests): parsing what Encode wrote gives
  // the record back; anything else is INTERNAL.
  static std::string Encode(const lifecycle::InstanceRecord& record);
  static absl::StatusOr<lifecycle::InstanceRecord> Decode(std::string_view json);

 private:
  RedisClient* const client_;
  const std::string key_;
  const absl::Duration ttl_;
  const std::shared_ptr<const RedisScript> heartbeat_;
  const std::shared_ptr<const RedisScript> list_;
};

}  // namespace stateside::redis

#endif  // STATESIDE_SIDECAR_REDIS_REDIS_INSTANCE_REGISTRY_H_
