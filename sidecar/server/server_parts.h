// ServerParts: the sidecar's parts, built from a validated Config by
// BuildParts and run by Server (server.h): the random source, keyring,
// sealer and cookie signer, the admin token, the metrics, the backend stores
// and their managers, the instance, the cluster registry and the rewrap
// sweep (Redis backend), and realtime's broker and hub. Building serves
// nothing: no listener, no periodic task, no drain (the Redis client, if
// any, connects). Dependencies are handed in through constructors, in the
// order the fields are declared.
//
// Thread-safety: the fields are set by BuildParts and constant after; each
// part is thread-safe as its own header says.
#ifndef STATESIDE_SIDECAR_SERVER_SERVER_PARTS_H_
#define STATESIDE_SIDECAR_SERVER_SERVER_PARTS_H_

#include <memory>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "sidecar/admin/metrics.h"
#include "sidecar/analytics/opt_out_manager.h"
#include "sidecar/common/clock.h"
#include "sidecar/crypto/cookie.h"
#include "sidecar/crypto/envelope.h"
#include "sidecar/crypto/keyring.h"
#include "sidecar/crypto/random.h"
#include "sidecar/crypto/secret_verifier.h"
#include "sidecar/lifecycle/instance.h"
#include "sidecar/lifecycle/registry.h"
#include "sidecar/realtime/broker.h"
#include "sidecar/realtime/hub.h"
#include "sidecar/realtime/memory_broker.h"
#include "sidecar/server/backend.h"
#include "sidecar/server/config.h"
#include "sidecar/server/metric_adapters.h"
#include "sidecar/session/change_feed.h"
#include "sidecar/session/request_ledger.h"
#include "sidecar/session/session_manager.h"

namespace stateside {

namespace redis {
class RewrapSweep;
class RedisBroker;
class RedisChangeRelay;
}  // namespace redis

// A registry record (and realtime presence) lives this many heartbeat
// intervals: one or two lost heartbeats (a Redis blip) do not drop a live
// instance.
inline constexpr int kHeartbeatsPerTtl = 3;

// Seams for tests; production passes the defaults.
struct ServerOptions {
  const Clock* clock = nullptr;  // null: the system clock. Must outlive.
  std::unique_ptr<RandomSource> random;  // null: NewSecureRandom()
  absl::Duration sweep_interval = absl::Seconds(30);
};

struct ServerParts {
  ServerParts() = default;
  // StopThreads(), then the parts.
  ~ServerParts();
  // Ends what has threads calling other parts (or back into the Server)
  // before those parts: the hub (which stops its broker) and the rewrap
  // sweep, then the Redis client. Idempotent.
  void StopThreads();
  ServerParts(const ServerParts&) = delete;
  ServerParts& operator=(const ServerParts&) = delete;

  SystemClock system_clock;
  const Clock* clock = nullptr;  // options.clock or &system_clock
  std::unique_ptr<RandomSource> random;
  std::unique_ptr<crypto::Keyring> keyring;
  // Written by the key checks, read by sealer when an envelope fails.
  crypto::KeyMismatches key_mismatches;
  std::unique_ptr<crypto::Sealer> sealer;
  std::unique_ptr<crypto::CookieSigner> signer;
  // STATESIDE_ADMIN_TOKEN_FILE's token; null = none (POST /drain from
  // loopback only).
  std::unique_ptr<crypto::SecretVerifier> admin_token;
  std::unique_ptr<admin::Metrics> metrics;
  std::unique_ptr<admin::MetricsSessionEvents> session_events;
  // Feeds metrics from the Redis client (Redis backend only); outlives it.
  std::unique_ptr<redis::RedisMetrics> redis_metrics;
  Backend backend;
  std::unique_ptr<session::SessionManager> session_manager;
  // The session changes' watchers (WatchSessionEvents), fed by the manager
  // (and the memory store's sweep); on Redis relayed between instances.
  std::unique_ptr<session::ChangeFeed> session_changes;
  std::unique_ptr<redis::RedisChangeRelay> change_relay;  // Redis only
  std::unique_ptr<OptOutManager> opt_out_manager;
  // Retries with a request_id (Create, Regenerate, Publish) apply once.
  std::unique_ptr<session::RequestLedger> request_ledger;
  std::unique_ptr<lifecycle::Instance> instance;
  // The cluster registry (Redis backend only; null otherwise).
  std::unique_ptr<lifecycle::InstanceRegistry> registry;
  // The rewrap sweep (POST /keys/rewrap); null on the memory backend, whose
  // contents never outlive the restart that changes the keyring.
  std::unique_ptr<redis::RewrapSweep> rewrap;
  // Realtime: the in-process cluster (memory backend only), the broker and
  // the hub.
  std::unique_ptr<realtime::MemoryCluster> realtime_cluster;
  std::unique_ptr<realtime::Broker> broker;
  redis::RedisBroker* redis_broker = nullptr;  // broker, on Redis
  std::unique_ptr<MetricsRealtimeEvents> realtime_events;
  std::unique_ptr<realtime::RealtimeHub> hub;
};

// Builds every part from `config`, whose keys and secrets move out (the
// caller wipes the rest). With no key or secret configured (memory mode
// only; Config refuses it with Redis) an ephemeral one is generated and a
// warning logged. Errors: INVALID_ARGUMENT naming the setting, others as the
// backend reports them.
absl::StatusOr<std::unique_ptr<ServerParts>> BuildParts(
    Config& config, lifecycle::InstanceIdentity identity, ServerOptions options);

}  // namespace stateside

#endif  // STATESIDE_SIDECAR_SERVER_SERVER_PARTS_H_
