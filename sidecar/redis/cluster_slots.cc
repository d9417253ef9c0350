// Redis Cluster addressing: CRC16 slots, routing keys, redirects, slot maps.
#include "sidecar/redis/cluster_slots.h"

#include <array>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/strip.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace stateside::redis {
namespace {

constexpr std::array<uint16_t, 256> MakeCrcTable() {
  std::array<uint16_t, 256> table{};
  for (int i = 0; i < 256; ++i) {
    uint16_t crc = static_cast<uint16_t>(i << 8);
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc & 0x8000) ? static_cast<uint16_t>((crc << 1) ^ 0x1021)
                           : static_cast<uint16_t>(crc << 1);
    }
    table[i] = crc;
  }
  return table;
}
constexpr std::array<uint16_t, 256> kCrcTable = MakeCrcTable();

absl::Status Bad(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("redis: unexpected cluster map reply: ", what));
}

std::optional<int64_t> AsInt(const Reply& r) {
  int64_t v = 0;
  if (r.is_integer()) return r.integer;
  if ((r.is_string() || r.is_status()) && absl::SimpleAtoi(r.str, &v)) return v;
  return std::nullopt;
}

// A RESP2 flat field/value array as a map of field -> value.
absl::flat_hash_map<std::string, const Reply*> Fields(const Reply& r) {
  absl::flat_hash_map<std::string, const Reply*> out;
  for (size_t i = 0; i + 1 < r.elements.size(); i += 2) {
    if (r.elements[i].is_string() || r.elements[i].is_status()) {
      out[r.elements[i].str] = &r.elements[i + 1];
    }
  }
  return out;
}

// Assigns [first, last] to node `owner`; false on a bad range.
bool Assign(int64_t first, int64_t last, int owner, ClusterMap* map) {
  if (first < 0 || last >= kClusterSlots || first > last) return false;
  for (int64_t s = first; s <= last; ++s) map->slot_owner[s] = owner;
  map->nodes[owner].slots += static_cast<int>(last - first + 1);
  return true;
}

}  // namespace

uint16_t Crc16(std::string_view data) {
  uint16_t crc = 0;
  for (unsigned char c : data) {
    crc = static_cast<uint16_t>((crc << 8) ^ kCrcTable[((crc >> 8) ^ c) & 0xff]);
  }
  return crc;
}

int KeySlot(std::string_view key) {
  const size_t open = key.find('{');
  if (open != std::string_view::npos) {
    const size_t close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) {
      key = key.substr(open + 1, close - open - 1);
    }
  }
  return Crc16(key) & (kClusterSlots - 1);
}

std::optional<std::string_view> CommandKey(const std::vector<std::string>& args) {
  if (args.size() < 2) return std::nullopt;
  const std::string name = absl::AsciiStrToUpper(args[0]);
  if (name == "EVALSHA" || name == "EVAL" || name == "EVALSHA_RO" || name == "EVAL_RO" ||
      name == "FCALL" || name == "FCALL_RO") {
    int64_t numkeys = 0;
    if (args.size() < 4 || !absl::SimpleAtoi(args[2], &numkeys) || numkeys <= 0) {
      return std::nullopt;
    }
    return args[3];
  }
  static constexpr absl::string_view kKeyless[] = {
      "PING",  "ECHO",   "SCRIPT",  "DBSIZE",   "RANDOMKEY", "SCAN",   "TIME",
      "PUBLISH", "INFO", "CLUSTER", "WAIT",     "ASKING",    "FLUSHALL", "FLUSHDB",
      "CONFIG", "CLIENT", "COMMAND"};
  for (absl::string_view k : kKeyless) {
    if (name == k) return std::nullopt;
  }
  return args[1];
}

std::optional<Redirect> ParseRedirect(std::string_view error_in) {
  absl::string_view error(error_in.data(), error_in.size());
  Redirect r;
  if (absl::ConsumePrefix(&error, "MOVED ")) {
    r.ask = false;
  } else if (absl::ConsumePrefix(&error, "ASK ")) {
    r.ask = true;
  } else {
    return std::nullopt;
  }
  const size_t space = error.find(' ');
  if (space == absl::string_view::npos) return std::nullopt;
  if (!absl::SimpleAtoi(error.substr(0, space), &r.slot) || r.slot < 0 ||
      r.slot >= kClusterSlots) {
    return std::nullopt;
  }
  absl::string_view endpoint = error.substr(space + 1);
  const size_t colon = endpoint.rfind(':');
  if (colon == absl::string_view::npos ||
      !absl::SimpleAtoi(endpoint.substr(colon + 1), &r.port) || r.port < 1 || r.port > 65535) {
    return std::nullopt;
  }
  absl::string_view host = endpoint.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  r.host = std::string(host);
  return r;
}

