// The conformance suites of the store seams: every SessionStore and every
// OptOutStore (memory, Redis, ...) must pass them unchanged.
//
// Header-only on purpose: the TEST_P bodies must be compiled into the test
// binary that instantiates them (a static library's unreferenced objects are
// dropped by the linker). Include this header from exactly ONE .cc per test
// binary, and instantiate there:
//
//   INSTANTIATE_TEST_SUITE_P(Memory, SessionStoreConformanceTest,
//       ::testing::Values(SessionStoreFactory{"memory", [] {
//         return std::make_unique<MemorySessionStore>(1000); }}),
//       SessionStoreFactoryName);
//
// What the suite assumes of a store, and no more:
//  - the factory returns a fresh, empty store (for a shared backend: a unique
//    key prefix per call) that outlives nothing of the test;
//  - time is only the `now` passed in ReadOptions/Mutation/Destroy (and a
//    Create's last_access), which comes from a FakeClock starting near the
//    real time: a backend with its own expiry (Redis PEXPIRE) may drop dead
//    entries early, but liveness must follow the `now` it is given;
//  - expired entries may linger physically (nothing here calls Sweep);
//  - times and durations round-trip at millisecond precision.
#ifndef STATESIDE_TESTS_SUPPORT_STORE_CONFORMANCE_H_
#define STATESIDE_TESTS_SUPPORT_STORE_CONFORMANCE_H_

#include <algorithm>
#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "sidecar/analytics/opt_out_store.h"
#include "sidecar/session/store.h"
#include "tests/support/fake_clock.h"

namespace stateside::testing {

struct SessionStoreFactory {
  std::string name;  // a gtest name: [A-Za-z0-9_]
  std::function<std::unique_ptr<session::SessionStore>()> make;
};

struct OptOutStoreFactory {
  std::string name;
  std::function<std::unique_ptr<OptOutStore>()> make;
};

inline std::string SessionStoreFactoryName(
    const ::testing::TestParamInfo<SessionStoreFactory>& info) {
  return info.param.name;
}
inline std::string OptOutStoreFactoryName(
    const ::testing::TestParamInfo<OptOutStoreFactory>& info) {
  return info.param.name;
}
// gtest prints parameters on failure; std::function has no printer.
inline void PrintTo(const SessionStoreFactory& f, std::ostream* os) {
  *os << f.name;
}
inline void PrintTo(const OptOutStoreFactory& f, std::ostream* os) {
  *os << f.name;
}

// The start of the fake time: near the real time (rounded to a second), so a
// backend that also sets real expiries sees plausible absolute times.
inline absl::Time ConformanceStartTime() {
  return absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()));
}

class SessionStoreConformanceTest
    : public ::testing::TestWithParam<SessionStoreFactory> {
 protected:
  void SetUp() override {
    clock_.Set(ConformanceStartTime());
    store_ = GetParam().make();
    ASSERT_NE(store_, nullptr);
  }

  absl::Time now() const { return clock_.Now(); }

  // A session created now: idle TTL 30m, absolute 8h, version 1.
  session::StoredSession MakeSession(std::string id, std::string user_tag = "",
                            std::string user_envelope = "") const {
    session::StoredSession s;
    s.id = std::move(id);
    s.user_tag = std::move(user_tag);
    s.user_envelope = std::move(user_envelope);
    s.created = now();
    s.last_access = now();
    s.idle_ttl = absl::Minutes(30);
    s.absolute_expiry = now() + absl::Hours(8);
    s.version = 1;
    return s;
  }

  // 43-character ids, like the real ones (a store may check nothing, or that).
  static std::string Id(char c) { return std::string(43, c); }

  absl::StatusOr<session::StoredSession> Read(const std::string& id, bool touch = false,
                                     bool metadata_only = false,
                                     absl::Duration touch_granularity = absl::ZeroDuration()) {
    session::ReadOptions options;
    options.now = now();
    options.touch = touch;
    options.metadata_only = metadata_only;
    options.touch_granularity = touch_granularity;
    return store_->Get(id, options);
  }
  // A touching read with a touch granularity.
  absl::StatusOr<session::StoredSession> ReadCoalesced(const std::string& id,
                                                       absl::Duration granularity,
                                                       bool metadata_only = false) {
    return Read(id, /*touch=*/true, metadata_only, granularity);
  }

  // The asynchronous forms, waited for (10 s at most: DEADLINE_EXCEEDED).
  template <typename T, typename Start>
  static T AwaitAsync(Start&& start) {
    struct Result {
      absl::Notification done;
      T value = absl::DeadlineExceededError("no answer in 10 s");
    };
    auto result = std::make_shared<Result>();
    std::forward<Start>(start)([result](T value) {
      result->value = std::move(value);
      result->done.Notify();
    });
    if (!result->done.WaitForNotificationWithTimeout(absl::Seconds(10))) {
      return absl::DeadlineExceededError("no answer in 10 s");
    }
    return std::move(result->value);
  }
  absl::Status CreateAsync(const session::StoredSession& s) {
    return AwaitAsync<absl::Status>(
        [&](auto done) { store_->CreateAsync(s, std::move(done)); });
  }
  absl::StatusOr<bool> DestroyAsync(const std::string& id, absl::Time until) {
    return AwaitAsync<absl::StatusOr<bool>>(
        [&](auto done) { store_->DestroyAsync(id, now(), until, std::move(done)); });
  }

  session::Mutation Set(std::string name, std::string envelope) const {
    session::Mutation m;
    m.now = now();
    m.set.emplace_back(std::move(name), std::move(envelope));
    return m;
  }

  FakeClock clock_;
  std::unique_ptr<session::SessionStore> store_;
};

class OptOutStoreConformanceTest
    : public ::testing::TestWithParam<OptOutStoreFactory> {
 protected:
  void SetUp() override {
    clock_.Set(ConformanceStartTime());
    store_ = GetParam().make();
    ASSERT_NE(store_, nullptr);
  }
  absl::Time now() const { return clock_.Now(); }

  FakeClock clock_;
  std::unique_ptr<OptOutStore> store_;
};

}  // namespace stateside::testing

