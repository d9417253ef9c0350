// A real Redis Sentinel deployment for tests: one master and N replicas
// (RedisServer with `replicaof`) plus M sentinel processes (quorum 2, a
// master declared down after down_after, a short failover timeout), all on
// free loopback ports in private temp dirs. Start() returns once every
// sentinel names the master and knows every replica and the other sentinels.
// Nodes and sentinels can be SIGKILLed and restarted. Processes die with the
// thread that started them (see RedisServer).
// With TLS the data nodes and the sentinels also have a tls-port, replicas
// and sentinels reach the data nodes (and the sentinels each other) over TLS
// (tls-replication), so the addresses the sentinels name are TLS ports; the
// helpers' redis-cli keeps the plain ports, and a node may be named by
// either port.
// Not thread-safe: one owner.
#ifndef STATESIDE_TESTS_SUPPORT_REDIS_SENTINEL_H_
#define STATESIDE_TESTS_SUPPORT_REDIS_SENTINEL_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/support/redis_server.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"

namespace stateside::testing {

struct RedisSentinelOptions {
  std::string master_name = "mymaster";
  int replicas = 1;
  int sentinels = 3;
  int quorum = 2;
  std::string sentinel_password;  // requirepass of the sentinels; "" = none
  // ACL users on the sentinels ("watcher on >secret &* +@all").
  std::vector<std::string> sentinel_acl_users;
  std::string data_password;      // requirepass of the data nodes; "" = none
  // ACL users on the data nodes ("app on >secret ~* &* +@all").
  std::vector<std::string> acl_users;
  RedisServerOptions::Tls tls;  // data nodes' and sentinels' certificate and CA
  absl::Duration down_after = absl::Milliseconds(1000);
  absl::Duration failover_timeout = absl::Milliseconds(3000);
  absl::Duration start_timeout = absl::Seconds(30);
};

class RedisSentinelSet {
 public:
  static absl::StatusOr<std::unique_ptr<RedisSentinelSet>> Start(
      RedisSentinelOptions options = RedisSentinelOptions());
  ~RedisSentinelSet();
  RedisSentinelSet(const RedisSentinelSet&) = delete;
  RedisSentinelSet& operator=(const RedisSentinelSet&) = delete;

  const RedisSentinelOptions& options() const { return options_; }
  // Data nodes: 0 is the first master, then the replicas.
  int node_count() const { return static_cast<int>(nodes_.size()); }
  RedisServer& node(int i) { return *nodes_[i]; }
  int NodeIndex(int port) const;  // by plain or TLS port; -1 if no node has it
  int sentinel_count() const { return static_cast<int>(sentinels_.size()); }
  int sentinel_port(int i) const;
  int sentinel_tls_port(int i) const;  // 0 without TLS

  // "redis://[:data_password@]127.0.0.1:S1,127.0.0.1:S2,..." (the sentinels);
  // "rediss://" and their TLS ports with options.tls.
  std::string url() const;
  // The same as the data nodes' ACL user `user`.
  std::string url_as(const std::string& user, const std::string& password) const;

  // The master port sentinel `i` names now (0: none, unknown or down); the
  // TLS port with options.tls.
  int MasterPortFrom(int i) const;
  // "master", "slave" (Redis's word in INFO) or "" if the node does not answer.
  std::string Role(int node) const;

  // Waits until every running sentinel names node `master` and sees the
  // other running sentinels and every replica that is up, healthy.
  absl::Status WaitSettled(int master, absl::Duration timeout);
  // Waits until every running sentinel names a master other than node
  // `old_master`; returns its index.
  absl::StatusOr<int> WaitNewMaster(int old_master, absl::Duration timeout);

  // redis-cli against sentinel `i` (with its password).
  RunResult SentinelCli(int i, const std::vector<std::string>& args,
                        absl::Duration timeout = absl::Seconds(10)) const;
  void KillSentinel(int i);
  absl::Status RestartSentinel(int i);
  std::string SentinelLog(int i) const;

 private:
  struct Sentinel {
    std::unique_ptr<TempDir> dir;
    int port = 0;
    int tls_port = 0;  // 0 without TLS
    std::optional<Subprocess> process;
  };

  explicit RedisSentinelSet(RedisSentinelOptions options) : options_(std::move(options)) {}
  absl::Status StartNodes();
  absl::Status LaunchSentinel(int i);
  bool SentinelRunning(int i);
  // The port replicas and sentinels use for `node`: its TLS port with TLS.
  int DataPort(const RedisServer& node) const;
  std::string UrlWith(const std::string& credentials) const;  // "user:pass@" or ""

  const RedisSentinelOptions options_;
  std::vector<std::unique_ptr<RedisServer>> nodes_;
  std::vector<Sentinel> sentinels_;
};

}  // namespace stateside::testing

#endif  // STATESIDE_TESTS_SUPPORT_REDIS_SENTINEL_H_
