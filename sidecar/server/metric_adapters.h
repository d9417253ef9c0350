// Adapters from the parts' metric seams to the Prometheus registry
// (admin::Metrics): they live here, where both sides are known, so that
// admin depends on no part it reports on.
#ifndef STATESIDE_SIDECAR_SERVER_METRIC_ADAPTERS_H_
#define STATESIDE_SIDECAR_SERVER_METRIC_ADAPTERS_H_

#include <cstdint>
#include <string_view>

#include "sidecar/admin/metrics.h"
#include "sidecar/realtime/hub.h"

namespace stateside {

// Adapts the realtime hub's reports to Metrics.
// Thread-safe as Metrics. REQUIRES: `metrics` outlives it.
class MetricsRealtimeEvents final : public realtime::RealtimeMetrics {
 public:
  explicit MetricsRealtimeEvents(admin::Metrics* metrics) : metrics_(metrics) {}

  void Published(realtime::TargetKind target) override {
    metrics_->RealtimePublished(realtime::TargetKindName(target));
  }
  void Received() override { metrics_->RealtimeReceived(); }
  void Dropped(std::string_view reason, uint64_t count) override {
    metrics_->RealtimeDropped(reason, count);
  }
  void Gap(std::string_view reason) override { metrics_->RealtimeGap(reason); }
  void CapRefused(std::string_view cap) override { metrics_->CapRefused(cap); }

 private:
  admin::Metrics* const metrics_;
};

}  // namespace stateside

#endif  // STATESIDE_SIDECAR_SERVER_METRIC_ADAPTERS_H_
