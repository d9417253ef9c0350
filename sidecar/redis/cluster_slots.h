// Redis Cluster addressing, as pure functions: the hash slot of a key (CRC16
// XMODEM mod 16384 with {hash tag} rules, as the Cluster specification), the
// key a command is routed by, MOVED/ASK redirect parsing, and the slot map
// read from CLUSTER SHARDS (or CLUSTER SLOTS). Thread-safe (no state).
#ifndef STATESIDE_SIDECAR_REDIS_CLUSTER_SLOTS_H_
#define STATESIDE_SIDECAR_REDIS_CLUSTER_SLOTS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "sidecar/redis/reply.h"

namespace stateside::redis {

inline constexpr int kClusterSlots = 16384;

// CRC16-CCITT (XMODEM: poly 0x1021, init 0): Crc16("123456789") == 0x31C3.
uint16_t Crc16(std::string_view data);

// The slot of `key`: only the part between the first '{' and the next '}'
// is hashed when that part is non-empty ("{user1000}.following" and
// "{user1000}.followers" share a slot); otherwise the whole key.
int KeySlot(std::string_view key);

// The key a command is routed by, or nullopt for a keyless command (which any
// master may serve). EVAL/EVALSHA (and their _RO forms, FCALL): the first key
// (args[3]) when numkeys > 0. Keyless: PING, ECHO, SCRIPT, DBSIZE, RANDOMKEY,
// SCAN, TIME, PUBLISH, INFO, CLUSTER, WAIT, ASKING, FLUSHALL, FLUSHDB, CONFIG,
// CLIENT, COMMAND. Everything else the code base sends takes its key first
// (GET, SET, DEL, HGET, HGETALL, HEXISTS, HSET, INCR, PEXPIRE, ZADD, ZREM,
// ZRANGE...): args[1]. A multi-key command whose keys span slots is answered
// CROSSSLOT by Redis itself.
std::optional<std::string_view> CommandKey(const std::vector<std::string>& args);

// A "MOVED <slot> <host>:<port>" or "ASK <slot> <host>:<port>" error reply.
struct Redirect {
  bool ask = false;  // false: MOVED
  int slot = 0;
  std::string host;  // "" when the server does not know its endpoint
  int port = 0;
};
std::optional<Redirect> ParseRedirect(std::string_view error);

// The cluster as one node saw it.
struct ClusterMap {
  struct Node {
    std::string host;
    int port = 0;
    bool master = false;
    bool healthy = true;  // CLUSTER SHARDS "health" is "online"
    int slots = 0;        // masters: the slots they serve
    std::string address() const;  // "host:port" ("[v6]:port")
  };
  std::vector<Node> nodes;
  std::vector<int> slot_owner;  // kClusterSlots entries: index into nodes, -1 = none
};

// Parses a CLUSTER SHARDS reply (RESP2: each shard and node is a flat
// field/value array). The node's "endpoint" (its preferred endpoint) is used,
// "ip" when the endpoint is unknown ("?" or ""); `tls` picks "tls-port".
// INVALID_ARGUMENT on a reply of the wrong shape; FAILED_PRECONDITION with
// `tls` when no node has a tls-port (the nodes lack tls-cluster).
absl::StatusOr<ClusterMap> ParseClusterShards(const Reply& reply, bool tls);
// The same from CLUSTER SLOTS: [start, end, [host, port, id...], replicas...].
absl::StatusOr<ClusterMap> ParseClusterSlots(const Reply& reply);

}  // namespace stateside::redis

#endif  // STATESIDE_SIDECAR_REDIS_CLUSTER_SLOTS_H_
