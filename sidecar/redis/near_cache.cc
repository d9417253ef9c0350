#include "sidecar/redis/near_cache.h"

#include <algorithm>
#include <random>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "sidecar/redis/redis_subscriber.h"

namespace stateside::redis {
namespace {

constexpr char kInvalidateChannel[] = "__redis__:invalidate";
constexpr absl::Duration kFirstRetry = absl::Milliseconds(100);
constexpr absl::Duration kLastRetry = absl::Seconds(30);

// What an entry costs: its key twice (map and LRU list), the envelopes and
// a fixed share for the metadata and the containers.
size_t EntryBytes(const std::string& key, const session::StoredSession& s) {
  size_t bytes = 2 * key.size() + s.id.size() + s.user_tag.size() + s.user_envelope.size() +
                 s.metadata_seal.size() + 256;
  for (const auto& [name, envelope] : s.attributes) bytes += name.size() + envelope.size() + 64;
  return bytes;
}

// The value of `field` in a CLIENT LIST line ("" when absent).
absl::string_view ClientListField(absl::string_view line, absl::string_view field) {
  for (absl::string_view pair : absl::StrSplit(line, absl::ByAnyChar(" \r\n"), absl::SkipEmpty())) {
    if (absl::ConsumePrefix(&pair, field) && absl::ConsumePrefix(&pair, "=")) return pair;
  }
  return {};
}

std::string RandomName() {
  std::random_device rd;
  const uint64_t r = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  return absl::StrCat("stateside-nc-", absl::Hex(r, absl::kZeroPad16));
}

}  // namespace

absl::StatusOr<std::unique_ptr<SessionNearCache>> SessionNearCache::Create(RedisOptions options,
                                                                           size_t max_bytes,
                                                                           bool subscribe) {
  if (options.topology == RedisTopology::kCluster) {
    return absl::InvalidArgumentError(
        "STATESIDE_SESSION_NEAR_CACHE: not available with STATESIDE_REDIS_TOPOLOGY=cluster "
        "(client-side "
        "caching is tracked per node); turn it off");
  }
  std::unique_ptr<SessionNearCache> cache(new SessionNearCache(max_bytes, RandomName()));
  cache->sentinel_ = options.topology == RedisTopology::kSentinel;
  SessionNearCache* self = cache.get();

  RedisSubscriber::Callbacks callbacks;
  callbacks.client_name = self->name_;
  callbacks.on_client_id = [self](int64_t id) { self->OnClientId(id); };
  callbacks.on_down = [self](absl::Time) { self->OnInvalidationDown(); };
  callbacks.on_restored = [self](absl::Time, absl::Time) { self->OnInvalidationUp(); };
  callbacks.on_structured_message = [self](std::string_view, const Reply& payload) {
    self->OnInvalidation(payload);
  };
  // A plain message on the channel would be a server bug; ignored.
  callbacks.on_message = [](std::string_view, std::string_view) {};

  RedisOptions reader_options = options;
  // One connection: CLIENT TRACKING and the reads that rely on it share it,
  // in order.
  reader_options.connections = 1;
  auto reader = RedisClient::Create(std::move(reader_options));
  if (!reader.ok()) return reader.status();
  cache->reader_ = *std::move(reader);
  cache->reader_->SetStateListener(
      [self](bool connected, const absl::Status&) { self->OnReaderState(connected); });

  auto subscriber = RedisSubscriber::Create(std::move(options), std::move(callbacks));
  if (!subscriber.ok()) return subscriber.status();
  cache->invalidations_ = *std::move(subscriber);
  // The handshake may have completed (and on_restored run, with no channel
  // to confirm) before this: Arm again once Redis confirms the channel.
  if (subscribe) {
    cache->invalidations_->Subscribe({kInvalidateChannel}, [self](absl::Status status) {
      if (status.ok()) self->Arm();
    });
  }
  // The reader may have come up before the listener was set.
  if (cache->reader_->connected()) self->Arm();
  return cache;
}

SessionNearCache::SessionNearCache(size_t max_bytes, std::string name)
    : max_bytes_(max_bytes), name_(std::move(name)), retry_backoff_(kFirstRetry) {
  retry_thread_ = std::thread([this] { RetryLoop(); });
}

SessionNearCache::~SessionNearCache() { Close(); }

void SessionNearCache::Close() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    DisarmLocked();
  }
  if (retry_thread_.joinable()) retry_thread_.join();
  invalidations_.reset();
  if (reader_ != nullptr) reader_->SetStateListener(nullptr);
  reader_.reset();
}

void SessionNearCache::SetStoreClient(RedisClient* client) {
  if (sentinel_) store_client_ = client;
}

bool SessionNearCache::SameMaster() const {
  if (store_client_ == nullptr) return true;
  return reader_ != nullptr && store_client_->MasterAddresses() == reader_->MasterAddresses();
}

