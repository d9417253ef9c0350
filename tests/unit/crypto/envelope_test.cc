// Envelopes: round trips, the documented wire format (version 2, and version
// 1 as earlier releases wrote it), failing closed on every kind of damage
// (flipped bits, truncation, moved ciphertexts, unknown or wrong keys), key
// rotation, sealing epochs and the derived key cache.
#include "sidecar/crypto/envelope.h"

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"
#include "sidecar/crypto/keyring.h"
#include "sidecar/crypto/primitives.h"
#include "sidecar/crypto/random.h"
#include "tests/support/fake_clock.h"
#include "tests/unit/crypto/fake_random.h"

namespace stateside::crypto {
namespace {

using ::stateside::testing::CountingRandom;

constexpr char kSession[] = "Zm9vYmFyYmF6cXV4cXV1eHF1dXhxdXV4cXV1eHF1dXg";
constexpr size_t kSaltSize = 16;

std::unique_ptr<Keyring> MakeKeyring(std::vector<KeySpec> specs) {
  absl::StatusOr<std::unique_ptr<Keyring>> keyring =
      Keyring::Create(std::move(specs));
  EXPECT_TRUE(keyring.ok()) << keyring.status();
  return keyring.ok() ? *std::move(keyring) : nullptr;
}

KeySpec Key(std::string id, char fill) {
  return KeySpec{std::move(id), std::string(32, fill)};
}

class EnvelopeTest : public ::testing::Test {
 protected:
  EnvelopeTest()
      : random_(NewSecureRandom()),
        keyring_(MakeKeyring({Key("primary", 'a'), Key("old", 'b')})),
        sealer_(keyring_.get(), random_.get()) {}

  std::string MustSeal(std::string_view place, std::string_view name,
                       std::string_view plaintext) {
    absl::StatusOr<std::string> envelope = sealer_.Seal(place, name, plaintext);
    EXPECT_TRUE(envelope.ok()) << envelope.status();
    return envelope.ok() ? *envelope : std::string();
  }

