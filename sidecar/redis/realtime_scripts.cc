// Lua sources of the realtime broker. Key layout (P = the prefix; <rb>, <ub>
// = Keyring::Blind(primary, "room" | "user", name): 32 hex chars; instance
// ids never contain '/'; connection ids are printable ASCII). `{...}` is the
// Redis Cluster hash tag: the keys of one room, one user or one instance
// share a slot.
//
//   P rt:{i:<inst>}:alive  string "1", PX presence_ttl: the instance's
//                          presence counts iff this key exists.
//   P rt:{i:<inst>}:idx    hash conn -> "u:<ub> r:<rb> r:<rb> ...": the entries
//                          each connection has, so they can be removed without
//                          knowing any name. Always a superset of the entries
//                          in room and user hashes (written before them,
//                          shrunk after them).
//   P rt:listed            set of instance ids that wrote presence (the
//                          sweep's work list; its own slot).
//   P rt:{r:<rb>}:members  hash "<inst>/<conn>" -> ""  (members of a room)
//   P rt:{u:<ub>}:conns    hash "<inst>/<conn>" -> ""  (connections of a user)
//   <stream>:seq           counter: the stream's last sequence number
//   <stream>:log           stream, ids "<seq>-0", field "e" = the sealed frame
//   <stream>:logbytes      counter: the bytes of the frames in the log
//     where <stream> is, per target, in the slot of its channel:
//     P rt:{r:<rb>}          a room (its channel P rt:{r:<rb>}:c on Cluster)
//     P rt:{u:<ub>}          a user (beside its conns hash; published to
//                            instance channels, each in its own slot)
//     P rt:{i:<inst>}:k:<cb> a connection of <inst> (<cb> = Blind("conn",
//                            id); the instance's channel P rt:{i:<inst>}:c)
//     P rt:{all}             the broadcasts (channel P rt:{all}:c)
//
// Every script touches only its KEYS, all of one slot; what spans slots
// (a connection's entries in room and user hashes, the sweep of another
// instance, liveness checks of the instances in a hash) is done by the
// broker as separate single-slot commands (redis_broker.cc).
#include "sidecar/redis/realtime_scripts.h"

#include <string_view>

namespace stateside::redis::realtime_scripts {

// KEYS[1] P rt:{i:<self>}:alive, KEYS[2] P rt:{i:<self>}:idx; ARGV[1]
// presence ttl (ms), ARGV[2] conn id, ARGV[3] user tag ('' = leave the user
// as it is), ARGV[4..] room tags. A user tag other than the one given stays
// listed (its entry is still in its user hash) until a resync clears it.
const char kIndexAdd[] = R"lua(
redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
local conn, ut = ARGV[2], ARGV[3]
local tags, have = {}, {}
local function add(tag)
  if not have[tag] then
    tags[#tags + 1] = tag
    have[tag] = true
  end
end
local v = redis.call('HGET', KEYS[2], conn)
if v then
  for tag in string.gmatch(v, '%S+') do add(tag) end
end
local other = 0
if ut ~= '' then
  for _, t in ipairs(tags) do
    if string.sub(t, 1, 2) == 'u:' and t ~= 'u:' .. ut then other = 1 end
  end
  add('u:' .. ut)
end
for i = 4, #ARGV do add('r:' .. ARGV[i]) end
redis.call('HSET', KEYS[2], conn, table.concat(tags, ' '))
return other
)lua";

// KEYS as kIndexAdd; ARGV[1] presence ttl (ms), ARGV[2] conn id, ARGV[3]
// '1' = the whole connection or '0' = only the tags given, ARGV[4..] tags
// ("u:<ub>", "r:<rb>"). Called after the entries of the tags given were
// deleted from their hashes. Other tags stay listed (their entries were not
// deleted); with '1' they are counted.
const char kIndexRemove[] = R"lua(
redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
local conn = ARGV[2]
local v = redis.call('HGET', KEYS[2], conn)
if not v then return 0 end
local named = {}
for i = 4, #ARGV do named[ARGV[i]] = true end
local kept = {}
for tag in string.gmatch(v, '%S+') do
  if not named[tag] then
    kept[#kept + 1] = tag
    named[tag] = true
  end
end
if #kept == 0 then
  redis.call('HDEL', KEYS[2], conn)
else
  redis.call('HSET', KEYS[2], conn, table.concat(kept, ' '))
end
if ARGV[3] == '1' then return #kept end
return 0
)lua";

// KEYS[1] P rt:{i:<inst>}:alive, KEYS[2] P rt:{i:<inst>}:idx; ARGV[1] the
// HSCAN cursor ('0' to start), ARGV[2] its COUNT. Read-only. Nothing when
// the instance is alive, else one HSCAN chunk {cursor, {conn, tags, ...}}:
// an index of any size is read in bounded replies.
const char kDeadIndex[] = R"lua(
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
return redis.call('HSCAN', KEYS[2], ARGV[1], 'COUNT', ARGV[2])
)lua";

