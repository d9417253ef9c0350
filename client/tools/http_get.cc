// HttpGet over a plain POSIX socket (see http_get.h). HTTP/1.0 with
// "Connection: close": the body is everything until EOF, unless the server
// still sends Content-Length or chunked encoding, which are honoured.
#include "client/tools/http_get.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace stateside::cli {
namespace {

absl::string_view Sv(std::string_view s) { return {s.data(), s.size()}; }

absl::Status SplitAddress(std::string_view address, std::string* host,
                          std::string* port) {
  size_t colon;
  if (!address.empty() && address[0] == '[') {
    const size_t close = address.find(']');
    if (close == std::string_view::npos || close + 1 >= address.size() ||
        address[close + 1] != ':') {
      return absl::InvalidArgumentError(absl::StrCat("bad address '", Sv(address), "'"));
    }
    *host = std::string(address.substr(1, close - 1));
    colon = close + 1;
  } else {
    colon = address.rfind(':');
    if (colon == std::string_view::npos || colon == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad address '", Sv(address), "': expected host:port"));
    }
    *host = std::string(address.substr(0, colon));
  }
  *port = std::string(address.substr(colon + 1));
  int port_number;
  if (!absl::SimpleAtoi(*port, &port_number) || port_number <= 0 || port_number > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("bad port in '", Sv(address), "'"));
  }
  return absl::OkStatus();
}

int MillisLeft(absl::Time deadline) {
  const absl::Duration left = deadline - absl::Now();
  if (left <= absl::ZeroDuration()) return 0;
  return static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(left) + 1, 1 << 30));
}

// Waits for `events` on fd until the deadline. false: timed out or failed.
bool Wait(int fd, short events, absl::Time deadline) {
  for (;;) {
    const int ms = MillisLeft(deadline);
    if (ms == 0) return false;
    pollfd p{fd, events, 0};
    const int rc = poll(&p, 1, ms);
    if (rc > 0) return true;
    if (rc == 0) return false;
    if (errno != EINTR) return false;
  }
}

// RAII for the socket.
struct Fd {
  int fd = -1;
  ~Fd() { if (fd >= 0) close(fd); }
};

absl::StatusOr<std::string> Exchange(const std::string& host, const std::string& port,
                                     const std::string& request, absl::Time deadline) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (const int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return absl::UnavailableError(absl::StrCat("resolve ", host, ": ", gai_strerror(rc)));
  }
  std::string last_error = "no address";
  Fd sock;
  for (addrinfo* a = found; a != nullptr && sock.fd < 0; a = a->ai_next) {
    const int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                          a->ai_protocol);
    if (fd < 0) continue;
    int rc = connect(fd, a->ai_addr, a->ai_addrlen);
    if (rc < 0 && errno == EINPROGRESS) {
      if (!Wait(fd, POLLOUT, deadline)) {
        close(fd);
        freeaddrinfo(found);
        return absl::DeadlineExceededError(absl::StrCat("connect ", host, ":", port, ": timed out"));
      }
      int err = 0;
      socklen_t len = sizeof(err);
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      rc = err == 0 ? 0 : -1;
      errno = err;
    }
    if (rc == 0) {
      sock.fd = fd;
    } else {
      last_error = strerror(errno);
      close(fd);
    }
  }
  freeaddrinfo(found);
  if (sock.fd < 0) {
    return absl::UnavailableError(absl::StrCat("connect ", host, ":", port, ": ", last_error));
  }
  for (size_t sent = 0; sent < request.size();) {
    const ssize_t n = send(sock.fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!Wait(sock.fd, POLLOUT, deadline)) return absl::DeadlineExceededError("send timed out");
    } else {
      return absl::UnavailableError(absl::StrCat("send: ", strerror(errno)));
    }
  }
  std::string raw;
  char buf[16384];
  for (;;) {
    const ssize_t n = recv(sock.fd, buf, sizeof(buf), 0);
    if (n > 0) {
      raw.append(buf, static_cast<size_t>(n));
      if (raw.size() > kMaxHttpResponseBytes + 65536) {
        return absl::DataLossError("response too large");
      }
    } else if (n == 0) {
      return raw;
    } else if (errno == EAGAIN || errno == EINTR) {
      if (!Wait(sock.fd, POLLIN, deadline)) return absl::DeadlineExceededError("read timed out");
    } else {
      return absl::UnavailableError(absl::StrCat("recv: ", strerror(errno)));
    }
  }
}

