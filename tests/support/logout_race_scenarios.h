// The interleavings of Create/Regenerate/Update with DestroyUserSessions
// (docs/ARCHITECTURE.md, "Log out everywhere"), played deterministically
// through SessionManager::SetStepHookForTesting: one manager is stopped
// between two of its store steps while the other runs an operation to the
// end. Header-only; the memory tests (tests/unit/session) and the Redis tests
// (tests/integration/redis) run the same scenarios, with `a` and `b` two
// managers over one store (two sidecars sharing one Redis). Each scenario
// expects a fresh store and leaves both hooks unset.
#ifndef STATESIDE_TESTS_SUPPORT_LOGOUT_RACE_SCENARIOS_H_
#define STATESIDE_TESTS_SUPPORT_LOGOUT_RACE_SCENARIOS_H_

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "sidecar/session/session_manager.h"

namespace stateside::testing::races {

inline constexpr char kUser[] = "racer@example.com";

inline session::Session CreateFor(session::SessionManager& m, std::string user,
                         absl::flat_hash_map<std::string, std::string> attrs = {
                             {"cart", "[]"}}) {
  session::CreateParams params;
  params.user_id = std::move(user);
  params.attributes = std::move(attrs);
  absl::StatusOr<session::Session> s = m.Create(params);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *std::move(s) : session::Session{};
}

// Runs `action` once, when `m` reaches `step`.
inline void OnceAt(session::SessionManager& m, session::ManagerStep step,
                   std::function<void()> action) {
  m.SetStepHookForTesting(
      [step, action = std::move(action), done = false](session::ManagerStep at) mutable {
        if (at != step || done) return;
        done = true;
        action();
      });
}

// Stops `a` at `step` while `b` logs kUser out everywhere but `kept`.
inline void LogOutWhenAt(session::SessionManager& a, session::ManagerStep step, session::SessionManager& b,
                         const session::Session& kept,
                         absl::StatusOr<uint32_t>* destroyed) {
  OnceAt(a, step, [&b, &kept, destroyed] {
    *destroyed = b.DestroyUserSessions(kUser, session::SessionKey::Id(kept.info.id));
  });
}

inline std::vector<std::string> ListedIds(session::SessionManager& m) {
  std::vector<std::string> ids;
  absl::StatusOr<std::vector<session::SessionInfo>> list = m.ListUserSessions(kUser);
  EXPECT_TRUE(list.ok()) << list.status();
  if (list.ok()) {
    for (const session::SessionInfo& info : *list) ids.push_back(info.id);
  }
  return ids;
}

inline bool Usable(session::SessionManager& m, const std::string& cookie) {
  return m.Get(session::SessionKey::Cookie(cookie), /*touch=*/false).ok();
}

// A Create that read the epoch before the logout began (C1 < D1) but whose
// index entry the logout's listing did not see: the post-check retires it.
// Without the epoch it would survive the logout.
inline void CreateStoppedBeforeItsWriteDoesNotSurvive(session::SessionManager& a,
                                                      session::SessionManager& b) {
  session::Session kept = CreateFor(b, kUser);
  session::Session before = CreateFor(b, kUser);
  absl::StatusOr<uint32_t> destroyed;
  LogOutWhenAt(a, session::ManagerStep::kEpochRead, b, kept, &destroyed);
  session::Session racing = CreateFor(a, kUser);
  a.SetStepHookForTesting(nullptr);
  ASSERT_TRUE(destroyed.ok()) << destroyed.status();
  EXPECT_EQ(*destroyed, 1u) << "only `before` was indexed when it listed";
  EXPECT_FALSE(Usable(b, racing.cookie)) << "created, then logged out";
  EXPECT_FALSE(Usable(b, before.cookie));
  EXPECT_TRUE(Usable(b, kept.cookie));
  EXPECT_EQ(ListedIds(b), std::vector<std::string>{kept.info.id});
}

// A Create stopped after its write (C2 < D2): the listing sees it.
inline void CreateStoppedAfterItsWriteDoesNotSurvive(session::SessionManager& a,
                                                     session::SessionManager& b) {
  session::Session kept = CreateFor(b, kUser);
  absl::StatusOr<uint32_t> destroyed;
  LogOutWhenAt(a, session::ManagerStep::kWritten, b, kept, &destroyed);
  session::Session racing = CreateFor(a, kUser);
  a.SetStepHookForTesting(nullptr);
  ASSERT_TRUE(destroyed.ok()) << destroyed.status();
  EXPECT_EQ(*destroyed, 1u);
  EXPECT_FALSE(Usable(b, racing.cookie));
  EXPECT_TRUE(Usable(b, kept.cookie));
  // A Create after the logout is not affected by it.
  session::Session after = CreateFor(a, kUser);
  EXPECT_TRUE(Usable(b, after.cookie));
}

// A Regenerate stopped between its copy and the retirement of the old id
// while the logout runs: neither the old id nor the copy survives.
inline void RegenerateStoppedBeforeRetiringDoesNotSurvive(session::SessionManager& a,
                                                          session::SessionManager& b) {
  session::Session kept = CreateFor(b, kUser);
  session::Session old = CreateFor(b, kUser, {{"cart", "[1]"}});
  absl::StatusOr<uint32_t> destroyed;
  LogOutWhenAt(a, session::ManagerStep::kWritten, b, kept, &destroyed);
  absl::StatusOr<session::Session> fresh = a.Regenerate(session::SessionKey::Id(old.info.id));
  a.SetStepHookForTesting(nullptr);
  ASSERT_TRUE(destroyed.ok()) << destroyed.status();
  EXPECT_EQ(fresh.status().code(), absl::StatusCode::kNotFound) << fresh.status();
  EXPECT_FALSE(Usable(b, old.cookie));
  EXPECT_TRUE(Usable(b, kept.cookie));
  EXPECT_EQ(ListedIds(b), std::vector<std::string>{kept.info.id});
}

// The logout stopped between its listing and its destroys while a Regenerate
// of a listed session runs to the end: the logout finds the old id retired
// and follows it to the copy. Without Successor() the copy would survive.
inline void RegenerateInsideTheLogoutIsFollowed(session::SessionManager& a,
                                                session::SessionManager& b) {
  session::Session kept = CreateFor(b, kUser);
  session::Session old = CreateFor(b, kUser, {{"cart", "[1]"}});
  absl::StatusOr<session::Session> fresh;
  absl::StatusOr<session::Session> fresher;
  OnceAt(b, session::ManagerStep::kListed, [&] {
    fresh = a.Regenerate(session::SessionKey::Id(old.info.id));
    if (fresh.ok()) fresher = a.Regenerate(session::SessionKey::Id(fresh->info.id));
  });
  absl::StatusOr<uint32_t> destroyed =
      b.DestroyUserSessions(kUser, session::SessionKey::Id(kept.info.id));
  b.SetStepHookForTesting(nullptr);
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  ASSERT_TRUE(fresher.ok()) << fresher.status();
  ASSERT_TRUE(destroyed.ok()) << destroyed.status();
  EXPECT_EQ(*destroyed, 1u) << "the twice-regenerated session, once";
  EXPECT_FALSE(Usable(b, old.cookie));
  EXPECT_FALSE(Usable(b, fresh->cookie));
  EXPECT_FALSE(Usable(b, fresher->cookie));
  EXPECT_TRUE(Usable(b, kept.cookie));
  EXPECT_EQ(ListedIds(b), std::vector<std::string>{kept.info.id});
}

// An Update of the old id landing between Regenerate's copy and its
// retirement moves the version: the stale copy goes, the copy is made again
// and carries the update. Copy-then-delete would lose it.
inline void RegenerateKeepsAnUpdateThatLandsDuringTheCopy(session::SessionManager& a,
                                                          session::SessionManager& b) {
  session::Session old = CreateFor(b, kUser, {{"cart", "[1]"}});
  absl::StatusOr<session::SessionInfo> updated;
  OnceAt(a, session::ManagerStep::kWritten, [&] {
    session::UpdateParams u;
    u.set = {{"cart", "[1,2]"}};
    updated = b.Update(session::SessionKey::Id(old.info.id), u);
  });
  absl::StatusOr<session::Session> fresh = a.Regenerate(session::SessionKey::Id(old.info.id));
  a.SetStepHookForTesting(nullptr);
  ASSERT_TRUE(updated.ok()) << updated.status();
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  EXPECT_EQ(fresh->attributes.at("cart"), "[1,2]");
  EXPECT_EQ(fresh->info.version, 2u);
  absl::StatusOr<session::Session> read = b.Get(session::SessionKey::Cookie(fresh->cookie));
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->attributes.at("cart"), "[1,2]");
  EXPECT_FALSE(Usable(b, old.cookie));
  EXPECT_EQ(ListedIds(b), std::vector<std::string>{fresh->info.id})
      << "the stale copy is gone";
}

