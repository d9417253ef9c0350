// Backend selection: the memory stores or the Redis stores.
#include "sidecar/server/backend.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "sidecar/common/status_macros.h"

#include "sidecar/analytics/memory_opt_out_store.h"
#include "sidecar/redis/redis_opt_out_store.h"
#include "sidecar/redis/redis_request_store.h"
#include "sidecar/session/memory_request_store.h"
#include "sidecar/redis/redis_options.h"
#include "sidecar/redis/redis_session_store.h"
#include "sidecar/session/memory_store.h"
#include "spdlog/spdlog.h"

namespace stateside {

namespace {

Backend MakeMemoryBackend(const Config& config, std::string name) {
  auto sessions = std::make_unique<session::MemorySessionStore>(config.max_sessions);
  // Opt-outs share the session bound: one setting for "how much memory may
  // the embedded store take", and an opt-out entry is far smaller.
  auto opt_outs = std::make_unique<MemoryOptOutStore>(config.max_sessions);
  auto requests = std::make_unique<session::MemoryRequestStore>(config.max_sessions);
  Backend backend;
  backend.name = std::move(name);
  backend.sweep = [s = sessions.get(), o = opt_outs.get(), r = requests.get()](absl::Time now) {
    return s->Sweep(now) + o->Sweep(now) + r->Sweep(now);
  };
  backend.live_sessions = [s = sessions.get()]() -> absl::StatusOr<int64_t> {
    return static_cast<int64_t>(s->size());
  };
  backend.sessions = std::move(sessions);
  backend.opt_outs = std::move(opt_outs);
  backend.requests = std::move(requests);
  return backend;
}

// The options of every Redis connection the sidecar makes (the stores'
// client, the near cache's reader and invalidation connection).
absl::StatusOr<redis::RedisOptions> MakeRedisOptions(const RedisConfig& config) {
  redis::RedisOptions options;
  options.connections = config.connections;
  options.connect_timeout = config.connect_timeout;
  options.command_timeout = config.command_timeout;
  options.tls.ca_file = config.tls_ca_file;
  options.tls.cert_file = config.tls_cert_file;
  options.tls.key_file = config.tls_key_file;
  options.tls.server_name = config.tls_server_name;
  options.topology = config.topology;
  options.sentinel_master = config.sentinel_master;
  options.sentinel_username = config.sentinel_username;
  options.sentinel_password = config.sentinel_password;
  options.wait_replicas = config.wait_replicas;
  options.wait_timeout = config.wait_timeout;
  auto parsed = redis::ParseRedisUrl(config.url, std::move(options));
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("REDIS_URL: ", parsed.status().message()));
  }
  return parsed;
}

}  // namespace

absl::StatusOr<Backend> MakeBackend(const Config& config) {
  if (!config.redis_enabled()) return MakeMemoryBackend(config, "memory");

  ASSIGN_OR_RETURN(redis::RedisOptions options, MakeRedisOptions(config.redis));
  auto created = redis::RedisClient::Create(options);
  if (!created.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("REDIS_URL: ", created.status().message()));
  }
  std::unique_ptr<redis::RedisClient> client = *std::move(created);
  if (!client->WaitConnected(config.redis.connect_timeout)) {
    const absl::Status why = client->last_error();
    // The sentinels answered that they monitor no such master: a
    // configuration error (REDIS_SENTINEL_MASTER), never a fallback.
    if (config.redis.topology == redis::RedisTopology::kSentinel &&
        absl::IsFailedPrecondition(why) &&
        absl::StrContains(why.message(), "REDIS_SENTINEL_MASTER")) {
      return absl::InvalidArgumentError(why.message());
    }
    if (config.redis.fallback == Fallback::kMemory) {
      spdlog::error(
          "REDIS NOT REACHABLE ({}): STATESIDE_FALLBACK=memory, serving from "
          "the EMBEDDED MEMORY STORE. Sessions are NOT shared with other "
          "instances and die with this process.",
          std::string(why.message()));
      return MakeMemoryBackend(config, "memory-fallback");
    }
    spdlog::error(
        "redis not reachable yet ({}): not ready, session calls answer "
        "UNAVAILABLE until it is (STATESIDE_FALLBACK=none)",
        std::string(why.message()));
  }
  Backend backend;
  backend.name = "redis";
  if (config.near_cache) {
    ASSIGN_OR_RETURN(backend.near_cache,
                     redis::SessionNearCache::Create(options, config.near_cache_bytes));
    spdlog::info("session near cache on (bound {} bytes)", config.near_cache_bytes);
    backend.near_cache->SetStoreClient(client.get());
    backend.near_cache->SetArmErrorListener([](const std::string& error) {
      if (error.empty()) {
        spdlog::info("session near cache armed (tracking confirmed)");
      } else {
        spdlog::warn("session near cache not armed, reads go to Redis uncached until it is: {}",
                     error);
      }
    });
  }
  auto sessions = std::make_unique<redis::RedisSessionStore>(client.get(), config.key_prefix,
                                                             backend.near_cache.get());
  backend.live_sessions = [s = sessions.get()] { return s->EstimateLiveSessions(); };
  backend.sessions = std::move(sessions);
  backend.opt_outs =
      std::make_unique<redis::RedisOptOutStore>(client.get(), config.key_prefix);
  backend.requests =
      std::make_unique<redis::RedisRequestStore>(client.get(), config.key_prefix);
  backend.redis = std::move(client);
  return backend;
}

}  // namespace stateside
