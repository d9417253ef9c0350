// BuildParts: the sidecar's parts from a validated Config.
#include "sidecar/server/server_parts.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "sidecar/common/status_macros.h"
#include "sidecar/redis/redis_broker.h"
#include "sidecar/redis/redis_instance_registry.h"
#include "sidecar/redis/rewrap_sweep.h"
#include "sidecar/redis/session_change_relay.h"
#include "sidecar/session/memory_store.h"
#include "spdlog/spdlog.h"

namespace stateside {
namespace {

constexpr size_t kEphemeralSecretBytes = 32;
constexpr size_t kAes256KeyBytes = 32;

absl::StatusOr<std::vector<crypto::KeySpec>> EphemeralKey(
    RandomSource& random) {
  ASSIGN_OR_RETURN(std::string bytes,
                   RandomBytes(random, kAes256KeyBytes));
  std::vector<crypto::KeySpec> keys;
  keys.push_back({"ephemeral", std::move(bytes)});
  return keys;
}

// The Redis client's reports, as metrics.
class RedisMetricsSink final : public redis::RedisMetrics {
 public:
  explicit RedisMetricsSink(admin::Metrics* metrics) : metrics_(metrics) {}
  void CommandDone(absl::Duration rtt) override {
    metrics_->RedisCommand(absl::ToDoubleSeconds(rtt));
  }
  void BatchWritten(size_t commands) override { metrics_->PipelineBatch(commands); }
  void Error(std::string_view kind) override { metrics_->RedisError(kind); }
  void MasterChanged() override { metrics_->RedisMasterChanged(); }
  void Redirect(std::string_view kind) override { metrics_->RedisRedirect(kind); }
  void TopologyRefresh() override { metrics_->RedisTopologyRefresh(); }
  void Retry() override { metrics_->RedisRetry(); }

