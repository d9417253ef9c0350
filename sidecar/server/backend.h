// Backend selection: the stores behind the session and opt-out managers,
// chosen from the configuration. The one place that knows which backends
// exist: no REDIS_URL → the embedded memory stores; REDIS_URL → the Redis
// stores (not yet built into this binary: a clear error until the Redis
// layer is wired in here). Thread-compatible; the stores are thread-safe.
#ifndef STATESIDE_SIDECAR_SERVER_BACKEND_H_
#define STATESIDE_SIDECAR_SERVER_BACKEND_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "sidecar/analytics/opt_out_store.h"
#include "sidecar/server/config.h"
#include "sidecar/session/store.h"

namespace stateside {

struct Backend {
  std::string name;  // "memory", "redis" or "memory-fallback" (GetInstance)
  std::unique_ptr<SessionStore> sessions;
  std::unique_ptr<OptOutStore> opt_outs;
  // Periodic upkeep (the memory stores' expiry sweep): drops what expired by
  // `now` and returns how many entries went. Empty if the backend needs
  // none. Refers to the stores above: stop calling it before they go.
  std::function<size_t(absl::Time now)> sweep;
};

// FAILED_PRECONDITION naming REDIS_URL while Redis is not built in (exit 2).
absl::StatusOr<Backend> MakeBackend(const Config& config);

}  // namespace stateside

#endif  // STATESIDE_SIDECAR_SERVER_BACKEND_H_
