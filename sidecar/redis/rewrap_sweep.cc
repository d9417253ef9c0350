// RewrapSweep: SCAN over "<p>s:{*" and "<p>o:{*", one compare-and-set script
// per key that holds something under an older key. See docs/REDIS_KEYS.md.
#include "sidecar/redis/rewrap_sweep.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "sidecar/analytics/opt_out_manager.h"
#include "sidecar/common/status_macros.h"
#include "sidecar/redis/redis_opt_out_store.h"
#include "sidecar/redis/session_scripts.h"
#include "sidecar/session/session_manager.h"

namespace stateside::redis {
namespace {


// KEYS[1]: a session hash. ARGV: expected m:user, new m:user ('' = keep),
// then (field, expected envelope, new envelope) triples; when a new m:user is
// given the first triple is m:uenv, and m:user moves only with it. A field
// is replaced only if it still holds the expected bytes; m:sz follows the
// attributes' size. The version and the expiry are untouched: a rewrap is
// not an update. Returns {0} for a missing session or a tombstone, else
// {1, retagged, m:abs, ok per triple...}.
}  // namespace

const char kRewrapSessionScript[] = R"lua(
local key = KEYS[1]
if redis.call('HEXISTS', key, 'm:dead') == 1 or redis.call('HEXISTS', key, 'm:ver') == 0 then
  return {0}
end
local out = {1, 0, redis.call('HGET', key, 'm:abs')}
local sz = 0
for i = 3, #ARGV, 3 do
  local f, old, new = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local ok = 0
  if redis.call('HGET', key, f) == old then
    redis.call('HSET', key, f, new)
    if string.sub(f, 1, 2) == 'a:' then sz = sz + #new - #old end
    ok = 1
  end
  out[#out + 1] = ok
end
if sz ~= 0 then redis.call('HINCRBY', key, 'm:sz', sz) end
if ARGV[2] ~= '' and out[4] == 1 and redis.call('HGET', key, 'm:user') == ARGV[1] then
  redis.call('HSET', key, 'm:user', ARGV[2])
  out[2] = 1
end
return out
)lua";

namespace {

// SCAN's MATCH is a glob: escape the prefix's special characters.
std::string GlobEscape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

// What is between the first "{" and the last "}" of a key.
std::string_view HashTagOf(std::string_view key) {
  const size_t open = key.find('{');
  const size_t close = key.rfind('}');
  if (open == std::string_view::npos || close == std::string_view::npos || close <= open) {
    return {};
  }
  return key.substr(open + 1, close - open - 1);
}

std::string Micros(absl::Time t) { return std::to_string(absl::ToUnixMicros(t)); }

uint64_t ToU64(const std::string& s) {
  uint64_t v = 0;
  return absl::SimpleAtoi(s, &v) ? v : 0;
}

absl::Time FromMicros(const std::string& s) {
  int64_t v = 0;
  return absl::SimpleAtoi(s, &v) ? absl::FromUnixMicros(v) : absl::InfinitePast();
}

void Add(RewrapProgress& into, const RewrapProgress& delta) {
  into.sessions += delta.sessions;
  into.opt_outs += delta.opt_outs;
  into.unsealed_opt_outs += delta.unsealed_opt_outs;
  into.conflicts += delta.conflicts;
  into.errors += delta.errors;
  if (!delta.last_error.empty()) into.last_error = delta.last_error;
  for (const auto& [id, counts] : delta.keys) {
    RewrapKeyCounts& c = into.keys[id];
    c.found += counts.found;
    c.rewrapped += counts.rewrapped;
    c.left += counts.left;
    c.unopenable += counts.unopenable;
  }
}

// A value that did not open under its (known) key id: tampered, or sealed
// under other bytes for that id. Not a Redis error, and no reason to keep an
// old key unless it is under one (the right bytes for that id may open it).
void CountUnopenable(RewrapProgress& delta, const std::string& kid, const std::string& primary,
                     std::string error) {
  RewrapKeyCounts& counts = delta.keys[kid];
  counts.unopenable += 1;
  if (kid != primary) counts.left += 1;
  delta.last_error = std::move(error);
}

std::string TimeJson(absl::Time t) {
  return t == absl::InfinitePast() ? "" : absl::FormatTime(absl::RFC3339_full, t, absl::UTCTimeZone());
}

}  // namespace

std::string RewrapProgressJson(const RewrapProgress& p) {
  nlohmann::json keys = nlohmann::json::object();
  for (const auto& [id, c] : p.keys) {
    keys[id] = {{"found", c.found}, {"rewrapped", c.rewrapped}, {"left", c.left}, {"unopenable", c.unopenable}};
  }
  return nlohmann::json{{"state", p.state},
                        {"primary", p.primary},
                        {"owner", p.owner},
                        {"cursor", p.cursor},
                        {"started", TimeJson(p.started)},
                        {"updated", TimeJson(p.updated)},
                        {"sessions", p.sessions},
                        {"opt_outs", p.opt_outs},
                        {"unsealed_opt_outs", p.unsealed_opt_outs},
                        {"conflicts", p.conflicts},
                        {"errors", p.errors},
                        {"last_error", p.last_error},
                        {"items_per_second", p.items_per_second},
                        {"keys", keys}}
      .dump();
}

RewrapSweep::RewrapSweep(RedisClient* client, const crypto::Sealer* sealer,
                         const Clock* clock, RewrapOptions options)
    : client_(client),
      sealer_(sealer),
      clock_(clock),
      options_(std::move(options)),
      rewrap_session_(RedisScript::Create(kRewrapSessionScript)),
      index_add_(RedisScript::Create(scripts::kIndexAdd)) {}

RewrapSweep::~RewrapSweep() { Stop(); }

std::string RewrapSweep::StateKey() const { return absl::StrCat(options_.prefix, "rewrap"); }

absl::StatusOr<RewrapProgress> RewrapSweep::Load() {
  ASSIGN_OR_RETURN(Reply reply, client_->Call(RedisCommand({"HGETALL", StateKey()})));
  RewrapProgress p;
  if (!reply.is_array() || reply.elements.empty()) return p;
  for (size_t i = 0; i + 1 < reply.elements.size(); i += 2) {
    const std::string& f = reply.elements[i].str;
    const std::string& v = reply.elements[i + 1].str;
    if (f == "state") p.state = v;
    else if (f == "primary") p.primary = v;
    else if (f == "owner") p.owner = v;
    else if (f == "cursor") p.cursor = v;
    else if (f == "started") p.started = FromMicros(v);
    else if (f == "updated") p.updated = FromMicros(v);
    else if (f == "sessions") p.sessions = ToU64(v);
    else if (f == "opt_outs") p.opt_outs = ToU64(v);
    else if (f == "unsealed_opt_outs") p.unsealed_opt_outs = ToU64(v);
    else if (f == "conflicts") p.conflicts = ToU64(v);
    else if (f == "errors") p.errors = ToU64(v);
    else if (f == "last_error") p.last_error = v;
    else if (absl::StartsWith(f, "found:")) p.keys[f.substr(6)].found = ToU64(v);
    else if (absl::StartsWith(f, "rewrapped:")) p.keys[f.substr(10)].rewrapped = ToU64(v);
    else if (absl::StartsWith(f, "left:")) p.keys[f.substr(5)].left = ToU64(v);
    else if (absl::StartsWith(f, "unopenable:")) p.keys[f.substr(11)].unopenable = ToU64(v);
  }
  return p;
}

absl::Status RewrapSweep::Save(const RewrapProgress& p) {
  std::vector<std::string> args = {
      "HSET", StateKey(), "state", p.state, "primary", p.primary, "owner", p.owner,
      "cursor", p.cursor, "started", Micros(p.started), "updated", Micros(p.updated),
      "sessions", std::to_string(p.sessions), "opt_outs", std::to_string(p.opt_outs),
      "unsealed_opt_outs", std::to_string(p.unsealed_opt_outs),
      "conflicts", std::to_string(p.conflicts), "errors", std::to_string(p.errors),
      "last_error", p.last_error};
  for (const auto& [id, c] : p.keys) {
    args.insert(args.end(), {absl::StrCat("found:", id), std::to_string(c.found),
                             absl::StrCat("rewrapped:", id), std::to_string(c.rewrapped),
                             absl::StrCat("left:", id), std::to_string(c.left),
                             absl::StrCat("unopenable:", id), std::to_string(c.unopenable)});
  }
  return client_->Call(RedisCommand(std::move(args))).status();
}

absl::StatusOr<RewrapProgress> RewrapSweep::Start(double items_per_second) {
  absl::MutexLock start_lock(&start_mu_);
  {
    absl::MutexLock lock(&mu_);
    // A pass that has decided it is over (done or failed) may still be
    // saving that: it is joined below, and a new pass starts.
    if (running_ && progress_.state == "running") return progress_;
  }
  if (thread_.joinable()) thread_.join();  // a finished or failed run
  ASSIGN_OR_RETURN(RewrapProgress saved, Load());
  const std::string primary = sealer_->keyring().primary().id;
  RewrapProgress p;
  // Continue only a sweep to the same primary that did not finish: after a
  // done one (or towards another primary), start over, so values written
  // under an old key since are found too.
  if ((saved.state == "running" || saved.state == "failed") && saved.primary == primary) {
    p = std::move(saved);
  } else {
    p.primary = primary;
    p.started = clock_->Now();
    RETURN_IF_ERROR(client_->Call(RedisCommand({"DEL", StateKey()})).status());
  }
  p.state = "running";
  p.owner = options_.owner;
  rate_ = items_per_second > 0 ? items_per_second : options_.items_per_second;
  p.items_per_second = rate_;
  p.updated = clock_->Now();
  RETURN_IF_ERROR(Save(p));
  {
    absl::MutexLock lock(&mu_);
    progress_ = p;
    loaded_ = true;
    stop_ = false;
    running_ = true;
  }
  next_slot_ = absl::Now();
  thread_ = std::thread([this] { Run(); });
  return p;
}

absl::StatusOr<RewrapProgress> RewrapSweep::Progress() {
  {
    absl::MutexLock lock(&mu_);
    if (loaded_) return progress_;
  }
  ASSIGN_OR_RETURN(RewrapProgress saved, Load());
  // Saved as running but nobody here runs it: it was interrupted.
  if (saved.state == "running") saved.state = "interrupted";
  return saved;
}

void RewrapSweep::Stop() {
  absl::MutexLock start_lock(&start_mu_);
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

bool RewrapSweep::Pace() {
  const absl::Duration slot = absl::Seconds(1.0 / rate_);
  const absl::Time now = absl::Now();
  // No credit for idle time beyond one slot: a burst stays one key.
  next_slot_ = std::max(next_slot_ + slot, now);
  absl::MutexLock lock(&mu_);
  if (next_slot_ > now) {
    mu_.AwaitWithDeadline(absl::Condition(&stop_), next_slot_);
  }
  return !stop_;
}

void RewrapSweep::Run() {
  while (Batch()) {
  }
  absl::MutexLock lock(&mu_);
  running_ = false;
}

bool RewrapSweep::Batch() {
  std::string cursor;
  {
    absl::MutexLock lock(&mu_);
    if (stop_) return false;
    cursor = progress_.cursor;
  }
  // A SCAN batch is about COUNT keys; at most one second's worth. The SCAN
  // itself is paced too: over a keyspace of mostly other keys (indexes,
  // realtime) it would otherwise run back to back.
  const int count = std::clamp(static_cast<int>(rate_), 1, 100);
  if (!Pace()) return false;
  // On Redis Cluster every master is scanned in turn, in address order, and
  // the saved cursor is "<master> <cursor>"; standalone keeps the plain one.
  std::vector<std::string> masters = client_->MasterAddresses();
  std::sort(masters.begin(), masters.end());
  std::string master, node_cursor = cursor;
  if (masters.size() > 1) {
    const size_t space = cursor.find(' ');
    master = space == std::string::npos ? masters.front() : cursor.substr(0, space);
    node_cursor = space == std::string::npos ? "0" : cursor.substr(space + 1);
    if (!std::binary_search(masters.begin(), masters.end(), master)) {
      // That master is gone (failed over): start over. Revisiting a key is
      // harmless (every rewrap is a compare-and-set); skipping one is not.
      master = masters.front();
      node_cursor = "0";
    }
  }
  RedisCommand scan_command({"SCAN", node_cursor, "MATCH",
                             absl::StrCat(GlobEscape(options_.prefix), "[so]:{*"), "COUNT",
                             std::to_string(count)});
  absl::StatusOr<Reply> scan =
      master.empty() ? client_->Call(std::move(scan_command))
                     : std::move(client_->CallBatchOn(master, {std::move(scan_command)}).front());
  RewrapProgress delta;
  std::string next_cursor = cursor;
  bool ok = scan.ok() && scan->is_array() && scan->elements.size() == 2;
  if (ok) {
    next_cursor = scan->elements[0].str;
    if (!master.empty()) {
      auto next = std::upper_bound(masters.begin(), masters.end(), master);
      if (next_cursor != "0") {
        next_cursor = absl::StrCat(master, " ", next_cursor);
      } else if (next != masters.end()) {
        next_cursor = absl::StrCat(*next, " 0");
      }
    }
    const std::string session_prefix = absl::StrCat(options_.prefix, "s:{");
    for (const Reply& k : scan->elements[1].elements) {
      if (!Pace()) return false;  // the batch is redone by the next Start
      if (absl::StartsWith(k.str, session_prefix)) {
        VisitSession(k.str, delta);
      } else {
        VisitOptOut(k.str, delta);
      }
    }
  } else {
    delta.errors += 1;
    delta.last_error = scan.ok() ? "unexpected SCAN reply" : std::string(scan.status().message());
  }
  RewrapProgress snapshot;
  {
    absl::MutexLock lock(&mu_);
    Add(progress_, delta);
    progress_.cursor = next_cursor;
    progress_.updated = clock_->Now();
    if (!ok) {
      progress_.state = "failed";
    } else if (next_cursor == "0") {
      progress_.state = "done";
    }
    snapshot = progress_;
  }
  // A failed SCAN saves nothing new (the saved state continues): Start
  // resumes from the last saved batch.
  if (ok) {
    absl::Status saved = Save(snapshot);
    if (!saved.ok()) {
      absl::MutexLock lock(&mu_);
      progress_.state = "failed";
      progress_.last_error = std::string(saved.message());
      return false;
    }
  }
  return ok && snapshot.state == "running";
}

void RewrapSweep::VisitSession(const std::string& key, RewrapProgress& delta) {
  const std::string id(HashTagOf(key));
  absl::StatusOr<Reply> all = client_->Call(RedisCommand({"HGETALL", key}));
  if (!all.ok() || !all->is_array()) {
    delta.errors += 1;
    delta.last_error = all.ok() ? "unexpected HGETALL reply" : std::string(all.status().message());
    return;
  }
  std::map<std::string, std::string> fields;
  for (size_t i = 0; i + 1 < all->elements.size(); i += 2) {
    fields[all->elements[i].str] = all->elements[i + 1].str;
  }
  if (fields.empty() || fields.count("m:dead") != 0 || fields.count("m:ver") == 0) return;
  delta.sessions += 1;

  const crypto::Keyring& keyring = sealer_->keyring();
  std::string old_user_tag, new_user_tag;
  std::vector<std::string> triples;
  std::vector<std::string> triple_key_ids;
  auto visit = [&](const std::string& field, std::string_view name, const std::string& env) {
    const std::string kid(crypto::Sealer::KeyIdOf(env));
    const std::string label = kid.empty() ? "?" : kid;
    delta.keys[label].found += 1;
    // Under the primary in the current format: nothing to do. A version-1
    // envelope under the primary is resealed (to version 2) like any other.
    if (sealer_->IsCurrent(env)) return;
    if (kid.empty() || keyring.Find(kid) == nullptr) {
      delta.keys[label].left += 1;
      return;
    }
    absl::StatusOr<crypto::Opened> opened = sealer_->Open(id, name, env);
    if (!opened.ok()) {
      CountUnopenable(delta, kid, keyring.primary().id,
                      absl::StrCat("a value of a session under key ", kid, " did not open"));
      return;
    }
    absl::StatusOr<std::string> sealed = sealer_->Seal(id, name, opened->plaintext);
    if (!sealed.ok()) {
      delta.keys[label].left += 1;
      delta.errors += 1;
      delta.last_error = absl::StrCat("a value of a session under key ", kid, " did not reseal");
      return;
    }
    if (field == "m:uenv") {
      const std::string tag = crypto::Keyring::Blind(keyring.primary(), session::kUserIndexPurpose,
                                                     opened->plaintext);
      auto user = fields.find("m:user");
      if (user != fields.end() && user->second != tag) {
        old_user_tag = user->second;
        new_user_tag = tag;
      }
      // m:uenv goes first: the user tag moves only with it.
      triples.insert(triples.begin(), {field, env, *sealed});
      triple_key_ids.insert(triple_key_ids.begin(), label);
    } else {
      triples.insert(triples.end(), {field, env, *sealed});
      triple_key_ids.push_back(label);
    }
  };
  for (const auto& [field, value] : fields) {
    if (field == "m:uenv") {
      visit(field, session::kUserEnvelopeName, value);
    } else if (absl::StartsWith(field, "a:")) {
      visit(field, std::string_view(field).substr(2), value);
    }
  }
  // The metadata seal last: it names the user tag, so it is resealed with
  // the tag the session moves to (and changes only if the rest did).
  if (auto seal = fields.find("m:seal"); seal != fields.end()) {
    const std::string kid(crypto::Sealer::KeyIdOf(seal->second));
    const std::string label = kid.empty() ? "?" : kid;
    delta.keys[label].found += 1;
    if (!sealer_->IsCurrent(seal->second) || !new_user_tag.empty()) {
      absl::StatusOr<crypto::Opened> opened = kid.empty() || keyring.Find(kid) == nullptr
                                                  ? absl::NotFoundError("unknown key id")
                                                  : sealer_->Open(id, session::kMetadataSealName, seal->second);
      absl::StatusOr<std::string> sealed;
      if (!opened.ok()) {
        sealed = opened.status();
        if (!kid.empty() && keyring.Find(kid) != nullptr) {
          CountUnopenable(delta, kid, keyring.primary().id,
                          absl::StrCat("a metadata seal under key ", kid, " did not open"));
        } else {
          delta.keys[label].left += 1;
        }
      } else {
        absl::StatusOr<std::string> plaintext =
            new_user_tag.empty() ? std::move(opened->plaintext)
                                 : session::RetagMetadataPlaintext(std::move(opened->plaintext),
                                                          old_user_tag, new_user_tag);
        sealed = plaintext.ok() ? sealer_->Seal(id, session::kMetadataSealName, *plaintext)
                                : plaintext.status();
      }
      if (!sealed.ok()) {
        if (opened.ok()) {
          delta.keys[label].left += 1;
          delta.errors += 1;
          delta.last_error = absl::StrCat("a metadata seal under key ", label, " did not reseal");
        }
        if (!new_user_tag.empty()) {
          // The user tag may move only with the seal that names it: the
          // session stays as it is, every value of it left.
          for (const std::string& kid : triple_key_ids) {
            if (kid != keyring.primary().id) delta.keys[kid].left += 1;
          }
          return;
        }
      } else {
        triples.insert(triples.end(), {"m:seal", seal->second, *sealed});
        triple_key_ids.push_back(label);
      }
    }
  }
  if (triples.empty()) return;
  const std::string old_index = absl::StrCat(options_.prefix, "u:{", old_user_tag, "}");
  const std::string new_index = absl::StrCat(options_.prefix, "u:{", new_user_tag, "}");
  if (!new_user_tag.empty()) {
    // Listed under the new tag before m:user moves: a listing of the old tag
    // prunes the entry as soon as m:user has moved, so the session is never
    // out of both indexes ("log out everywhere" walks every tag). An entry
    // left in the new index by a script that then changes nothing is pruned
    // by the next listing (its m:user is not that tag).
    auto abs = fields.find("m:abs");
    absl::StatusOr<Reply> added =
        abs == fields.end()
            ? absl::InternalError("the session has no m:abs")
            : client_->Call(index_add_->Call({new_index}, {Micros(clock_->Now()), id, abs->second}));
    if (!added.ok()) {
      for (const std::string& kid : triple_key_ids) delta.keys[kid].left += 1;
      delta.errors += 1;
      delta.last_error = absl::StrCat("index entry under the new user tag: ",
                                      added.status().message());
      return;
    }
  }
  std::vector<std::string> args = {old_user_tag, new_user_tag};
  args.insert(args.end(), triples.begin(), triples.end());
  absl::StatusOr<Reply> reply = client_->Call(rewrap_session_->Call({key}, std::move(args)));
  if (!reply.ok() || !reply->is_array() || reply->elements.empty()) {
    for (const std::string& kid : triple_key_ids) delta.keys[kid].left += 1;
    delta.errors += 1;
    delta.last_error = reply.ok() ? "unexpected rewrap reply" : std::string(reply.status().message());
    return;
  }
  if (reply->elements[0].integer == 0) {  // destroyed meanwhile: nothing left
    delta.conflicts += triple_key_ids.size();
    return;
  }
  for (size_t i = 0; i < triple_key_ids.size() && 3 + i < reply->elements.size(); ++i) {
    if (reply->elements[3 + i].integer == 1) {
      delta.keys[triple_key_ids[i]].rewrapped += 1;
    } else {
      delta.conflicts += 1;  // rewritten meanwhile, under the writer's primary
    }
  }
  if (reply->elements[1].integer == 1) {
    // Listed under the primary's user tag already (above); the old entry
    // would be pruned by a listing anyway.
    (void)client_->Call(RedisCommand({"ZREM", old_index, id}));
  }
}

void RewrapSweep::VisitOptOut(const std::string& key, RewrapProgress& delta) {
  const std::string_view tag = HashTagOf(key);
  absl::StatusOr<Reply> got = client_->Call(RedisCommand({"GET", key}));
  if (!got.ok()) {
    delta.errors += 1;
    delta.last_error = std::string(got.status().message());
    return;
  }
  if (got->is_nil()) return;  // expired or cleared meanwhile
  delta.opt_outs += 1;
  absl::Time expiry;
  std::string_view sealed_subject;
  if (!got->is_string() || !ParseOptOutValue(got->str, &expiry, &sealed_subject)) {
    delta.errors += 1;
    delta.last_error = "an opt-out flag that is not one";
    return;
  }
  if (sealed_subject.empty()) {
    delta.unsealed_opt_outs += 1;
    return;
  }
  const crypto::Keyring& keyring = sealer_->keyring();
  const std::string kid(crypto::Sealer::KeyIdOf(sealed_subject));
  const std::string label = kid.empty() ? "?" : kid;
  delta.keys[label].found += 1;
  // A subject under the primary stays, in either envelope version: the flag
  // is re-filed only when its tag changes (a refile onto its own key would
  // drop it), and a version-1 subject under the primary still opens and
  // needs no retired key. The next write of the flag seals it anew.
  if (kid == keyring.primary().id) return;
  if (kid.empty() || keyring.Find(kid) == nullptr) {
    delta.keys[label].left += 1;
    return;
  }
  absl::StatusOr<crypto::Opened> subject =
      sealer_->Open(tag, OptOutManager::kSealedSubjectName, sealed_subject);
  if (!subject.ok()) {
    CountUnopenable(delta, kid, keyring.primary().id,
                    absl::StrCat("an opt-out subject under key ", kid, " did not open"));
    return;
  }
  const std::string new_tag =
      crypto::Keyring::Blind(keyring.primary(), OptOutManager::kPurpose, subject->plaintext);
  absl::StatusOr<std::string> sealed =
      sealer_->Seal(new_tag, OptOutManager::kSealedSubjectName, subject->plaintext);
  absl::StatusOr<int> moved =
      sealed.ok() ? RefileOptOut(*client_, key, absl::StrCat(options_.prefix, "o:{", new_tag, "}"),
                                 got->str, *sealed)
                  : sealed.status();
  if (!moved.ok()) {
    delta.keys[label].left += 1;
    delta.errors += 1;
    delta.last_error = std::string(moved.status().message());
  } else if (*moved == 1) {
    delta.keys[label].rewrapped += 1;
  } else {
    delta.conflicts += 1;  // changed or cleared meanwhile: the writer won
  }
}

}  // namespace stateside::redis
