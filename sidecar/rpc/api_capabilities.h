// What the sidecar tells a client of its API (LifecycleService.GetInstance's
// api_revision and capabilities), in plain types: the server wiring sets them
// without the generated code. Plain values, no state.
#ifndef STATESIDE_SIDECAR_RPC_API_CAPABILITIES_H_
#define STATESIDE_SIDECAR_RPC_API_CAPABILITIES_H_

#include <cstdint>

namespace stateside::rpc {

// The revision of stateside.v1 this sidecar implements (GetInstance's
// api_revision): one more with each additive change of proto/stateside/v1
// (docs/API.md, "Evolving the API"). 2: Regenerate's user_id, the session
// limit policy and max_sessions_per_user of Create and Regenerate. 3: the
// request_id of Create, Regenerate and Publish; ReportDrained's drain_token;
// WatchSessionEvents and DestroyUserSessions' close_connections; a sequence
// number for every realtime target's stream, Subscribe's resume.
inline constexpr uint32_t kApiRevision = 3;

// The store's deployment, as GetInstance reports it.
enum class StoreTopology { kMemory, kStandalone, kSentinel, kCluster };

// What GetInstance announces (Capabilities of lifecycle.proto).
struct ApiCapabilities {
  bool pipe = true;
  bool session_events = false;  // WatchSessionEvents, close_connections
  bool reflection = false;
  bool request_ids = false;  // request_id and drain_token honoured
  bool realtime_resume = false;  // per-target sequences, resume, cluster-wide calls
  StoreTopology topology = StoreTopology::kMemory;
};

}  // namespace stateside::rpc

#endif  // STATESIDE_SIDECAR_RPC_API_CAPABILITIES_H_
