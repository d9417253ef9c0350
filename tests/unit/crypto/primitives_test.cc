// The primitives against published vectors: AES-256-GCM (McGrew & Viega, "The
// Galois/Counter Mode of Operation", test cases 13-16), HKDF-SHA256 (RFC 5869
// A.1 and A.3) and HMAC-SHA256 (RFC 4231 test cases 1, 2 and 6), keyed per
// call and keyed once (HmacSha256Key).
#include "sidecar/crypto/primitives.h"

#include <atomic>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"
#include "sidecar/crypto/random.h"

namespace stateside::crypto {
namespace {

std::string Hex(const char* hex) { return absl::HexStringToBytes(hex); }
std::string ToHex(const std::string& bytes) {
  return absl::BytesToHexString(bytes);
}

struct GcmVector {
  const char* name;
  const char* key;
  const char* nonce;
  const char* aad;
  const char* plaintext;
  const char* ciphertext;
  const char* tag;
};

constexpr char kKey1516[] =
    "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308";
constexpr char kPlain15[] =
    "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
    "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255";
constexpr char kCipher15[] =
    "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
    "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad";

const GcmVector kGcmVectors[] = {
    {"TestCase13", "0000000000000000000000000000000000000000000000000000000000000000",
     "000000000000000000000000", "", "", "", "530f8afbc74536b9a963b4f1c4cb738b"},
    {"TestCase14", "0000000000000000000000000000000000000000000000000000000000000000",
     "000000000000000000000000", "", "00000000000000000000000000000000",
     "cea7403d4d606b6e074ec5d3baf39d18", "d0d1c8a799996bf0265b98b5d48ab919"},
    {"TestCase15", kKey1516, "cafebabefacedbaddecaf888", "", kPlain15, kCipher15,
     "b094dac5d93471bdec1a502270e3cc6c"},
    // Test case 16: the plaintext of 15 less its last 4 bytes, with AAD.
    {"TestCase16", kKey1516, "cafebabefacedbaddecaf888",
     "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
     "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
     "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
     "76fc6ece0f4e1768cddf8853bb2d551b"},
};

class GcmVectorTest : public ::testing::TestWithParam<GcmVector> {};

TEST_P(GcmVectorTest, SealProducesPublishedCiphertextAndTag) {
  const GcmVector& v = GetParam();
  absl::StatusOr<std::string> sealed =
      Aes256GcmSeal(Hex(v.key), Hex(v.nonce), Hex(v.aad), Hex(v.plaintext));
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  EXPECT_EQ(ToHex(*sealed), std::string(v.ciphertext) + v.tag);
}

TEST_P(GcmVectorTest, OpenRecoversPublishedPlaintext) {
  const GcmVector& v = GetParam();
  absl::StatusOr<std::string> opened =
      Aes256GcmOpen(Hex(v.key), Hex(v.nonce), Hex(v.aad),
                    Hex(v.ciphertext) + Hex(v.tag));
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(ToHex(*opened), v.plaintext);
}

TEST_P(GcmVectorTest, OpenRejectsAnyFlippedBitOfCiphertextOrTag) {
  const GcmVector& v = GetParam();
  const std::string sealed = Hex(v.ciphertext) + Hex(v.tag);
  for (size_t i = 0; i < sealed.size(); ++i) {
    std::string bad = sealed;
    bad[i] = static_cast<char>(bad[i] ^ (1 << (i % 8)));
    absl::StatusOr<std::string> opened =
        Aes256GcmOpen(Hex(v.key), Hex(v.nonce), Hex(v.aad), bad);
    EXPECT_EQ(opened.status().code(), absl::StatusCode::kDataLoss) << i;
  }
}

TEST_P(GcmVectorTest, OpenRejectsOtherAssociatedData) {
  const GcmVector& v = GetParam();
  absl::StatusOr<std::string> opened =
      Aes256GcmOpen(Hex(v.key), Hex(v.nonce), Hex(v.aad) + "x",
                    Hex(v.ciphertext) + Hex(v.tag));
  EXPECT_EQ(opened.status().code(), absl::StatusCode::kDataLoss);
}

INSTANTIATE_TEST_SUITE_P(McGrewViega, GcmVectorTest,
                         ::testing::ValuesIn(kGcmVectors),
                         [](const auto& info) { return info.param.name; });

TEST(GcmTest, FailedOpenWipesTheUnauthenticatedPlaintext) {
  const std::string key = Hex(kKey1516);
  const std::string nonce = Hex("cafebabefacedbaddecaf888");
  std::string sealed = Hex(kCipher15) + Hex("b094dac5d93471bdec1a502270e3cc6c");
  sealed.back() ^= 1;
  std::string out(sealed.size() - kGcmTagSize, 'x');
  absl::Status status = Aes256GcmOpenTo(key, nonce, "", sealed, out.data());
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(out, std::string(out.size(), '\0'));
}

TEST(GcmTest, RejectsWrongKeyNonceAndInputSizes) {
  const std::string key(32, 'k');
  const std::string nonce(12, 'n');
  EXPECT_EQ(Aes256GcmSeal(std::string(31, 'k'), nonce, "", "p").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Aes256GcmSeal(key, std::string(16, 'n'), "", "p").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Aes256GcmOpen(key, nonce, "", std::string(15, 'c')).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Aes256GcmOpen(std::string(33, 'k'), nonce, "", std::string(16, 'c'))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(GcmTest, RoundTripsEveryLengthAroundTheBlockSize) {
  const std::string key(32, '\x42');
  const std::string nonce(12, '\x07');
  for (size_t n = 0; n <= 40; ++n) {
    const std::string plaintext(n, static_cast<char>('a' + n % 26));
    absl::StatusOr<std::string> sealed = Aes256GcmSeal(key, nonce, "aad", plaintext);
    ASSERT_TRUE(sealed.ok());
    ASSERT_EQ(sealed->size(), n + kGcmTagSize);
    absl::StatusOr<std::string> opened = Aes256GcmOpen(key, nonce, "aad", *sealed);
    ASSERT_TRUE(opened.ok()) << n;
    EXPECT_EQ(*opened, plaintext);
  }
}

TEST(HkdfTest, Rfc5869TestCase1) {
  absl::StatusOr<std::string> okm =
      HkdfSha256(Hex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"),
                 Hex("000102030405060708090a0b0c"), Hex("f0f1f2f3f4f5f6f7f8f9"), 42);
  ASSERT_TRUE(okm.ok()) << okm.status();
  EXPECT_EQ(ToHex(*okm),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
            "34007208d5b887185865");
}

TEST(HkdfTest, Rfc5869TestCase3WithEmptySaltAndInfo) {
  absl::StatusOr<std::string> okm =
      HkdfSha256(Hex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"), "", "", 42);
  ASSERT_TRUE(okm.ok()) << okm.status();
  EXPECT_EQ(ToHex(*okm),
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
            "9d201395faa4b61a96c8");
}

TEST(HkdfTest, ShorterOutputIsAPrefixOfLongerOutput) {
  absl::StatusOr<std::string> long_okm = HkdfSha256("key", "salt", "info", 100);
  absl::StatusOr<std::string> short_okm = HkdfSha256("key", "salt", "info", 32);
  ASSERT_TRUE(long_okm.ok() && short_okm.ok());
  EXPECT_EQ(long_okm->substr(0, 32), *short_okm);
}

TEST(HkdfTest, RejectsEmptyKeyAndOutOfRangeLengths) {
  EXPECT_EQ(HkdfSha256("", "s", "i", 32).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(HkdfSha256("k", "s", "i", 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(HkdfSha256("k", "s", "i", 255 * 32 + 1).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(HkdfSha256("k", "s", "i", 255 * 32).ok());
}

TEST(HmacTest, Rfc4231TestCase2) {
  absl::StatusOr<std::string> mac =
      HmacSha256("Jefe", "what do ya want for nothing?");
  ASSERT_TRUE(mac.ok()) << mac.status();
  EXPECT_EQ(ToHex(*mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

struct HmacCase {
  std::string key, data, mac;
};

// RFC 4231 test cases 1, 6 (a key longer than SHA-256's block, hashed
// first) and 2.
const std::vector<HmacCase>& Rfc4231Cases() {
  static const std::vector<HmacCase>* const kCases = new std::vector<HmacCase>{
      {std::string(20, '\x0b'), "Hi There",
       "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
      {std::string(131, '\xaa'), "Test Using Larger Than Block-Size Key - Hash Key First",
       "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
      {"Jefe", "what do ya want for nothing?",
       "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
  };
  return *kCases;
}

// `run(rounds)` MACs the cases in turn and counts the wrong MACs: none on
// this thread, then none from `threads` threads at once.
template <typename Run>
void ExpectRightInTurnsAndFromThreads(int threads, Run run) {
  EXPECT_EQ(run(9), 0);
  std::vector<std::thread> running;
  std::atomic<int> wrong{0};
  for (int t = 0; t < threads; ++t) running.emplace_back([&] { wrong += run(300); });
  for (std::thread& t : running) t.join();
  EXPECT_EQ(wrong.load(), 0);
}

// In turns on one thread and on several at once: each thread reuses one
// HMAC context re-keyed per MAC, so no key may leak into the next MAC.
TEST(HmacTest, Rfc4231TestCases1And6InTurnsAndFromManyThreads) {
  const std::vector<HmacCase>& cases = Rfc4231Cases();
  ExpectRightInTurnsAndFromThreads(4, [&cases](int rounds) {
    int wrong = 0;
    for (int i = 0; i < rounds; ++i) {
      const HmacCase& c = cases[static_cast<size_t>(i) % cases.size()];
      absl::StatusOr<std::string> mac = HmacSha256(c.key, c.data);
      if (!mac.ok() || ToHex(*mac) != c.mac) ++wrong;
    }
    return wrong;
  });
}

TEST(HmacTest, PartsAreMacedAsTheirConcatenation) {
  char out[kSha256Size];
  ASSERT_TRUE(HmacSha256To("Jefe", {"what do ", "", "ya want", " for nothing?"},
                           out)
                  .ok());
  EXPECT_EQ(ToHex(std::string(out, sizeof(out))),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(HmacTest, EmptyKeyAndMessageAreAllowed) {
  // RFC 2104 pads an empty key with zeros; HKDF's default salt relies on it.
  absl::StatusOr<std::string> empty = HmacSha256("", "");
  absl::StatusOr<std::string> zeros = HmacSha256(std::string(32, '\0'), "");
  ASSERT_TRUE(empty.ok() && zeros.ok());
  EXPECT_EQ(*empty, *zeros);
}

// A key keyed once gives the RFC 4231 MACs (cases 1, 2 and 6), MAC after
// MAC on one thread and from more threads than it has context slots (so
// some MACs take a copy of their own), each key beside the others.
TEST(HmacKeyTest, Rfc4231TestCasesRepeatedAndFromManyThreads) {
  const std::vector<HmacCase>& cases = Rfc4231Cases();
  std::vector<std::unique_ptr<HmacSha256Key>> keys;
  for (const HmacCase& c : cases) {
    absl::StatusOr<std::unique_ptr<HmacSha256Key>> key = HmacSha256Key::Create(c.key);
    ASSERT_TRUE(key.ok()) << key.status();
    keys.push_back(*std::move(key));
  }
  ExpectRightInTurnsAndFromThreads(24, [&](int rounds) {
    int wrong = 0;
    char out[kSha256Size];
    for (int i = 0; i < rounds; ++i) {
      const size_t k = static_cast<size_t>(i) % cases.size();
      if (!keys[k]->MacTo({cases[k].data}, out).ok() ||
          ToHex(std::string(out, sizeof(out))) != cases[k].mac) {
        ++wrong;
      }
    }
    return wrong;
  });
}

TEST(HmacKeyTest, AgreesWithHmacSha256ToOnPartsAndEmptyInputs) {
  for (const std::string& key_bytes : {std::string(), std::string(32, 's'),
                                       std::string(64, 'k'), std::string(65, 'k')}) {
    absl::StatusOr<std::unique_ptr<HmacSha256Key>> key =
        HmacSha256Key::Create(key_bytes);
    ASSERT_TRUE(key.ok()) << key.status();
    for (const std::string& data : {std::string(), std::string("a"),
                                    std::string(200, 'd')}) {
      char keyed[kSha256Size];
      char plain[kSha256Size];
      ASSERT_TRUE((*key)->MacTo({"pre", "", data}, keyed).ok());
      ASSERT_TRUE(HmacSha256To(key_bytes, {"pre", data}, plain).ok());
      EXPECT_EQ(std::string(keyed, sizeof(keyed)), std::string(plain, sizeof(plain)))
          << key_bytes.size() << " " << data.size();
    }
  }
}

TEST(ConstantTimeEqualsTest, ComparesContentsAndLengths) {
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "ab"));
  EXPECT_FALSE(ConstantTimeEquals(std::string("a\0b", 3), std::string("a\0c", 3)));
}

TEST(CleanseTest, WipesAndClearsAString) {
  std::string secret = "a secret that is longer than SSO";
  const char* data = secret.data();
  const size_t size = secret.size();
  Cleanse(secret);
  EXPECT_TRUE(secret.empty());
  // The buffer is still ours (clear() keeps the capacity): its bytes are zero.
  EXPECT_EQ(std::string(data, size), std::string(size, '\0'));
}

TEST(SecureRandomTest, FillsWithFreshBytes) {
  std::unique_ptr<RandomSource> random = NewSecureRandom();
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    absl::StatusOr<std::string> bytes = RandomBytes(*random, 16);
    ASSERT_TRUE(bytes.ok());
    ASSERT_EQ(bytes->size(), 16u);
    seen.insert(*bytes);
  }
  EXPECT_EQ(seen.size(), 100u);
  EXPECT_TRUE(RandomBytes(*random, 0).ok());
}

}  // namespace
}  // namespace stateside::crypto
