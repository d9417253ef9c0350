// The few functions of the public value types (stateside/types.h).
#include "stateside/types.h"

#include "stateside/v1/error.pb.h"

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

std::optional<ErrorReason> ErrorReasonOf(const absl::Status& status) {
  auto payload =
      status.GetPayload(absl::string_view(kErrorInfoPayload.data(), kErrorInfoPayload.size()));
  if (!payload.has_value()) return std::nullopt;
  v1::ErrorInfo info;
  if (!info.ParseFromString(std::string(*payload))) return std::nullopt;
  ErrorReason reason{info.reason(), info.domain(), {}};
  for (const auto& [key, value] : info.metadata()) reason.metadata.emplace(key, value);
  return reason;
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
