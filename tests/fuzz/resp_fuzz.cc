// The RESP reader on hostile replies (a broken or malicious server): any
// byte stream, fed in any split, yields replies, "need more", or a protocol
// error that stays an error — never a crash, and never more than the bounds.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "sidecar/redis/resp.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

constexpr size_t kMaxBytes = 4096;
constexpr size_t kMaxElements = 256;

// Counts the elements of a reply, nested arrays included.
size_t Elements(const stateside::redis::Reply& r) {
  size_t n = r.elements.size();
  for (const auto& e : r.elements) n += Elements(e);
  return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // The first byte chooses where the stream is split into two reads.
  const size_t split = 1 + data[0] % size;
  const std::string_view stream(reinterpret_cast<const char*>(data) + 1, size - 1);
  stateside::redis::RespParser parser(kMaxBytes, kMaxElements);
  bool failed = false;
  for (std::string_view part : {stream.substr(0, split - 1), stream.substr(split - 1)}) {
    parser.Feed(part);
    for (int i = 0; i < 10000 && !failed; ++i) {
      auto next = parser.Next();
      if (!next.ok()) {
        failed = true;
        // Once failed, always failed.
        FUZZ_CHECK(!parser.Next().ok());
        break;
      }
      if (!next->has_value()) break;
      FUZZ_CHECK((*next)->str.size() <= kMaxBytes);
      FUZZ_CHECK(Elements(**next) <= kMaxElements);
    }
    if (failed) break;
  }
  return 0;
}
