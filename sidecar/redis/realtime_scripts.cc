// Lua sources of the realtime broker. Key layout (P = the prefix; <rb>, <ub>
// = Keyring::Blind(primary, "room" | "user", name): 32 hex chars; instance
// ids never contain '/'; connection ids are printable ASCII):
//
//   P rt:alive:<inst>  string "1", PX presence_ttl: the instance's presence
//                      counts iff this key exists.
//   P rt:idx:<inst>    hash conn -> "u:<ub> r:<rb> r:<rb> ...": the entries
//                      each connection has, so they can be removed without
//                      knowing any name.
//   P rt:instances     set of instance ids that wrote presence (the sweep's
//                      work list).
//   P rt:room:<rb>     hash "<inst>/<conn>" -> ""  (members of a room)
//   P rt:user:<ub>     hash "<inst>/<conn>" -> ""  (connections of a user)
//   P rt:seq:<rb>      counter: the room's last sequence number
//   P rt:log:<rb>      stream, ids "<seq>-0", field "e" = the sealed frame
//   P rt:logbytes:<rb> counter: the bytes of the frames in rt:log:<rb>
//
// Room and user hashes carry no TTL: an entry of a dead instance is invisible
// at once (every read checks rt:alive:<inst>, once per instance per call)
// and is deleted by the next sweep (any live instance's Refresh).
#include "sidecar/redis/realtime_scripts.h"

namespace stateside::redis::realtime_scripts {

// KEYS[1] P rt:alive:<self>, KEYS[2] P rt:idx:<self>, KEYS[3] P rt:instances;
// ARGV[1] prefix P, ARGV[2] own instance id, ARGV[3] presence ttl (ms,
// scripts that do not touch presence ignore it).
const char kPresenceLib[] = R"lua(
local p, self = ARGV[1], ARGV[2]

-- Removes one entry: tag "u:<ub>" or "r:<rb>", field "<inst>/<conn>".
local function remove_entry(tag, field)
  local kind = string.sub(tag, 1, 2)
  if kind == 'u:' then
    redis.call('HDEL', p .. 'rt:user:' .. string.sub(tag, 3), field)
  elseif kind == 'r:' then
    redis.call('HDEL', p .. 'rt:room:' .. string.sub(tag, 3), field)
  end
end

-- Removes the entries of instance `id`: all of them (budget nil), or those
-- of at most `budget` connections so one sweep cannot block Redis for long.
-- Returns the connections handled and whether the instance is clean now.
local function clear_instance(id, budget)
  local idx = p .. 'rt:idx:' .. id
  local all = redis.call('HGETALL', idx)
  local n = #all / 2
  local partial = budget ~= nil and n > budget
  if partial then n = budget end
  for i = 1, 2 * n, 2 do
    local field = id .. '/' .. all[i]
    for tag in string.gmatch(all[i + 1], '%S+') do remove_entry(tag, field) end
    if partial then redis.call('HDEL', idx, all[i]) end
  end
  if not partial then redis.call('DEL', idx) end
  return n, not partial
end

-- This instance is alive for ttl and listed for the sweep. Returns 1 if it
-- was listed already; 0 means its entries were swept (it stopped refreshing
-- for longer than the ttl) or Redis lost them: the caller re-syncs.
local function touch_self()
  local listed = redis.call('SISMEMBER', KEYS[3], self)
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[3])
  if listed == 0 then redis.call('SADD', KEYS[3], self) end
  return listed
end