std::optional<session::StoredSession> SessionNearCache::Lookup(
    const std::string& key, const session::ReadOptions& options) {
  const bool same_master = SameMaster();
  std::shared_ptr<const session::StoredSession> held;
  {
    absl::MutexLock lock(&mu_);
    auto it = same_master ? entries_.find(key) : entries_.end();
    // The same test as a plain read that settles a Get (redis_session_store.cc).
    if (it == entries_.end() || !it->second.session->LiveAt(options.now) ||
        session::TouchDue(options, it->second.session->last_access,
                          it->second.session->idle_ttl)) {
      ++stats_.misses;
      return std::nullopt;
    }
    ++stats_.hits;
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    held = it->second.session;
  }
  // Copied outside the lock: the entry is immutable and shared.
  if (!options.metadata_only) return *held;
  session::StoredSession out = *held;
  out.attributes.clear();
  return out;
}

SessionNearCache::Fill SessionNearCache::BeginFill(std::string key) {
  Fill fill;
  // Checked before the read is sent: if either client moves afterwards, the
  // reader's move flushes and the store's write invalidates the key, so
  // this fill is refused either way.
  if (!SameMaster()) return fill;
  absl::MutexLock lock(&mu_);
  if (!armed_) return fill;
  InFlight& f = in_flight_[key];
  ++f.readers;
  fill.key = std::move(key);
  fill.client = reader_.get();
  fill.epoch = epoch_;
  fill.generation = f.generation;
  return fill;
}

void SessionNearCache::EndFill(const Fill& fill, const session::StoredSession* read) {
  if (fill.client == nullptr) return;
  std::function<void(const std::string&)> hook;
  {
    absl::MutexLock lock(&mu_);
    hook = fill_hook_;
  }
  if (hook && read != nullptr) hook(fill.key);
  // Copied before the lock (it may not be kept: the copy is then wasted).
  std::shared_ptr<const session::StoredSession> held =
      read == nullptr ? nullptr : std::make_shared<const session::StoredSession>(*read);
  absl::MutexLock lock(&mu_);
  auto f = in_flight_.find(fill.key);
  // A flush drops what is in flight; an invalidation moves the generation.
  const bool current = f != in_flight_.end() && armed_ && fill.epoch == epoch_ &&
                       fill.generation == f->second.generation;
  if (f != in_flight_.end() && --f->second.readers == 0) in_flight_.erase(f);
  if (read == nullptr) return;
  if (!current) {
    ++stats_.fills_refused;
    return;
  }
  EraseLocked(fill.key);
  const size_t bytes = EntryBytes(fill.key, *read);
  if (bytes > max_bytes_) return;
  while (bytes_ + bytes > max_bytes_ && !lru_.empty()) {
    EraseLocked(lru_.back());
    ++stats_.evictions;
  }
  lru_.push_front(fill.key);
  entries_.emplace(fill.key, Entry{std::move(held), bytes, lru_.begin()});
  bytes_ += bytes;
  ++stats_.fills;
}

void SessionNearCache::Invalidate(std::string_view key) {
  absl::MutexLock lock(&mu_);
  ++stats_.invalidations;
  EraseLocked(key);
  auto f = in_flight_.find(absl::string_view(key.data(), key.size()));
  if (f != in_flight_.end()) ++f->second.generation;
}

void SessionNearCache::EraseLocked(std::string_view key) {
  auto it = entries_.find(absl::string_view(key.data(), key.size()));
  if (it == entries_.end()) return;
  bytes_ -= it->second.bytes;
  lru_.erase(it->second.lru);
  entries_.erase(it);
}

void SessionNearCache::FlushLocked() {
  // What is in flight keeps its entry in in_flight_ (its generation must
  // not restart while a fill holds it); the epoch refuses it.
  ++epoch_;
  // A flush that drops nothing (a reconnect attempt failing again, the
  // flush that starts an arming) is not counted.
  if (armed_ || !entries_.empty()) ++stats_.flushes;
  entries_.clear();
  lru_.clear();
  bytes_ = 0;
}

void SessionNearCache::DisarmLocked() {
  ++tracking_;
  armed_ = false;
  // The connection that comes back arms again (and retries from there).
  retry_at_ = absl::InfiniteFuture();
  FlushLocked();
}

void SessionNearCache::OnClientId(int64_t id) {
  absl::MutexLock lock(&mu_);
  pending_id_ = id;
}

void SessionNearCache::OnInvalidationUp() {
  {
    absl::MutexLock lock(&mu_);
    DisarmLocked();
    invalidation_up_ = true;
    invalidation_id_ = pending_id_;
  }
  Arm();
}

void SessionNearCache::OnInvalidationDown() {
  absl::MutexLock lock(&mu_);
  DisarmLocked();
  invalidation_up_ = false;
  invalidation_id_ = 0;
}

void SessionNearCache::OnReaderState(bool connected) {
  if (connected) return Arm();
  absl::MutexLock lock(&mu_);
  DisarmLocked();
}

void SessionNearCache::OnInvalidation(const Reply& payload) {
  if (payload.is_nil()) {
    // FLUSHALL / FLUSHDB (or Redis dropping its tracking table).
    absl::MutexLock lock(&mu_);
    FlushLocked();
    return;
  }
  if (!payload.is_array()) return;
  for (const Reply& key : payload.elements) {
    if (key.is_string()) Invalidate(key.str);
  }
}

