#include "tests/support/web_client.h"

#include <deque>
#include <thread>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace stateside::testing {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

constexpr uint64_t kMaxBodyBytes = 64 << 20;

// Debian's Abseil has its own string_view type.
absl::string_view AbslView(std::string_view s) { return absl::string_view(s.data(), s.size()); }

std::chrono::steady_clock::duration ToChrono(absl::Duration d) {
  return absl::ToChronoNanoseconds(d);
}

absl::Status FromError(const beast::error_code& ec, std::string_view what) {
  if (ec == beast::error::timeout) {
    return absl::DeadlineExceededError(absl::StrCat(AbslView(what), ": timed out"));
  }
  return absl::UnavailableError(absl::StrCat(AbslView(what), ": ", ec.message()));
}

tcp::endpoint Loopback(int port) {
  return tcp::endpoint(asio::ip::make_address_v4("127.0.0.1"), static_cast<uint16_t>(port));
}

}  // namespace

std::string HttpResponse::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (absl::EqualsIgnoreCase(k, AbslView(name))) return v;
  }
  return "";
}

std::vector<std::string> HttpResponse::SetCookies() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : headers) {
    if (absl::EqualsIgnoreCase(k, "set-cookie")) out.push_back(v);
  }
  return out;
}

std::optional<std::string> HttpResponse::Cookie(std::string_view name) const {
  const std::string prefix = absl::StrCat(AbslView(name), "=");
  for (const std::string& c : SetCookies()) {
    if (!absl::StartsWith(c, prefix)) continue;
    std::string_view v(c);
    v.remove_prefix(prefix.size());
    return std::string(v.substr(0, v.find(';')));
  }
  return std::nullopt;
}

struct HttpConnection::Impl {
  asio::io_context ioc;
  beast::tcp_stream stream{ioc};
  beast::flat_buffer buffer;
  bool broken = false;
};

HttpConnection::HttpConnection(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpConnection::~HttpConnection() {
  beast::error_code ignored;
  impl_->stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
}

absl::StatusOr<std::unique_ptr<HttpConnection>> HttpConnection::Open(int port,
                                                                     absl::Duration timeout) {
  auto impl = std::make_unique<Impl>();
  impl->stream.expires_after(ToChrono(timeout));
  beast::error_code ec;
  impl->stream.connect(Loopback(port), ec);
  if (ec) return FromError(ec, absl::StrCat("connect to 127.0.0.1:", port));
  return std::unique_ptr<HttpConnection>(new HttpConnection(std::move(impl)));
}

absl::StatusOr<HttpResponse> HttpConnection::Send(const HttpRequest& request,
                                                  absl::Duration timeout) {
  if (impl_->broken) return absl::UnavailableError("connection already failed");
  http::request<http::string_body> req;
  req.method_string(request.method);
  req.target(request.target);
  req.version(11);
  req.set(http::field::host, "127.0.0.1");
  bool has_type = false;
  for (const auto& [k, v] : request.headers) {
    req.insert(k, v);
    has_type = has_type || absl::EqualsIgnoreCase(k, "content-type");
  }
  if (!request.body.empty() && !has_type) req.set(http::field::content_type, "application/json");
  req.body() = request.body;
  req.prepare_payload();

  impl_->stream.expires_after(ToChrono(timeout));
  beast::error_code ec;
  http::write(impl_->stream, req, ec);
  if (ec) {
    impl_->broken = true;
    return FromError(ec, "write request");
  }
  http::response_parser<http::string_body> parser;
  parser.body_limit(kMaxBodyBytes);
  http::read(impl_->stream, impl_->buffer, parser, ec);
  if (ec) {
    impl_->broken = true;
    return FromError(ec, "read response");
  }
  http::response<http::string_body> res = parser.release();
  HttpResponse out;
  out.status = static_cast<int>(res.result_int());
  for (const auto& field : res) {
    out.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  out.body = std::move(res.body());
  out.keep_alive = res.keep_alive();
  if (!out.keep_alive) impl_->broken = true;
  return out;
}

absl::StatusOr<HttpResponse> HttpCall(int port, const HttpRequest& request,
                                      absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::StatusOr<std::unique_ptr<HttpConnection>> conn = HttpConnection::Open(port, timeout);
  if (!conn.ok()) return conn.status();
  return (*conn)->Send(request, std::max(deadline - absl::Now(), absl::Milliseconds(1)));
}

absl::StatusOr<double> ScrapeMetric(int port, const std::string& series) {
  HttpRequest request;
  request.target = "/metrics";
  absl::StatusOr<HttpResponse> response = HttpCall(port, request, absl::Seconds(5));
  if (!response.ok()) return response.status();
  if (response->status != 200) {
    return absl::UnavailableError(absl::StrCat("/metrics answered ", response->status));
  }
  const std::string needle = absl::StrCat("\n", series, " ");
  const size_t at = response->body.find(needle);
  if (at == std::string::npos) return absl::NotFoundError(absl::StrCat("no series ", series));
  const size_t start = at + needle.size();
  double value = 0;
  if (!absl::SimpleAtod(response->body.substr(start, response->body.find('\n', start) - start),
                        &value)) {
    return absl::InternalError(absl::StrCat("unreadable value of ", series));
  }
  return value;
}

struct WebSocketClient::Impl {
  asio::io_context ioc;
  websocket::stream<beast::tcp_stream> ws{ioc};
  beast::flat_buffer read_buffer;
  std::thread reader;

  absl::Mutex mu;
  std::deque<std::string> messages ABSL_GUARDED_BY(mu);
  std::optional<Message> closed ABSL_GUARDED_BY(mu);
  std::optional<absl::Status> broken ABSL_GUARDED_BY(mu);

  // Runs on the reader thread only.
  void ReadNext() {
    ws.async_read(read_buffer, [this](beast::error_code ec, size_t) {
      absl::MutexLock lock(&mu);
      if (ec == websocket::error::closed) {
        closed = Message{.closed = true,
                         .close_code = static_cast<uint16_t>(ws.reason().code),
                         .text = ""};
        if (closed->close_code == 0) closed->close_code = 1005;
        return;
      }
      if (ec) {
        broken = FromError(ec, "websocket read");
        return;
      }
      messages.push_back(beast::buffers_to_string(read_buffer.data()));
      read_buffer.consume(read_buffer.size());
      ReadNext();
    });
  }
  bool Ended() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return closed.has_value() || broken.has_value(); }
  bool HasNews() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return !messages.empty() || Ended(); }
};

