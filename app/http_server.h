// HttpServer: the TCP listener and one HttpSession per connection
// (HTTP/1.1 keep-alive, Beast). Requests that call the sidecar chain the
// client's Async forms (Routes::Serve); the answer is posted back to the
// connection's strand, so no thread waits for the sidecar. GET /ws upgrades
// become WebSocketSessions.
// Thread-safe: StopAccepting/CloseIdle from any non-I/O thread; the rest
// runs on the I/O threads' strands.
//
// Limits: a request (headers and body) must arrive within kReadTimeout of
// the connection waiting for it (also the keep-alive idle timeout), so a
// slow or silent client cannot hold a connection; a body above
// --max-body-bytes is 413, headers above 16 KiB 431, anything unparsable
// 400, each followed by closing the connection. Beyond --max-connections
// open connections (WebSockets included) a new one is answered 503 and
// closed; beyond --max-queued-requests requests waiting for or in a sidecar
// call, a request is answered 503 (Retry-After: 1). POSTs and the WebSocket
// upgrade pass the BrowserGuard first (403 / 415); every answer carries its
// security headers.
#ifndef STATESIDE_APP_HTTP_SERVER_H_
#define STATESIDE_APP_HTTP_SERVER_H_

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "app/browser_guard.h"
#include "app/config.h"
#include "app/drain.h"
#include "app/load_limit.h"
#include "app/routes.h"
#include "app/websocket_session.h"

namespace radar {

class HttpSession;

// Owned by main; outlive every session's handlers.
struct HttpDeps {
  const Routes* routes = nullptr;
  DrainState* drain = nullptr;
  const WebSocketDeps* websocket = nullptr;
  size_t max_body_bytes = 16384;
  std::vector<std::string> public_origins;  // empty: the listen address's
  size_t max_connections = 10000;
  size_t max_queued_requests = 1024;
};

class HttpServer {
 public:
  HttpServer(boost::asio::io_context& ioc, HttpDeps deps);

  // Binds and listens (synchronously; UNAVAILABLE naming the address on
  // failure), and fixes the public origins. Call before the I/O threads run.
  absl::Status Listen(const std::string& host, uint16_t port);
  uint16_t port() const { return port_; }
  // Set by Listen().
  const std::vector<std::string>& public_origins() const { return guard_->origins(); }
  // Starts accepting connections.
  void Start();
  // Closes the listener (new connections are refused); returns once it is
  // closed. REQUIRES: not on an I/O thread, I/O threads running.
  void StopAccepting();
  // Closes every connection that has been waiting for its next request for
  // at least `min_idle`; the others close after their current response
  // (Connection: close), or on a later call once idle that long. A proxy
  // whose upstream keep-alive timeout is shorter than `min_idle` has then
  // always closed such a connection itself first: no request of its can
  // meet our close (which it could not retry for a POST).
  void CloseIdle(absl::Duration min_idle);
  // Open HTTP connections (not counting those upgraded to WebSockets).
  size_t OpenConnections() const;

 private:
  friend class HttpSession;  // reads guard_, takes queued_ slots
  void DoAccept();

  boost::asio::io_context& ioc_;
  const HttpDeps deps_;  // constant after construction
  boost::asio::strand<boost::asio::io_context::executor_type> strand_;  // the acceptor's
  boost::asio::ip::tcp::acceptor acceptor_;  // on strand_
  boost::asio::steady_timer accept_backoff_;  // on strand_: after a failed accept
  uint16_t port_ = 0;                        // set by Listen()
  std::optional<BrowserGuard> guard_;        // set by Listen(), then constant
  LoadLimit connections_;                    // open connections
  LoadLimit queued_;                         // requests in the sidecar's hands

  mutable absl::Mutex mu_;
  // Live connections, for CloseIdle(); expired entries are pruned as new
  // ones come (sessions never reach back here from their destructors).
  std::list<std::weak_ptr<HttpSession>> sessions_ ABSL_GUARDED_BY(mu_);
  size_t added_since_prune_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace radar

#endif  // STATESIDE_APP_HTTP_SERVER_H_
