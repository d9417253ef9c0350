// TestPki: CAs and leaf certificates from the openssl CLI.
#include "tests/support/test_pki.h"

#include <fstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tests/support/subprocess.h"

namespace stateside::testing {
namespace {

absl::Status OpenSsl(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"openssl"};
  argv.insert(argv.end(), args.begin(), args.end());
  RunResult r = Run(argv);
  if (r.exit_status == 0) return absl::OkStatus();
  return absl::InternalError(
      absl::StrCat(absl::StrJoin(argv, " "), " exited ", r.exit_status, ": ", r.err));
}

}  // namespace

absl::Status TestPki::MakeCa(const std::string& name) {
  return OpenSsl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                  "-nodes", "-keyout", Path(name + ".key"), "-out", Path(name + ".crt"), "-days",
                  "2", "-subj", "/CN=" + name});
}

absl::Status TestPki::MakeLeaf(const std::string& name, const std::string& ca,
                               const std::string& san, const std::string& usage) {
  const std::string ext = Path(name + ".ext");
  {
    std::ofstream f(ext);
    f << "subjectAltName=" << san << "\n"
      << "extendedKeyUsage=" << usage << "\n";
    if (!f) return absl::InternalError(absl::StrCat("cannot write ", ext));
  }
  absl::Status request = OpenSsl(
      {"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
       Path(name + ".key"), "-out", Path(name + ".csr"), "-subj", "/CN=" + name});
  if (!request.ok()) return request;
  return OpenSsl({"x509", "-req", "-in", Path(name + ".csr"), "-CA", Path(ca + ".crt"), "-CAkey",
                  Path(ca + ".key"), "-CAcreateserial", "-out", Path(name + ".crt"), "-days", "2",
                  "-extfile", ext});
}

}  // namespace stateside::testing