// ---------------------------------------------------------------------------
// The TEST_P bodies (compiled once per binary: see the top of the file).
// ---------------------------------------------------------------------------
namespace stateside::testing {

// Expects `status` to be INVALID_ARGUMENT with a message naming `limit`.
#define STATESIDE_EXPECT_LIMIT(status, limit)                                \
  do {                                                                       \
    const ::absl::Status stateside_s_ = (status);                            \
    EXPECT_EQ(stateside_s_.code(), ::absl::StatusCode::kInvalidArgument)     \
        << stateside_s_;                                                     \
    EXPECT_NE(stateside_s_.message().find(limit), ::absl::string_view::npos) \
        << stateside_s_;                                                     \
  } while (0)

TEST_P(SessionStoreConformanceTest, CreateThenGetReturnsWhatWasStored) {
  session::StoredSession s = MakeSession(Id('a'), "tag-1", "sealed-user");
  s.attributes = {{"cart", "env-cart"}, {"theme", "env-theme"}};
  s.version = 7;
  ASSERT_TRUE(store_->Create(s).ok());

  absl::StatusOr<session::StoredSession> got = Read(s.id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->id, s.id);
  EXPECT_EQ(got->user_tag, "tag-1");
  EXPECT_EQ(got->user_envelope, "sealed-user");
  EXPECT_EQ(got->created, s.created);
  EXPECT_EQ(got->last_access, s.last_access);
  EXPECT_EQ(got->idle_ttl, s.idle_ttl);
  EXPECT_EQ(got->absolute_expiry, s.absolute_expiry);
  EXPECT_EQ(got->version, 7u);
  EXPECT_EQ(got->attributes, s.attributes);
}

TEST_P(SessionStoreConformanceTest, EveryReadReturnsTheMetadataSealAsStored) {
  session::StoredSession s = MakeSession(Id('a'), "tag-1", "sealed-user");
  s.metadata_seal = "sealed-metadata";
  s.attributes = {{"k", "v"}};
  ASSERT_TRUE(store_->Create(s).ok());
  EXPECT_EQ(Read(s.id).value_or(session::StoredSession{}).metadata_seal, "sealed-metadata");
  EXPECT_EQ(Read(s.id, false, true).value_or(session::StoredSession{}).metadata_seal,
            "sealed-metadata");
  session::Mutation m;
  m.now = now();
  m.set = {{"k", "w"}};
  EXPECT_EQ(store_->Update(s.id, m).value_or(session::StoredSession{}).metadata_seal,
            "sealed-metadata");
  absl::StatusOr<std::vector<session::StoredSession>> listed = store_->ListByUser("tag-1", now());
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].metadata_seal, "sealed-metadata");
}

TEST_P(SessionStoreConformanceTest, CreateOnAnExistingIdIsAlreadyExists) {
  session::StoredSession s = MakeSession(Id('a'));
  s.attributes = {{"k", "original"}};
  ASSERT_TRUE(store_->Create(s).ok());
  session::StoredSession again = MakeSession(Id('a'));
  again.attributes = {{"k", "intruder"}};
  EXPECT_EQ(store_->Create(again).code(), absl::StatusCode::kAlreadyExists);
  absl::StatusOr<session::StoredSession> got = Read(s.id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->attributes.at("k"), "original");
}

TEST_P(SessionStoreConformanceTest, GetOfAnUnknownIdIsNotFound) {
  EXPECT_EQ(Read(Id('z')).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Read("").status().code(), absl::StatusCode::kNotFound);
}

TEST_P(SessionStoreConformanceTest, MetadataOnlyReadOmitsAttributes) {
  session::StoredSession s = MakeSession(Id('a'), "tag", "user");
  s.attributes = {{"k", "v"}};
  ASSERT_TRUE(store_->Create(s).ok());
  absl::StatusOr<session::StoredSession> got = Read(s.id, false, true);
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(got->attributes.empty());
  EXPECT_EQ(got->user_envelope, "user");
  EXPECT_EQ(got->version, 1u);
}

TEST_P(SessionStoreConformanceTest, TouchingReadRollsTheIdleTimeout) {
  ASSERT_TRUE(store_->Create(MakeSession(Id('a'))).ok());
  clock_.Advance(absl::Minutes(20));
  absl::StatusOr<session::StoredSession> got = Read(Id('a'), /*touch=*/true);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->last_access, now());
  clock_.Advance(absl::Minutes(20));  // 40m after creation, 20m after touch
  got = Read(Id('a'));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->idle_expiry(), now() + absl::Minutes(10));
}

TEST_P(SessionStoreConformanceTest, NonTouchingReadLeavesTheIdleTimeout) {
  session::StoredSession s = MakeSession(Id('a'));
  ASSERT_TRUE(store_->Create(s).ok());
  clock_.Advance(absl::Minutes(20));
  absl::StatusOr<session::StoredSession> got = Read(Id('a'), /*touch=*/false);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->last_access, s.last_access);
  clock_.Advance(absl::Minutes(10));
  EXPECT_EQ(Read(Id('a')).status().code(), absl::StatusCode::kNotFound);
}

// Touch coalescing (ReadOptions::touch_granularity): a touching read within
// the granularity of the stored last access writes nothing; one a
// granularity later writes; either way the read sees the stored value.
TEST_P(SessionStoreConformanceTest, ATouchWithinTheGranularityWritesNothing) {
  session::StoredSession s = MakeSession(Id('a'));  // idle 30m: 1% = 18s
  ASSERT_TRUE(store_->Create(s).ok());
  for (bool metadata_only : {false, true}) {
    clock_.Advance(absl::Seconds(4));
    absl::StatusOr<session::StoredSession> got =
        ReadCoalesced(Id('a'), absl::Seconds(10), metadata_only);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->last_access, s.last_access) << "metadata_only=" << metadata_only;
  }
  clock_.Advance(absl::Seconds(2));  // 10s: a granularity old
  absl::StatusOr<session::StoredSession> got = ReadCoalesced(Id('a'), absl::Seconds(10));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->last_access, now());
  EXPECT_EQ(got->idle_expiry(), now() + absl::Minutes(30));
  got = Read(Id('a'));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->last_access, now()) << "the touch was stored";
}

TEST_P(SessionStoreConformanceTest, TheTouchGranularityIsAtMostAHundredthOfTheIdleTtl) {
  session::StoredSession s = MakeSession(Id('a'));  // idle 30m: 1% = 18s
  ASSERT_TRUE(store_->Create(s).ok());
  clock_.Advance(absl::Seconds(17));
  absl::StatusOr<session::StoredSession> got = ReadCoalesced(Id('a'), absl::Hours(1));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->last_access, s.last_access);
  clock_.Advance(absl::Seconds(1));
  got = ReadCoalesced(Id('a'), absl::Hours(1));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->last_access, now()) << "an hour's granularity, capped at 18s";
}

