// MemorySessionStore: the SessionStore contract over hash maps under a mutex.
#include "sidecar/session/memory_store.h"

#include <algorithm>
#include <cassert>
#include <tuple>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "sidecar/common/not_found.h"
#include "sidecar/common/string_view.h"
#include "sidecar/common/status_macros.h"

namespace stateside::session {
namespace {

StoredSession MetadataOf(const StoredSession& s) {
  StoredSession out;
  out.id = s.id;
  out.user_tag = s.user_tag;
  out.user_envelope = s.user_envelope;
  out.metadata_seal = s.metadata_seal;
  out.created = s.created;
  out.last_access = s.last_access;
  out.idle_ttl = s.idle_ttl;
  out.absolute_expiry = s.absolute_expiry;
  out.version = s.version;
  return out;
}

// Checks the attribute count and stored bytes the session would have after
// `m`, without modifying it, so a refused mutation changes nothing.
absl::Status CheckLimits(const StoredSession& s, const Mutation& m) {
  const MutationLimits& limits = m.limits;
  if (limits.max_attributes == 0 && limits.max_total_bytes == 0) {
    return absl::OkStatus();
  }
  // name -> envelope after the mutation (nullptr: removed). Removals first.
  absl::flat_hash_map<absl::string_view, const std::string*> pending;
  for (const std::string& name : m.remove) pending[Sv(name)] = nullptr;
  for (const auto& [name, envelope] : m.set) pending[Sv(name)] = &envelope;

  size_t count = s.attributes.size();
  size_t bytes = 0;
  for (const auto& [name, envelope] : s.attributes) {
    bytes += name.size() + envelope.size();
  }
  for (const auto& [name, envelope] : pending) {
    auto it = s.attributes.find(name);
    if (it != s.attributes.end()) {
      --count;
      bytes -= it->first.size() + it->second.size();
    }
    if (envelope != nullptr) {
      ++count;
      bytes += name.size() + envelope->size();
    }
  }
  if (limits.max_attributes != 0 && count > limits.max_attributes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the session would have ", count,
        " attributes; the limit (max_attributes) is ", limits.max_attributes));
  }
  if (limits.max_total_bytes != 0 && bytes > limits.max_total_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the session would hold ", bytes,
        " bytes; the limit (max_total_bytes) is ", limits.max_total_bytes));
  }
  return absl::OkStatus();
}

}  // namespace

MemorySessionStore::MemorySessionStore(size_t max_sessions)
    : max_sessions_(max_sessions) {
  assert(max_sessions > 0);
}

absl::Status MemorySessionStore::Create(const StoredSession& session) {
  absl::MutexLock lock(&mu_);
  return CreateLocked(session);
}

absl::StatusOr<std::vector<std::string>> MemorySessionStore::CreateCapped(
    const StoredSession& session, const UserCap& cap) {
  absl::MutexLock lock(&mu_);
  const absl::Time now = session.last_access;
  std::vector<const StoredSession*> live;
  auto index = by_user_.find(session.user_tag);
  if (index != by_user_.end()) {
    // Copy: erasing an expired session edits the set being walked.
    std::vector<std::string> ids(index->second.begin(), index->second.end());
    for (const std::string& id : ids) {
      const StoredSession* s = FindLiveLocked(id, now);
      if (s != nullptr) live.push_back(s);
    }
  }
  std::vector<std::string> ended;
  if (live.size() >= cap.max_sessions) {
    if (!cap.end_oldest) {
      return absl::FailedPreconditionError(
          absl::StrCat("the user has ", live.size(),
                       " live sessions; the limit is ", cap.max_sessions));
    }
    // Index order, as ListByUserPage walks it.
    std::sort(live.begin(), live.end(),
              [](const StoredSession* a, const StoredSession* b) {
                return std::tie(a->absolute_expiry, a->id) <
                       std::tie(b->absolute_expiry, b->id);
              });
    for (size_t i = 0; i + cap.max_sessions <= live.size(); ++i) {
      ended.push_back(live[i]->id);
    }
  }
  // Checked before anything ends, so a refused Create changes nothing.
  auto tomb = tombstones_.find(session.id);
  auto existing = sessions_.find(session.id);
  if ((tomb != tombstones_.end() && now < tomb->second.until) ||
      (existing != sessions_.end() && existing->second.LiveAt(now))) {
    return absl::AlreadyExistsError("session id already used");
  }
  // Ending sessions frees room, so CreateLocked cannot then find the store
  // full: a Create that fails leaves everything as it was.
  for (const std::string& id : ended) {
    EraseLocked(sessions_.find(id));
    AddTombstoneLocked(id, now, cap.tombstone_until);
  }
  RETURN_IF_ERROR(CreateLocked(session));
  return ended;
}

