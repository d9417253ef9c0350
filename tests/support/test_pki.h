// Certificates for TLS tests, made by the openssl CLI for each run in a
// directory the caller owns: CAs (EC P-256, valid two days) and leaves signed
// by them with a chosen subjectAltName. Not thread-safe: one owner.
#ifndef STATESIDE_TESTS_SUPPORT_TEST_PKI_H_
#define STATESIDE_TESTS_SUPPORT_TEST_PKI_H_

#include <string>

#include "absl/status/status.h"
#include "tests/support/temp_dir.h"

namespace stateside::testing {

class TestPki {
 public:
  // REQUIRES: `dir` outlives the TestPki.
  explicit TestPki(const TempDir& dir) : dir_(dir) {}

  // <name>.crt and <name>.key: a self-signed CA.
  absl::Status MakeCa(const std::string& name);
  // <name>.crt and <name>.key signed by the CA `ca`, with `san` as its
  // subjectAltName ("DNS:localhost,IP:127.0.0.1") and `usage` as its
  // extendedKeyUsage ("serverAuth,clientAuth" for a Redis node that is a
  // client too: the cluster bus demands a client certificate). Errors name
  // the openssl command.
  absl::Status MakeLeaf(const std::string& name, const std::string& ca, const std::string& san,
                        const std::string& usage = "serverAuth");

  std::string Path(const std::string& file) const { return dir_.File(file); }

 private:
  const TempDir& dir_;
};

}  // namespace stateside::testing

#endif  // STATESIDE_TESTS_SUPPORT_TEST_PKI_H_