// The contract's bound: after a coalesced read at t, the session lives until
// at least t + idle - granularity and never past t + idle.
TEST_P(SessionStoreConformanceTest, ACoalescedTouchExpiresAtMostOneGranularityEarly) {
  ASSERT_TRUE(store_->Create(MakeSession(Id('a'))).ok());
  const absl::Duration granularity = absl::Seconds(10);
  clock_.Advance(granularity - absl::Milliseconds(1));
  const absl::Time read_at = now();
  ASSERT_TRUE(ReadCoalesced(Id('a'), granularity).ok());
  clock_.Set(read_at + absl::Minutes(30) - granularity);
  EXPECT_TRUE(Read(Id('a')).ok()) << "expired more than a granularity early";
  clock_.Set(read_at + absl::Minutes(30));
  EXPECT_EQ(Read(Id('a')).status().code(), absl::StatusCode::kNotFound) << "expired late";
}

// A coalesced read, blocking or asynchronous, answers as a writing one: the
// attributes, the stored access, and for a dead session NOT_FOUND (expired
// when it met it expired, which it then drops for good).
TEST_P(SessionStoreConformanceTest, ACoalescedReadAnswersAsAWritingOne) {
  session::StoredSession s = MakeSession(Id('a'));
  s.attributes = {{"k1", "v1"}, {"k2", "v2"}};
  ASSERT_TRUE(store_->Create(s).ok());
  ASSERT_TRUE(store_->Create(MakeSession(Id('b'))).ok());
  const absl::Duration granularity = absl::Seconds(10);
  const auto read_async = [&](const std::string& id) {
    session::ReadOptions options;
    options.now = now();
    options.touch_granularity = granularity;
    return AwaitAsync<absl::StatusOr<session::StoredSession>>(
        [&](auto done) { store_->GetAsync(id, options, std::move(done)); });
  };
  clock_.Advance(absl::Seconds(5));
  for (bool async : {false, true}) {
    absl::StatusOr<session::StoredSession> got =
        async ? read_async(Id('a')) : ReadCoalesced(Id('a'), granularity);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->attributes, s.attributes) << "async=" << async;
    EXPECT_EQ(got->version, 1u);
    EXPECT_EQ(got->last_access, s.last_access);
  }
  clock_.Advance(granularity);
  absl::StatusOr<session::StoredSession> got = read_async(Id('a'));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->last_access, now());
  EXPECT_EQ(got->attributes, s.attributes);

  ASSERT_TRUE(store_->Destroy(Id('a'), now(), now() + absl::Hours(1)).ok());
  for (bool async : {false, true}) {
    absl::Status status = (async ? read_async(Id('a')) : ReadCoalesced(Id('a'), granularity)).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kNotFound) << status;
    EXPECT_FALSE(session::IsExpiredNotFound(status)) << "a tombstone did not expire";
  }
  clock_.Set(s.last_access + absl::Minutes(30));  // b's idle expiry
  EXPECT_TRUE(session::IsExpiredNotFound(read_async(Id('b')).status()));
  clock_.Advance(-absl::Minutes(1));
  EXPECT_EQ(ReadCoalesced(Id('b'), granularity).status().code(), absl::StatusCode::kNotFound)
      << "an expired session may be forgotten, but never brought back";
}

TEST_P(SessionStoreConformanceTest, AnUpdateWritesTheAccessOnlyWhenDue) {
  session::StoredSession s = MakeSession(Id('a'));  // idle 30m: 1% = 18s
  ASSERT_TRUE(store_->Create(s).ok());
  clock_.Advance(absl::Seconds(10));
  session::Mutation m = Set("k", "v1");
  m.touch_granularity = absl::Seconds(60);
  absl::StatusOr<session::StoredSession> meta = store_->Update(Id('a'), m);
  ASSERT_TRUE(meta.ok()) << meta.status();
  EXPECT_EQ(meta->version, 2u);
  EXPECT_EQ(meta->last_access, s.last_access) << "within the granularity";
  clock_.Advance(absl::Seconds(8));  // 18s
  m = Set("k", "v2");
  m.touch_granularity = absl::Seconds(60);
  meta = store_->Update(Id('a'), m);
  ASSERT_TRUE(meta.ok()) << meta.status();
  EXPECT_EQ(meta->last_access, now());
  absl::StatusOr<session::StoredSession> got = Read(Id('a'));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->version, 3u);
  EXPECT_EQ(got->last_access, now());
  EXPECT_EQ(got->attributes.at("k"), "v2");
}

TEST_P(SessionStoreConformanceTest, AZeroGranularityTouchesOnEveryRead) {
  ASSERT_TRUE(store_->Create(MakeSession(Id('a'))).ok());
  clock_.Advance(absl::Microseconds(1));
  absl::StatusOr<session::StoredSession> got = ReadCoalesced(Id('a'), absl::ZeroDuration());
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->last_access, now());
}

TEST_P(SessionStoreConformanceTest, IdleExpiryIsEnforcedAtTheBoundary) {
  ASSERT_TRUE(store_->Create(MakeSession(Id('a'))).ok());
  clock_.Advance(absl::Minutes(30) - absl::Milliseconds(1));
  EXPECT_TRUE(Read(Id('a')).ok());
  clock_.Advance(absl::Milliseconds(1));
  EXPECT_EQ(Read(Id('a')).status().code(), absl::StatusCode::kNotFound);
  // A touching read of a dead session does not revive it.
  EXPECT_EQ(Read(Id('a'), true).status().code(), absl::StatusCode::kNotFound);
  clock_.Advance(-absl::Minutes(5));
  EXPECT_EQ(Read(Id('a')).status().code(), absl::StatusCode::kNotFound)
      << "an expired session may be forgotten, but never brought back";
}

