// Server: the admin HTTP listener's routes (probes, /metrics, /info and the
// status page, POST /drain). Handlers run on the listener's I/O thread: they read snapshots
// (Instance, Metrics) and never block.
#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "sidecar/admin/access.h"
#include "sidecar/admin/status_page.h"
#include "sidecar/redis/redis_broker.h"
#include "sidecar/redis/rewrap_sweep.h"
#include "sidecar/server/server.h"
#include "spdlog/spdlog.h"

namespace stateside {
namespace {

std::string UpperDrainState(DrainState state) {
  std::string name(DrainStateName(state));
  for (char& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return name;
}

// "host:port", with brackets for an IPv6 literal.
std::string JoinHostPort(const std::string& host, int port) {
  return absl::StrContains(host, ':') ? absl::StrCat("[", host, "]:", port)
                                      : absl::StrCat(host, ":", port);
}

}  // namespace

absl::Status Server::StartAdmin() {
  admin::AdminHttpOptions options;
  options.address = JoinHostPort(config_.admin_host, config_.admin_port);
  options.instance_id = parts_->instance->id();
  options.on_connection_refused = [this] {
    parts_->metrics->AdminRequestRefused("*", "too_many_connections");
  };
  admin_ = std::make_unique<admin::AdminHttpServer>(std::move(options), AdminRoutes());
  if (absl::Status s = admin_->Start(); !s.ok()) {
    admin_.reset();
    return absl::FailedPreconditionError(
        absl::StrCat("STATESIDE_ADMIN_ADDR: ", s.message()));
  }
  const std::string bound = JoinHostPort(config_.admin_host, admin_->port());
  parts_->instance->set_admin_address(bound);
  spdlog::info("admin listening on {}", bound);
  spdlog::info(parts_->admin_token != nullptr
                   ? "POST /drain needs the admin token (Authorization: Bearer) "
                     "from every peer"
                   : "POST /drain answers loopback peers only (no "
                     "STATESIDE_ADMIN_TOKEN_FILE)");
  return absl::OkStatus();
}

std::vector<admin::AdminRoute> Server::AdminRoutes() {
  std::vector<admin::AdminRoute> routes;
  routes.push_back({"GET", "/health", "status, instance, backend, drain state (JSON)",
                    [this](const admin::HttpRequest&) {
                      const DrainState state = drain_->state();
                      const bool ready = parts_->instance->ready();
                      nlohmann::json body = {
                          {"status", ready ? "ok" : "not_ready"},
                          {"instance", parts_->instance->id()},
                          {"backend", parts_->instance->backend()},
                          {"drain_state", UpperDrainState(state)},
                          {"uptime_seconds",
                           absl::ToInt64Seconds(parts_->instance->Uptime())},
                          {"ready", ready},
                      };
                      return admin::HttpResponse::Json(200, body.dump());
                    }});
  routes.push_back({"GET", "/health/live", "200 while the process runs",
                    [](const admin::HttpRequest&) {
                      return admin::HttpResponse::Text(200, "ok\n");
                    }});
  routes.push_back({"GET", "/health/ready", "200 when ready, 503 otherwise",
                    [this](const admin::HttpRequest&) {
                      return parts_->instance->ready()
                                 ? admin::HttpResponse::Text(200, "ready\n")
                                 : admin::HttpResponse::Text(503, "not ready\n");
                    }});
  routes.push_back({"GET", "/metrics", "Prometheus metrics",
                    [this](const admin::HttpRequest&) {
                      admin::HttpResponse response;
                      response.content_type = std::string(admin::Metrics::kContentType);
                      UpdateRealtimeMetrics();
                      response.body = parts_->metrics->Serialize();
                      return response;
                    }});
  routes.push_back({"GET", "/info",
                    "this instance, readiness, drain, backend, cluster, sessions, realtime, "
                    "key ids (JSON)",
                    [this](const admin::HttpRequest&) {
                      // A registry record written by another process may
                      // hold bytes that are not UTF-8: replaced, not a 500.
                      return admin::HttpResponse::Json(
                          200, StatusJson().dump(-1, ' ', false,
                                                 nlohmann::json::error_handler_t::replace));
                    }});
  // The status page: read-only like /info, so no access rule (only POSTs
  // change anything); it shows no secret, only key ids.
  routes.push_back({"GET", "/", "the status page (HTML, the data of /info)",
                    [this](const admin::HttpRequest&) {
                      admin::HttpResponse response;
                      response.content_type = "text/html; charset=utf-8";
                      response.body = admin::RenderStatusPage(StatusJson());
                      response.headers = {
                          {"Content-Security-Policy", admin::kStatusPagePolicy},
                          {"Cache-Control", "no-store"},
                          {"X-Content-Type-Options", "nosniff"}};
                      return response;
                    }});
  routes.push_back({"GET", "/status.css", "the status page's stylesheet",
                    [](const admin::HttpRequest&) {
                      admin::HttpResponse response;
                      response.content_type = "text/css; charset=utf-8";
                      response.body = std::string(admin::StatusPageStyle());
                      return response;
                    }});
  // POST /drain is the one route that changes anything: loopback peers only,
  // or whoever holds the admin token (sidecar/admin/access.h).
  admin::TokenCheck token_check;
  if (parts_->admin_token != nullptr) {
    token_check = [verifier = parts_->admin_token.get()](std::string_view token) {
      return verifier->Matches(token);
    };
  }
  const admin::AdminAccess access(std::move(token_check));
  auto drain = [this](const admin::HttpRequest& request) {
    spdlog::info("drain requested by POST /drain from {}", request.peer);
    drain_->StartDrain("POST /drain");
    ticker_->Poke();
    return admin::HttpResponse::Json(
        202, nlohmann::json{{"drain_state", UpperDrainState(drain_->state())}}.dump());
  };
  // Logged at the 1st, 2nd, 4th, 8th... refusal: a peer retrying in a loop
  // cannot flood the log; the metric counts every one.
  auto refused = [this, count = std::make_shared<std::atomic<uint64_t>>(0)](
                     const admin::HttpRequest& request, admin::Refusal refusal) {
    const std::string_view reason = admin::RefusalName(refusal);
    parts_->metrics->AdminRequestRefused("/drain", reason);
    const uint64_t n = ++*count;
    if ((n & (n - 1)) == 0) {
      spdlog::warn("POST /drain from {} refused: {} ({} refused so far)",
                   request.peer, reason, n);
    }
  };
  routes.push_back({"POST", "/drain", "start the drain, as SIGTERM does (202)",
                    access.Guard(std::move(drain), std::move(refused))});
  AddRewrapRoutes(access, routes);
  return routes;
}

// The rewrap sweep (statesidectl keys rewrap): POST starts or continues it,
// under the same access rule as POST /drain (it writes to every stored
// value); GET reports its progress. Both may block the listener for one
// Redis round trip (the saved state), bounded by the command timeout.
void Server::AddRewrapRoutes(const admin::AdminAccess& access,
                             std::vector<admin::AdminRoute>& routes) {
  auto answer = [](absl::StatusOr<redis::RewrapProgress> progress, int ok_status) {
    if (!progress.ok()) {
      return admin::HttpResponse::Json(
          503, nlohmann::json{{"error", std::string(progress.status().message())}}.dump());
    }
    return admin::HttpResponse::Json(ok_status, redis::RewrapProgressJson(*progress));
  };
  // The memory store does not outlive the restart that changes the keyring:
  // nothing is ever under an older key.
  const std::string memory_answer =
      nlohmann::json{{"state", "done"},
                     {"primary", parts_->keyring->primary().id},
                     {"keys", nlohmann::json::object()},
                     {"note", "memory backend: nothing stored outlives a keyring change"}}
          .dump();
  auto start = [this, answer, memory_answer](const admin::HttpRequest& request) {
    double rate = 0;
    for (absl::string_view part : absl::StrSplit(request.query, '&')) {
      if (!absl::ConsumePrefix(&part, "rate=")) continue;
      if (!absl::SimpleAtod(part, &rate) || !(rate >= 1 && rate <= 100000)) {
        return admin::HttpResponse::Json(
            400, nlohmann::json{{"error", "rate must be a number of items per second, "
                                          "1..100000"}}
                     .dump());
      }
    }
    if (parts_->rewrap == nullptr) return admin::HttpResponse::Json(202, memory_answer);
    spdlog::info("rewrap sweep requested by POST /keys/rewrap from {}", request.peer);
    return answer(parts_->rewrap->Start(rate), 202);
  };
  auto refused = [this](const admin::HttpRequest& request, admin::Refusal refusal) {
    parts_->metrics->AdminRequestRefused("/keys/rewrap", admin::RefusalName(refusal));
  };
  routes.push_back({"POST", "/keys/rewrap",
                    "start or continue the rewrap sweep to the primary key (202; ?rate=N "
                    "items per second)",
                    access.Guard(std::move(start), std::move(refused))});
  routes.push_back({"GET", "/keys/rewrap", "the rewrap sweep's progress per key id (JSON)",
                    [this, answer, memory_answer](const admin::HttpRequest&) {
                      if (parts_->rewrap == nullptr) return admin::HttpResponse::Json(200, memory_answer);
                      return answer(parts_->rewrap->Progress(), 200);
                    }});
}

void Server::UpdateRealtimeMetrics() {
  const realtime::HubStats hub = parts_->hub->stats();
  parts_->metrics->SetRealtimeGauges(
      {hub.connections, hub.rooms, hub.subscribers, hub.queue_depth, parts_->broker->channels_held()});
  if (parts_->backend.near_cache != nullptr) {
    const redis::SessionNearCache::Stats near = parts_->backend.near_cache->stats();
    parts_->metrics->SetNearCache({.hits = near.hits,
                                   .misses = near.misses,
                                   .fills_refused = near.fills_refused,
                                   .invalidations = near.invalidations,
                                   .flushes = near.flushes,
                                   .evictions = near.evictions,
                                   .entries = static_cast<int64_t>(near.entries),
                                   .bytes = static_cast<int64_t>(near.bytes),
                                   .armed = near.armed,
                                   .fills = near.fills,
                                   .arm_failures = near.arm_failures});
  }
  if (parts_->redis_broker == nullptr) return;
  const redis::RedisBrokerStats stats = parts_->redis_broker->stats();
  if (stats.dropped_undecryptable > seen_undecryptable_) {
    parts_->metrics->RealtimeDropped("undecryptable", stats.dropped_undecryptable - seen_undecryptable_);
    seen_undecryptable_ = stats.dropped_undecryptable;
  }
  if (stats.dropped_malformed > seen_malformed_) {
    parts_->metrics->RealtimeDropped("malformed", stats.dropped_malformed - seen_malformed_);
    seen_malformed_ = stats.dropped_malformed;
  }
}

}  // namespace stateside
