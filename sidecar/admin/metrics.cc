// The stateside_* metric families on prometheus-cpp (core only: /metrics is
// served by our own admin listener).
#include "sidecar/admin/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <initializer_list>
#include <iterator>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "sidecar/admin/process_stats.h"
#include "sidecar/admin/sharded_metrics.h"

namespace stateside::admin {
namespace {

using prometheus::Counter;
using prometheus::Gauge;
using prometheus::Histogram;

// Local RPCs over a Unix socket take tens of microseconds; a Redis round
// trip a few hundred; anything past seconds is an incident.
const std::vector<double> kLatencyBuckets = {
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
    0.025,   0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
const std::vector<double> kBatchBuckets = {1,  2,   4,   8,   16,  32,
                                           64, 128, 256, 512, 1024};
// Drains are sized against terminationGracePeriodSeconds (30 s by default).
const std::vector<double> kDrainBuckets = {0.1, 0.5, 1,  2,  5,  10,
                                           15,  20,  30, 60, 120};

// The children of one labelled family, cached by label values: prometheus-cpp's
// Family::Add allocates a new metric on every call (even when it exists), so
// the hot path looks up here under a reader lock instead. Distinct label
// values are capped; past the cap every label reads "other".
template <typename T>
class Series {
 public:
  Series(prometheus::Family<T>& family, std::vector<std::string> label_names,
         std::vector<double> buckets = {})
      : family_(family),
        label_names_(std::move(label_names)),
        buckets_(std::move(buckets)) {}

  T& Get(std::initializer_list<std::string_view> values) {
    std::string key;
    for (std::string_view v : values) key.append(v).push_back('\x1f');
    {
      absl::ReaderMutexLock lock(&mu_);
      if (auto it = cache_.find(key); it != cache_.end()) return *it->second;
    }
    absl::MutexLock lock(&mu_);
    if (auto it = cache_.find(key); it != cache_.end()) return *it->second;
    prometheus::Labels labels;
    size_t i = 0;
    bool overflow = cache_.size() >= Metrics::kMaxSeriesPerFamily;
    for (std::string_view v : values) {
      labels.emplace(label_names_[i++], overflow ? "other" : std::string(v));
    }
    if (overflow) {
      key = "\x1f<other>";
      if (auto it = cache_.find(key); it != cache_.end()) return *it->second;
    }
    T* metric;
    if constexpr (std::is_same_v<T, Histogram>) {
      metric = &family_.Add(labels, buckets_);
    } else {
      metric = &family_.Add(labels);
    }
    cache_.emplace(std::move(key), metric);
    return *metric;
  }

 private:
  prometheus::Family<T>& family_;
  const std::vector<std::string> label_names_;
  const std::vector<double> buckets_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, T*> cache_ ABSL_GUARDED_BY(mu_);
};

prometheus::Family<Counter>& CounterFamily(prometheus::Registry& r,
                                           const char* name, const char* help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(r);
}
prometheus::Family<Gauge>& GaugeFamily(prometheus::Registry& r,
                                       const char* name, const char* help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(r);
}
prometheus::Family<Histogram>& HistogramFamily(prometheus::Registry& r,
                                               const char* name,
                                               const char* help) {
  return prometheus::BuildHistogram().Name(name).Help(help).Register(r);
}

constexpr std::string_view kCodeNames[] = {
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
    "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"};
constexpr int kCodeCount = static_cast<int>(std::size(kCodeNames));

// One method's calls as recorded, until the scrape moves them into
// stateside_rpc_requests_total and stateside_rpc_duration_seconds.
struct RpcRecord {
  internal::ShardedHistogram duration{kLatencyBuckets};
  internal::ShardedCounts by_code{kCodeCount};
};

// Moves what `from` recorded into `to`; an idle histogram is left alone, so
// a series appears at its first observation as when observed directly.
template <typename To>
void Feed(internal::ShardedHistogram& from, To&& to) {
  internal::ShardedHistogram::Drained d = from.Drain();
  if (d.count > 0 || d.sum != 0) to().ObserveMultiple(d.buckets, d.sum);
}

std::string_view CauseLabel(session::NotFoundCause cause) {
  switch (cause) {
    case session::NotFoundCause::kMalformedKey: return "malformed";
    case session::NotFoundCause::kBadSignature: return "bad_signature";
    case session::NotFoundCause::kUnknown: return "unknown";
    case session::NotFoundCause::kUndecryptable: return "undecryptable";
    case session::NotFoundCause::kTamperedMetadata: return "tampered_metadata";
  }
  return "other";
}

}  // namespace

class Metrics::Impl {
 public:
  explicit Impl(MetricsOptions options);