// The rules count expiries from this; callers see one NOT_FOUND either way.
TEST_P(SessionStoreConformanceTest, AReadThatMeetsAnExpiredSessionSaysSo) {
  ASSERT_TRUE(store_->Create(MakeSession(Id('a'))).ok());
  EXPECT_FALSE(session::IsExpiredNotFound(Read(Id('z')).status()));  // never existed
  clock_.Advance(absl::Minutes(30));
  const absl::Status first = Read(Id('a')).status();
  EXPECT_EQ(first.code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(session::IsExpiredNotFound(first)) << first;
  // Dropped when met: a second read finds nothing.
  const absl::Status second = Read(Id('a')).status();
  EXPECT_EQ(second.code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(session::IsExpiredNotFound(second)) << second;
}

TEST_P(SessionStoreConformanceTest, AbsoluteExpiryIsEnforcedEvenWhenActive) {
  ASSERT_TRUE(store_->Create(MakeSession(Id('a'))).ok());
  const absl::Time cap = now() + absl::Hours(8);
  while (now() + absl::Minutes(20) < cap) {
    clock_.Advance(absl::Minutes(20));
    ASSERT_TRUE(Read(Id('a'), true).ok()) << "at " << now();
    ASSERT_TRUE(store_->Update(Id('a'), Set("k", "v")).ok());
  }
  clock_.Set(cap - absl::Milliseconds(1));
  absl::StatusOr<session::StoredSession> got = Read(Id('a'));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->idle_expiry(), cap);
  clock_.Set(cap);
  EXPECT_EQ(Read(Id('a'), true).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->Update(Id('a'), Set("k", "w")).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_P(SessionStoreConformanceTest, UpdateSetsRemovesBumpsVersionAndTouches) {
  session::StoredSession s = MakeSession(Id('a'));
  s.attributes = {{"keep", "1"}, {"drop", "2"}, {"change", "3"}};
  ASSERT_TRUE(store_->Create(s).ok());
  clock_.Advance(absl::Minutes(20));
  session::Mutation m;
  m.now = now();
  m.set = {{"change", "33"}, {"new", "4"}};
  m.remove = {"drop", "never-there"};
  absl::StatusOr<session::StoredSession> meta = store_->Update(Id('a'), m);
  ASSERT_TRUE(meta.ok()) << meta.status();
  EXPECT_EQ(meta->version, 2u);
  EXPECT_EQ(meta->last_access, now());
  EXPECT_EQ(meta->absolute_expiry, s.absolute_expiry);
  EXPECT_TRUE(meta->attributes.empty()) << "Update returns metadata only";

  absl::StatusOr<session::StoredSession> got = Read(Id('a'));
  ASSERT_TRUE(got.ok());
  const absl::flat_hash_map<std::string, std::string> want = {
      {"keep", "1"}, {"change", "33"}, {"new", "4"}};
  EXPECT_EQ(got->attributes, want);
  EXPECT_EQ(got->version, 2u);
  EXPECT_EQ(got->last_access, now());
}

TEST_P(SessionStoreConformanceTest, RemovalsApplyBeforeSets) {
  session::StoredSession s = MakeSession(Id('a'));
  s.attributes = {{"k", "old"}};
  ASSERT_TRUE(store_->Create(s).ok());
  session::Mutation m = Set("k", "new");
  m.remove = {"k"};
  ASSERT_TRUE(store_->Update(Id('a'), m).ok());
  EXPECT_EQ(Read(Id('a'))->attributes.at("k"), "new");
}

TEST_P(SessionStoreConformanceTest, MatchingExpectedVersionApplies) {
  ASSERT_TRUE(store_->Create(MakeSession(Id('a'))).ok());
  session::Mutation m = Set("k", "v");
  m.expected_version = 1;
  absl::StatusOr<session::StoredSession> meta = store_->Update(Id('a'), m);
  ASSERT_TRUE(meta.ok()) << meta.status();
  EXPECT_EQ(meta->version, 2u);
}

TEST_P(SessionStoreConformanceTest, StaleExpectedVersionIsAbortedUnchanged) {
  session::StoredSession s = MakeSession(Id('a'));
  s.attributes = {{"k", "v1"}};
  ASSERT_TRUE(store_->Create(s).ok());
  clock_.Advance(absl::Minutes(5));
  session::Mutation m = Set("k", "v2");
  m.expected_version = 0;
  EXPECT_EQ(store_->Update(Id('a'), m).status().code(),
            absl::StatusCode::kAborted);
  absl::StatusOr<session::StoredSession> got = Read(Id('a'));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->attributes.at("k"), "v1");
  EXPECT_EQ(got->version, 1u);
  EXPECT_EQ(got->last_access, s.last_access);
}

TEST_P(SessionStoreConformanceTest, UpdateOfAnUnknownIdCreatesNothing) {
  EXPECT_EQ(store_->Update(Id('a'), Set("k", "v")).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(Read(Id('a')).status().code(), absl::StatusCode::kNotFound);
}

TEST_P(SessionStoreConformanceTest, UpdateOfAnExpiredSessionDoesNotRevive) {
  ASSERT_TRUE(store_->Create(MakeSession(Id('a'))).ok());
  clock_.Advance(absl::Minutes(31));
  EXPECT_EQ(store_->Update(Id('a'), Set("k", "v")).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(Read(Id('a')).status().code(), absl::StatusCode::kNotFound);
}

TEST_P(SessionStoreConformanceTest, AttributeCountLimitIsOnTheMergedState) {
  session::StoredSession s = MakeSession(Id('a'));
  s.attributes = {{"a", "1"}, {"b", "2"}};
  ASSERT_TRUE(store_->Create(s).ok());
  session::Mutation m;
  m.now = now();
  m.limits.max_attributes = 3;
  m.set = {{"c", "3"}, {"d", "4"}};
  STATESIDE_EXPECT_LIMIT(store_->Update(Id('a'), m).status(), "max_attributes");
  absl::StatusOr<session::StoredSession> got = Read(Id('a'));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->attributes, s.attributes)
      << "a refused update changes nothing";
  EXPECT_EQ(got->version, 1u);

  m.remove = {"a"};  // makes room in the same mutation: exactly 3
  ASSERT_TRUE(store_->Update(Id('a'), m).ok());
  m.remove.clear();
  m.set = {{"b", "22"}};  // replacing is not adding
  EXPECT_TRUE(store_->Update(Id('a'), m).ok());
}

TEST_P(SessionStoreConformanceTest, TotalBytesLimitCountsNamesAndEnvelopes) {
  session::StoredSession s = MakeSession(Id('a'));
  s.attributes = {{"ab", std::string(8, 'x')}};  // 10 bytes
  ASSERT_TRUE(store_->Create(s).ok());
  session::Mutation m;
  m.now = now();
  m.limits.max_total_bytes = 20;
  m.set = {{"cd", std::string(9, 'y')}};  // 10 + 11 = 21
  STATESIDE_EXPECT_LIMIT(store_->Update(Id('a'), m).status(),
                         "max_total_bytes");
  EXPECT_EQ(Read(Id('a'))->attributes, s.attributes);

  m.set = {{"cd", std::string(8, 'y')}};  // exactly 20
  ASSERT_TRUE(store_->Update(Id('a'), m).ok());
  m.set = {{"ab", std::string(8, 'z')}};  // a replacement counts once
  EXPECT_TRUE(store_->Update(Id('a'), m).ok());
  m.set = {{"ab", std::string(9, 'z')}};
  STATESIDE_EXPECT_LIMIT(store_->Update(Id('a'), m).status(),
                         "max_total_bytes");
}

TEST_P(SessionStoreConformanceTest, ZeroLimitsAreNotChecked) {
  ASSERT_TRUE(store_->Create(MakeSession(Id('a'))).ok());
  session::Mutation m;
  m.now = now();
  for (int i = 0; i < 20; ++i) {
    m.set.emplace_back("k" + std::to_string(i), std::string(100, 'v'));
  }
  EXPECT_TRUE(store_->Update(Id('a'), m).ok());
}

TEST_P(SessionStoreConformanceTest, DestroyReportsWhetherALiveSessionExisted) {
  ASSERT_TRUE(store_->Create(MakeSession(Id('a'))).ok());
  const absl::Time until = now() + absl::Hours(8);
  EXPECT_EQ(store_->Destroy(Id('a'), now(), until).value_or(false), true);
  absl::StatusOr<bool> again = store_->Destroy(Id('a'), now(), until);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
  absl::StatusOr<bool> unknown = store_->Destroy(Id('u'), now(), until);
  ASSERT_TRUE(unknown.ok());
  EXPECT_FALSE(*unknown);
}

TEST_P(SessionStoreConformanceTest, AsyncCreateAndDestroyAnswerLikeTheBlockingOnes) {
  session::StoredSession s = MakeSession(Id('a'), "tag");
  s.attributes = {{"k", "v"}};
  ASSERT_TRUE(CreateAsync(s).ok());
  absl::StatusOr<session::StoredSession> got = Read(s.id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->attributes.at("k"), "v");
  auto listed = store_->ListByUser("tag", now());
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_EQ(listed->size(), 1u);
  EXPECT_EQ(CreateAsync(MakeSession(Id('a'))).code(), absl::StatusCode::kAlreadyExists);
  const absl::Time until = now() + absl::Hours(8);
  EXPECT_EQ(DestroyAsync(Id('a'), until).value_or(false), true);
  absl::StatusOr<bool> again = DestroyAsync(Id('a'), until);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(*again);
  absl::StatusOr<bool> unknown = DestroyAsync(Id('u'), until);
  ASSERT_TRUE(unknown.ok()) << unknown.status();
  EXPECT_FALSE(*unknown);
  EXPECT_EQ(Read(Id('a')).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(store_->ListByUser("tag", now())->empty());
  // The tombstone holds the id, as Destroy's does.
  EXPECT_EQ(CreateAsync(MakeSession(Id('a'))).code(), absl::StatusCode::kAlreadyExists);
}

TEST_P(SessionStoreConformanceTest, DestroyOfAnExpiredSessionReturnsFalse) {
  ASSERT_TRUE(store_->Create(MakeSession(Id('a'))).ok());
  clock_.Advance(absl::Hours(1));
  absl::StatusOr<bool> existed =
      store_->Destroy(Id('a'), now(), now() + absl::Hours(8));
  ASSERT_TRUE(existed.ok());
  EXPECT_FALSE(*existed);
}

TEST_P(SessionStoreConformanceTest, ADestroyedSessionStaysDestroyed) {
  session::StoredSession s = MakeSession(Id('a'), "tag");
  s.attributes = {{"k", "v"}};
  ASSERT_TRUE(store_->Create(s).ok());
  ASSERT_TRUE(store_->Destroy(Id('a'), now(), s.absolute_expiry).ok());
  EXPECT_EQ(Read(Id('a')).status().code(), absl::StatusCode::kNotFound);
  // A slow request finishing after logout:
  EXPECT_EQ(store_->Update(Id('a'), Set("k", "late")).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(Read(Id('a')).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Read(Id('a'), true).status().code(), absl::StatusCode::kNotFound);
  // The tombstone holds the id until tombstone_until.
  clock_.Advance(absl::Hours(1));
  EXPECT_EQ(store_->Create(MakeSession(Id('a'))).code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_TRUE(store_->ListByUser("tag", now())->empty());
}

TEST_P(SessionStoreConformanceTest, ListByUserReturnsLiveSessionsOnly) {
  for (char c : {'a', 'b', 'c', 'd'}) {
    session::StoredSession s = MakeSession(Id(c), "alice", std::string("u") + c);
    s.attributes = {{"k", "v"}};
    ASSERT_TRUE(store_->Create(s).ok());
    clock_.Advance(absl::Seconds(1));
  }
  ASSERT_TRUE(store_->Create(MakeSession(Id('e'), "bob", "ue")).ok());
  ASSERT_TRUE(store_->Create(MakeSession(Id('f'))).ok());  // anonymous
  ASSERT_TRUE(store_->Destroy(Id('b'), now(), now() + absl::Hours(8)).ok());
  clock_.Advance(absl::Minutes(29));
  ASSERT_TRUE(Read(Id('c'), true).ok());
  ASSERT_TRUE(Read(Id('d'), true).ok());
  ASSERT_TRUE(Read(Id('e'), true).ok());
  clock_.Advance(absl::Minutes(2));  // 'a' is now idle-expired

  absl::StatusOr<std::vector<session::StoredSession>> alice =
      store_->ListByUser("alice", now());
  ASSERT_TRUE(alice.ok()) << alice.status();
  ASSERT_EQ(alice->size(), 2u);
  std::vector<std::string> ids;
  for (const session::StoredSession& s : *alice) {
    ids.push_back(s.id);
    EXPECT_TRUE(s.attributes.empty()) << "a listing carries metadata only";
    EXPECT_EQ(s.user_tag, "alice");
    EXPECT_EQ(s.user_envelope, "u" + s.id.substr(0, 1));
  }
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, (std::vector<std::string>{Id('c'), Id('d')}));

  absl::StatusOr<std::vector<session::StoredSession>> bob =
      store_->ListByUser("bob", now());
  ASSERT_TRUE(bob.ok());
  ASSERT_EQ(bob->size(), 1u);
  EXPECT_EQ((*bob)[0].id, Id('e'));
  EXPECT_TRUE(store_->ListByUser("carol", now())->empty());
}

TEST_P(SessionStoreConformanceTest, CreateCappedRefusesAtTheCapAndLeavesNothing) {
  session::UserCap cap;
  cap.max_sessions = 2;
  cap.tombstone_until = now() + absl::Hours(8);
  ASSERT_TRUE(store_->CreateCapped(MakeSession(Id('a'), "tag"), cap).ok());
  clock_.Advance(absl::Seconds(1));
  absl::StatusOr<std::vector<std::string>> second =
      store_->CreateCapped(MakeSession(Id('b'), "tag"), cap);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_TRUE(second->empty());
  clock_.Advance(absl::Seconds(1));
  absl::StatusOr<std::vector<std::string>> third =
      store_->CreateCapped(MakeSession(Id('c'), "tag"), cap);
  EXPECT_EQ(third.status().code(), absl::StatusCode::kFailedPrecondition) << third.status();
  EXPECT_EQ(Read(Id('c')).status().code(), absl::StatusCode::kNotFound);
  // The refused id was never handed out: it stays free.
  EXPECT_TRUE(store_->Create(MakeSession(Id('c'))).ok());
  absl::StatusOr<std::vector<session::StoredSession>> listed = store_->ListByUser("tag", now());
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].id, Id('a'));
  EXPECT_EQ((*listed)[1].id, Id('b'));
  // Only live sessions count: once one is destroyed there is room again.
  ASSERT_TRUE(store_->Destroy(Id('a'), now(), now() + absl::Hours(8)).ok());
  EXPECT_TRUE(store_->CreateCapped(MakeSession(Id('d'), "tag"), cap).ok());
}

TEST_P(SessionStoreConformanceTest, CreateCappedEndsTheOldestInIndexOrder) {
  session::UserCap cap;
  cap.max_sessions = 2;
  cap.end_oldest = true;
  cap.tombstone_until = now() + absl::Hours(8);
  for (char c : {'a', 'b'}) {
    ASSERT_TRUE(store_->CreateCapped(MakeSession(Id(c), "tag"), cap).ok());
    clock_.Advance(absl::Seconds(1));
  }
  absl::StatusOr<std::vector<std::string>> ended =
      store_->CreateCapped(MakeSession(Id('c'), "tag"), cap);
  ASSERT_TRUE(ended.ok()) << ended.status();
  EXPECT_EQ(*ended, std::vector<std::string>{Id('a')});
  // Ended as Destroy ends a session: a tombstone (its id cannot come back)
  // and out of the index.
  EXPECT_EQ(Read(Id('a')).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->Create(MakeSession(Id('a'))).code(), absl::StatusCode::kAlreadyExists);
  absl::StatusOr<session::UserIndexPage> page =
      store_->ListByUserPage("tag", now(), absl::InfinitePast(), 10);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->sessions.size(), 2u);
  EXPECT_EQ(page->sessions[0].id, Id('b'));
  EXPECT_EQ(page->sessions[1].id, Id('c'));
  // Another tag is counted on its own.
  ended = store_->CreateCapped(MakeSession(Id('d'), "other"), cap);
  ASSERT_TRUE(ended.ok()) << ended.status();
  EXPECT_TRUE(ended->empty());
}

TEST_P(SessionStoreConformanceTest, RetireTombstonesAnUnchangedSession) {
  session::StoredSession s = MakeSession(Id('a'), "tag");
  s.attributes = {{"k", "v"}};
  ASSERT_TRUE(store_->Create(s).ok());
  ASSERT_TRUE(
      store_->Retire(Id('a'), 1, Id('b'), now(), s.absolute_expiry).ok());
  EXPECT_EQ(Read(Id('a')).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->Update(Id('a'), Set("k", "late")).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->Create(MakeSession(Id('a'))).code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_TRUE(store_->ListByUser("tag", now())->empty());
  EXPECT_EQ(store_->Successor(Id('a')).value_or("?"), Id('b'));
  // Destroying it again keeps the successor (a logout may come later).
  ASSERT_TRUE(store_->Destroy(Id('a'), now(), s.absolute_expiry).ok());
  EXPECT_EQ(store_->Successor(Id('a')).value_or("?"), Id('b'));
}

TEST_P(SessionStoreConformanceTest, RetireOfAChangedSessionChangesNothing) {
  ASSERT_TRUE(store_->Create(MakeSession(Id('a'), "tag")).ok());
  ASSERT_TRUE(store_->Update(Id('a'), Set("k", "written")).ok());
  const absl::Status retired =
      store_->Retire(Id('a'), 1, Id('b'), now(), now() + absl::Hours(8));
  EXPECT_EQ(retired.code(), absl::StatusCode::kAborted) << retired;
  absl::StatusOr<session::StoredSession> a = Read(Id('a'));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->version, 2u);
  EXPECT_EQ(a->attributes.at("k"), "written");
  EXPECT_EQ(store_->ListByUser("tag", now())->size(), 1u);
  EXPECT_EQ(store_->Successor(Id('a')).value_or("?"), "");
}

TEST_P(SessionStoreConformanceTest, RetireOfADeadSessionIsNotFound) {
  const absl::Time until = now() + absl::Hours(8);
  EXPECT_EQ(store_->Retire(Id('u'), 1, Id('b'), now(), until).code(),
            absl::StatusCode::kNotFound);
  ASSERT_TRUE(store_->Create(MakeSession(Id('a'))).ok());
  ASSERT_TRUE(store_->Destroy(Id('a'), now(), until).ok());
  EXPECT_EQ(store_->Retire(Id('a'), 1, Id('b'), now(), until).code(),
            absl::StatusCode::kNotFound);
  ASSERT_TRUE(store_->Create(MakeSession(Id('c'))).ok());
  clock_.Advance(absl::Hours(1));  // idle-expired
  EXPECT_EQ(store_->Retire(Id('c'), 1, Id('b'), now(), until).code(),
            absl::StatusCode::kNotFound);
  // No successor for anything that was not live.
  EXPECT_EQ(store_->Successor(Id('a')).value_or("?"), "");
  EXPECT_EQ(store_->Successor(Id('c')).value_or("?"), "");
  EXPECT_EQ(store_->Successor(Id('u')).value_or("?"), "");
}

TEST_P(SessionStoreConformanceTest, EveryEpochAdvanceYieldsANewValue) {
  absl::StatusOr<uint64_t> first = store_->UserEpoch("alice");
  ASSERT_TRUE(first.ok()) << first.status();
  const uint64_t bob = store_->UserEpoch("bob").value_or(99);
  std::vector<uint64_t> seen = {*first};
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(
        store_->AdvanceUserEpoch("alice", now(), now() + absl::Hours(8)).ok());
    const uint64_t epoch = store_->UserEpoch("alice").value_or(0);
    EXPECT_EQ(std::count(seen.begin(), seen.end(), epoch), 0) << epoch;
    seen.push_back(epoch);
    EXPECT_EQ(store_->UserEpoch("alice").value_or(0), epoch) << "stable";
  }
  EXPECT_EQ(store_->UserEpoch("bob").value_or(98), bob) << "per user";
}

TEST_P(SessionStoreConformanceTest, IndexPagesNeverSplitOneAbsoluteExpiry) {
  // Absolute expiries 1h, 2h, 2h, 2h, 3h, 4h; 'x' destroyed, 'z' expired.
  const std::vector<std::pair<char, int>> made = {
      {'f', 4}, {'a', 1}, {'c', 2}, {'b', 2}, {'d', 2}, {'e', 3}, {'x', 3}};
  for (const auto& [c, hours] : made) {
    session::StoredSession s = MakeSession(Id(c), "pager");
    s.absolute_expiry = now() + absl::Hours(hours);
    ASSERT_TRUE(store_->Create(s).ok());
  }
  session::StoredSession z = MakeSession(Id('z'), "pager");
  z.idle_ttl = absl::Seconds(1);
  ASSERT_TRUE(store_->Create(z).ok());
  ASSERT_TRUE(store_->Destroy(Id('x'), now(), now() + absl::Hours(8)).ok());
  clock_.Advance(absl::Seconds(2));

  std::vector<std::vector<std::string>> pages;
  absl::Time after = absl::InfinitePast();
  for (int i = 0; i < 5; ++i) {
    absl::StatusOr<session::UserIndexPage> page =
        store_->ListByUserPage("pager", now(), after, 2);
    ASSERT_TRUE(page.ok()) << page.status();
    std::vector<std::string> ids;
    for (const session::StoredSession& s : page->sessions) {
      ids.push_back(s.id);
      EXPECT_GT(s.absolute_expiry, after);
      EXPECT_TRUE(s.attributes.empty()) << "metadata only";
    }
    // A page of dead entries only is empty (a backend may prune late).
    if (!ids.empty()) pages.push_back(ids);
    if (!page->more) break;
    EXPECT_GT(page->last, after);
    after = page->last;
  }
  // 2 asked, 4 given: the three of 2h stay together.
  EXPECT_EQ(pages, (std::vector<std::vector<std::string>>{
                       {Id('a'), Id('b'), Id('c'), Id('d')}, {Id('e'), Id('f')}}));
  EXPECT_TRUE(store_->ListByUserPage("nobody", now(), absl::InfinitePast(), 2)
                  ->sessions.empty());
}

TEST_P(SessionStoreConformanceTest, ValuesAreBinarySafe) {
  std::string every_byte;
  for (int b = 0; b < 256; ++b) every_byte.push_back(static_cast<char>(b));
  session::StoredSession s = MakeSession(Id('a'), "0123456789abcdef", every_byte);
  s.attributes = {{"a name: with {punctuation} & spaces", every_byte},
                  {"empty", ""}};
  ASSERT_TRUE(store_->Create(s).ok());
  const std::string with_nul("\0x\0", 3);
  ASSERT_TRUE(store_->Update(Id('a'), Set("nul", with_nul)).ok());
  absl::StatusOr<session::StoredSession> got = Read(Id('a'));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->user_envelope, every_byte);
  EXPECT_EQ(got->attributes.at("a name: with {punctuation} & spaces"),
            every_byte);
  EXPECT_EQ(got->attributes.at("empty"), "");
  EXPECT_EQ(got->attributes.at("nul"), with_nul);
}

