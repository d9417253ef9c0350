// The frame socket's reading side on any bytes a client sends
// (proto/frames.h, then pipe_wire.h as FrameServer reads a frame):
// the input is cut into frames; the reader never reads past its input,
// every frame it yields is non-empty, within the limit and exactly what its
// header announced, and a zero or oversized header stops it (the server
// closes the connection there). Each frame's payload is split into calls as
// the server does; the calls' views stay inside the payload, and a payload
// that splits parses as a PipeRequest with that many calls.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "proto/frames.h"
#include "sidecar/rpc/pipe_wire.h"
#include "stateside/v1/session.pb.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

// Small, so that inputs reach past it.
constexpr size_t kMaxPayloadBytes = 512;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using stateside::rpc::FrameParse;
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  while (true) {
    std::string_view payload;
    size_t consumed = 0;
    const FrameParse parse =
        stateside::rpc::ParseFrame(rest, kMaxPayloadBytes, &payload, &consumed);
    if (parse != FrameParse::kFrame) {
      // What the header says decides the verdict.
      if (rest.size() < stateside::rpc::kFrameHeaderBytes) {
        FUZZ_CHECK(parse == FrameParse::kNeedMore);
        break;
      }
      const auto* b = reinterpret_cast<const unsigned char*>(rest.data());
      const size_t length = b[0] | (b[1] << 8) | (b[2] << 16) | (static_cast<size_t>(b[3]) << 24);
      if (parse == FrameParse::kZeroLength) FUZZ_CHECK(length == 0);
      if (parse == FrameParse::kOversized) FUZZ_CHECK(length > kMaxPayloadBytes);
      if (parse == FrameParse::kNeedMore) {
        FUZZ_CHECK(length > 0 && length <= kMaxPayloadBytes &&
                   rest.size() - stateside::rpc::kFrameHeaderBytes < length);
      }
      break;
    }
    FUZZ_CHECK(!payload.empty() && payload.size() <= kMaxPayloadBytes);
    FUZZ_CHECK(consumed == stateside::rpc::kFrameHeaderBytes + payload.size());
    FUZZ_CHECK(consumed <= rest.size());
    FUZZ_CHECK(payload.data() == rest.data() + stateside::rpc::kFrameHeaderBytes);
    std::vector<std::string_view> calls;
    const bool split = stateside::rpc::SplitPipeRequest(payload, &calls).ok();
    for (std::string_view call : calls) {
      FUZZ_CHECK(call.data() >= payload.data() &&
                 call.data() + call.size() <= payload.data() + payload.size());
    }
    stateside::v1::PipeRequest request;
    if (split && request.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
      FUZZ_CHECK(static_cast<size_t>(request.calls_size()) == calls.size());
    }
    rest.remove_prefix(consumed);
  }
  return 0;
}
