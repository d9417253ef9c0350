// OptOutManager: validation, default and custom TTLs, clearing, blinding and
// key rotation, over the memory store with a fake clock.
#include "sidecar/analytics/opt_out_manager.h"

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "sidecar/analytics/memory_opt_out_store.h"
#include "sidecar/crypto/keyring.h"
#include "tests/support/fake_clock.h"

namespace stateside::testing {
namespace {

std::unique_ptr<crypto::Keyring> MakeKeyring(
    const std::vector<std::string>& ids) {
  std::vector<crypto::KeySpec> specs;
  for (const std::string& id : ids)
    specs.push_back({id, std::string(32, id[0])});
  auto keyring = crypto::Keyring::Create(std::move(specs));
  EXPECT_TRUE(keyring.ok()) << keyring.status();
  return keyring.ok() ? *std::move(keyring) : nullptr;
}

// A store that records the tags it is asked about.
class SpyStore final : public OptOutStore {
 public:
  absl::Status Set(std::string_view tag, bool opted_out, absl::Time now,
                   absl::Time expiry) override {
    tags.emplace_back(tag);
    return inner.Set(tag, opted_out, now, expiry);
  }
  absl::StatusOr<bool> Get(std::string_view tag, absl::Time now) override {
    tags.emplace_back(tag);
    return inner.Get(tag, now);
  }
  absl::StatusOr<bool> Refile(std::string_view from, std::string_view to,
                              std::string_view sealed, absl::Time now) override {
    refiles.emplace_back(from, to);
    return inner.Refile(from, to, sealed, now);
  }
  MemoryOptOutStore inner{100};
  std::vector<std::string> tags;
  std::vector<std::pair<std::string, std::string>> refiles;
};

class OptOutManagerTest : public ::testing::Test {
 protected:
  OptOutManagerTest()
      : keyring_(MakeKeyring({"a"})),
        manager_(&store_, keyring_.get(), &clock_, kYear) {}

