// Opening several envelopes under one key schedule (Sealer::Opener and
// Aes256GcmOpener): the same answers as opening each alone, for values under
// one epoch, several epochs and keys and version 1 mixed; a damaged value
// failing alone; and the thread's AES context back on the all-zero key
// afterwards, failures included.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "sidecar/crypto/envelope.h"
#include "sidecar/crypto/keyring.h"
#include "sidecar/crypto/primitives.h"
#include "sidecar/crypto/random.h"

namespace stateside::crypto {
namespace {

constexpr char kSession[] = "Zm9vYmFyYmF6cXV4cXV1eHF1dXhxdXV4cXV1eHF1dXg";
const std::string kNonce(kGcmNonceSize, '\x07');

std::unique_ptr<Keyring> MakeKeyring(std::vector<KeySpec> specs) {
  absl::StatusOr<std::unique_ptr<Keyring>> keyring =
      Keyring::Create(std::move(specs));
  EXPECT_TRUE(keyring.ok()) << keyring.status();
  return keyring.ok() ? *std::move(keyring) : nullptr;
}

// Whether the thread's AES-GCM context holds the all-zero key's schedule,
// asked without re-keying it (so a check inside a batch leaves the opener's
// key in place for its destructor to put back).
bool ThreadContextIsOnTheZeroKey() {
  absl::StatusOr<bool> on_zero = ThreadAes256GcmIsOnZeroKeyForTesting();
  EXPECT_TRUE(on_zero.ok()) << on_zero.status();
  return on_zero.ok() && *on_zero;
}

struct Value {
  std::string name;
  std::string plaintext;
  std::string envelope;
};

class EnvelopeOpenerTest : public ::testing::Test {
 protected:
  EnvelopeOpenerTest()
      : random_(NewSecureRandom()),
        keyring_(MakeKeyring({KeySpec{"primary", std::string(32, 'a')},
                              KeySpec{"old", std::string(32, 'b')}})),
        old_primary_(MakeKeyring({KeySpec{"old", std::string(32, 'b')}})),
        sealer_(keyring_.get(), random_.get()) {}

  // `n` values sealed by `sealer`, named name<first>... .
  std::vector<Value> SealValues(const Sealer& sealer, int first, int n) {
    std::vector<Value> values;
    for (int i = first; i < first + n; ++i) {
      Value v{absl::StrCat("name", i), absl::StrCat("value ", i, std::string(i, 'x')), ""};
      absl::StatusOr<std::string> sealed = sealer.Seal(kSession, v.name, v.plaintext);
      EXPECT_TRUE(sealed.ok()) << sealed.status();
      v.envelope = sealed.ok() ? *sealed : "";
      values.push_back(std::move(v));
    }
    return values;
  }

