// Backend selection (memory now; Redis plugs in here).
#include "sidecar/server/backend.h"

#include <utility>

#include "sidecar/analytics/memory_opt_out_store.h"
#include "sidecar/session/memory_store.h"

namespace stateside {

absl::StatusOr<Backend> MakeBackend(const Config& config) {
  if (config.redis_enabled()) {
    return absl::FailedPreconditionError(
        "REDIS_URL: the Redis backend is not built into this binary yet");
  }
  auto sessions = std::make_unique<MemorySessionStore>(config.max_sessions);
  // Opt-outs share the session bound: one setting for "how much memory may
  // the embedded store take", and an opt-out entry is far smaller.
  auto opt_outs = std::make_unique<MemoryOptOutStore>(config.max_sessions);
  Backend backend;
  backend.name = "memory";
  backend.sweep = [s = sessions.get(), o = opt_outs.get()](absl::Time now) {
    return s->Sweep(now) + o->Sweep(now);
  };
  backend.sessions = std::move(sessions);
  backend.opt_outs = std::move(opt_outs);
  return backend;
}

}  // namespace stateside
