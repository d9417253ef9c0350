// RedisBroker's presence and history queries: reads that go straight to
// Redis (not through the write lane), parsed and paged here; and the
// user-targeted publish, which reads presence the same way (in the lane).
#include <algorithm>
#include <iterator>
#include <limits>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "sidecar/realtime/memory_broker.h"
#include "sidecar/redis/broker_replies.h"
#include "sidecar/redis/redis_broker.h"

namespace stateside::redis {
namespace {

using broker_internal::AV;
using broker_internal::FirstError;
using broker_internal::ToUint;
using broker_internal::Unexpected;

using realtime::ConnRef;
using realtime::Event;
using realtime::TargetKind;


// "<seq>-0" -> seq. "" -> 0.
bool ParseStreamId(std::string_view id, uint64_t* seq) {
  *seq = 0;
  if (id.empty()) return true;
  const size_t dash = id.find('-');
  return dash != std::string_view::npos && absl::SimpleAtoi(AV(id.substr(0, dash)), seq);
}

// "<inst>/<conn>" (instance ids never contain '/').
bool SplitField(std::string_view field, ConnRef* out) {
  const size_t slash = field.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == field.size()) return false;
  out->instance = std::string(field.substr(0, slash));
  out->conn = std::string(field.substr(slash + 1));
  return true;
}

// The distinct instances of "<inst>/<conn>" fields, in first-seen order.
std::vector<std::string> Instances(const std::vector<std::string>& fields) {
  std::vector<std::string> out;
  absl::flat_hash_set<std::string> seen;
  for (const std::string& field : fields) {
    const size_t slash = field.find('/');
    if (slash == std::string::npos) continue;
    std::string inst = field.substr(0, slash);
    if (seen.insert(inst).second) out.push_back(std::move(inst));
  }
  return out;
}

// The string elements of an array reply.
absl::StatusOr<std::vector<std::string>> Strings(absl::StatusOr<RedisReply> reply,
                                                 std::string_view what) {
  if (!reply.ok()) return reply.status();
  if (!reply->is_array()) return Unexpected(what, *reply);
  std::vector<std::string> out;
  out.reserve(reply->elements.size());
  for (RedisReply& e : reply->elements) {
    if (e.is_string()) out.push_back(std::move(e.str));
  }
  return out;
}

// The instances whose EXISTS <alive> answered 1 (replies in `instances` order).
absl::StatusOr<absl::flat_hash_set<std::string>> LiveInstances(
    const std::vector<std::string>& instances, std::vector<absl::StatusOr<RedisReply>> replies) {
  absl::flat_hash_set<std::string> live;
  for (size_t i = 0; i < instances.size(); ++i) {
    if (!replies[i].ok()) return replies[i].status();
    uint64_t exists = 0;
    if (!ToUint(*replies[i], &exists)) return Unexpected("liveness", *replies[i]);
    if (exists == 1) live.insert(instances[i]);
  }
  return live;
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace

void RedisBroker::RoomMembers(std::string_view room, int page_size, std::string_view page_token,
                              Reply<realtime::MembersPage> done) {
  absl::StatusOr<int> size = realtime::PageSize(page_size, "page_size");
  if (!size.ok()) return std::move(done)(size.status());
  std::string room_tag = Tag("room", room);
  // Token: base64url(last field) "." MAC(room tag, field), so a token is
  // accepted only for the room it was made for, under any key of the ring.
  std::string after;
  if (!page_token.empty()) {
    const size_t dot = page_token.rfind('.');
    bool ok = dot != std::string_view::npos &&
              absl::WebSafeBase64Unescape(AV(page_token.substr(0, dot)), &after) && !after.empty();
    if (ok) {
      ok = false;
      for (const crypto::Keyring::Key& key : options_.keyring->keys()) {
        ok = ok || ConstantTimeEquals(PageMac(key, room_tag, after), page_token.substr(dot + 1));
      }
    }
    if (!ok) {
      return std::move(done)(
          absl::InvalidArgumentError("page_token: not a token of this room's listing"));
    }
  }
  LiveFields(
      RoomMembersKey(room),
      [this, limit = *size, room_tag = std::move(room_tag), after = std::move(after),
       done = std::move(done)](absl::StatusOr<std::vector<std::string>> fields) mutable {
        if (!fields.ok()) return std::move(done)(fields.status());
        realtime::MembersPage page;
        page.count = static_cast<int64_t>(fields->size());
        auto it = after.empty() ? fields->begin()
                                : std::upper_bound(fields->begin(), fields->end(), after);
        for (; it != fields->end(); ++it) {
          if (static_cast<int>(page.members.size()) == limit) {
            const std::string& last = *std::prev(it);
            page.next_page_token =
                absl::StrCat(absl::WebSafeBase64Escape(last), ".",
                             PageMac(options_.keyring->primary(), room_tag, last));
            break;
          }
          ConnRef ref;
          if (SplitField(*it, &ref)) page.members.push_back(std::move(ref));
        }
        std::move(done)(std::move(page));
      });
}

void RedisBroker::UserConnections(std::string_view user, Reply<std::vector<ConnRef>> done) {
  LiveFields(UserKey(user),
             [done = std::move(done)](absl::StatusOr<std::vector<std::string>> fields) mutable {
               if (!fields.ok()) return std::move(done)(fields.status());
               std::vector<ConnRef> conns;
               for (const std::string& field : *fields) {
                 ConnRef ref;
                 if (SplitField(field, &ref)) conns.push_back(std::move(ref));
               }
               std::move(done)(std::move(conns));
             });
}

// Two reads, each single-slot: the hash, then one EXISTS per distinct
// instance (pipelined). An entry counts iff its instance's alive key exists
// at the second read: a dead instance drops out within the presence TTL,
// as when the check ran inside one script. Dead entries stay for the sweep.
void RedisBroker::LiveFields(std::string key, Reply<std::vector<std::string>> done) {
  client_->Execute(
      RedisCommand({"HKEYS", std::move(key)}),
      [this, guard = inflight_, done = std::move(done)](absl::StatusOr<RedisReply> reply) mutable {
        absl::StatusOr<std::vector<std::string>> fields = Strings(std::move(reply), "HKEYS");
        if (!fields.ok() || fields->empty()) return std::move(done)(std::move(fields));
        std::vector<std::string> instances = Instances(*fields);
        std::vector<RedisCommand> checks;
        for (const std::string& inst : instances) {
          checks.push_back(RedisCommand({"EXISTS", AliveKey(inst)}));
        }
        client_->ExecuteBatch(
            std::move(checks),
            [guard = std::move(guard), instances = std::move(instances),
             fields = *std::move(fields),
             done = std::move(done)](std::vector<absl::StatusOr<RedisReply>> replies) mutable {
              absl::StatusOr<absl::flat_hash_set<std::string>> live =
                  LiveInstances(instances, std::move(replies));
              if (!live.ok()) return std::move(done)(live.status());
              std::erase_if(fields, [&](const std::string& field) {
                return !live->contains(field.substr(0, field.find('/')));
              });
              std::sort(fields.begin(), fields.end());
              std::move(done)(std::move(fields));
            });
      });
}

// Three steps in the write lane (so it follows the presence writes before
// it): the user's stream (sequence, log entry; unless not `logged`) and its
// hash, in one script of the user's slot (or HKEYS alone); the liveness of
// its instances; one PUBLISH per live instance. -> the sequence and the
// instances sent to.
void RedisBroker::PublishUser(const StreamPlace& place, std::string sealed, bool logged,
                              Reply<realtime::PublishResult> done) {
  struct State {
    std::string message;  // "<seq> <sealed frame>"
    uint64_t sequence = 0;
    std::vector<std::string> instances;
    absl::Status status;
    Reply<realtime::PublishResult> done;
  };
  auto state = std::make_shared<State>();
  state->done = std::move(done);
  auto fail = [state](absl::Status status, WriteLane::Step* next) {
    state->status = std::move(status);
    next->done = [state](WriteLane::Results) { std::move(state->done)(state->status); };
  };
  WriteLane::Step first;
  const std::string conns = absl::StrCat(place.keys, "conns");
  if (logged) {
    first.commands.push_back(append_user_->Call(
        {absl::StrCat(place.keys, "seq"), absl::StrCat(place.keys, "log"),
         absl::StrCat(place.keys, "logbytes"), conns},
        AppendArgs("", sealed)));
  } else {
    first.commands.push_back(RedisCommand({"HKEYS", conns}));
  }
  first.then = [this, state, fail, logged, sealed = std::move(sealed)](
                   WriteLane::Results results, WriteLane::Step* next) {
    absl::StatusOr<RedisReply>& r = results[0];
    if (!r.ok()) return fail(r.status(), next);
    if (logged && (!r->is_array() || r->elements.size() != 2 ||
                   !ToUint(r->elements[0], &state->sequence))) {
      return fail(Unexpected("publish", *r), next);
    }
    absl::StatusOr<std::vector<std::string>> fields =
        Strings(logged ? std::move(r->elements[1]) : *std::move(r), "HKEYS");
    if (!fields.ok()) return fail(fields.status(), next);
    state->message = absl::StrCat(state->sequence, " ", sealed);
    state->instances = Instances(*fields);
    for (const std::string& inst : state->instances) {
      next->commands.push_back(RedisCommand({"EXISTS", AliveKey(inst)}));
    }
    next->then = [this, state, fail](WriteLane::Results results, WriteLane::Step* next) {
      absl::StatusOr<absl::flat_hash_set<std::string>> live =
          LiveInstances(state->instances, std::move(results));
      if (!live.ok()) return fail(live.status(), next);
      for (const std::string& inst : state->instances) {
        if (!live->contains(inst)) continue;
        next->commands.push_back(RedisCommand(
            {publish_, InstanceChannel(inst), state->message}));
      }
      next->done = [state](WriteLane::Results results) {
        const absl::Status status = FirstError(results);
        if (!status.ok()) return std::move(state->done)(status);
        realtime::PublishResult result;
        result.sequence = state->sequence;
        result.instances = static_cast<int64_t>(results.size());
        std::move(state->done)(result);
      };
    };
  };
  lane_->Submit(std::move(first));
}

void RedisBroker::StreamHistory(const realtime::StreamRef& stream, uint64_t after_sequence,
                                int limit, Reply<realtime::HistoryPage> done) {
  absl::StatusOr<int> size = realtime::PageSize(limit, "limit");
  if (!size.ok()) return std::move(done)(size.status());
  StreamPlace place = PlaceOf(stream);
  const std::string start = after_sequence == std::numeric_limits<uint64_t>::max()
                                ? absl::StrCat(after_sequence, "-1")  // past every "<seq>-0"
                                : absl::StrCat(after_sequence + 1, "-0");
  client_->Execute(
      history_->Call({absl::StrCat(place.keys, "seq"), absl::StrCat(place.keys, "log")},
                     {start, std::to_string(*size + 1)}),
      [this, guard = inflight_, after = after_sequence, limit = static_cast<size_t>(*size),
       stream, seal_name = std::move(place.seal_name),
       done = std::move(done)](absl::StatusOr<RedisReply> reply) mutable {
        std::move(done)(ParseHistory(std::move(reply), stream, seal_name, after, limit));
        guard.reset();
      });
}

absl::StatusOr<realtime::HistoryPage> RedisBroker::ParseHistory(
    absl::StatusOr<RedisReply> reply, const realtime::StreamRef& stream,
    std::string_view seal_name, uint64_t after, size_t limit) {
  if (!reply.ok()) return reply.status();
  uint64_t counter = 0, first = 0, last = 0;
  if (!reply->is_array() || reply->elements.size() != 4 || !reply->elements[3].is_array() ||
      !(reply->elements[0].str.empty() || ToUint(reply->elements[0], &counter)) ||
      !ParseStreamId(reply->elements[1].str, &first) ||
      !ParseStreamId(reply->elements[2].str, &last)) {
    return Unexpected("history", *reply);
  }
  realtime::HistoryPage page;
  page.first_sequence = first;
  page.last_sequence = std::max(counter, last);
  std::vector<RedisReply>& entries = reply->elements[3].elements;
  page.more = entries.size() > limit;
  // Complete: every sequence from after + 1 on is returned (up to the last
  // one, or to where `more` continues). A gap (trimmed, expired, or an entry
  // that does not open) makes it false.
  bool complete = true;
  uint64_t expected = after + 1;
  for (size_t i = 0; i < std::min(limit, entries.size()); ++i) {
    const RedisReply& entry = entries[i];
    uint64_t seq = 0;
    if (!entry.is_array() || entry.elements.size() != 2 || !entry.elements[1].is_array() ||
        !ParseStreamId(entry.elements[0].str, &seq)) {
      return Unexpected("history entry", entry);
    }
    if (seq != expected) complete = false;
    expected = seq + 1;
    const std::vector<RedisReply>& kv = entry.elements[1].elements;
    const std::string* frame = nullptr;
    for (size_t k = 0; k + 1 < kv.size(); k += 2) {
      if (kv[k].str == "e") frame = &kv[k + 1].str;
    }
    absl::StatusOr<Event> event =
        frame != nullptr ? OpenFrame(seal_name, *frame) : absl::DataLossError("no frame");
    if (frame == nullptr) malformed_.fetch_add(1);
    // User and connection frames are sealed to the instance channels'
    // family: one copied from another stream's log opens, so the
    // addressing is checked.
    if (event.ok() && !(realtime::StreamOf(*event) == stream)) {
      malformed_.fetch_add(1);
      event = absl::DataLossError("not an event of this stream");
    }
    if (!event.ok()) {
      complete = false;
      continue;
    }
    event->sequence = seq;
    page.events.push_back(*std::move(event));
  }
  if (!page.more && expected - 1 < page.last_sequence) complete = false;
  page.complete = after >= page.last_sequence || complete;
  return page;
}

}  // namespace stateside::redis
