// Session ids: 256 random bits as 43 base64url characters, and the syntax
// check applied to ids from outside.
#include "sidecar/crypto/session_id.h"

#include <set>
#include <string>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"
#include "tests/unit/crypto/fake_random.h"

namespace stateside::crypto {
namespace {

TEST(SessionIdTest, IsFortyThreeWellFormedCharacters) {
  std::unique_ptr<RandomSource> random = NewSecureRandom();
  absl::StatusOr<std::string> id = NewSessionId(*random);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->size(), 43u);
  EXPECT_TRUE(IsWellFormedSessionId(*id));
}

TEST(SessionIdTest, EncodesThirtyTwoBytesFromTheRandomSource) {
  testing::CountingRandom counting;
  absl::StatusOr<std::string> id = NewSessionId(counting);
  ASSERT_TRUE(id.ok());
  std::string bytes;
  ASSERT_TRUE(absl::WebSafeBase64Unescape(*id, &bytes));
  ASSERT_EQ(bytes.size(), 32u);
  for (size_t i = 0; i < bytes.size(); ++i) {
    EXPECT_EQ(static_cast<unsigned char>(bytes[i]), i);
  }
}

TEST(SessionIdTest, ManyDrawsAreAllDistinct) {
  std::unique_ptr<RandomSource> random = NewSecureRandom();
  std::set<std::string> ids;
  constexpr int kDraws = 20000;
  for (int i = 0; i < kDraws; ++i) {
    absl::StatusOr<std::string> id = NewSessionId(*random);
    ASSERT_TRUE(id.ok());
    ASSERT_TRUE(IsWellFormedSessionId(*id)) << *id;
    ids.insert(*id);
  }
  EXPECT_EQ(ids.size(), static_cast<size_t>(kDraws));
}

TEST(SessionIdTest, RandomSourceFailureIsPropagated) {
  testing::CountingRandom failing;
  failing.set_fail(true);
  EXPECT_EQ(NewSessionId(failing).status().code(), absl::StatusCode::kUnavailable);
}

TEST(SessionIdTest, WellFormedCheckRejectsWrongLengthOrAlphabet) {
  const std::string good(43, 'A');
  EXPECT_TRUE(IsWellFormedSessionId(good));
  EXPECT_TRUE(IsWellFormedSessionId(std::string(21, '-') + std::string(22, '_')));
  EXPECT_FALSE(IsWellFormedSessionId(""));
  EXPECT_FALSE(IsWellFormedSessionId(std::string(42, 'A')));
  EXPECT_FALSE(IsWellFormedSessionId(std::string(44, 'A')));
  for (char c : {'+', '/', '=', '.', ' ', '\0', '\n', '\xff'}) {
    std::string bad = good;
    bad[20] = c;
    EXPECT_FALSE(IsWellFormedSessionId(bad)) << static_cast<int>(c);
  }
}

}  // namespace
}  // namespace stateside::crypto