absl::Status MemorySessionStore::CreateLocked(const StoredSession& session) {
  // Creation time is the only `now` a Create carries.
  const absl::Time now = session.last_access;
  auto tomb = tombstones_.find(session.id);
  if (tomb != tombstones_.end() && now < tomb->second.until) {
    return absl::AlreadyExistsError("session id already used");
  }
  auto existing = sessions_.find(session.id);
  if (existing != sessions_.end()) {
    if (existing->second.LiveAt(now)) {
      return absl::AlreadyExistsError("session id already used");
    }
    EraseLocked(existing);
  }
  if (sessions_.size() >= max_sessions_ && now >= earliest_session_expiry_) {
    SweepSessionsLocked(now);
  }
  if (sessions_.size() >= max_sessions_) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the memory session store is full (", max_sessions_,
                     " live sessions; raise the session limit or use Redis)"));
  }
  sessions_.emplace(session.id, session);
  if (!session.user_tag.empty()) by_user_[session.user_tag].insert(session.id);
  earliest_session_expiry_ =
      std::min(earliest_session_expiry_, session.idle_expiry());
  return absl::OkStatus();
}

absl::StatusOr<StoredSession> MemorySessionStore::Get(
    std::string_view id, const ReadOptions& options) {
  absl::MutexLock lock(&mu_);
  bool expired = false;
  StoredSession* s = FindLiveLocked(id, options.now, &expired);
  if (s == nullptr) return expired ? ExpiredNotFound() : SessionNotFound();
  if (TouchDue(options, s->last_access, s->idle_ttl)) s->last_access = options.now;
  if (options.metadata_only) return MetadataOf(*s);
  return *s;
}

absl::StatusOr<StoredSession> MemorySessionStore::Update(
    std::string_view id, const Mutation& mutation) {
  absl::MutexLock lock(&mu_);
  StoredSession* s = FindLiveLocked(id, mutation.now);
  if (s == nullptr) return SessionNotFound();
  if (mutation.expected_version.has_value() &&
      *mutation.expected_version != s->version) {
    return absl::AbortedError(absl::StrCat("session version is ", s->version,
                                           ", expected ",
                                           *mutation.expected_version));
  }
  absl::Status limits = CheckLimits(*s, mutation);
  if (!limits.ok()) return limits;
  for (const std::string& name : mutation.remove) s->attributes.erase(name);
  for (const auto& [name, envelope] : mutation.set) {
    s->attributes.insert_or_assign(name, envelope);
  }
  ++s->version;
  if (mutation.now - s->last_access >=
      TouchGranularity(mutation.touch_granularity, s->idle_ttl)) {
    s->last_access = std::max(s->last_access, mutation.now);
  }
  return MetadataOf(*s);
}

absl::StatusOr<bool> MemorySessionStore::Destroy(std::string_view id,
                                                 absl::Time now,
                                                 absl::Time tombstone_until) {
  absl::MutexLock lock(&mu_);
  auto it = sessions_.find(Sv(id));
  if (it == sessions_.end()) {
    // Nothing to guard; a tombstone already there is kept (and extended).
    auto tomb = tombstones_.find(Sv(id));
    if (tomb != tombstones_.end()) {
      tomb->second.until = std::max(tomb->second.until, tombstone_until);
    }
    return false;
  }
  const bool live = it->second.LiveAt(now);
  std::string key = it->first;
  EraseLocked(it);
  AddTombstoneLocked(key, now, tombstone_until);
  return live;
}

