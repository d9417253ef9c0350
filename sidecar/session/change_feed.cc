// ChangeFeed and its watchers' bounded queues.
#include "sidecar/session/change_feed.h"

#include <algorithm>
#include <utility>

namespace stateside::session {

namespace {

size_t BytesOf(const SessionChange& change) {
  size_t bytes = change.session_id.size() + change.user_id.size() +
                 change.previous_id.size() + change.origin.size();
  for (const std::string& name : change.attributes) bytes += name.size();
  return bytes;
}

}  // namespace

bool ChangeWatcher::Push(std::shared_ptr<const SessionChange> change, absl::Time now) {
  const size_t bytes = BytesOf(*change);
  return queue_.Push(std::move(change), bytes, now);
}

void ChangeWatcher::PushGap(const ChangeGap& gap) {
  queue_.PushGap({gap.reason, gap.dropped, gap.from, gap.to});
}

std::optional<ChangeItem> ChangeWatcher::Pop() {
  auto item = queue_.Pop();
  if (!item.has_value()) return std::nullopt;
  if (!item->gap.has_value()) return ChangeItem{std::move(item->value), std::nullopt};
  const auto& g = *item->gap;
  return ChangeItem{nullptr, ChangeGap{g.reason, g.dropped, g.from, g.to}};
}

ChangeFeed::ChangeFeed(std::string instance_id, const Clock* clock, size_t queue_events)
    : instance_id_(std::move(instance_id)), clock_(clock), queue_events_(queue_events) {}

void ChangeFeed::SetRelay(Relay* relay) { relay_.store(relay); }

void ChangeFeed::OnChange(SessionChange change) {
  change.origin = instance_id_;
  auto shared = std::make_shared<const SessionChange>(std::move(change));
  Deliver(shared);
  if (Relay* relay = relay_.load(); relay != nullptr) relay->Send(*shared);
}

void ChangeFeed::OnRemote(SessionChange change) {
  Deliver(std::make_shared<const SessionChange>(std::move(change)));
}

void ChangeFeed::OnRemoteLost(absl::Time from, absl::Time to) {
  std::vector<std::shared_ptr<ChangeWatcher>> watchers;
  {
    absl::MutexLock lock(&mu_);
    watchers = watchers_;
  }
  for (const auto& watcher : watchers) {
    watcher->PushGap(ChangeGap{ChangeGap::Reason::kRemoteLost, 0, from, to});
  }
}

void ChangeFeed::Deliver(std::shared_ptr<const SessionChange> change) {
  std::vector<std::shared_ptr<ChangeWatcher>> watchers;
  {
    absl::MutexLock lock(&mu_);
    if (watchers_.empty()) return;
    watchers = watchers_;
  }
  const absl::Time now = clock_->Now();
  for (const auto& watcher : watchers) {
    if (watcher->Wants(change->kind)) watcher->Push(change, now);
  }
}

std::shared_ptr<ChangeWatcher> ChangeFeed::AddWatcher(uint32_t kinds,
                                                      std::function<void()> wake) {
  auto watcher = std::make_shared<ChangeWatcher>(kinds, queue_events_, std::move(wake));
  bool added = false;
  {
    absl::MutexLock lock(&mu_);
    if (!shut_down_) {
      watchers_.push_back(watcher);
      added = true;
    }
  }
  if (!added) {
    watcher->Close();  // runs `wake`: never under the lock
    return watcher;
  }
  if (Relay* relay = relay_.load(); relay != nullptr) {
    if (std::optional<ChangeGap> gap = relay->Watched(); gap.has_value()) watcher->PushGap(*gap);
  }
  return watcher;
}

void ChangeFeed::RemoveWatcher(const std::shared_ptr<ChangeWatcher>& watcher) {
  bool last = false;
  {
    absl::MutexLock lock(&mu_);
    const size_t before = watchers_.size();
    watchers_.erase(std::remove(watchers_.begin(), watchers_.end(), watcher), watchers_.end());
    last = watchers_.empty() && before > 0;  // it was there, and the last
  }
  if (!last) return;
  if (Relay* relay = relay_.load(); relay != nullptr) relay->Unwatched();
}

void ChangeFeed::Shutdown() {
  std::vector<std::shared_ptr<ChangeWatcher>> watchers;
  {
    absl::MutexLock lock(&mu_);
    shut_down_ = true;
    watchers = watchers_;
  }
  for (const auto& watcher : watchers) watcher->Close();
}

size_t ChangeFeed::watchers() const {
  absl::MutexLock lock(&mu_);
  return watchers_.size();
}

}  // namespace stateside::session
