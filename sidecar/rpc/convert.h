// Proto <-> domain mapping for the RPC layer, with the input checks that
// belong to the wire format (a key that names neither id nor cookie, a
// malformed Duration). Rules about content (attribute names, sizes, TTL
// bounds, subjects) belong to the managers, which answer for them.
// Errors are INVALID_ARGUMENT naming the field. Pure functions.
#ifndef STATESIDE_SIDECAR_RPC_CONVERT_H_
#define STATESIDE_SIDECAR_RPC_CONVERT_H_

#include <optional>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/timestamp.pb.h"
#include "sidecar/session/session_manager.h"
#include "stateside/v1/session.pb.h"

namespace stateside::rpc {

// Longer than any id (43) or cookie (87) by far; anything longer is not a
// key at all and is refused before it reaches the session rules.
inline constexpr size_t kMaxKeyBytes = 512;

void ToProto(absl::Time time, google::protobuf::Timestamp* out);
void ToProto(absl::Duration duration, google::protobuf::Duration* out);

// A well-formed Duration of at most a century: 0 <= seconds <= 100 years,
// 0 <= nanos < 1e9 (so neither part is negative, unlike what the Duration
// type itself allows for negative spans).
absl::StatusOr<absl::Duration> NonNegativeDurationFromProto(
    const google::protobuf::Duration& duration, std::string_view field);

// The same, and not zero.
absl::StatusOr<absl::Duration> PositiveDurationFromProto(
    const google::protobuf::Duration& duration, std::string_view field);

// A key with exactly one of id/cookie set, non-empty and at most
// kMaxKeyBytes. `present` is the has_ bit of the message field.
absl::StatusOr<session::SessionKey> KeyFromProto(bool present,
                                        const v1::SessionKey& key,
                                        std::string_view field);

absl::StatusOr<session::CreateParams> CreateParamsFromProto(
    const v1::CreateSessionRequest& request);
// INVALID_ARGUMENT for a session_limit_policy this sidecar does not know.
absl::StatusOr<session::RegenerateParams> RegenerateParamsFromProto(
    const v1::RegenerateSessionRequest& request);
session::UpdateParams UpdateParamsFromProto(const v1::UpdateSessionRequest& request);

void ToProto(const session::SessionInfo& info, v1::SessionMetadata* out);
// The values are moved into the proto, not copied (a session's attributes
// are most of a read's bytes).
void ToProto(session::Session session, v1::Session* out);

}  // namespace stateside::rpc

#endif  // STATESIDE_SIDECAR_RPC_CONVERT_H_
