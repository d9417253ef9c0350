// The Lua scripts of the Redis session store (see redis_session_store.cc for
// the key layout they work on). Each touches exactly one key, so each runs in
// one Cluster slot. Times are integer microseconds since the Unix epoch, as
// decimal strings; every expiry is a PEXPIRE relative to the caller's `now`.
#ifndef STATESIDE_SIDECAR_REDIS_SESSION_SCRIPTS_H_
#define STATESIDE_SIDECAR_REDIS_SESSION_SCRIPTS_H_

namespace stateside::redis::scripts {

// Session hash: create unless a live session or an unexpired tombstone holds
// the id. -> 1 created, 0 taken.
extern const char kCreate[];
// Session hash: liveness, optional coalesced touch (+ PEXPIRE), metadata and
// attributes; an expired session is deleted. Only for a Get that writes (see
// RedisSessionStore::Get). -> {0} absent or tombstone |
// {2} expired | {1, ver, created, last, idle, abs, user, uenv, {field, value...}
// (the whole hash, or none if metadata only: the "a:" fields are the
// attributes), seal}
extern const char kGet[];
// Session hash: liveness, expected version, merged limits, HSET/HDEL, version,
// last access and PEXPIRE when due (coalesced as a touch). -> {0} | {2, ver} | {3, limit, value, max} | {1, meta...}
extern const char kUpdate[];
// Session hash -> tombstone. -> {was_live, user_tag}; with an expected
// version (Retire): {2, ver} when a live session's version differs.
extern const char kDestroy[];
// Session hash: delete it if it is a dead session (never a tombstone).
extern const char kReap[];
// User index: ZADD, drop members past their absolute expiry, PEXPIRE to the
// latest one.
extern const char kIndexAdd[];
// User index: kIndexAdd under a cap on its members (CreateCapped). At the
// cap: {0, count} (nothing added) or, ending the oldest, ZADD and
// {1, {the count - cap + 1 oldest members}}; under it: ZADD and {1, {}}.
extern const char kIndexAddCapped[];
// User index: one page of ListByUserPage. -> {more, {member, score, ...}}
extern const char kIndexPage[];
// User epoch: INCR and PEXPIRE in one script, so a durable call's WAIT covers
// both and the key never exists without its TTL. -> the new epoch
extern const char kEpochAdvance[];

}  // namespace stateside::redis::scripts

#endif  // STATESIDE_SIDECAR_REDIS_SESSION_SCRIPTS_H_