  // The failure of opening `envelope` at (place, name); fails the test if it
  // opened, or failed without the fixed DATA_LOSS answer.
  OpenFailure FailureOf(std::string_view envelope,
                        std::string_view place = kSession,
                        std::string_view name = "cart") {
    OpenFailure failure{};
    absl::StatusOr<Opened> opened = sealer_.Open(place, name, envelope, &failure);
    EXPECT_FALSE(opened.ok());
    EXPECT_EQ(opened.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_EQ(opened.status().message(), "envelope did not open");
    return failure;
  }

  std::unique_ptr<RandomSource> random_;
  std::unique_ptr<Keyring> keyring_;
  Sealer sealer_;
};

TEST_F(EnvelopeTest, OpensWhatItSealed) {
  const std::string envelope = MustSeal(kSession, "cart", "[1,2,3]");
  OpenFailure failure = OpenFailure::kMalformed;
  absl::StatusOr<Opened> opened = sealer_.Open(kSession, "cart", envelope, &failure);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->plaintext, "[1,2,3]");
  EXPECT_EQ(opened->key_id, "primary");
}

TEST_F(EnvelopeTest, RoundTripsEmptyBinaryAndLargeValues) {
  const std::string binary("\0\x01\xff\0zz", 6);
  const std::string large(256 * 1024, '\x5a');
  for (const std::string& value : {std::string(), binary, large}) {
    const std::string envelope = MustSeal(kSession, "v", value);
    absl::StatusOr<Opened> opened = sealer_.Open(kSession, "v", envelope);
    ASSERT_TRUE(opened.ok()) << opened.status();
    EXPECT_EQ(opened->plaintext, value);
  }
}

TEST_F(EnvelopeTest, ReservedNamesWithNulBytesAreBound) {
  const std::string user_name("\0user", 5);
  const std::string envelope = MustSeal(kSession, user_name, "alice");
  EXPECT_TRUE(sealer_.Open(kSession, user_name, envelope).ok());
  EXPECT_EQ(FailureOf(envelope, kSession, "user"), OpenFailure::kAuthFailed);
}

// The associated data of envelope.h: version, then key id, session id and
// attribute name, each with a 4-byte big-endian length.
std::string Aad(char version, std::string_view key_id, std::string_view place,
                std::string_view name) {
  std::string aad(1, version);
  for (std::string_view field : {key_id, place, name}) {
    const uint32_t n = static_cast<uint32_t>(field.size());
    aad += std::string({static_cast<char>(n >> 24), static_cast<char>(n >> 16),
                        static_cast<char>(n >> 8), static_cast<char>(n)});
    aad += field;
  }
  return aad;
}

// A version-1 envelope as earlier releases wrote it, built from the
// primitives alone: HKDF(master, salt, "stateside aead v1") keys one
// encryption.
std::string SealVersionOne(std::string_view key_id, std::string_view master,
                           std::string_view place, std::string_view name,
                           std::string_view plaintext) {
  const std::string salt(kSaltSize, '\x33');
  const std::string nonce(12, '\x44');
  absl::StatusOr<std::string> message_key =
      HkdfSha256(master, salt, "stateside aead v1", 32);
  EXPECT_TRUE(message_key.ok());
  absl::StatusOr<std::string> sealed = Aes256GcmSeal(
      *message_key, nonce, Aad('\x01', key_id, place, name), plaintext);
  EXPECT_TRUE(sealed.ok());
  std::string envelope(1, '\x01');
  envelope += static_cast<char>(key_id.size());
  envelope += key_id;
  return envelope + salt + nonce + *sealed;
}

TEST_F(EnvelopeTest, FollowsTheDocumentedWireFormat) {
  CountingRandom counting;
  Sealer sealer(keyring_.get(), &counting);
  absl::StatusOr<std::string> envelope = sealer.Seal(kSession, "cart", "hello");
  ASSERT_TRUE(envelope.ok());
  const std::string id = "primary";
  ASSERT_EQ(envelope->size(), 2 + id.size() + 16 + 12 + 5 + 16);
  EXPECT_EQ((*envelope)[0], '\x02');
  EXPECT_EQ(static_cast<size_t>((*envelope)[1]), id.size());
  EXPECT_EQ(envelope->substr(2, id.size()), id);
  // The epoch's salt (drawn by the first seal) then the nonce, both straight
  // from the random source.
  for (size_t i = 0; i < 28; ++i) {
    EXPECT_EQ(static_cast<unsigned char>((*envelope)[2 + id.size() + i]), i);
  }
  EXPECT_EQ(Sealer::KeyIdOf(*envelope), "primary");
  EXPECT_EQ(Sealer::VersionOf(*envelope), 2);

  // Independently rebuilt: HKDF(master, epoch salt, "stateside aead v2")
  // keys AES-256-GCM over the length-prefixed associated data.
  const std::string salt = envelope->substr(2 + id.size(), kSaltSize);
  const std::string nonce = envelope->substr(2 + id.size() + kSaltSize, 12);
  absl::StatusOr<std::string> data_key =
      HkdfSha256(std::string(32, 'a'), salt, "stateside aead v2", 32);
  ASSERT_TRUE(data_key.ok());
  std::string aad("\x02", 1);
  aad += std::string("\0\0\0\x07", 4) + "primary";
  aad += std::string("\0\0\0\x2b", 4) + kSession;
  aad += std::string("\0\0\0\x04", 4) + "cart";
  EXPECT_EQ(aad, Aad('\x02', "primary", kSession, "cart"));
  absl::StatusOr<std::string> sealed =
      Aes256GcmSeal(*data_key, nonce, aad, "hello");
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(envelope->substr(2 + id.size() + kSaltSize + 12), *sealed);
}

TEST_F(EnvelopeTest, VersionOneEnvelopesStillOpen) {
  const std::string v1 =
      SealVersionOne("old", std::string(32, 'b'), kSession, "cart", "legacy");
  EXPECT_EQ(Sealer::VersionOf(v1), 1);
  OpenFailure failure = OpenFailure::kMalformed;
  absl::StatusOr<Opened> opened = sealer_.Open(kSession, "cart", v1, &failure);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->plaintext, "legacy");
  EXPECT_EQ(opened->key_id, "old");
  // Bound to its place like version 2, and every flipped bit fails.
  EXPECT_EQ(FailureOf(v1, kSession, "role"), OpenFailure::kAuthFailed);
  EXPECT_EQ(FailureOf(v1, "another-session", "cart"), OpenFailure::kAuthFailed);
  for (size_t i = 0; i < v1.size(); ++i) {
    std::string bad = v1;
    bad[i] = static_cast<char>(bad[i] ^ 0x01);
    EXPECT_FALSE(sealer_.Open(kSession, "cart", bad).ok()) << i;
  }
}

// A version-1 envelope as an earlier release stored it (key "old" = 32 bytes
// of 'b', salt 16 x 0x33, nonce 12 x 0x44, at (kSession, "cart")): stored
// values must keep opening, whatever the code that builds them becomes.
TEST_F(EnvelopeTest, AStoredVersionOneEnvelopeKeepsOpening) {
  const std::string v1 = absl::HexStringToBytes(
      "0103" "6f6c64"                            // version 1, key id "old"
      "33333333333333333333333333333333"         // salt
      "444444444444444444444444"                 // nonce
      "a04bf77371ea"                             // "legacy", encrypted
      "c610229b4f166bc52bb50a982eb9653f");       // tag
  EXPECT_EQ(Sealer::VersionOf(v1), 1);
  absl::StatusOr<Opened> opened = sealer_.Open(kSession, "cart", v1);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->plaintext, "legacy");
  EXPECT_EQ(opened->key_id, "old");
}

