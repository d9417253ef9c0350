// The admin HTTP listener: Beast on one io_context thread, one Connection
// object per socket, each request bounded in size and in time.
#include "sidecar/admin/http_server.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <exception>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "sidecar/common/string_view.h"

namespace stateside::admin {
namespace {

namespace net = boost::asio;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;
using boost::system::error_code;

// After an error response we stop sending but keep reading (and discarding)
// for a moment, so that a client still sending a huge header or body reads
// our 413/431 instead of a TCP reset (what nginx calls lingering close).
constexpr auto kMaxLinger = std::chrono::seconds(1);
constexpr size_t kMaxLingerBytes = 1 << 20;
// Back-off when accept() fails (EMFILE...), so the loop does not spin.
constexpr auto kAcceptRetry = std::chrono::milliseconds(50);
// Beast's parse errors (bad method, bad field, ...) all share this category.
const boost::system::error_category& kHttpErrors =
    http::make_error_code(http::error::bad_method).category();

std::chrono::steady_clock::duration ToChrono(absl::Duration d) {
  return absl::ToChronoNanoseconds(std::max(d, absl::Milliseconds(1)));
}

bool IsManagedHeader(std::string_view sv) {
  absl::string_view name = Sv(sv);
  return absl::EqualsIgnoreCase(name, "content-length") ||
         absl::EqualsIgnoreCase(name, "connection") ||
         absl::EqualsIgnoreCase(name, "transfer-encoding") ||
         absl::EqualsIgnoreCase(name, "x-instance-id");
}

// An IPv4-mapped IPv6 address (a v4 client of a dual-stack listener) as the
// IPv4 address it is, so that one client counts as one peer however it came.
net::ip::address Unmapped(const net::ip::address& address) {
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    return net::ip::make_address_v4(net::ip::v4_mapped, address.to_v6());
  }
  return address;
}

// Splits "host:port" / "[v6]:port".
absl::Status SplitAddress(const std::string& address, std::string* host,
                          uint16_t* port) {
  size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "admin address \"", address, "\" is not host:port"));
  }
  std::string h = address.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') {
    h = h.substr(1, h.size() - 2);
  }
  uint32_t p = 0;
  if (h.empty() || !absl::SimpleAtoi(address.substr(colon + 1), &p) ||
      p > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "admin address \"", address, "\" is not host:port"));
  }
  *host = std::move(h);
  *port = static_cast<uint16_t>(p);
  return absl::OkStatus();
}

}  // namespace

std::string_view HttpRequest::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (absl::EqualsIgnoreCase(key, Sv(name))) return value;
  }
  return {};
}

