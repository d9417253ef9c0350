// How to reach Redis and how the connection layer behaves: the endpoint (from
// a URL), credentials, TLS, pool size, timeouts, reconnect backoff and the
// bounds that keep a Redis outage from growing memory. Plain values;
// ParseRedisUrl and BackoffDelay are pure functions (thread-safe).
#ifndef STATESIDE_SIDECAR_REDIS_REDIS_OPTIONS_H_
#define STATESIDE_SIDECAR_REDIS_REDIS_OPTIONS_H_

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace stateside::redis {

// How the Redis tier is laid out (STATESIDE_REDIS_TOPOLOGY).
enum class RedisTopology {
  kStandalone,  // one node: host/port (or unix_path)
  kCluster,     // Redis Cluster: `nodes` are seeds; the slot map is learned
  kSentinel,    // `nodes` are sentinels; they name the master of `sentinel_master`
};

// "standalone", "cluster", "sentinel".
const char* TopologyName(RedisTopology topology);

// One TCP endpoint of a node list.
struct RedisNode {
  std::string host;
  int port = 6379;

  friend bool operator==(const RedisNode&, const RedisNode&) = default;
};

struct RedisTlsOptions {
  bool enabled = false;     // rediss://
  std::string ca_file;      // PEM bundle to verify the server; "" = system store
  std::string cert_file;    // client certificate (PEM), optional
  std::string key_file;     // its private key (PEM), required with cert_file
  std::string server_name;  // SNI + name the certificate must match; "" = host
  bool verify_peer = true;  // false only for debugging; logged loudly by callers
};

struct RedisOptions {
  // Endpoint: TCP host:port, or a Unix socket path when unix_path is set.
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string unix_path;
  std::string username;  // ACL user; "" = AUTH with the password only
  std::string password;  // "" = no AUTH
  int db = 0;            // SELECT after connecting when not 0
  RedisTlsOptions tls;

  // The layout behind the URL. For kCluster and kSentinel, `nodes` holds the
  // URL's host list (at least one; host/port mirror the first) and the
  // credentials and TLS above apply to every data node.
  RedisTopology topology = RedisTopology::kStandalone;
  std::vector<RedisNode> nodes;
  // kSentinel: the master name the sentinels know, and the sentinels' own
  // AUTH (REDIS_SENTINEL_USERNAME, "" = the default user, and
  // REDIS_SENTINEL_PASSWORD, "" = none).
  std::string sentinel_master;
  std::string sentinel_username;
  std::string sentinel_password;

  // Durability (STATESIDE_REDIS_WAIT_REPLICAS / _TIMEOUT): when > 0, every
  // acknowledged session write is followed by WAIT in the same pipeline and
  // fails UNAVAILABLE unless this many replicas confirmed it in time.
  int wait_replicas = 0;
  absl::Duration wait_timeout = absl::Milliseconds(500);

  // Connections the commands are pipelined over (each on the one I/O thread).
  int connections = 2;
  // From TCP connect through TLS, AUTH, SELECT and the first PING.
  absl::Duration connect_timeout = absl::Seconds(2);
  // A command without a reply by then fails UNAVAILABLE and its connection is
  // reset (FIFO reply matching cannot survive a lost reply).
  absl::Duration command_timeout = absl::Seconds(2);
  // A connection with no traffic for this long sends a PING, so a dead peer is
  // found by the command timeout instead of at the next real command.
  absl::Duration idle_ping_interval = absl::Seconds(15);
  // Reconnect delay: min(max, initial * 2^attempt) scaled by a jitter factor
  // in [0.5, 1.0).
  absl::Duration backoff_initial = absl::Milliseconds(50);
  absl::Duration backoff_max = absl::Seconds(5);
  // Per connection: commands written or queued but not yet answered, and
  // their encoded bytes. Past either, new commands fail UNAVAILABLE at once.
  size_t max_pending_commands = 8192;
  size_t max_pending_bytes = 32u << 20;
  // Bounds of one reply (see RespParser): its string bytes (plus what is
  // buffered of its rest), and its elements summed over every array in it.
  // Past either the connection fails with a protocol error naming the bound
  // and reconnects: Redis never sends such a reply to our commands (the
  // largest, a room's members, is one element per connection in the room),
  // so only a hostile or broken server reaches them.
  size_t max_reply_bytes = 64u << 20;
  size_t max_reply_elements = 1u << 20;
  // Jitter source: returns a uniform value in [0, 1). Empty = a seeded PRNG.
  std::function<double()> jitter;

  // "redis://user:***@host:port/db", "rediss://...", "unix:///path?db=N":
  // safe to log (the password is never included).
  std::string Describe() const;
};

// Parses REDIS_URL into `base` (whose non-endpoint fields are kept):
//   redis://[[user]:password@]host[:port][/db]
//   redis://[[user]:password@]h1:p1,h2:p2,...   (a node list: `nodes`, for
//       base.topology kCluster or kSentinel only; a database other than 0
//       is refused with kCluster, which has only database 0)
//   rediss://... (TLS; server_name defaults to host)
//   unix://[[user]:password@]/path/to/socket[?db=N]
// user and password are percent-decoded; an IPv6 host is written [::1].
// INVALID_ARGUMENT with a message naming the bad part; the password is never
// echoed.
absl::StatusOr<RedisOptions> ParseRedisUrl(std::string_view url,
                                           RedisOptions base = RedisOptions());

// The checks every connection owner makes (timeouts and backoff positive,
// the endpoint usable): INVALID_ARGUMENT "<who> options: …" otherwise.
absl::Status ValidateConnectionOptions(const RedisOptions& options, std::string_view who);

// Reconnect delay before attempt `attempt` (0-based) with jitter01 in [0, 1).
absl::Duration BackoffDelay(int attempt, absl::Duration initial,
                            absl::Duration max, double jitter01);

}  // namespace stateside::redis

#endif  // STATESIDE_SIDECAR_REDIS_REDIS_OPTIONS_H_
