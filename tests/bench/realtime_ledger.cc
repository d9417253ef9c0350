// RealtimeLedger: per-event bookkeeping from Publish to delivery.
#include <algorithm>

#include "tests/bench/realtime_bench.h"

namespace stateside::bench {

void RealtimeLedger::OnSent(uint64_t sequence, int64_t sent_ns, bool measured) {
  absl::MutexLock lock(&mu_);
  if (sequence != entries_.size()) return;  // breaks the REQUIRES: ignore
  entries_.push_back(Entry{sent_ns, measured});
  ++pending_publishes_;
  if (measured) ++result_.published;
}

void RealtimeLedger::OnPublishDone(uint64_t sequence, int64_t done_ns,
                                   grpc::StatusCode code) {
  absl::MutexLock lock(&mu_);
  if (sequence >= entries_.size() || entries_[sequence].done) return;
  Entry& e = entries_[sequence];
  e.done = true;
  e.ok = code == grpc::StatusCode::OK;
  --pending_publishes_;
  // A delivery may overtake its Publish reply: only then is it awaited.
  if (e.ok && !e.received) ++awaited_;
  if (!e.measured) return;
  if (e.ok) {
    result_.publish_rpc.Record(static_cast<uint64_t>(std::max<int64_t>(0, done_ns - e.sent_ns)));
    return;
  }
  ++result_.publish_errors;
  const int c = static_cast<int>(code);
  if (c >= 0 && c < kNumStatusCodes) ++result_.errors_by_code[c];
}

void RealtimeLedger::OnReceived(const PayloadStamp& stamp, int64_t received_ns,
                                size_t conn_ids, std::optional<int64_t> sidecar_ns) {
  absl::MutexLock lock(&mu_);
  if (stamp.sequence >= entries_.size()) {
    ++result_.unknown;
    return;
  }
  Entry& e = entries_[stamp.sequence];
  const bool first = !e.received;
  if (first) {
    e.received = true;
    if (e.done && e.ok) --awaited_;
  }
  const bool later_seen = highest_received_.has_value() && stamp.sequence < *highest_received_;
  highest_received_ = std::max(highest_received_.value_or(0), stamp.sequence);
  if (!e.measured) return;
  if (!first) {
    ++result_.duplicates;
    return;
  }
  if (later_seen) ++result_.out_of_order;
  ++result_.delivered;
  result_.deliveries += conn_ids;
  if (conn_ids < connections_) ++result_.short_deliveries;
  // The stamp, not the ledger's copy, is what travelled with the event.
  result_.latency.Record(static_cast<uint64_t>(std::max<int64_t>(0, received_ns - stamp.sent_ns)));
  if (sidecar_ns.has_value()) {
    result_.from_sidecar.Record(static_cast<uint64_t>(std::max<int64_t>(0, *sidecar_ns)));
  }
}

void RealtimeLedger::OnUnknown() {
  absl::MutexLock lock(&mu_);
  ++result_.unknown;
}

void RealtimeLedger::OnGap(uint64_t dropped) {
  absl::MutexLock lock(&mu_);
  ++result_.gaps;
  result_.gap_dropped += dropped;
}

bool RealtimeLedger::Quiet() const { return pending_publishes_ == 0 && awaited_ == 0; }

bool RealtimeLedger::AwaitPublishesDone(absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  auto done = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return pending_publishes_ == 0; };
  return mu_.AwaitWithDeadline(absl::Condition(&done), deadline);
}

bool RealtimeLedger::AwaitAllReceived(absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  auto quiet = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return Quiet(); };
  return mu_.AwaitWithDeadline(absl::Condition(&quiet), deadline);
}

RealtimeResult RealtimeLedger::Tally() const {
  absl::MutexLock lock(&mu_);
  RealtimeResult r = result_;
  for (const Entry& e : entries_) {
    if (e.measured && e.done && e.ok && !e.received) ++r.lost;
  }
  return r;
}

}  // namespace stateside::bench