HttpResponse HttpResponse::Text(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

HttpResponse HttpResponse::Json(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.content_type = "application/json";
  r.body = std::move(body);
  return r;
}

namespace {

class Connection;

// The listener proper (AdminHttpServer::Impl is this, under a private name).
class Listener {
 public:
  Listener(AdminHttpOptions options, std::vector<AdminRoute> routes)
      : options_(std::move(options)),
        routes_(std::move(routes)),
        ioc_(1),
        acceptor_(ioc_),
        accept_retry_(ioc_) {}

  absl::Status Start();
  void Stop();
  int port() const { return port_.load(); }
  std::string RouteHelp() const;

  // Everything below runs on the I/O thread.
  const AdminHttpOptions& options() const { return options_; }
  HttpResponse Dispatch(const HttpRequest& request) const;
  void Forget(Connection* c, const net::ip::address& peer);

 private:
  void Accept();
  void OnAccept(error_code ec, tcp::socket socket);
  void CloseAll();

  // Constant after construction.
  const AdminHttpOptions options_;
  const std::vector<AdminRoute> routes_;

  net::io_context ioc_;  // declared first among I/O objects: destroyed last
  tcp::acceptor acceptor_;
  net::steady_timer accept_retry_;
  // Live connections, and how many of them each peer IP holds (entries
  // removed at zero); only touched on the I/O thread.
  std::map<Connection*, std::weak_ptr<Connection>> connections_;
  std::map<net::ip::address, size_t> per_peer_;
  bool stopping_ = false;  // I/O thread only

  std::atomic<int> port_{0};
  std::thread thread_;  // owned by Start()/Stop(), which callers serialise
  bool started_ = false;
};

// One client socket: read a request (bounded), answer, repeat while
// keep-alive. Lives as long as an async operation holds a shared_ptr to it.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  // `peer`: the client's endpoint, its address already unmapped.
  Connection(Listener* server, tcp::socket socket, const tcp::endpoint& peer)
      : server_(server),
        opts_(server->options()),
        socket_(std::move(socket)),
        timer_(socket_.get_executor()),
        buffer_(opts_.max_header_bytes + 4096),
        peer_ip_(peer.address()),
        peer_address_(peer.address().to_string()),
        peer_(absl::StrCat(peer_address_, ":", peer.port())) {
    error_code ec;
    socket_.set_option(tcp::no_delay(true), ec);
  }

  void Start() { ReadRequest(); }

  // Idempotent. Cancels everything pending; the handlers then see errors and
  // drop their references.
  void Close() {
    if (closed_) return;
    closed_ = true;
    ++timer_generation_;
    timer_.cancel();
    error_code ec;
    socket_.shutdown(tcp::socket::shutdown_both, ec);
    socket_.close(ec);
    server_->Forget(this, peer_ip_);
  }

 private:
  using Response = http::response<http::string_body>;

  // A deadline for the operation in progress. On expiry the socket's pending
  // operation is cancelled (not the socket closed) so the read handler can
  // still answer 408.
  void ArmTimer(std::chrono::steady_clock::duration after) {
    uint64_t generation = ++timer_generation_;
    timed_out_ = false;
    timer_.expires_after(after);
    timer_.async_wait([self = shared_from_this(), generation](error_code ec) {
      if (ec || generation != self->timer_generation_ || self->closed_) return;
      self->timed_out_ = true;
      error_code ignored;
      self->socket_.cancel(ignored);
    });
  }
  void DisarmTimer() {
    ++timer_generation_;
    timer_.cancel();
  }

  void ReadRequest() {
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(opts_.max_header_bytes));
    parser_->body_limit(opts_.max_body_bytes);
    ArmTimer(ToChrono(opts_.read_timeout));
    http::async_read(socket_, buffer_, *parser_,
                     [self = shared_from_this()](error_code ec, size_t) {
                       self->OnRead(ec);
                     });
  }

  void OnRead(error_code ec) {
    bool timed_out = timed_out_;
    DisarmTimer();
    if (closed_) return;
    // (A read that completed just as the deadline fired is served normally.)
    if (timed_out && ec) {
      // Half a request in the time allowed: say so. Idle keep-alive: just go.
      if (parser_->got_some() || buffer_.size() > 0) {
        return SendError(408, "request timeout\n");
      }
      return Close();
    }
    if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
      return SendError(431, "request header too large\n");
    }
    if (ec == http::error::body_limit) {
      return SendError(413, "request body too large\n");
    }
    if (ec == http::error::end_of_stream || ec == http::error::partial_message) {
      return Close();  // the peer went away: no one to tell
    }
    if (ec && ec.category() != kHttpErrors) return Close();  // socket error
    if (ec) return SendError(400, "bad request\n");  // not HTTP, or bad HTTP

    auto& message = parser_->get();
    HttpRequest request;
    request.method = std::string(message.method_string());
    request.target = std::string(message.target());
    size_t q = request.target.find('?');
    request.path = request.target.substr(0, q);
    if (q != std::string::npos) request.query = request.target.substr(q + 1);
    for (const auto& field : message) {
      request.headers.emplace_back(std::string(field.name_string()),
                                   std::string(field.value()));
    }
    request.body = std::move(message.body());
    request.peer = peer_;
    request.peer_address = peer_address_;

    HttpResponse response = server_->Dispatch(request);
    bool keep_alive = message.keep_alive();
    bool head = message.method() == http::verb::head;
    Send(Build(response, message.version(), keep_alive, head), !keep_alive);
  }

  Response Build(const HttpResponse& in, unsigned version, bool keep_alive,
                 bool head) const {
    Response out;
    out.version(version == 10 ? 10 : 11);
    int status = in.status >= 100 && in.status <= 599 ? in.status : 500;
    out.result(static_cast<unsigned>(status));
    out.set(http::field::content_type, in.content_type);
    out.set("X-Instance-Id", opts_.instance_id);
    for (const auto& [name, value] : in.headers) {
      if (IsManagedHeader(name) || absl::StrContains(name, '\r') ||
          absl::StrContains(name, '\n') || absl::StrContains(value, '\r') ||
          absl::StrContains(value, '\n')) {
        continue;
      }
      out.insert(name, value);
    }
    out.body() = in.body;
    out.prepare_payload();  // Content-Length of the body, also for HEAD
    if (head) out.body().clear();
    out.keep_alive(keep_alive);
    return out;
  }

  void SendError(int status, std::string text) {
    Send(Build(HttpResponse::Text(status, std::move(text)), 11, false, false),
         true);
  }

  void Send(Response response, bool close_after) {
    response_ = std::move(response);
    ArmTimer(ToChrono(opts_.write_timeout));
    http::async_write(socket_, response_,
                      [self = shared_from_this(), close_after](error_code ec,
                                                               size_t) {
                        self->OnWrite(ec, close_after);
                      });
  }

  void OnWrite(error_code ec, bool close_after) {
    DisarmTimer();
    if (closed_) return;
    if (ec) return Close();  // includes the write deadline's cancellation
    if (close_after) return Linger();
    ReadRequest();
  }

  // Stop sending, then discard what the client still sends (bounded in time
  // and bytes) so the response is read before the socket goes away.
  void Linger() {
    error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
    ArmTimer(std::min<std::chrono::steady_clock::duration>(
        kMaxLinger, ToChrono(opts_.read_timeout)));
    lingered_ = 0;
    Discard();
  }
  void Discard() {
    socket_.async_read_some(
        net::buffer(discard_),
        [self = shared_from_this()](error_code ec, size_t n) {
          self->lingered_ += n;
          if (ec || self->closed_ || self->lingered_ > kMaxLingerBytes) {
            return self->Close();
          }
          self->Discard();
        });
  }

  Listener* const server_;
  const AdminHttpOptions& opts_;
  tcp::socket socket_;
  net::steady_timer timer_;
  boost::beast::flat_buffer buffer_;  // bytes read past the current message
  std::optional<http::request_parser<http::string_body>> parser_;
  Response response_;  // must outlive async_write
  const net::ip::address peer_ip_;  // the per-peer count's key
  const std::string peer_address_;  // peer_ip_ as text
  const std::string peer_;          // "ip:port"
  uint64_t timer_generation_ = 0;  // invalidates a stale timer completion
  bool timed_out_ = false;  // the current operation's deadline passed
  bool closed_ = false;
  size_t lingered_ = 0;
  std::array<char, 4096> discard_;
};

