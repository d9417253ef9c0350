// RedisBroker's presence and history queries: reads that go straight to
// Redis (not through the write lane), parsed and paged here.
#include <algorithm>
#include <iterator>
#include <limits>
#include <utility>

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

// The sorted live fields of a kLiveFields reply.
absl::StatusOr<std::vector<std::string>> SortedFields(absl::StatusOr<RedisReply> reply) {
  if (!reply.ok()) return reply.status();
  if (!reply->is_array()) return Unexpected("presence query", *reply);
  std::vector<std::string> fields;
  fields.reserve(reply->elements.size());
  for (RedisReply& e : reply->elements) {
    if (e.is_string()) fields.push_back(std::move(e.str));
  }
  std::sort(fields.begin(), fields.end());
  return fields;
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
  // Built before the callback takes room_tag (argument order is unspecified).
  RedisCommand command =
      live_fields_->Call({absl::StrCat(options_.prefix, "rt:room:", room_tag)}, {options_.prefix});
  client_->Execute(
      std::move(command),
      [this, guard = inflight_, limit = *size, room_tag = std::move(room_tag),
       after = std::move(after), done = std::move(done)](absl::StatusOr<RedisReply> reply) mutable {
        absl::StatusOr<std::vector<std::string>> fields = SortedFields(std::move(reply));
        if (!fields.ok()) {
          std::move(done)(fields.status());
        } else {
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
        }
        guard.reset();
      });
}

void RedisBroker::UserConnections(std::string_view user, Reply<std::vector<ConnRef>> done) {
  client_->Execute(
      live_fields_->Call({absl::StrCat(options_.prefix, "rt:user:", Tag("user", user))},
                         {options_.prefix}),
      [done = std::move(done)](absl::StatusOr<RedisReply> reply) mutable {
        absl::StatusOr<std::vector<std::string>> fields = SortedFields(std::move(reply));
        if (!fields.ok()) return std::move(done)(fields.status());
        std::vector<ConnRef> conns;
        for (const std::string& field : *fields) {
          ConnRef ref;
          if (SplitField(field, &ref)) conns.push_back(std::move(ref));
        }
        std::move(done)(std::move(conns));
      });
}

void RedisBroker::History(std::string_view room, uint64_t after_sequence, int limit,
                          Reply<realtime::HistoryPage> done) {
  absl::StatusOr<int> size = realtime::PageSize(limit, "limit");
  if (!size.ok()) return std::move(done)(size.status());
  const std::string room_tag = Tag("room", room);
  const std::string start = after_sequence == std::numeric_limits<uint64_t>::max()
                                ? absl::StrCat(after_sequence, "-1")  // past every "<seq>-0"
                                : absl::StrCat(after_sequence + 1, "-0");
  const std::string& p = options_.prefix;
  client_->Execute(
      history_->Call({absl::StrCat(p, "rt:seq:", room_tag), absl::StrCat(p, "rt:log:", room_tag)},
                     {start, std::to_string(*size + 1)}),
      [this, guard = inflight_, after = after_sequence, limit = static_cast<size_t>(*size),
       channel = absl::StrCat(room_channel_prefix_, room_tag),
       done = std::move(done)](absl::StatusOr<RedisReply> reply) mutable {
        std::move(done)(ParseHistory(std::move(reply), channel, after, limit));
        guard.reset();
      });
}

absl::StatusOr<realtime::HistoryPage> RedisBroker::ParseHistory(absl::StatusOr<RedisReply> reply,
                                                                std::string_view channel,
                                                                uint64_t after, size_t limit) {
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
        frame != nullptr ? OpenFrame(channel, *frame) : absl::DataLossError("no frame");
    if (frame == nullptr) malformed_.fetch_add(1);
    if (event.ok() && event->target != TargetKind::kRoom) {
      malformed_.fetch_add(1);
      event = absl::DataLossError("not a room event");
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