-- The tags of a connection, as a list (stored order) and a set.
local function read_tags(conn)
  local tags, have = {}, {}
  local v = redis.call('HGET', KEYS[2], conn)
  if v then
    for tag in string.gmatch(v, '%S+') do
      if not have[tag] then
        tags[#tags + 1] = tag
        have[tag] = true
      end
    end
  end
  return tags, have
end

-- Writes (or extends) the entries of `conn`: user tag `ut` ('' = leave the
-- user as it is) and the room tags ARGV[first..last].
local function add_conn(conn, ut, first, last)
  local field = self .. '/' .. conn
  local tags, have = read_tags(conn)
  if ut ~= '' then
    local tag = 'u:' .. ut
    if not have[tag] then
      -- A connection has one user: an entry under another user goes.
      local kept = {}
      for _, t in ipairs(tags) do
        if string.sub(t, 1, 2) == 'u:' then
          remove_entry(t, field)
          have[t] = nil
        else
          kept[#kept + 1] = t
        end
      end
      tags = kept
      tags[#tags + 1] = tag
      have[tag] = true
    end
    redis.call('HSET', p .. 'rt:user:' .. ut, field, '')
  end
  for i = first, last do
    local tag = 'r:' .. ARGV[i]
    redis.call('HSET', p .. 'rt:room:' .. ARGV[i], field, '')
    if not have[tag] then
      tags[#tags + 1] = tag
      have[tag] = true
    end
  end
  redis.call('HSET', KEYS[2], conn, table.concat(tags, ' '))
end
)lua";

// ARGV[4] conn id, ARGV[5] user tag ('' = none), ARGV[6..] room tags.
const char kAddPresence[] = R"lua(
local listed = touch_self()
add_conn(ARGV[4], ARGV[5], 6, #ARGV)
return listed
)lua";

// ARGV[4] conn id, ARGV[5] '1' = every entry of the connection (the listed
// ones, plus the user and rooms given, should the listing be incomplete) or
// '0' = only the given rooms, ARGV[6] user tag ('' = none), ARGV[7..] room
// tags.
const char kRemovePresence[] = R"lua(
local listed = touch_self()
local conn = ARGV[4]
local field = self .. '/' .. conn
local tags, have = read_tags(conn)
for i = 7, #ARGV do
  redis.call('HDEL', p .. 'rt:room:' .. ARGV[i], field)
  have['r:' .. ARGV[i]] = nil
end
if ARGV[5] == '1' then
  for _, t in ipairs(tags) do remove_entry(t, field) end
  if ARGV[6] ~= '' then redis.call('HDEL', p .. 'rt:user:' .. ARGV[6], field) end
  redis.call('HDEL', KEYS[2], conn)
elseif #tags > 0 then
  local kept = {}
  for _, t in ipairs(tags) do
    if have[t] then kept[#kept + 1] = t end
  end
  redis.call('HSET', KEYS[2], conn, table.concat(kept, ' '))
end
return listed
)lua";

// ARGV[4] '1' = first chunk: clear every entry of this instance first; then
// per connection: conn id, user tag ('' = none), room count n, n room tags.
const char kSyncPresence[] = R"lua(
local listed = touch_self()
if ARGV[4] == '1' then clear_instance(self, nil) end
local i = 5
while i <= #ARGV do
  local n = tonumber(ARGV[i + 2])
  add_conn(ARGV[i], ARGV[i + 1], i + 3, i + 2 + n)
  i = i + 3 + n
end
return listed
)lua";

// ARGV[4] sweep budget (connections). Every listed instance other than this
// one whose alive key is gone has its entries removed (within the budget;
// the rest waits for the next Refresh, invisible meanwhile) and is unlisted.
// O(instances) EXISTS per call plus the entries removed.
const char kRefresh[] = R"lua(
local listed = touch_self()
local budget = tonumber(ARGV[4])
local swept = 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  if budget <= 0 then break end
  if id ~= self and redis.call('EXISTS', p .. 'rt:alive:' .. id) == 0 then
    local n, clean = clear_instance(id, budget)
    budget = budget - n
    if clean then
      redis.call('SREM', KEYS[3], id)
      swept = swept + 1
    end
  end
end
return {listed, swept}
)lua";

// No extra ARGV. Unbounded on purpose: a drained instance's connections go
// at once.
const char kRemoveInstance[] = R"lua(
clear_instance(self, nil)
redis.call('SREM', KEYS[3], self)
redis.call('DEL', KEYS[1])
return 1
)lua";

// KEYS[1] a room or user hash; ARGV[1] prefix P. Read-only: dead entries are
// skipped here and deleted by the sweep. One EXISTS per distinct instance.
const char kLiveFields[] = R"lua(
local alive, out = {}, {}
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  local slash = string.find(field, '/', 1, true)
  if slash then
    local inst = string.sub(field, 1, slash - 1)
    local live = alive[inst]
    if live == nil then
      live = redis.call('EXISTS', ARGV[1] .. 'rt:alive:' .. inst) == 1
      alive[inst] = live
    end
    if live then out[#out + 1] = field end
  end
end
return out
)lua";