absl::StatusOr<std::vector<StoredSession>> MemorySessionStore::ListByUser(
    std::string_view user_tag, absl::Time now) {
  absl::MutexLock lock(&mu_);
  std::vector<StoredSession> out;
  auto index = by_user_.find(Sv(user_tag));
  if (index == by_user_.end()) return out;
  // Copy: erasing an expired session edits the set being walked.
  std::vector<std::string> ids(index->second.begin(), index->second.end());
  for (const std::string& id : ids) {
    const StoredSession* s = FindLiveLocked(id, now);
    if (s != nullptr) out.push_back(MetadataOf(*s));
  }
  std::sort(out.begin(), out.end(),
            [](const StoredSession& a, const StoredSession& b) {
              return std::tie(a.created, a.id) < std::tie(b.created, b.id);
            });
  return out;
}

absl::Status MemorySessionStore::Retire(std::string_view id,
                                        uint64_t expected_version,
                                        std::string_view successor,
                                        absl::Time now,
                                        absl::Time tombstone_until) {
  absl::MutexLock lock(&mu_);
  auto it = sessions_.find(Sv(id));
  if (it != sessions_.end() && it->second.LiveAt(now) &&
      it->second.version != expected_version) {
    return absl::AbortedError(absl::StrCat("session version is ",
                                           it->second.version, ", expected ",
                                           expected_version));
  }
  if (it == sessions_.end()) return SessionNotFound();
  const bool live = it->second.LiveAt(now);
  std::string key = it->first;
  EraseLocked(it);
  AddTombstoneLocked(key, now, tombstone_until,
                     live ? std::string(successor) : std::string());
  if (!live) return SessionNotFound();
  return absl::OkStatus();
}

absl::StatusOr<std::string> MemorySessionStore::Successor(std::string_view id) {
  absl::MutexLock lock(&mu_);
  auto tomb = tombstones_.find(Sv(id));
  if (tomb == tombstones_.end()) return std::string();
  return tomb->second.successor;
}

absl::StatusOr<uint64_t> MemorySessionStore::UserEpoch(
    std::string_view user_tag) {
  absl::MutexLock lock(&mu_);
  auto it = epochs_.find(Sv(user_tag));
  return it == epochs_.end() ? epoch_floor_ : it->second.value;
}

absl::Status MemorySessionStore::AdvanceUserEpoch(std::string_view user_tag,
                                                  absl::Time now,
                                                  absl::Time until) {
  absl::MutexLock lock(&mu_);
  auto it = epochs_.find(Sv(user_tag));
  if (it == epochs_.end()) {
    if (epochs_.size() >= max_sessions_) SweepEpochsLocked(now);
    if (epochs_.size() >= max_sessions_) {
      // Safe: the floor rises past every value handed out (see the header).
      epochs_.erase(epochs_.begin());
      epoch_floor_ = epoch_counter_;
    }
    it = epochs_.emplace(std::string(user_tag), Epoch{0, until}).first;
  }
  it->second.value = ++epoch_counter_;
  it->second.until = std::max(it->second.until, until);
  return absl::OkStatus();
}

absl::StatusOr<UserIndexPage> MemorySessionStore::ListByUserPage(
    std::string_view user_tag, absl::Time now, absl::Time after,
    size_t limit) {
  absl::MutexLock lock(&mu_);
  UserIndexPage page;
  auto index = by_user_.find(Sv(user_tag));
  if (index == by_user_.end()) return page;
  // Copy: erasing an expired session edits the set being walked.
  std::vector<std::string> ids(index->second.begin(), index->second.end());
  std::vector<const StoredSession*> found;
  for (const std::string& id : ids) {
    const StoredSession* s = FindLiveLocked(id, now);
    if (s != nullptr && s->absolute_expiry > after) found.push_back(s);
  }
  std::sort(found.begin(), found.end(),
            [](const StoredSession* a, const StoredSession* b) {
              return std::tie(a->absolute_expiry, a->id) <
                     std::tie(b->absolute_expiry, b->id);
            });
  size_t end = std::min(std::max<size_t>(limit, 1), found.size());
  while (end > 0 && end < found.size() &&
         found[end]->absolute_expiry == found[end - 1]->absolute_expiry) {
    ++end;  // never split one absolute expiry
  }
  for (size_t i = 0; i < end; ++i) page.sessions.push_back(MetadataOf(*found[i]));
  page.more = end < found.size();
  if (end > 0) page.last = found[end - 1]->absolute_expiry;
  return page;
}

