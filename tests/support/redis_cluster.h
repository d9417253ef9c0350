// A real Redis Cluster for tests: `masters` x (1 + replicas_per_master)
// redis-server processes (RedisServer each: free loopback ports, a private
// temp dir, no persistence, dying with the test) started with
// cluster-enabled, joined by `redis-cli --cluster create`, and returned once
// every node reports cluster_state:ok and every replica's link is up.
// cluster-node-timeout is short (1 s) so a killed master fails over within a
// few seconds. Kill/Restart a node by port; a restarted node rejoins from its
// nodes.conf (as a replica if it was failed over meanwhile).
// With TLS each node also has a tls-port, and tls-cluster / tls-replication
// make the bus and the replication TLS and have the nodes announce their TLS
// ports to TLS clients (CLUSTER SHARDS tls-port, SLOTS, MOVED); the helpers'
// redis-cli keeps the plain ports (and sees plain ports in CLUSTER NODES),
// and a node may be named by either port.
// Not thread-safe: one owner.
#ifndef STATESIDE_TESTS_SUPPORT_REDIS_CLUSTER_H_
#define STATESIDE_TESTS_SUPPORT_REDIS_CLUSTER_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/support/redis_server.h"

namespace stateside::testing {

struct RedisClusterOptions {
  int masters = 3;
  int replicas_per_master = 1;
  absl::Duration node_timeout = absl::Milliseconds(1000);
  std::string requirepass;  // "" = none (also the masterauth of replicas)
  // ACL users on every node ("app on >secret ~* &* +@all").
  std::vector<std::string> acl_users;
  RedisServerOptions::Tls tls;  // every node's certificate and CA
  absl::Duration start_timeout = absl::Seconds(60);
};

class RedisCluster {
 public:
  static absl::StatusOr<std::unique_ptr<RedisCluster>> Start(
      RedisClusterOptions options = RedisClusterOptions());
  ~RedisCluster();
  RedisCluster(const RedisCluster&) = delete;
  RedisCluster& operator=(const RedisCluster&) = delete;

  // Every node's port, in start order.
  std::vector<int> ports() const;
  // Their TLS ports (0s without TLS), in the same order.
  std::vector<int> tls_ports() const;
  // "redis://[:pass@]127.0.0.1:p1,127.0.0.1:p2,..." over every node;
  // "rediss://" and the TLS ports with options.tls.
  std::string url() const;
  // The same as the ACL user `user`.
  std::string url_as(const std::string& user, const std::string& password) const;

  // As the cluster sees it now (CLUSTER NODES on a running node): the ports
  // of masters serving slots that are not failed, and of replicas.
  std::vector<int> MasterPorts() const;
  std::vector<int> ReplicaPorts() const;
  // The port of the master serving `slot` (0 if none known), and its node id.
  int MasterOfSlot(int slot) const;
  std::string NodeId(int port) const;
  // The replicas of the master on `port`.
  std::vector<int> ReplicasOf(int master_port) const;
  // The slot ranges [first, last] the master on `port` serves.
  std::vector<std::pair<int, int>> SlotRanges(int master_port) const;

  // SIGKILL, and start again on the same ports with the same nodes.conf.
  void Kill(int port);
  absl::Status Restart(int port);
  bool running(int port) const;

  // Until every running node says cluster_state:ok (all slots served) and
  // every running replica's link to its master is up.
  absl::Status WaitHealthy(absl::Duration timeout = absl::Seconds(30)) const;

  // redis-cli -c against `port` (with the password).
  RunResult Cli(int port, const std::vector<std::string>& args,
                absl::Duration timeout = absl::Seconds(30)) const;
  std::string logs() const;  // every node's log, for failure messages

  // `redis-cli --cluster reshard`: `slots` slots (the source's lowest
  // numbered) from the master on `from` to the master on `to`, keys
  // included, once every node agrees on the slots (redis-cli refuses while
  // gossip still spreads the last move; waited for up to 30 s).
  absl::Status Reshard(int from, int to, int slots) const;

 private:
  explicit RedisCluster(RedisClusterOptions options) : options_(std::move(options)) {}
  RedisServer* Node(int port) const;  // by its plain or TLS port
  std::string UrlWith(const std::string& credentials) const;  // "user:pass@" or ""
  // CLUSTER NODES from the first running node: id, port, flags, master id, slots.
  struct NodeLine {
    std::string id;
    int port = 0;
    bool master = false;
    bool failed = false;
    std::string master_id;
    std::vector<std::pair<int, int>> slots;
  };
  std::vector<NodeLine> Nodes() const;

  const RedisClusterOptions options_;
  std::vector<std::unique_ptr<RedisServer>> nodes_;
};

}  // namespace stateside::testing

#endif  // STATESIDE_TESTS_SUPPORT_REDIS_CLUSTER_H_
