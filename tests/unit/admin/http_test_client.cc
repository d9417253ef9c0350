// Raw-socket HTTP client for the admin listener tests.
#include "tests/unit/admin/http_test_client.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace stateside::testing {

namespace {

// `ip` and `port` as a socket address; false if `ip` is no IP literal.
bool ToSockaddr(std::string_view ip, int port, sockaddr_storage* out,
                socklen_t* length) {
  const std::string text(ip);
  *out = {};
  auto* v4 = reinterpret_cast<sockaddr_in*>(out);
  if (inet_pton(AF_INET, text.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    *length = sizeof(sockaddr_in);
    return true;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(out);
  if (inet_pton(AF_INET6, text.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    *length = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

}  // namespace

absl::StatusOr<RawConnection> RawConnection::Connect(int port) {
  return Connect("127.0.0.1", port);
}

absl::StatusOr<RawConnection> RawConnection::Connect(std::string_view host,
                                                     int port,
                                                     std::string_view source) {
  sockaddr_storage addr;
  socklen_t addr_length = 0;
  if (!ToSockaddr(host, port, &addr, &addr_length)) {
    return absl::InvalidArgumentError("not an IP: " + std::string(host));
  }
  int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError("socket failed");
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  auto fail = [fd](std::string_view what) {
    int err = errno;
    close(fd);
    return absl::UnavailableError(std::string(what) + ": " + strerror(err));
  };
  if (!source.empty()) {
    sockaddr_storage from;
    socklen_t from_length = 0;
    if (!ToSockaddr(source, 0, &from, &from_length)) {
      close(fd);
      return absl::InvalidArgumentError("not an IP: " + std::string(source));
    }
    if (bind(fd, reinterpret_cast<sockaddr*>(&from), from_length) != 0) {
      return fail("bind");
    }
  }
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), addr_length) != 0) {
    return fail("connect");
  }
  return RawConnection(fd);
}

RawConnection::RawConnection(RawConnection&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), pending_(std::move(other.pending_)) {}

RawConnection& RawConnection::operator=(RawConnection&& other) noexcept {
  if (this != &other) {
    Close();
    fd_ = std::exchange(other.fd_, -1);
    pending_ = std::move(other.pending_);
  }
  return *this;
}

RawConnection::~RawConnection() { Close(); }

void RawConnection::Close() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

bool RawConnection::Send(std::string_view data) {
  while (!data.empty()) {
    ssize_t n = send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

bool RawConnection::ReadMore(absl::Time deadline) {
  while (true) {
    int64_t ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (ms < 0) return false;
    pollfd p{fd_, POLLIN, 0};
    int r = poll(&p, 1, static_cast<int>(ms));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    char buf[16384];
    ssize_t n = recv(fd_, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    pending_.append(buf, static_cast<size_t>(n));
    return true;
  }
}

std::optional<RawResponse> RawConnection::ReadResponse(absl::Duration timeout,
                                                       bool head) {
  absl::Time deadline = absl::Now() + timeout;
  size_t end;
  while ((end = pending_.find("\r\n\r\n")) == std::string::npos) {
    if (!ReadMore(deadline)) return std::nullopt;
  }
  std::vector<std::string> lines =
      absl::StrSplit(pending_.substr(0, end), "\r\n");
  RawResponse response;
  std::vector<std::string> status_line = absl::StrSplit(lines[0], ' ');
  if (status_line.size() < 2 || !absl::StartsWith(status_line[0], "HTTP/1.") ||
      !absl::SimpleAtoi(status_line[1], &response.status)) {
    return std::nullopt;
  }
  for (size_t i = 1; i < lines.size(); ++i) {
    size_t colon = lines[i].find(':');
    if (colon == std::string::npos) return std::nullopt;
    response.headers[absl::AsciiStrToLower(lines[i].substr(0, colon))] =
        std::string(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
  }
  size_t length = 0;
  if (!head && !absl::SimpleAtoi(response.Header("content-length"), &length)) {
    length = 0;
  }
  size_t body_start = end + 4;
  while (pending_.size() < body_start + length) {
    if (!ReadMore(deadline)) return std::nullopt;
  }
  response.body = pending_.substr(body_start, length);
  pending_.erase(0, body_start + length);
  return response;
}

bool RawConnection::WaitClosed(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (true) {
    int64_t ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (ms < 0) return false;
    pollfd p{fd_, POLLIN, 0};
    int r = poll(&p, 1, static_cast<int>(ms));
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) return false;
    if (r < 0) return true;
    char buf[16384];
    ssize_t n = recv(fd_, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return true;  // EOF or reset
  }
}

std::string GetRequest(std::string_view path, std::string_view method) {
  return std::string(method) + " " + std::string(path) +
         " HTTP/1.1\r\nHost: test\r\n\r\n";
}

std::optional<std::string> NonLoopbackLocalAddress() {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return std::nullopt;
  std::optional<std::string> found;
  for (ifaddrs* i = list; i != nullptr && !found; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET ||
        (i->ifa_flags & IFF_UP) == 0 || (i->ifa_flags & IFF_LOOPBACK) != 0) {
      continue;
    }
    char text[INET_ADDRSTRLEN];
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
    if (inet_ntop(AF_INET, &v4->sin_addr, text, sizeof(text)) != nullptr &&
        !absl::StartsWith(text, "127.")) {
      found = text;
    }
  }
  freeifaddrs(list);
  return found;
}

std::optional<RawResponse> Exchange(int port, std::string_view raw,
                                    absl::Duration timeout) {
  absl::StatusOr<RawConnection> c = RawConnection::Connect(port);
  if (!c.ok() || !c->Send(raw)) return std::nullopt;
  return c->ReadResponse(timeout);
}

}  // namespace stateside::testing