TEST_P(SessionStoreConformanceTest, LargeEnvelopesRoundTrip) {
  session::StoredSession s = MakeSession(Id('a'));
  s.attributes = {{"big", std::string(200 * 1024, 'b')}};
  ASSERT_TRUE(store_->Create(s).ok());
  ASSERT_TRUE(
      store_->Update(Id('a'), Set("big2", std::string(100 * 1024, 'c'))).ok());
  absl::StatusOr<session::StoredSession> got = Read(Id('a'));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->attributes.at("big").size(), 200u * 1024);
  EXPECT_EQ(got->attributes.at("big2").size(), 100u * 1024);
}

TEST_P(SessionStoreConformanceTest,
       ConcurrentUpdatesOfDifferentAttributesAllSurvive) {
  ASSERT_TRUE(store_->Create(MakeSession(Id('a'))).ok());
  constexpr int kThreads = 8;
  constexpr int kPerThread = 16;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string name = absl::StrCat("t", t, "-", i);
        if (!store_->Update(Id('a'), Set(name, name + "-value")).ok()) {
          failures.fetch_add(1);
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  absl::StatusOr<session::StoredSession> got = Read(Id('a'));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->attributes.size(), size_t{kThreads * kPerThread});
  EXPECT_EQ(got->version, 1u + kThreads * kPerThread);
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPerThread; ++i) {
      const std::string name = absl::StrCat("t", t, "-", i);
      EXPECT_EQ(got->attributes[name], name + "-value");
    }
  }
}