TEST_F(EnvelopeTest, SealVersionOneWritesWhatEarlierReleasesWrote) {
  CountingRandom counting;
  SealerOptions options;
  options.seal_version = 1;
  Sealer v1_sealer(keyring_.get(), &counting, nullptr, options);
  absl::StatusOr<std::string> envelope = v1_sealer.Seal(kSession, "cart", "old");
  ASSERT_TRUE(envelope.ok());
  // Rebuilt from the primitives with the salt and nonce it drew: a fresh
  // salt per message and the version-1 info and associated data.
  const std::string salt = envelope->substr(2 + 7, kSaltSize);
  const std::string nonce = envelope->substr(2 + 7 + kSaltSize, 12);
  absl::StatusOr<std::string> message_key =
      HkdfSha256(std::string(32, 'a'), salt, "stateside aead v1", 32);
  ASSERT_TRUE(message_key.ok());
  absl::StatusOr<std::string> sealed = Aes256GcmSeal(
      *message_key, nonce, Aad('\x01', "primary", kSession, "cart"), "old");
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(*envelope, std::string("\x01\x07primary", 9) + salt + nonce + *sealed);
  EXPECT_FALSE(sealer_.IsCurrent(*envelope));
  absl::StatusOr<Opened> opened = sealer_.Open(kSession, "cart", *envelope);
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(opened->plaintext, "old");
}

TEST_F(EnvelopeTest, TamperingWithAnyFieldFails) {
  const std::string envelope = MustSeal(kSession, "cart", "hello world");
  const size_t id = 2;                        // "primary"
  const size_t salt = id + 7;
  const size_t nonce = salt + kSaltSize;
  const size_t ciphertext = nonce + 12;
  const size_t tag = envelope.size() - 16;
  auto with = [&](size_t at, std::string_view bytes) {
    std::string bad = envelope;
    bad.replace(at, bytes.size(), bytes);
    return bad;
  };
  // Version: 1 is a known version with another key derivation and AAD.
  EXPECT_EQ(FailureOf(with(0, "\x01")), OpenFailure::kAuthFailed);
  EXPECT_EQ(FailureOf(with(0, "\x03")), OpenFailure::kMalformed);
  // Key id: the other key of the keyring (same length), or an unknown one.
  std::string other_id = envelope;
  other_id.replace(1, 8, std::string("\x03old", 4));
  EXPECT_EQ(FailureOf(other_id), OpenFailure::kAuthFailed);
  EXPECT_EQ(FailureOf(with(id, "prinary")), OpenFailure::kUnknownKey);
  EXPECT_EQ(FailureOf(with(salt, std::string(kSaltSize, '\0'))), OpenFailure::kAuthFailed);
  EXPECT_EQ(FailureOf(with(nonce, std::string(12, '\0'))), OpenFailure::kAuthFailed);
  std::string ct = envelope;
  ct[ciphertext + 3] = static_cast<char>(ct[ciphertext + 3] ^ 0x20);
  EXPECT_EQ(FailureOf(ct), OpenFailure::kAuthFailed);
  EXPECT_EQ(FailureOf(with(tag, std::string(16, '\0'))), OpenFailure::kAuthFailed);
}

