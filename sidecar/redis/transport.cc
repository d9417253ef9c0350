// TCP, Unix-socket and TLS transports over Boost.Asio. The only file of the
// Redis layer that includes asio::ssl / OpenSSL.
#include "sidecar/redis/transport.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <array>
#include <cstdint>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <type_traits>
#include <utility>

#include "absl/strings/str_cat.h"

namespace stateside::redis {
namespace {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using asio::ip::tcp;
using asio::local::stream_protocol;
using boost::system::error_code;

constexpr size_t kReadBufferBytes = 64 * 1024;

template <typename Stream>
constexpr bool kIsTls = std::is_same_v<Stream, ssl::stream<tcp::socket>>;
template <typename Stream>
constexpr bool kIsUnix = std::is_same_v<Stream, stream_protocol::socket>;

bool IsIpLiteral(const std::string& host) {
  error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

template <typename Stream>
class StreamTransport final : public Transport,
                              public std::enable_shared_from_this<StreamTransport<Stream>> {
 public:
  // `host`/`port` say where to connect (options' own endpoint, or a node
  // the topology named); everything else comes from `options`.
  StreamTransport(asio::io_context* io, const RedisOptions* options, ssl::context* tls,
                  std::string host, int port)
      : options_(options),
        host_(std::move(host)),
        port_(port),
        resolver_(*io),
        stream_(MakeStream(io, tls)) {}

  void AsyncConnect(DoneCallback done) override {
    auto self = this->shared_from_this();
    if constexpr (kIsUnix<Stream>) {
      stream_.async_connect(stream_protocol::endpoint(options_->unix_path),
                            [self, done = std::move(done)](const error_code& ec) {
                              if (ec) return done(self->Fail("connect to", ec));
                              done(absl::OkStatus());
                            });
    } else {
      // An IP address needs no lookup. Connecting to it directly also spares
      // a thread: asio runs getaddrinfo on a thread of the io_context's own,
      // started by the first lookup and kept until the io_context goes.
      error_code not_literal;
      const asio::ip::address address = asio::ip::make_address(host_, not_literal);
      if (!not_literal) {
        Lowest().async_connect(
            tcp::endpoint(address, static_cast<uint16_t>(port_)),
            [self, done = std::move(done)](const error_code& ec) mutable {
              self->Connected(ec, std::move(done));
            });
        return;
      }
      resolver_.async_resolve(
          host_, std::to_string(port_),
          [self, done = std::move(done)](const error_code& ec, tcp::resolver::results_type results) mutable {
            if (ec) return done(self->Fail("resolve", ec));
            asio::async_connect(self->Lowest(), results,
                                [self, done = std::move(done)](const error_code& ec,
                                                               const tcp::endpoint&) mutable {
                                  self->Connected(ec, std::move(done));
                                });
          });
    }
  }

  void AsyncWrite(std::string data, DoneCallback done) override {
    write_buf_ = std::move(data);
    auto self = this->shared_from_this();
    asio::async_write(stream_, asio::buffer(write_buf_),
                      [self, done = std::move(done)](const error_code& ec, size_t) {
                        if (ec) return done(self->Fail("write to", ec));
                        done(absl::OkStatus());
                      });
  }

  void AsyncRead(ReadCallback done) override {
    auto self = this->shared_from_this();
    stream_.async_read_some(
        asio::buffer(read_buf_), [self, done = std::move(done)](const error_code& ec, size_t n) {
          if (ec) return done(self->Fail("read from", ec), {});
          done(absl::OkStatus(), std::string_view(self->read_buf_.data(), n));
        });
  }

  void Close() override {
    error_code ignored;
    if constexpr (!kIsUnix<Stream>) resolver_.cancel();
    Lowest().close(ignored);
  }

 private:
  static Stream MakeStream(asio::io_context* io, ssl::context* tls) {
    if constexpr (kIsTls<Stream>) {
      return Stream(*io, *tls);
    } else {
      return Stream(*io);
    }
  }

  // The TCP connect's end: the socket's options, then TLS's handshake.
  void Connected(const error_code& ec, DoneCallback done) {
    if (ec) return done(Fail("connect to", ec));
    error_code ignored;
    Lowest().set_option(tcp::no_delay(true), ignored);
    Lowest().set_option(asio::socket_base::keep_alive(true), ignored);
    Handshake(std::move(done));
  }

  auto& Lowest() {
    if constexpr (kIsTls<Stream>) {
      return stream_.lowest_layer();
    } else {
      return stream_;
    }
  }

  std::string Endpoint() const {
    if (!options_->unix_path.empty()) return options_->unix_path;
    return absl::StrCat(host_, ":", port_);
  }

  absl::Status Fail(absl::string_view what, const error_code& ec) {
    if (ec == asio::error::eof || ec == asio::error::connection_reset) {
      return absl::UnavailableError(
          absl::StrCat("redis: connection to ", Endpoint(), " closed by the server"));
    }
    return absl::UnavailableError(
        absl::StrCat("redis: ", what, " ", Endpoint(), " failed: ", ec.message()));
  }

  void Handshake(DoneCallback done) {
    if constexpr (kIsTls<Stream>) {
      const RedisTlsOptions& tls = options_->tls;
      const std::string& name = tls.server_name.empty() ? host_ : tls.server_name;
      // SNI carries host names only (RFC 6066), never an address literal.
      if (!IsIpLiteral(name)) SSL_set_tlsext_host_name(stream_.native_handle(), name.c_str());
      if (tls.verify_peer) {
        stream_.set_verify_mode(ssl::verify_peer);
        stream_.set_verify_callback(
            [this, check = ssl::host_name_verification(name)](bool preverified,
                                                              ssl::verify_context& ctx) mutable {
              // Only the leaf (depth 0) carries the name; remember a mismatch so
              // the error says so instead of a bare "certificate verify failed".
              const bool ok = check(preverified, ctx);
              if (preverified && !ok &&
                  X509_STORE_CTX_get_error_depth(ctx.native_handle()) == 0) {
                name_mismatch_ = true;
              }
              return ok;
            });
      } else {
        stream_.set_verify_mode(ssl::verify_none);
      }
      auto self = this->shared_from_this();
      stream_.async_handshake(ssl::stream_base::client, [self, done = std::move(done),
                                                         name](const error_code& ec) {
        if (!ec) return done(absl::OkStatus());
        std::string why = ec.message();
        if (self->name_mismatch_) {
          why = absl::StrCat("server certificate does not match the name \"", name, "\"");
        } else {
          const long verify = SSL_get_verify_result(self->stream_.native_handle());
          if (verify != X509_V_OK) {
            absl::StrAppend(&why, " (", X509_verify_cert_error_string(verify), ")");
          }
        }
        done(absl::UnavailableError(absl::StrCat("redis: TLS handshake with ", self->Endpoint(),
                                                 " failed: ", why)));
      });
    } else {
      done(absl::OkStatus());
    }
  }

  const RedisOptions* const options_;
  const std::string host_;
  const int port_;
  tcp::resolver resolver_;
  Stream stream_;
  bool name_mismatch_ = false;  // set by the verify callback
  std::string write_buf_;       // the batch being written
  std::array<char, kReadBufferBytes> read_buf_;
};

class Factory final : public TransportFactory {
 public:
  Factory(asio::io_context* io, const RedisOptions& options, std::unique_ptr<ssl::context> tls)
      : io_(io), options_(options), tls_(std::move(tls)) {}

  std::shared_ptr<Transport> New() override {
    if (!options_.unix_path.empty()) {
      return std::make_shared<StreamTransport<stream_protocol::socket>>(io_, &options_, nullptr,
                                                                        "", 0);
    }
    return NewTo(RedisNode{options_.host, options_.port});
  }

  std::shared_ptr<Transport> NewTo(const RedisNode& node) override {
    if (tls_ != nullptr) {
      return std::make_shared<StreamTransport<ssl::stream<tcp::socket>>>(io_, &options_, tls_.get(),
                                                                         node.host, node.port);
    }
    return std::make_shared<StreamTransport<tcp::socket>>(io_, &options_, nullptr, node.host,
                                                          node.port);
  }

 private:
  asio::io_context* const io_;
  const RedisOptions options_;
  const std::unique_ptr<ssl::context> tls_;
};

absl::StatusOr<std::unique_ptr<ssl::context>> MakeTlsContext(const RedisTlsOptions& tls) {
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
  error_code ec;
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                       ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1,
                   ec);
  if (!tls.ca_file.empty()) {
    ctx->load_verify_file(tls.ca_file, ec);
    if (ec) {
      return absl::InvalidArgumentError(absl::StrCat("redis tls: cannot load CA file \"",
                                                     tls.ca_file, "\": ", ec.message()));
    }
  } else {
    ctx->set_default_verify_paths(ec);
  }
  if (tls.cert_file.empty() != tls.key_file.empty()) {
    return absl::InvalidArgumentError(
        "redis tls: a client certificate needs its key and a key its certificate");
  }
  if (!tls.cert_file.empty()) {
    ctx->use_certificate_chain_file(tls.cert_file, ec);
    if (ec) {
      return absl::InvalidArgumentError(absl::StrCat("redis tls: cannot load certificate \"",
                                                     tls.cert_file, "\": ", ec.message()));
    }
    ctx->use_private_key_file(tls.key_file, ssl::context::pem, ec);
    if (ec) {
      return absl::InvalidArgumentError(absl::StrCat("redis tls: cannot load key \"",
                                                     tls.key_file, "\": ", ec.message()));
    }
  }
  return ctx;
}

}  // namespace

absl::StatusOr<std::unique_ptr<TransportFactory>> TransportFactory::Create(
    asio::io_context* io, const RedisOptions& options) {
  std::unique_ptr<ssl::context> tls;
  if (options.tls.enabled && options.unix_path.empty()) {
    auto ctx = MakeTlsContext(options.tls);
    if (!ctx.ok()) return ctx.status();
    tls = *std::move(ctx);
  }
  return std::make_unique<Factory>(io, options, std::move(tls));
}

}  // namespace stateside::redis