TEST_P(SessionStoreConformanceTest, RacingCompareAndSetHasExactlyOneWinner) {
  ASSERT_TRUE(store_->Create(MakeSession(Id('a'))).ok());
  constexpr int kThreads = 8;
  std::atomic<int> won{0};
  std::atomic<int> aborted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      session::Mutation m = Set("k", absl::StrCat("writer-", t));
      m.expected_version = 1;
      absl::Status s = store_->Update(Id('a'), m).status();
      if (s.ok()) won.fetch_add(1);
      if (absl::IsAborted(s)) aborted.fetch_add(1);
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(won.load(), 1);
  EXPECT_EQ(aborted.load(), kThreads - 1);
  EXPECT_EQ(Read(Id('a'))->version, 2u);
}

// The asynchronous forms give the answers of the blocking ones, with many
// outstanding at once (on Redis: pipelined on the connections), and every
// completion runs exactly once.
TEST_P(SessionStoreConformanceTest, AsyncFormsAnswerLikeTheBlockingOnes) {
  session::StoredSession s = MakeSession(Id('a'));
  s.attributes = {{"k", "v0"}};
  ASSERT_TRUE(store_->Create(s).ok());
  constexpr int kCalls = 200;
  struct Results {
    absl::Mutex mu;
    int done ABSL_GUARDED_BY(mu) = 0;
    std::vector<absl::StatusOr<session::StoredSession>> reads ABSL_GUARDED_BY(mu);
    std::vector<absl::StatusOr<session::StoredSession>> writes ABSL_GUARDED_BY(mu);
  } results;
  session::ReadOptions read;
  read.now = now();
  read.touch = false;
  for (int i = 0; i < kCalls; ++i) {
    const bool write = i % 2 == 1;
    const std::string id = i % 10 == 0 ? Id('z') : Id('a');  // some unknown
    auto record = [&results, write](absl::StatusOr<session::StoredSession> r) {
      absl::MutexLock lock(&results.mu);
      (write ? results.writes : results.reads).push_back(std::move(r));
      ++results.done;
    };
    if (write) {
      store_->UpdateAsync(id, Set(absl::StrCat("a", i), "v"), std::move(record));
    } else {
      store_->GetAsync(id, read, std::move(record));
    }
  }
  absl::MutexLock lock(&results.mu);
  const auto all_done = [&results]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(results.mu) {
    return results.done == kCalls;
  };
  ASSERT_TRUE(results.mu.AwaitWithTimeout(absl::Condition(&all_done),
                                          absl::Seconds(30)));
  int found = 0, not_found = 0;
  for (const auto& group : {&results.reads, &results.writes}) {
    for (const absl::StatusOr<session::StoredSession>& r : *group) {
      if (r.ok()) {
        EXPECT_EQ(r->id, Id('a'));
        ++found;
      } else {
        EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound) << r.status();
        ++not_found;
      }
    }
  }
  EXPECT_EQ(not_found, kCalls / 10);
  EXPECT_EQ(found, kCalls - kCalls / 10);
  // Every write landed once: version 1 + one per write to the known id.
  int writes_to_a = 0;
  for (int i = 1; i < kCalls; i += 2) writes_to_a += i % 10 == 0 ? 0 : 1;
  absl::StatusOr<session::StoredSession> final_state = Read(Id('a'));
  ASSERT_TRUE(final_state.ok()) << final_state.status();
  EXPECT_EQ(final_state->version, 1u + writes_to_a);
  EXPECT_EQ(final_state->attributes.size(), 1u + writes_to_a);
  for (const absl::StatusOr<session::StoredSession>& r : results.reads) {
    if (r.ok()) {
      EXPECT_EQ(r->attributes.at("k"), "v0");
    }
  }
}

