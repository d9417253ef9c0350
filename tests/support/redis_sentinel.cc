// RedisSentinelSet: a throwaway master, replicas and sentinels for
// integration tests.
#include "tests/support/redis_sentinel.h"

#include <unistd.h>

#include <fstream>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "tests/support/wait.h"

namespace stateside::testing {
namespace {

// redis-cli prints a flat reply one element per line: pairs into a map.
std::map<std::string, std::string> Pairs(const std::string& out) {
  std::vector<std::string> lines = absl::StrSplit(out, '\n', absl::SkipEmpty());
  std::map<std::string, std::string> m;
  for (size_t i = 0; i + 1 < lines.size(); i += 2) {
    m[std::string(absl::StripAsciiWhitespace(lines[i]))] =
        std::string(absl::StripAsciiWhitespace(lines[i + 1]));
  }
  return m;
}

int ToInt(const std::string& s) {
  int v = 0;
  return absl::SimpleAtoi(s, &v) ? v : -1;
}

}  // namespace

absl::StatusOr<std::unique_ptr<RedisSentinelSet>> RedisSentinelSet::Start(
    RedisSentinelOptions options) {
  std::unique_ptr<RedisSentinelSet> set(new RedisSentinelSet(std::move(options)));
  if (absl::Status s = set->StartNodes(); !s.ok()) return s;
  for (int i = 0; i < set->options_.sentinels; ++i) {
    set->sentinels_.emplace_back();
    set->sentinels_.back().dir = std::make_unique<TempDir>();
    absl::Status last;
    for (int attempt = 0; attempt < 5; ++attempt) {  // PickFreePort can race
      set->sentinels_.back().port = PickFreePort();
      set->sentinels_.back().tls_port = set->options_.tls.enabled ? PickFreePort() : 0;
      last = set->LaunchSentinel(i);
      if (last.ok()) break;
    }
    if (!last.ok()) return last;
  }
  if (absl::Status s = set->WaitSettled(0, set->options_.start_timeout); !s.ok()) return s;
  return set;
}

RedisSentinelSet::~RedisSentinelSet() = default;

absl::Status RedisSentinelSet::StartNodes() {
  RedisServerOptions master;
  master.requirepass = options_.data_password;
  master.acl_users = options_.acl_users;
  master.tls = options_.tls;
  if (!options_.data_password.empty()) {
    master.extra_config.push_back(absl::StrCat("masterauth \"", options_.data_password, "\""));
  }
  if (options_.tls.enabled) master.extra_config.push_back("tls-replication yes");
  auto m = RedisServer::Start(master);
  if (!m.ok()) return m.status();
  nodes_.push_back(*std::move(m));
  for (int i = 0; i < options_.replicas; ++i) {
    RedisServerOptions replica = master;
    replica.extra_config.push_back(absl::StrCat("replicaof 127.0.0.1 ", DataPort(*nodes_[0])));
    auto r = RedisServer::Start(replica);
    if (!r.ok()) return r.status();
    nodes_.push_back(*std::move(r));
  }
  // The sentinels learn the replicas from the master's INFO, which they read
  // every 10 s after the first: start them once the replicas are attached.
  const bool attached = WaitFor(
      [&] {
        RunResult r = nodes_[0]->Cli({"INFO", "replication"});
        int online = 0;
        for (absl::string_view line : absl::StrSplit(r.out, '\n')) {
          if (absl::StartsWith(line, "slave") && absl::StrContains(line, "state=online")) ++online;
        }
        return online == options_.replicas;
      },
      options_.start_timeout, absl::Milliseconds(50));
  if (!attached) return absl::DeadlineExceededError("the replicas did not attach to the master");
  return absl::OkStatus();
}

absl::Status RedisSentinelSet::LaunchSentinel(int i) {
  Sentinel& s = sentinels_[i];
  const std::string conf = s.dir->File("sentinel.conf");
  // Written once: a restarted sentinel keeps what it rewrote (the current
  // master, epochs, the replicas and sentinels it knows).
  if (access(conf.c_str(), F_OK) != 0) {
    const std::string& name = options_.master_name;
    std::ofstream out(conf, std::ios::trunc);
    out << "port " << s.port << "\n"
        << "bind 127.0.0.1\n"
        << "protected-mode no\n"
        << "daemonize no\n"
        << "dir \"" << s.dir->path() << "\"\n"
        << "logfile \"\"\n"
        << "sentinel monitor " << name << " 127.0.0.1 " << DataPort(*nodes_[0]) << " "
        << options_.quorum << "\n"
        << "sentinel down-after-milliseconds " << name << " "
        << absl::ToInt64Milliseconds(options_.down_after) << "\n"
        << "sentinel failover-timeout " << name << " "
        << absl::ToInt64Milliseconds(options_.failover_timeout) << "\n"
        << "sentinel parallel-syncs " << name << " 1\n";
    if (!options_.data_password.empty()) {
      out << "sentinel auth-pass " << name << " \"" << options_.data_password << "\"\n";
    }
    if (!options_.sentinel_password.empty()) {
      out << "requirepass \"" << options_.sentinel_password << "\"\n"
          << "sentinel sentinel-pass \"" << options_.sentinel_password << "\"\n";
    }
    for (const std::string& user : options_.sentinel_acl_users) out << "user " << user << "\n";
    if (options_.tls.enabled) {
      // tls-replication: TLS to the data nodes and the other sentinels, and
      // the TLS port in the hello messages.
      out << "tls-port " << s.tls_port << "\n"
          << "tls-cert-file \"" << options_.tls.cert_file << "\"\n"
          << "tls-key-file \"" << options_.tls.key_file << "\"\n"
          << "tls-ca-cert-file \"" << options_.tls.ca_file << "\"\n"
          << "tls-auth-clients no\n"
          << "tls-replication yes\n";
    }
    out.close();
    if (!out) return absl::InternalError("cannot write sentinel.conf");
  }
  SubprocessOptions sp;
  // Debian's redis-sentinel is redis-server in sentinel mode.
  if (access("/usr/bin/redis-sentinel", X_OK) == 0) {
    sp.argv = {"/usr/bin/redis-sentinel", conf};
  } else {
    sp.argv = {"redis-server", conf, "--sentinel"};
  }
  if (access("/usr/bin/setpriv", X_OK) == 0) {
    sp.argv.insert(sp.argv.begin(), {"/usr/bin/setpriv", "--pdeathsig", "KILL"});
  }
  sp.log_path = s.dir->File("sentinel.log");
  absl::StatusOr<Subprocess> proc = Subprocess::Start(std::move(sp));
  if (!proc.ok()) return proc.status();
  s.process.emplace(*std::move(proc));
  const bool up = WaitFor(
      [&] {
        if (!s.process->running()) return true;
        return SentinelCli(i, {"PING"}, absl::Seconds(2)).out == "PONG\n";
      },
      options_.start_timeout, absl::Milliseconds(20));
  if (up && s.process->running()) return absl::OkStatus();
  s.process->Kill();
  return absl::UnavailableError(
      absl::StrCat("redis-sentinel did not start; log:\n", SentinelLog(i)));
}

int RedisSentinelSet::NodeIndex(int port) const {
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (port != 0 && (nodes_[i]->port() == port || nodes_[i]->tls_port() == port)) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

int RedisSentinelSet::DataPort(const RedisServer& node) const {
  return options_.tls.enabled ? node.tls_port() : node.port();
}

int RedisSentinelSet::sentinel_port(int i) const { return sentinels_[i].port; }

int RedisSentinelSet::sentinel_tls_port(int i) const { return sentinels_[i].tls_port; }

std::string RedisSentinelSet::url() const {
  return UrlWith(options_.data_password.empty() ? ""
                                                : absl::StrCat(":", options_.data_password, "@"));
}

std::string RedisSentinelSet::url_as(const std::string& user, const std::string& password) const {
  return UrlWith(absl::StrCat(user, ":", password, "@"));
}

std::string RedisSentinelSet::UrlWith(const std::string& credentials) const {
  std::string hosts;
  for (const Sentinel& s : sentinels_) {
    absl::StrAppend(&hosts, hosts.empty() ? "" : ",", "127.0.0.1:",
                    options_.tls.enabled ? s.tls_port : s.port);
  }
  return absl::StrCat(options_.tls.enabled ? "rediss://" : "redis://", credentials, hosts);
}

RunResult RedisSentinelSet::SentinelCli(int i, const std::vector<std::string>& args,
                                        absl::Duration timeout) const {
  std::vector<std::string> argv = {"redis-cli", "-h", "127.0.0.1", "-p",
                                   std::to_string(sentinels_[i].port)};
  if (!options_.sentinel_password.empty()) {
    argv.insert(argv.end(), {"--no-auth-warning", "-a", options_.sentinel_password});
  }
  argv.insert(argv.end(), args.begin(), args.end());
  return Run(argv, {}, timeout);
}

int RedisSentinelSet::MasterPortFrom(int i) const {
  RunResult r = SentinelCli(i, {"SENTINEL", "GET-MASTER-ADDR-BY-NAME", options_.master_name},
                            absl::Seconds(2));
  std::vector<std::string> lines = absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  if (r.exit_status != 0 || lines.size() != 2) return 0;
  return std::max(0, ToInt(lines[1]));
}

std::string RedisSentinelSet::Role(int node) const {
  RunResult r = nodes_[node]->Cli({"ROLE"}, absl::Seconds(2));
  std::vector<std::string> lines = absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  if (r.exit_status != 0 || lines.empty()) return "";
  if (lines[0] != "master" && lines[0] != "slave") return "";
  return lines[0];
}

bool RedisSentinelSet::SentinelRunning(int i) {
  return sentinels_[i].process.has_value() && sentinels_[i].process->running();
}

absl::Status RedisSentinelSet::WaitSettled(int master, absl::Duration timeout) {
  std::string why;
  const bool settled = WaitFor(
      [&] {
        int running = 0;
        for (int i = 0; i < sentinel_count(); ++i) running += SentinelRunning(i) ? 1 : 0;
        int replicas_up = 0;
        for (int n = 0; n < node_count(); ++n) {
          if (n != master && nodes_[n]->running()) ++replicas_up;
        }
        for (int i = 0; i < sentinel_count(); ++i) {
          if (!SentinelRunning(i)) continue;
          auto m = Pairs(SentinelCli(i, {"SENTINEL", "MASTER", options_.master_name},
                                     absl::Seconds(2)).out);
          if (ToInt(m["port"]) != DataPort(*nodes_[master]) || m["flags"] != "master") {
            why = absl::StrCat("sentinel ", i, " names port ", m["port"], " flags ", m["flags"]);
            return false;
          }
          if (ToInt(m["num-other-sentinels"]) < running - 1) {
            why = absl::StrCat("sentinel ", i, " knows ", m["num-other-sentinels"],
                               " other sentinels");
            return false;
          }
          // Replicas: each running one listed with plain "slave" flags.
          RunResult r = SentinelCli(i, {"SENTINEL", "REPLICAS", options_.master_name},
                                    absl::Seconds(2));
          int healthy = 0;
          std::vector<std::string> lines = absl::StrSplit(r.out, '\n', absl::SkipEmpty());
          for (size_t k = 0; k + 1 < lines.size(); ++k) {
            if (lines[k] == "flags" && lines[k + 1] == "slave") ++healthy;
          }
          if (healthy < replicas_up) {
            why = absl::StrCat("sentinel ", i, " sees ", healthy, " healthy replicas of ",
                               replicas_up);
            return false;
          }
        }
        return true;
      },
      timeout, absl::Milliseconds(100));
  if (settled) return absl::OkStatus();
  return absl::DeadlineExceededError(absl::StrCat("sentinels not settled: ", why));
}

absl::StatusOr<int> RedisSentinelSet::WaitNewMaster(int old_master, absl::Duration timeout) {
  int found = -1;
  const bool moved = WaitFor(
      [&] {
        found = -1;
        for (int i = 0; i < sentinel_count(); ++i) {
          if (!SentinelRunning(i)) continue;
          const int index = NodeIndex(MasterPortFrom(i));
          if (index < 0 || index == old_master || (found >= 0 && index != found)) return false;
          found = index;
        }
        return found >= 0;
      },
      timeout, absl::Milliseconds(20));
  if (!moved) return absl::DeadlineExceededError("the sentinels did not agree on a new master");
  return found;
}

void RedisSentinelSet::KillSentinel(int i) {
  if (sentinels_[i].process.has_value()) sentinels_[i].process->Kill();
}

absl::Status RedisSentinelSet::RestartSentinel(int i) {
  KillSentinel(i);
  return LaunchSentinel(i);
}

std::string RedisSentinelSet::SentinelLog(int i) const {
  std::ifstream in(sentinels_[i].dir->File("sentinel.log"));
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace stateside::testing
