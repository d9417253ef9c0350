// Opening stored values: any bytes Redis may hand back (tampered, truncated,
// from another place, another key) fail cleanly; nothing opens unless it was
// sealed for that place and name.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "sidecar/crypto/envelope.h"
#include "sidecar/crypto/keyring.h"
#include "sidecar/crypto/random.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using stateside::crypto::Keyring;
using stateside::crypto::Sealer;

struct Fixture {
  std::unique_ptr<Keyring> keyring;
  std::unique_ptr<stateside::RandomSource> random;
  std::unique_ptr<Sealer> sealer;
};

const Fixture& Get() {
  static const Fixture* fixture = [] {
    auto* f = new Fixture;
    auto keyring = Keyring::Create({{"k2", std::string(32, '\x42')}, {"k1", std::string(32, '\x17')}});
    FUZZ_CHECK(keyring.ok());
    f->keyring = *std::move(keyring);
    f->random = stateside::crypto::NewSecureRandom();
    f->sealer = std::make_unique<Sealer>(f->keyring.get(), f->random.get());
    return f;
  }();
  return *fixture;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Fixture& f = Get();
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  // Garbage never opens (a forgery would need the key).
  auto opened = f.sealer->Open("session-id", "attr", bytes);
  FUZZ_CHECK(!opened.ok());
  // A real envelope of these bytes opens at its place only, and any single
  // flipped byte makes it fail.
  auto sealed = f.sealer->Seal("session-id", "attr", bytes);
  FUZZ_CHECK(sealed.ok());
  auto back = f.sealer->Open("session-id", "attr", *sealed);
  FUZZ_CHECK(back.ok() && back->plaintext == bytes);
  FUZZ_CHECK(!f.sealer->Open("session-id", "other", *sealed).ok());
  FUZZ_CHECK(!f.sealer->Open("other-session", "attr", *sealed).ok());
  if (size > 0) {
    std::string tampered = *sealed;
    tampered[data[0] % tampered.size()] ^= static_cast<char>(1 + data[size - 1] % 255);
    FUZZ_CHECK(!f.sealer->Open("session-id", "attr", tampered).ok());
  }
  return 0;
}
