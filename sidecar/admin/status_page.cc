// The admin status page: GET /info's document as server-rendered HTML.
#include "sidecar/admin/status_page.h"

#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"

namespace stateside::admin {
namespace {

using Json = nlohmann::json;

// A value for a table cell, escaped: "—" when absent or null, numbers
// without needless decimals, booleans as yes/no.
std::string Cell(const Json& value) {
  if (value.is_null()) return "&#8212;";
  if (value.is_boolean()) return value.get<bool>() ? "yes" : "no";
  if (value.is_number_integer() || value.is_number_unsigned()) return value.dump();
  if (value.is_number_float()) {
    const double d = value.get<double>();
    if (std::floor(d) == d && std::fabs(d) < 1e15) return absl::StrFormat("%.0f", d);
    return absl::StrFormat("%.3g", d);
  }
  if (value.is_string()) return HtmlEscape(value.get<std::string>());
  return HtmlEscape(value.dump(-1, ' ', false, Json::error_handler_t::replace));
}

const Json& Field(const Json& object, const char* name) {
  static const Json kNull;
  if (!object.is_object()) return kNull;
  auto it = object.find(name);
  return it == object.end() ? kNull : *it;
}

// A string field's text; "" when it is not a string.
std::string Text(const Json& value) {
  return value.is_string() ? value.get<std::string>() : std::string();
}

// A latency in seconds as milliseconds.
std::string Millis(const Json& seconds) {
  if (!seconds.is_number()) return "&#8212;";
  return absl::StrFormat("%.3f ms", seconds.get<double>() * 1000);
}

void Row(std::string& out, absl::string_view label, const std::string& cell,
         absl::string_view id = "") {
  absl::StrAppend(&out, "<tr><th scope=\"row\">", label, "</th><td",
                  id.empty() ? "" : absl::StrCat(" id=\"", id, "\""), ">", cell, "</td></tr>\n");
}

// A table of name → number from an object of counters.
void CountTable(std::string& out, absl::string_view caption, const Json& counts,
                absl::string_view id) {
  absl::StrAppend(&out, "<table id=\"", id, "\"><caption>", caption, "</caption>\n");
  if (!counts.is_object() || counts.empty()) {
    absl::StrAppend(&out, "<tr><td>none</td></tr>\n");
  } else {
    for (const auto& [name, value] : counts.items()) Row(out, HtmlEscape(name), Cell(value));
  }
  absl::StrAppend(&out, "</table>\n");
}

void InstanceSection(std::string& out, const Json& info) {
  absl::StrAppend(&out, "<section aria-labelledby=\"h-instance\"><h2 id=\"h-instance\">",
                  "This instance</h2>\n<table>\n");
  Row(out, "id", Cell(Field(info, "id")), "instance-id");
  Row(out, "version", Cell(Field(info, "version")), "version");
  Row(out, "host / pid",
      absl::StrCat(Cell(Field(info, "hostname")), " / ", Cell(Field(info, "pid"))), "host-pid");
  Row(out, "started", Cell(Field(info, "start_time")));
  Row(out, "uptime", absl::StrCat(Cell(Field(info, "uptime_seconds")), " s"), "uptime");
  Row(out, "admin", Cell(Field(info, "admin_address")));
  Row(out, "drain state", Cell(Field(info, "drain_state")), "drain-state");
  const Json& reasons = Field(info, "not_ready_reasons");
  std::string why;
  if (reasons.is_array()) {
    for (const Json& reason : reasons) {
      absl::StrAppend(&why, why.empty() ? " (" : "; ", Cell(reason));
    }
    if (!why.empty()) why += ")";
  }
  Row(out, "ready", absl::StrCat(Cell(Field(info, "ready")), why), "ready");
  absl::StrAppend(&out, "</table>\n<h3>Drain timeline</h3>\n<ol id=\"drain-timeline\">\n");
  const Json& drain = Field(info, "drain");
  if (const Json& timeline = Field(drain, "timeline"); timeline.is_array()) {
    for (const Json& step : timeline) {
      absl::StrAppend(&out, "<li><time>", Cell(Field(step, "at")), "</time> ",
                      Cell(Field(step, "what")), "</li>\n");
    }
  }
  absl::StrAppend(&out, "</ol>\n<p>pre-stop delay ", Cell(Field(drain, "prestop_delay_seconds")),
                  " s, drain timeout ", Cell(Field(drain, "drain_timeout_seconds")),
                  " s, shutdown timeout ", Cell(Field(drain, "shutdown_timeout_seconds")),
                  " s</p>\n</section>\n");
}

void BackendSection(std::string& out, const Json& backend) {
  absl::StrAppend(&out, "<section aria-labelledby=\"h-backend\"><h2 id=\"h-backend\">",
                  "Backend</h2>\n<table>\n");
  Row(out, "kind", Cell(Field(backend, "kind")), "backend-kind");
  Row(out, "topology", Cell(Field(backend, "topology")), "backend-topology");
  Row(out, "connected", Cell(Field(backend, "connected")));
  Row(out, "commands", Cell(Field(backend, "commands")));
  Row(out, "latency (mean since start)", Millis(Field(backend, "mean_latency_seconds")));
  Row(out, "latency (mean, rate window)", Millis(Field(backend, "window_latency_seconds")));
  if (const Json& master = Field(backend, "master"); !Text(master).empty()) {
    Row(out, "master", Cell(master));
  }
  absl::StrAppend(&out, "</table>\n");
  CountTable(out, "Errors by kind", Field(backend, "errors"), "backend-errors");
  absl::StrAppend(&out, "</section>\n");
}

// The backend's nodes, across the page: a Cluster has six or more, each with
// its role, slots and round trips.
void NodesSection(std::string& out, const Json& backend) {
  const Json& nodes = Field(backend, "nodes");
  if (!nodes.is_array() || nodes.empty()) return;
  absl::StrAppend(&out, "<section class=\"wide\" aria-labelledby=\"h-nodes\">",
                  "<h2 id=\"h-nodes\">Backend nodes</h2>\n",
                  "<table id=\"backend-nodes\">\n",
                  "<tr><th scope=\"col\">address</th><th scope=\"col\">role</th>",
                  "<th scope=\"col\">slots</th><th scope=\"col\">connected</th>",
                  "<th scope=\"col\">latency (mean since start)</th>",
                  "<th scope=\"col\">latency (last reply)</th></tr>\n");
  for (const Json& node : nodes) {
    const Json& role = Field(node, "role");
    absl::StrAppend(&out, "<tr><td>", Cell(Field(node, "address")), "</td><td>",
                    Text(role).empty() ? "&#8212;" : Cell(role),
                    "</td><td>", Cell(Field(node, "slots")), "</td><td>",
                    Cell(Field(node, "connected")), "</td><td>",
                    Millis(Field(node, "mean_latency_seconds")), "</td><td>",
                    Millis(Field(node, "last_latency_seconds")), "</td></tr>\n");
  }
  absl::StrAppend(&out, "</table>\n</section>\n");
}

void ClusterSection(std::string& out, const Json& instances) {
  absl::StrAppend(&out, "<section class=\"wide\" aria-labelledby=\"h-cluster\">",
                  "<h2 id=\"h-cluster\">",
                  "Cluster (registry)</h2>\n<p>listed at ", Cell(Field(instances, "listed_at")));
  if (const Json& error = Field(instances, "error"); !Text(error).empty()) {
    absl::StrAppend(&out, " &#8212; <strong>last listing failed:</strong> ", Cell(error));
  }
  absl::StrAppend(&out, "</p>\n<table id=\"instances\">\n",
                  "<tr><th scope=\"col\">instance</th><th scope=\"col\">state</th>",
                  "<th scope=\"col\">ready</th><th scope=\"col\">age</th>",
                  "<th scope=\"col\">version</th><th scope=\"col\">admin</th></tr>\n");
  if (const Json& list = Field(instances, "list"); list.is_array()) {
    for (const Json& record : list) {
      absl::StrAppend(&out, "<tr><td>", Cell(Field(record, "id")), "</td><td>",
                      Cell(Field(record, "drain_state")), "</td><td>",
                      Cell(Field(record, "ready")), "</td><td>",
                      Cell(Field(record, "age_seconds")), " s</td><td>",
                      Cell(Field(record, "version")), "</td><td>",
                      Cell(Field(record, "admin_address")), "</td></tr>\n");
    }
  }
  absl::StrAppend(&out, "</table>\n</section>\n");
}

void SessionsSection(std::string& out, const Json& info) {
  const Json& s = Field(info, "sessions");
  auto per_second = [](const Json& v) {
    return v.is_number() ? absl::StrFormat("%.2f/s", v.get<double>()) : std::string("&#8212;");
  };
  absl::StrAppend(&out, "<section aria-labelledby=\"h-sessions\"><h2 id=\"h-sessions\">",
                  "Sessions</h2>\n<table id=\"sessions\">\n",
                  "<tr><td></td><th scope=\"col\">total</th><th scope=\"col\">rate</th></tr>\n");
  Row(out, "live (cluster estimate)", Cell(Field(s, "live_estimate")), "sessions-live");
  for (const char* what : {"created", "destroyed", "expired"}) {
    absl::StrAppend(&out, "<tr><th scope=\"row\">", what, "</th><td>", Cell(Field(s, what)),
                    "</td><td>", per_second(Field(s, absl::StrCat(what, "_per_second").c_str())),
                    "</td></tr>\n");
  }
  const Json& window = Field(info, "rate_window_seconds");
  absl::StrAppend(&out, "</table>\n<p>",
                  window.is_number()
                      ? absl::StrCat("rates over the last ", Cell(window), " s between views")
                      : std::string("rates show from the next view on"),
                  "</p>\n");
  CountTable(out, "Not found, by cause", Field(s, "not_found_by_cause"), "not-found");
  absl::StrAppend(&out, "</section>\n");
}

void RealtimeSection(std::string& out, const Json& rt) {
  absl::StrAppend(&out, "<section aria-labelledby=\"h-realtime\"><h2 id=\"h-realtime\">",
                  "Realtime</h2>\n<table id=\"realtime\">\n");
  for (const char* what :
       {"connections", "rooms", "subscribers", "queue_depth", "published", "delivered"}) {
    Row(out, what, Cell(Field(rt, what)));
  }
  absl::StrAppend(&out, "</table>\n");
  CountTable(out, "Dropped, by reason", Field(rt, "dropped_by_reason"), "dropped");
  CountTable(out, "Gaps, by reason", Field(rt, "gaps_by_reason"), "gaps");
  absl::StrAppend(&out, "</section>\n");
}

void KeysSection(std::string& out, const Json& keys) {
  absl::StrAppend(&out, "<section aria-labelledby=\"h-keys\"><h2 id=\"h-keys\">",
                  "Key ids</h2>\n<table id=\"keys\">\n",
                  "<tr><th scope=\"col\">key id</th><th scope=\"col\">primary</th>",
                  "<th scope=\"col\">session reads</th><th scope=\"col\">opt-out reads</th></tr>\n");
  if (keys.is_array()) {
    for (const Json& key : keys) {
      absl::StrAppend(&out, "<tr><td>", Cell(Field(key, "id")), "</td><td>",
                      Cell(Field(key, "primary")), "</td><td>", Cell(Field(key, "session_reads")),
                      "</td><td>", Cell(Field(key, "optout_reads")), "</td></tr>\n");
    }
  }
  absl::StrAppend(&out, "</table>\n</section>\n");
}

}  // namespace

std::string HtmlEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string RenderStatusPage(const Json& info) {
  const std::string id = Cell(Field(info, "id"));
  std::string out = absl::StrCat(
      "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n",
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n",
      "<meta http-equiv=\"refresh\" content=\"", kStatusRefreshSeconds, "\">\n",
      "<title>stateside ", id, "</title>\n<link rel=\"stylesheet\" href=\"/status.css\">\n",
      "</head>\n<body>\n<header><h1>stateside <span id=\"title-id\">", id, "</span></h1>\n",
      "<p>Status at ", Cell(Field(info, "now")), "; reloads every ", kStatusRefreshSeconds,
      " s. The same data as JSON: <a href=\"/info\">/info</a>; metrics: ",
      "<a href=\"/metrics\">/metrics</a>.</p></header>\n<main>\n");
  InstanceSection(out, info);
  BackendSection(out, Field(info, "backend_status"));
  NodesSection(out, Field(info, "backend_status"));
  ClusterSection(out, Field(info, "instances"));
  SessionsSection(out, info);
  RealtimeSection(out, Field(info, "realtime"));
  KeysSection(out, Field(info, "keys"));
  absl::StrAppend(&out, "</main>\n</body>\n</html>\n");
  return out;
}

std::string_view StatusPageStyle() {
  return "body{font-family:system-ui,sans-serif;margin:1em auto;max-width:72em;padding:0 .5em;"
         "color:#111;background:#fff}"
         "main{display:grid;grid-template-columns:repeat(auto-fit,minmax(21em,1fr));gap:1em;"
         "align-items:start}.wide{grid-column:1/-1}"
         "section{border:1px solid #ccc;border-radius:4px;padding:.5em;overflow-x:auto}"
         "h1{font-size:1.4em}h2{font-size:1.1em;margin:.2em 0}h3{font-size:1em}"
         "table{border-collapse:collapse;margin:.3em 0;width:100%}"
         "th,td{text-align:left;padding:.15em .4em;border-bottom:1px solid #eee;"
         "font-variant-numeric:tabular-nums}"
         "caption{text-align:left;font-weight:bold}ol{padding-left:1.2em}"
         "a{color:#0645ad}\n";
}

}  // namespace stateside::admin
