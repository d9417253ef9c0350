// Opening stored values: any bytes Redis may hand back (tampered, truncated,
// from another place, another key, either envelope version) fail cleanly;
// nothing opens unless it was sealed for that place and name, by this
// instance or another one.
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
  // Another instance with the same keyring: short epochs and a small key
  // cache, so that the fuzzer's inputs keep rotating and evicting.
  std::unique_ptr<Sealer> churning;
};

const Fixture& Get() {
  static const Fixture* fixture = [] {
    auto* f = new Fixture;
    auto keyring = Keyring::Create({{"k2", std::string(32, '\x42')}, {"k1", std::string(32, '\x17')}});
    FUZZ_CHECK(keyring.ok());
    f->keyring = *std::move(keyring);
    f->random = stateside::crypto::NewSecureRandom();
    f->sealer = std::make_unique<Sealer>(f->keyring.get(), f->random.get());
    stateside::crypto::SealerOptions churn;
    churn.seals_per_epoch = 3;
    churn.cached_keys = 16;
    f->churning = std::make_unique<Sealer>(f->keyring.get(), f->random.get(), nullptr, churn);
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
  FUZZ_CHECK(!f.churning->Open("session-id", "attr", bytes).ok());
  // A real envelope of these bytes opens at its place only, and any single
  // flipped byte makes it fail.
  auto sealed = f.sealer->Seal("session-id", "attr", bytes);
  FUZZ_CHECK(sealed.ok());
  auto back = f.sealer->Open("session-id", "attr", *sealed);
  FUZZ_CHECK(back.ok() && back->plaintext == bytes);
  FUZZ_CHECK(!f.sealer->Open("session-id", "other", *sealed).ok());
  FUZZ_CHECK(!f.sealer->Open("other-session", "attr", *sealed).ok());
  // Another instance opens it (deriving the key, or from its small cache),
  // and what it seals, across its epochs, opens here.
  auto elsewhere = f.churning->Open("session-id", "attr", *sealed);
  FUZZ_CHECK(elsewhere.ok() && elsewhere->plaintext == bytes);
  auto churned = f.churning->Seal("session-id", "attr", bytes);
  FUZZ_CHECK(churned.ok());
  back = f.sealer->Open("session-id", "attr", *churned);
  FUZZ_CHECK(back.ok() && back->plaintext == bytes);
  // The version byte is bound: read as version 1, the same bytes fail.
  std::string as_v1 = *sealed;
  as_v1[0] = '\x01';
  FUZZ_CHECK(!f.sealer->Open("session-id", "attr", as_v1).ok());
  if (size > 0) {
    std::string tampered = *sealed;
    tampered[data[0] % tampered.size()] ^= static_cast<char>(1 + data[size - 1] % 255);
    FUZZ_CHECK(!f.sealer->Open("session-id", "attr", tampered).ok());
    // In one opener (a read's values under one key schedule), the damaged
    // value fails alone: the good ones around it open.
    Sealer::Opener opener(*f.sealer);
    auto first = opener.Open("session-id", "attr", *sealed);
    FUZZ_CHECK(first.ok() && first->plaintext == bytes);
    FUZZ_CHECK(!opener.Open("session-id", "attr", tampered).ok());
    FUZZ_CHECK(!opener.Open("session-id", "attr", bytes).ok());
    auto after = opener.Open("session-id", "attr", *churned);
    FUZZ_CHECK(after.ok() && after->plaintext == bytes);
    after = opener.Open("session-id", "attr", *sealed);
    FUZZ_CHECK(after.ok() && after->plaintext == bytes);
  }
  return 0;
}