  std::unique_ptr<RandomSource> random_;
  std::unique_ptr<Keyring> keyring_;
  std::unique_ptr<Keyring> old_primary_;
  Sealer sealer_;
};

TEST_F(EnvelopeOpenerTest, OpensManyValuesOfOneEpochAsSingleOpensDo) {
  const std::vector<Value> values = SealValues(sealer_, 0, 64);
  Sealer::Opener opener(sealer_);
  for (const Value& v : values) {
    absl::StatusOr<Opened> batch = opener.Open(kSession, v.name, v.envelope);
    absl::StatusOr<Opened> single = sealer_.Open(kSession, v.name, v.envelope);
    ASSERT_TRUE(batch.ok()) << v.name << ": " << batch.status();
    ASSERT_TRUE(single.ok()) << single.status();
    EXPECT_EQ(batch->plaintext, v.plaintext);
    EXPECT_EQ(batch->plaintext, single->plaintext);
    EXPECT_EQ(batch->key_id, single->key_id);
  }
  // The single opens in between re-keyed the context: the opener noticed
  // and keyed it again each time, so still opened every value.
  EXPECT_EQ(opener.keyings(), 64);
}

TEST_F(EnvelopeOpenerTest, KeysTheContextOncePerRunOfValuesSharingADataKey) {
  const std::vector<Value> values = SealValues(sealer_, 0, 20);
  Sealer::Opener opener(sealer_);
  for (const Value& v : values) {
    absl::StatusOr<Opened> opened = opener.Open(kSession, v.name, v.envelope);
    ASSERT_TRUE(opened.ok()) << opened.status();
    EXPECT_EQ(opened->plaintext, v.plaintext);
  }
  EXPECT_EQ(opener.keyings(), 1);
}

TEST_F(EnvelopeOpenerTest, MixedKeysEpochsAndVersionOneOpenInOneBatch) {
  SealerOptions one_per_epoch;
  one_per_epoch.seals_per_epoch = 3;  // a new epoch every three values
  Sealer epochs(keyring_.get(), random_.get(), nullptr, one_per_epoch);
  SealerOptions v1_options;
  v1_options.seal_version = 1;
  Sealer v1(keyring_.get(), random_.get(), nullptr, v1_options);
  Sealer old(old_primary_.get(), random_.get());
  std::vector<Value> values;
  for (int round = 0; round < 4; ++round) {
    for (const Sealer* s : {&sealer_, &epochs, &v1, &old, &epochs}) {
      std::vector<Value> more = SealValues(*s, static_cast<int>(values.size()), 2);
      values.insert(values.end(), more.begin(), more.end());
    }
  }
  Sealer::Opener opener(sealer_);
  for (const Value& v : values) {
    absl::StatusOr<Opened> opened = opener.Open(kSession, v.name, v.envelope);
    ASSERT_TRUE(opened.ok()) << v.name << ": " << opened.status();
    EXPECT_EQ(opened->plaintext, v.plaintext);
    EXPECT_EQ(opened->key_id, Sealer::KeyIdOf(v.envelope));
  }
}

TEST_F(EnvelopeOpenerTest, ADamagedValueAmongGoodOnesFailsAloneAsASingleOpenDoes) {
  std::vector<Value> values = SealValues(sealer_, 0, 9);
  values[2].envelope.back() ^= 0x01;                   // tag
  values[4].envelope[values[4].envelope.size() - 20] ^= 0x40;  // ciphertext
  values[6].name = "moved";                            // another attribute
  values[7].envelope.resize(5);                        // truncated
  for (const bool damaged_first : {false, true}) {
    Sealer::Opener opener(sealer_);
    if (damaged_first) {
      EXPECT_FALSE(opener.Open(kSession, values[2].name, values[2].envelope).ok());
    }
    for (size_t i = 0; i < values.size(); ++i) {
      const Value& v = values[i];
      OpenFailure batch_failure{}, single_failure{};
      absl::StatusOr<Opened> batch =
          opener.Open(kSession, v.name, v.envelope, &batch_failure);
      absl::StatusOr<Opened> single =
          sealer_.Open(kSession, v.name, v.envelope, &single_failure);
      EXPECT_EQ(batch.status(), single.status()) << i;
      if (i == 2 || i == 4 || i == 6 || i == 7) {
        EXPECT_EQ(batch.status().code(), absl::StatusCode::kDataLoss) << i;
        EXPECT_EQ(batch.status().message(), "envelope did not open");
        EXPECT_EQ(batch_failure, single_failure) << i;
        EXPECT_EQ(batch_failure, i == 7 ? OpenFailure::kMalformed
                                        : OpenFailure::kAuthFailed);
      } else {
        ASSERT_TRUE(batch.ok()) << i << ": " << batch.status();
        EXPECT_EQ(batch->plaintext, v.plaintext);
      }
    }
  }
}

TEST_F(EnvelopeOpenerTest, TheContextIsBackOnTheZeroKeyAfterABatch) {
  const std::vector<Value> values = SealValues(sealer_, 0, 5);
  {
    Sealer::Opener opener(sealer_);
    for (const Value& v : values) {
      ASSERT_TRUE(opener.Open(kSession, v.name, v.envelope).ok());
    }
    EXPECT_FALSE(ThreadContextIsOnTheZeroKey()) << "keyed during the batch";
  }
  EXPECT_TRUE(ThreadContextIsOnTheZeroKey());
  // A single open, too.
  ASSERT_TRUE(sealer_.Open(kSession, values[0].name, values[0].envelope).ok());
  EXPECT_TRUE(ThreadContextIsOnTheZeroKey());
}

TEST_F(EnvelopeOpenerTest, TheContextIsBackOnTheZeroKeyAfterAFailure) {
  std::vector<Value> values = SealValues(sealer_, 0, 3);
  values[2].envelope.back() ^= 0x01;
  {
    Sealer::Opener opener(sealer_);
    ASSERT_TRUE(opener.Open(kSession, values[0].name, values[0].envelope).ok());
    ASSERT_TRUE(opener.Open(kSession, values[1].name, values[1].envelope).ok());
    EXPECT_FALSE(opener.Open(kSession, values[2].name, values[2].envelope).ok());
  }
  EXPECT_TRUE(ThreadContextIsOnTheZeroKey());
  EXPECT_FALSE(sealer_.Open(kSession, values[2].name, values[2].envelope).ok());
  EXPECT_TRUE(ThreadContextIsOnTheZeroKey());
}

TEST(Aes256GcmOpenerTest, NestedOpenersAndSingleCallsKeepEachOthersKeys) {
  const std::string key_a(kAes256KeySize, 'a'), key_b(kAes256KeySize, 'b');
  absl::StatusOr<std::string> sealed_a = Aes256GcmSeal(key_a, kNonce, "ad", "under a");
  absl::StatusOr<std::string> sealed_b = Aes256GcmSeal(key_b, kNonce, "ad", "under b");
  ASSERT_TRUE(sealed_a.ok() && sealed_b.ok());
  std::string out(7, '\0');
  {
    Aes256GcmOpener outer;
    ASSERT_TRUE(outer.OpenTo(key_a, kNonce, "ad", *sealed_a, out.data()).ok());
    {
      Aes256GcmOpener inner;
      ASSERT_TRUE(inner.OpenTo(key_b, kNonce, "ad", *sealed_b, out.data()).ok());
      EXPECT_EQ(out, "under b");
    }
    EXPECT_TRUE(ThreadContextIsOnTheZeroKey());
    ASSERT_TRUE(outer.OpenTo(key_a, kNonce, "ad", *sealed_a, out.data()).ok());
    EXPECT_EQ(out, "under a");
    ASSERT_TRUE(Aes256GcmSeal(key_b, kNonce, "", "x").ok());
    ASSERT_TRUE(outer.OpenTo(key_a, kNonce, "ad", *sealed_a, out.data()).ok());
    EXPECT_EQ(out, "under a");
    EXPECT_EQ(outer.keyings(), 3);
    // Bad inputs are refused as by Aes256GcmOpenTo.
    EXPECT_EQ(outer.OpenTo("short", kNonce, "ad", *sealed_a, out.data()).code(),
              absl::StatusCode::kInvalidArgument);
  }
  EXPECT_TRUE(ThreadContextIsOnTheZeroKey());
}

TEST(Aes256GcmOpenerTest, AFailedTagWipesTheOutputAndTheNextMessageOpens) {
  const std::string key(kAes256KeySize, 'k');
  absl::StatusOr<std::string> sealed = Aes256GcmSeal(key, kNonce, "", "secret!");
  ASSERT_TRUE(sealed.ok());
  std::string bad = *sealed;
  bad.back() ^= 0x01;
  Aes256GcmOpener opener;
  std::string out(7, 'z');
  EXPECT_EQ(opener.OpenTo(key, kNonce, "", bad, out.data()).code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(out, std::string(7, '\0'));
  ASSERT_TRUE(opener.OpenTo(key, kNonce, "", *sealed, out.data()).ok());
  EXPECT_EQ(out, "secret!");
}

}  // namespace
}  // namespace stateside::crypto
