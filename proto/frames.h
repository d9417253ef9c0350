// The framing of the frame socket (`<STATESIDE_SOCKET>.frames`, see
// docs/ARCHITECTURE.md, "The frame socket"): each frame is a 4-byte
// little-endian payload length, then that many bytes of a serialized
// stateside.v1.PipeRequest (client to sidecar) or PipeResponse (sidecar to
// client). No other header: the socket's name is its version, and an
// incompatible framing would get another name. Beside the protos because it
// is wire format too: the sidecar and the client library both include it
// (the client never includes sidecar/).
//
// A length of 0 or above the limit (the gRPC socket's receive limit) is a
// broken stream: the reader closes the connection. Pure functions;
// thread-safe.
#ifndef STATESIDE_PROTO_FRAMES_H_
#define STATESIDE_PROTO_FRAMES_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace stateside::rpc {

inline constexpr size_t kFrameHeaderBytes = 4;
// The suffix of the frame socket's path after STATESIDE_SOCKET's.
inline constexpr std::string_view kFrameSocketSuffix = ".frames";

enum class FrameParse : uint8_t {
  kNeedMore,    // fewer bytes than a header, or than the frame it announces
  kFrame,       // a whole frame: *payload views it, *consumed covers it
  kZeroLength,  // a header announcing 0 bytes: broken
  kOversized,   // a header announcing more than the limit: broken
};

// Reads the first frame of `buffered` (the bytes read and not yet
// consumed). A header announcing an oversized or empty frame is reported as
// soon as the header is in, without waiting for the payload.
inline FrameParse ParseFrame(std::string_view buffered, size_t max_payload_bytes,
                             std::string_view* payload, size_t* consumed) {
  if (buffered.size() < kFrameHeaderBytes) return FrameParse::kNeedMore;
  const auto* b = reinterpret_cast<const unsigned char*>(buffered.data());
  const uint32_t length = static_cast<uint32_t>(b[0]) | (static_cast<uint32_t>(b[1]) << 8) |
                          (static_cast<uint32_t>(b[2]) << 16) |
                          (static_cast<uint32_t>(b[3]) << 24);
  if (length == 0) return FrameParse::kZeroLength;
  if (length > max_payload_bytes) return FrameParse::kOversized;
  if (buffered.size() - kFrameHeaderBytes < length) return FrameParse::kNeedMore;
  *payload = buffered.substr(kFrameHeaderBytes, length);
  *consumed = kFrameHeaderBytes + length;
  return FrameParse::kFrame;
}

// Appends the header of a frame of `length` bytes to `out`.
inline void AppendFrameHeader(std::string* out, uint32_t length) {
  const char header[kFrameHeaderBytes] = {
      static_cast<char>(length & 0xff), static_cast<char>((length >> 8) & 0xff),
      static_cast<char>((length >> 16) & 0xff), static_cast<char>((length >> 24) & 0xff)};
  out->append(header, kFrameHeaderBytes);
}

}  // namespace stateside::rpc

#endif  // STATESIDE_PROTO_FRAMES_H_
