#include "tests/bench/proc_cpu.h"

#include <unistd.h>

#include "gtest/gtest.h"

namespace stateside::bench {
namespace {

TEST(ProcCpuTest, ParsesUtimePlusStimeAfterTheCommandName) {
  // Fields: pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt
  // majflt cmajflt utime stime ...
  auto ticks = ParseStatCpuTicks(
      "1234 (we ird) name)) S 1 2 3 4 5 6 7 8 9 10 111 222 0 0 20 0 1");
  ASSERT_TRUE(ticks.ok()) << ticks.status();
  EXPECT_EQ(*ticks, 333u);
}

TEST(ProcCpuTest, RejectsTruncatedStat) {
  EXPECT_FALSE(ParseStatCpuTicks("1234 (x) S 1 2 3").ok());
  EXPECT_FALSE(ParseStatCpuTicks("no parenthesis at all").ok());
  EXPECT_FALSE(ParseStatCpuTicks("1 (x) S 1 2 3 4 5 6 7 8 9 10 a b").ok());
}

TEST(ProcCpuTest, AGroupSumsItsProcessesAndFailsOnAMissingOne) {
  const pid_t self = getpid();
  absl::StatusOr<absl::Duration> one = GroupCpuTime({"self", {self}});
  ASSERT_TRUE(one.ok()) << one.status();
  absl::StatusOr<absl::Duration> twice = GroupCpuTime({"self twice", {self, self}});
  ASSERT_TRUE(twice.ok()) << twice.status();
  EXPECT_GE(*twice, 2 * *one);  // read after: never less
  EXPECT_EQ(GroupCpuTime({"gone", {self, 1 << 23}}).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(ProcCpuTest, ReadsThisProcessAndRejectsAMissingOne) {
  auto self = ProcessCpuTime(getpid());
  ASSERT_TRUE(self.ok()) << self.status();
  EXPECT_GE(*self, absl::ZeroDuration());
  // pid_max is at most 2^22 on Linux.
  auto missing = ProcessCpuTime(1 << 23);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace stateside::bench
