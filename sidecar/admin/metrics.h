// The sidecar's Prometheus metrics: one prometheus-cpp registry holding every
// stateside_* family, typed methods to record into it, and Serialize() for
// GET /metrics (text format 0.0.4). Labels are low-cardinality by design:
// method and code names, error kinds, key ids — never session or user ids —
// and each labelled family is capped (kMaxSeriesPerFamily; extra values are
// counted under "other") so a misbehaving caller cannot grow it without bound.
//
// Thread-safe: every method may be called from any thread concurrently
// (RPC threads, the Redis loop, the admin thread); recording never blocks on
// a scrape for longer than a short internal lock. The recordings of the data
// path (RecordRpc, RedisCommand, PipelineBatch, KeyUsedForRead,
// RealtimeDelivered) take no lock at all and build no label string: they add
// to per-thread copies (sharded_metrics.h) that Serialize and Values sum into
// the prometheus-cpp families first, so what /metrics exports is unchanged.
#ifndef STATESIDE_SIDECAR_ADMIN_METRICS_H_
#define STATESIDE_SIDECAR_ADMIN_METRICS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "sidecar/common/clock.h"
#include "sidecar/session/session_events.h"

namespace prometheus {
class Registry;
}

namespace stateside::admin {

struct MetricsOptions {
  std::string instance_id;  // stateside_build_info{instance}
  std::string version;      // stateside_build_info{version}
  // Uptime is measured on this clock from construction. Null: the system
  // clock. REQUIRES: outlives the Metrics.
  const Clock* clock = nullptr;
};

// What stateside_drain_state reports (STOPPED is never scraped: the process
// is exiting).
enum class DrainPhase { kServing, kDraining, kDrained };

// The gRPC name of a status code number ("OK", "NOT_FOUND", ...: gRPC's and
// absl's codes share numbers and names); "UNKNOWN" for a number out of range.
std::string_view GrpcCodeName(int code);

class Metrics {
 public:
  static constexpr std::string_view kContentType =
      "text/plain; version=0.0.4; charset=utf-8";
  static constexpr size_t kMaxSeriesPerFamily = 256;

  explicit Metrics(MetricsOptions options);
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // --- RPCs. method: e.g. "SessionService/Get"; code: the gRPC code name,
  // e.g. "OK", "NOT_FOUND" (plain strings: no gRPC dependency here).
  void RpcStarted();   // stateside_rpc_in_flight + 1
  void RpcFinished();  // stateside_rpc_in_flight - 1
  // stateside_offload_waiting: calls queued for a thread of the gRPC
  // server's offload pool (rpc/offload.h), + 1 as one is queued, - 1 as it
  // starts.
  void OffloadQueued();
  void OffloadStarted();
  // stateside_rpc_requests_total{method,code} + 1 and
  // stateside_rpc_duration_seconds{method} observes `seconds`.
  void RecordRpc(std::string_view method, std::string_view code,
                 double seconds);
  // The same with the code as its number (GrpcCodeName): no lock, no label
  // string, the method found among those seen before by comparison only.
  void RecordRpc(std::string_view method, int code, double seconds);

  // --- Redis.
  void RedisCommand(double seconds);       // one command's round trip
  void RedisError(std::string_view kind);  // e.g. "io", "timeout", "reply"
  void RedisReconnected();
  void RedisMasterChanged();               // Sentinel: a failover was followed
  // Cluster: a redirect followed ("moved", "ask"), a slot map read, a
  // command resent after a refusal or TRYAGAIN/CLUSTERDOWN/LOADING.
  void RedisRedirect(std::string_view kind);
  void RedisTopologyRefresh();
  void RedisRetry();
  void SetRedisConnected(bool connected);
  // Key ids whose check value in Redis is another key's (redis/key_check.h).
  void SetKeyMismatches(size_t key_ids);
  void PipelineBatch(size_t commands);     // commands written in one batch

  // --- Sessions (the session rules report through MetricsSessionEvents).
  void SessionCreated();
  void SessionDestroyed();
  void SessionsExpired(uint64_t n = 1);  // seen expired by a store
  void SessionNotFound(session::NotFoundCause cause);
  void DecryptFailed(std::string_view reason);
  void KeyUsedForRead(std::string_view key_id);
  // stateside_optout_key_reads_total{key_id}: an opt-out flag found under
  // this key's tag (the opt-out counterpart of KeyUsedForRead).
  void OptOutKeyRead(std::string_view key_id);
  void VersionConflict();
  // Approximate sessions in the cluster, from whoever knows it cheaply.
  void SetSessionsLive(int64_t n);

