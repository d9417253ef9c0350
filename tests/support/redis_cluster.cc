// RedisCluster: six (by default) redis-server processes joined into a cluster.
#include "tests/support/redis_cluster.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "tests/support/subprocess.h"
#include "tests/support/wait.h"

namespace stateside::testing {
namespace {

// "127.0.0.1:7000@17000" -> 7000.
int PortOf(absl::string_view address) {
  address = address.substr(0, address.find('@'));
  int port = 0;
  const size_t colon = address.rfind(':');
  if (colon == absl::string_view::npos || !absl::SimpleAtoi(address.substr(colon + 1), &port)) {
    return 0;
  }
  return port;
}

}  // namespace

absl::StatusOr<std::unique_ptr<RedisCluster>> RedisCluster::Start(RedisClusterOptions options) {
  std::unique_ptr<RedisCluster> cluster(new RedisCluster(std::move(options)));
  const RedisClusterOptions& o = cluster->options_;
  const int total = o.masters * (1 + o.replicas_per_master);
  if (o.masters < 3 || o.replicas_per_master < 0) {
    return absl::InvalidArgumentError("redis-cli --cluster create needs at least 3 masters");
  }
  for (int i = 0; i < total; ++i) {
    RedisServerOptions server;
    server.requirepass = o.requirepass;
    server.acl_users = o.acl_users;
    server.tls = o.tls;
    // The bus port is given explicitly: port + 10000 may be past 65535 or taken.
    const int bus = PickFreePort();
    server.extra_config = {"cluster-enabled yes", "cluster-config-file nodes.conf",
                           absl::StrCat("cluster-node-timeout ",
                                        absl::ToInt64Milliseconds(o.node_timeout)),
                           absl::StrCat("cluster-port ", bus)};
    if (!o.requirepass.empty()) {
      server.extra_config.push_back(absl::StrCat("masterauth \"", o.requirepass, "\""));
    }
    if (o.tls.enabled) {
      server.extra_config.insert(server.extra_config.end(),
                                 {"tls-cluster yes", "tls-replication yes"});
    }
    absl::StatusOr<std::unique_ptr<RedisServer>> node = RedisServer::Start(std::move(server));
    if (!node.ok()) return node.status();
    cluster->nodes_.push_back(*std::move(node));
  }
  std::vector<std::string> create = {"--cluster", "create"};
  for (const auto& node : cluster->nodes_) {
    create.push_back(absl::StrCat("127.0.0.1:", node->port()));
  }
  create.insert(create.end(), {"--cluster-replicas", std::to_string(o.replicas_per_master),
                               "--cluster-yes"});
  RunResult created = cluster->nodes_.front()->Cli(create, o.start_timeout);
  if (created.exit_status != 0) {
    return absl::InternalError(absl::StrCat("redis-cli --cluster create failed (",
                                            created.exit_status, "): ", created.out,
                                            created.err, "\n", cluster->logs()));
  }
  if (absl::Status s = cluster->WaitHealthy(o.start_timeout); !s.ok()) return s;
  return cluster;
}

RedisCluster::~RedisCluster() = default;

std::vector<int> RedisCluster::ports() const {
  std::vector<int> out;
  for (const auto& node : nodes_) out.push_back(node->port());
  return out;
}

std::vector<int> RedisCluster::tls_ports() const {
  std::vector<int> out;
  for (const auto& node : nodes_) out.push_back(node->tls_port());
  return out;
}

std::string RedisCluster::url() const {
  const std::string cred =
      options_.requirepass.empty() ? "" : absl::StrCat(":", options_.requirepass, "@");
  return UrlWith(cred);
}

std::string RedisCluster::url_as(const std::string& user, const std::string& password) const {
  return UrlWith(absl::StrCat(user, ":", password, "@"));
}

std::string RedisCluster::UrlWith(const std::string& credentials) const {
  std::vector<std::string> hosts;
  for (const auto& node : nodes_) {
    hosts.push_back(
        absl::StrCat("127.0.0.1:", options_.tls.enabled ? node->tls_port() : node->port()));
  }
  return absl::StrCat(options_.tls.enabled ? "rediss://" : "redis://", credentials,
                      absl::StrJoin(hosts, ","));
}

RedisServer* RedisCluster::Node(int port) const {
  for (const auto& node : nodes_) {
    if (node->port() == port || (node->tls_port() != 0 && node->tls_port() == port)) {
      return node.get();
    }
  }
  return nullptr;
}

RunResult RedisCluster::Cli(int port, const std::vector<std::string>& args,
                            absl::Duration timeout) const {
  RedisServer* node = Node(port);
  if (node == nullptr) return RunResult{};
  return node->Cli(args, timeout);
}

absl::Status RedisCluster::Reshard(int from, int to, int slots) const {
  const std::string seed = absl::StrCat("127.0.0.1:", from);
  RunResult check;
  if (!WaitFor(
          [&] {
            check = Cli(from, {"--cluster", "check", seed});
            return check.exit_status == 0 &&
                   absl::StrContains(check.out, "All nodes agree about slots configuration");
          },
          absl::Seconds(30), absl::Milliseconds(100))) {
    return absl::DeadlineExceededError(
        absl::StrCat("the nodes never agreed on the slots: ", check.out, check.err));
  }
  RunResult r = Cli(from,
                    {"--cluster", "reshard", seed, "--cluster-from", NodeId(from), "--cluster-to",
                     NodeId(to), "--cluster-slots", std::to_string(slots), "--cluster-yes"},
                    absl::Seconds(60));
  if (r.exit_status != 0) {
    return absl::InternalError(absl::StrCat("redis-cli --cluster reshard exited ", r.exit_status,
                                            ": ", r.out, r.err));
  }
  return absl::OkStatus();
}

std::vector<RedisCluster::NodeLine> RedisCluster::Nodes() const {
  for (const auto& node : nodes_) {
    if (!node->running()) continue;
    RunResult r = node->Cli({"CLUSTER", "NODES"});
    if (r.exit_status != 0 || r.out.empty()) continue;
    std::vector<NodeLine> out;
    for (absl::string_view line : absl::StrSplit(r.out, '\n', absl::SkipWhitespace())) {
      std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
      if (f.size() < 8) continue;
      NodeLine n;
      n.id = std::string(f[0]);
      n.port = PortOf(f[1]);
      n.master = absl::StrContains(f[2], "master");
      n.failed = absl::StrContains(f[2], "fail") && !absl::StrContains(f[2], "fail?");
      n.master_id = f[3] == "-" ? "" : std::string(f[3]);
      for (size_t i = 8; i < f.size(); ++i) {
        if (absl::StartsWith(f[i], "[")) continue;  // a migration in progress
        std::pair<absl::string_view, absl::string_view> range =
            absl::StrSplit(f[i], absl::MaxSplits('-', 1));
        int first = 0, last = 0;
        if (!absl::SimpleAtoi(range.first, &first)) continue;
        if (range.second.empty()) {
          last = first;
        } else if (!absl::SimpleAtoi(range.second, &last)) {
          continue;
        }
        n.slots.push_back({first, last});
      }
      out.push_back(std::move(n));
    }
    return out;
  }
  return {};
}

std::vector<int> RedisCluster::MasterPorts() const {
  std::vector<int> out;
  for (const NodeLine& n : Nodes()) {
    if (n.master && !n.failed && !n.slots.empty()) out.push_back(n.port);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<int> RedisCluster::ReplicaPorts() const {
  std::vector<int> out;
  for (const NodeLine& n : Nodes()) {
    if (!n.master) out.push_back(n.port);
  }
  std::sort(out.begin(), out.end());
  return out;
}

int RedisCluster::MasterOfSlot(int slot) const {
  for (const NodeLine& n : Nodes()) {
    if (!n.master || n.failed) continue;
    for (auto [first, last] : n.slots) {
      if (slot >= first && slot <= last) return n.port;
    }
  }
  return 0;
}

std::string RedisCluster::NodeId(int port) const {
  for (const NodeLine& n : Nodes()) {
    if (n.port == port) return n.id;
  }
  return "";
}

std::vector<int> RedisCluster::ReplicasOf(int master_port) const {
  std::vector<NodeLine> nodes = Nodes();
  std::string id;
  for (const NodeLine& n : nodes) {
    if (n.port == master_port) id = n.id;
  }
  std::vector<int> out;
  for (const NodeLine& n : nodes) {
    if (!id.empty() && n.master_id == id) out.push_back(n.port);
  }
  return out;
}

std::vector<std::pair<int, int>> RedisCluster::SlotRanges(int master_port) const {
  for (const NodeLine& n : Nodes()) {
    if (n.port == master_port && n.master) return n.slots;
  }
  return {};
}

void RedisCluster::Kill(int port) {
  if (RedisServer* node = Node(port)) node->Kill();
}

absl::Status RedisCluster::Restart(int port) {
  RedisServer* node = Node(port);
  if (node == nullptr) return absl::NotFoundError(absl::StrCat("no node on port ", port));
  return node->Restart();
}

bool RedisCluster::running(int port) const {
  RedisServer* node = Node(port);
  return node != nullptr && node->running();
}

absl::Status RedisCluster::WaitHealthy(absl::Duration timeout) const {
  std::string last;
  const bool ok = WaitFor(
      [&] {
        for (const auto& node : nodes_) {
          if (!node->running()) continue;
          RunResult info = node->Cli({"CLUSTER", "INFO"}, absl::Seconds(5));
          if (!absl::StrContains(info.out, "cluster_state:ok") ||
              !absl::StrContains(info.out, "cluster_slots_ok:16384")) {
            last = absl::StrCat("node ", node->port(), ": ", info.out, info.err);
            return false;
          }
          RunResult repl = node->Cli({"INFO", "replication"}, absl::Seconds(5));
          if (absl::StrContains(repl.out, "role:slave") &&
              !absl::StrContains(repl.out, "master_link_status:up")) {
            last = absl::StrCat("replica ", node->port(), ": ", repl.out);
            return false;
          }
        }
        return true;
      },
      timeout, absl::Milliseconds(100));
  if (ok) return absl::OkStatus();
  return absl::DeadlineExceededError(
      absl::StrCat("the cluster did not become healthy within ", absl::FormatDuration(timeout),
                   "; last: ", last));
}

std::string RedisCluster::logs() const {
  std::string out;
  for (const auto& node : nodes_) {
    absl::StrAppend(&out, "---- node ", node->port(), " ----\n", node->log());
  }
  return out;
}

}  // namespace stateside::testing