size_t MemorySessionStore::Sweep(absl::Time now) {
  std::vector<StoredSession> expired;
  size_t dropped;
  {
    absl::MutexLock lock(&mu_);
    dropped = SweepSessionsLocked(now, expiry_listener_ ? &expired : nullptr) +
              SweepTombstonesLocked(now) + SweepEpochsLocked(now);
  }
  for (const StoredSession& session : expired) expiry_listener_(session);
  return dropped;
}

size_t MemorySessionStore::SweepEpochsLocked(absl::Time now) {
  const size_t before = epochs_.size();
  absl::erase_if(epochs_, [now](const auto& entry) {
    return entry.second.until <= now;
  });
  if (epochs_.size() != before) epoch_floor_ = epoch_counter_;
  return before - epochs_.size();
}

size_t MemorySessionStore::size() const {
  absl::MutexLock lock(&mu_);
  return sessions_.size();
}

size_t MemorySessionStore::tombstone_count() const {
  absl::MutexLock lock(&mu_);
  return tombstones_.size();
}

void MemorySessionStore::EraseLocked(SessionMap::iterator it) {
  const StoredSession& s = it->second;
  if (!s.user_tag.empty()) {
    auto index = by_user_.find(s.user_tag);
    if (index != by_user_.end()) {
      index->second.erase(s.id);
      if (index->second.empty()) by_user_.erase(index);
    }
  }
  sessions_.erase(it);
}

size_t MemorySessionStore::SweepSessionsLocked(
    absl::Time now, std::vector<StoredSession>* expired) {
  size_t dropped = 0;
  absl::Time earliest = absl::InfiniteFuture();
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    auto current = it++;  // erase() does not invalidate the others
    if (!current->second.LiveAt(now)) {
      if (expired != nullptr) expired->push_back(MetadataOf(current->second));
      EraseLocked(current);
      ++dropped;
    } else {
      earliest = std::min(earliest, current->second.idle_expiry());
    }
  }
  earliest_session_expiry_ = earliest;
  return dropped;
}

size_t MemorySessionStore::SweepTombstonesLocked(absl::Time now) {
  size_t dropped = 0;
  absl::Time earliest = absl::InfiniteFuture();
  for (auto it = tombstones_.begin(); it != tombstones_.end();) {
    auto current = it++;
    if (current->second.until <= now) {
      tombstones_.erase(current);
      ++dropped;
    } else {
      earliest = std::min(earliest, current->second.until);
    }
  }
  earliest_tombstone_expiry_ = earliest;
  return dropped;
}

StoredSession* MemorySessionStore::FindLiveLocked(std::string_view id,
                                                  absl::Time now, bool* expired) {
  auto it = sessions_.find(Sv(id));
  if (it == sessions_.end()) return nullptr;
  if (!it->second.LiveAt(now)) {
    if (expired != nullptr) *expired = true;
    // Liveness never comes back (only a live session is touched), so an
    // expired record can go now rather than at the next sweep.
    EraseLocked(it);
    return nullptr;
  }
  return &it->second;
}

void MemorySessionStore::AddTombstoneLocked(const std::string& id,
                                            absl::Time now, absl::Time until,
                                            std::string successor) {
  if (until <= now) return;  // nothing left to guard against
  auto existing = tombstones_.find(id);
  if (existing != tombstones_.end()) {
    existing->second.until = std::max(existing->second.until, until);
    return;
  }
  if (tombstones_.size() >= max_sessions_ &&
      now >= earliest_tombstone_expiry_) {
    SweepTombstonesLocked(now);
  }
  if (tombstones_.size() >= max_sessions_) {
    // Safe to drop early in this store: see the header.
    tombstones_.erase(tombstones_.begin());
  }
  tombstones_.emplace(id, Tombstone{until, std::move(successor)});
  earliest_tombstone_expiry_ = std::min(earliest_tombstone_expiry_, until);
}

}  // namespace stateside::session
