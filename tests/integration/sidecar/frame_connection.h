// A raw client of the frame socket (`<STATESIDE_SOCKET>.frames`) for the
// frame tests: frames written whole, answers read by id with a 5 s limit.
#ifndef STATESIDE_TESTS_INTEGRATION_SIDECAR_FRAME_CONNECTION_H_
#define STATESIDE_TESTS_INTEGRATION_SIDECAR_FRAME_CONNECTION_H_

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "proto/frames.h"
#include "stateside/v1/session.pb.h"

namespace stateside::testing {

namespace v1 = ::stateside::v1;

// A raw client of the frame socket.
class FrameConnection {
 public:
  static std::optional<FrameConnection> Connect(const std::string& path) {
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return std::nullopt;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.data(), path.size());
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      close(fd);
      return std::nullopt;
    }
    return FrameConnection(fd);
  }
  FrameConnection(FrameConnection&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  ~FrameConnection() {
    if (fd_ >= 0) close(fd_);
  }

  bool SendRaw(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }
  bool Send(const v1::PipeRequest& request) {
    std::string frame;
    rpc::AppendFrameHeader(&frame, static_cast<uint32_t>(request.ByteSizeLong()));
    request.AppendToString(&frame);
    return SendRaw(frame);
  }

  // The next frame; nullopt on EOF, error or after 5 s.
  std::optional<v1::PipeResponse> Read() {
    std::string header;
    if (!ReadExactly(rpc::kFrameHeaderBytes, &header)) return std::nullopt;
    const auto* b = reinterpret_cast<const unsigned char*>(header.data());
    const size_t length = b[0] | (b[1] << 8) | (b[2] << 16) | (static_cast<size_t>(b[3]) << 24);
    std::string payload;
    if (!ReadExactly(length, &payload)) return std::nullopt;
    v1::PipeResponse response;
    if (!response.ParseFromString(payload)) return std::nullopt;
    return response;
  }

  // Reads results until `n` have come (keyed by id); fewer on a failure.
  std::map<uint64_t, v1::PipeResult> ReadResults(size_t n) {
    std::map<uint64_t, v1::PipeResult> results;
    while (results.size() < n) {
      std::optional<v1::PipeResponse> response = Read();
      if (!response.has_value()) break;
      for (v1::PipeResult& r : *response->mutable_results()) results[r.id()] = std::move(r);
    }
    return results;
  }

  // Whether the sidecar closed the connection (EOF within 5 s, nothing read).
  bool ClosedByPeer() {
    std::string byte;
    return !ReadExactly(1, &byte) && eof_;
  }

 private:
  explicit FrameConnection(int fd) : fd_(fd) {}
  bool ReadExactly(size_t n, std::string* out) {
    out->resize(n);
    size_t got = 0;
    const absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (got < n) {
      pollfd p{fd_, POLLIN, 0};
      const int wait = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
      if (wait <= 0 || poll(&p, 1, wait) <= 0) return false;
      const ssize_t r = recv(fd_, out->data() + got, n - got, 0);
      if (r == 0) {
        eof_ = true;
        return false;
      }
      if (r < 0) {
        if (errno == EINTR) continue;
        eof_ = errno == ECONNRESET;
        return false;
      }
      got += static_cast<size_t>(r);
    }
    return true;
  }

  int fd_;
  bool eof_ = false;
};

inline v1::PipeCall GetCall(uint64_t id, const std::string& session) {
  v1::PipeCall call;
  call.set_id(id);
  call.mutable_get()->mutable_key()->set_id(session);
  return call;
}

}  // namespace stateside::testing

#endif  // STATESIDE_TESTS_INTEGRATION_SIDECAR_FRAME_CONNECTION_H_
