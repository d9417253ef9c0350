// Cookie signing: round trip, the documented MAC, rotation, and one NOT_FOUND
// answer for every forged, tampered or malformed cookie.
#include "sidecar/crypto/cookie.h"

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

constexpr char kId[] = "q3zQH0P2hO7yYHkq7bOaU7cnGf0b1XmGSAnQ8Rj9KqM";
const std::string kOld(32, 'o');
const std::string kNew = "a brand new secret of 40 bytes!!........";

std::unique_ptr<CookieSigner> Signer(std::vector<std::string> secrets) {
  absl::StatusOr<std::unique_ptr<CookieSigner>> signer =
      CookieSigner::Create(std::move(secrets));
  EXPECT_TRUE(signer.ok()) << signer.status();
  return signer.ok() ? *std::move(signer) : nullptr;
}

class CookieTest : public ::testing::Test {
 protected:
  void ExpectNotFound(const CookieSigner& signer, const std::string& cookie) {
    absl::StatusOr<std::string> id = signer.Verify(cookie);
    EXPECT_EQ(id.status().code(), absl::StatusCode::kNotFound) << cookie;
    // One fixed message: nothing tells which check failed.
    EXPECT_EQ(id.status().message(), "session not found") << cookie;
  }

  std::unique_ptr<CookieSigner> signer_ = Signer({kOld});
};

TEST_F(CookieTest, VerifiesWhatItSigned) {
  const std::string cookie = signer_->Sign(kId);
  ASSERT_EQ(cookie.size(), std::string(kId).size() + 1 + 43);
  EXPECT_EQ(cookie.substr(0, cookie.find('.')), kId);
  absl::StatusOr<std::string> id = signer_->Verify(cookie);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(*id, kId);
}

TEST_F(CookieTest, SignatureIsTheDocumentedDomainSeparatedHmac) {
  absl::StatusOr<std::string> mac =
      HmacSha256(kOld, std::string("stateside-cookie-v1") + '\0' + kId);
  ASSERT_TRUE(mac.ok());
  EXPECT_EQ(signer_->Sign(kId),
            std::string(kId) + "." + absl::WebSafeBase64Escape(*mac));
}

TEST_F(CookieTest, IdsContainingDotsRoundTrip) {
  absl::StatusOr<std::string> id = signer_->Verify(signer_->Sign("a.b.c"));
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(*id, "a.b.c");
}

TEST_F(CookieTest, RotationSignsWithFirstAndVerifiesWithAll) {
  std::unique_ptr<CookieSigner> rotated = Signer({kNew, kOld});
  // A cookie issued before the rotation still verifies.
  absl::StatusOr<std::string> id = rotated->Verify(signer_->Sign(kId));
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(*id, kId);
  // New cookies are signed with the new secret only.
  const std::string fresh = rotated->Sign(kId);
  EXPECT_EQ(fresh, Signer({kNew})->Sign(kId));
  ExpectNotFound(*signer_, fresh);
  EXPECT_TRUE(Signer({kNew})->Verify(fresh).ok());
}

// What lets a read answer a cookie as given: under the primary secret the
// accepted cookie is byte for byte what Sign returns; under an older one
// it is not, and Verify says which.
TEST_F(CookieTest, VerifyReportsWhetherThePrimarySigned) {
  std::unique_ptr<CookieSigner> rotated = Signer({kNew, kOld});
  const std::string current = rotated->Sign(kId);
  bool primary = false;
  absl::StatusOr<std::string> id = rotated->Verify(current, &primary);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_TRUE(primary);
  EXPECT_EQ(rotated->Sign(*id), current);

  const std::string old = signer_->Sign(kId);
  primary = true;
  id = rotated->Verify(old, &primary);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_FALSE(primary);
  EXPECT_NE(rotated->Sign(*id), old);

  // Signing is deterministic: every signer of the same secret agrees.
  EXPECT_EQ(Signer({kNew})->Sign(kId), current);
  EXPECT_EQ(rotated->Sign(kId), current);
}