  // --- The sessions' near cache (STATESIDE_SESSION_NEAR_CACHE): its
  // cumulative counts (the counters move to them) and its size.
  struct NearCacheStats {
    uint64_t hits = 0;
    uint64_t misses = 0;
    uint64_t fills_refused = 0;
    uint64_t invalidations = 0;
    uint64_t flushes = 0;
    uint64_t evictions = 0;
    int64_t entries = 0;
    int64_t bytes = 0;
    bool armed = false;
    uint64_t fills = 0;
    uint64_t arm_failures = 0;
  };
  // Race-free: concurrent callers (a scrape and the status page) never
  // count a difference twice.
  void SetNearCache(const NearCacheStats& stats);

  // --- Apps and drain.
  void SetAppConnections(int64_t n);  // registered app connections here
  void SetDrainState(DrainPhase phase);
  // One drain from signal to done; timed_out: the app never reported.
  void DrainFinished(double seconds, bool timed_out);
  void ForcedExit();

  // --- Admin listener. stateside_admin_requests_refused_total{route,reason}:
  // route "/drain" with reason "not_loopback", "missing_token" or
  // "bad_token" (access.h); route "*" with "too_many_connections" for a
  // connection closed at accept by a connection cap.
  void AdminRequestRefused(std::string_view route, std::string_view reason);
  // A call refused by a cap: "sessions_per_user", "rooms_per_connection",
  // "publish_rate_per_user".
  void CapRefused(std::string_view cap);
  // stateside_frame_connections_closed_total{reason}: a frame-socket
  // connection closed by the sidecar: "zero_length", "oversized",
  // "malformed", "too_many_calls" (a broken stream) or "refused_uid" (not
  // in STATESIDE_ALLOWED_UIDS).
  void FrameConnectionClosed(std::string_view reason);

  // --- Realtime. target: "room", "user", "connection", "all"; drop
  // reasons: "overflow", "no_target", "no_subscriber", "stale",
  // "undecryptable", "malformed"; gap reasons: "overflow", "redis".
  void RealtimePublished(std::string_view target);
  void RealtimeReceived();  // an event arrived from the broker
  // An event was written to a Subscribe stream, `seconds` after publish.
  void RealtimeDelivered(double seconds);
  void RealtimeDropped(std::string_view reason, uint64_t n = 1);
  void RealtimeGap(std::string_view reason);
  struct RealtimeGauges {
    int64_t connections = 0;  // stateside_app_connections
    int64_t rooms = 0;
    int64_t subscribers = 0;
    int64_t queue_depth = 0;
    int64_t channels = 0;
  };
  void SetRealtimeGauges(const RealtimeGauges& gauges);

  // Prometheus text exposition of every family, with uptime and the
  // process_* gauges refreshed first.
  std::string Serialize() const;

  // The current value of every series, for the status page and /info:
  // "family" → the sum over its series, "family{label=\"value\",...}" → one
  // series (labels in declaration order); a histogram adds "family_count"
  // and "family_sum". Cheap enough for a page view, not for a hot path.
  std::map<std::string, double> Values() const;

  // For a module that needs a family of its own. Prefer adding a typed
  // method here, which keeps names and labels reviewed in one place.
  prometheus::Registry& registry();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// Adapts the session rules' event sink to Metrics.
// Thread-safe as Metrics. REQUIRES: `metrics` outlives it.
class MetricsSessionEvents final : public session::SessionEvents {
 public:
  explicit MetricsSessionEvents(Metrics* metrics) : metrics_(metrics) {}

  void SessionCreated() override { metrics_->SessionCreated(); }
  void SessionDestroyed() override { metrics_->SessionDestroyed(); }
  void SessionExpired() override { metrics_->SessionsExpired(1); }
  void SessionNotFound(session::NotFoundCause cause) override {
    metrics_->SessionNotFound(cause);
  }
  void DecryptFailed(std::string_view reason) override {
    metrics_->DecryptFailed(reason);
  }
  void KeyUsedForRead(std::string_view key_id) override {
    metrics_->KeyUsedForRead(key_id);
  }
  void VersionConflict() override { metrics_->VersionConflict(); }
  void CapRefused(std::string_view cap) override { metrics_->CapRefused(cap); }

 private:
  Metrics* const metrics_;
};

}  // namespace stateside::admin

#endif  // STATESIDE_SIDECAR_ADMIN_METRICS_H_
