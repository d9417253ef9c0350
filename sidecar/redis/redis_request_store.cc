// RedisRequestStore: "<prefix>r:{<tag>}" holds the request ledger's value
// (session/request_ledger.h) with a PEXPIRE of its lifetime.
#include "sidecar/redis/redis_request_store.h"

#include <algorithm>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "sidecar/common/status_macros.h"

namespace stateside::redis {
namespace {

// The value at KEYS[1], or (none there) ARGV[1] stored for ARGV[2] ms and nil.
const char kClaimScript[] = R"lua(
local v = redis.call('GET', KEYS[1])
if v then return v end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
)lua";

// If KEYS[1] holds ARGV[1]: ARGV[2] for ARGV[3] ms, or no key if ARGV[2] is
// empty; 1. Else 0.
const char kReplaceScript[] = R"lua(
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return 1
)lua";

const std::shared_ptr<const RedisScript>& ClaimScript() {
  static const auto* script =
      new std::shared_ptr<const RedisScript>(RedisScript::Create(kClaimScript));
  return *script;
}

const std::shared_ptr<const RedisScript>& ReplaceScript() {
  static const auto* script =
      new std::shared_ptr<const RedisScript>(RedisScript::Create(kReplaceScript));
  return *script;
}

std::string Millis(absl::Time now, absl::Time until) {
  return std::to_string(std::max<int64_t>(
      1, absl::ToInt64Milliseconds(absl::Ceil(until - now, absl::Milliseconds(1)))));
}

}  // namespace

RedisRequestStore::RedisRequestStore(RedisClient* client, std::string prefix)
    : client_(client), prefix_(std::move(prefix)) {}

std::string RedisRequestStore::Key(std::string_view tag) const {
  return absl::StrCat(prefix_, "r:{", absl::string_view(tag.data(), tag.size()), "}");
}

absl::StatusOr<std::optional<std::string>> RedisRequestStore::Claim(std::string_view key,
                                                                    std::string_view value,
                                                                    absl::Time now,
                                                                    absl::Time until) {
  RedisCommand command =
      ClaimScript()->Call({Key(key)}, {std::string(value), Millis(now, until)});
  command.durable = true;
  ASSIGN_OR_RETURN(Reply reply, client_->Call(std::move(command)));
  if (reply.is_nil()) return std::nullopt;
  if (!reply.is_string()) return absl::InternalError("redis request store: unexpected reply");
  return std::move(reply.str);
}

void RedisRequestStore::Replace(std::string_view key, std::string_view expected,
                                std::string_view value, absl::Time now, absl::Time until,
                                Done done) {
  RedisCommand command = ReplaceScript()->Call(
      {Key(key)}, {std::string(expected), std::string(value), Millis(now, until)});
  command.durable = !value.empty();
  client_->Execute(std::move(command),
                   [done = std::move(done)](absl::StatusOr<Reply> reply) mutable {
                     if (!reply.ok()) return std::move(done)(reply.status());
                     if (!reply->is_integer()) {
                       return std::move(done)(
                           absl::InternalError("redis request store: unexpected reply"));
                     }
                     std::move(done)(reply->integer == 1);
                   });
}

}  // namespace stateside::redis
