// radar-floor: the app-side floor of the web benchmark. A bare
// Boost.Beast HTTP/1.1 keep-alive server that answers `GET /me` and
// `POST /cart` with a fixed JSON body and calls nothing: what radar-app's I/O side costs with the
// sidecar taken away. Same threading model as radar-app's I/O side: one
// io_context run by --threads threads, each connection on its own strand.
//
//   radar-floor --listen 127.0.0.1:0 --threads 2
//
// Prints `radar-floor listening on <host>:<port>` once accepting (the actual
// port, so port 0 works). SIGINT/SIGTERM stop it (exit 0).
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "CLI/CLI.hpp"

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

// The shape of radar-app's GET /me answer for a logged-in user with an empty
// cart, so the bytes on the wire are comparable.
constexpr char kMeBody[] = R"({"user":"alice","cart":[],"instance":"floor"})";
// The shape of radar-app's POST /cart answer (the benchmark's item).
constexpr char kCartBody[] = R"({"item":"bench","instance":"floor"})";
constexpr char kInstance[] = "floor";
// radar-app's default request size limit (--max-body-bytes).
constexpr std::uint64_t kMaxBodyBytes = 16384;

http::response<http::string_body> Answer(const http::request<http::string_body>& req) {
  http::response<http::string_body> res;
  res.version(req.version());
  res.keep_alive(req.keep_alive());
  res.set(http::field::content_type, "application/json");
  res.set("X-Instance-Id", kInstance);
  const bool me = req.target() == "/me", cart = req.target() == "/cart";
  if (!me && !cart && req.target() != "/healthz") {
    res.result(http::status::not_found);
    res.body() = R"({"error":"not found"})";
  } else if (req.method() != (cart ? http::verb::post : http::verb::get)) {
    res.result(http::status::method_not_allowed);
    res.body() = R"({"error":"method not allowed"})";
  } else {
    res.result(http::status::ok);
    res.body() = me ? kMeBody : cart ? kCartBody : R"({"status":"ok","instance":"floor"})";
  }
  res.prepare_payload();
  return res;
}

// One keep-alive connection: read a request, write its answer, repeat. Its
// handlers run on the connection's strand; it owns itself through the
// shared_ptr its pending operation holds.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  explicit Connection(tcp::socket socket) : stream_(std::move(socket)) {}

  void Start() {
    net::dispatch(stream_.get_executor(),
                  beast::bind_front_handler(&Connection::Read, shared_from_this()));
  }

 private:
  void Read() {
    parser_.emplace();
    parser_->body_limit(kMaxBodyBytes);
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&Connection::OnRead, shared_from_this()));
  }

  void OnRead(beast::error_code ec, std::size_t) {
    if (ec) return Close();  // end of stream, reset or a bad request: drop it
    res_ = Answer(parser_->get());
    http::async_write(stream_, res_,
                      beast::bind_front_handler(&Connection::OnWrite, shared_from_this()));
  }

  void OnWrite(beast::error_code ec, std::size_t) {
    if (ec || !res_.keep_alive()) return Close();
    Read();
  }

  void Close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> res_;
};

class Listener : public std::enable_shared_from_this<Listener> {
 public:
  Listener(net::io_context& ioc, tcp::acceptor acceptor)
      : ioc_(ioc), acceptor_(std::move(acceptor)) {}

  void Accept() {
    // Each connection gets its own strand, as radar-app's do.
    acceptor_.async_accept(net::make_strand(ioc_),
                           beast::bind_front_handler(&Listener::OnAccept, shared_from_this()));
  }

 private:
  void OnAccept(beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted) return;
    if (!ec) {
      socket.set_option(tcp::no_delay(true), ec);
      std::make_shared<Connection>(std::move(socket))->Start();
    }
    Accept();
  }

  net::io_context& ioc_;
  tcp::acceptor acceptor_;
};

// "host:port" -> endpoint; false on a malformed value.
bool ParseListen(const std::string& text, tcp::endpoint* out) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  beast::error_code ec;
  const auto address = net::ip::make_address(text.substr(0, colon), ec);
  if (ec) return false;
  const std::string port = text.substr(colon + 1);
  if (port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos) {
    return false;
  }
  const int p = std::stoi(port);
  if (p > 65535) return false;
  *out = tcp::endpoint(address, static_cast<unsigned short>(p));
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"radar-floor: a bare Beast HTTP server answering GET /me (benchmark floor)"};
  std::string listen = "127.0.0.1:8080";
  int threads = 2;
  cli.add_option("--listen", listen, "HOST:PORT to listen on (port 0: any free port)")
      ->capture_default_str();
  cli.add_option("--threads", threads, "I/O threads")->capture_default_str()
      ->check(CLI::Range(1, 256));
  CLI11_PARSE(cli, argc, argv);

  tcp::endpoint endpoint;
  if (!ParseListen(listen, &endpoint)) {
    std::fprintf(stderr, "radar-floor: bad --listen \"%s\" (want HOST:PORT)\n", listen.c_str());
    return 2;
  }

  net::io_context ioc(threads);
  tcp::acceptor acceptor(ioc);
  beast::error_code ec;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    std::fprintf(stderr, "radar-floor: cannot listen on %s: %s\n", listen.c_str(),
                 ec.message().c_str());
    return 1;
  }
  const tcp::endpoint bound = acceptor.local_endpoint();
  std::make_shared<Listener>(ioc, std::move(acceptor))->Accept();

  net::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&ioc](beast::error_code, int) { ioc.stop(); });

  std::printf("radar-floor listening on %s:%u\n", bound.address().to_string().c_str(),
              static_cast<unsigned>(bound.port()));
  std::fflush(stdout);

  std::vector<std::thread> pool;
  pool.reserve(static_cast<size_t>(threads - 1));
  for (int i = 1; i < threads; ++i) pool.emplace_back([&ioc] { ioc.run(); });
  ioc.run();
  for (auto& t : pool) t.join();
  return 0;
}
