// The Lua scripts of the Redis realtime broker (redis_broker.h); the key
// layout they work on is described at the top of realtime_scripts.cc and in
// docs/REDIS_KEYS.md. Each script's KEYS and ARGV are documented beside its
// source. Every script touches only the keys it is given (KEYS[...]), all in
// one hash slot, so each works on Redis Cluster routed by KEYS[1]; work that
// spans slots is split by the broker into single-slot commands
// (tests/unit/redis/realtime_scripts_test.cc checks the sources).
#ifndef STATESIDE_SIDECAR_REDIS_REALTIME_SCRIPTS_H_
#define STATESIDE_SIDECAR_REDIS_REALTIME_SCRIPTS_H_

#include <string>

namespace stateside::redis::realtime_scripts {

// Instance slot (KEYS alive, idx of this instance). Adds the tags of one
// connection to the index and keeps the instance alive. -> 1 if the index
// held another user tag for it (Redis disagrees with the hub), else 0.
extern const char kIndexAdd[];
// Instance slot. Removes rooms (or the whole connection) from the index.
// -> the number of tags the index held that the caller did not name (the
// broker then cannot delete their entries: it asks for a resync).
extern const char kIndexRemove[];
// Instance slot, any instance. -> false while the instance is alive, else
// one HSCAN chunk of its index (ARGV cursor, COUNT): what a sweep has to
// delete.
extern const char kDeadIndex[];
// Instance slot, any instance: after a sweep deleted the entries of the
// index's connections ARGV (none: all of them), drops them from the index
// unless the instance came back meanwhile. -> 1 if it came back, else 0.
extern const char kDropSwept[];
// The stream's slot (room, connection, broadcasts). An event of the
// stream: sequence, log entry, PUBLISH (sharded: SPUBLISH; on Cluster the
// stream's channel is a shard channel in the stream's slot, served by the
// node that runs the script). -> {sequence, receivers}
std::string PublishStream(bool sharded);
// The user's slot. A user event: sequence and log entry; the broker then
// publishes it to the instances listed. -> {sequence, {field, ...}}
std::string AppendUserStream();
// The stream's slot. Its log window. -> {counter, first id, last id, entries}
extern const char kHistory[];

}  // namespace stateside::redis::realtime_scripts

#endif  // STATESIDE_SIDECAR_REDIS_REALTIME_SCRIPTS_H_