std::string SaltOf(std::string_view envelope) {
  return std::string(envelope.substr(2 + static_cast<unsigned char>(envelope[1]),
                                     kSaltSize));
}

std::string NonceOf(std::string_view envelope) {
  return std::string(envelope.substr(
      2 + static_cast<unsigned char>(envelope[1]) + kSaltSize, 12));
}

TEST_F(EnvelopeTest, AnEpochEndsAfterItsCountAndOldEnvelopesStillOpen) {
  SealerOptions options;
  options.seals_per_epoch = 3;
  Sealer sealer(keyring_.get(), random_.get(), nullptr, options);
  std::vector<std::string> envelopes;
  for (int i = 0; i < 7; ++i) {
    absl::StatusOr<std::string> envelope =
        sealer.Seal(kSession, "attr" + std::to_string(i), std::to_string(i));
    ASSERT_TRUE(envelope.ok()) << envelope.status();
    envelopes.push_back(*envelope);
  }
  // One thread, one seal slot: three seals per salt, then a fresh salt.
  EXPECT_EQ(SaltOf(envelopes[0]), SaltOf(envelopes[1]));
  EXPECT_EQ(SaltOf(envelopes[0]), SaltOf(envelopes[2]));
  EXPECT_NE(SaltOf(envelopes[2]), SaltOf(envelopes[3]));
  EXPECT_EQ(SaltOf(envelopes[3]), SaltOf(envelopes[5]));
  EXPECT_NE(SaltOf(envelopes[5]), SaltOf(envelopes[6]));
  EXPECT_NE(SaltOf(envelopes[0]), SaltOf(envelopes[6]));
  std::set<std::string> nonces;
  for (const std::string& e : envelopes) nonces.insert(NonceOf(e));
  EXPECT_EQ(nonces.size(), envelopes.size()) << "a fresh nonce per encryption";
  // Every epoch opens: on the sealer (its own epochs cached) and on another
  // instance with the same keyring (derived on first sight).
  Sealer other(keyring_.get(), random_.get());
  for (int i = 0; i < 7; ++i) {
    const std::string name = "attr" + std::to_string(i);
    for (const Sealer* opener : {&sealer, &other, &sealer_}) {
      absl::StatusOr<Opened> opened = opener->Open(kSession, name, envelopes[i]);
      ASSERT_TRUE(opened.ok()) << i << ": " << opened.status();
      EXPECT_EQ(opened->plaintext, std::to_string(i));
    }
  }
}

TEST_F(EnvelopeTest, AnEpochEndsAfterItsDurationAndOldEnvelopesStillOpen) {
  testing::FakeClock clock;
  SealerOptions options;
  options.epoch_duration = absl::Hours(1);
  options.clock = &clock;
  Sealer sealer(keyring_.get(), random_.get(), nullptr, options);
  auto seal = [&](const std::string& name) {
    absl::StatusOr<std::string> envelope = sealer.Seal(kSession, name, name);
    EXPECT_TRUE(envelope.ok()) << envelope.status();
    return envelope.value_or("");
  };
  const std::string first = seal("a");
  clock.Advance(absl::Hours(1) - absl::Seconds(1));
  const std::string same_epoch = seal("b");
  clock.Advance(absl::Seconds(1));
  const std::string next_epoch = seal("c");
  const std::string still_next = seal("d");
  EXPECT_EQ(SaltOf(first), SaltOf(same_epoch));
  EXPECT_NE(SaltOf(same_epoch), SaltOf(next_epoch)) << "an hour old: a fresh salt";
  EXPECT_EQ(SaltOf(next_epoch), SaltOf(still_next)) << "the new epoch starts its own hour";
  Sealer other(keyring_.get(), random_.get());
  for (const auto& [name, envelope] : std::vector<std::pair<std::string, std::string>>{
           {"a", first}, {"b", same_epoch}, {"c", next_epoch}, {"d", still_next}}) {
    for (const Sealer* opener : {&sealer, &other}) {
      absl::StatusOr<Opened> opened = opener->Open(kSession, name, envelope);
      ASSERT_TRUE(opened.ok()) << name << ": " << opened.status();
      EXPECT_EQ(opened->plaintext, name);
    }
  }
}

