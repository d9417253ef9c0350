// RedisSessionStore: the SessionStore contract over Redis hashes and Lua.
//
// Key layout (also in docs/REDIS_KEYS.md; <p> is the prefix, "stateside:" by
// default; {..} is a Cluster hash tag, so every script touches one slot):
//
//   <p>s:{<session id>}   hash, one per session
//       m:ver      version (decimal)           m:created  created (µs)
//       m:last     last access (µs)            m:idle     idle TTL (µs)
//       m:abs      absolute expiry (µs)        m:user     blinded user tag ("" = anonymous)
//       m:uenv     sealed user id envelope     m:n, m:sz  attribute count, name+envelope bytes
//       m:seal     metadata seal: an envelope over created, idle, abs, user
//                  tag and user id (session_manager.cc); the scripts keep
//                  deciding liveness from the plain fields, the sidecar
//                  refuses a session whose fields differ from the seal
//       a:<name>   sealed attribute envelope (the "a:" prefix keeps names from
//                  ever colliding with metadata)
//     A destroyed session is the same key holding only
//       m:dead     tombstone_until (µs)
//       m:next     (a Regenerate's retired id only) the id it moved to
//     so a late Update or Get answers NOT_FOUND and Create answers
//     ALREADY_EXISTS until then.
//   <p>u:{<user tag>}     sorted set: member = session id, score = absolute
//                         expiry (µs). Its own slot: updated by separate
//                         commands pipelined with the session script, never
//                         inside it. Stale members are pruned when listed.
//                         Its script index_add_capped is the one atomic
//                         check of a user's session cap (CreateCapped).
//   <p>e:{<user tag>}     string: the user's revocation epoch (INCR and
//                         PEXPIRE in one script by a logout-everywhere;
//                         see store.h). Same slot as the
//                         index, expires with the user's last possible session.
//   <p>o:{<subject tag>}  opt-out flag (redis_opt_out_store.cc).
//
// Liveness is decided from the stored times and the caller's `now`, never from
// Redis's clock. Every key also carries a PEXPIRE of (its expiry - now) as a
// garbage-collection backstop; relative rather than PEXPIREAT so that clock
// skew between instances and Redis (or a test's fake clock) cannot drop a live
// key early. No KEYS, no SCAN (only the rewrap sweep scans), no keyspace
// notifications: everything is found from an id or a user tag.
//
// Values are envelopes sealed by the session rules and tags are keyed blind
// indexes: nothing here is readable in the clear.
#include "sidecar/redis/redis_session_store.h"

#include <algorithm>
#include <iterator>
#include <tuple>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "sidecar/common/not_found.h"
#include "sidecar/common/status_macros.h"
#include "sidecar/redis/session_scripts.h"

