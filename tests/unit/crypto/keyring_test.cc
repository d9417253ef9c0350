// Keyring: parsing of SESSION_ENCRYPTION_KEY(S), validation, lookup and the
// blind index. Error messages must never contain key material.
#include "sidecar/crypto/keyring.h"

#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sidecar/crypto/primitives.h"

namespace stateside::crypto {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kHexA[] =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
constexpr char kHexB[] =
    "C0FFEEC0FFEEC0FFEEC0FFEEC0FFEEC0FFEEC0FFEEC0FFEEC0FFEEC0FFEEC0FF";

std::string Bytes(const char* hex) { return absl::HexStringToBytes(hex); }

// The message must not contain the key, nor any long run of it.
void ExpectNoKeyMaterial(const absl::Status& status, const std::string& hex) {
  EXPECT_THAT(std::string(status.message()), Not(HasSubstr(hex.substr(0, 16))));
  EXPECT_THAT(std::string(status.message()),
              Not(HasSubstr(hex.substr(hex.size() - 16))));
}

TEST(KeyringParseTest, HexKeyBecomesKeyK0) {
  absl::StatusOr<std::vector<KeySpec>> specs = Keyring::ParseHexKey(kHexA);
  ASSERT_TRUE(specs.ok()) << specs.status();
  ASSERT_EQ(specs->size(), 1u);
  EXPECT_EQ((*specs)[0].id, "k0");
  EXPECT_EQ((*specs)[0].bytes, Bytes(kHexA));
}

TEST(KeyringParseTest, HexKeyAcceptsUpperCaseAndSurroundingWhitespace) {
  absl::StatusOr<std::vector<KeySpec>> specs =
      Keyring::ParseHexKey(std::string("  ") + kHexB + "\n");
  ASSERT_TRUE(specs.ok()) << specs.status();
  EXPECT_EQ((*specs)[0].bytes, Bytes(kHexB));
}

TEST(KeyringParseTest, HexKeyOfWrongLengthIsRejectedWithoutEchoingIt) {
  for (const std::string& bad :
       {std::string(), std::string(kHexA).substr(0, 63), std::string(kHexA) + "0",
        std::string(kHexA) + kHexA}) {
    absl::StatusOr<std::vector<KeySpec>> specs = Keyring::ParseHexKey(bad);
    ASSERT_EQ(specs.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(std::string(specs.status().message()), HasSubstr("64 hex"));
    if (bad.size() >= 32) ExpectNoKeyMaterial(specs.status(), bad);
  }
}

TEST(KeyringParseTest, NonHexCharacterIsRejectedWithoutEchoingTheKey) {
  std::string bad = kHexA;
  bad[40] = 'g';
  absl::StatusOr<std::vector<KeySpec>> specs = Keyring::ParseHexKey(bad);
  ASSERT_EQ(specs.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(specs.status().message()), HasSubstr("not hex"));
  ExpectNoKeyMaterial(specs.status(), bad);
  bad[40] = ' ';  // inner whitespace is not trimmed away
  EXPECT_FALSE(Keyring::ParseHexKey(bad).ok());
}

TEST(KeyringParseTest, KeyListKeepsOrderAndIds) {
  absl::StatusOr<std::vector<KeySpec>> specs = Keyring::ParseKeyList(
      std::string("new:") + kHexB + ", old_1 : " + kHexA + "\n");
  ASSERT_TRUE(specs.ok()) << specs.status();
  ASSERT_EQ(specs->size(), 2u);
  EXPECT_EQ((*specs)[0].id, "new");
  EXPECT_EQ((*specs)[0].bytes, Bytes(kHexB));
  EXPECT_EQ((*specs)[1].id, "old_1");
  EXPECT_EQ((*specs)[1].bytes, Bytes(kHexA));
}

TEST(KeyringParseTest, KeyListRejectsMalformedEntries) {
  const std::string a = kHexA;
  const std::string b = kHexB;
  struct Case {
    std::string list;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"", "entry 1 is empty"},
      {"a:" + a + ",", "entry 2 is empty"},
      {"a:" + a + ",,b:" + b, "entry 2 is empty"},
      {a, "no ':'"},
      {":" + a, "key id"},
      {"a b:" + a, "key id"},
      {"a.b:" + a, "key id"},
      {"\xc3\xbc:" + a, "key id"},
      {std::string(33, 'k') + ":" + a, "key id"},
      {"a:" + a + ",a:" + b, "entry 2 repeats"},
      {"a:" + a + ",b:" + b.substr(1), "entry 2 must be 64 hex"},
      {"a:" + a + ",b:", "entry 2 must be 64 hex"},
      {"a:" + a.substr(0, 60) + "zzzz", "entry 1 contains a character"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<std::vector<KeySpec>> specs = Keyring::ParseKeyList(c.list);
    ASSERT_EQ(specs.status().code(), absl::StatusCode::kInvalidArgument) << c.list;
    EXPECT_THAT(std::string(specs.status().message()), HasSubstr(c.message))
        << c.list;
    ExpectNoKeyMaterial(specs.status(), a);
    ExpectNoKeyMaterial(specs.status(), b);
  }
}

TEST(KeyringParseTest, KeyIdOfMaximumLengthIsAccepted) {
  absl::StatusOr<std::vector<KeySpec>> specs =
      Keyring::ParseKeyList(std::string(32, 'K') + ":" + kHexA);
  ASSERT_TRUE(specs.ok()) << specs.status();
  EXPECT_EQ((*specs)[0].id, std::string(32, 'K'));
}

TEST(KeyringCreateTest, ValidatesKeys) {
  const std::string key(32, 'x');
  EXPECT_EQ(Keyring::Create({}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Keyring::Create({{"k", std::string(31, 'x')}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Keyring::Create({{"k", std::string(33, 'x')}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Keyring::Create({{"", key}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Keyring::Create({{"bad id", key}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Keyring::Create({{"k", key}, {"k", std::string(32, 'y')}})
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(KeyringCreateTest, FirstKeyIsPrimaryAndAllAreFound) {
  absl::StatusOr<std::unique_ptr<Keyring>> keyring = Keyring::Create(
      {{"new", std::string(32, 'n')}, {"old", std::string(32, 'o')}});
  ASSERT_TRUE(keyring.ok()) << keyring.status();
  EXPECT_EQ((*keyring)->primary().id, "new");
  EXPECT_EQ((*keyring)->primary().master, std::string(32, 'n'));
  ASSERT_NE((*keyring)->Find("old"), nullptr);
  EXPECT_EQ((*keyring)->Find("old")->master, std::string(32, 'o'));
  EXPECT_EQ((*keyring)->Find("missing"), nullptr);
  EXPECT_EQ((*keyring)->Find(""), nullptr);
  EXPECT_EQ((*keyring)->keys().size(), 2u);
}

TEST(KeyringCreateTest, IndexKeyIsDerivedAndDistinctFromTheMaster) {
  absl::StatusOr<std::unique_ptr<Keyring>> keyring =
      Keyring::Create({{"k", Bytes(kHexA)}});
  ASSERT_TRUE(keyring.ok());
  const Keyring::Key& key = (*keyring)->primary();
  absl::StatusOr<std::string> expected =
      HkdfSha256(Bytes(kHexA), "", "stateside index v1", 32);
  ASSERT_TRUE(expected.ok());
  EXPECT_EQ(key.index_key, *expected);
  EXPECT_NE(key.index_key, key.master);
}

TEST(KeyringCheckValueTest, IsTheDocumentedTruncatedHmacOfTheKey) {
  absl::StatusOr<std::unique_ptr<Keyring>> keyring =
      Keyring::Create({{"k", Bytes(kHexA)}, {"other", std::string(32, 'o')}});
  ASSERT_TRUE(keyring.ok());
  absl::StatusOr<std::string> mac =
      HmacSha256(Bytes(kHexA), "stateside key check value");
  ASSERT_TRUE(mac.ok());
  const std::string value = Keyring::CheckValue((*keyring)->primary());
  EXPECT_EQ(value, absl::BytesToHexString(mac->substr(0, 8)));
  // Another key (same bytes under another id or not) has another value; the
  // same bytes under the same id always the same one.
  EXPECT_NE(Keyring::CheckValue((*keyring)->keys()[1]), value);
  absl::StatusOr<std::unique_ptr<Keyring>> again =
      Keyring::Create({{"k", Bytes(kHexA)}});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(Keyring::CheckValue((*again)->primary()), value);
}

class BlindTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<Keyring>> keyring = Keyring::Create(
        {{"a", std::string(32, 'a')}, {"b", std::string(32, 'b')}});
    ASSERT_TRUE(keyring.ok());
    keyring_ = *std::move(keyring);
  }
  const Keyring::Key& a() const { return keyring_->keys()[0]; }
  const Keyring::Key& b() const { return keyring_->keys()[1]; }
  std::unique_ptr<Keyring> keyring_;
};

TEST_F(BlindTest, IsTheDocumentedTruncatedHmac) {
  absl::StatusOr<std::string> mac =
      HmacSha256(a().index_key, std::string("user\0alice", 10));
  ASSERT_TRUE(mac.ok());
  EXPECT_EQ(Keyring::Blind(a(), "user", "alice"),
            absl::BytesToHexString(mac->substr(0, 16)));
}

TEST_F(BlindTest, IsDeterministicLowercaseHexOf32Chars) {
  const std::string tag = Keyring::Blind(a(), "user", "alice");
  EXPECT_EQ(tag, Keyring::Blind(a(), "user", "alice"));
  ASSERT_EQ(tag.size(), 32u);
  for (char c : tag) EXPECT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
  EXPECT_THAT(tag, Not(HasSubstr("alice")));
}

TEST_F(BlindTest, SeparatesValuesPurposesAndKeys) {
  const std::string tag = Keyring::Blind(a(), "user", "alice");
  EXPECT_NE(tag, Keyring::Blind(a(), "user", "bob"));
  EXPECT_NE(tag, Keyring::Blind(a(), "optout", "alice"));
  EXPECT_NE(tag, Keyring::Blind(b(), "user", "alice"));
  // The separator keeps the purpose/value boundary from shifting.
  EXPECT_NE(Keyring::Blind(a(), "ab", "c"), Keyring::Blind(a(), "a", "bc"));
  EXPECT_NE(Keyring::Blind(a(), "user", ""), Keyring::Blind(a(), "use", "r"));
}

}  // namespace
}  // namespace stateside::crypto
