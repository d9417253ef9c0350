// Server: the status document behind GET /info and the admin status page
// (GET /). Everything here runs on the admin listener's I/O thread and must
// not block: it reads snapshots (Instance, the drain controller, the metric
// values, the hub's counters, the Redis client's topology) and the last
// registry listing, and starts the next listing without waiting for it.
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "sidecar/redis/redis_client.h"
#include "sidecar/server/server.h"

namespace stateside {
namespace {

using Json = nlohmann::json;

// The rate window: a sample becomes the base once it is this old, so a rate
// covers 15..30 s of a page watched for long, less on the first views.
constexpr absl::Duration kRateWindow = absl::Seconds(15);
// A page view starts a new registry listing when the last is older than this.
constexpr absl::Duration kListingMaxAge = absl::Seconds(1);

std::string Rfc3339(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone());
}

std::string UpperName(DrainState state) {
  std::string name(DrainStateName(state));
  for (char& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return name;
}

double ValueOf(const std::map<std::string, double>& values, const std::string& name) {
  auto it = values.find(name);
  return it == values.end() ? 0 : it->second;
}

// A counter or gauge as JSON: an integer when it is one (counts are).
Json Number(double value) {
  if (std::floor(value) == value && std::fabs(value) < 9e15) {
    return static_cast<int64_t>(value);
  }
  return value;
}

// `name`'s value as Number().
Json Count(const std::map<std::string, double>& values, const std::string& name) {
  return Number(ValueOf(values, name));
}

// label value → value for the series of `family` labelled by `label` alone.
Json ByLabel(const std::map<std::string, double>& values, const std::string& family,
             const std::string& label) {
  Json out = Json::object();
  const std::string prefix = absl::StrCat(family, "{", label, "=\"");
  for (auto it = values.lower_bound(prefix); it != values.end(); ++it) {
    if (!absl::StartsWith(it->first, prefix)) break;
    std::string value = it->first.substr(prefix.size());
    if (!absl::EndsWith(value, "\"}")) continue;
    value.resize(value.size() - 2);
    out[value] = Number(it->second);
  }
  return out;
}

Json RecordJson(const lifecycle::InstanceRecord& record, absl::Time now) {
  return Json{{"id", record.id},
              {"hostname", record.hostname},
              {"pid", record.pid},
              {"version", record.version},
              {"drain_state", UpperName(record.drain_state)},
              {"ready", record.ready},
              {"backend", record.backend},
              {"admin_address", record.admin_address},
              {"start_time", Rfc3339(record.start_time)},
              {"age_seconds", absl::ToInt64Seconds(now - record.start_time)}};
}

}  // namespace

std::vector<std::string> Server::NotReadyReasonsLocked() const {
  std::vector<std::string> reasons;
  const absl::Time now = parts_->clock->Now();
  if (draining_) reasons.push_back("draining");
  if (!backend_ok_) reasons.push_back("backend not usable");
  if (!redis_up_.Up(now)) {
    reasons.push_back(absl::StrCat("redis unreachable for ",
                                   absl::FormatDuration(absl::Trunc(redis_up_.DownFor(now),
                                                                    absl::Seconds(1)))));
  }
  if (!realtime_up_.Up(now)) reasons.push_back("realtime subscription down");
  if (!keys_ok_) reasons.push_back("a key id names other key bytes on another instance");
  if (reasons.empty() && !parts_->instance->ready()) reasons.push_back("starting");
  return reasons;
}

void Server::RefreshInstanceList() {
  const absl::Time now = absl::Now();
  if (parts_->registry == nullptr) {
    // The memory store: the cluster is this instance alone.
    absl::MutexLock lock(&status_->mu);
    status_->instances = {lifecycle::RecordOf(*parts_->instance)};
    status_->listed_at = now;
    return;
  }
  {
    absl::MutexLock lock(&status_->mu);
    if (status_->listing || now - status_->listed_at < kListingMaxAge) return;
    status_->listing = true;
  }
  parts_->registry->List([memory = status_](
                      absl::StatusOr<std::vector<lifecycle::InstanceRecord>> records) {
    absl::MutexLock lock(&memory->mu);
    memory->listing = false;
    memory->listed_at = absl::Now();
    if (records.ok()) {
      memory->instances = *std::move(records);
      memory->list_error.clear();
    } else {
      memory->list_error = std::string(records.status().message());
    }
  });
}

nlohmann::json Server::StatusJson() {
  const absl::Time now = absl::Now();
  const lifecycle::InstanceIdentity& id = parts_->instance->identity();
  UpdateRealtimeMetrics();
  const std::map<std::string, double> values = parts_->metrics->Values();
  RefreshInstanceList();

  Json body = {
      {"id", id.id},
      {"hostname", id.hostname},
      {"pid", id.pid},
      {"start_time", absl::FormatTime(absl::RFC3339_sec, id.start_time, absl::UTCTimeZone())},
      {"version", id.version},
      {"backend", parts_->instance->backend()},
      {"admin_address", parts_->instance->admin_address()},
      {"drain_state", UpperName(drain_->state())},
      {"ready", parts_->instance->ready()},
      {"uptime_seconds", absl::ToInt64Seconds(parts_->instance->Uptime())},
      {"now", Rfc3339(now)},
  };

  // Readiness and the drain, as one consistent picture.
  Json timeline = Json::array({Json{{"at", Rfc3339(id.start_time)}, {"what", "started"}}});
  {
    absl::MutexLock lock(&mu_);
    body["not_ready_reasons"] = NotReadyReasonsLocked();
    for (const auto& [at, what] : drain_timeline_) {
      timeline.push_back(Json{{"at", Rfc3339(at)}, {"what", what}});
    }
  }
  if (const absl::Time deadline = drain_->deadline(); deadline != absl::InfinitePast()) {
    timeline.push_back(
        Json{{"at", Rfc3339(deadline)}, {"what", "app drain deadline (the app was told)"}});
  }
  body["drain"] = Json{{"timeline", std::move(timeline)},
                       {"prestop_delay_seconds", absl::ToDoubleSeconds(config_.prestop_delay)},
                       {"drain_timeout_seconds",
                        absl::ToDoubleSeconds(drain_->options().drain_timeout)},
                       {"shutdown_timeout_seconds",
                        absl::ToDoubleSeconds(drain_->options().shutdown_timeout)}};

  // Rates over the window between the base sample and now.
  std::map<std::string, double> base;
  absl::Time base_at = absl::InfinitePast();
  {
    absl::MutexLock lock(&status_->mu);
    if (status_->next_at == absl::InfinitePast()) {
      status_->next = values;
      status_->next_at = now;
    } else if (now - status_->next_at >= kRateWindow) {
      status_->base = std::move(status_->next);
      status_->base_at = status_->next_at;
      status_->next = values;
      status_->next_at = now;
    }
    if (status_->base_at != absl::InfinitePast()) {
      base = status_->base;
      base_at = status_->base_at;
    } else if (now - status_->next_at >= absl::Seconds(1)) {
      base = status_->next;
      base_at = status_->next_at;
    }
  }
  const double window = base_at == absl::InfinitePast() ? 0 : absl::ToDoubleSeconds(now - base_at);
  auto rate = [&](const std::string& name) -> Json {
    if (window <= 0) return nullptr;  // no earlier sample yet
    return (ValueOf(values, name) - ValueOf(base, name)) / window;
  };

  // The backend and its topology.
  Json backend = {{"kind", parts_->instance->backend()}};
  if (parts_->backend.redis != nullptr) {
    const redis::RedisTopologyInfo topology = parts_->backend.redis->topology();
    Json nodes = Json::array();
    for (const redis::RedisNodeInfo& node : topology.nodes) {
      auto seconds = [](const std::optional<absl::Duration>& d) {
        return d.has_value() ? Json(absl::ToDoubleSeconds(*d)) : Json(nullptr);
      };
      nodes.push_back(Json{{"address", node.address},
                           {"role", node.role},
                           {"slots", node.slots},
                           {"connected", node.connected},
                           {"mean_latency_seconds", seconds(node.mean_latency)},
                           {"last_latency_seconds", seconds(node.last_latency)}});
    }
    backend["topology"] = redis::TopologyName(topology.mode);
    backend["nodes"] = std::move(nodes);
    backend["slots_covered"] = topology.slots_covered;
    backend["master"] = topology.master;
    backend["connected"] = parts_->backend.redis->connected();
  }
  const std::string rtt = "stateside_redis_command_duration_seconds";
  const double commands = ValueOf(values, rtt + "_count");
  const double window_commands = commands - ValueOf(base, rtt + "_count");
  backend["commands"] = Number(commands);
  backend["mean_latency_seconds"] =
      commands > 0 ? Json(ValueOf(values, rtt + "_sum") / commands) : Json(nullptr);
  backend["window_latency_seconds"] =
      window > 0 && window_commands > 0
          ? Json((ValueOf(values, rtt + "_sum") - ValueOf(base, rtt + "_sum")) / window_commands)
          : Json(nullptr);
  backend["errors"] = ByLabel(values, "stateside_redis_errors_total", "kind");
  body["backend_status"] = std::move(backend);

  // The cluster's instances, from the registry's last answer.
  {
    absl::MutexLock lock(&status_->mu);
    Json instances = Json::array();
    for (const lifecycle::InstanceRecord& record : status_->instances) {
      instances.push_back(RecordJson(record, now));
    }
    body["instances"] = Json{
        {"listed_at", status_->listed_at == absl::InfinitePast() ? Json(nullptr)
                                                                 : Json(Rfc3339(status_->listed_at))},
        {"error", status_->list_error},
        {"list", std::move(instances)}};
  }

  body["rate_window_seconds"] = window > 0 ? Json(window) : Json(nullptr);
  body["sessions"] = Json{
      {"live_estimate", Count(values, "stateside_sessions_live")},
      {"created", Count(values, "stateside_sessions_created_total")},
      {"destroyed", Count(values, "stateside_sessions_destroyed_total")},
      {"expired", Count(values, "stateside_sessions_expired_total")},
      {"created_per_second", rate("stateside_sessions_created_total")},
      {"destroyed_per_second", rate("stateside_sessions_destroyed_total")},
      {"expired_per_second", rate("stateside_sessions_expired_total")},
      {"not_found_by_cause", ByLabel(values, "stateside_session_not_found_total", "cause")},
  };

  const realtime::HubStats hub = parts_->hub->stats();
  body["realtime"] = Json{
      {"connections", hub.connections},
      {"rooms", hub.rooms},
      {"subscribers", hub.subscribers},
      {"queue_depth", hub.queue_depth},
      {"published", Count(values, "stateside_realtime_published_total")},
      {"delivered", Count(values, "stateside_realtime_delivered_total")},
      {"dropped_by_reason", ByLabel(values, "stateside_realtime_dropped_total", "reason")},
      {"gaps_by_reason", ByLabel(values, "stateside_realtime_gaps_total", "reason")},
  };

  // Key ids: never a key, only its id and how often it opened something.
  const Json session_reads = ByLabel(values, "stateside_session_key_reads_total", "key_id");
  const Json optout_reads = ByLabel(values, "stateside_optout_key_reads_total", "key_id");
  Json keys = Json::array();
  for (const crypto::Keyring::Key& key : parts_->keyring->keys()) {
    keys.push_back(Json{{"id", key.id},
                        {"primary", key.id == parts_->keyring->primary().id},
                        {"session_reads", session_reads.value(key.id, Json(0))},
                        {"optout_reads", optout_reads.value(key.id, Json(0))}});
  }
  body["keys"] = std::move(keys);
  return body;
}

}  // namespace stateside