TEST_F(CookieTest, CookieOfAnotherSecretIsRejected) {
  ExpectNotFound(*signer_, Signer({kNew})->Sign(kId));
}

TEST_F(CookieTest, TamperedIdIsRejected) {
  const std::string cookie = signer_->Sign(kId);
  for (size_t i = 0; i < std::string(kId).size(); ++i) {
    std::string bad = cookie;
    bad[i] = bad[i] == 'A' ? 'B' : 'A';
    ExpectNotFound(*signer_, bad);
  }
  // Another, genuinely signed, id's signature does not carry over.
  const std::string other = signer_->Sign("other");
  ExpectNotFound(*signer_, std::string(kId) + other.substr(other.find('.')));
}

TEST_F(CookieTest, TamperedSignatureIsRejectedAtEveryPosition) {
  const std::string cookie = signer_->Sign(kId);
  for (size_t i = cookie.find('.') + 1; i < cookie.size(); ++i) {
    for (char c : {'A', 'z', '0', '-', '_'}) {
      if (cookie[i] == c) continue;
      std::string bad = cookie;
      bad[i] = c;
      ExpectNotFound(*signer_, bad);
    }
  }
}

TEST_F(CookieTest, MalformedCookiesAreRejected) {
  const std::string cookie = signer_->Sign(kId);
  const std::string signature = cookie.substr(cookie.find('.') + 1);
  const std::vector<std::string> bad = {
      "",
      ".",
      "..",
      kId,                                    // no dot
      "." + signature,                        // empty id
      std::string(kId) + ".",                 // empty signature
      std::string(kId) + "..",                // signature with no chars
      std::string(kId) + "." + signature + "=",         // padded
      std::string(kId) + "." + signature.substr(0, 42), // short
      std::string(kId) + "." + signature + "A",         // long
      std::string(kId) + "." + std::string(43, '+'),    // not base64url
      std::string(kId) + "." + std::string(42, 'A') + "/",
      std::string(kId) + "." + std::string(42, 'A') + " ",
      std::string(kId) + "." + signature.substr(0, 20) + std::string("\0", 1) +
          signature.substr(21),
      std::string(kId) + "." + std::string(43, '\xff'),
      cookie + "." + signature,                         // id.sig.sig
      " " + cookie,                                     // id changes
      std::string(300, 'a') + "." + signature,          // oversize
  };
  for (const std::string& c : bad) ExpectNotFound(*signer_, c);
}

TEST_F(CookieTest, NonCanonicalSignatureEncodingIsRejected) {
  // The last of 43 characters carries 2 unused bits; flipping one of them
  // decodes to the same MAC, but only the canonical form is accepted.
  const std::string cookie = signer_->Sign(kId);
  const char last = cookie.back();
  const std::string alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const size_t value = alphabet.find(last);
  ASSERT_EQ(value % 4, 0u);
  std::string variant = cookie;
  variant.back() = alphabet[value | 1];
  ExpectNotFound(*signer_, variant);
}

TEST_F(CookieTest, OversizeLimitIs256Bytes) {
  const std::string id_212(212, 'i');  // 212 + 1 + 43 = 256
  EXPECT_TRUE(signer_->Verify(signer_->Sign(id_212)).ok());
  ExpectNotFound(*signer_, signer_->Sign(id_212 + "i"));
}

TEST(CookieCreateTest, RequiresAtLeastOneLongEnoughSecret) {
  EXPECT_EQ(CookieSigner::Create({}).status().code(),
            absl::StatusCode::kInvalidArgument);
  const std::string short_secret = "0123456789abcdef0123456789abcde";  // 31
  absl::StatusOr<std::unique_ptr<CookieSigner>> signer =
      CookieSigner::Create({std::string(32, 's'), short_secret});
  ASSERT_EQ(signer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(signer.status().message()), HasSubstr("secret 2"));
  EXPECT_THAT(std::string(signer.status().message()),
              Not(HasSubstr("0123456789")));
  EXPECT_TRUE(CookieSigner::Create({std::string(32, 's')}).ok());
}

}  // namespace
}  // namespace stateside::crypto