absl::Status Listener::Start() {
  if (started_) return absl::FailedPreconditionError("admin server: started twice");
  std::set<std::pair<std::string, std::string>> seen;
  for (const AdminRoute& route : routes_) {
    if (route.method.empty() || route.path.empty() || route.path[0] != '/' ||
        !route.handler) {
      return absl::InvalidArgumentError(absl::StrCat(
          "admin route \"", route.method, " ", route.path, "\" is incomplete"));
    }
    if (!seen.emplace(route.method, route.path).second) {
      return absl::InvalidArgumentError(absl::StrCat(
          "admin route \"", route.method, " ", route.path, "\" is duplicated"));
    }
  }
  std::string host;
  uint16_t port = 0;
  if (absl::Status s = SplitAddress(options_.address, &host, &port); !s.ok()) {
    return s;
  }
  error_code ec;
  tcp::resolver resolver(ioc_);
  auto results = resolver.resolve(host, std::to_string(port),
                                  tcp::resolver::numeric_service, ec);
  if (ec || results.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "admin address \"", options_.address, "\": ", ec.message()));
  }
  tcp::endpoint endpoint = results.begin()->endpoint();
  auto fail = [&](const char* what) {
    error_code ignored;
    acceptor_.close(ignored);
    return absl::UnavailableError(absl::StrCat("admin listener ", what, " ",
                                               options_.address, ": ",
                                               ec.message()));
  };
  acceptor_.open(endpoint.protocol(), ec);
  if (ec) return fail("open");
  acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (ec) return fail("setsockopt");
  acceptor_.bind(endpoint, ec);
  if (ec) return fail("bind");
  acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return fail("listen");
  port_ = acceptor_.local_endpoint(ec).port();
  started_ = true;
  Accept();
  thread_ = std::thread([this] { ioc_.run(); });
  return absl::OkStatus();
}

