// Key check values in Redis (key_check.h).
#include "sidecar/redis/key_check.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "sidecar/common/string_view.h"

namespace stateside::redis {
namespace {

// Per key: SET NX (publish if first), then GET (what is in force).
std::vector<RedisCommand> Commands(std::string_view prefix, const crypto::Keyring& keyring,
                                   std::vector<std::string>* values) {
  std::vector<RedisCommand> commands;
  for (const crypto::Keyring::Key& key : keyring.keys()) {
    values->push_back(crypto::Keyring::CheckValue(key));
    const std::string name = KeyCheckKey(prefix, key.id);
    commands.push_back(RedisCommand({"SET", name, values->back(), "NX"}));
    commands.push_back(RedisCommand({"GET", name}));
  }
  return commands;
}

absl::StatusOr<std::vector<std::string>> Compare(const crypto::Keyring& keyring,
                                                 const std::vector<std::string>& values,
                                                 const std::vector<absl::StatusOr<Reply>>& replies) {
  if (replies.size() != 2 * values.size()) {
    return absl::InternalError("key check: wrong number of replies");
  }
  std::vector<std::string> mismatched;
  for (size_t i = 0; i < values.size(); ++i) {
    if (!replies[2 * i].ok()) return replies[2 * i].status();
    const absl::StatusOr<Reply>& stored = replies[2 * i + 1];
    if (!stored.ok()) return stored.status();
    // Nil only if someone deleted the value between the two commands: the
    // next check publishes it again.
    if (stored->is_nil()) continue;
    if (!stored->is_string()) return absl::InternalError("key check: unexpected reply to GET");
    if (stored->str != values[i]) mismatched.push_back(keyring.keys()[i].id);
  }
  return mismatched;
}

}  // namespace

std::string KeyCheckKey(std::string_view prefix, std::string_view key_id) {
  return absl::StrCat(Sv(prefix), "kcv:", Sv(key_id));
}

absl::StatusOr<std::vector<std::string>> CheckKeys(RedisClient* client,
                                                   std::string_view prefix,
                                                   const crypto::Keyring& keyring) {
  std::vector<std::string> values;
  std::vector<RedisCommand> commands = Commands(prefix, keyring, &values);
  return Compare(keyring, values, client->CallBatch(std::move(commands)));
}

void CheckKeysAsync(RedisClient* client, std::string_view prefix,
                    const crypto::Keyring& keyring,
                    absl::AnyInvocable<void(absl::StatusOr<std::vector<std::string>>)> done) {
  std::vector<std::string> values;
  std::vector<RedisCommand> commands = Commands(prefix, keyring, &values);
  client->ExecuteBatch(std::move(commands),
                       [&keyring, values = std::move(values), done = std::move(done)](
                           std::vector<absl::StatusOr<Reply>> replies) mutable {
                         std::move(done)(Compare(keyring, values, replies));
                       });
}

}  // namespace stateside::redis
