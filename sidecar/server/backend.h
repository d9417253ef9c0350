// Backend selection: the stores behind the session and opt-out managers,
// chosen from the configuration. The one place that knows which backends
// exist: no REDIS_URL → the embedded memory stores; REDIS_URL → the Redis
// stores. Redis unreachable at start: with STATESIDE_FALLBACK=none the Redis
// stores are used anyway (fail closed: RPCs answer UNAVAILABLE and readiness
// stays false until Redis answers; the client reconnects by itself); with
// STATESIDE_FALLBACK=memory the embedded stores are taken instead, loudly.
// The choice is made once, at start: switching stores under live traffic
// would split the sessions between two places. Thread-compatible; the stores
// are thread-safe.
#ifndef STATESIDE_SIDECAR_SERVER_BACKEND_H_
#define STATESIDE_SIDECAR_SERVER_BACKEND_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "sidecar/analytics/opt_out_store.h"
#include "sidecar/redis/near_cache.h"
#include "sidecar/redis/redis_client.h"
#include "sidecar/server/config.h"
#include "sidecar/session/request_store.h"
#include "sidecar/session/store.h"

namespace stateside {

struct Backend {
  Backend() = default;
  Backend(Backend&&) = default;
  Backend& operator=(Backend&&) = default;
  // Closes the near cache first: its reader's destructor fails the session
  // store's outstanding reads, whose callbacks may read again on `redis`.
  ~Backend() {
    if (near_cache != nullptr) near_cache->Close();
  }

  std::string name;  // "memory", "redis" or "memory-fallback" (GetInstance)
  // STATESIDE_SESSION_NEAR_CACHE: the sessions' near cache (null when off).
  // Declared first: it outlives the client below, whose destructor fails
  // the session store's outstanding writes, whose callbacks invalidate here.
  std::unique_ptr<redis::SessionNearCache> near_cache;
  // The Redis connection the stores below use; null for the memory stores.
  // Declared before them so it outlives them.
  std::unique_ptr<redis::RedisClient> redis;
  std::unique_ptr<session::SessionStore> sessions;
  std::unique_ptr<OptOutStore> opt_outs;
  // The first answers of calls made with a request_id (RequestLedger).
  std::unique_ptr<session::RequestStore> requests;
  // Periodic upkeep (the memory stores' expiry sweep): drops what expired by
  // `now` and returns how many entries went. Empty if the backend needs
  // none. Refers to the stores above: stop calling it before they go.
  std::function<size_t(absl::Time now)> sweep;
  // The live sessions behind this backend (the memory store's count, an
  // estimate from samples on Redis), for stateside_sessions_live. Blocking.
  std::function<absl::StatusOr<int64_t>()> live_sessions;
};

// INVALID_ARGUMENT naming the setting for unusable Redis options (bad URL,
// unreadable TLS files). Waits up to the Redis connect timeout for a first
// connection, to decide on the fallback and to start ready when Redis is up.
absl::StatusOr<Backend> MakeBackend(const Config& config);

}  // namespace stateside

#endif  // STATESIDE_SIDECAR_SERVER_BACKEND_H_
