// Realtime frames from Redis (another instance's events, possibly from a
// newer or broken version) and the names the API accepts: decoding any bytes
// fails cleanly or gives an event that encodes and decodes to itself.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "sidecar/realtime/event.h"
#include "tests/fuzz/fuzz_check.h"

using stateside::realtime::DecodeEvent;
using stateside::realtime::EncodeEvent;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto event = DecodeEvent(bytes);
  if (event.ok()) {
    auto again = DecodeEvent(EncodeEvent(*event));
    FUZZ_CHECK(again.ok());
    FUZZ_CHECK(again->target == event->target && again->to == event->to &&
               again->to_instance == event->to_instance && again->name == event->name &&
               again->payload == event->payload && again->except == event->except &&
               again->published_at == event->published_at && again->origin == event->origin);
  }
  // A name is valid exactly when every byte is printable ASCII within bounds.
  bool printable = size >= 1 && size <= stateside::realtime::kMaxNameBytes;
  for (size_t i = 0; i < size && printable; ++i) printable = data[i] >= 0x21 && data[i] <= 0x7e;
  FUZZ_CHECK(stateside::realtime::ValidateName("room", bytes, 1, stateside::realtime::kMaxNameBytes)
                 .ok() == printable);
  return 0;
}
