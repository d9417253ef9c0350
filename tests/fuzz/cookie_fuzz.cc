// Cookie verification on any bytes a browser can send: never crashes, and a
// cookie that verifies is exactly the one Sign() writes for its id (no second
// spelling of a valid cookie exists).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "sidecar/crypto/cookie.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

const stateside::crypto::CookieSigner& Signer() {
  static const auto* signer = [] {
    auto s = stateside::crypto::CookieSigner::Create(
        {"fuzz-secret-one-0123456789abcdef0123456789", "fuzz-secret-two-0123456789abcdef0123456789"});
    FUZZ_CHECK(s.ok());
    return s->release();
  }();
  return *signer;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view cookie(reinterpret_cast<const char*>(data), size);
  const auto& signer = Signer();
  auto id = signer.Verify(cookie);
  if (id.ok()) {
    FUZZ_CHECK(!id->empty());
    FUZZ_CHECK(signer.Sign(*id) == cookie);
  }
  // A cookie signed for these bytes as an id always verifies back to them
  // when it is within the size Verify accepts.
  if (size > 0 && size <= 200 && cookie.find('.') == std::string_view::npos) {
    auto back = signer.Verify(signer.Sign(cookie));
    FUZZ_CHECK(back.ok() && *back == cookie);
  }
  return 0;
}
