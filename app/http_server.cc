// HttpServer and HttpSession: accept, read with limits, route (inline or
// through the client's Async forms), write, keep alive; WebSocket upgrades
// handed over.
#include "app/http_server.h"

#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include <chrono>
#include <future>
#include <optional>
#include <utility>
#include <variant>

#include "absl/random/random.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "app/websocket_hub.h"
#include "spdlog/spdlog.h"

namespace radar {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

// A whole request must arrive within this of the connection waiting for it
// (slowloris bound), which is also how long an idle keep-alive connection
// stays open; a response must be taken within it too.
constexpr auto kReadTimeout = std::chrono::seconds(30);
// How long a closing connection keeps reading (and dropping) the client's
// remaining input; see LingeringClose().
constexpr auto kLingerTimeout = std::chrono::seconds(2);
constexpr uint32_t kHeaderLimit = 16 * 1024;  // cookies included

// 128 random bits, hex: unique among this instance's connections.
std::string NewConnectionId() {
  thread_local absl::BitGen gen;
  return absl::StrFormat("%016x%016x", absl::Uniform<uint64_t>(gen),
                         absl::Uniform<uint64_t>(gen));
}

}  // namespace

// One TCP connection: read a request, answer it, repeat while keep-alive.
// Everything runs on the connection's strand.
class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  // An empty `connection` slot: over the connection cap, answered 503.
  HttpSession(tcp::socket socket, HttpServer* server, LoadLimit::Slot connection)
      : deps_(&server->deps_),
        server_(server),
        executor_(socket.get_executor()),
        stream_(std::move(socket)),
        connection_(std::move(connection)) {}

  void Start() {
    asio::dispatch(executor_, [self = shared_from_this()] {
      if (self->connection_.held()) {
        self->DoRead();
        return;
      }
      // Before reading anything: the cap bounds what we hold, and the
      // lingering close after the answer drops what the client sends.
      self->Answer(Overloaded("too many connections"), /*keep_alive=*/false, 11);
    });
  }

  // Closes the connection if it has been between requests for at least
  // `min_idle`. Any thread.
  void CloseIfIdle(absl::Duration min_idle) {
    asio::post(executor_, [self = shared_from_this(), min_idle] {
      if (self->waiting_ && !self->parser_->got_some() &&
          absl::Now() - self->idle_since_ >= min_idle) {
        self->Close();
      }
    });
  }

 private:
  void DoRead() {
    // Also while draining: a proxy may already have sent a request on this
    // kept-alive connection. It is answered (with Connection: close, see
    // Answer) rather than cut off, which the proxy could not retry for a
    // non-idempotent method.
    waiting_ = true;
    idle_since_ = absl::Now();
    parser_.emplace();
    parser_->body_limit(deps_->max_body_bytes);
    parser_->header_limit(kHeaderLimit);
    stream_.expires_after(kReadTimeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) {
                       self->OnRead(ec);
                     });
  }

  void OnRead(beast::error_code ec) {
    waiting_ = false;
    if (ec == http::error::end_of_stream || ec == http::error::partial_message ||
        ec == beast::error::timeout || ec == asio::error::operation_aborted) {
      Close();
      return;
    }
    if (ec == http::error::body_limit) {
      Answer(ErrorResponse(http::status::payload_too_large, "request body too large"),
             /*keep_alive=*/false, /*version=*/11);
      return;
    }
    if (ec == http::error::header_limit) {
      Answer(ErrorResponse(http::status::request_header_fields_too_large,
                           "request headers too large"),
             false, 11);
      return;
    }
    if (ec.category() == http::make_error_code(http::error::bad_method).category()) {
      Answer(ErrorResponse(http::status::bad_request, "malformed request"), false, 11);
      return;
    }
    if (ec) {  // reset by the peer, and the like
      Close();
      return;
    }
    deps_->drain->WorkStarted();
    counted_ = true;
    Request request = parser_->release();
    const bool keep_alive = request.keep_alive();
    const unsigned version = request.version();
    if (beast::websocket::is_upgrade(request) &&
        TargetPath(Sv(request.target())) == "/ws" && request.method() == http::verb::get) {
      if (std::optional<Response> refused = server_->guard_->CheckUpgrade(request)) {
        Answer(*std::move(refused), keep_alive, version);
        return;
      }
      if (!TakeQueueSlot()) {
        Answer(Overloaded("too many requests queued"), keep_alive, version);
        return;
      }
      Upgrade(std::move(request));
      return;
    }
    if (std::optional<Response> now = deps_->routes->HandleInline(request)) {
      Answer(*std::move(now), keep_alive, version);
      return;
    }
    // Only known routes get here (HandleInline answers 404 and 405).
    if (request.method() == http::verb::post) {
      if (std::optional<Response> refused = server_->guard_->CheckPost(request)) {
        Answer(*std::move(refused), keep_alive, version);
        return;
      }
    }
    if (!TakeQueueSlot()) {
      Answer(Overloaded("too many requests queued"), keep_alive, version);
      return;
    }
    // No worker: the route chains the client's Async forms and its answer
    // comes back to this connection's strand.
    deps_->routes->Serve(request, executor_,
                         [self = shared_from_this(), keep_alive,
                          version](Response response) mutable {
                           asio::post(self->executor_, [self, response = std::move(response),
                                                        keep_alive, version]() mutable {
                             self->Answer(std::move(response), keep_alive, version);
                           });
                         });
  }

  // GET /ws with an Upgrade: check the session (asynchronously), then hand
  // the socket to a WebSocketSession, which registers and completes the
  // upgrade.
  void Upgrade(Request request) {
    auto upgrade = std::make_shared<Request>(std::move(request));
    deps_->routes->AuthenticateWebSocket(
        *upgrade, [self = shared_from_this(), upgrade](Routes::Authenticated user) mutable {
          asio::post(self->executor_, [self, upgrade, user = std::move(user)]() mutable {
            self->queue_slot_.Release();
            if (auto* refused = std::get_if<Response>(&user)) {
              self->Answer(std::move(*refused), upgrade->keep_alive(), upgrade->version());
              return;
            }
            auto session = std::make_shared<WebSocketSession>(
                self->deps_->websocket, std::move(self->stream_), NewConnectionId(),
                std::get<SocketOwner>(std::move(user)), std::move(self->connection_));
            session->Start(std::move(*upgrade));
            // The WebSocket counts as work of its own from here on.
            self->Done();
          });
        });
  }

  // A slot of the queued-work limit for this request; false at the cap.
  bool TakeQueueSlot() {
    queue_slot_ = server_->queued_.TryAcquire();
    return queue_slot_.held();
  }

  static Response Overloaded(std::string_view why) {
    spdlog::debug("503: {}", why);
    Response response = ErrorResponse(http::status::service_unavailable, "overloaded");
    response.set(http::field::retry_after, "1");
    return response;
  }

  void Answer(Response response, bool keep_alive, unsigned version) {
    queue_slot_.Release();
    response.version(version == 10 ? 10 : 11);
    response.set("X-Instance-Id", deps_->routes->instance());
    AddSecurityHeaders(response);
    // While draining every answer is the connection's last.
    response.keep_alive(keep_alive && !deps_->drain->draining());
    response.prepare_payload();
    response_ = std::make_shared<Response>(std::move(response));
    stream_.expires_after(kReadTimeout);
    http::async_write(stream_, *response_,
                      [self = shared_from_this()](beast::error_code ec, std::size_t) {
                        self->OnWrite(ec);
                      });
  }

  void OnWrite(beast::error_code ec) {
    const bool keep_alive = response_->keep_alive();
    response_.reset();
    Done();
    if (ec) {
      Close();
      return;
    }
    if (!keep_alive) {
      LingeringClose();
      return;
    }
    DoRead();
  }

  // After a last response: stop sending, then read and drop what the
  // client still sends (e.g. the rest of a body we refused with 413) for a
  // moment before closing. Closing with unread input would make the kernel
  // send a reset, which can destroy our response before the client reads it.
  void LingeringClose() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(kLingerTimeout);
    buffer_.clear();
    DiscardInput();
  }

  void DiscardInput() {
    stream_.async_read_some(buffer_.prepare(4096), [self = shared_from_this()](
                                                       beast::error_code ec, std::size_t) {
      self->buffer_.clear();
      if (ec) {
        self->Close();  // EOF (the client closed too), timeout or error
        return;
      }
      self->DiscardInput();
    });
  }

  // The request (if one was counted) is answered.
  void Done() {
    if (counted_) deps_->drain->WorkFinished();
    counted_ = false;
  }

  void Close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

  // Constant after construction. executor_ is the connection's strand, kept
  // apart from stream_, which moves to a WebSocketSession on an upgrade.
  const HttpDeps* const deps_;
  HttpServer* const server_;
  const tcp::socket::executor_type executor_;
  // On the strand only.
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<Response> response_;  // being written
  bool waiting_ = false;  // a read for the next request is pending
  absl::Time idle_since_;  // when that read began
  bool counted_ = false;  // a request is in flight (DrainState)
  // Moves to the WebSocketSession on an upgrade; empty: over the cap.
  LoadLimit::Slot connection_;
  LoadLimit::Slot queue_slot_;  // held while a request waits for the sidecar
};