 private:
  admin::Metrics* const metrics_;
};

session::SessionPolicy PolicyOf(const Config& config) {
  session::SessionPolicy policy;
  policy.idle_ttl = config.idle_ttl;
  policy.absolute_ttl = config.absolute_ttl;
  policy.touch_granularity = config.touch_granularity;
  policy.limits.max_attributes = config.max_attributes;
  policy.limits.max_attribute_bytes = config.max_attribute_bytes;
  policy.limits.max_total_bytes = config.max_session_bytes;
  policy.limits.max_sessions_per_user = config.max_sessions_per_user;
  policy.limits.session_limit_policy = config.session_limit_end_oldest
                                           ? session::SessionLimitPolicy::kEndOldest
                                           : session::SessionLimitPolicy::kRefuse;
  return policy;
}

}  // namespace

ServerParts::~ServerParts() { StopThreads(); }

void ServerParts::StopThreads() {
  // The hub stops its broker; the broker uses the Redis client.
  hub.reset();
  broker.reset();
  realtime_cluster.reset();
  // The rewrap sweep's thread calls the Redis client: ended before it.
  rewrap.reset();
  // The relay's subscriber hands changes to the feed; it publishes through
  // the Redis client.
  change_relay.reset();
  // The Redis client's I/O thread may call back into its listeners: ended
  // while everything it touches is still alive.
  backend = Backend();
}

absl::StatusOr<std::unique_ptr<ServerParts>> BuildParts(
    Config& config, lifecycle::InstanceIdentity identity, ServerOptions options) {
  auto parts = std::make_unique<ServerParts>();
  ServerParts& p = *parts;
  p.clock = options.clock != nullptr ? options.clock : &p.system_clock;
  p.random = options.random != nullptr ? std::move(options.random) : crypto::NewSecureRandom();

  spdlog::info("configuration: {}",
               config.overrides.empty()
                   ? std::string("all defaults")
                   : absl::StrCat(absl::StrJoin(config.overrides, ", "),
                                  "; the rest default"));
  for (const std::string& line : config.summary) spdlog::debug("setting {}", line);
  for (const std::string& warning : config.warnings) spdlog::warn("{}", warning);

  std::vector<crypto::KeySpec> keys = std::move(config.encryption_keys);
  if (keys.empty()) {
    ASSIGN_OR_RETURN(keys, EphemeralKey(*p.random));
    spdlog::warn(
        "no SESSION_ENCRYPTION_KEY: using an ephemeral key, sessions die with "
        "this process");
  }
  auto keyring = crypto::Keyring::Create(std::move(keys));
  if (!keyring.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "SESSION_ENCRYPTION_KEY: ", keyring.status().message()));
  }
  p.keyring = *std::move(keyring);
  crypto::SealerOptions sealing;
  sealing.seal_version = config.envelope_version;
  sealing.clock = p.clock;
  p.sealer = std::make_unique<crypto::Sealer>(p.keyring.get(), p.random.get(),
                                             &p.key_mismatches, sealing);

  std::vector<std::string> secrets = std::move(config.session_secrets);
  if (secrets.empty()) {
    ASSIGN_OR_RETURN(std::string secret,
                     RandomBytes(*p.random, kEphemeralSecretBytes));
    secrets.push_back(std::move(secret));
    spdlog::warn(
        "no SESSION_SECRET: using an ephemeral cookie secret, cookies die "
        "with this process");
  }
  auto signer = crypto::CookieSigner::Create(std::move(secrets));
  if (!signer.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("SESSION_SECRET: ", signer.status().message()));
  }
  p.signer = *std::move(signer);

  if (!config.admin_token.empty()) {
    auto verifier = crypto::SecretVerifier::Create(config.admin_token, *p.random);
    if (!verifier.ok()) return verifier.status();
    p.admin_token = *std::move(verifier);
  }

  admin::MetricsOptions metrics_options;
  metrics_options.instance_id = identity.id;
  metrics_options.version = identity.version;
  metrics_options.clock = p.clock;
  p.metrics = std::make_unique<admin::Metrics>(std::move(metrics_options));
  p.session_events = std::make_unique<admin::MetricsSessionEvents>(p.metrics.get());

  ASSIGN_OR_RETURN(p.backend, MakeBackend(config));
  p.session_manager = std::make_unique<session::SessionManager>(
      p.backend.sessions.get(), p.sealer.get(), p.signer.get(), p.random.get(),
      p.clock, PolicyOf(config), p.session_events.get());
  p.opt_out_manager = std::make_unique<OptOutManager>(
      p.backend.opt_outs.get(), p.keyring.get(), p.clock, config.opt_out_ttl,
      p.sealer.get(),
      [metrics = p.metrics.get()](std::string_view key_id) { metrics->OptOutKeyRead(key_id); });

  p.request_ledger = std::make_unique<session::RequestLedger>(
      p.backend.requests.get(), p.keyring.get(), p.sealer.get(), p.random.get(), p.clock,
      config.request_id_ttl);

  p.instance = std::make_unique<lifecycle::Instance>(std::move(identity), p.clock);
  p.instance->set_backend(p.backend.name);
  p.session_changes = std::make_unique<session::ChangeFeed>(p.instance->id(), p.clock);
  p.session_manager->SetChangeSink(p.session_changes.get());
  if (auto* memory = dynamic_cast<session::MemorySessionStore*>(p.backend.sessions.get())) {
    memory->SetExpiryListener([manager = p.session_manager.get()](
                                  const session::StoredSession& expired) {
      manager->ReportExpired(expired);
    });
  }
  if (p.backend.redis != nullptr) {
    p.redis_metrics = std::make_unique<RedisMetricsSink>(p.metrics.get());
    p.backend.redis->SetMetrics(p.redis_metrics.get());
    p.registry = std::make_unique<redis::RedisInstanceRegistry>(
        p.backend.redis.get(), config.key_prefix,
        kHeartbeatsPerTtl * config.heartbeat_interval);
    redis::RewrapOptions rewrap_options;
    rewrap_options.prefix = config.key_prefix;
    rewrap_options.owner = p.instance->id();
    p.rewrap = std::make_unique<redis::RewrapSweep>(p.backend.redis.get(), p.sealer.get(), p.clock,
                                                   std::move(rewrap_options));
    ASSIGN_OR_RETURN(p.change_relay,
                     redis::RedisChangeRelay::Create(p.backend.redis.get(), p.sealer.get(),
                                                     p.session_changes.get(), config.key_prefix));
  }

  if (p.backend.redis != nullptr) {
    redis::RedisBrokerOptions broker_options;
    broker_options.prefix = config.key_prefix;
    broker_options.instance_id = p.instance->id();
    broker_options.sealer = p.sealer.get();
    broker_options.keyring = p.keyring.get();
    // Presence dies with the instance record: both are refreshed by the
    // heartbeat and live for the same number of heartbeats.
    broker_options.presence_ttl = kHeartbeatsPerTtl * config.heartbeat_interval;
    broker_options.history_bytes = config.room_history_bytes;
    ASSIGN_OR_RETURN(std::unique_ptr<redis::RedisBroker> broker,
                     redis::RedisBroker::Create(p.backend.redis.get(), broker_options));
    p.redis_broker = broker.get();
    p.broker = std::move(broker);
  } else {
    realtime::MemoryClusterOptions cluster_options;
    cluster_options.history_bytes = config.room_history_bytes;
    p.realtime_cluster = std::make_unique<realtime::MemoryCluster>(p.clock, cluster_options);
    p.broker = p.realtime_cluster->NewBroker(p.instance->id());
  }
  p.realtime_events = std::make_unique<MetricsRealtimeEvents>(p.metrics.get());
  realtime::HubOptions hub_options;
  hub_options.instance_id = p.instance->id();
  hub_options.max_rooms_per_connection = config.max_rooms_per_connection;
  hub_options.publish_rate_per_user = static_cast<double>(config.publish_rate_per_user);
  hub_options.publish_burst_per_user = static_cast<double>(config.publish_burst_per_user);
  p.hub = std::make_unique<realtime::RealtimeHub>(hub_options, p.broker.get(), p.clock,
                                                 p.realtime_events.get());
  return parts;
}

}  // namespace stateside
