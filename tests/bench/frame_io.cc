#include "tests/bench/frame_io.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace stateside::bench {
namespace {

constexpr size_t kReadChunk = 64 << 10;

}  // namespace

bool FrameReader::Read(int fd) {
  if (in_.size() - end_ < kReadChunk) in_.resize(end_ + kReadChunk);
  const ssize_t n = recv(fd, in_.data() + end_, in_.size() - end_, MSG_DONTWAIT);
  if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
  if (n == 0) return false;
  end_ += static_cast<size_t>(n);
  return true;
}

rpc::FrameParse FrameReader::Next(std::string_view* payload) {
  size_t consumed = 0;
  const rpc::FrameParse parse = rpc::ParseFrame(
      std::string_view(in_.data() + begin_, end_ - begin_), max_payload_bytes_, payload, &consumed);
  if (parse == rpc::FrameParse::kFrame) begin_ += consumed;
  return parse;
}

void FrameReader::Compact() {
  std::memmove(in_.data(), in_.data() + begin_, end_ - begin_);
  end_ -= begin_;
  begin_ = 0;
  // A large frame's room is not kept once it has been handled.
  if (end_ == 0 && in_.size() > 2 * kReadChunk) std::string().swap(in_);
}

bool SendAvailable(int fd, std::string& out) {
  size_t written = 0;
  while (written < out.size()) {
    const ssize_t n =
        send(fd, out.data() + written, out.size() - written, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      written += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      break;
    } else {
      out.clear();
      return false;
    }
  }
  out.erase(0, written);
  return true;
}

}  // namespace stateside::bench
