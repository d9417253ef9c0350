// The admin listener's request parsing, end to end on a loopback socket:
// any bytes a peer sends (then half-closes) get an HTTP answer or a closed
// connection, never a crash, a hang or a handler call for a malformed
// request; a listener that survived the input still answers a probe.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "sidecar/admin/http_server.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using stateside::admin::AdminHttpOptions;
using stateside::admin::AdminHttpServer;
using stateside::admin::HttpRequest;
using stateside::admin::HttpResponse;

AdminHttpServer& Server() {
  static AdminHttpServer* server = [] {
    AdminHttpOptions options;
    options.address = "127.0.0.1:0";
    options.instance_id = "fuzz";
    options.read_timeout = absl::Seconds(2);
    options.write_timeout = absl::Seconds(2);
    auto* s = new AdminHttpServer(
        options,
        {{"GET", "/health/live", "liveness",
          [](const HttpRequest&) { return HttpResponse::Text(200, "ok\n"); }},
         {"POST", "/drain", "drain",
          [](const HttpRequest& r) {
            FUZZ_CHECK(r.body.size() <= 64 * 1024);
            return HttpResponse::Json(202, "{}");
          }}});
    FUZZ_CHECK(s->Start().ok());
    return s;
  }();
  return *server;
}

// Sends `bytes`, half-closes, and reads until the server closes. Returns
// what came back.
std::string Exchange(std::string_view bytes) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  FUZZ_CHECK(fd >= 0);
  // The server's own read deadline is 2 s; a hang past libFuzzer's -timeout
  // (scripts/fuzz: 10 s) is reported by libFuzzer with the input first.
  timeval tv{30, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(Server().port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  // Thousands of connections a second: close with a reset (linger 0), so
  // no TIME_WAIT piles up on this side and the ephemeral ports last.
  const linger reset{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    // libFuzzer's timer signals interrupt calls: an interrupted connect goes
    // on in the background; wait for it and take its outcome.
    int error = errno;
    if (error == EINTR) {
      pollfd p{fd, POLLOUT, 0};
      while (poll(&p, 1, 30000) < 0 && errno == EINTR) {
      }
      socklen_t len = sizeof error;
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len);
    }
    if (error != 0) {
      std::fprintf(stderr, "connect: %s\n", std::strerror(error));
      std::abort();
    }
  }
  size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t n = send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;  // libFuzzer's timers
    if (n <= 0) break;  // the server may answer and close early (413, 431)
    sent += static_cast<size_t>(n);
  }
  shutdown(fd, SHUT_WR);
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;  // libFuzzer's timers
      // A reset is an answer too (the server dropped a hostile peer).
      if (errno == ECONNRESET) break;
      std::fprintf(stderr, "recv: %s\n", std::strerror(errno));
      std::abort();
    }
    out.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string reply = Exchange(std::string_view(reinterpret_cast<const char*>(data), size));
  // An answer is HTTP/1.1, or HTTP/1.0 to a 1.0 request.
  FUZZ_CHECK(reply.empty() || reply.rfind("HTTP/1.1 ", 0) == 0 || reply.rfind("HTTP/1.0 ", 0) == 0);
  const std::string probe = Exchange("GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  FUZZ_CHECK(probe.rfind("HTTP/1.1 200", 0) == 0);
  return 0;
}