  const Clock* const clock_;
  const absl::Time start_;
  prometheus::Registry registry_;

  Series<Counter> rpc_requests_;
  Series<Histogram> rpc_duration_;
  Gauge& rpc_in_flight_;
  Gauge& offload_waiting_;

  Histogram& redis_duration_;
  Series<Counter> redis_errors_;
  Counter& redis_reconnects_;
  Counter& redis_master_changes_;
  Series<Counter> redis_redirects_;
  Counter& redis_topology_refreshes_;
  Counter& redis_retries_;
  Gauge& redis_connected_;
  Gauge& key_mismatches_;
  Histogram& redis_batch_;

  Counter& sessions_created_;
  Counter& sessions_destroyed_;
  Counter& sessions_expired_;
  Series<Counter> not_found_;
  Series<Counter> decrypt_failures_;
  Counter& version_conflicts_;
  Series<Counter> key_reads_;
  Series<Counter> optout_key_reads_;
  Gauge& sessions_live_;
  prometheus::Family<Counter>& near_lookups_;
  Counter& near_hits_;
  Counter& near_misses_;
  Counter& near_fills_refused_;
  Counter& near_invalidations_;
  Counter& near_flushes_;
  Counter& near_fills_;
  Counter& near_arm_failures_;
  Counter& near_evictions_;
  Gauge& near_entries_;
  Gauge& near_bytes_;
  Gauge& near_armed_;
  Gauge& app_connections_;

  Series<Gauge> drain_state_;
  Histogram& drain_duration_;
  Counter& drain_timeouts_;
  Counter& forced_exits_;
  Series<Counter> admin_refused_;
  Series<Counter> cap_refusals_;
  Series<Counter> frame_closed_;

  Series<Counter> rt_published_;
  Counter& rt_received_;
  Counter& rt_delivered_;
  Histogram& rt_latency_;
  Series<Counter> rt_dropped_;
  Series<Counter> rt_gaps_;
  Gauge& rt_rooms_;
  Gauge& rt_subscribers_;
  Gauge& rt_queue_depth_;
  Gauge& rt_channels_;
  Gauge& uptime_;
  Gauge& resident_;
  Gauge& virtual_;
  Gauge& open_fds_;
  Gauge& max_fds_;
  Counter& cpu_;
  Gauge& start_time_;

  // The data path's recordings (lock-free), moved into the families above
  // by Sync. Past kMaxSeriesPerFamily methods or key ids a recording goes
  // straight to its family (whose Series caps it under "other").
  internal::SeriesTable<RpcRecord> rpc_records_{
      Metrics::kMaxSeriesPerFamily, [] { return std::make_unique<RpcRecord>(); }};
  internal::ShardedHistogram redis_duration_record_{kLatencyBuckets};
  internal::ShardedHistogram redis_batch_record_{kBatchBuckets};
  internal::SeriesTable<internal::ShardedCounts> key_read_records_{
      Metrics::kMaxSeriesPerFamily,
      [] { return std::make_unique<internal::ShardedCounts>(1); }};
  internal::ShardedCounts rt_delivered_record_{1};
  internal::ShardedHistogram rt_latency_record_{kLatencyBuckets};