// A session changed under every copy: ABORTED after the bounded retries,
// the old id still live with every update, no copy left behind.
inline void RegenerateGivesUpOnASessionThatNeverSettles(session::SessionManager& a,
                                                        session::SessionManager& b) {
  session::Session old = CreateFor(b, kUser, {{"n", "0"}});
  int updates = 0;
  a.SetStepHookForTesting([&](session::ManagerStep at) {
    if (at != session::ManagerStep::kWritten) return;
    session::UpdateParams u;
    u.set = {{"n", std::to_string(++updates)}};
    EXPECT_TRUE(b.Update(session::SessionKey::Id(old.info.id), u).ok());
  });
  absl::StatusOr<session::Session> fresh = a.Regenerate(session::SessionKey::Id(old.info.id));
  a.SetStepHookForTesting(nullptr);
  EXPECT_EQ(fresh.status().code(), absl::StatusCode::kAborted) << fresh.status();
  EXPECT_EQ(updates, 4);
  absl::StatusOr<session::Session> read = b.Get(session::SessionKey::Cookie(old.cookie));
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->attributes.at("n"), "4");
  EXPECT_EQ(ListedIds(b), std::vector<std::string>{old.info.id});
}

}  // namespace stateside::testing::races

#endif  // STATESIDE_TESTS_SUPPORT_LOGOUT_RACE_SCENARIOS_H_
