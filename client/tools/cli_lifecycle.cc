// statesidectl's lifecycle commands: info (the instance), health (gRPC, and
// the admin /health), instances, metrics (admin /metrics), drain (following
// it, or --no-follow for a preStop hook) and watch-drain.
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "client/tools/cli_format.h"
#include "client/tools/cli_internal.h"
#include "client/tools/http_get.h"
#include "stateside/client.h"

namespace stateside::cli {
namespace {

// Where `metrics` looks without --admin: the sidecar's default listener.
std::string DefaultAdminAddress() {
  const char* env = std::getenv("STATESIDE_ADMIN_ADDR");
  if (env != nullptr && *env != '\0') return env;
  return "127.0.0.1:9464";
}

absl::Duration HttpTimeout(const Globals& g) {
  absl::Duration d;
  // --timeout was validated by the parser.
  return absl::ParseDuration(g.timeout, &d) ? d : absl::Seconds(5);
}

// GET path from the admin listener; a status other than 200 is an error
// (UNAVAILABLE: a 503 /health/ready is the answer of a draining sidecar).
// The body of an error reply is still returned through `body`.
absl::Status AdminGet(const Globals& g, const std::string& address,
                      const std::string& path, std::string* body) {
  auto response = HttpGet(address, path, HttpTimeout(g));
  if (!response.ok()) return response.status();
  *body = std::move(response->body);
  if (response->status != 200) {
    return absl::UnavailableError(absl::StrCat("GET http://", address, path, ": HTTP ",
                                               response->status));
  }
  return absl::OkStatus();
}

// Prints each WatchDrain event until the stream ends. OK if the sidecar
// ended it, or if it went away (UNAVAILABLE/CANCELLED) after the drain
// began: that is how a drained sidecar exits.
absl::Status FollowDrain(Client& c, std::ostream& out, bool json) {
  bool drain_seen = false;
  absl::Status status = c.WatchDrain([&](const DrainNotice& notice) {
    if (notice.state == DrainState::kDraining || notice.state == DrainState::kDrained) {
      drain_seen = true;
    }
    out << (json ? DumpJsonLine(DrainNoticeToJson(notice)) : FormatDrainNotice(notice) + "\n");
    out.flush();
    return true;
  }, Client::WatchRole::kObserver);
  if (status.ok()) return status;
  const bool gone = status.code() == absl::StatusCode::kUnavailable ||
                    status.code() == absl::StatusCode::kCancelled;
  if (gone && drain_seen) {
    if (json) {
      out << DumpJsonLine(Json{{"event", "sidecar_gone"}});
    } else {
      out << "sidecar gone\n";
    }
    return absl::OkStatus();
  }
  return status;
}

}  // namespace

void AddLifecycleCommands(CLI::App& app, const Globals& g, LifecycleArgs& args,
                          Action& action) {
  // The callbacks run during the parse, after this function returned: they
  // capture these pointers by value, never this function's references.
  const Globals* const gl = &g;
  LifecycleArgs* const a = &args;
  Action* const act = &action;
  app.add_subcommand("info", "the sidecar instance (id, version, drain state, backend)")
      ->callback([=] {
        *act = [=](Client& c, std::ostream& out) -> absl::Status {
          auto instance = c.GetInstance();
          if (!instance.ok()) return instance.status();
          if (gl->json) {
            out << DumpJson(InstanceInfoToJson(*instance));
          } else {
            PrintInstance(out, *instance);
          }
          return absl::OkStatus();
        };
      });
  // health: gRPC health, plus the admin /health JSON with --admin.
  auto* health = app.add_subcommand(
      "health", "gRPC health status; exit 1 unless SERVING (and /health is 200 with --admin)");
  health->add_option("--service", a->health_service, "service name (default: the server)");
  health->add_option("--admin", a->health_admin,
                     "also fetch GET /health from this admin address (host:port)");
  health->callback([=] {
    *act = [=](Client& c, std::ostream& out) -> absl::Status {
      auto status = c.CheckHealth(a->health_service);
      if (!status.ok()) return status.status();
      const std::string name(ServingStatusName(*status));
      absl::Status admin_status = absl::OkStatus();
      std::string admin_body;
      if (!a->health_admin.empty()) {
        admin_status = AdminGet(*gl, a->health_admin, "/health", &admin_body);
      }
      if (gl->json) {
        Json json{{"status", name}};
        if (!a->health_admin.empty()) {
          Json admin = Json::parse(admin_body, nullptr, /*allow_exceptions=*/false);
          // Not JSON (or no reply): keep the raw text for the operator.
          json["admin"] = admin.is_discarded() ? Json(admin_body) : admin;
        }
        out << DumpJson(json);
      } else {
        out << name << "\n";
        if (!a->health_admin.empty() && !admin_body.empty()) {
          out << "admin /health: " << admin_body;
          if (admin_body.back() != '\n') out << "\n";
        }
      }
      if (*status != ServingStatus::kServing) {
        return absl::UnavailableError(absl::StrCat("sidecar is ", name));
      }
      return admin_status;
    };
  });

  app.add_subcommand("instances", "every live instance of the cluster (registry)")
      ->callback([=] {
        *act = [=](Client& c, std::ostream& out) -> absl::Status {
          auto instances = c.ListInstances();
          if (!instances.ok()) return instances.status();
          if (gl->json) {
            Json array = Json::array();
            for (const InstanceInfo& i : *instances) array.push_back(InstanceToJson(i));
            out << DumpJson(Json{{"instances", std::move(array)}});
          } else {
            PrintInstanceTable(out, *instances);
          }
          return absl::OkStatus();
        };
      });

  auto* metrics = app.add_subcommand(
      "metrics", "the sidecar's Prometheus metrics (GET /metrics on the admin port)");
  metrics->add_option("--admin", a->metrics_admin,
                      "admin address host:port (default: $STATESIDE_ADMIN_ADDR, "
                      "else 127.0.0.1:9464)");
  metrics->add_option("--grep", a->metrics_grep, "only lines containing this text");
  metrics->callback([=] {
    *act = [=](Client&, std::ostream& out) -> absl::Status {
      const std::string address =
          a->metrics_admin.empty() ? DefaultAdminAddress() : a->metrics_admin;
      std::string body;
      if (absl::Status s = AdminGet(*gl, address, "/metrics", &body); !s.ok()) return s;
      for (absl::string_view line : absl::StrSplit(body, '\n', absl::SkipEmpty())) {
        if (!a->metrics_grep.empty() && !absl::StrContains(line, a->metrics_grep)) continue;
        if (!gl->json) {
          out << line << "\n";
          continue;
        }
        // JSON: samples only (HELP/TYPE comments are for the text format).
        auto sample = ParseMetricSample(std::string_view(line.data(), line.size()));
        if (sample.ok()) out << DumpJsonLine(*sample);
      }
      return absl::OkStatus();
    };
  });

  auto* drain = app.add_subcommand(
      "drain",
      "start the sidecar's drain (as SIGTERM does) and follow it until the "
      "sidecar ends it");
  drain->add_flag(
      "--no-follow", a->drain_no_follow,
      "return as soon as the drain has started; the sidecar then stays up "
      "after the drain (not ready, serving nothing) until its own SIGTERM: "
      "the Kubernetes preStop hook of a native sidecar");
  drain->callback([=] {
    *act = [=](Client& c, std::ostream& out) -> absl::Status {
      if (!a->drain_no_follow) {
        if (absl::Status s = c.Drain(); !s.ok()) return s;
        return FollowDrain(c, out, gl->json);
      }
      if (absl::Status s = c.Drain(Client::AfterDrain::kHoldUntilSignal); !s.ok()) {
        return s;
      }
      if (gl->json) {
        out << DumpJsonLine(Json{{"event", "drain_started"}});
      } else {
        out << "drain started; the sidecar exits on its SIGTERM\n";
      }
      return absl::OkStatus();
    };
  });

  app.add_subcommand("watch-drain", "print each drain state until the stream ends")
      ->callback([=] {
        *act = [=](Client& c, std::ostream& out) -> absl::Status {
          return FollowDrain(c, out, gl->json);
        };
      });
}

}  // namespace stateside::cli
