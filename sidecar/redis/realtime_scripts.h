// The Lua scripts of the Redis realtime broker (redis_broker.h); the key
// layout they work on is described at the top of realtime_scripts.cc and in
// docs/REDIS_KEYS.md. Each script's KEYS and ARGV are documented beside its
// source. Presence scripts derive further keys from the prefix (room and
// user hashes, other instances' keys), so they need one Redis (or one
// Cluster slot for the whole prefix); they are not Cluster-ready as is.
#ifndef STATESIDE_SIDECAR_REDIS_REALTIME_SCRIPTS_H_
#define STATESIDE_SIDECAR_REDIS_REALTIME_SCRIPTS_H_

namespace stateside::redis::realtime_scripts {

// Helpers prepended to kAddPresence, kRemovePresence, kSyncPresence,
// kRefresh and kRemoveInstance (which all take KEYS alive, idx, instances
// and ARGV prefix, instance id first).
extern const char kPresenceLib[];

// Presence writes of one instance. -> 1 if the instance was still listed in
// rt:instances, 0 if its entries had been swept (or Redis lost them).
extern const char kAddPresence[];
extern const char kRemovePresence[];
extern const char kSyncPresence[];
// Heartbeat and sweep. -> {listed before (0/1), instances swept}
extern const char kRefresh[];
// The drain: every entry of this instance, its alive key and listing. -> 1
extern const char kRemoveInstance[];
// Live fields ("<inst>/<conn>") of a room or user hash. -> array
extern const char kLiveFields[];
// Room event: sequence, log entry, PUBLISH. -> {sequence, receivers}
extern const char kPublishRoom[];
// User event: one PUBLISH per live instance holding the user. -> count
extern const char kPublishUser[];
// Room log window. -> {counter, first id, last id, entries}
extern const char kHistory[];

}  // namespace stateside::redis::realtime_scripts

#endif  // STATESIDE_SIDECAR_REDIS_REALTIME_SCRIPTS_H_
