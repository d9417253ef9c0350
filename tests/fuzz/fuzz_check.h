// FUZZ_CHECK: an invariant of a fuzz target. A violation aborts, which
// libFuzzer reports as a crash with the input that caused it.
#ifndef STATESIDE_TESTS_FUZZ_FUZZ_CHECK_H_
#define STATESIDE_TESTS_FUZZ_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond)                                                        \
  do {                                                                          \
    if (!(cond)) {                                                              \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n", __FILE__, __LINE__, \
                   #cond);                                                      \
      std::abort();                                                             \
    }                                                                           \
  } while (0)

#endif  // STATESIDE_TESTS_FUZZ_FUZZ_CHECK_H_
