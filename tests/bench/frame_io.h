// The socket side of the frame protocol (proto/frames.h) for the bench's
// raw frames client (frames_transport.cc) and stateside-frame-echo
// (frame_echo.cc): a read buffer that yields whole frames, and a
// non-blocking send of what is queued. Thread-compatible.
#ifndef STATESIDE_TESTS_BENCH_FRAME_IO_H_
#define STATESIDE_TESTS_BENCH_FRAME_IO_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "proto/frames.h"

namespace stateside::bench {

class FrameReader {
 public:
  // Frames announcing more than `max_payload_bytes` are kOversized; the
  // buffer never holds more than one such frame and one read.
  explicit FrameReader(size_t max_payload_bytes) : max_payload_bytes_(max_payload_bytes) {}

  // One non-blocking recv from `fd`. False: the peer closed or the socket
  // failed (nothing to read yet is not a failure).
  bool Read(int fd);
  // The next whole frame read: kFrame with *payload viewing it (valid until
  // the next Read or Compact), kNeedMore when none is left, or the broken
  // stream's kZeroLength / kOversized.
  rpc::FrameParse Next(std::string_view* payload);
  // Drops the frames Next returned (call once they are handled).
  void Compact();

 private:
  const size_t max_payload_bytes_;
  std::string in_;
  size_t begin_ = 0;  // the first byte not yet returned by Next
  size_t end_ = 0;    // the end of what was read
};

// Sends what `out` holds without blocking and erases what went. False: the
// socket failed (`out` is then cleared).
bool SendAvailable(int fd, std::string& out);

}  // namespace stateside::bench

#endif  // STATESIDE_TESTS_BENCH_FRAME_IO_H_
