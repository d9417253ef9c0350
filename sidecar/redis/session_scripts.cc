// Lua sources of the session store's scripts. Hash fields: "m:*" metadata,
// "a:<name>" attributes (see redis_session_store.cc). A session is live at
// now iff now < last + idle and now < abs; a dead one is deleted when seen,
// so an earlier `now` (another instance's clock) can never bring it back.
#include "sidecar/redis/session_scripts.h"

namespace stateside::redis::scripts {

const char kCreate[] = R"lua(
local key = KEYS[1]
local now = tonumber(ARGV[1])
local m = redis.call('HMGET', key, 'm:dead', 'm:ver', 'm:last', 'm:idle', 'm:abs')
if m[1] then
  if now < tonumber(m[1]) then return 0 end
elseif m[2] then
  if now < tonumber(m[3]) + tonumber(m[4]) and now < tonumber(m[5]) then return 0 end
end
redis.call('DEL', key)
-- HSET in chunks: unpack() of thousands of values would overflow Lua's stack.
for i = 3, #ARGV, 200 do
  redis.call('HSET', key, unpack(ARGV, i, math.min(i + 199, #ARGV)))
end
redis.call('PEXPIRE', key, ARGV[2])
return 1
)lua";

// ARGV: now, touch ('1'/'0'), metadata only ('1'/'0'), touch granularity
// (µs, the configured one: see ReadOptions::touch_granularity). The store
// runs it only when its plain read (HGETALL or HMGET, no script) found a
// write due: the access a granularity old, or the session dead; a touch with
// no granularity comes here at once. One read of the hash: HGETALL, its
// metadata picked out here, the whole reply returned as it came (the caller
// keeps the "a:" fields), or HMGET of the metadata alone. A touch writes
// only when the stored last access is a granularity old, so most reads write
// (and replicate) nothing; the key's TTL, set with the last write of m:last,
// then stays what that m:last makes it.
const char kGet[] = R"lua(
local key = KEYS[1]
local names = {'m:dead', 'm:ver', 'm:created', 'm:last', 'm:idle', 'm:abs', 'm:user',
               'm:uenv', 'm:seal'}
local m, all = {}, {}
if ARGV[3] == '1' then
  m = redis.call('HMGET', key, unpack(names))
else
  all = redis.call('HGETALL', key)
  local f = {}
  for i = 1, #all, 2 do
    if string.byte(all[i], 1) == 109 then f[all[i]] = all[i + 1] end  -- 'm'
  end
  for i, name in ipairs(names) do m[i] = f[name] or false end
end
if m[1] or not m[2] then return {0} end
local now = tonumber(ARGV[1])
local last, idle, abs = tonumber(m[4]), tonumber(m[5]), tonumber(m[6])
if not (now < last + idle and now < abs) then
  redis.call('DEL', key)
  return {2}
end
if ARGV[2] == '1' and now > last and now - last >= math.min(tonumber(ARGV[4]), idle / 100) then
  last = now
  m[4] = ARGV[1]
  redis.call('HSET', key, 'm:last', ARGV[1])
  redis.call('PEXPIRE', key, math.ceil((math.min(last + idle, abs) - now) / 1000))
end
return {1, m[2], m[3], m[4], m[5], m[6], m[7] or '', m[8] or '', all, m[9] or ''}
)lua";

// ARGV: now, expected version ('' = none), max_attributes, max_total_bytes
// (0 = unchecked), number of sets, touch granularity (µs), then (name,
// envelope) pairs, then the names to remove.
const char kUpdate[] = R"lua(
local key = KEYS[1]
local m = redis.call('HMGET', key, 'm:dead', 'm:ver', 'm:created', 'm:last', 'm:idle',
                     'm:abs', 'm:user', 'm:uenv', 'm:n', 'm:sz', 'm:seal')
if m[1] or not m[2] then return {0} end
local now = tonumber(ARGV[1])
local last, idle, abs = tonumber(m[4]), tonumber(m[5]), tonumber(m[6])
if not (now < last + idle and now < abs) then
  redis.call('DEL', key)
  return {0}
end
if ARGV[2] ~= '' and ARGV[2] ~= m[2] then return {2, m[2]} end
local first_remove = 7 + 2 * tonumber(ARGV[5])
-- name -> new envelope, or false if removed. Removals first: a name in both
-- ends up set.
local final = {}
for i = first_remove, #ARGV do final[ARGV[i]] = false end
for i = 7, first_remove - 1, 2 do final[ARGV[i]] = ARGV[i + 1] end
-- Count and size of the merged state, from the kept totals and the touched
-- fields only (O(mutation), not O(session)). An envelope is never empty, so
-- HSTRLEN 0 means no such field.
local n, sz = tonumber(m[9]) or 0, tonumber(m[10]) or 0
local sets, dels = {}, {}
for name, env in pairs(final) do
  local field = 'a:' .. name
  local old = redis.call('HSTRLEN', key, field)
  if old > 0 then
    n = n - 1
    sz = sz - #name - old
  end
  if env then
    n = n + 1
    sz = sz + #name + #env
    sets[#sets + 1] = field
    sets[#sets + 1] = env
  else
    dels[#dels + 1] = field
  end
end
local max_n, max_sz = tonumber(ARGV[3]), tonumber(ARGV[4])
if max_n > 0 and n > max_n then return {3, 'max_attributes', n, ARGV[3]} end
if max_sz > 0 and sz > max_sz then return {3, 'max_total_bytes', sz, ARGV[4]} end
local ver = tonumber(m[2]) + 1
for _, v in ipairs({'m:ver', ver, 'm:n', n, 'm:sz', sz}) do sets[#sets + 1] = v end
-- The access, coalesced as a touching read's (ARGV[6]: the granularity).
local touch = now > last and now - last >= math.min(tonumber(ARGV[6]), idle / 100)
if touch then
  last = now
  m[4] = ARGV[1]
  sets[#sets + 1] = 'm:last'
  sets[#sets + 1] = m[4]
end
-- One HSET of the attributes and the metadata (and one HDEL): a replica
-- applies one command, or HSET + PEXPIRE when the access is written, not one
-- per attribute. In chunks: unpack() of thousands of values would overflow
-- Lua's stack.
for i = 1, #dels, 200 do
  redis.call('HDEL', key, unpack(dels, i, math.min(i + 199, #dels)))
end
for i = 1, #sets, 200 do
  redis.call('HSET', key, unpack(sets, i, math.min(i + 199, #sets)))
end
if touch then
  redis.call('PEXPIRE', key, math.ceil((math.min(last + idle, abs) - now) / 1000))
end
return {1, ver, m[3], m[4], m[5], m[6], m[7] or '', m[8] or '', m[11] or ''}
)lua";

// ARGV: now, tombstone_until, and for Retire: expected version, successor
// id. An id with no record gets no tombstone; an existing tombstone is only
// ever extended. Retire of a live session whose version moved -> {2, ver},
// nothing changed; a retired session's tombstone also holds m:next.
const char kDestroy[] = R"lua(
local key = KEYS[1]
local now, till = tonumber(ARGV[1]), tonumber(ARGV[2])
local m = redis.call('HMGET', key, 'm:dead', 'm:ver', 'm:last', 'm:idle', 'm:abs', 'm:user')
if m[1] then
  if till > tonumber(m[1]) then
    redis.call('HSET', key, 'm:dead', ARGV[2])
    redis.call('PEXPIRE', key, math.ceil((till - now) / 1000))
  end
  return {0, ''}
end
if not m[2] then return {0, ''} end
local live = 0
if now < tonumber(m[3]) + tonumber(m[4]) and now < tonumber(m[5]) then live = 1 end
if live == 1 and ARGV[3] and ARGV[3] ~= m[2] then return {2, m[2]} end
redis.call('DEL', key)
if till > now then
  redis.call('HSET', key, 'm:dead', ARGV[2])
  if live == 1 and ARGV[4] then redis.call('HSET', key, 'm:next', ARGV[4]) end
  redis.call('PEXPIRE', key, math.ceil((till - now) / 1000))
end
return {live, m[6] or ''}
)lua";

const char kReap[] = R"lua(
local m = redis.call('HMGET', KEYS[1], 'm:dead', 'm:ver', 'm:last', 'm:idle', 'm:abs')
if m[1] or not m[2] then return 0 end
local now = tonumber(ARGV[1])
if now < tonumber(m[3]) + tonumber(m[4]) and now < tonumber(m[5]) then return 0 end
redis.call('DEL', KEYS[1])
return 1
)lua";

// ARGV: now, member (session id), score (its absolute expiry).
const char kIndexAdd[] = R"lua(
local now = tonumber(ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if top[2] then
  redis.call('PEXPIRE', KEYS[1], math.ceil((tonumber(top[2]) - now) / 1000))
end
return 1
)lua";

// ARGV: now, member, score, cap, '1' to end the oldest at the cap. The
// members listed for ending stay until the caller's Destroy removes them
// (ZREM), so a logout everywhere still finds them should the caller die
// first; a concurrent capped add counts them and names them again, so the
// members converge to the cap.
const char kIndexAddCapped[] = R"lua(
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local cap = tonumber(ARGV[4])
local n = redis.call('ZCARD', KEYS[1])
local ended = {}
if n >= cap then
  if ARGV[5] ~= '1' then return {0, n} end
  ended = redis.call('ZRANGE', KEYS[1], 0, n - cap)
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', KEYS[1], math.ceil((tonumber(top[2]) - now) / 1000))
return {1, ended}
)lua";

// ARGV: now, after ('' = from the start), limit. The members whose score is
// above both, `limit` of them and then every further member with the last
// one's score (a page never splits one absolute expiry).
// -> {more, {member, score, ...}}
const char kIndexPage[] = R"lua(
local min = ARGV[1]
if ARGV[2] ~= '' and tonumber(ARGV[2]) > tonumber(min) then min = ARGV[2] end
local limit = tonumber(ARGV[3])
local page = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. min, '+inf', 'WITHSCORES',
                        'LIMIT', 0, limit)
if #page < 2 * limit then return {0, page} end
local last = page[#page]
local seen = {}
for i = 1, #page, 2 do seen[page[i]] = true end
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], last, last)) do
  if not seen[member] then
    page[#page + 1] = member
    page[#page + 1] = last
  end
end
return {#redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. last, '+inf', 'LIMIT', 0, 1), page}
)lua";

// ARGV: the epoch key's TTL in milliseconds. INCR never hands out a value
// twice while the key lives; the expiry only collects it once no session of
// the user can still be live.
const char kEpochAdvance[] = R"lua(
local epoch = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return epoch
)lua";

}  // namespace stateside::redis::scripts
