// Process hardening at start, for a daemon that holds keys: no core dumps,
// no ptrace or /proc/<pid>/mem access by other processes of the same user,
// and no secrets left in the environment after they were read. The key
// material itself lives in dump-excluded pages (crypto/secret_memory.h).
#ifndef STATESIDE_SIDECAR_SERVER_HARDENING_H_
#define STATESIDE_SIDECAR_SERVER_HARDENING_H_

#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "sidecar/server/config.h"

namespace stateside {

// prctl(PR_SET_DUMPABLE, 0): no core dump, and /proc/<pid>/{environ,mem,maps}
// and ptrace are closed to other processes of the same uid (root keeps
// access). setrlimit(RLIMIT_CORE, {0, 0}): no core file even if something
// makes the process dumpable again. INTERNAL naming the call if the kernel
// refuses (it does not on Linux; both only lower privileges).
absl::Status DisableCoreDumps();

// For each name: overwrites the bytes of "NAME=value" in place (the strings
// of the initial environment sit on the stack, where /proc/<pid>/environ
// reads them; unsetenv alone only drops the pointer) and removes the
// variable. REQUIRES: no other thread exists yet (getenv and unsetenv race).
void ScrubEnvironment(const std::vector<std::string_view>& names);

// Overwrites every value of `env` (a copy of the environment that held the
// secrets while the configuration was parsed) and clears it.
void WipeEnvironment(Environment& env);

}  // namespace stateside

#endif  // STATESIDE_SIDECAR_SERVER_HARDENING_H_