TEST_F(EnvelopeTest, EachSealerDrawsItsOwnEpoch) {
  // A new keyring (rotation) means a new Sealer: a new epoch, never the
  // salt of another one.
  Sealer again(keyring_.get(), random_.get());
  EXPECT_NE(SaltOf(MustSeal(kSession, "a", "x")),
            SaltOf(*again.Seal(kSession, "a", "x")));
}

TEST_F(EnvelopeTest, EvictedKeysAreDerivedAgainAndStillOpenCorrectly) {
  // One key per cache shard, an epoch per seal: opening 200 envelopes
  // evicts over and over.
  SealerOptions options;
  options.seals_per_epoch = 1;
  options.cached_keys = DerivedKeyCache::kShards;
  Sealer sealer(keyring_.get(), random_.get(), nullptr, options);
  std::vector<std::string> envelopes;
  for (int i = 0; i < 200; ++i) {
    envelopes.push_back(*sealer.Seal(kSession, "cart", std::to_string(i)));
  }
  EXPECT_NE(SaltOf(envelopes[0]), SaltOf(envelopes[1]));
  Sealer reader(keyring_.get(), random_.get(), nullptr, options);
  for (int pass = 0; pass < 2; ++pass) {
    for (int i = 0; i < 200; ++i) {
      for (const Sealer* opener : {&sealer, &reader}) {
        absl::StatusOr<Opened> opened = opener->Open(kSession, "cart", envelopes[i]);
        ASSERT_TRUE(opened.ok()) << pass << "/" << i << ": " << opened.status();
        EXPECT_EQ(opened->plaintext, std::to_string(i));
      }
      // A cached key is bound to its (key id, salt) only: another place
      // under the same epoch still fails.
      EXPECT_EQ(FailureOf(envelopes[i], kSession, "role"), OpenFailure::kAuthFailed);
    }
  }
}

TEST_F(EnvelopeTest, ASealersOwnEpochOpensWithoutADerivation) {
  const std::string envelope = MustSeal(kSession, "cart", "mine");
  ASSERT_TRUE(sealer_.Open(kSession, "cart", envelope).ok());
  EXPECT_EQ(sealer_.open_derivations(), 0u) << "cached when the epoch was drawn";
  // Another instance derives it once, then has it cached.
  Sealer other(keyring_.get(), random_.get());
  ASSERT_TRUE(other.Open(kSession, "cart", envelope).ok());
  ASSERT_TRUE(other.Open(kSession, "cart", envelope).ok());
  EXPECT_EQ(other.open_derivations(), 1u);
}

// Forged envelopes aimed at the cache shard of a real epoch (same key id,
// salts ending in the same byte, so the same shard) cost a derivation each
// but are never cached: the verified key stays, and the real epoch's next
// open derives nothing.
TEST_F(EnvelopeTest, ForgedEnvelopesNeverEvictAVerifiedKey) {
  SealerOptions options;
  options.cached_keys = 2 * DerivedKeyCache::kShards;  // two keys per shard
  Sealer sealer(keyring_.get(), random_.get(), nullptr, options);
  absl::StatusOr<std::string> genuine = sealer.Seal(kSession, "cart", "real");
  ASSERT_TRUE(genuine.ok()) << genuine.status();
  const size_t salt_at = 2 + 7;
  for (int i = 0; i < 100; ++i) {
    std::string forged = *genuine;
    // Another salt each time, with the same last byte: the same shard.
    forged[salt_at] = static_cast<char>(forged[salt_at] ^ (i + 1));
    EXPECT_FALSE(sealer.Open(kSession, "cart", forged).ok());
  }
  EXPECT_EQ(sealer.open_derivations(), 100u) << "each forgery costs one derivation";
  absl::StatusOr<Opened> opened = sealer.Open(kSession, "cart", *genuine);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->plaintext, "real");
  EXPECT_EQ(sealer.open_derivations(), 100u) << "the verified key is still cached";
}

TEST_F(EnvelopeTest, AFailedRotationIsRetriedByTheNextSeal) {
  CountingRandom random;
  SealerOptions options;
  options.seals_per_epoch = 1;
  Sealer sealer(keyring_.get(), &random, nullptr, options);
  ASSERT_TRUE(sealer.Seal(kSession, "cart", "a").ok());
  random.set_fail(true);
  EXPECT_EQ(sealer.Seal(kSession, "cart", "b").status().code(),
            absl::StatusCode::kUnavailable);
  random.set_fail(false);
  absl::StatusOr<std::string> envelope = sealer.Seal(kSession, "cart", "c");
  ASSERT_TRUE(envelope.ok()) << envelope.status();
  absl::StatusOr<Opened> opened = sealer.Open(kSession, "cart", *envelope);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->plaintext, "c");
}

