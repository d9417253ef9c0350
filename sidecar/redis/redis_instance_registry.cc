#include "sidecar/redis/redis_instance_registry.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace stateside::redis {
namespace {

// Milliseconds of Redis's clock, from TIME (seconds, microseconds).
constexpr char kNowMs[] = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
)lua";

// KEYS[1] registry hash; ARGV[1] id, ARGV[2] ttl ms, ARGV[3] record.
constexpr char kHeartbeat[] = R"lua(
local ttl = tonumber(ARGV[2])
redis.call('HSET', KEYS[1], ARGV[1], (now + ttl) .. ' ' .. ARGV[3])
if redis.call('PTTL', KEYS[1]) < 2 * ttl then
  redis.call('PEXPIRE', KEYS[1], 2 * ttl)
end
return 1
)lua";

// KEYS[1] registry hash -> the live records; expired or unreadable fields go.
constexpr char kList[] = R"lua(
local all = redis.call('HGETALL', KEYS[1])
local out = {}
for i = 1, #all, 2 do
  local v = all[i + 1]
  local sp = string.find(v, ' ', 1, true)
  local expiry = sp and tonumber(string.sub(v, 1, sp - 1))
  if expiry == nil or expiry <= now then
    redis.call('HDEL', KEYS[1], all[i])
  else
    out[#out + 1] = string.sub(v, sp + 1)
  end
end
return out
)lua";

constexpr DrainState kStates[] = {DrainState::kServing, DrainState::kDraining,
                                  DrainState::kDrained, DrainState::kHolding,
                                  DrainState::kStopped};

}  // namespace

RedisInstanceRegistry::RedisInstanceRegistry(RedisClient* client, std::string prefix,
                                             absl::Duration ttl)
    : client_(client),
      key_(absl::StrCat(prefix, "instances")),
      ttl_(std::max(ttl, absl::Milliseconds(1))),
      heartbeat_(RedisScript::Create(absl::StrCat(kNowMs, kHeartbeat))),
      list_(RedisScript::Create(absl::StrCat(kNowMs, kList))) {}

std::string RedisInstanceRegistry::Encode(const lifecycle::InstanceRecord& r) {
  nlohmann::json j = {
      {"id", r.id},
      {"hostname", r.hostname},
      {"pid", r.pid},
      {"start_time_us", absl::ToUnixMicros(r.start_time)},
      {"version", r.version},
      {"drain_state", std::string(DrainStateName(r.drain_state))},
      {"backend", r.backend},
      {"admin_address", r.admin_address},
      {"ready", r.ready},
  };
  // Replace, not throw, should a hostname hold invalid UTF-8.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

absl::StatusOr<lifecycle::InstanceRecord> RedisInstanceRegistry::Decode(std::string_view text) {
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  const auto bad = [&] {
    return absl::InternalError("instance registry: unreadable record");
  };
  if (!j.is_object()) return bad();
  const auto str = [&j](const char* name, std::string* out) {
    auto it = j.find(name);
    if (it == j.end() || !it->is_string()) return false;
    *out = it->get<std::string>();
    return true;
  };
  lifecycle::InstanceRecord r;
  std::string state;
  if (!str("id", &r.id) || !str("hostname", &r.hostname) || !str("version", &r.version) ||
      !str("drain_state", &state) || !str("backend", &r.backend) ||
      !str("admin_address", &r.admin_address)) {
    return bad();
  }
  auto pid = j.find("pid");
  auto start = j.find("start_time_us");
  auto ready = j.find("ready");
  if (pid == j.end() || !pid->is_number_integer() || start == j.end() ||
      !start->is_number_integer() || ready == j.end() || !ready->is_boolean()) {
    return bad();
  }
  r.pid = pid->get<int64_t>();
  r.start_time = absl::FromUnixMicros(start->get<int64_t>());
  r.ready = ready->get<bool>();
  bool known = false;
  for (DrainState s : kStates) {
    if (DrainStateName(s) == state) {
      r.drain_state = s;
      known = true;
    }
  }
  if (!known) return bad();
  return r;
}

absl::Status RedisInstanceRegistry::Heartbeat(const lifecycle::InstanceRecord& record) {
  absl::StatusOr<Reply> reply = client_->Call(heartbeat_->Call(
      {key_}, {record.id, std::to_string(absl::ToInt64Milliseconds(ttl_)), Encode(record)}));
  return reply.status();
}

absl::Status RedisInstanceRegistry::Remove(std::string_view id) {
  return client_->Call({"HDEL", key_, std::string(id)}).status();
}

void RedisInstanceRegistry::List(ListDone done) {
  client_->Execute(list_->Call({key_}, {}), [done = std::move(done)](
                                                absl::StatusOr<Reply> reply) mutable {
    if (!reply.ok()) return std::move(done)(reply.status());
    if (!reply->is_array()) {
      return std::move(done)(absl::InternalError("instance registry: unexpected reply"));
    }
    std::vector<lifecycle::InstanceRecord> records;
    records.reserve(reply->elements.size());
    for (const Reply& element : reply->elements) {
      // A record this version cannot read (a newer writer) is skipped, not
      // fatal to the listing.
      absl::StatusOr<lifecycle::InstanceRecord> record = Decode(element.str);
      if (record.ok()) records.push_back(*std::move(record));
    }
    std::move(done)(std::move(records));
  });
}

}  // namespace stateside::redis