// KEYS[1] P rt:seq:<rb>, KEYS[2] P rt:log:<rb>, KEYS[3] P rt:logbytes:<rb>;
// ARGV[1] the room channel, ARGV[2] the sealed frame, ARGV[3] history size
// (entries), ARGV[4] history bytes, ARGV[5] history ttl (ms), ARGV[6]
// sequence ttl (ms).
// The channel message is "<seq> <sealed frame>"; the log holds the frame.
// The log is trimmed here, oldest first, to both bounds (the newest entry
// always stays): one XRANGE + XDEL per entry dropped, about one per publish
// once the log is full. The byte counter lives and expires with the log; a
// log found without it (lost, evicted, or a log written by an older
// version) is counted once from its entries, and a counter found without
// its log starts again at 0.
const char kPublishRoom[] = R"lua(
local bytes = tonumber(redis.call('GET', KEYS[3]))
if redis.call('EXISTS', KEYS[2]) == 0 then
  bytes = 0
elseif not bytes then
  bytes = 0
  for _, entry in ipairs(redis.call('XRANGE', KEYS[2], '-', '+')) do
    bytes = bytes + #entry[2][2]
  end
end
local seq = redis.call('INCR', KEYS[1])
local function append(s)
  return redis.pcall('XADD', KEYS[2], string.format('%d-0', s), 'e', ARGV[2])
end
local added = append(seq)
if type(added) == 'table' and added.err then
  -- The counter is behind the log (it expired or was lost while the log
  -- lived): continue after the log's last id so sequences never repeat.
  local info = redis.call('XINFO', 'STREAM', KEYS[2])
  local top
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then top = tonumber(string.match(info[i + 1], '^(%d+)-')) end
  end
  if not top then return redis.error_reply(added.err) end
  seq = top + 1
  redis.call('SET', KEYS[1], string.format('%d', seq))
  added = append(seq)
  if type(added) == 'table' and added.err then return redis.error_reply(added.err) end
end
bytes = bytes + #ARGV[2]
local len = redis.call('XLEN', KEYS[2])
local max_len, max_bytes = tonumber(ARGV[3]), tonumber(ARGV[4])
while len > 1 and (len > max_len or bytes > max_bytes) do
  local oldest = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)[1]
  redis.call('XDEL', KEYS[2], oldest[1])
  bytes = bytes - #oldest[2][2]
  len = len - 1
end
redis.call('SET', KEYS[3], string.format('%d', bytes), 'PX', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
local receivers = redis.call('PUBLISH', ARGV[1], string.format('%d', seq) .. ' ' .. ARGV[2])
return {seq, receivers}
)lua";

// KEYS[1] P rt:user:<ub>; ARGV[1] prefix P, ARGV[2] the channel message.
// One PUBLISH to P rt:c:inst:<inst> per distinct live instance; entries of
// dead instances are deleted on the way.
const char kPublishUser[] = R"lua(
local alive, sent = {}, 0
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  local slash = string.find(field, '/', 1, true)
  local live = false
  if slash then
    local inst = string.sub(field, 1, slash - 1)
    live = alive[inst]
    if live == nil then
      live = redis.call('EXISTS', ARGV[1] .. 'rt:alive:' .. inst) == 1
      alive[inst] = live
      if live then
        redis.call('PUBLISH', ARGV[1] .. 'rt:c:inst:' .. inst, ARGV[2])
        sent = sent + 1
      end
    end
  end
  if not live then redis.call('HDEL', KEYS[1], field) end
end
return sent
)lua";

// KEYS[1] P rt:seq:<rb>, KEYS[2] P rt:log:<rb>; ARGV[1] first id wanted
// ("<after + 1>-0"), ARGV[2] how many (limit + 1, to know whether more
// follow). -> {counter or '', first id held or '', last id held or '',
// XRANGE entries}
const char kHistory[] = R"lua(
local counter = redis.call('GET', KEYS[1]) or ''
local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
local entries = redis.call('XRANGE', KEYS[2], ARGV[1], '+', 'COUNT', ARGV[2])
return {counter, first[1] and first[1][1] or '', last[1] and last[1][1] or '', entries}
)lua";

}  // namespace stateside::redis::realtime_scripts