void SessionNearCache::Arm() {
  // The reader's state listener calls again once it is connected.
  if (!reader_->connected()) return;
  uint64_t tracking;
  int64_t id;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ || !invalidation_up_ || invalidation_id_ == 0 || armed_) return;
    tracking = tracking_;
    id = invalidation_id_;
  }
  const std::string redirect = std::to_string(id);
  // One pipeline on the reader's one connection: the tracking, then proof
  // that the id it redirects to is our invalidation connection on the same
  // server (another server may have a client of that id), and the reader's
  // own id (for tests).
  reader_->ExecuteBatch(
      {RedisCommand({"CLIENT", "TRACKING", "ON", "REDIRECT", redirect}),
       RedisCommand({"CLIENT", "LIST", "ID", redirect}), RedisCommand({"CLIENT", "ID"})},
      [this, tracking, id](std::vector<absl::StatusOr<Reply>> replies) {
        std::string refused = ArmRefusal(replies);
        std::function<void(const std::string&)> listener;
        {
          absl::MutexLock lock(&mu_);
          if (stopping_ || tracking != tracking_ || id != invalidation_id_ || armed_) return;
          if (refused != stats_.arm_error) listener = arm_error_listener_;
          if (!refused.empty()) {
            ++stats_.arm_failures;
            stats_.arm_error = refused;
            // Both connections are still up (the tracking count has not
            // moved): try again later.
            retry_at_ = absl::Now() + retry_backoff_;
            retry_backoff_ = std::min(2 * retry_backoff_, kLastRetry);
          } else {
            reader_id_ = replies[2]->integer;
            // Everything held was read before; start from empty.
            FlushLocked();
            armed_ = true;
            stats_.arm_error.clear();
            retry_at_ = absl::InfiniteFuture();
            retry_backoff_ = kFirstRetry;
          }
        }
        if (listener) listener(refused);
      });
}

void SessionNearCache::RetryLoop() {
  auto due = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return stopping_ || retry_at_ != absl::InfiniteFuture();
  };
  auto stop = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_; };
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(&due));
      if (stopping_) return;
      if (mu_.AwaitWithDeadline(absl::Condition(&stop), retry_at_)) return;
      // Armed meanwhile, a connection lost, or a later failure moved it.
      if (retry_at_ == absl::InfiniteFuture() || absl::Now() < retry_at_) continue;
      retry_at_ = absl::InfiniteFuture();
    }
    Arm();
  }
}

void SessionNearCache::SetArmErrorListener(
    std::function<void(const std::string& error)> listener) {
  absl::MutexLock lock(&mu_);
  arm_error_listener_ = std::move(listener);
}

std::string SessionNearCache::ArmRefusal(
    const std::vector<absl::StatusOr<Reply>>& replies) const {
  if (replies.size() != 3) return "redis: short reply to CLIENT TRACKING / CLIENT LIST / CLIENT ID";
  const char* const commands[] = {"CLIENT TRACKING", "CLIENT LIST", "CLIENT ID"};
  for (size_t i = 0; i < replies.size(); ++i) {
    if (!replies[i].ok()) {
      return absl::StrCat(commands[i], ": ", replies[i].status().message());
    }
    if (replies[i]->is_error()) return absl::StrCat(commands[i], ": ", replies[i]->str);
  }
  if (!replies[1]->is_string() || !replies[2]->is_integer()) {
    return "redis: unexpected reply to CLIENT LIST / CLIENT ID";
  }
  const absl::string_view line = replies[1]->str;
  // The id must name our invalidation connection on this server...
  if (ClientListField(line, "name") != name_) {
    return absl::StrCat("CLIENT LIST: the redirect target is not ", name_,
                        " on the reader's server (a failover in progress?)");
  }
  // ...and it must be subscribed already: Redis drops (and forgets) an
  // invalidation whose redirect target has no subscription.
  const absl::string_view sub = ClientListField(line, "sub");
  if (sub.empty() || sub == "0") {
    return absl::StrCat("CLIENT LIST: ", name_, " has not subscribed to ", kInvalidateChannel,
                        " yet");
  }
  return "";
}

bool SessionNearCache::armed() const {
  absl::MutexLock lock(&mu_);
  return armed_;
}

bool SessionNearCache::WaitArmed(absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto is_armed = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return armed_; };
  return mu_.AwaitWithTimeout(absl::Condition(&is_armed), timeout);
}

SessionNearCache::Stats SessionNearCache::stats() const {
  absl::MutexLock lock(&mu_);
  Stats s = stats_;
  s.entries = entries_.size();
  s.bytes = bytes_;
  s.armed = armed_;
  return s;
}

void SessionNearCache::SetFillHookForTest(std::function<void(const std::string& key)> hook) {
  absl::MutexLock lock(&mu_);
  fill_hook_ = std::move(hook);
}

int64_t SessionNearCache::invalidation_client_id() const {
  absl::MutexLock lock(&mu_);
  return invalidation_id_;
}

int64_t SessionNearCache::reader_client_id() const {
  absl::MutexLock lock(&mu_);
  return reader_id_;
}

}  // namespace stateside::redis