std::string ClusterMap::Node::address() const {
  const bool v6 = host.find(':') != std::string::npos;
  return absl::StrCat(v6 ? "[" : "", host, v6 ? "]" : "", ":", port);
}

absl::StatusOr<ClusterMap> ParseClusterShards(const Reply& reply, bool tls) {
  if (!reply.is_array()) return Bad("CLUSTER SHARDS is not an array");
  ClusterMap map;
  map.slot_owner.assign(kClusterSlots, -1);
  bool any_port = false, any_tls_port = false;
  for (const Reply& shard : reply.elements) {
    if (!shard.is_array()) return Bad("a shard is not an array");
    auto fields = Fields(shard);
    auto slots = fields.find("slots");
    auto nodes = fields.find("nodes");
    if (slots == fields.end() || nodes == fields.end() || !slots->second->is_array() ||
        !nodes->second->is_array()) {
      return Bad("a shard without slots or nodes");
    }
    int master = -1;
    for (const Reply& n : nodes->second->elements) {
      if (!n.is_array()) return Bad("a node is not an array");
      auto nf = Fields(n);
      ClusterMap::Node node;
      for (const char* name : {"endpoint", "ip"}) {
        auto it = nf.find(name);
        if (it != nf.end() && it->second->is_string() && !it->second->str.empty() &&
            it->second->str != "?") {
          node.host = it->second->str;
          break;
        }
      }
      any_port = any_port || nf.contains("port");
      any_tls_port = any_tls_port || nf.contains("tls-port");
      auto port = nf.find(tls ? "tls-port" : "port");
      std::optional<int64_t> p = port == nf.end() ? std::nullopt : AsInt(*port->second);
      if (node.host.empty() || !p.has_value() || *p < 1 || *p > 65535) continue;  // no endpoint
      node.port = static_cast<int>(*p);
      auto role = nf.find("role");
      node.master = role != nf.end() && role->second->str == "master";
      auto health = nf.find("health");
      node.healthy = health == nf.end() || health->second->str == "online";
      if (node.master && master < 0) master = static_cast<int>(map.nodes.size());
      map.nodes.push_back(std::move(node));
    }
    const std::vector<Reply>& ranges = slots->second->elements;
    if (ranges.size() % 2 != 0) return Bad("odd slot range list");
    if (master < 0) continue;  // a shard whose master has no endpoint serves nothing we reach
    for (size_t i = 0; i < ranges.size(); i += 2) {
      std::optional<int64_t> first = AsInt(ranges[i]), last = AsInt(ranges[i + 1]);
      if (!first || !last || !Assign(*first, *last, master, &map)) return Bad("bad slot range");
    }
  }
  if (tls && any_port && !any_tls_port) {
    // Nodes without tls-cluster announce their plain ports alone: a TLS
    // client would have no node to go to, and never goes to plain ones.
    return absl::FailedPreconditionError(
        "redis: the cluster nodes announce no TLS port (no tls-port in CLUSTER SHARDS): set "
        "tls-cluster yes on every node");
  }
  return map;
}

absl::StatusOr<ClusterMap> ParseClusterSlots(const Reply& reply) {
  if (!reply.is_array()) return Bad("CLUSTER SLOTS is not an array");
  ClusterMap map;
  map.slot_owner.assign(kClusterSlots, -1);
  absl::flat_hash_map<std::string, int> index;
  for (const Reply& range : reply.elements) {
    if (!range.is_array() || range.elements.size() < 3) return Bad("a short slot range");
    std::optional<int64_t> first = AsInt(range.elements[0]), last = AsInt(range.elements[1]);
    int owner = -1;
    for (size_t i = 2; i < range.elements.size(); ++i) {
      const Reply& n = range.elements[i];
      if (!n.is_array() || n.elements.size() < 2) return Bad("a short node entry");
      std::optional<int64_t> port = AsInt(n.elements[1]);
      if (!port || *port < 1 || *port > 65535 || n.elements[0].str.empty() ||
          n.elements[0].str == "?") {
        continue;
      }
      ClusterMap::Node node;
      node.host = n.elements[0].str;
      node.port = static_cast<int>(*port);
      node.master = i == 2;
      auto [it, fresh] = index.try_emplace(node.address(), static_cast<int>(map.nodes.size()));
      if (fresh) map.nodes.push_back(std::move(node));
      if (i == 2) {
        map.nodes[it->second].master = true;
        owner = it->second;
      }
    }
    if (owner < 0) continue;
    if (!first || !last || !Assign(*first, *last, owner, &map)) return Bad("bad slot range");
  }
  return map;
}

}  // namespace stateside::redis
