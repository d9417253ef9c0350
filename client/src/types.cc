// The few functions of the public value types (stateside/types.h).
#include "stateside/types.h"

namespace stateside {

SessionRef SessionRef::Parse(std::string_view text) {
  if (text.find('.') != std::string_view::npos) {
    return Cookie(std::string(text));
  }
  return Id(std::string(text));
}

std::string_view DrainStateName(DrainState state) {
  switch (state) {
    case DrainState::kServing: return "SERVING";
    case DrainState::kDraining: return "DRAINING";
    case DrainState::kDrained: return "DRAINED";
    case DrainState::kUnspecified: break;
  }
  return "UNSPECIFIED";
}

std::string_view StoreTopologyName(StoreTopology topology) {
  switch (topology) {
    case StoreTopology::kMemory: return "memory";
    case StoreTopology::kStandalone: return "standalone";
    case StoreTopology::kSentinel: return "sentinel";
    case StoreTopology::kCluster: return "cluster";
    case StoreTopology::kUnspecified: break;
  }
  return "unspecified";
}

std::string_view ServingStatusName(ServingStatus status) {
  switch (status) {
    case ServingStatus::kServing: return "SERVING";
    case ServingStatus::kNotServing: return "NOT_SERVING";
    case ServingStatus::kServiceUnknown: return "SERVICE_UNKNOWN";
    case ServingStatus::kUnknown: break;
  }
  return "UNKNOWN";
}

}  // namespace stateside