TEST_P(SessionStoreConformanceTest, AsyncUpdateReportsAStaleVersion) {
  ASSERT_TRUE(store_->Create(MakeSession(Id('a'))).ok());
  session::Mutation m = Set("k", "v");
  m.expected_version = 5;
  absl::Mutex mu;
  std::optional<absl::Status> got;
  store_->UpdateAsync(Id('a'), m, [&](absl::StatusOr<session::StoredSession> r) {
    absl::MutexLock lock(&mu);
    got = r.status();
  });
  absl::MutexLock lock(&mu);
  const auto has_answer = [&got] { return got.has_value(); };
  ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(&has_answer), absl::Seconds(30)));
  EXPECT_EQ(got->code(), absl::StatusCode::kAborted) << *got;
}

TEST_P(OptOutStoreConformanceTest, AnUnknownTagIsNotOptedOut) {
  absl::StatusOr<bool> got = store_->Get("nobody", now());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_FALSE(*got);
}

TEST_P(OptOutStoreConformanceTest, AFlagHoldsUntilItsExpiry) {
  const absl::Time expiry = now() + absl::Hours(1);
  ASSERT_TRUE(store_->Set("t1", true, now(), expiry).ok());
  EXPECT_TRUE(store_->Get("t1", now()).value_or(false));
  EXPECT_TRUE(
      store_->Get("t1", expiry - absl::Milliseconds(1)).value_or(false));
  absl::StatusOr<bool> at_expiry = store_->Get("t1", expiry);
  ASSERT_TRUE(at_expiry.ok());
  EXPECT_FALSE(*at_expiry);
}

