// The byte stream under a Redis connection: TCP, a Unix socket, or TLS over
// TCP (asio::ssl). transport.cc is the one file of the Redis layer that
// includes boost/asio/ssl.hpp (and so OpenSSL); the crypto module's "OpenSSL
// in exactly one .cc" rule is about session crypto, which never comes here.
//
// Not thread-safe: a Transport is used on its io_context's single thread. At
// most one read and one write are outstanding at a time. Completion handlers
// keep the transport alive (it is shared), so Close() followed by dropping the
// last reference is safe while operations are pending.
#ifndef STATESIDE_SIDECAR_REDIS_TRANSPORT_H_
#define STATESIDE_SIDECAR_REDIS_TRANSPORT_H_

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sidecar/redis/redis_options.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace stateside::redis {

class Transport {
 public:
  using DoneCallback = std::function<void(absl::Status)>;
  // `data` is valid only during the call.
  using ReadCallback = std::function<void(absl::Status, std::string_view data)>;

  virtual ~Transport() = default;

  // Resolves, connects and, for TLS, handshakes with certificate and server
  // name verification. Errors are UNAVAILABLE naming the endpoint and cause.
  virtual void AsyncConnect(DoneCallback done) = 0;
  // Writes all of `data` (the transport keeps it until done).
  virtual void AsyncWrite(std::string data, DoneCallback done) = 0;
  // Reads what is available (at least one byte) into an internal buffer.
  // End of stream is UNAVAILABLE("connection closed by the server").
  virtual void AsyncRead(ReadCallback done) = 0;
  // Cancels everything outstanding; idempotent.
  virtual void Close() = 0;
};

// Makes transports for one endpoint (or, with NewTo, for the nodes of a
// topology). Create() loads TLS files once, so a bad
// CA, certificate or key path is an INVALID_ARGUMENT at start-up rather than a
// connect error forever after. Used on the io_context's thread after Create.
class TransportFactory {
 public:
  static absl::StatusOr<std::unique_ptr<TransportFactory>> Create(
      boost::asio::io_context* io, const RedisOptions& options);
  virtual ~TransportFactory() = default;
  virtual std::shared_ptr<Transport> New() = 0;
  // A TCP (or TLS) transport to `node` instead of the options' endpoint,
  // with the same credentials-free settings (TLS context, server name unless
  // one is configured = node.host): Sentinel's master and the sentinels.
  virtual std::shared_ptr<Transport> NewTo(const RedisNode& node) = 0;
};

}  // namespace stateside::redis

#endif  // STATESIDE_SIDECAR_REDIS_TRANSPORT_H_