void Listener::Stop() {
  if (!started_ || !thread_.joinable()) return;
  // Once the listener and every socket are closed and their handlers have
  // run, run() has no work left and returns.
  net::post(ioc_, [this] { CloseAll(); });
  thread_.join();
}

void Listener::CloseAll() {
  stopping_ = true;
  error_code ignored;
  acceptor_.close(ignored);
  accept_retry_.cancel();
  auto live = connections_;  // Close() erases from connections_
  for (auto& [raw, weak] : live) {
    if (auto c = weak.lock()) c->Close();
  }
  connections_.clear();
  per_peer_.clear();
}

void Listener::Accept() {
  acceptor_.async_accept(
      [this](error_code ec, tcp::socket socket) { OnAccept(ec, std::move(socket)); });
}

void Listener::OnAccept(error_code ec, tcp::socket socket) {
  if (stopping_ || ec == net::error::operation_aborted) return;
  if (ec) {
    // Out of fds or similar: try again shortly instead of spinning.
    accept_retry_.expires_after(kAcceptRetry);
    accept_retry_.async_wait([this](error_code wait_ec) {
      if (!wait_ec && !stopping_) Accept();
    });
    return;
  }
  error_code peer_ec;
  tcp::endpoint peer = socket.remote_endpoint(peer_ec);
  if (peer_ec) {  // gone already (reset before we got to it)
    socket.close(peer_ec);
    return Accept();
  }
  peer.address(Unmapped(peer.address()));
  auto held = per_peer_.try_emplace(peer.address(), 0).first;
  if (connections_.size() >= options_.max_connections ||
      held->second >= options_.max_connections_per_peer) {
    if (held->second == 0) per_peer_.erase(held);
    // Counted before the close, so a client that saw the close sees the count.
    if (options_.on_connection_refused) options_.on_connection_refused();
    error_code ignored;
    socket.close(ignored);
  } else {
    ++held->second;
    auto c = std::make_shared<Connection>(this, std::move(socket), peer);
    connections_.emplace(c.get(), c);
    c->Start();
  }
  Accept();
}

void Listener::Forget(Connection* c, const net::ip::address& peer) {
  if (connections_.erase(c) == 0) return;  // CloseAll forgot it already
  auto it = per_peer_.find(peer);
  if (it != per_peer_.end() && --it->second == 0) per_peer_.erase(it);
}

HttpResponse Listener::Dispatch(const HttpRequest& request) const {
  const AdminRoute* match = nullptr;
  std::set<std::string> allowed;
  for (const AdminRoute& route : routes_) {
    if (route.path != request.path) continue;
    allowed.insert(route.method);
    if (route.method == "GET") allowed.insert("HEAD");
    if (route.method == request.method ||
        (request.method == "HEAD" && route.method == "GET" && !match)) {
      match = &route;
    }
  }
  if (allowed.empty()) return HttpResponse::Text(404, "not found\n");
  if (match == nullptr) {
    HttpResponse r = HttpResponse::Text(405, "method not allowed\n");
    r.headers.emplace_back("Allow", absl::StrJoin(allowed, ", "));
    return r;
  }
  try {
    return match->handler(request);
  } catch (const std::exception& e) {
    return HttpResponse::Text(500, absl::StrCat("internal error: ", e.what(), "\n"));
  } catch (...) {
    return HttpResponse::Text(500, "internal error\n");
  }
}

std::string Listener::RouteHelp() const {
  std::string out;
  for (const AdminRoute& route : routes_) {
    absl::StrAppend(&out, route.method, " ", route.path, "  ", route.help, "\n");
  }
  return out;
}

}  // namespace

class AdminHttpServer::Impl : public Listener {
 public:
  using Listener::Listener;
};

AdminHttpServer::AdminHttpServer(AdminHttpOptions options,
                                 std::vector<AdminRoute> routes)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(routes))) {}

AdminHttpServer::~AdminHttpServer() { Stop(); }

absl::Status AdminHttpServer::Start() { return impl_->Start(); }
void AdminHttpServer::Stop() { impl_->Stop(); }
int AdminHttpServer::port() const { return impl_->port(); }
std::string AdminHttpServer::RouteHelp() const { return impl_->RouteHelp(); }

}  // namespace stateside::admin
