// The client's RealtimeService calls: validation, request mapping, the retry
// loop, and conversions (see realtime_internal.h; contract in client.h).
#include <grpcpp/grpcpp.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "client/src/convert.h"
#include "client/src/realtime_internal.h"
#include "client/src/retrying_call.h"
#include "client/src/realtime_subscription.h"
#include "client/src/retry.h"
#include "client/src/utf8.h"

namespace stateside {

std::string_view TargetName(Target target) {
  switch (target) {
    case Target::kRoom: return "room";
    case Target::kUser: return "user";
    case Target::kConnection: return "connection";
    case Target::kAll: return "all";
    case Target::kUnspecified: break;
  }
  return "unspecified";
}

StreamPosition PositionOf(const Delivery& delivery) {
  StreamPosition position;
  position.sequence = delivery.sequence;
  switch (delivery.target) {
    case Target::kRoom: position.target = PublishTarget::Room(delivery.to); break;
    case Target::kUser: position.target = PublishTarget::User(delivery.to); break;
    case Target::kConnection:
      position.target = PublishTarget::Connection(ConnectionRef{"", delivery.to});
      break;
    default: position.target = PublishTarget::All(); break;
  }
  return position;
}

std::string_view GapReasonName(Gap::Reason reason) {
  switch (reason) {
    case Gap::Reason::kSubscriberOverflow: return "subscriber-overflow";
    case Gap::Reason::kRedisDisconnected: return "redis-disconnected";
    case Gap::Reason::kResumeIncomplete: return "resume-incomplete";
    case Gap::Reason::kUnspecified: break;
  }
  return "unspecified";
}

namespace client_internal {
namespace {


// The client checks only what protobuf needs (UTF-8, CheckText) and what is
// plainly wrong (an empty name); the sidecar enforces the exact limits
// (lengths, printable ASCII, counts) and names the field.
absl::Status CheckName(std::string_view field, std::string_view text) {
  if (text.empty()) return absl::InvalidArgumentError(absl::StrCat(Sv(field), " is empty"));
  return CheckText(field, text);
}

absl::Status CheckRooms(const std::vector<std::string>& rooms) {
  for (const std::string& room : rooms) {
    STATESIDE_CLIENT_RETURN_IF_ERROR(CheckName("room", room));
  }
  return absl::OkStatus();
}

absl::Status CheckRef(std::string_view field, const ConnectionRef& ref) {
  STATESIDE_CLIENT_RETURN_IF_ERROR(
      CheckText(absl::StrCat(Sv(field), ".instance_id"), ref.instance_id));
  return CheckName(absl::StrCat(Sv(field), ".conn_id"), ref.conn_id);
}

absl::Status RegistrationToProto(const ConnectionRegistration& c,
                                 v1::RegisterConnectionRequest* out) {
  STATESIDE_CLIENT_RETURN_IF_ERROR(CheckName("conn_id", c.conn_id));
  STATESIDE_CLIENT_RETURN_IF_ERROR(CheckText("user_id", c.user_id));
  STATESIDE_CLIENT_RETURN_IF_ERROR(CheckRooms(c.rooms));
  out->set_conn_id(c.conn_id);
  out->set_user_id(c.user_id);
  for (const std::string& room : c.rooms) out->add_rooms(room);
  return absl::OkStatus();
}

}  // namespace

void ConnectionRefToProto(const ConnectionRef& ref, v1::ConnectionRef* out) {
  out->set_instance_id(ref.instance_id);
  out->set_conn_id(ref.conn_id);
}

ConnectionRef ConnectionRefFromProto(const v1::ConnectionRef& ref) {
  return {ref.instance_id(), ref.conn_id()};
}

Target TargetFromProto(v1::Target target) {
  switch (target) {
    case v1::TARGET_ROOM: return Target::kRoom;
    case v1::TARGET_USER: return Target::kUser;
    case v1::TARGET_CONNECTION: return Target::kConnection;
    case v1::TARGET_ALL: return Target::kAll;
    default: return Target::kUnspecified;
  }
}

Delivery DeliveryFromProto(const v1::Delivery& d) {
  Delivery delivery;
  delivery.target = TargetFromProto(d.target());
  delivery.to = d.to();
  delivery.event = d.event();
  delivery.payload = d.payload();
  delivery.conn_ids.assign(d.conn_ids().begin(), d.conn_ids().end());
  delivery.sequence = d.sequence();
  delivery.published_at = TimeFromProto(d.published_at());
  delivery.origin_instance = d.origin_instance();
  return delivery;
}

Gap GapFromProto(const v1::Gap& g) {
  Gap gap;
  switch (g.reason()) {
    case v1::Gap::REASON_SUBSCRIBER_OVERFLOW: gap.reason = Gap::Reason::kSubscriberOverflow; break;
    case v1::Gap::REASON_REDIS_DISCONNECTED: gap.reason = Gap::Reason::kRedisDisconnected; break;
    case v1::Gap::REASON_RESUME_INCOMPLETE: gap.reason = Gap::Reason::kResumeIncomplete; break;
    default: gap.reason = Gap::Reason::kUnspecified; break;
  }
  if (g.has_resume()) {
    const v1::StreamPosition& r = g.resume();
    StreamPosition position;
    position.sequence = r.sequence();
    switch (r.target_case()) {
      case v1::StreamPosition::kRoom: position.target = PublishTarget::Room(r.room()); break;
      case v1::StreamPosition::kUserId: position.target = PublishTarget::User(r.user_id()); break;
      case v1::StreamPosition::kConnection:
        position.target = PublishTarget::Connection(
            ConnectionRef{r.connection().instance_id(), r.connection().conn_id()});
        break;
      default: position.target = PublishTarget::All(); break;
    }
    gap.resume = std::move(position);
  }
  gap.first_sequence = g.first_sequence();
  gap.dropped = g.dropped();
  if (g.has_from_time()) gap.from = TimeFromProto(g.from_time());
  if (g.has_to_time()) gap.to = TimeFromProto(g.to_time());
  return gap;
}

std::optional<RealtimeEvent> EventFromProto(const v1::RealtimeEvent& e) {
  switch (e.kind_case()) {
    case v1::RealtimeEvent::kDelivery: return RealtimeEvent(DeliveryFromProto(e.delivery()));
    case v1::RealtimeEvent::kGap: return RealtimeEvent(GapFromProto(e.gap()));
    case v1::RealtimeEvent::kDisconnect:
      return RealtimeEvent(Disconnect{{e.disconnect().conn_ids().begin(),
                                       e.disconnect().conn_ids().end()}});
    default: return std::nullopt;
  }
}

RealtimeCalls::RealtimeCalls(std::shared_ptr<::grpc::Channel> channel,
                             const ClientOptions& options, Timer* timer)
    : options_(options),
      channel_(std::move(channel)),
      stub_(v1::RealtimeService::NewStub(channel_)),
      timer_(timer) {}

RealtimeCalls::~RealtimeCalls() { Shutdown(); }

void RealtimeCalls::Shutdown() { calls_.Shutdown(); }

double RealtimeCalls::Jitter() {
  absl::MutexLock lock(&rng_mu_);
  return absl::Uniform(absl::IntervalClosed, rng_, 0.0, 1.0);
}

template <typename Attempt>
absl::Status RealtimeCalls::Call(Rpc rpc, const Attempt& attempt) {
  return CallWithRetries(rpc, options_, [this] { return Jitter(); }, attempt);
}

// PublishRequest's and StreamPosition's `target` oneof (the same fields).
template <typename Message>
absl::Status TargetToProto(const PublishTarget& target, Message* out) {
  switch (target.kind) {
    case Target::kRoom:
      STATESIDE_CLIENT_RETURN_IF_ERROR(CheckName("room", target.name));
      out->set_room(target.name);
      return absl::OkStatus();
    case Target::kUser:
      STATESIDE_CLIENT_RETURN_IF_ERROR(CheckName("user_id", target.name));
      out->set_user_id(target.name);
      return absl::OkStatus();
    case Target::kConnection:
      STATESIDE_CLIENT_RETURN_IF_ERROR(CheckRef("connection", target.connection));
      ConnectionRefToProto(target.connection, out->mutable_connection());
      return absl::OkStatus();
    case Target::kAll:
      out->set_all(true);
      return absl::OkStatus();
    case Target::kUnspecified:
      break;
  }
  return absl::InvalidArgumentError("target: unspecified");
}

namespace {

absl::StatusOr<v1::PublishRequest> PublishRequest(const PublishTarget& target,
                                                  std::string_view event,
                                                  std::string_view payload,
                                                  const std::vector<ConnectionRef>& except,
                                                  std::string_view sender_user_id,
                                                  std::string_view request_id) {
  v1::PublishRequest request;
  STATESIDE_CLIENT_RETURN_IF_ERROR(TargetToProto(target, &request));
  STATESIDE_CLIENT_RETURN_IF_ERROR(CheckText("event", event));
  request.set_event(std::string(event));
  request.set_payload(std::string(payload));
  for (const ConnectionRef& ref : except) {
    STATESIDE_CLIENT_RETURN_IF_ERROR(CheckRef("exclude", ref));
    ConnectionRefToProto(ref, request.add_exclude());
  }
  if (!sender_user_id.empty()) {
    STATESIDE_CLIENT_RETURN_IF_ERROR(CheckName("sender_user_id", sender_user_id));
    request.set_sender_user_id(std::string(sender_user_id));
  }
  // One per call: every attempt carries the same, so a retry publishes once.
  request.set_request_id(request_id.empty() ? NewRequestId() : std::string(request_id));
  return request;
}

PublishResult Published(const v1::PublishResponse& response) {
  return PublishResult{response.sequence(), response.instances()};
}

absl::StatusOr<v1::RoomMembersRequest> RoomMembersRequest(std::string_view room,
                                                          int page_size,
                                                          std::string_view page_token) {
  STATESIDE_CLIENT_RETURN_IF_ERROR(CheckName("room", room));
  STATESIDE_CLIENT_RETURN_IF_ERROR(CheckText("page_token", page_token));
  if (page_size < 0) return absl::InvalidArgumentError("page_size is negative");
  v1::RoomMembersRequest request;
  request.set_room(std::string(room));
  request.set_page_size(page_size);
  request.set_page_token(std::string(page_token));
  return request;
}

RoomMembersPage MembersPage(const v1::RoomMembersResponse& response) {
  RoomMembersPage page;
  page.count = response.count();
  page.members.reserve(response.members_size());
  for (const auto& m : response.members()) page.members.push_back(ConnectionRefFromProto(m));
  page.next_page_token = response.next_page_token();
  return page;
}

absl::StatusOr<v1::UserConnectionsRequest> UserConnectionsRequest(std::string_view user_id) {
  STATESIDE_CLIENT_RETURN_IF_ERROR(CheckName("user_id", user_id));
  v1::UserConnectionsRequest request;
  request.set_user_id(std::string(user_id));
  return request;
}

std::vector<ConnectionRef> Connections(const v1::UserConnectionsResponse& response) {
  std::vector<ConnectionRef> connections;
  connections.reserve(response.connections_size());
  for (const auto& c : response.connections()) {
    connections.push_back(ConnectionRefFromProto(c));
  }
  return connections;
}

absl::StatusOr<v1::RegisterConnectionRequest> RegisterRequest(
    std::string_view conn_id, std::string_view user_id, const std::vector<std::string>& rooms) {
  v1::RegisterConnectionRequest request;
  STATESIDE_CLIENT_RETURN_IF_ERROR(RegistrationToProto(
      {std::string(conn_id), std::string(user_id), rooms}, &request));
  return request;
}

absl::StatusOr<v1::UnregisterConnectionRequest> UnregisterRequest(std::string_view conn_id) {
  STATESIDE_CLIENT_RETURN_IF_ERROR(CheckName("conn_id", conn_id));
  v1::UnregisterConnectionRequest request;
  request.set_conn_id(std::string(conn_id));
  return request;
}

bool Found(const v1::UnregisterConnectionResponse& response) { return response.found(); }

// JoinRequest and LeaveRequest (the same fields).
template <typename Request>
absl::StatusOr<Request> RoomsRequest(std::string_view conn_id,
                                     const std::vector<std::string>& rooms) {
  STATESIDE_CLIENT_RETURN_IF_ERROR(CheckName("conn_id", conn_id));
  STATESIDE_CLIENT_RETURN_IF_ERROR(CheckRooms(rooms));
  Request request;
  request.set_conn_id(std::string(conn_id));
  for (const std::string& room : rooms) request.add_rooms(room);
  return request;
}

// The reply of a call that answers only its status.
struct Done {};
constexpr auto kDone = [](const auto&) { return Done{}; };

// A StatusCallback as the Callback<Done> that Async calls.
Callback<Done> StatusOnly(StatusCallback done) {
  return [done = std::move(done)](absl::StatusOr<Done> result) mutable {
    done(result.status());
  };
}

}  // namespace

// The blocking calls below and their Async forms share the request
// builders and the reply parsers above.
template <typename Request, typename Response, typename Method, typename Parse>
auto RealtimeCalls::Blocking(Rpc rpc, absl::StatusOr<Request> request, Method method,
                             Parse parse) -> absl::StatusOr<decltype(parse(Response()))> {
  if (!request.ok()) return request.status();
  Response response;
  STATESIDE_CLIENT_RETURN_IF_ERROR(Call(rpc, [&](::grpc::ClientContext* context) {
    response.Clear();
    return (stub_.get()->*method)(context, *request, &response);
  }));
  return parse(response);
}

// One Async call: its request (sent again by each attempt), deadline and
// retries so far, and where its result goes.
template <typename Request, typename T>
struct RealtimeCalls::AsyncCall {
  Rpc rpc;
  Request request;
  absl::Time deadline;
  int retries = 0;
  Callback<T> done;
};

template <typename Request, typename Response, typename T, typename Method, typename Parse>
void RealtimeCalls::Async(Rpc rpc, absl::StatusOr<Request> request, Method method,
                          Parse parse, Callback<T> done) {
  if (!request.ok()) return done(request.status());
  auto call = std::make_shared<AsyncCall<Request, T>>(AsyncCall<Request, T>{
      rpc, *std::move(request), absl::Now() + options_.call_timeout, 0, std::move(done)});
  StartAttempt<Response>(std::move(call), method, parse);
}

template <typename Response, typename Pending, typename Method, typename Parse>
void RealtimeCalls::StartAttempt(std::shared_ptr<Pending> call, Method method, Parse parse) {
  const absl::Time deadline = call->deadline;
  auto request = call->request;  // kept for a retry
  calls_.Issue<decltype(request), Response>(
      std::move(request), deadline,
      [this, method](::grpc::ClientContext* context, const auto* q, Response* r,
                     std::function<void(::grpc::Status)> f) {
        method(stub_->async(), context, q, r, std::move(f));
      },
      [this, call = std::move(call), method, parse](absl::Status status,
                                                    Response& response) mutable {
        if (ShouldRetry(call->rpc, status.code(), call->retries, options_.max_retries)) {
          const absl::Duration delay = BackoffDelay(
              call->retries + 1, options_.initial_backoff, options_.max_backoff, Jitter());
          // As CallWithRetries: a retry that could not finish in time is not
          // attempted.
          if (absl::Now() + delay < call->deadline) {
            ++call->retries;
            timer_->Schedule(absl::Now() + delay,
                             [this, call = std::move(call), method, parse]() mutable {
                               StartAttempt<Response>(std::move(call), method, parse);
                             });
            return;
          }
        }
        if (!status.ok()) return call->done(std::move(status));
        call->done(parse(response));
      });
}

// A stub's async() method, for Async.
#define STATESIDE_ASYNC_METHOD(method)                                              \
  [](v1::RealtimeService::Stub::async_interface* async, ::grpc::ClientContext* c, \
     const auto* q, auto* r, std::function<void(::grpc::Status)> f) {             \
    async->method(c, q, r, std::move(f));                                          \
  }

absl::Status RealtimeCalls::RegisterConnection(std::string_view conn_id,
                                               std::string_view user_id,
                                               const std::vector<std::string>& rooms) {
  return Blocking<v1::RegisterConnectionRequest, v1::RegisterConnectionResponse>(
             Rpc::kRegisterConnection, RegisterRequest(conn_id, user_id, rooms),
             &v1::RealtimeService::Stub::RegisterConnection, kDone)
      .status();
}

void RealtimeCalls::RegisterConnectionAsync(std::string_view conn_id, std::string_view user_id,
                                            const std::vector<std::string>& rooms,
                                            StatusCallback done) {
  Async<v1::RegisterConnectionRequest, v1::RegisterConnectionResponse>(
      Rpc::kRegisterConnection, RegisterRequest(conn_id, user_id, rooms),
      STATESIDE_ASYNC_METHOD(RegisterConnection), kDone, StatusOnly(std::move(done)));
}

absl::StatusOr<bool> RealtimeCalls::UnregisterConnection(std::string_view conn_id) {
  return Blocking<v1::UnregisterConnectionRequest, v1::UnregisterConnectionResponse>(
      Rpc::kUnregisterConnection, UnregisterRequest(conn_id),
      &v1::RealtimeService::Stub::UnregisterConnection, Found);
}

void RealtimeCalls::UnregisterConnectionAsync(std::string_view conn_id, Callback<bool> done) {
  Async<v1::UnregisterConnectionRequest, v1::UnregisterConnectionResponse>(
      Rpc::kUnregisterConnection, UnregisterRequest(conn_id),
      STATESIDE_ASYNC_METHOD(UnregisterConnection), Found, std::move(done));
}

absl::Status RealtimeCalls::Join(std::string_view conn_id,
                                 const std::vector<std::string>& rooms) {
  return Blocking<v1::JoinRequest, v1::JoinResponse>(
             Rpc::kJoin, RoomsRequest<v1::JoinRequest>(conn_id, rooms),
             &v1::RealtimeService::Stub::Join, kDone)
      .status();
}

void RealtimeCalls::JoinAsync(std::string_view conn_id, const std::vector<std::string>& rooms,
                              StatusCallback done) {
  Async<v1::JoinRequest, v1::JoinResponse>(
      Rpc::kJoin, RoomsRequest<v1::JoinRequest>(conn_id, rooms), STATESIDE_ASYNC_METHOD(Join),
      kDone, StatusOnly(std::move(done)));
}

absl::Status RealtimeCalls::Leave(std::string_view conn_id,
                                  const std::vector<std::string>& rooms) {
  return Blocking<v1::LeaveRequest, v1::LeaveResponse>(
             Rpc::kLeave, RoomsRequest<v1::LeaveRequest>(conn_id, rooms),
             &v1::RealtimeService::Stub::Leave, kDone)
      .status();
}

void RealtimeCalls::LeaveAsync(std::string_view conn_id, const std::vector<std::string>& rooms,
                               StatusCallback done) {
  Async<v1::LeaveRequest, v1::LeaveResponse>(
      Rpc::kLeave, RoomsRequest<v1::LeaveRequest>(conn_id, rooms), STATESIDE_ASYNC_METHOD(Leave),
      kDone, StatusOnly(std::move(done)));
}

absl::StatusOr<PublishResult> RealtimeCalls::Publish(
    const PublishTarget& target, std::string_view event, std::string_view payload,
    const std::vector<ConnectionRef>& except, std::string_view sender_user_id,
    std::string_view request_id) {
  return Blocking<v1::PublishRequest, v1::PublishResponse>(
      Rpc::kPublish,
      PublishRequest(target, event, payload, except, sender_user_id, request_id),
      &v1::RealtimeService::Stub::Publish, Published);
}

void RealtimeCalls::PublishAsync(const PublishTarget& target, std::string_view event,
                                 std::string_view payload,
                                 const std::vector<ConnectionRef>& except,
                                 std::string_view sender_user_id,
                                 Callback<PublishResult> done) {
  Async<v1::PublishRequest, v1::PublishResponse>(
      Rpc::kPublish, PublishRequest(target, event, payload, except, sender_user_id, ""),
      STATESIDE_ASYNC_METHOD(Publish), Published, std::move(done));
}

absl::StatusOr<int64_t> RealtimeCalls::ConnectionsCall(Operation operation,
                                                       const PublishTarget& of,
                                                       const std::vector<std::string>* rooms,
                                                       const std::vector<ConnectionRef>& except) {
  v1::ConnectionSelector selector;
  STATESIDE_CLIENT_RETURN_IF_ERROR(TargetToProto(of, &selector));
  for (const ConnectionRef& ref : except) {
    STATESIDE_CLIENT_RETURN_IF_ERROR(CheckRef("exclude", ref));
    ConnectionRefToProto(ref, selector.add_exclude());
  }
  if (rooms != nullptr) {
    if (rooms->empty()) return absl::InvalidArgumentError("rooms: at least one");
    STATESIDE_CLIENT_RETURN_IF_ERROR(CheckRooms(*rooms));
  }
  // Each operation's own request and response, the same shape.
  const auto call = [&](auto request, auto response, auto rpc) -> absl::StatusOr<int64_t> {
    *request.mutable_connections() = selector;
    if constexpr (requires { request.add_rooms(); }) {
      for (const std::string& room : *rooms) request.add_rooms(room);
    }
    STATESIDE_CLIENT_RETURN_IF_ERROR(Call(Rpc::kPublish, [&](::grpc::ClientContext* context) {
      response.Clear();
      return (stub_.get()->*rpc)(context, request, &response);
    }));
    return response.instances();
  };
  using Stub = v1::RealtimeService::Stub;
  switch (operation) {
    case Operation::kJoin:
      return call(v1::JoinConnectionsRequest(), v1::JoinConnectionsResponse(),
                  &Stub::JoinConnections);
    case Operation::kLeave:
      return call(v1::LeaveConnectionsRequest(), v1::LeaveConnectionsResponse(),
                  &Stub::LeaveConnections);
    case Operation::kDisconnect:
      break;
  }
  return call(v1::DisconnectConnectionsRequest(), v1::DisconnectConnectionsResponse(),
              &Stub::DisconnectConnections);
}

absl::StatusOr<std::unique_ptr<Subscription>> RealtimeCalls::Subscribe(
    const std::vector<ConnectionRegistration>& connections,
    const std::vector<StreamPosition>& resume) {
  v1::SubscribeRequest request;
  for (const ConnectionRegistration& c : connections) {
    STATESIDE_CLIENT_RETURN_IF_ERROR(RegistrationToProto(c, request.add_connections()));
  }
  for (const StreamPosition& position : resume) {
    v1::StreamPosition* out = request.add_resume();
    STATESIDE_CLIENT_RETURN_IF_ERROR(TargetToProto(position.target, out));
    out->set_sequence(position.sequence);
  }
  // One deadline for opening the stream, retries included; the stream
  // itself has none.
  const absl::Time deadline = absl::Now() + options_.call_timeout;
  for (int retries = 0;; ++retries) {
    auto impl = std::make_unique<Subscription::Impl>(channel_, request);
    impl->Start();
    absl::Status status = impl->AwaitSubscribed(deadline);
    if (status.ok()) return std::unique_ptr<Subscription>(new Subscription(std::move(impl)));
    impl.reset();  // cancels the attempt and joins its thread
    if (!ShouldRetry(Rpc::kSubscribe, status.code(), retries, options_.max_retries) ||
        !WaitBeforeRetry(retries + 1, deadline, options_, Jitter())) {
      return status;
    }
  }
}

absl::StatusOr<RoomMembersPage> RealtimeCalls::RoomMembers(std::string_view room,
                                                           int page_size,
                                                           std::string_view page_token) {
  return Blocking<v1::RoomMembersRequest, v1::RoomMembersResponse>(
      Rpc::kRoomMembers, RoomMembersRequest(room, page_size, page_token),
      &v1::RealtimeService::Stub::RoomMembers, MembersPage);
}

void RealtimeCalls::RoomMembersAsync(std::string_view room, int page_size,
                                     std::string_view page_token,
                                     Callback<RoomMembersPage> done) {
  Async<v1::RoomMembersRequest, v1::RoomMembersResponse>(
      Rpc::kRoomMembers, RoomMembersRequest(room, page_size, page_token),
      STATESIDE_ASYNC_METHOD(RoomMembers), MembersPage, std::move(done));
}

absl::StatusOr<std::vector<ConnectionRef>> RealtimeCalls::UserConnections(
    std::string_view user_id) {
  return Blocking<v1::UserConnectionsRequest, v1::UserConnectionsResponse>(
      Rpc::kUserConnections, UserConnectionsRequest(user_id),
      &v1::RealtimeService::Stub::UserConnections, Connections);
}

void RealtimeCalls::UserConnectionsAsync(std::string_view user_id,
                                         Callback<std::vector<ConnectionRef>> done) {
  Async<v1::UserConnectionsRequest, v1::UserConnectionsResponse>(
      Rpc::kUserConnections, UserConnectionsRequest(user_id),
      STATESIDE_ASYNC_METHOD(UserConnections), Connections, std::move(done));
}

#undef STATESIDE_ASYNC_METHOD

absl::StatusOr<RoomHistory> RealtimeCalls::History(std::string_view room,
                                                   uint64_t after_sequence, int limit) {
  STATESIDE_CLIENT_RETURN_IF_ERROR(CheckName("room", room));
  if (limit < 0) return absl::InvalidArgumentError("limit is negative");
  v1::HistoryRequest request;
  request.set_room(std::string(room));
  request.set_after_sequence(after_sequence);
  request.set_limit(limit);
  v1::HistoryResponse response;
  STATESIDE_CLIENT_RETURN_IF_ERROR(
      Call(Rpc::kHistory, [&](::grpc::ClientContext* context) {
        response.Clear();
        return stub_->History(context, request, &response);
      }));
  RoomHistory history;
  history.events.reserve(response.events_size());
  for (const auto& e : response.events()) history.events.push_back(DeliveryFromProto(e));
  history.complete = response.complete();
  history.last_sequence = response.last_sequence();
  history.first_sequence = response.first_sequence();
  history.more = response.more();
  return history;
}

}  // namespace client_internal
}  // namespace stateside
