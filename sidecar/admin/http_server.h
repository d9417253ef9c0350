// The admin HTTP/1.1 listener (probes, /metrics, /info, POST /drain): a
// fixed table of routes served by Boost.Beast on one I/O thread of its own,
// never on gRPC threads. Hostile input is bounded: header and body size
// limits, a read deadline per request (slowloris), a connection cap and a
// per-peer connection cap. Who may call which route is the routes' business
// (access.h guards POST /drain).
//
// Thread-safety: Start(), Stop() and port() may be called from any thread
// (Start and Stop not concurrently with each other, and never from inside a
// handler). Handlers run on the listener's single I/O thread,
// one at a time, so they must be quick and must not block: read atomics or
// snapshots, or hand work to another thread.
#ifndef STATESIDE_SIDECAR_ADMIN_HTTP_SERVER_H_
#define STATESIDE_SIDECAR_ADMIN_HTTP_SERVER_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace stateside::admin {

struct HttpRequest {
  std::string method;  // as sent, e.g. "GET"
  std::string target;  // as sent, e.g. "/health?verbose=1"
  std::string path;    // target up to '?'
  std::string query;   // after '?', not decoded; empty if none
  std::vector<std::pair<std::string, std::string>> headers;  // as sent
  std::string body;    // at most AdminHttpOptions::max_body_bytes
  std::string peer;    // "ip:port" of the client
  // The client's IP alone, an IPv4-mapped IPv6 address as plain IPv4 (what
  // IsLoopbackAddress in access.h classifies).
  std::string peer_address;

  // The first header called `name` (case-insensitive); empty if absent.
  std::string_view Header(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;  // outside 100..599 is answered as 500
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  // Added as given. Content-Length, Connection and X-Instance-Id belong to
  // the server and are ignored here, as is any value holding CR or LF.
  std::vector<std::pair<std::string, std::string>> headers;

  static HttpResponse Text(int status, std::string body);
  static HttpResponse Json(int status, std::string body);
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

// One row of the table (Envoy's admin style). A GET route answers HEAD too.
struct AdminRoute {
  std::string method;  // "GET", "POST", ... (upper case)
  std::string path;    // exact match, e.g. "/health/ready"
  std::string help;    // one line for the route listing
  HttpHandler handler;
};

struct AdminHttpOptions {
  // "host:port", "[v6]:port"; host is an IP or a resolvable name; port 0
  // picks a free one (see port()).
  std::string address = "127.0.0.1:9464";
  std::string instance_id;  // sent as X-Instance-Id on every response
  // From the start of a request (or of idle keep-alive) to its last byte. A
  // client that trickles bytes gets 408 and is closed; an idle one is closed.
  absl::Duration read_timeout = absl::Seconds(5);
  // A client that does not read its response is dropped after this.
  absl::Duration write_timeout = absl::Seconds(5);
  size_t max_header_bytes = 8 * 1024;  // request line + fields; over → 431
  size_t max_body_bytes = 64 * 1024;   // over → 413
  // Probes come from kubelet and Prometheus: a few at a time. Past this cap a
  // new connection is closed at once, so a flood cannot exhaust fds.
  size_t max_connections = 1024;
  // Connections at once from one IP. Past it a new connection from that IP
  // is closed at once, so one client cannot hold every slot of
  // max_connections and starve the kubelet's probes (which come from the
  // node's IP). 32 leaves room for a scraper, probes and an operator.
  size_t max_connections_per_peer = 32;
  // Called on the I/O thread for each connection closed at accept by either
  // cap (for a metric); must be quick. May be empty.
  std::function<void()> on_connection_refused;
};

class AdminHttpServer {
 public:
  // Routes are fixed for the server's life; duplicates fail Start().
  AdminHttpServer(AdminHttpOptions options, std::vector<AdminRoute> routes);
  ~AdminHttpServer();  // Stop()s

  AdminHttpServer(const AdminHttpServer&) = delete;
  AdminHttpServer& operator=(const AdminHttpServer&) = delete;

  // Binds and starts the I/O thread. INVALID_ARGUMENT for a bad address or
  // route table, UNAVAILABLE if the address cannot be bound. At most once.
  absl::Status Start();

  // Closes the listener and every connection, then joins the I/O thread.
  // Idempotent. REQUIRES: not called from a handler.
  void Stop();

  // The bound port after a successful Start(); 0 before.
  int port() const;

  // "METHOD path  help" per route, one a line (for a /help page or logs).
  std::string RouteHelp() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace stateside::admin

#endif  // STATESIDE_SIDECAR_ADMIN_HTTP_SERVER_H_
