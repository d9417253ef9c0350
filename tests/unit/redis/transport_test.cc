// The TCP transport's connect: to an IP address it connects without a
// lookup, so the io_context starts no resolver thread; to a host name it
// resolves (on the thread asio starts for lookups) and connects the same.
#include "sidecar/redis/transport.h"

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio.hpp>

#include "gtest/gtest.h"
#include "sidecar/redis/redis_options.h"

namespace stateside::redis {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;

// The threads of this process (the test's own, and asio's if it started any).
int ThreadCount() {
  int n = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/task")) {
    ++n;
  }
  return n;
}

// Connects a transport to `host` and a listener on 127.0.0.1, both on one
// io_context run by this thread; returns the connect's status and, in
// `threads_after`, the thread count while the io_context still lives.
absl::Status ConnectTo(const std::string& host, int* threads_after) {
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  tcp::socket accepted(io);
  acceptor.async_accept(accepted, [](const boost::system::error_code&) {});
  RedisOptions options;
  options.host = host;
  options.port = acceptor.local_endpoint().port();
  auto factory = TransportFactory::Create(&io, options);
  if (!factory.ok()) return factory.status();
  std::shared_ptr<Transport> transport = (*factory)->New();
  std::optional<absl::Status> connected;
  transport->AsyncConnect([&](absl::Status s) { connected = std::move(s); });
  while (!connected.has_value() && io.run_one() > 0) {
  }
  *threads_after = ThreadCount();
  transport->Close();
  return connected.value_or(absl::InternalError("the io_context ran out of work"));
}

TEST(TransportTest, AnIpAddressConnectsWithoutAResolverThread) {
  const int before = ThreadCount();
  int after = 0;
  ASSERT_TRUE(ConnectTo("127.0.0.1", &after).ok());
  EXPECT_EQ(after, before) << "a thread was started to connect to an address";
}

TEST(TransportTest, AHostNameIsResolvedOnAsiosLookupThread) {
  const int before = ThreadCount();
  int after = 0;
  absl::Status s = ConnectTo("localhost", &after);
  ASSERT_TRUE(s.ok()) << s;
  // The check above would see this thread if an address were looked up.
  EXPECT_EQ(after, before + 1);
}

}  // namespace
}  // namespace stateside::redis
