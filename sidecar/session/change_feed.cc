// ChangeFeed and its watchers' bounded queues.
#include "sidecar/session/change_feed.h"

#include <algorithm>
#include <utility>

namespace stateside::session {

ChangeWatcher::ChangeWatcher(uint32_t kinds, size_t max_events, std::function<void()> wake)
    : kinds_(kinds == 0 ? kAllKinds : kinds),
      max_events_(std::max<size_t>(max_events, 1)),
      wake_(std::move(wake)) {}

bool ChangeWatcher::Push(std::shared_ptr<const SessionChange> change, absl::Time now) {
  bool was_empty;
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return false;
    if (changes_ >= max_events_) {
      if (dropped_ == 0) first_drop_ = now;
      last_drop_ = now;
      ++dropped_;
      ++dropped_total_;
      return false;
    }
    was_empty = !ReadyLocked();
    if (dropped_ > 0) items_.push_back(ChangeItem{nullptr, TakeOverflowLocked()});
    items_.push_back(ChangeItem{std::move(change), std::nullopt});
    ++changes_;
  }
  if (was_empty && wake_) wake_();
  return true;
}

void ChangeWatcher::PushGap(const ChangeGap& gap) {
  bool was_empty;
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return;
    was_empty = !ReadyLocked();
    if (!items_.empty() && items_.back().gap.has_value() &&
        items_.back().gap->reason == gap.reason) {
      ChangeGap& last = *items_.back().gap;
      last.dropped += gap.dropped;
      last.from = std::min(last.from, gap.from);
      last.to = std::max(last.to, gap.to);
    } else {
      items_.push_back(ChangeItem{nullptr, gap});
    }
  }
  if (was_empty && wake_) wake_();
}

std::optional<ChangeItem> ChangeWatcher::Pop() {
  absl::MutexLock lock(&mu_);
  if (items_.empty()) {
    if (dropped_ == 0) return std::nullopt;
    return ChangeItem{nullptr, TakeOverflowLocked()};
  }
  ChangeItem item = std::move(items_.front());
  items_.pop_front();
  if (item.change != nullptr) --changes_;
  return item;
}

void ChangeWatcher::Close() {
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return;
    closed_ = true;
  }
  if (wake_) wake_();
}

bool ChangeWatcher::closed() const {
  absl::MutexLock lock(&mu_);
  return closed_;
}

uint64_t ChangeWatcher::dropped_total() const {
  absl::MutexLock lock(&mu_);
  return dropped_total_;
}

ChangeGap ChangeWatcher::TakeOverflowLocked() {
  ChangeGap gap{ChangeGap::Reason::kOverflow, dropped_, first_drop_, last_drop_};
  dropped_ = 0;
  return gap;
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
  {
    absl::MutexLock lock(&mu_);
    if (!shut_down_) {
      watchers_.push_back(watcher);
      return watcher;
    }
  }
  watcher->Close();
  return watcher;
}

void ChangeFeed::RemoveWatcher(const std::shared_ptr<ChangeWatcher>& watcher) {
  absl::MutexLock lock(&mu_);
  watchers_.erase(std::remove(watchers_.begin(), watchers_.end(), watcher), watchers_.end());
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