TEST_F(EnvelopeTest, IsCurrentMeansVersionTwoUnderThePrimary) {
  EXPECT_TRUE(sealer_.IsCurrent(MustSeal(kSession, "cart", "x")));
  EXPECT_FALSE(sealer_.IsCurrent(
      SealVersionOne("primary", std::string(32, 'a'), kSession, "cart", "x")));
  // Version 2 under another key of the keyring (sealed while it was primary).
  std::unique_ptr<Keyring> before = MakeKeyring({Key("old", 'b')});
  Sealer old_sealer(before.get(), random_.get());
  absl::StatusOr<std::string> old = old_sealer.Seal(kSession, "cart", "x");
  ASSERT_TRUE(old.ok());
  EXPECT_FALSE(sealer_.IsCurrent(*old));
  EXPECT_TRUE(sealer_.Open(kSession, "cart", *old).ok());
  EXPECT_FALSE(sealer_.IsCurrent(""));
  EXPECT_FALSE(sealer_.IsCurrent(std::string(100, '\x02')));
}

TEST_F(EnvelopeTest, TwoSealsOfTheSameValueDiffer) {
  std::set<std::string> envelopes;
  for (int i = 0; i < 50; ++i) envelopes.insert(MustSeal(kSession, "cart", "same"));
  EXPECT_EQ(envelopes.size(), 50u);
}

TEST_F(EnvelopeTest, AnyFlippedBitFailsClosed) {
  const std::string envelope = MustSeal(kSession, "cart", "hello");
  const size_t header = 2 + std::string("primary").size();
  for (size_t i = 0; i < envelope.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string bad = envelope;
      bad[i] = static_cast<char>(bad[i] ^ (1 << bit));
      const OpenFailure failure = FailureOf(bad);
      if (i == 0) {
        EXPECT_EQ(failure, OpenFailure::kMalformed) << i << "/" << bit;
      } else if (i < header) {
        // The key id length or the key id: unparseable or an unknown id.
        EXPECT_NE(failure, OpenFailure::kAuthFailed) << i << "/" << bit;
      } else {
        EXPECT_EQ(failure, OpenFailure::kAuthFailed) << i << "/" << bit;
      }
    }
  }
}

TEST_F(EnvelopeTest, EveryTruncationFailsClosed) {
  const std::string envelope = MustSeal(kSession, "cart", "hello world");
  const size_t min_size = 2 + std::string("primary").size() + 16 + 12 + 16;
  for (size_t n = 0; n < envelope.size(); ++n) {
    const OpenFailure failure = FailureOf(envelope.substr(0, n));
    EXPECT_EQ(failure, n < min_size ? OpenFailure::kMalformed
                                    : OpenFailure::kAuthFailed)
        << n;
  }
  EXPECT_EQ(FailureOf(envelope + "x"), OpenFailure::kAuthFailed);
}

TEST_F(EnvelopeTest, ValueMovedToAnotherSessionOrAttributeFails) {
  const std::string envelope = MustSeal(kSession, "cart", "hello");
  EXPECT_EQ(FailureOf(envelope, "another-session", "cart"),
            OpenFailure::kAuthFailed);
  EXPECT_EQ(FailureOf(envelope, kSession, "role"), OpenFailure::kAuthFailed);
  EXPECT_EQ(FailureOf(envelope, "", ""), OpenFailure::kAuthFailed);
}

TEST_F(EnvelopeTest, PlaceAndNameBoundariesCannotBeShifted) {
  // Without length prefixes ("ab","c") and ("a","bc") would share AAD.
  const std::string envelope = MustSeal("ab", "c", "hello");
  EXPECT_EQ(FailureOf(envelope, "a", "bc"), OpenFailure::kAuthFailed);
  EXPECT_EQ(FailureOf(envelope, "abc", ""), OpenFailure::kAuthFailed);
}

