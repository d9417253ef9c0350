// Core dumps off, secrets out of the environment (see hardening.h).
#include "sidecar/server/hardening.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <string>

#include "absl/strings/str_cat.h"

extern char** environ;

namespace stateside {

absl::Status DisableCoreDumps() {
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
    return absl::InternalError(
        absl::StrCat("prctl(PR_SET_DUMPABLE, 0): ", strerror(errno)));
  }
  const struct rlimit none = {0, 0};
  if (setrlimit(RLIMIT_CORE, &none) != 0) {
    return absl::InternalError(
        absl::StrCat("setrlimit(RLIMIT_CORE, 0): ", strerror(errno)));
  }
  return absl::OkStatus();
}

void ScrubEnvironment(const std::vector<std::string_view>& names) {
  for (std::string_view name : names) {
    // Every entry of that name (a duplicated variable is possible in a
    // hand-built environment), remembered before unsetenv drops them.
    std::vector<char*> entries;
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
      if (strncmp(*e, name.data(), name.size()) == 0 && (*e)[name.size()] == '=') {
        entries.push_back(*e);
      }
    }
    unsetenv(std::string(name).c_str());
    // unsetenv never frees the strings (they may be on the stack), so the
    // pointers are still valid: wipe name and value alike.
    for (char* entry : entries) explicit_bzero(entry, strlen(entry));
  }
}

void WipeEnvironment(Environment& env) {
  for (auto& [name, value] : env) explicit_bzero(value.data(), value.size());
  env.clear();
}

}  // namespace stateside
