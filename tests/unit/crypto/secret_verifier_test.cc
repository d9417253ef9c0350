// SecretVerifier: the configured secret matches, anything else (a prefix, a
// longer value, one changed byte, the empty string) does not, and the
// verifier refuses to hold an empty secret or to start without randomness.
#include "sidecar/crypto/secret_verifier.h"

#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "tests/unit/crypto/fake_random.h"

namespace stateside::crypto {
namespace {

const std::string kToken = "0123456789abcdef0123456789abcdef-admin";

std::unique_ptr<SecretVerifier> Verifier(const std::string& secret,
                                         RandomSource& random) {
  auto verifier = SecretVerifier::Create(secret, random);
  EXPECT_TRUE(verifier.ok()) << verifier.status();
  return verifier.ok() ? *std::move(verifier) : nullptr;
}

TEST(SecretVerifierTest, TheSecretMatches) {
  auto random = NewSecureRandom();
  auto verifier = Verifier(kToken, *random);
  ASSERT_NE(verifier, nullptr);
  EXPECT_TRUE(verifier->Matches(kToken));
  EXPECT_TRUE(verifier->Matches(kToken));  // no state between calls
}

TEST(SecretVerifierTest, NothingElseMatches) {
  auto random = NewSecureRandom();
  auto verifier = Verifier(kToken, *random);
  ASSERT_NE(verifier, nullptr);
  std::string flipped = kToken;
  flipped.back() ^= 1;
  for (const std::string& wrong :
       {std::string(), kToken.substr(0, kToken.size() - 1), kToken + "x",
        flipped, "Bearer " + kToken, std::string(kToken.size(), '\0')}) {
    EXPECT_FALSE(verifier->Matches(wrong)) << wrong;
  }
}

TEST(SecretVerifierTest, KeyedByRandomness) {
  // Two verifiers of one secret under different keys agree on the answer.
  testing::CountingRandom counting;
  auto first = Verifier(kToken, counting);
  auto second = Verifier(kToken, counting);
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  EXPECT_TRUE(first->Matches(kToken));
  EXPECT_TRUE(second->Matches(kToken));
  EXPECT_FALSE(second->Matches("something else"));
}

TEST(SecretVerifierTest, RefusesAnEmptySecretAndAFailingRandomSource) {
  testing::CountingRandom random;
  auto empty = SecretVerifier::Create("", random);
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument);
  random.set_fail(true);
  auto no_random = SecretVerifier::Create(kToken, random);
  EXPECT_FALSE(no_random.ok());
  EXPECT_EQ(no_random.status().message().find(kToken), std::string::npos);
}

}  // namespace
}  // namespace stateside::crypto
