// The secret values the repository ships as examples, read from the shipped
// files themselves (never copied into tests): the stringData of
// deploy/k8s/examples/secret.example.yaml and the non-empty assignments of
// deploy/compose/.env.example (commented-out ones included). Found through
// STATESIDE_SOURCE_DIR, which ctest sets.
#ifndef STATESIDE_TESTS_SUPPORT_SHIPPED_SECRETS_H_
#define STATESIDE_TESTS_SUPPORT_SHIPPED_SECRETS_H_

#include <string>
#include <vector>

namespace stateside::testing {

struct ShippedSecret {
  std::string file;   // relative to the source tree
  std::string name;   // the Secret's key ("session-secret") or the variable
  std::string value;  // unquoted
};

std::vector<ShippedSecret> ShippedSecretValues();

}  // namespace stateside::testing

#endif  // STATESIDE_TESTS_SUPPORT_SHIPPED_SECRETS_H_