absl::StatusOr<std::string> Dechunk(std::string_view in) {
  std::string out;
  for (;;) {
    const size_t eol = in.find("\r\n");
    if (eol == std::string_view::npos) return absl::DataLossError("truncated chunk");
    std::string_view size_text = in.substr(0, eol);
    size_text = size_text.substr(0, size_text.find(';'));
    uint64_t size;
    if (!absl::SimpleHexAtoi(Sv(size_text), &size) || size > kMaxHttpResponseBytes) {
      return absl::DataLossError("bad chunk size");
    }
    in.remove_prefix(eol + 2);
    if (size == 0) return out;
    if (in.size() < size + 2) return absl::DataLossError("truncated chunk");
    out.append(in.data(), size);
    in.remove_prefix(size + 2);
  }
}

}  // namespace

absl::StatusOr<HttpResponse> ParseHttpResponse(std::string_view raw) {
  const size_t head_end = raw.find("\r\n\r\n");
  if (head_end == std::string_view::npos || !absl::StartsWith(Sv(raw), "HTTP/1.")) {
    return absl::DataLossError("not an HTTP response");
  }
  std::vector<absl::string_view> lines =
      absl::StrSplit(Sv(raw.substr(0, head_end)), "\r\n");
  // "HTTP/1.1 200 OK"
  std::vector<absl::string_view> status_parts = absl::StrSplit(lines[0], absl::MaxSplits(' ', 2));
  HttpResponse response;
  if (status_parts.size() < 2 || !absl::SimpleAtoi(status_parts[1], &response.status) ||
      response.status < 100 || response.status > 999) {
    return absl::DataLossError("bad HTTP status line");
  }
  bool chunked = false;
  std::optional<size_t> length;
  for (size_t i = 1; i < lines.size(); ++i) {
    const size_t colon = lines[i].find(':');
    if (colon == absl::string_view::npos) continue;
    const std::string name = absl::AsciiStrToLower(lines[i].substr(0, colon));
    const absl::string_view value = absl::StripAsciiWhitespace(lines[i].substr(colon + 1));
    if (name == "transfer-encoding" && absl::StrContains(absl::AsciiStrToLower(value), "chunked")) {
      chunked = true;
    } else if (name == "content-length") {
      size_t n;
      if (!absl::SimpleAtoi(value, &n)) return absl::DataLossError("bad Content-Length");
      length = n;
    }
  }
  std::string_view body = raw.substr(head_end + 4);
  if (body.size() > kMaxHttpResponseBytes) return absl::DataLossError("response too large");
  if (chunked) {
    auto dechunked = Dechunk(body);
    if (!dechunked.ok()) return dechunked.status();
    response.body = std::move(*dechunked);
  } else if (length) {
    if (body.size() < *length) return absl::DataLossError("truncated body");
    response.body = std::string(body.substr(0, *length));
  } else {
    response.body = std::string(body);
  }
  return response;
}

absl::StatusOr<HttpResponse> HttpGet(std::string_view address, std::string_view path,
                                     absl::Duration timeout) {
  return HttpCall("GET", address, path, "", timeout);
}

absl::StatusOr<HttpResponse> HttpCall(std::string_view method, std::string_view address,
                                      std::string_view path, std::string_view bearer_token,
                                      absl::Duration timeout) {
  std::string host, port;
  if (absl::Status s = SplitAddress(address, &host, &port); !s.ok()) return s;
  std::string headers;
  if (!bearer_token.empty()) {
    headers = absl::StrCat("Authorization: Bearer ", Sv(bearer_token), "\r\n");
  }
  if (method != "GET") absl::StrAppend(&headers, "Content-Length: 0\r\n");
  const std::string request = absl::StrCat(
      Sv(method), " ", Sv(path), " HTTP/1.0\r\nHost: ", Sv(address),
      "\r\nUser-Agent: statesidectl\r\n", headers, "Connection: close\r\n\r\n");
  auto raw = Exchange(host, port, request, absl::Now() + timeout);
  if (!raw.ok()) {
    return absl::Status(raw.status().code(),
                        absl::StrCat(Sv(method), " http://", Sv(address), Sv(path), ": ",
                                     raw.status().message()));
  }
  return ParseHttpResponse(*raw);
}

}  // namespace stateside::cli