TEST_F(EnvelopeTest, UnknownKeyIdIsReportedAsSuch) {
  std::unique_ptr<Keyring> other = MakeKeyring({Key("retired", 'c')});
  Sealer other_sealer(other.get(), random_.get());
  absl::StatusOr<std::string> envelope = other_sealer.Seal(kSession, "cart", "x");
  ASSERT_TRUE(envelope.ok());
  EXPECT_EQ(FailureOf(*envelope), OpenFailure::kUnknownKey);
  EXPECT_EQ(Sealer::KeyIdOf(*envelope), "retired");
}

TEST_F(EnvelopeTest, SameKeyIdWithDifferentBytesFailsAuthentication) {
  std::unique_ptr<Keyring> impostor = MakeKeyring({Key("primary", 'z')});
  Sealer impostor_sealer(impostor.get(), random_.get());
  absl::StatusOr<std::string> envelope = impostor_sealer.Seal(kSession, "cart", "x");
  ASSERT_TRUE(envelope.ok());
  EXPECT_EQ(FailureOf(*envelope), OpenFailure::kAuthFailed);
}

TEST_F(EnvelopeTest, AKeyIdKnownToMismatchIsReportedAsKeyMismatch) {
  std::unique_ptr<Keyring> impostor = MakeKeyring({Key("primary", 'z')});
  Sealer impostor_sealer(impostor.get(), random_.get());
  absl::StatusOr<std::string> envelope = impostor_sealer.Seal(kSession, "cart", "x");
  ASSERT_TRUE(envelope.ok());
  KeyMismatches mismatches;
  Sealer checked(keyring_.get(), random_.get(), &mismatches);
  OpenFailure failure{};
  EXPECT_FALSE(checked.Open(kSession, "cart", *envelope, &failure).ok());
  EXPECT_EQ(failure, OpenFailure::kAuthFailed);
  mismatches.Set({"primary"});
  EXPECT_FALSE(checked.Open(kSession, "cart", *envelope, &failure).ok());
  EXPECT_EQ(failure, OpenFailure::kKeyMismatch);
  // Only a failure is reclassified: what opens still opens, and a moved
  // value under another key id is still plain tampering.
  std::string own = MustSeal(kSession, "cart", "y");
  EXPECT_TRUE(checked.Open(kSession, "cart", own).ok());
  mismatches.Set({"old"});
  EXPECT_FALSE(checked.Open(kSession, "other", own, &failure).ok());
  EXPECT_EQ(failure, OpenFailure::kAuthFailed);
}

TEST_F(EnvelopeTest, RotationOpensOldKeysAndSealsWithTheNewPrimary) {
  std::unique_ptr<Keyring> before = MakeKeyring({Key("a", '1')});
  std::unique_ptr<Keyring> after = MakeKeyring({Key("b", '2'), Key("a", '1')});
  Sealer old_sealer(before.get(), random_.get());
  Sealer new_sealer(after.get(), random_.get());

  absl::StatusOr<std::string> old_envelope = old_sealer.Seal(kSession, "cart", "v1");
  ASSERT_TRUE(old_envelope.ok());
  absl::StatusOr<Opened> opened = new_sealer.Open(kSession, "cart", *old_envelope);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->plaintext, "v1");
  EXPECT_EQ(opened->key_id, "a");

  absl::StatusOr<std::string> new_envelope = new_sealer.Seal(kSession, "cart", "v2");
  ASSERT_TRUE(new_envelope.ok());
  EXPECT_EQ(Sealer::KeyIdOf(*new_envelope), "b");
  opened = new_sealer.Open(kSession, "cart", *new_envelope);
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(opened->key_id, "b");
  // The retired keyring cannot read what the new primary wrote.
  OpenFailure failure{};
  EXPECT_FALSE(old_sealer.Open(kSession, "cart", *new_envelope, &failure).ok());
  EXPECT_EQ(failure, OpenFailure::kUnknownKey);
}

TEST_F(EnvelopeTest, RandomSourceFailureIsPropagated) {
  CountingRandom failing;
  failing.set_fail(true);
  Sealer sealer(keyring_.get(), &failing);
  EXPECT_EQ(sealer.Seal(kSession, "cart", "x").status().code(),
            absl::StatusCode::kUnavailable);
}