  static constexpr absl::Duration kYear = absl::Hours(24 * 365);
  FakeClock clock_;
  SpyStore store_;
  std::unique_ptr<crypto::Keyring> keyring_;
  OptOutManager manager_;
};

TEST_F(OptOutManagerTest, AnUnknownSubjectIsNotOptedOut) {
  absl::StatusOr<bool> got = manager_.Get("user-1");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_FALSE(*got);
}

TEST_F(OptOutManagerTest, SetThenClear) {
  ASSERT_TRUE(manager_.Set("user-1", true, std::nullopt).ok());
  EXPECT_TRUE(manager_.Get("user-1").value_or(false));
  EXPECT_FALSE(manager_.Get("user-2").value_or(true));
  ASSERT_TRUE(manager_.Set("user-1", false, std::nullopt).ok());
  EXPECT_FALSE(manager_.Get("user-1").value_or(true));
  EXPECT_TRUE(manager_.Set("never-set", false, std::nullopt).ok());
}

TEST_F(OptOutManagerTest, TheDefaultTtlIsOneYear) {
  ASSERT_TRUE(manager_.Set("user-1", true, std::nullopt).ok());
  clock_.Advance(kYear - absl::Seconds(1));
  EXPECT_TRUE(manager_.Get("user-1").value_or(false));
  clock_.Advance(absl::Seconds(1));
  EXPECT_FALSE(manager_.Get("user-1").value_or(true));
}

TEST_F(OptOutManagerTest, ACustomTtlApplies) {
  ASSERT_TRUE(manager_.Set("user-1", true, absl::Hours(2)).ok());
  clock_.Advance(absl::Hours(2) - absl::Seconds(1));
  EXPECT_TRUE(manager_.Get("user-1").value_or(false));
  clock_.Advance(absl::Seconds(1));
  EXPECT_FALSE(manager_.Get("user-1").value_or(true));
}

TEST_F(OptOutManagerTest, TtlsMustBePositiveAndAtMostTenYears) {
  for (absl::Duration bad :
       {absl::ZeroDuration(), -absl::Seconds(1),
        OptOutManager::kMaxTtl + absl::Seconds(1), absl::InfiniteDuration()}) {
    EXPECT_EQ(manager_.Set("user-1", true, bad).code(),
              absl::StatusCode::kInvalidArgument)
        << bad;
  }
  EXPECT_FALSE(manager_.Get("user-1").value_or(true));
  EXPECT_TRUE(manager_.Set("user-1", true, OptOutManager::kMaxTtl).ok());
  EXPECT_GE(OptOutManager::kMaxTtl, absl::Hours(24 * 3652));
}

TEST_F(OptOutManagerTest, SubjectsMustBeOneTo256PrintableAsciiBytes) {
  for (const std::string& bad :
       {std::string(), std::string(257, 's'), std::string("a\0b", 3),
        std::string("tab\t"), std::string("caf\xc3\xa9")}) {
    EXPECT_EQ(manager_.Set(bad, true, std::nullopt).code(),
              absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(manager_.Get(bad).status().code(),
              absl::StatusCode::kInvalidArgument);
  }
  EXPECT_TRUE(store_.tags.empty()) << "nothing reached the store";
  EXPECT_TRUE(manager_.Set(std::string(256, 's'), true, std::nullopt).ok());
  EXPECT_TRUE(manager_.Set("session:abc def", true, std::nullopt).ok());
}

TEST_F(OptOutManagerTest, TheStoreSeesOnlyBlindedTags) {
  ASSERT_TRUE(manager_.Set("alice@example.com", true, std::nullopt).ok());
  ASSERT_FALSE(store_.tags.empty());
  for (const std::string& tag : store_.tags) {
    EXPECT_EQ(tag.find("alice"), std::string::npos) << tag;
    EXPECT_EQ(tag, crypto::Keyring::Blind(keyring_->primary(), "optout",
                                          "alice@example.com"));
  }
}

TEST_F(OptOutManagerTest, FlagsSurviveAKeyRotationAndClearEverywhere) {
  ASSERT_TRUE(manager_.Set("user-1", true, std::nullopt).ok());
  ASSERT_TRUE(manager_.Set("user-2", true, std::nullopt).ok());
  auto rotated_keys = MakeKeyring({"b", "a"});
  OptOutManager rotated(&store_, rotated_keys.get(), &clock_, kYear);
  EXPECT_TRUE(rotated.Get("user-1").value_or(false)) << "set under key a";

  ASSERT_TRUE(rotated.Set("user-1", false, std::nullopt).ok());
  EXPECT_FALSE(rotated.Get("user-1").value_or(true));
  EXPECT_FALSE(manager_.Get("user-1").value_or(true)) << "cleared under a too";

  // Setting again under b replaces the copy under a: the newest TTL decides.
  ASSERT_TRUE(rotated.Set("user-2", true, absl::Hours(1)).ok());
  clock_.Advance(absl::Hours(1));
  EXPECT_FALSE(rotated.Get("user-2").value_or(true));
}

// A flag found under an old key's tag moves to the primary's tag
// with its remaining lifetime, so it outlives the old key's removal.
TEST_F(OptOutManagerTest, AFlagReadUnderAnOldKeyOutlivesThatKey) {
  ASSERT_TRUE(manager_.Set("user-1", true, absl::Hours(10)).ok());
  clock_.Advance(absl::Hours(4));
  auto rotated_keys = MakeKeyring({"b", "a"});
  std::vector<std::string> reads;
  OptOutManager rotated(&store_, rotated_keys.get(), &clock_, kYear, nullptr,
                        [&](std::string_view id) { reads.emplace_back(id); });
  EXPECT_TRUE(rotated.Get("user-1").value_or(false));
  EXPECT_EQ(reads, std::vector<std::string>{"a"});
  ASSERT_EQ(store_.refiles.size(), 1u);
  EXPECT_EQ(store_.refiles[0].first,
            crypto::Keyring::Blind(rotated_keys->keys()[1], "optout", "user-1"));
  EXPECT_EQ(store_.refiles[0].second,
            crypto::Keyring::Blind(rotated_keys->primary(), "optout", "user-1"));
  EXPECT_TRUE(rotated.Get("user-1").value_or(false));
  EXPECT_EQ(reads, (std::vector<std::string>{"a", "b"})) << "found under b now";

  // Key a retired: the flag is still there, for the 6 hours it had left.
  auto only_b = MakeKeyring({"b"});
  OptOutManager retired(&store_, only_b.get(), &clock_, kYear);
  EXPECT_TRUE(retired.Get("user-1").value_or(false));
  clock_.Advance(absl::Hours(6) - absl::Seconds(1));
  EXPECT_TRUE(retired.Get("user-1").value_or(false));
  clock_.Advance(absl::Seconds(1));
  EXPECT_FALSE(retired.Get("user-1").value_or(true));
}

// A clear removes the old keys' tags before the primary's: a re-file racing
// with it either lands before the primary's removal or finds nothing.
TEST_F(OptOutManagerTest, AClearRemovesThePrimarysTagLast) {
  auto rotated_keys = MakeKeyring({"b", "a", "c"});
  OptOutManager rotated(&store_, rotated_keys.get(), &clock_, kYear);
  store_.tags.clear();
  ASSERT_TRUE(rotated.Set("user-1", false, std::nullopt).ok());
  ASSERT_EQ(store_.tags.size(), 3u);
  EXPECT_EQ(store_.tags.back(),
            crypto::Keyring::Blind(rotated_keys->primary(), "optout", "user-1"));
}

TEST_F(OptOutManagerTest, ARefileKeepsANewerFlagUnderThePrimary) {
  ASSERT_TRUE(manager_.Set("user-1", true, absl::Hours(1)).ok());
  auto rotated_keys = MakeKeyring({"b", "a"});
  const std::string old_tag =
      crypto::Keyring::Blind(rotated_keys->keys()[1], "optout", "user-1");
  const std::string new_tag =
      crypto::Keyring::Blind(rotated_keys->primary(), "optout", "user-1");
  ASSERT_TRUE(store_.inner.Set(new_tag, true, clock_.Now(),
                               clock_.Now() + absl::Hours(5)).ok());
  EXPECT_TRUE(store_.inner.Refile(old_tag, new_tag, "", clock_.Now()).value_or(false));
  EXPECT_FALSE(store_.inner.Get(old_tag, clock_.Now()).value_or(true));
  clock_.Advance(absl::Hours(2));
  EXPECT_TRUE(store_.inner.Get(new_tag, clock_.Now()).value_or(false))
      << "the newer 5 h flag stays";
}

}  // namespace
}  // namespace stateside::testing
