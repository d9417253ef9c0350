// The strength rules for keys and cookie secrets, and the dump-excluded
// memory that holds key material.
#include "sidecar/crypto/secret_strength.h"

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/escaping.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sidecar/crypto/secret_memory.h"
#include "tests/support/test_secrets.h"

namespace stateside::crypto {
namespace {

using ::testing::HasSubstr;
using ::testing::Optional;

std::string Bytes(const std::string& hex) { return absl::HexStringToBytes(hex); }

TEST(SecretStrengthTest, PeriodIsTheShortestRepeatingUnit) {
  EXPECT_EQ(RepeatingPeriod(""), 0u);
  EXPECT_EQ(RepeatingPeriod("aaaa"), 1u);
  EXPECT_EQ(RepeatingPeriod("abcabcab"), 3u);
  EXPECT_EQ(RepeatingPeriod("abcd"), 4u);
  EXPECT_EQ(RepeatingPeriod("aab"), 3u);
}

TEST(SecretStrengthTest, RandomLookingKeysPass) {
  EXPECT_EQ(WeakKeyReason(Bytes(
                ::stateside::testing::kTestKeyHex)),
            std::nullopt);
  // A counting key is not random, but no rule here claims to catch it.
  EXPECT_EQ(WeakKeyReason(Bytes(
                "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")),
            std::nullopt);
}

TEST(SecretStrengthTest, AllZeroKeyIsRefused) {
  EXPECT_THAT(WeakKeyReason(std::string(32, '\0')), Optional(std::string("is all zero bytes")));
}

TEST(SecretStrengthTest, RepeatedByteKeyIsRefused) {
  EXPECT_THAT(WeakKeyReason(std::string(32, '\xaa')), Optional(std::string("repeats one byte")));
}

TEST(SecretStrengthTest, KeyOfTwoEqualHalvesIsRefused) {
  const std::string half = Bytes("00112233445566778899aabbccddeeff");
  EXPECT_THAT(WeakKeyReason(half + half),
              Optional(std::string("repeats a pattern of 16 bytes")));
}

TEST(SecretStrengthTest, KeyWithFewDistinctBytesIsRefused) {
  std::string key;
  for (int i = 0; i < 32; ++i) key.push_back(static_cast<char>((i * 7 + i / 5) % 11));
  ASSERT_EQ(RepeatingPeriod(key), 32u);
  EXPECT_THAT(WeakKeyReason(key), Optional(std::string("has only 11 distinct byte values")));
}

TEST(SecretStrengthTest, CookieSecretRules) {
  EXPECT_EQ(WeakSecretReason(::stateside::testing::kTestSecret), std::nullopt);
  EXPECT_EQ(WeakSecretReason(
                "9b1de4f07a3c52e88c0f6a2d19b47e53"),  // openssl rand -hex 16
            std::nullopt);
  EXPECT_THAT(WeakSecretReason(std::string(31, 'x')), Optional(HasSubstr("shorter than 32")));
  EXPECT_THAT(WeakSecretReason(std::string(32, 'x')), Optional(std::string("repeats one byte")));
  EXPECT_THAT(WeakSecretReason("changemechangemechangemechangeme"),
              Optional(std::string("repeats a pattern of 8 bytes")));
  EXPECT_THAT(WeakSecretReason(std::string(40, 'a') + "bcdefgh"),
              Optional(HasSubstr("too little entropy")));
}

TEST(SecretStrengthTest, EntropyEstimateOfUniformBytes) {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  EXPECT_DOUBLE_EQ(EstimatedEntropyBits(all), 256 * 8.0);
  EXPECT_DOUBLE_EQ(EstimatedEntropyBits("abab"), 4.0);
  EXPECT_EQ(DistinctBytes(all), 256u);
}

// The mapping holding the buffer is flagged "dd" (MADV_DONTDUMP) in
// /proc/self/smaps, and the buffer starts zeroed.
TEST(SecretBufferTest, PagesAreExcludedFromCoreDumps) {
  auto buffer = SecretBuffer::Allocate(64);
  ASSERT_TRUE(buffer.ok()) << buffer.status();
  EXPECT_EQ(buffer->view(0, 64), std::string(64, '\0'));
  const uintptr_t address = reinterpret_cast<uintptr_t>(buffer->data());
  std::ifstream smaps("/proc/self/smaps");
  bool inside = false, found = false;
  for (std::string line; std::getline(smaps, line);) {
    uintptr_t begin = 0, end = 0;
    char dash = 0;
    std::istringstream head(line);
    if (head >> std::hex >> begin >> dash >> end && dash == '-' &&
        line.find(' ') != std::string::npos && line.find(':') > line.find(' ')) {
      inside = begin <= address && address < end;
      continue;
    }
    if (inside && line.rfind("VmFlags:", 0) == 0) {
      found = true;
      EXPECT_THAT(line + " ", HasSubstr(" dd ")) << line;
    }
  }
  EXPECT_TRUE(found) << "no mapping of the buffer in /proc/self/smaps";
}

}  // namespace
}  // namespace stateside::crypto