HttpServer::HttpServer(asio::io_context& ioc, HttpDeps deps)
    : ioc_(ioc),
      deps_(std::move(deps)),
      strand_(asio::make_strand(ioc)),
      acceptor_(strand_),
      accept_backoff_(strand_),
      connections_(deps_.max_connections),
      queued_(deps_.max_queued_requests) {}

absl::Status HttpServer::Listen(const std::string& host, uint16_t port) {
  beast::error_code ec;
  const tcp::endpoint endpoint(asio::ip::make_address(host, ec), port);
  if (!ec) acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrFormat("cannot listen on %s:%d: %s", host, port, ec.message()));
  }
  port_ = acceptor_.local_endpoint(ec).port();
  guard_.emplace(deps_.public_origins.empty() ? BrowserGuard::ListenOrigins(host, port_)
                                              : deps_.public_origins);
  spdlog::info("public origins (may POST and open /ws): {}",
               absl::StrJoin(guard_->origins(), ", "));
  return absl::OkStatus();
}

void HttpServer::Start() {
  asio::post(strand_, [this] { DoAccept(); });
}

void HttpServer::DoAccept() {
  acceptor_.async_accept(asio::make_strand(ioc_), [this](beast::error_code ec,
                                                         tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (ec) {
      // E.g. out of file descriptors: try again shortly rather than spin.
      spdlog::warn("accept: {}", ec.message());
      accept_backoff_.expires_after(std::chrono::milliseconds(100));
      accept_backoff_.async_wait([this](beast::error_code wait_ec) {
        if (!wait_ec && acceptor_.is_open()) DoAccept();
      });
      return;
    } else {
      auto session =
          std::make_shared<HttpSession>(std::move(socket), this, connections_.TryAcquire());
      {
        absl::MutexLock lock(&mu_);
        if (++added_since_prune_ >= 256) {
          sessions_.remove_if([](const auto& weak) { return weak.expired(); });
          added_since_prune_ = 0;
        }
        sessions_.push_back(session);
      }
      session->Start();
    }
    DoAccept();
  });
}

void HttpServer::StopAccepting() {
  std::promise<void> closed;
  asio::post(strand_, [this, &closed] {
    beast::error_code ignored;
    acceptor_.close(ignored);
    accept_backoff_.cancel();
    closed.set_value();
  });
  closed.get_future().wait();
}

void HttpServer::CloseIdle(absl::Duration min_idle) {
  std::vector<std::shared_ptr<HttpSession>> live;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& weak : sessions_) {
      if (auto session = weak.lock()) live.push_back(std::move(session));
    }
  }
  for (const auto& session : live) session->CloseIfIdle(min_idle);
}

size_t HttpServer::OpenConnections() const {
  absl::MutexLock lock(&mu_);
  size_t open = 0;
  for (const auto& weak : sessions_) open += weak.expired() ? 0 : 1;
  return open;
}

}  // namespace radar