  // Moves the recordings into the families: before every read of them.
  void Sync() ABSL_EXCLUSIVE_LOCKS_REQUIRED(scrape_mu_);

  // Makes a scrape see one drain state at a time, serialises the /proc
  // refresh (the CPU counter is advanced by deltas) and Sync.
  mutable absl::Mutex scrape_mu_;
  absl::Mutex near_mu_;  // SetNearCache's read-and-increment
  double cpu_seen_ ABSL_GUARDED_BY(scrape_mu_) = 0;
};

void Metrics::Impl::Sync() {
  rpc_records_.ForEach([this](const std::string& method, RpcRecord& record) {
    Feed(record.duration, [&]() -> Histogram& { return rpc_duration_.Get({method}); });
    const std::vector<uint64_t> calls = record.by_code.Drain();
    for (size_t code = 0; code < calls.size(); ++code) {
      if (calls[code] == 0) continue;
      rpc_requests_.Get({method, kCodeNames[code]})
          .Increment(static_cast<double>(calls[code]));
    }
  });
  Feed(redis_duration_record_, [this]() -> Histogram& { return redis_duration_; });
  Feed(redis_batch_record_, [this]() -> Histogram& { return redis_batch_; });
  key_read_records_.ForEach(
      [this](const std::string& key_id, internal::ShardedCounts& reads) {
        const uint64_t n = reads.Drain()[0];
        if (n > 0) key_reads_.Get({key_id}).Increment(static_cast<double>(n));
      });
  if (const uint64_t n = rt_delivered_record_.Drain()[0]; n > 0) {
    rt_delivered_.Increment(static_cast<double>(n));
  }
  Feed(rt_latency_record_, [this]() -> Histogram& { return rt_latency_; });
}

Metrics::Impl::Impl(MetricsOptions options)
    : clock_(options.clock),
      start_(clock_ ? clock_->Now() : absl::Now()),
      rpc_requests_(CounterFamily(registry_, "stateside_rpc_requests_total",
                                  "gRPC calls handled, by method and status code."),
                    {"method", "code"}),
      rpc_duration_(HistogramFamily(registry_, "stateside_rpc_duration_seconds",
                                    "gRPC call latency in the sidecar, by method."),
                    {"method"}, kLatencyBuckets),
      rpc_in_flight_(GaugeFamily(registry_, "stateside_rpc_in_flight",
                                 "gRPC calls being handled now.").Add({})),
      offload_waiting_(GaugeFamily(registry_, "stateside_offload_waiting",
                                   "Calls waiting for a thread of the offload pool.")
                           .Add({})),
      redis_duration_(
          HistogramFamily(registry_, "stateside_redis_command_duration_seconds",
                          "Redis command round-trip time (with the frame socket on Redis, it "
                          "includes time the Redis I/O thread spent on frames).")
              .Add({}, kLatencyBuckets)),
      redis_errors_(CounterFamily(registry_, "stateside_redis_errors_total",
                                  "Redis failures, by kind."),
                    {"kind"}),
      redis_reconnects_(CounterFamily(registry_, "stateside_redis_reconnects_total",
                                      "Redis connections re-established.").Add({})),
      redis_master_changes_(CounterFamily(registry_, "stateside_redis_master_changes_total",
                                          "Sentinel failovers followed: the master in use "
                                          "moved to another node.").Add({})),
      redis_redirects_(CounterFamily(registry_, "stateside_redis_redirects_total",
                                     "Redis Cluster redirects followed, by kind (moved, ask)."),
                       {"kind"}),
      redis_topology_refreshes_(CounterFamily(registry_, "stateside_redis_topology_refreshes_total",
                                              "Redis Cluster slot maps read.").Add({})),
      redis_retries_(CounterFamily(registry_, "stateside_redis_retries_total",
                                   "Redis Cluster commands resent after a refusal or a "
                                   "TRYAGAIN, CLUSTERDOWN or LOADING reply.").Add({})),
      redis_connected_(GaugeFamily(registry_, "stateside_redis_connected",
                                   "1 while the Redis backend is connected.").Add({})),
      key_mismatches_(GaugeFamily(registry_, "stateside_key_mismatches",
                                  "Key ids whose key check value in Redis differs from "
                                  "this instance's key (same id, other key bytes "
                                  "elsewhere); not ready while above 0.").Add({})),
      redis_batch_(HistogramFamily(registry_, "stateside_redis_pipeline_batch_size",
                                   "Redis commands written per pipelined batch.")
                       .Add({}, kBatchBuckets)),
      sessions_created_(CounterFamily(registry_, "stateside_sessions_created_total",
                                      "Sessions created.").Add({})),
      sessions_destroyed_(CounterFamily(registry_, "stateside_sessions_destroyed_total",
                                        "Sessions destroyed.").Add({})),
      sessions_expired_(CounterFamily(registry_, "stateside_sessions_expired_total",
                                      "Sessions found expired (idle or absolute).")
                            .Add({})),
      not_found_(CounterFamily(registry_, "stateside_session_not_found_total",
                               "Session lookups answered NOT_FOUND, by cause."),
                 {"cause"}),
      decrypt_failures_(
          CounterFamily(registry_, "stateside_session_decrypt_failures_total",
                        "Stored values that failed to decrypt, by reason."),
          {"reason"}),
      version_conflicts_(
          CounterFamily(registry_, "stateside_session_version_conflicts_total",
                        "Updates refused because expected_version did not match.")
              .Add({})),
      key_reads_(CounterFamily(registry_, "stateside_session_key_reads_total",
                               "Values decrypted, by key id (old ids: rotation pending)."),
                 {"key_id"}),
      optout_key_reads_(
          CounterFamily(registry_, "stateside_optout_key_reads_total",
                        "Opt-out flags found, by the key id whose tag held them "
                        "(old ids: re-filed under the primary on the way)."),
          {"key_id"}),
      sessions_live_(GaugeFamily(registry_, "stateside_sessions_live",
                                 "Approximate live sessions in the cluster.").Add({})),
      near_lookups_(CounterFamily(registry_, "stateside_session_near_cache_lookups_total",
                                  "Plain session reads looked up in the near cache, by result.")),
      near_hits_(near_lookups_.Add({{"result", "hit"}})),
      near_misses_(near_lookups_.Add({{"result", "miss"}})),
      near_fills_refused_(
          CounterFamily(registry_, "stateside_session_near_cache_fills_refused_total",
                        "Read answers not cached: an invalidation or a flush came first.")
              .Add({})),
      near_invalidations_(
          CounterFamily(registry_, "stateside_session_near_cache_invalidations_total",
                        "Keys invalidated in the near cache (by Redis or a local write).")
              .Add({})),
      near_flushes_(CounterFamily(registry_, "stateside_session_near_cache_flushes_total",
                                  "Whole near cache flushes (tracking lost, FLUSHALL).")
                        .Add({})),
      near_fills_(CounterFamily(registry_, "stateside_session_near_cache_fills_total",
                                "Read answers put in the near cache.")
                      .Add({})),
      near_arm_failures_(
          CounterFamily(registry_, "stateside_session_near_cache_arm_failures_total",
                        "Attempts to confirm the near cache's tracking that failed (the log "
                        "says why).")
              .Add({})),
      near_evictions_(CounterFamily(registry_, "stateside_session_near_cache_evictions_total",
                                    "Near cache entries dropped for its byte bound.")
                          .Add({})),
      near_entries_(GaugeFamily(registry_, "stateside_session_near_cache_entries",
                                "Sessions held in the near cache.")
                        .Add({})),
      near_bytes_(GaugeFamily(registry_, "stateside_session_near_cache_bytes",
                              "Bytes the near cache counts against its bound.")
                      .Add({})),
      near_armed_(GaugeFamily(registry_, "stateside_session_near_cache_armed",
                              "1 when the near cache's tracking is confirmed (it fills).")
                      .Add({})),
      app_connections_(GaugeFamily(registry_, "stateside_app_connections",
                                   "Client connections the local app registered (RealtimeService).")
                           .Add({})),
      drain_state_(GaugeFamily(registry_, "stateside_drain_state",
                               "1 for the current drain state, 0 for the others."),
                   {"state"}),
      drain_duration_(HistogramFamily(registry_, "stateside_drain_duration_seconds",
                                      "Time from drain start to drained.")
                          .Add({}, kDrainBuckets)),
      drain_timeouts_(CounterFamily(registry_, "stateside_drain_timeouts_total",
                                    "Drains that ended because the app did not report in time.")
                          .Add({})),
      forced_exits_(CounterFamily(registry_, "stateside_forced_exits_total",
                                  "Shutdowns cut short at the hard timeout (exit 1).")
                        .Add({})),
      admin_refused_(CounterFamily(registry_, "stateside_admin_requests_refused_total",
                                   "Admin HTTP requests refused, by route and reason "
                                   "(route \"*\": a connection closed at accept)."),
                     {"route", "reason"}),
      cap_refusals_(CounterFamily(registry_, "stateside_cap_refusals_total",
                                  "Calls refused with RESOURCE_EXHAUSTED by a per-user or "
                                  "per-connection cap, by cap."),
                    {"cap"}),
      frame_closed_(CounterFamily(registry_, "stateside_frame_connections_closed_total",
                                  "Frame-socket connections closed by the sidecar, by reason "
                                  "(a broken stream, or a uid not allowed)."),
                    {"reason"}),
      rt_published_(CounterFamily(registry_, "stateside_realtime_published_total",
                                  "Realtime events published from this instance, by target."),
                    {"target"}),
      rt_received_(CounterFamily(registry_, "stateside_realtime_received_total",
                                 "Realtime events this instance received from the broker.")
                       .Add({})),
      rt_delivered_(CounterFamily(registry_, "stateside_realtime_delivered_total",
                                  "Realtime events written to Subscribe streams.")
                        .Add({})),
      rt_latency_(HistogramFamily(registry_, "stateside_realtime_delivery_latency_seconds",
                                  "Publish to Subscribe-stream write, across instances.")
                      .Add({}, kLatencyBuckets)),
      rt_dropped_(CounterFamily(registry_, "stateside_realtime_dropped_total",
                                "Realtime events not delivered, by reason."),
                  {"reason"}),
      rt_gaps_(CounterFamily(registry_, "stateside_realtime_gaps_total",
                             "Loss windows signalled to subscribers, by reason."),
               {"reason"}),
      rt_rooms_(GaugeFamily(registry_, "stateside_realtime_rooms",
                            "Rooms with a member on this instance.").Add({})),
      rt_subscribers_(GaugeFamily(registry_, "stateside_realtime_subscribers",
                                  "Open Subscribe streams.").Add({})),
      rt_queue_depth_(GaugeFamily(registry_, "stateside_realtime_queue_depth",
                                  "Events queued for Subscribe streams, all streams.")
                          .Add({})),
      rt_channels_(GaugeFamily(registry_, "stateside_realtime_redis_channels",
                               "Pub/sub channels this instance holds.").Add({})),
      uptime_(GaugeFamily(registry_, "stateside_uptime_seconds",
                          "Seconds since the sidecar started.").Add({})),
      resident_(GaugeFamily(registry_, "process_resident_memory_bytes",
                            "Resident memory size in bytes.").Add({})),
      virtual_(GaugeFamily(registry_, "process_virtual_memory_bytes",
                           "Virtual memory size in bytes.").Add({})),
      open_fds_(GaugeFamily(registry_, "process_open_fds",
                            "Number of open file descriptors.").Add({})),
      max_fds_(GaugeFamily(registry_, "process_max_fds",
                           "Maximum number of open file descriptors.").Add({})),
      cpu_(CounterFamily(registry_, "process_cpu_seconds_total",
                         "Total user and system CPU time spent in seconds.").Add({})),
      start_time_(GaugeFamily(registry_, "process_start_time_seconds",
                              "Start time of the process since unix epoch in seconds.")
                      .Add({})) {
  GaugeFamily(registry_, "stateside_build_info",
              "Always 1; the labels say what is running.")
      .Add({{"version", options.version}, {"instance", options.instance_id}})
      .Set(1);
  // Every known label value exists from the start, so rate() and absent()
  // work before the first event.
  for (auto cause : {session::NotFoundCause::kMalformedKey, session::NotFoundCause::kBadSignature,
                     session::NotFoundCause::kUnknown, session::NotFoundCause::kUndecryptable,
                     session::NotFoundCause::kTamperedMetadata}) {
    not_found_.Get({CauseLabel(cause)});
  }
  for (std::string_view reason : {"malformed", "unknown_key", "auth_failed", "key_mismatch"}) {
    decrypt_failures_.Get({reason});
  }
  for (std::string_view target : {"room", "user", "connection", "all"}) {
    rt_published_.Get({target});
  }
  for (std::string_view reason :
       {"overflow", "no_target", "no_subscriber", "stale", "undecryptable",
        "malformed"}) {
    rt_dropped_.Get({reason});
  }
  rt_gaps_.Get({"overflow"});
  rt_gaps_.Get({"redis"});
  for (std::string_view reason : {"not_loopback", "missing_token", "bad_token"}) {
    admin_refused_.Get({"/drain", reason});
  }
  admin_refused_.Get({"*", "too_many_connections"});
  for (std::string_view cap : {"sessions_per_user", "rooms_per_connection", "publish_rate_per_user"}) {
    cap_refusals_.Get({cap});
  }
  for (std::string_view reason :
       {"zero_length", "oversized", "malformed", "too_many_calls", "refused_uid"}) {
    frame_closed_.Get({reason});
  }
  drain_state_.Get({"serving"}).Set(1);
  drain_state_.Get({"draining"});
  drain_state_.Get({"drained"});
}

Metrics::Metrics(MetricsOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}
Metrics::~Metrics() = default;

void Metrics::RpcStarted() { impl_->rpc_in_flight_.Increment(); }
void Metrics::RpcFinished() { impl_->rpc_in_flight_.Decrement(); }
void Metrics::OffloadQueued() { impl_->offload_waiting_.Increment(); }
void Metrics::OffloadStarted() { impl_->offload_waiting_.Decrement(); }
void Metrics::RecordRpc(std::string_view method, std::string_view code,
                        double seconds) {
  for (int i = 0; i < kCodeCount; ++i) {
    if (kCodeNames[i] == code) return RecordRpc(method, i, seconds);
  }
  // Not a gRPC code name: its own series, as any label value.
  impl_->rpc_requests_.Get({method, code}).Increment();
  impl_->rpc_duration_.Get({method}).Observe(seconds);
}

void Metrics::RecordRpc(std::string_view method, int code, double seconds) {
  if (code < 0 || code >= kCodeCount) code = 2;  // UNKNOWN
  RpcRecord* record = impl_->rpc_records_.Find(method);
  if (record == nullptr) {
    impl_->rpc_requests_.Get({method, kCodeNames[code]}).Increment();
    impl_->rpc_duration_.Get({method}).Observe(seconds);
    return;
  }
  record->by_code.Add(static_cast<size_t>(code));
  record->duration.Observe(seconds);
}

std::string_view GrpcCodeName(int code) {
  if (code < 0 || code >= kCodeCount) return "UNKNOWN";
  return kCodeNames[code];
}

void Metrics::RedisCommand(double seconds) {
  impl_->redis_duration_record_.Observe(seconds);
}
void Metrics::RedisError(std::string_view kind) {
  impl_->redis_errors_.Get({kind}).Increment();
}
void Metrics::RedisReconnected() { impl_->redis_reconnects_.Increment(); }
void Metrics::RedisMasterChanged() { impl_->redis_master_changes_.Increment(); }
void Metrics::RedisRedirect(std::string_view kind) {
  impl_->redis_redirects_.Get({kind}).Increment();
}
void Metrics::RedisTopologyRefresh() { impl_->redis_topology_refreshes_.Increment(); }
void Metrics::RedisRetry() { impl_->redis_retries_.Increment(); }
void Metrics::SetRedisConnected(bool connected) {
  impl_->redis_connected_.Set(connected ? 1 : 0);
}
void Metrics::SetKeyMismatches(size_t key_ids) {
  impl_->key_mismatches_.Set(static_cast<double>(key_ids));
}
void Metrics::PipelineBatch(size_t commands) {
  impl_->redis_batch_record_.Observe(static_cast<double>(commands));
}

void Metrics::SessionCreated() { impl_->sessions_created_.Increment(); }
void Metrics::SessionDestroyed() { impl_->sessions_destroyed_.Increment(); }
void Metrics::SessionsExpired(uint64_t n) {
  impl_->sessions_expired_.Increment(static_cast<double>(n));
}
void Metrics::SessionNotFound(session::NotFoundCause cause) {
  impl_->not_found_.Get({CauseLabel(cause)}).Increment();
}
void Metrics::DecryptFailed(std::string_view reason) {
  impl_->decrypt_failures_.Get({reason}).Increment();
}
void Metrics::KeyUsedForRead(std::string_view key_id) {
  if (internal::ShardedCounts* reads = impl_->key_read_records_.Find(key_id)) {
    reads->Add(0);
  } else {
    impl_->key_reads_.Get({key_id}).Increment();
  }
}
void Metrics::OptOutKeyRead(std::string_view key_id) {
  impl_->optout_key_reads_.Get({key_id}).Increment();
}
void Metrics::VersionConflict() { impl_->version_conflicts_.Increment(); }
void Metrics::SetSessionsLive(int64_t n) {
  impl_->sessions_live_.Set(static_cast<double>(n));
}

void Metrics::SetAppConnections(int64_t n) {
  impl_->app_connections_.Set(static_cast<double>(n));
}
void Metrics::SetDrainState(DrainPhase phase) {
  absl::MutexLock lock(&impl_->scrape_mu_);
  impl_->drain_state_.Get({"serving"}).Set(phase == DrainPhase::kServing);
  impl_->drain_state_.Get({"draining"}).Set(phase == DrainPhase::kDraining);
  impl_->drain_state_.Get({"drained"}).Set(phase == DrainPhase::kDrained);
}
void Metrics::DrainFinished(double seconds, bool timed_out) {
  impl_->drain_duration_.Observe(seconds);
  if (timed_out) impl_->drain_timeouts_.Increment();
}
void Metrics::ForcedExit() { impl_->forced_exits_.Increment(); }
void Metrics::AdminRequestRefused(std::string_view route, std::string_view reason) {
  impl_->admin_refused_.Get({route, reason}).Increment();
}

void Metrics::RealtimePublished(std::string_view target) {
  impl_->rt_published_.Get({target}).Increment();
}
void Metrics::RealtimeReceived() { impl_->rt_received_.Increment(); }
void Metrics::RealtimeDelivered(double seconds) {
  impl_->rt_delivered_record_.Add(0);
  impl_->rt_latency_record_.Observe(seconds);
}
void Metrics::RealtimeDropped(std::string_view reason, uint64_t n) {
  impl_->rt_dropped_.Get({reason}).Increment(static_cast<double>(n));
}
void Metrics::CapRefused(std::string_view cap) { impl_->cap_refusals_.Get({cap}).Increment(); }

void Metrics::FrameConnectionClosed(std::string_view reason) {
  impl_->frame_closed_.Get({reason}).Increment();
}
void Metrics::RealtimeGap(std::string_view reason) { impl_->rt_gaps_.Get({reason}).Increment(); }
void Metrics::SetRealtimeGauges(const RealtimeGauges& gauges) {
  impl_->app_connections_.Set(static_cast<double>(gauges.connections));
  impl_->rt_rooms_.Set(static_cast<double>(gauges.rooms));
  impl_->rt_subscribers_.Set(static_cast<double>(gauges.subscribers));
  impl_->rt_queue_depth_.Set(static_cast<double>(gauges.queue_depth));
  impl_->rt_channels_.Set(static_cast<double>(gauges.channels));
}

void Metrics::SetNearCache(const NearCacheStats& stats) {
  // Read and increment under one lock: two callers must not both add the
  // same difference.
  absl::MutexLock lock(&impl_->near_mu_);
  auto move_to = [](Counter& counter, uint64_t total) {
    const double value = counter.Value();
    if (static_cast<double>(total) > value) counter.Increment(static_cast<double>(total) - value);
  };
  move_to(impl_->near_hits_, stats.hits);
  move_to(impl_->near_misses_, stats.misses);
  move_to(impl_->near_fills_refused_, stats.fills_refused);
  move_to(impl_->near_invalidations_, stats.invalidations);
  move_to(impl_->near_flushes_, stats.flushes);
  move_to(impl_->near_evictions_, stats.evictions);
  move_to(impl_->near_fills_, stats.fills);
  move_to(impl_->near_arm_failures_, stats.arm_failures);
  impl_->near_entries_.Set(static_cast<double>(stats.entries));
  impl_->near_bytes_.Set(static_cast<double>(stats.bytes));
  impl_->near_armed_.Set(stats.armed ? 1 : 0);
}

std::string Metrics::Serialize() const {
  Impl& m = *impl_;
  absl::MutexLock lock(&m.scrape_mu_);
  m.Sync();
  absl::Time now = m.clock_ ? m.clock_->Now() : absl::Now();
  m.uptime_.Set(absl::ToDoubleSeconds(now - m.start_));
  if (absl::StatusOr<ProcessStats> p = ReadProcessStats(); p.ok()) {
    m.resident_.Set(p->resident_memory_bytes);
    m.virtual_.Set(p->virtual_memory_bytes);
    m.open_fds_.Set(p->open_fds);
    m.max_fds_.Set(p->max_fds);
    m.start_time_.Set(p->start_time_seconds);
    if (p->cpu_seconds > m.cpu_seen_) {
      m.cpu_.Increment(p->cpu_seconds - m.cpu_seen_);
      m.cpu_seen_ = p->cpu_seconds;
    }
  }
  return prometheus::TextSerializer().Serialize(m.registry_.Collect());
}

std::map<std::string, double> Metrics::Values() const {
  std::vector<prometheus::MetricFamily> families;
  {
    absl::MutexLock lock(&impl_->scrape_mu_);
    impl_->Sync();
    families = impl_->registry_.Collect();
  }
  std::map<std::string, double> values;
  for (const prometheus::MetricFamily& family : families) {
    double& total = values[family.name];
    for (const prometheus::ClientMetric& metric : family.metric) {
      double value = 0;
      switch (family.type) {
        case prometheus::MetricType::Counter:
          value = metric.counter.value;
          break;
        case prometheus::MetricType::Gauge:
          value = metric.gauge.value;
          break;
        case prometheus::MetricType::Histogram:
          value = static_cast<double>(metric.histogram.sample_count);
          values[family.name + "_count"] += value;
          values[family.name + "_sum"] += metric.histogram.sample_sum;
          break;
        default:
          continue;
      }
      total += value;
      if (metric.label.empty()) continue;
      std::string name = family.name + "{";
      for (size_t i = 0; i < metric.label.size(); ++i) {
        if (i > 0) name += ",";
        name += metric.label[i].name + "=\"" + metric.label[i].value + "\"";
      }
      values[name + "}"] = value;
    }
  }
  return values;
}

prometheus::Registry& Metrics::registry() { return impl_->registry_; }

}  // namespace stateside::admin