// KEYS as kDeadIndex; ARGV conn ids (none: the whole index). In chunks:
// Lua's unpack() has a stack limit.
const char kDropSwept[] = R"lua(
if redis.call('EXISTS', KEYS[1]) == 1 then return 1 end
if #ARGV == 0 then
  redis.call('DEL', KEYS[2])
else
  for i = 1, #ARGV, 1000 do
    redis.call('HDEL', KEYS[2], unpack(ARGV, i, math.min(i + 999, #ARGV)))
  end
end
return 0
)lua";

// The appending part of PublishStream and AppendUserStream.
// KEYS[1] <stream>:seq, KEYS[2] <stream>:log, KEYS[3] <stream>:logbytes
// (<stream> = P rt:{r:<rb>}, P rt:{u:<ub>}, P rt:{i:<inst>}:k:<cb> or
// P rt:{all}: one slot); ARGV[2] the sealed frame, ARGV[3] history size
// (entries), ARGV[4] history bytes, ARGV[5] history ttl (ms), ARGV[6]
// sequence ttl (ms). Leaves the event's sequence number in `seq`.
// The log is trimmed here, oldest first, to both bounds (the newest entry
// always stays): one XRANGE + XDEL per entry dropped, about one per publish
// once the log is full. The byte counter lives and expires with the log; a
// log found without it (lost, evicted, or a log written by an older
// version) is counted once from its entries, and a counter found without
// its log starts again at 0.
constexpr char kAppendToStreamLog[] = R"lua(
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
)lua";

// Room, connection and broadcast streams: the append above, then ARGV[1]
// the stream's channel (in the same slot on Cluster) gets "<seq> <sealed
// frame>"; the log holds the frame. -> {sequence, receivers}
constexpr char kPublishTail[] = R"lua(
local receivers = redis.call('PUBLISH', ARGV[1], string.format('%d', seq) .. ' ' .. ARGV[2])
return {seq, receivers}
)lua";

// A user's stream: the append above (ARGV[1] unused), and KEYS[4] P
// rt:{u:<ub>}:conns read in the same step: the broker publishes to the
// instances it lists (other slots). -> {sequence, {field, ...}}
constexpr char kAppendUserTail[] = R"lua(
return {seq, redis.call('HKEYS', KEYS[4])}
)lua";

// KEYS[1] <stream>:seq, KEYS[2] <stream>:log; ARGV[1] first id wanted
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

std::string AppendUserStream() { return std::string(kAppendToStreamLog) + kAppendUserTail; }

std::string PublishStream(bool sharded) {
  std::string source = std::string(kAppendToStreamLog) + kPublishTail;
  if (!sharded) return source;
  constexpr std::string_view kClassic = "redis.call('PUBLISH', ";
  source.replace(source.find(kClassic), kClassic.size(), "redis.call('SPUBLISH', ");
  return source;
}

}  // namespace stateside::redis::realtime_scripts
