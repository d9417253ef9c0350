// One strong key and cookie secret for tests that run the configuration's
// rules (ParseCommandLine or the stateside binary), which refuse repeated-
// byte, patterned and low-entropy values. The keys were generated once with
// `openssl rand -hex 32`; test-only, never used anywhere else.
#ifndef STATESIDE_TESTS_SUPPORT_TEST_SECRETS_H_
#define STATESIDE_TESTS_SUPPORT_TEST_SECRETS_H_

namespace stateside::testing {

inline constexpr char kTestKeyHex[] =
    "3f9c2b7e51a04d88c6e2f1079b5ad43c8e61f2a9047bd5c3196e0af87c24b5d1";
inline constexpr char kOtherTestKeyHex[] =
    "a7c14e92d03b6f58e1297c4ab0f3d865219ef7b34c06a58d2e91f4c7b8036da2";
// SESSION_SECRET (at least 32 bytes).
inline constexpr char kTestSecret[] = "integration-test-secret-0123456789abcdef";

}  // namespace stateside::testing

#endif  // STATESIDE_TESTS_SUPPORT_TEST_SECRETS_H_
