// RedisBroker's presence: this instance's entries in room and user hashes,
// its index and liveness key, the heartbeat's sweep of dead instances and
// the drain. Every command is single-slot; what spans slots goes as
// separate commands in one pipeline (one WriteLane item), or as steps when
// one needs another's answer. The rule every step keeps: an instance's
// index lists at least every entry it has in a hash, so a failure between
// commands leaves nothing a resync or a sweep cannot find. A failed write
// asks for a resync (SyncPresence) at the next Refresh.
#include <algorithm>
#include <iterator>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "sidecar/common/status_join.h"
#include "sidecar/common/status_macros.h"
#include "sidecar/redis/broker_replies.h"
#include "sidecar/redis/redis_broker.h"

namespace stateside::redis {
namespace {

using broker_internal::FirstError;
using broker_internal::Millis;
using broker_internal::ToUint;
using broker_internal::Unexpected;

using realtime::ConnPresence;

using Entries = std::vector<std::pair<std::string, std::string>>;  // (hash key, field)

// One connection of an index: its tags ("u:<ub>", "r:<rb>").
struct IndexEntry {
  std::string conn;
  std::vector<std::string> tags;
};

// An HSCAN reply of an index: {cursor, {conn, tags, ...}}.
absl::Status ParseScan(const RedisReply& reply, std::string* cursor,
                       std::vector<IndexEntry>* out) {
  if (!reply.is_array() || reply.elements.size() != 2 || !reply.elements[0].is_string() ||
      !reply.elements[1].is_array() || reply.elements[1].elements.size() % 2 != 0) {
    return Unexpected("index", reply);
  }
  *cursor = reply.elements[0].str;
  const std::vector<RedisReply>& kv = reply.elements[1].elements;
  for (size_t i = 0; i < kv.size(); i += 2) {
    IndexEntry entry;
    entry.conn = kv[i].str;
    entry.tags = absl::StrSplit(kv[i + 1].str, ' ', absl::SkipEmpty());
    out->push_back(std::move(entry));
  }
  return absl::OkStatus();
}

using IndexMap = std::map<std::string, std::vector<std::string>>;  // conn -> tags
using IndexThen =
    absl::AnyInvocable<void(absl::StatusOr<IndexMap>, WriteLane::Step* next)>;

// Lane steps reading an index in HSCAN chunks (`before` go out with the
// first); `then` gets the whole index (HSCAN may repeat a field: the map
// keeps one) and fills in the next step.
WriteLane::Step ScanIndexStep(const std::string& idx, std::vector<RedisCommand> before,
                              std::string cursor, std::shared_ptr<IndexMap> acc,
                              std::shared_ptr<IndexThen> then) {
  WriteLane::Step step;
  step.commands = std::move(before);
  step.commands.push_back(
      RedisCommand({"HSCAN", idx, cursor, "COUNT", absl::StrCat(RedisBroker::kScanCount)}));
  step.then = [idx, acc, then](WriteLane::Results results, WriteLane::Step* next) {
    absl::Status status = FirstError(results);
    std::string cursor;
    std::vector<IndexEntry> chunk;
    if (status.ok()) status = ParseScan(*results.back(), &cursor, &chunk);
    if (!status.ok()) return (*then)(status, next);
    for (IndexEntry& entry : chunk) (*acc)[entry.conn] = std::move(entry.tags);
    if (cursor == "0") return (*then)(std::move(*acc), next);
    *next = ScanIndexStep(idx, {}, std::move(cursor), acc, then);
  };
  return step;
}

// HDEL (or HSET with empty values) of `entries`, one command per hash and
// at most `chunk` fields each.
void AppendHashCommands(bool write, const Entries& entries, size_t chunk,
                        std::vector<RedisCommand>* out) {
  std::map<std::string, std::vector<std::string>> by_key;
  for (const auto& [key, field] : entries) by_key[key].push_back(field);
  for (const auto& [key, fields] : by_key) {
    for (size_t i = 0; i < fields.size(); i += chunk) {
      RedisCommand c = write ? RedisCommand({"HSET", key}) : RedisCommand({"HDEL", key});
      for (size_t j = i; j < std::min(fields.size(), i + chunk); ++j) {
        c.args.push_back(fields[j]);
        if (write) c.args.emplace_back();
      }
      out->push_back(std::move(c));
    }
  }
}

// HSET of index fields (conn -> tags), at most `chunk` per command.
void AppendIndexWrites(const std::string& idx, const std::vector<IndexEntry>& entries,
                       size_t chunk, std::vector<RedisCommand>* out) {
  for (size_t i = 0; i < entries.size(); i += chunk) {
    RedisCommand c({"HSET", idx});
    for (size_t j = i; j < std::min(entries.size(), i + chunk); ++j) {
      c.args.push_back(entries[j].conn);
      c.args.push_back(absl::StrJoin(entries[j].tags, " "));
    }
    out->push_back(std::move(c));
  }
}

}  // namespace

realtime::Broker::Done RedisBroker::WithChannel(bool needs_channel, Done done) {
  if (!needs_channel) return done;
  std::function<void(absl::Status)> finish = JoinStatuses(2, std::move(done));
  subscriber_->Subscribe({inst_channel_}, finish);
  return finish;
}

void RedisBroker::NoteWrite(const Results& results, size_t sadd_at, Entries entries) {
  if (!FirstError(results).ok()) {
    // Redis is behind the hub (which keeps its local state): the next
    // Refresh asks for a SyncPresence, which also deletes these entries
    // should only part of the pipeline have been applied.
    lost_pending_.store(true);
    AddUnsure(std::move(entries));
    return;
  }
  // SADD answered 1: this instance was not listed any more (swept while it
  // was silent, or Redis lost it).
  uint64_t added = 0;
  if (sadd_at < results.size() && ToUint(*results[sadd_at], &added) && added == 1 &&
      presence_written_.load()) {
    lost_pending_.store(true);
  }
  presence_written_.store(true);
}

std::vector<std::pair<std::string, std::string>> RedisBroker::TakeUnsure() {
  absl::MutexLock lock(&unsure_mu_);
  Entries out(std::make_move_iterator(unsure_.begin()), std::make_move_iterator(unsure_.end()));
  unsure_.clear();
  return out;
}

void RedisBroker::AddUnsure(Entries entries) {
  absl::MutexLock lock(&unsure_mu_);
  for (auto& entry : entries) {
    // Past the bound the oldest are forgotten: they stay listed in the index
    // unless a Cluster node failed between the two halves of the write.
    if (unsure_.size() == kMaxUnsure) unsure_.pop_front();
    unsure_.push_back(std::move(entry));
  }
}

void RedisBroker::AddPresence(const ConnPresence& conn, Done done) {
  const std::string user_tag = conn.user.empty() ? std::string() : Tag("user", conn.user);
  const std::string field = Field(conn.conn);
  std::vector<std::string> args = {Millis(options_.presence_ttl), conn.conn, user_tag};
  Entries entries;
  if (!user_tag.empty()) entries.emplace_back(EntryKey(absl::StrCat("u:", user_tag)), field);
  for (const std::string& room : conn.rooms) {
    args.push_back(Tag("room", room));
    entries.emplace_back(EntryKey(absl::StrCat("r:", args.back())), field);
  }
  std::vector<RedisCommand> commands;
  // The index first: it lists an entry before the entry exists.
  commands.push_back(index_add_->Call({alive_key_, idx_key_}, std::move(args)));
  commands.push_back(RedisCommand({"SADD", listed_key_, options_.instance_id}));
  for (const auto& [key, f] : entries) commands.push_back(RedisCommand({"HSET", key, f, ""}));
  lane_->Submit(std::move(commands), [this, entries = std::move(entries),
                                      done = WithChannel(true, std::move(done))](
                                         Results results) mutable {
    const absl::Status status = FirstError(results);
    // Another user listed for the connection: Redis disagrees with the hub.
    uint64_t other = 0;
    if (status.ok() && ToUint(*results[0], &other) && other != 0) lost_pending_.store(true);
    NoteWrite(results, 1, std::move(entries));
    std::move(done)(status);
  });
}

void RedisBroker::RemovePresence(const ConnPresence& conn, bool all, Done done) {
  std::vector<std::string> tags;
  if (all && !conn.user.empty()) tags.push_back(absl::StrCat("u:", Tag("user", conn.user)));
  for (const std::string& room : conn.rooms) tags.push_back(absl::StrCat("r:", Tag("room", room)));
  if (!all || !tags.empty()) {
    return lane_->Submit(RemoveStep(conn.conn, all, std::move(tags), std::move(done)));
  }
  // A connection the hub does not know (a retried Unregister): its entries
  // are found through the index first.
  WriteLane::Step first;
  first.commands.push_back(RedisCommand({"HGET", idx_key_, conn.conn}));
  first.then = [this, conn = conn.conn, done = std::move(done)](Results results,
                                                                 WriteLane::Step* next) mutable {
    if (!results[0].ok()) {
      lost_pending_.store(true);
      next->done = [status = results[0].status(), done = std::move(done)](Results) mutable {
        std::move(done)(status);
      };
      return;
    }
    std::vector<std::string> tags;
    if (results[0]->is_string()) tags = absl::StrSplit(results[0]->str, ' ', absl::SkipEmpty());
    *next = RemoveStep(conn, /*all=*/true, std::move(tags), std::move(done));
  };
  lane_->Submit(std::move(first));
}

WriteLane::Step RedisBroker::RemoveStep(const std::string& conn, bool all,
                                        std::vector<std::string> tags, Done done) {
  const std::string field = Field(conn);
  Entries entries;
  for (const std::string& tag : tags) {
    if (std::string key = EntryKey(tag); !key.empty()) entries.emplace_back(std::move(key), field);
  }
  WriteLane::Step step;
  for (const auto& [key, f] : entries) step.commands.push_back(RedisCommand({"HDEL", key, f}));
  // The index after the entries: it still lists them should the HDELs fail.
  const size_t at = step.commands.size();
  std::vector<std::string> args = {Millis(options_.presence_ttl), conn, all ? "1" : "0"};
  for (std::string& tag : tags) args.push_back(std::move(tag));
  step.commands.push_back(index_remove_->Call({alive_key_, idx_key_}, std::move(args)));
  step.commands.push_back(RedisCommand({"SADD", listed_key_, options_.instance_id}));
  step.done = [this, at, entries = std::move(entries),
               done = std::move(done)](Results results) mutable {
    const absl::Status status = FirstError(results);
    // Entries the hub did not name: deleted by the resync this asks for.
    uint64_t unnamed = 0;
    if (status.ok() && ToUint(*results[at], &unnamed) && unnamed != 0) lost_pending_.store(true);
    NoteWrite(results, at + 1, std::move(entries));
    std::move(done)(status);
  };
  return step;
}

void RedisBroker::SyncPresence(std::vector<ConnPresence> conns, Done done) {
  // What the index will list per connection, and the entries that go with it.
  auto wanted = std::make_shared<std::vector<IndexEntry>>();
  for (const ConnPresence& conn : conns) {
    IndexEntry entry{conn.conn, {}};
    if (!conn.user.empty()) entry.tags.push_back(absl::StrCat("u:", Tag("user", conn.user)));
    for (const std::string& room : conn.rooms) {
      std::string tag = absl::StrCat("r:", Tag("room", room));
      if (std::find(entry.tags.begin(), entry.tags.end(), tag) == entry.tags.end()) {
        entry.tags.push_back(std::move(tag));
      }
    }
    wanted->push_back(std::move(entry));
  }
  std::vector<RedisCommand> before;
  before.push_back(RedisCommand({"SET", alive_key_, "1", "PX", Millis(options_.presence_ttl)}));
  Done finish = WithChannel(true, std::move(done));
  auto then = std::make_shared<IndexThen>([this, wanted, finish = std::move(finish)](
                                              absl::StatusOr<IndexMap> old,
                                              WriteLane::Step* next) mutable {
    if (!old.ok()) {
      lost_pending_.store(true);
      next->done = [finish = std::move(finish), status = old.status()](Results) mutable {
        std::move(finish)(status);
      };
      return;
    }
    // Step 2: the index lists old and wanted tags of every wanted
    // connection; entries not wanted any more go; wanted ones are written.
    std::set<std::pair<std::string, std::string>> want;
    IndexMap old_tags = *std::move(old);
    std::vector<IndexEntry> merged;
    Entries writes, deletes = TakeUnsure();
    Entries unsure = deletes;
    for (const IndexEntry& entry : *wanted) {
      IndexEntry both = entry;
      if (auto it = old_tags.find(entry.conn); it != old_tags.end()) {
        for (const std::string& tag : it->second) {
          if (std::find(both.tags.begin(), both.tags.end(), tag) == both.tags.end()) {
            both.tags.push_back(tag);
          }
        }
      }
      for (const std::string& tag : entry.tags) {
        writes.emplace_back(EntryKey(tag), Field(entry.conn));
        want.insert(writes.back());
      }
      merged.push_back(std::move(both));
    }
    std::vector<std::string> stale_conns;
    for (const auto& [conn, tags] : old_tags) {
      for (const std::string& tag : tags) {
        if (std::string key = EntryKey(tag); !key.empty()) deletes.emplace_back(key, Field(conn));
      }
    }
    std::erase_if(deletes, [&](const auto& e) { return want.contains(e); });
    for (const IndexEntry& entry : *wanted) old_tags.erase(entry.conn);
    for (const auto& [conn, tags] : old_tags) stale_conns.push_back(conn);

    AppendIndexWrites(idx_key_, merged, kSyncChunk, &next->commands);
    AppendHashCommands(/*write=*/false, deletes, kSyncChunk, &next->commands);
    AppendHashCommands(/*write=*/true, writes, kSyncChunk, &next->commands);
    next->commands.push_back(RedisCommand({"SADD", listed_key_, options_.instance_id}));
    unsure.insert(unsure.end(), writes.begin(), writes.end());
    next->then = [this, wanted, stale_conns = std::move(stale_conns), unsure = std::move(unsure),
                  finish = std::move(finish)](Results results, WriteLane::Step* next) mutable {
      if (absl::Status status = FirstError(results); !status.ok()) {
        lost_pending_.store(true);
        AddUnsure(std::move(unsure));
        next->done = [finish = std::move(finish), status](Results) mutable {
          std::move(finish)(status);
        };
        return;
      }
      presence_written_.store(true);
      // Step 3: every entry is as wanted; the index shrinks to match.
      for (size_t i = 0; i < stale_conns.size(); i += kSyncChunk) {
        RedisCommand c({"HDEL", idx_key_});
        for (size_t j = i; j < std::min(stale_conns.size(), i + kSyncChunk); ++j) {
          c.args.push_back(stale_conns[j]);
        }
        next->commands.push_back(std::move(c));
      }
      AppendIndexWrites(idx_key_, *wanted, kSyncChunk, &next->commands);
      next->done = [this, finish = std::move(finish)](Results results) mutable {
        const absl::Status status = FirstError(results);
        if (!status.ok()) lost_pending_.store(true);
        std::move(finish)(status);
      };
    };
  });
  lane_->Submit(ScanIndexStep(idx_key_, std::move(before), "0", std::make_shared<IndexMap>(),
                              std::move(then)));
}

absl::Status RedisBroker::Refresh() {
  std::vector<RedisCommand> commands;
  commands.push_back(RedisCommand({"SET", alive_key_, "1", "PX", Millis(options_.presence_ttl)}));
  commands.push_back(RedisCommand({"SADD", listed_key_, options_.instance_id}));
  commands.push_back(RedisCommand({"SMEMBERS", listed_key_}));
  Results results = lane_->Call(std::move(commands));
  RETURN_IF_ERROR(FirstError(results));
  uint64_t added = 0;
  if (!ToUint(*results[1], &added) || !results[2]->is_array()) {
    return Unexpected("refresh", *results[2]);
  }
  std::vector<std::string> others;
  for (const RedisReply& id : results[2]->elements) {
    if (id.is_string() && id.str != options_.instance_id) others.push_back(id.str);
  }
  const absl::Status swept = Sweep(others);
  const bool pending = lost_pending_.exchange(false);
  const bool lost = pending || (added == 1 && presence_written_.load());
  if (lost) {
    // Swept while this instance was not refreshing, lost by Redis, or a
    // presence write failed: the hub writes its connections again.
    absl::MutexLock lock(&sink_mu_);
    if (sink_ != nullptr) {
      presence_lost_.fetch_add(1);
      sink_->OnPresenceLost();
    } else if (!started_) {
      lost_pending_.store(true);  // for the first Refresh after Start
    }
  }
  return swept;
}

RedisBroker::Results RedisBroker::CallPieces(std::vector<RedisCommand> commands) {
  Results out;
  for (std::vector<RedisCommand>& piece : WriteLane::Split(std::move(commands))) {
    for (auto& r : client_->CallBatch(std::move(piece))) out.push_back(std::move(r));
  }
  return out;
}

RedisBroker::Results RedisBroker::CallLanePieces(std::vector<RedisCommand> commands) {
  Results out;
  for (std::vector<RedisCommand>& piece : WriteLane::Split(std::move(commands))) {
    for (auto& r : lane_->Call(std::move(piece))) out.push_back(std::move(r));
  }
  return out;
}

absl::Status RedisBroker::Sweep(const std::vector<std::string>& others) {
  if (others.empty()) return absl::OkStatus();
  // 1. Which listed instances are dead (EXISTS alive, pipelined), and what
  //    their indexes list: HSCAN chunks of one dead instance after the
  //    other until the budget of entries is used, so what is held stays
  //    bounded (a failed read waits for the next Refresh).
  const auto scan = [this](const std::string& id, const std::string& cursor) {
    return dead_index_->Call({AliveKey(id), IndexKey(id)},
                             {cursor, absl::StrCat(kScanCount)});
  };
  std::vector<RedisCommand> reads;
  for (const std::string& id : others) reads.push_back(RedisCommand({"EXISTS", AliveKey(id)}));
  Results alive = CallPieces(std::move(reads));
  struct Dead {
    std::string id;
    std::vector<std::string> conns;  // handled within the budget
    bool partial = false;
  };
  std::vector<Dead> dead;
  Entries deletes;
  size_t budget = kSweepBudget;
  for (size_t i = 0; i < others.size() && budget > 0; ++i) {
    uint64_t exists = 1;
    if (!alive[i].ok() || !ToUint(*alive[i], &exists) || exists != 0) continue;
    Dead d{others[i], {}, false};
    std::set<std::string> seen;  // HSCAN may repeat a field
    std::string cursor = "0";
    std::vector<IndexEntry> chunk;
    for (;;) {
      absl::StatusOr<RedisReply> reply = client_->Call(scan(d.id, cursor));
      chunk.clear();
      if (!reply.ok() || reply->is_nil() || !ParseScan(*reply, &cursor, &chunk).ok()) {
        // Came back, or a failed read: the rest waits for the next Refresh.
        d.partial = true;
        break;
      }
      bool left = false;  // an entry of this chunk over the budget
      for (const IndexEntry& entry : chunk) {
        if (seen.contains(entry.conn)) continue;
        // The first connection of a sweep goes whatever its size.
        const size_t cost = std::max<size_t>(entry.tags.size(), 1);
        if (cost > budget && budget < kSweepBudget) {
          left = true;
          break;
        }
        budget -= std::min(cost, budget);
        seen.insert(entry.conn);
        d.conns.push_back(entry.conn);
        for (const std::string& tag : entry.tags) {
          if (std::string key = EntryKey(tag); !key.empty()) {
            deletes.emplace_back(std::move(key), absl::StrCat(d.id, "/", entry.conn));
          }
        }
      }
      if (left || (budget == 0 && cursor != "0")) d.partial = true;
      if (d.partial || cursor == "0") break;
    }
    if (!d.conns.empty() || !d.partial) dead.push_back(std::move(d));
  }
  if (dead.empty()) return absl::OkStatus();
  // 2. Their entries, per hash.
  std::vector<RedisCommand> commands;
  AppendHashCommands(/*write=*/false, deletes, kSyncChunk, &commands);
  absl::Status status = FirstError(CallPieces(std::move(commands)));
  if (options_.after_sweep_deletes) options_.after_sweep_deletes();
  Results dropped;
  commands.clear();
  if (status.ok()) {
    // 3. Then their indexes, unless the instance came back meanwhile.
    for (const Dead& d : dead) {
      commands.push_back(drop_swept_->Call({AliveKey(d.id), IndexKey(d.id)},
                                           d.partial ? d.conns : std::vector<std::string>()));
    }
  } else {
    // The deletes failed, maybe partly: the indexes stay for the next
    // sweep, but an instance that came back meanwhile is unlisted below,
    // or it would never learn that some of its entries may be gone.
    for (const Dead& d : dead) commands.push_back(RedisCommand({"EXISTS", AliveKey(d.id)}));
  }
  dropped = CallPieces(std::move(commands));
  // 4. Unlisted when clean, and when it came back: its next write or
  //    Refresh finds itself unlisted and writes its presence again (this
  //    sweep may have deleted entries it wrote meanwhile).
  commands.clear();
  uint64_t swept = 0;
  for (size_t i = 0; i < dead.size(); ++i) {
    uint64_t came_back = 0;
    if (!dropped[i].ok() || !ToUint(*dropped[i], &came_back)) continue;
    if ((status.ok() && !dead[i].partial) || came_back == 1) {
      commands.push_back(RedisCommand({"SREM", listed_key_, dead[i].id}));
    }
    if (status.ok() && !dead[i].partial && came_back == 0) ++swept;
  }
  if (status.ok()) status = FirstError(dropped);
  if (!commands.empty()) {
    const absl::Status srem = FirstError(CallPieces(std::move(commands)));
    if (status.ok()) status = srem;
  }
  swept_.fetch_add(swept);
  return status;
}

absl::Status RedisBroker::RemoveInstance() {
  const absl::Status status = [this]() -> absl::Status {
    // 1. The index, in HSCAN chunks.
    IndexMap index;
    std::string cursor = "0";
    do {
      Results read = lane_->Call(
          {RedisCommand({"HSCAN", idx_key_, cursor, "COUNT", absl::StrCat(kScanCount)})});
      RETURN_IF_ERROR(FirstError(read));
      std::vector<IndexEntry> chunk;
      RETURN_IF_ERROR(ParseScan(*read[0], &cursor, &chunk));
      for (IndexEntry& entry : chunk) index[entry.conn] = std::move(entry.tags);
    } while (cursor != "0");
    Entries deletes = TakeUnsure();
    for (const auto& [conn, tags] : index) {
      for (const std::string& tag : tags) {
        if (std::string key = EntryKey(tag); !key.empty()) {
          deletes.emplace_back(std::move(key), Field(conn));
        }
      }
    }
    // 2. The entries, in pieces well within what the lane admits.
    std::vector<RedisCommand> commands;
    AppendHashCommands(/*write=*/false, deletes, kSyncChunk, &commands);
    if (absl::Status s = FirstError(CallLanePieces(std::move(commands))); !s.ok()) {
      AddUnsure(std::move(deletes));
      return s;
    }
    // Unbounded on purpose: a drained instance's connections go at once.
    commands.clear();
    commands.push_back(RedisCommand({"DEL", idx_key_}));
    commands.push_back(RedisCommand({"DEL", alive_key_}));
    commands.push_back(RedisCommand({"SREM", listed_key_, options_.instance_id}));
    return FirstError(lane_->Call(std::move(commands)));
  }();
  presence_written_.store(false);
  lost_pending_.store(false);
  return status;
}

}  // namespace stateside::redis