namespace stateside::redis {
namespace {

constexpr const char* kMetaFields[] = {"m:ver", "m:created", "m:last", "m:idle", "m:abs",
                                       "m:user", "m:uenv",    "m:dead", "m:seal",
                                       "m:next"};

std::string Micros(absl::Time t) { return std::to_string(absl::ToUnixMicros(t)); }

// Milliseconds for a PEXPIRE, at least 1 (0 or less would delete the key).
std::string TtlMillis(absl::Time expiry, absl::Time now) {
  const int64_t ms = absl::ToInt64Milliseconds(absl::Ceil(expiry - now, absl::Milliseconds(1)));
  return std::to_string(std::max<int64_t>(1, ms));
}

absl::Status Unexpected(absl::string_view what, const Reply& reply) {
  return absl::InternalError(absl::StrCat("redis session store: unexpected reply to ", what,
                                          " (type ", static_cast<int>(reply.type), ")"));
}

// Integers come back as integer replies or as the decimal strings stored.
bool ToInt(const Reply& r, int64_t* out) {
  if (r.is_integer()) {
    *out = r.integer;
    return true;
  }
  return r.is_string() && absl::SimpleAtoi(r.str, out);
}

bool ToUint(const Reply& r, uint64_t* out) {
  if (r.is_integer()) {
    if (r.integer < 0) return false;
    *out = static_cast<uint64_t>(r.integer);
    return true;
  }
  return r.is_string() && absl::SimpleAtoi(r.str, out);
}

// Fills the metadata of `out` from 7 replies: ver, created, last, idle, abs,
// user tag, user envelope.
bool ParseMeta(const Reply* f, session::StoredSession* out) {
  int64_t created, last, idle, abs;
  if (!ToUint(f[0], &out->version) || !ToInt(f[1], &created) || !ToInt(f[2], &last) ||
      !ToInt(f[3], &idle) || !ToInt(f[4], &abs)) {
    return false;
  }
  out->created = absl::FromUnixMicros(created);
  out->last_access = absl::FromUnixMicros(last);
  out->idle_ttl = absl::Microseconds(idle);
  out->absolute_expiry = absl::FromUnixMicros(abs);
  out->user_tag = f[5].is_string() ? f[5].str : "";
  out->user_envelope = f[6].is_string() ? f[6].str : "";
  return true;
}

// A field of a hash reply that is an attribute ("a:<name>") goes into
// out->attributes; false for any other. The reply is the caller's to spend:
// the envelope (a session's whole payload) is moved out, not copied.
bool TakeAttribute(Reply& field, Reply& value, session::StoredSession* out) {
  if (!absl::StartsWith(field.str, "a:")) return false;
  field.str.erase(0, 2);
  out->attributes.insert_or_assign(std::move(field.str), std::move(value.str));
  return true;
}

}  // namespace

RedisSessionStore::RedisSessionStore(RedisClient* client, std::string prefix,
                                     SessionNearCache* near_cache)
    : client_(client),
      prefix_(std::move(prefix)),
      near_cache_(near_cache),
      create_(RedisScript::Create(scripts::kCreate)),
      get_(RedisScript::Create(scripts::kGet)),
      update_(RedisScript::Create(scripts::kUpdate)),
      destroy_(RedisScript::Create(scripts::kDestroy)),
      reap_(RedisScript::Create(scripts::kReap)),
      index_add_(RedisScript::Create(scripts::kIndexAdd)),
      index_add_capped_(RedisScript::Create(scripts::kIndexAddCapped)),
      index_page_(RedisScript::Create(scripts::kIndexPage)),
      epoch_advance_(RedisScript::Create(scripts::kEpochAdvance)) {}

std::string RedisSessionStore::SessionKey(std::string_view id) const {
  return absl::StrCat(prefix_, "s:{", absl::string_view(id.data(), id.size()), "}");
}

std::string RedisSessionStore::UserIndexKey(std::string_view user_tag) const {
  return absl::StrCat(prefix_, "u:{", absl::string_view(user_tag.data(), user_tag.size()), "}");
}

std::string RedisSessionStore::UserEpochKey(std::string_view user_tag) const {
  return absl::StrCat(prefix_, "e:{", absl::string_view(user_tag.data(), user_tag.size()), "}");
}

absl::StatusOr<int64_t> RedisSessionStore::EstimateLiveSessions(int samples) {
  samples = std::max(samples, 1);
  // Per master (Redis Cluster: each holds its own keys; standalone: one):
  // its DBSIZE times the live share of its samples.
  const std::vector<std::string> masters = client_->MasterAddresses();
  if (masters.empty()) return absl::UnavailableError("redis: no master known");
  const int per_master = std::max<int>(1, samples / static_cast<int>(masters.size()));
  const std::string session_prefix = absl::StrCat(prefix_, "s:{");
  int64_t total = 0;
  for (const std::string& master : masters) {
    std::vector<RedisCommand> sample;
    sample.push_back(RedisCommand({"DBSIZE"}));
    for (int i = 0; i < per_master; ++i) sample.push_back(RedisCommand({"RANDOMKEY"}));
    std::vector<absl::StatusOr<Reply>> keys = client_->CallBatchOn(master, std::move(sample));
    for (const auto& r : keys) RETURN_IF_ERROR(r.status());
    int64_t size = 0;
    if (!ToInt(*keys[0], &size)) return Unexpected("DBSIZE", *keys[0]);
    std::vector<RedisCommand> checks;
    for (size_t i = 1; i < keys.size(); ++i) {
      if (keys[i]->is_string() && absl::StartsWith(keys[i]->str, session_prefix)) {
        checks.push_back(RedisCommand({"HEXISTS", keys[i]->str, "m:dead"}));
      }
    }
    if (size <= 0 || checks.empty()) continue;
    int64_t live = 0;
    for (const auto& r : client_->CallBatch(std::move(checks))) {
      RETURN_IF_ERROR(r.status());
      int64_t tombstone = 1;
      if (ToInt(*r, &tombstone) && tombstone == 0) ++live;
    }
    total += (size * live + per_master / 2) / per_master;
  }
  return total;
}

std::optional<RedisCommand> RedisSessionStore::IndexStep(const session::StoredSession& s) const {
  if (s.user_tag.empty()) return std::nullopt;
  return index_add_->Call({UserIndexKey(s.user_tag)},
                          {Micros(s.last_access), s.id, Micros(s.absolute_expiry)});
}

absl::Status RedisSessionStore::Create(const session::StoredSession& s) {
  return WriteNew(s, IndexStep(s)).status();
}

void RedisSessionStore::CreateAsync(const session::StoredSession& s,
                                    absl::AnyInvocable<void(absl::Status) &&> done) {
  client_->ExecuteBatch(WriteNewBatch(s, IndexStep(s)),
                        [done = std::move(done)](std::vector<absl::StatusOr<Reply>> results) mutable {
                          std::move(done)(ParseWriteNew(std::move(results)).status());
                        });
}

absl::StatusOr<std::vector<std::string>> RedisSessionStore::CreateCapped(const session::StoredSession& s,
                                                                         const session::UserCap& cap) {
  const absl::Time now = s.last_access;
  ASSIGN_OR_RETURN(
      Reply index,
      WriteNew(s, index_add_capped_->Call({UserIndexKey(s.user_tag)},
                                          {Micros(now), s.id, Micros(s.absolute_expiry),
                                           std::to_string(cap.max_sessions),
                                           cap.end_oldest ? "1" : "0"})));
  int64_t added = 0;
  if (!index.is_array() || index.elements.size() != 2 || !ToInt(index.elements[0], &added)) {
    return Unexpected("index add (capped)", index);
  }
  if (added == 0) {
    // Refused: the new hash goes again. Its id was never handed out, and the
    // session script wrote it (the id was free), so nothing else is deleted.
    RedisCommand drop({"DEL", SessionKey(s.id)});
    drop.durable = true;
    RETURN_IF_ERROR(client_->Call(std::move(drop)).status());
    return absl::FailedPreconditionError(
        absl::StrCat("the user has ", index.elements[1].integer,
                     " live sessions; the limit is ", cap.max_sessions));
  }
  if (!index.elements[1].is_array()) return Unexpected("index add (capped)", index);
  // The oldest, still indexed: ended one round trip after the index step
  // (they live in other slots). Ids met dead were not live to end. The new
  // session is written and indexed by now, so a failed Destroy does not
  // fail the call (its caller would never learn the new session, which would
  // still count against the cap): that member stays indexed, and the next
  // capped add names it again.
  std::vector<std::string> ended;
  for (const Reply& member : index.elements[1].elements) {
    absl::StatusOr<bool> live = Destroy(member.str, now, cap.tombstone_until);
    if (live.ok() && *live) ended.push_back(member.str);
  }
  return ended;
}

absl::StatusOr<Reply> RedisSessionStore::WriteNew(const session::StoredSession& s,
                                                  std::optional<RedisCommand> index_step) {
  return ParseWriteNew(client_->CallBatch(WriteNewBatch(s, std::move(index_step))));
}

std::vector<RedisCommand> RedisSessionStore::WriteNewBatch(
    const session::StoredSession& s, std::optional<RedisCommand> index_step) const {
  const absl::Time now = s.last_access;
  size_t bytes = 0;
  std::vector<std::string> args = {
      Micros(now),
      TtlMillis(std::min(s.last_access + s.idle_ttl, s.absolute_expiry), now),
      "m:ver", std::to_string(s.version),
      "m:created", Micros(s.created),
      "m:last", Micros(s.last_access),
      "m:idle", std::to_string(absl::ToInt64Microseconds(s.idle_ttl)),
      "m:abs", Micros(s.absolute_expiry),
      "m:user", s.user_tag,
      "m:uenv", s.user_envelope,
      "m:seal", s.metadata_seal};
  for (const auto& [name, envelope] : s.attributes) {
    args.push_back(absl::StrCat("a:", name));
    args.push_back(envelope);
    bytes += name.size() + envelope.size();
  }
  args.insert(args.end(), {"m:n", std::to_string(s.attributes.size()), "m:sz",
                           std::to_string(bytes)});
  std::vector<RedisCommand> batch;
  batch.push_back(create_->Call({SessionKey(s.id)}, std::move(args)));
  batch.back().durable = true;  // acknowledged: WAIT for replicas if configured
  // The index entry rides in the same round trip. Should the id turn out to
  // be taken, the entry is harmless: a listing checks each member's record.
  // It is acknowledged with the session, so it waits for the replicas too:
  // on Cluster it lives on another node, whose WAIT the session's does not
  // cover, and a session missing from its user's index would outlive a
  // "log out everywhere".
  if (index_step.has_value()) {
    batch.push_back(*std::move(index_step));
    batch.back().durable = true;
  }
  return batch;
}

absl::StatusOr<Reply> RedisSessionStore::ParseWriteNew(
    std::vector<absl::StatusOr<Reply>> results) {
  for (const auto& r : results) RETURN_IF_ERROR(r.status());
  int64_t created = 0;
  if (!ToInt(*results[0], &created)) return Unexpected("create", *results[0]);
  if (created == 0) return absl::AlreadyExistsError("session id already used");
  if (results.size() < 2) return Reply();
  return *std::move(results[1]);
}

RedisCommand RedisSessionStore::ReadCommand(std::string_view id,
                                            const session::ReadOptions& options) const {
  if (!options.metadata_only) return RedisCommand({"HGETALL", SessionKey(id)});
  RedisCommand hmget({"HMGET", SessionKey(id)});
  for (const char* field : kMetaFields) hmget.args.push_back(field);
  return hmget;
}

absl::StatusOr<bool> RedisSessionStore::ParseRead(std::string_view id,
                                                  const session::ReadOptions& options,
                                                  absl::StatusOr<Reply> result,
                                                  session::StoredSession* out) {
  if (!result.ok()) return result.status();
  constexpr size_t kFields = std::size(kMetaFields);
  std::vector<Reply> meta;
  if (options.metadata_only) {
    if (!result->is_array() || result->elements.size() != kFields) {
      return Unexpected("HMGET", *result);
    }
    meta = std::move(result->elements);
  } else {
    if (!result->is_array() || result->elements.size() % 2 != 0) {
      return Unexpected("HGETALL", *result);
    }
    // The whole hash: the metadata by name, the "a:" fields as the
    // attributes.
    meta.resize(kFields);
    std::vector<Reply>& fields = result->elements;
    out->attributes.reserve(fields.size() / 2);  // a few too many: the metadata's
    for (size_t i = 0; i < fields.size(); i += 2) {
      if (TakeAttribute(fields[i], fields[i + 1], out)) continue;
      const auto known =
          std::find(std::begin(kMetaFields), std::end(kMetaFields), fields[i].str);
      if (known != std::end(kMetaFields)) {
        meta[known - std::begin(kMetaFields)] = std::move(fields[i + 1]);
      }
    }
  }
  if (meta[0].is_nil() || !meta[7].is_nil()) return SessionNotFound();  // absent, tombstone
  out->id = std::string(id);
  if (!ParseMeta(meta.data(), out)) return Unexpected("read", *result);
  out->metadata_seal = meta[8].is_string() ? meta[8].str : "";
  return out->LiveAt(options.now) &&
         !session::TouchDue(options, out->last_access, out->idle_ttl);
}

bool RedisSessionStore::ScriptFirst(const session::ReadOptions& options) {
  return options.touch && options.touch_granularity <= absl::ZeroDuration();
}

RedisCommand RedisSessionStore::GetCommand(std::string_view id,
                                           const session::ReadOptions& options) const {
  return get_->Call({SessionKey(id)},
                    {Micros(options.now), options.touch ? "1" : "0",
                     options.metadata_only ? "1" : "0",
                     std::to_string(absl::ToInt64Microseconds(options.touch_granularity))});
}

absl::StatusOr<session::StoredSession> RedisSessionStore::ParseGet(std::string_view id,
                                                          absl::StatusOr<Reply> result) {
  if (!result.ok()) return result.status();
  const Reply& reply = *result;
  if (!reply.is_array() || reply.elements.empty()) return Unexpected("get", reply);
  const std::vector<Reply>& e = reply.elements;
  if (e[0].is_integer() && e[0].integer == 0) return SessionNotFound();
  if (e[0].is_integer() && e[0].integer == 2) return session::ExpiredNotFound();
  session::StoredSession out;
  out.id = std::string(id);
  if (e.size() != 10 || !ParseMeta(&e[1], &out) || !e[8].is_array()) {
    return Unexpected("get", reply);
  }
  out.metadata_seal = e[9].is_string() ? e[9].str : "";
  // The whole hash: keep the "a:" fields.
  std::vector<Reply>& fields = result->elements[8].elements;
  for (size_t i = 0; i + 1 < fields.size(); i += 2) TakeAttribute(fields[i], fields[i + 1], &out);
  return out;
}

RedisSessionStore::CachedRead RedisSessionStore::StartRead(std::string_view id,
                                                           const session::ReadOptions& options) {
  CachedRead started;
  started.client = client_;
  if (near_cache_ == nullptr) return started;
  const std::string key = SessionKey(id);
  started.hit = near_cache_->Lookup(key, options);
  // A metadata read has no attributes to cache.
  if (started.hit.has_value() || options.metadata_only) return started;
  started.fill = near_cache_->BeginFill(key);
  if (started.fill->client != nullptr) started.client = started.fill->client;
  return started;
}

void RedisSessionStore::EndRead(SessionNearCache* cache, const CachedRead& started,
                                const absl::StatusOr<bool>& settled,
                                const session::StoredSession& read) {
  if (!started.fill.has_value()) return;
  cache->EndFill(*started.fill, settled.ok() && *settled ? &read : nullptr);
}

void RedisSessionStore::Written(std::string_view id) {
  if (near_cache_ != nullptr) near_cache_->Invalidate(SessionKey(id));
}

std::function<void()> RedisSessionStore::WrittenLater(std::string_view id) const {
  if (near_cache_ == nullptr) return [] {};
  return [cache = near_cache_, key = SessionKey(id)] { cache->Invalidate(key); };
}

absl::StatusOr<session::StoredSession> RedisSessionStore::Get(std::string_view id,
                                                     const session::ReadOptions& options) {
  if (!ScriptFirst(options)) {
    CachedRead started = StartRead(id, options);
    if (started.hit.has_value()) return *std::move(started.hit);
    session::StoredSession read;
    absl::StatusOr<Reply> reply = started.client->Call(ReadCommand(id, options));
    if (ReaderFailed(started, reply)) {
      // The near cache's reader is down, not Redis: read with our client.
      EndRead(near_cache_, started, reply.status(), read);
      started.fill.reset();
      reply = client_->Call(ReadCommand(id, options));
    }
    const absl::StatusOr<bool> settled = ParseRead(id, options, std::move(reply), &read);
    EndRead(near_cache_, started, settled, read);
    RETURN_IF_ERROR(settled.status());
    if (*settled) return read;
  }
  absl::StatusOr<session::StoredSession> got =
      ParseGet(id, client_->Call(GetCommand(id, options)));
  Written(id);
  return got;
}

bool RedisSessionStore::ReaderFailed(const CachedRead& started,
                                     const absl::StatusOr<Reply>& reply) {
  return started.fill.has_value() && started.fill->client != nullptr &&
         absl::IsUnavailable(reply.status());
}

// What an asynchronous Get or Update keeps across its round trip, with its
// call (session::StoreCall). The callbacks reach the near cache through it,
// without the store: the clients fail what is outstanding (running them)
// when destroyed, after the store.
struct RedisSessionStore::CallState final : session::StoreCall::State {
  SessionNearCache* cache = nullptr;
  CachedRead started;  // a plain read's fill
  std::string key;     // the session's key, for the near cache once written
  std::optional<uint64_t> expected_version;  // an Update's
};

RedisSessionStore::CallState& RedisSessionStore::StateOf(session::StoreCall* call) const {
  CallState& state = call->StateOf<CallState>();
  state.cache = near_cache_;
  return state;
}

void RedisSessionStore::GetAsync(std::string_view id, const session::ReadOptions& options,
                                 Done<session::StoredSession> done) {
  session::StoreCall* call = session::StoreCall::Alone(id, std::move(done));
  call->options = options;
  GetAsync(call);
}

void RedisSessionStore::GetAsync(session::StoreCall* call) {
  GetAsync(call, /*on_store_client=*/false);
}

void RedisSessionStore::GetAsync(session::StoreCall* call, bool on_store_client) {
  if (ScriptFirst(call->options)) return GetByScript(call);
  CachedRead started;
  started.client = client_;
  if (!on_store_client) started = StartRead(call->id, call->options);
  if (started.hit.has_value()) return call->Finish(*std::move(started.hit));
  RedisClient* client = started.client;
  StateOf(call).started = std::move(started);
  client->Execute(ReadCommand(call->id, call->options),
                  [this, call](absl::StatusOr<Reply> reply) { ReadDone(this, call, std::move(reply)); });
}

void RedisSessionStore::ReadDone(RedisSessionStore* store, session::StoreCall* call,
                                 absl::StatusOr<Reply> reply) {
  auto& state = call->StateOf<CallState>();
  if (ReaderFailed(state.started, reply)) {
    // The near cache's reader is down, not Redis: read again with our
    // client (the cache is closed before the store goes, so `store` is
    // alive here).
    session::StoredSession none;
    EndRead(state.cache, state.started, reply.status(), none);
    state.started.fill.reset();
    return store->GetAsync(call, /*on_store_client=*/true);
  }
  session::StoredSession read;
  absl::StatusOr<bool> settled = ParseRead(call->id, call->options, std::move(reply), &read);
  EndRead(state.cache, state.started, settled, read);
  state.started.fill.reset();
  if (!settled.ok()) return call->Finish(settled.status());
  if (*settled) return call->Finish(std::move(read));
  // Past here only with an answer: the store is still there.
  store->GetByScript(call);
}

void RedisSessionStore::GetByScript(session::StoreCall* call) {
  CallState& state = StateOf(call);
  if (near_cache_ != nullptr) state.key = SessionKey(call->id);
  client_->Execute(GetCommand(call->id, call->options), [call](absl::StatusOr<Reply> reply) {
    // The script may have touched or reaped the session.
    WrittenBy(call);
    call->Finish(ParseGet(call->id, std::move(reply)));
  });
}

void RedisSessionStore::WrittenBy(session::StoreCall* call) {
  const CallState& state = call->StateOf<CallState>();
  if (state.cache != nullptr) state.cache->Invalidate(state.key);
}

RedisCommand RedisSessionStore::UpdateCommand(std::string_view id, const session::Mutation& m) const {
  std::vector<std::string> args = {
      Micros(m.now),
      m.expected_version.has_value() ? std::to_string(*m.expected_version) : "",
      std::to_string(m.limits.max_attributes),
      std::to_string(m.limits.max_total_bytes),
      std::to_string(m.set.size()),
      std::to_string(absl::ToInt64Microseconds(m.touch_granularity))};
  args.reserve(args.size() + 2 * m.set.size() + m.remove.size());
  for (const auto& [name, envelope] : m.set) {
    args.push_back(name);
    args.push_back(envelope);
  }
  for (const std::string& name : m.remove) args.push_back(name);
  RedisCommand update = update_->Call({SessionKey(id)}, std::move(args));
  update.durable = true;
  return update;
}

absl::StatusOr<session::StoredSession> RedisSessionStore::Update(std::string_view id, const session::Mutation& m) {
  absl::StatusOr<Reply> reply = client_->Call(UpdateCommand(id, m));
  Written(id);
  return ParseUpdate(id, m.expected_version, std::move(reply));
}

void RedisSessionStore::UpdateAsync(std::string_view id, const session::Mutation& m,
                                    Done<session::StoredSession> done) {
  SendUpdate(session::StoreCall::Alone(id, std::move(done)), m);
}

void RedisSessionStore::UpdateAsync(session::StoreCall* call) { SendUpdate(call, call->mutation); }

void RedisSessionStore::SendUpdate(session::StoreCall* call, const session::Mutation& m) {
  CallState& state = StateOf(call);
  if (near_cache_ != nullptr) state.key = SessionKey(call->id);
  state.expected_version = m.expected_version;
  client_->Execute(UpdateCommand(call->id, m), [call](absl::StatusOr<Reply> reply) {
    WrittenBy(call);
    call->Finish(ParseUpdate(call->id, call->StateOf<CallState>().expected_version,
                             std::move(reply)));
  });
}

absl::StatusOr<session::StoredSession> RedisSessionStore::ParseUpdate(
    std::string_view id, std::optional<uint64_t> expected_version,
    absl::StatusOr<Reply> result) {
  if (!result.ok()) return result.status();
  const Reply& reply = *result;
  if (!reply.is_array() || reply.elements.empty()) return Unexpected("update", reply);
  const std::vector<Reply>& e = reply.elements;
  int64_t code = -1;
  ToInt(e[0], &code);
  switch (code) {
    case 0:
      return SessionNotFound();
    case 2: {
      const std::string current = e.size() > 1 ? e[1].str : "?";
      return absl::AbortedError(absl::StrCat("session version is ", current, ", expected ",
                                             expected_version.value_or(0)));
    }
    case 3: {
      int64_t value = 0;
      if (e.size() != 4 || !ToInt(e[2], &value)) return Unexpected("update", reply);
      const bool count = e[1].str == "max_attributes";
      return absl::InvalidArgumentError(
          absl::StrCat(count ? "the session would have " : "the session would hold ", value,
                       count ? " attributes; the limit (" : " bytes; the limit (", e[1].str,
                       ") is ", e[3].str));
    }
    case 1:
      break;
    default:
      return Unexpected("update", reply);
  }
  session::StoredSession out;
  out.id = std::string(id);
  if (e.size() != 9 || !ParseMeta(&e[1], &out)) return Unexpected("update", reply);
  out.metadata_seal = e[8].is_string() ? e[8].str : "";
  return out;
}

absl::StatusOr<bool> RedisSessionStore::Destroy(std::string_view id, absl::Time now,
                                                absl::Time tombstone_until) {
  ASSIGN_OR_RETURN(int64_t live,
                   Tombstone(id, {Micros(now), Micros(tombstone_until)}));
  return live == 1;
}

absl::Status RedisSessionStore::Retire(std::string_view id, uint64_t expected_version,
                                       std::string_view successor, absl::Time now,
                                       absl::Time tombstone_until) {
  ASSIGN_OR_RETURN(int64_t code,
                   Tombstone(id, {Micros(now), Micros(tombstone_until),
                                  std::to_string(expected_version), std::string(successor)}));
  if (code == 2) {
    return absl::AbortedError(
        absl::StrCat("session version moved from ", expected_version, " during Regenerate"));
  }
  if (code != 1) return SessionNotFound();
  return absl::OkStatus();
}

void RedisSessionStore::DestroyAsync(std::string_view id, absl::Time now,
                                     absl::Time tombstone_until, Done<bool> done) {
  client_->Execute(
      TombstoneCommand(id, {Micros(now), Micros(tombstone_until)}),
      [this, written = WrittenLater(id), id = std::string(id),
       done = std::move(done)](absl::StatusOr<Reply> reply) mutable {
        written();
        // Past here only with an answer: the store is still there.
        absl::StatusOr<std::pair<int64_t, std::string>> tombstoned =
            ParseTombstone(std::move(reply));
        if (!tombstoned.ok()) return std::move(done)(tombstoned.status());
        const bool live = tombstoned->first == 1;
        if (tombstoned->second.empty()) return std::move(done)(live);
        // As Tombstone: the index entry's removal, answered after it (its
        // failure ignored), so the index is as the blocking form leaves it.
        client_->Execute(RedisCommand({"ZREM", UserIndexKey(tombstoned->second), std::move(id)}),
                         [live, done = std::move(done)](absl::StatusOr<Reply>) mutable {
                           std::move(done)(live);
                         });
      });
}

RedisCommand RedisSessionStore::TombstoneCommand(std::string_view id,
                                                 std::vector<std::string> args) const {
  RedisCommand destroy = destroy_->Call({SessionKey(id)}, std::move(args));
  destroy.durable = true;
  return destroy;
}

absl::StatusOr<std::pair<int64_t, std::string>> RedisSessionStore::ParseTombstone(
    absl::StatusOr<Reply> result) {
  if (!result.ok()) return result.status();
  Reply& reply = *result;
  int64_t code = 0;
  if (!reply.is_array() || reply.elements.size() != 2 || !ToInt(reply.elements[0], &code)) {
    return Unexpected("destroy", reply);
  }
  // A Retire that found the version moved leaves the index alone.
  if (code == 2) return std::make_pair(code, std::string());
  return std::make_pair(code, std::move(reply.elements[1].str));
}

absl::StatusOr<int64_t> RedisSessionStore::Tombstone(std::string_view id,
                                                     std::vector<std::string> args) {
  absl::StatusOr<Reply> reply = client_->Call(TombstoneCommand(id, std::move(args)));
  Written(id);
  ASSIGN_OR_RETURN(auto tombstoned, ParseTombstone(std::move(reply)));
  const auto& [code, user_tag] = tombstoned;
  if (!user_tag.empty()) {
    // A second round trip, since the index lives in another slot. Should it
    // fail, the session is already a tombstone and a listing prunes the entry.
    (void)client_->Call(RedisCommand({"ZREM", UserIndexKey(user_tag), std::string(id)}));
  }
  return code;
}

absl::StatusOr<std::string> RedisSessionStore::Successor(std::string_view id) {
  ASSIGN_OR_RETURN(Reply reply,
                   client_->Call(RedisCommand({"HGET", SessionKey(id), "m:next"})));
  return reply.is_string() ? reply.str : std::string();
}

absl::StatusOr<uint64_t> RedisSessionStore::UserEpoch(std::string_view user_tag) {
  ASSIGN_OR_RETURN(Reply reply, client_->Call(RedisCommand({"GET", UserEpochKey(user_tag)})));
  uint64_t epoch = 0;
  if (!reply.is_nil() && !ToUint(reply, &epoch)) return Unexpected("epoch get", reply);
  return epoch;
}

absl::Status RedisSessionStore::AdvanceUserEpoch(std::string_view user_tag, absl::Time now,
                                                 absl::Time until) {
  // One script, not INCR then PEXPIRE: two requests could go to different
  // connections on a redirect or retry, so the WAIT after the second would
  // not cover the first, and the PEXPIRE could run first and leave an epoch
  // key with no TTL.
  RedisCommand advance =
      epoch_advance_->Call({UserEpochKey(user_tag)}, {TtlMillis(until, now)});
  // A revocation the caller was told of must survive a failover.
  advance.durable = true;
  ASSIGN_OR_RETURN(Reply reply, client_->Call(std::move(advance)));
  uint64_t epoch = 0;
  if (!ToUint(reply, &epoch)) return Unexpected("epoch advance", reply);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<session::StoredSession>> RedisSessionStore::ListByUser(
    std::string_view user_tag, absl::Time now) {
  const std::string index = UserIndexKey(user_tag);
  // 1: the members whose absolute expiry is still ahead.
  ASSIGN_OR_RETURN(Reply members, client_->Call(RedisCommand(
                                      {"ZRANGEBYSCORE", index, absl::StrCat("(", Micros(now)), "+inf"})));
  if (!members.is_array()) return Unexpected("zrangebyscore", members);
  std::vector<std::string> ids;
  for (Reply& member : members.elements) ids.push_back(std::move(member.str));
  session::UserIndexPage page;
  RETURN_IF_ERROR(ReadIndexed(user_tag, now, ids, &page));
  std::sort(page.sessions.begin(), page.sessions.end(),
            [](const session::StoredSession& a, const session::StoredSession& b) {
              return std::tie(a.created, a.id) < std::tie(b.created, b.id);
            });
  return std::move(page.sessions);
}

absl::StatusOr<session::UserIndexPage> RedisSessionStore::ListByUserPage(std::string_view user_tag,
                                                                absl::Time now, absl::Time after,
                                                                size_t limit) {
  ASSIGN_OR_RETURN(
      Reply reply,
      client_->Call(index_page_->Call(
          {UserIndexKey(user_tag)},
          {Micros(now), after == absl::InfinitePast() ? "" : Micros(after),
           std::to_string(std::max<size_t>(limit, 1))})));
  int64_t more = 0;
  if (!reply.is_array() || reply.elements.size() != 2 || !ToInt(reply.elements[0], &more) ||
      !reply.elements[1].is_array() || reply.elements[1].elements.size() % 2 != 0) {
    return Unexpected("index page", reply);
  }
  std::vector<Reply>& flat = reply.elements[1].elements;
  session::UserIndexPage page;
  page.more = more == 1;
  std::vector<std::string> ids;
  for (size_t i = 0; i < flat.size(); i += 2) {
    ids.push_back(std::move(flat[i].str));
    int64_t score = 0;
    if (!ToInt(flat[i + 1], &score)) return Unexpected("index page", reply);
    page.last = absl::FromUnixMicros(score);
  }
  RETURN_IF_ERROR(ReadIndexed(user_tag, now, ids, &page));
  // Index order: the members came sorted by score, then member.
  return page;
}

absl::Status RedisSessionStore::ReadIndexed(std::string_view user_tag, absl::Time now,
                                            const std::vector<std::string>& ids,
                                            session::UserIndexPage* page) {
  if (ids.empty()) return absl::OkStatus();
  const std::string index = UserIndexKey(user_tag);
  const std::string now_us = Micros(now);
  // Every member's metadata, pipelined.
  std::vector<RedisCommand> reads;
  for (const std::string& id : ids) {
    RedisCommand hmget({"HMGET", SessionKey(id)});
    for (const char* field : kMetaFields) hmget.args.push_back(field);
    reads.push_back(std::move(hmget));
  }
  std::vector<absl::StatusOr<Reply>> metas = client_->CallBatch(std::move(reads));

  // Prune index entries whose session is gone, dead or someone else's, and
  // delete dead records (never tombstones) so an earlier `now` cannot revive
  // them. A tombstone's successor is reported.
  std::vector<RedisCommand> prune;
  for (size_t i = 0; i < metas.size(); ++i) {
    RETURN_IF_ERROR(metas[i].status());
    const std::string& id = ids[i];
    const std::vector<Reply>& f = metas[i]->elements;
    constexpr size_t kFields = std::size(kMetaFields);
    session::StoredSession s;
    s.id = id;
    const bool is_tombstone = f.size() == kFields && !f[7].is_nil();
    const bool parsed = f.size() == kFields && !is_tombstone && ParseMeta(f.data(), &s);
    if (parsed && f[8].is_string()) s.metadata_seal = f[8].str;
    if (parsed && s.LiveAt(now) && s.user_tag == user_tag) {
      page->sessions.push_back(std::move(s));
      continue;
    }
    if (is_tombstone && f[9].is_string() && !f[9].str.empty()) {
      page->successors.push_back(f[9].str);
    }
    prune.push_back(RedisCommand({"ZREM", index, id}));
    if (parsed && !s.LiveAt(now)) prune.push_back(reap_->Call({SessionKey(id)}, {now_us}));
  }
  if (!prune.empty()) (void)client_->CallBatch(std::move(prune));
  return absl::OkStatus();
}

}  // namespace stateside::redis