TEST_P(OptOutStoreConformanceTest, ClearingRemovesTheFlag) {
  ASSERT_TRUE(store_->Set("t1", true, now(), now() + absl::Hours(1)).ok());
  ASSERT_TRUE(store_->Set("t1", false, now(), now()).ok());
  EXPECT_FALSE(store_->Get("t1", now()).value_or(true));
  // Clearing what is not there is fine.
  EXPECT_TRUE(store_->Set("t2", false, now(), now()).ok());
}

TEST_P(OptOutStoreConformanceTest, SettingAgainReplacesTheExpiry) {
  ASSERT_TRUE(store_->Set("t1", true, now(), now() + absl::Hours(1)).ok());
  ASSERT_TRUE(store_->Set("t1", true, now(), now() + absl::Hours(3)).ok());
  EXPECT_TRUE(store_->Get("t1", now() + absl::Hours(2)).value_or(false));
  ASSERT_TRUE(store_->Set("t1", true, now(), now() + absl::Minutes(10)).ok());
  EXPECT_FALSE(store_->Get("t1", now() + absl::Hours(1)).value_or(true));
}

// Key rotation: a flag moves to another tag with its expiry; a
// flag already there is kept; nothing to move is false, not an error.
TEST_P(OptOutStoreConformanceTest, RefileMovesAFlagAndKeepsItsExpiry) {
  const absl::Time expiry = now() + absl::Hours(2);
  ASSERT_TRUE(store_->SetWithSubject("old", now(), expiry, "sealed-old").ok());
  absl::StatusOr<bool> moved = store_->Refile("old", "new", "sealed-new", now());
  ASSERT_TRUE(moved.ok()) << moved.status();
  EXPECT_TRUE(*moved);
  EXPECT_FALSE(store_->Get("old", now()).value_or(true));
  EXPECT_TRUE(store_->Get("new", expiry - absl::Milliseconds(1)).value_or(false));
  EXPECT_FALSE(store_->Get("new", expiry).value_or(true));
  EXPECT_FALSE(store_->Refile("old", "new", "", now()).value_or(true)) << "moved already";

  ASSERT_TRUE(store_->Set("old2", true, now(), now() + absl::Hours(1)).ok());
  ASSERT_TRUE(store_->Set("new2", true, now(), now() + absl::Hours(5)).ok());
  EXPECT_TRUE(store_->Refile("old2", "new2", "", now()).value_or(false));
  EXPECT_FALSE(store_->Get("old2", now()).value_or(true));
  EXPECT_TRUE(store_->Get("new2", now() + absl::Hours(3)).value_or(false))
      << "the flag already under the new tag decides";
}

TEST_P(OptOutStoreConformanceTest, TagsAreIndependent) {
  ASSERT_TRUE(store_->Set("t1", true, now(), now() + absl::Hours(1)).ok());
  EXPECT_FALSE(store_->Get("t2", now()).value_or(true));
  ASSERT_TRUE(store_->Set("t2", true, now(), now() + absl::Hours(1)).ok());
  ASSERT_TRUE(store_->Set("t1", false, now(), now()).ok());
  EXPECT_TRUE(store_->Get("t2", now()).value_or(false));
}

#undef STATESIDE_EXPECT_LIMIT

// A binary may instantiate only one of the two suites.
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(SessionStoreConformanceTest);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(OptOutStoreConformanceTest);

}  // namespace stateside::testing

#endif  // STATESIDE_TESTS_SUPPORT_STORE_CONFORMANCE_H_