WebSocketClient::WebSocketClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

WebSocketClient::~WebSocketClient() {
  Impl& s = *impl_;
  bool ended;
  {
    absl::MutexLock lock(&s.mu);
    ended = s.Ended();
  }
  if (!ended) {
    asio::post(s.ioc, [&s] { s.ws.async_close(websocket::close_code::normal, [](auto) {}); });
    absl::MutexLock lock(&s.mu);
    s.mu.AwaitWithTimeout(absl::Condition(&s, &Impl::Ended), absl::Seconds(2));
  }
  s.ioc.stop();
  s.reader.join();
}

absl::StatusOr<std::unique_ptr<WebSocketClient>> WebSocketClient::Connect(
    int port, std::string_view target,
    const std::vector<std::pair<std::string, std::string>>& headers, absl::Duration timeout) {
  auto impl = std::make_unique<Impl>();
  beast::tcp_stream& tcp_layer = beast::get_lowest_layer(impl->ws);
  tcp_layer.expires_after(ToChrono(timeout));
  beast::error_code ec;
  tcp_layer.connect(Loopback(port), ec);
  if (ec) return FromError(ec, absl::StrCat("connect to 127.0.0.1:", port));
  impl->ws.set_option(websocket::stream_base::decorator([headers](websocket::request_type& req) {
    for (const auto& [k, v] : headers) req.insert(k, v);
  }));
  // The asynchronous handshake: Beast 1.74's synchronous one leaves `res`
  // empty when the upgrade is refused, and the status is what tests check.
  websocket::response_type res;
  impl->ws.async_handshake(res, "127.0.0.1", std::string(target),
                           [&ec](beast::error_code e) { ec = e; });
  impl->ioc.run();
  impl->ioc.restart();
  if (ec == websocket::error::upgrade_declined) {
    return absl::FailedPreconditionError(
        absl::StrCat("upgrade refused: ", res.result_int(), " ", res.body()));
  }
  if (ec) return FromError(ec, "websocket handshake");
  // From here the websocket's own timeouts apply (none while idle).
  tcp_layer.expires_never();
  impl->ws.set_option(websocket::stream_base::timeout::suggested(beast::role_type::client));
  Impl* raw = impl.get();
  raw->ReadNext();
  raw->reader = std::thread([raw] { raw->ioc.run(); });
  return std::unique_ptr<WebSocketClient>(new WebSocketClient(std::move(impl)));
}

absl::Status WebSocketClient::Send(std::string_view text) {
  // Shared with the write's handler, which may outlive this call on a timeout.
  struct Pending {
    std::string text;
    absl::Mutex mu;
    std::optional<beast::error_code> result ABSL_GUARDED_BY(mu);
    bool Done() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return result.has_value(); }
  };
  auto pending = std::make_shared<Pending>();
  pending->text = std::string(text);
  Impl& s = *impl_;
  asio::post(s.ioc, [&s, pending] {
    s.ws.text(true);
    s.ws.async_write(asio::buffer(pending->text), [pending](beast::error_code ec, size_t) {
      absl::MutexLock lock(&pending->mu);
      pending->result = ec;
    });
  });
  absl::MutexLock lock(&pending->mu);
  if (!pending->mu.AwaitWithTimeout(absl::Condition(pending.get(), &Pending::Done),
                                    absl::Seconds(10))) {
    return absl::DeadlineExceededError("websocket write timed out");
  }
  if (*pending->result) return FromError(*pending->result, "websocket write");
  return absl::OkStatus();
}

absl::StatusOr<WebSocketClient::Message> WebSocketClient::Read(absl::Duration timeout) {
  Impl& s = *impl_;
  absl::MutexLock lock(&s.mu);
  if (!s.mu.AwaitWithTimeout(absl::Condition(&s, &Impl::HasNews), timeout)) {
    return absl::DeadlineExceededError("no websocket message within the timeout");
  }
  if (!s.messages.empty()) {
    Message m{.text = std::move(s.messages.front())};
    s.messages.pop_front();
    return m;
  }
  if (s.closed.has_value()) return *s.closed;
  return *s.broken;
}

absl::StatusOr<std::string> WebSocketClient::ReadUntil(std::string_view needle,
                                                       absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    absl::StatusOr<Message> m = Read(std::max(deadline - absl::Now(), absl::ZeroDuration()));
    if (!m.ok()) return m.status();
    if (m->closed) {
      return absl::UnavailableError(
          absl::StrCat("websocket closed (", m->close_code, ") before \"", AbslView(needle), "\""));
    }
    if (absl::StrContains(m->text, AbslView(needle))) return std::move(m->text);
  }
}

}  // namespace stateside::testing
