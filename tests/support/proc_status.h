// A process's memory as Linux reports it in /proc/PID/status, for tests that
// bound a child's memory. Pure function of the file; thread-safe.
#ifndef STATESIDE_TESTS_SUPPORT_PROC_STATUS_H_
#define STATESIDE_TESTS_SUPPORT_PROC_STATUS_H_

#include <cstdint>
#include <string>

namespace stateside::testing {

// A /proc/PID/status field in kB (VmRSS, VmHWM); -1 if absent.
int64_t ProcStatusKb(int pid, const std::string& field);

}  // namespace stateside::testing

#endif  // STATESIDE_TESTS_SUPPORT_PROC_STATUS_H_