TEST_F(EnvelopeTest, GarbageNeverOpensOrCrashes) {
  CountingRandom bytes;
  std::string garbage(200, '\0');
  for (size_t n = 0; n < garbage.size(); n += 7) {
    ASSERT_TRUE(bytes.Fill(garbage.data(), n).ok());
    std::string candidate = garbage.substr(0, n);
    EXPECT_FALSE(sealer_.Open(kSession, "cart", candidate).ok());
    for (char version : {'\x01', '\x02'}) {
      if (n < 2) break;
      // A plausible header naming a real key, with garbage behind it.
      candidate[0] = version;
      candidate[1] = '\x07';
      candidate.replace(2, std::min<size_t>(7, n - 2), "primary", 0,
                        std::min<size_t>(7, n - 2));
      EXPECT_FALSE(sealer_.Open(kSession, "cart", candidate).ok());
    }
  }
}

TEST_F(EnvelopeTest, KeyIdOfIsEmptyForMalformedEnvelopes) {
  EXPECT_EQ(Sealer::KeyIdOf(""), "");
  EXPECT_EQ(Sealer::KeyIdOf(std::string(100, '\x03')), "");  // bad version
  EXPECT_EQ(Sealer::KeyIdOf(std::string(100, '\x00')), "");
  EXPECT_EQ(Sealer::KeyIdOf(std::string("\x02\x02kk", 4) + std::string(44, 'x')),
            "kk");
  EXPECT_EQ(Sealer::VersionOf(std::string("\x02\x02kk", 4) + std::string(44, 'x')), 2);
  EXPECT_EQ(Sealer::VersionOf(std::string("\x02\x02kk", 4) + std::string(43, 'x')), 0);
  EXPECT_EQ(Sealer::KeyIdOf(std::string("\x01\x00", 2) + std::string(60, 'x')),
            "");  // empty key id
  EXPECT_EQ(Sealer::KeyIdOf(std::string("\x01\x21", 2) + std::string(100, 'x')),
            "");  // key id longer than 32
  EXPECT_EQ(Sealer::KeyIdOf(std::string("\x01\x02kk", 4) + std::string(43, 'x')),
            "");  // one byte short of salt, nonce and tag
  EXPECT_EQ(Sealer::KeyIdOf(std::string("\x01\x02kk", 4) + std::string(44, 'x')),
            "kk");
}

TEST_F(EnvelopeTest, ConcurrentSealsAndOpensAreIndependent) {
  // The primitives share process-wide OpenSSL objects, the sealer its epochs
  // and key cache; a sanitizer build checks that sharing them across
  // threads is sound. Short epochs and a small cache: rotations and
  // evictions happen while other threads seal and open.
  SealerOptions options;
  options.seals_per_epoch = 7;
  options.cached_keys = 32;
  Sealer sealer(keyring_.get(), random_.get(), nullptr, options);
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&sealer, t, &failures] {
      const std::string name = "attr" + std::to_string(t);
      std::vector<std::string> sealed;
      for (int i = 0; i < 200; ++i) {
        const std::string value = name + ":" + std::to_string(i);
        absl::StatusOr<std::string> envelope = sealer.Seal(kSession, name, value);
        absl::StatusOr<Opened> opened =
            envelope.ok() ? sealer.Open(kSession, name, *envelope)
                          : absl::StatusOr<Opened>(envelope.status());
        if (!opened.ok() || opened->plaintext != value) ++failures[t];
        if (envelope.ok()) sealed.push_back(*envelope);
      }
      // Everything this thread sealed, from many epochs, long evicted.
      for (size_t i = 0; i < sealed.size(); ++i) {
        absl::StatusOr<Opened> opened = sealer.Open(kSession, name, sealed[i]);
        if (!opened.ok() || opened->plaintext != name + ":" + std::to_string(i)) {
          ++failures[t];
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures, std::vector<int>(4, 0));
}

TEST(OpenFailureNameTest, NamesAreStableMetricLabels) {
  EXPECT_EQ(OpenFailureName(OpenFailure::kMalformed), "malformed");
  EXPECT_EQ(OpenFailureName(OpenFailure::kUnknownKey), "unknown_key");
  EXPECT_EQ(OpenFailureName(OpenFailure::kAuthFailed), "auth_failed");
  EXPECT_EQ(OpenFailureName(OpenFailure::kKeyMismatch), "key_mismatch");
}

}  // namespace
}  // namespace stateside::crypto
