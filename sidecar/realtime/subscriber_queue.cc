#include "sidecar/realtime/subscriber_queue.h"

#include <utility>

namespace stateside::realtime {
namespace {

size_t BytesOf(const Delivery& delivery) {
  size_t bytes = delivery.event.payload.size() + delivery.event.name.size() +
                 delivery.event.to.size();
  for (const std::string& id : delivery.conn_ids) bytes += id.size();
  return bytes;
}

}  // namespace

bool SubscriberQueue::Push(std::shared_ptr<const Delivery> delivery, absl::Time now) {
  const size_t bytes = BytesOf(*delivery);
  return queue_.Push(std::move(delivery), bytes, now);
}

void SubscriberQueue::PushGap(const GapNotice& gap) {
  queue_.PushGap({gap.reason, gap.dropped, gap.from, gap.to});
}

std::optional<QueueItem> SubscriberQueue::Pop() {
  auto item = queue_.Pop();
  if (!item.has_value()) return std::nullopt;
  if (!item->gap.has_value()) return QueueItem{std::move(item->value), std::nullopt};
  const auto& g = *item->gap;
  return QueueItem{nullptr, GapNotice{g.reason, g.dropped, g.from, g.to}};
}

}  // namespace stateside::realtime
