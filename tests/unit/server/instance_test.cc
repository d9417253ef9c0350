// Instance identity and status.
#include "sidecar/lifecycle/instance.h"

#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sidecar/crypto/random.h"
#include "tests/support/fake_clock.h"

namespace stateside::lifecycle {
namespace {

using ::testing::MatchesRegex;

// Deterministic bytes: 0xab, 0xcd, 0xef, ...
class FixedRandom final : public RandomSource {
 public:
  absl::Status Fill(char* out, size_t n) override {
    static constexpr unsigned char kBytes[] = {0xab, 0xcd, 0xef};
    for (size_t i = 0; i < n; ++i) out[i] = static_cast<char>(kBytes[i % 3]);
    return absl::OkStatus();
  }
};

class FailingRandom final : public RandomSource {
 public:
  absl::Status Fill(char*, size_t) override {
    return absl::InternalError("no entropy");
  }
};

TEST(InstanceTest, GeneratedIdIsHostnamePidRandom) {
  FixedRandom random;
  auto identity = MakeIdentity("", random, absl::FromUnixSeconds(100));
  ASSERT_TRUE(identity.ok()) << identity.status();
  EXPECT_EQ(identity->pid, getpid());
  EXPECT_FALSE(identity->hostname.empty());
  EXPECT_THAT(identity->id, MatchesRegex(absl::StrCat(".*-", getpid(), "-abcdef")));
  EXPECT_TRUE(ValidateInstanceId(identity->id).ok());
  EXPECT_EQ(identity->start_time, absl::FromUnixSeconds(100));
  EXPECT_EQ(identity->version, std::string(Version()));
  EXPECT_FALSE(identity->version.empty());
}

TEST(InstanceTest, GeneratedIdsDifferWithTheSecureRandom) {
  auto random = crypto::NewSecureRandom();
  auto a = MakeIdentity("", *random, absl::Now());
  auto b = MakeIdentity("", *random, absl::Now());
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->id, b->id);
  EXPECT_THAT(a->id, MatchesRegex(".*-[0-9]+-[0-9a-f]{6}"));
}

TEST(InstanceTest, ConfiguredIdWins) {
  FixedRandom random;
  auto identity = MakeIdentity("pod-a.1:x_y", random, absl::Now());
  ASSERT_TRUE(identity.ok());
  EXPECT_EQ(identity->id, "pod-a.1:x_y");
}

TEST(InstanceTest, InvalidConfiguredIdIsRefused) {
  FixedRandom random;
  for (const std::string& bad :
       {std::string("sp ace"), std::string("quote\""), std::string(129, 'a'),
        std::string("nl\n"), std::string("pct%")}) {
    EXPECT_FALSE(ValidateInstanceId(bad).ok()) << bad;
    EXPECT_EQ(MakeIdentity(bad, random, absl::Now()).status().code(),
              absl::StatusCode::kInvalidArgument);
  }
}

TEST(InstanceTest, RandomFailureIsAnError) {
  FailingRandom random;
  EXPECT_FALSE(MakeIdentity("", random, absl::Now()).ok());
}

TEST(InstanceTest, UptimeFollowsTheClockAndStatusIsKept) {
  testing::FakeClock clock;
  FixedRandom random;
  auto identity = MakeIdentity("i", random, clock.Now());
  ASSERT_TRUE(identity.ok());
  Instance instance(*identity, &clock);
  EXPECT_EQ(instance.Uptime(), absl::ZeroDuration());
  clock.Advance(absl::Seconds(90));
  EXPECT_EQ(instance.Uptime(), absl::Seconds(90));
  clock.Advance(absl::Seconds(-200));  // a clock step back is not negative uptime
  EXPECT_EQ(instance.Uptime(), absl::ZeroDuration());

  EXPECT_FALSE(instance.ready());
  EXPECT_EQ(instance.drain_state(), DrainState::kServing);
  instance.set_ready(true);
  instance.set_drain_state(DrainState::kDraining);
  instance.set_backend("memory");
  instance.set_admin_address("127.0.0.1:9464");
  EXPECT_TRUE(instance.ready());
  EXPECT_EQ(instance.drain_state(), DrainState::kDraining);
  EXPECT_EQ(instance.backend(), "memory");
  EXPECT_EQ(instance.admin_address(), "127.0.0.1:9464");
  EXPECT_EQ(DrainStateName(DrainState::kDrained), "drained");
}

}  // namespace
}  // namespace stateside::lifecycle
