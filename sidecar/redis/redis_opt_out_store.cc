// RedisOptOutStore: "<prefix>o:{<tag>}" = expiry (µs since the epoch) [and the
// sealed subject], with a
// PEXPIRE of (expiry - now) as garbage collection. The stored expiry, not
// Redis's clock, decides, so instances with skewed clocks agree with their own
// `now` as in the memory store. See docs/REDIS_KEYS.md.
#include "sidecar/redis/redis_opt_out_store.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "sidecar/common/status_macros.h"

namespace stateside::redis {

namespace {

// Refile's first step, on the old key: its value and PTTL, if it holds what
// the caller expects (ARGV[1]; '' = anything). {0}: absent, {2}: differs.
const char kTakeScript[] = R"lua(
local v = redis.call('GET', KEYS[1])
if not v then return {0} end
if ARGV[1] ~= '' and ARGV[1] ~= v then return {2} end
return {1, v, redis.call('PTTL', KEYS[1])}
)lua";

// Refile's last step: deletes the old key only if it still holds ARGV[1].
const char kDeleteIfScript[] = R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
)lua";

}  // namespace

absl::StatusOr<int> RefileOptOut(RedisClient& client, const std::string& from_key,
                                 const std::string& to_key, std::string_view expected,
                                 std::string_view sealed_subject) {
  static const auto* take = new std::shared_ptr<const RedisScript>(RedisScript::Create(kTakeScript));
  static const auto* delete_if =
      new std::shared_ptr<const RedisScript>(RedisScript::Create(kDeleteIfScript));
  auto unexpected = [] { return absl::InternalError("redis opt-out store: unexpected refile reply"); };
  ASSIGN_OR_RETURN(Reply taken, client.Call((*take)->Call({from_key}, {std::string(expected)})));
  if (!taken.is_array() || taken.elements.empty() || !taken.elements[0].is_integer()) {
    return unexpected();
  }
  if (taken.elements[0].integer != 1) return static_cast<int>(taken.elements[0].integer);
  if (taken.elements.size() != 3 || !taken.elements[2].is_integer()) return unexpected();
  const std::string& value = taken.elements[1].str;
  const int64_t pttl = taken.elements[2].integer;
  absl::Time expiry;
  std::string_view old_subject;
  if (!ParseOptOutValue(value, &expiry, &old_subject)) return unexpected();
  if (pttl > 0) {
    // NX: a flag already filed under the new tag is kept.
    RETURN_IF_ERROR(client
                        .Call(RedisCommand({"SET", to_key, OptOutValue(expiry, sealed_subject),
                                            "PX", std::to_string(pttl), "NX"}))
                        .status());
  }
  ASSIGN_OR_RETURN(Reply deleted, client.Call((*delete_if)->Call({from_key}, {value})));
  if (!deleted.is_integer()) return unexpected();
  // 0: rewritten meanwhile; the writer's value stands under the old tag.
  return deleted.integer == 1 ? 1 : 2;
}

std::string OptOutValue(absl::Time expiry, std::string_view sealed_subject) {
  std::string value = std::to_string(absl::ToUnixMicros(expiry));
  if (!sealed_subject.empty()) {
    absl::StrAppend(&value, " ",
                    absl::string_view(sealed_subject.data(), sealed_subject.size()));
  }
  return value;
}

bool ParseOptOutValue(std::string_view value, absl::Time* expiry,
                      std::string_view* sealed_subject) {
  const size_t space = value.find(' ');
  const std::string_view digits = value.substr(0, space);
  int64_t expiry_us = 0;
  if (digits.empty() ||
      !absl::SimpleAtoi(absl::string_view(digits.data(), digits.size()), &expiry_us)) {
    return false;
  }
  *expiry = absl::FromUnixMicros(expiry_us);
  *sealed_subject = space == std::string_view::npos ? std::string_view()
                                                    : value.substr(space + 1);
  return true;
}

RedisOptOutStore::RedisOptOutStore(RedisClient* client, std::string prefix)
    : client_(client), prefix_(std::move(prefix)) {}

std::string RedisOptOutStore::Key(std::string_view tag) const {
  return absl::StrCat(prefix_, "o:{", absl::string_view(tag.data(), tag.size()), "}");
}

absl::Status RedisOptOutStore::Set(std::string_view tag, bool opted_out, absl::Time now,
                                   absl::Time expiry) {
  // A flag that would already be expired is the same as no flag.
  if (!opted_out || expiry <= now) {
    return client_->Call(RedisCommand({"DEL", Key(tag)})).status();
  }
  return SetWithSubject(tag, now, expiry, "");
}

absl::Status RedisOptOutStore::SetWithSubject(std::string_view tag, absl::Time now,
                                              absl::Time expiry,
                                              std::string_view sealed_subject) {
  if (expiry <= now) return client_->Call(RedisCommand({"DEL", Key(tag)})).status();
  const int64_t ms = std::max<int64_t>(
      1, absl::ToInt64Milliseconds(absl::Ceil(expiry - now, absl::Milliseconds(1))));
  return client_
      ->Call(RedisCommand(
          {"SET", Key(tag), OptOutValue(expiry, sealed_subject), "PX", std::to_string(ms)}))
      .status();
}

absl::StatusOr<bool> RedisOptOutStore::Refile(std::string_view from, std::string_view to,
                                              std::string_view sealed_subject,
                                              absl::Time /*now*/) {
  ASSIGN_OR_RETURN(int moved, RefileOptOut(*client_, Key(from), Key(to), "", sealed_subject));
  return moved == 1;
}

absl::StatusOr<bool> RedisOptOutStore::Get(std::string_view tag, absl::Time now) {
  ASSIGN_OR_RETURN(Reply reply, client_->Call(RedisCommand({"GET", Key(tag)})));
  if (reply.is_nil()) return false;
  absl::Time expiry;
  std::string_view sealed_subject;
  if (!reply.is_string() || !ParseOptOutValue(reply.str, &expiry, &sealed_subject)) {
    return absl::InternalError("redis opt-out store: unexpected value");
  }
  return now < expiry;
}

}  // namespace stateside::redis
