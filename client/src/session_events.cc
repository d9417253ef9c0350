// Client::WatchSessionEvents and the names of the session event kinds.
#include <grpcpp/grpcpp.h>

#include <array>
#include <utility>

#include "client/src/client_impl.h"
#include "client/src/convert.h"
#include "client/src/realtime_internal.h"
#include "stateside/client.h"
#include "stateside/v1/session.grpc.pb.h"

namespace stateside {
namespace {

constexpr std::array<std::pair<SessionEventKind, std::string_view>, 5> kKindNames = {{
    {SessionEventKind::kCreated, "created"},
    {SessionEventKind::kRegenerated, "regenerated"},
    {SessionEventKind::kUpdated, "updated"},
    {SessionEventKind::kDestroyed, "destroyed"},
    {SessionEventKind::kExpired, "expired"},
}};

SessionChange ChangeFromProto(const v1::SessionChange& c) {
  SessionChange change;
  // SessionEventKind's order is the proto's.
  const int kind = static_cast<int>(c.kind());
  change.kind = kind >= 1 && kind <= static_cast<int>(kKindNames.size())
                    ? static_cast<SessionEventKind>(kind)
                    : SessionEventKind::kUnspecified;
  change.session_id = c.session_id();
  change.user_id = c.user_id();
  change.time = client_internal::TimeFromProto(c.time());
  change.previous_session_id = c.previous_session_id();
  change.attributes.assign(c.attributes().begin(), c.attributes().end());
  change.origin_instance = c.origin_instance();
  return change;
}

}  // namespace

std::string_view SessionEventKindName(SessionEventKind kind) {
  for (const auto& [k, name] : kKindNames) {
    if (k == kind) return name;
  }
  return "unspecified";
}

std::optional<SessionEventKind> SessionEventKindFromName(std::string_view name) {
  for (const auto& [kind, n] : kKindNames) {
    if (n == name) return kind;
  }
  return std::nullopt;
}

absl::Status Client::WatchSessionEvents(
    const std::function<bool(const SessionEvent&)>& on_event,
    const std::vector<SessionEventKind>& kinds) {
  v1::WatchSessionEventsRequest request;
  for (SessionEventKind kind : kinds) {
    request.add_kinds(static_cast<v1::SessionEventKind>(static_cast<int>(kind)));
  }
  // No deadline: the stream lasts as long as the sidecar runs.
  ::grpc::ClientContext context;
  auto stub = v1::SessionService::NewStub(impl_->channel);
  std::unique_ptr<::grpc::ClientReader<v1::SessionEvent>> reader =
      stub->WatchSessionEvents(&context, request);
  v1::SessionEvent event;
  bool stopped = false;
  while (!stopped && reader->Read(&event)) {
    if (event.has_change()) {
      stopped = !on_event(SessionEvent(ChangeFromProto(event.change())));
    } else if (event.has_gap()) {
      stopped = !on_event(SessionEvent(client_internal::GapFromProto(event.gap())));
    }  // `watching`, and kinds of message this client does not know
  }
  if (stopped) context.TryCancel();
  // Finish after TryCancel answers CANCELLED: our own doing, not a failure.
  const absl::Status status = client_internal::FromGrpcStatus(reader->Finish());
  return stopped ? absl::OkStatus() : status;
}

}  // namespace stateside
