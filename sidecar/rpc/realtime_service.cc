// RealtimeService handlers: validate, call the hub or the broker, finish
// when it answers (never blocking a gRPC thread).
#include "sidecar/rpc/realtime_service.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "sidecar/rpc/convert.h"
#include "sidecar/rpc/request_once.h"
#include "sidecar/rpc/subscribe_reactor.h"

namespace stateside::rpc {
namespace {

using realtime::ConnRef;
using realtime::Event;
using realtime::TargetKind;

using RegisterCall = UnaryCall<v1::RegisterConnectionRequest, v1::RegisterConnectionResponse>;
using UnregisterCall =
    UnaryCall<v1::UnregisterConnectionRequest, v1::UnregisterConnectionResponse>;
using JoinCall = UnaryCall<v1::JoinRequest, v1::JoinResponse>;
using LeaveCall = UnaryCall<v1::LeaveRequest, v1::LeaveResponse>;
using PublishCall = UnaryCall<v1::PublishRequest, v1::PublishResponse>;
using MembersCall = UnaryCall<v1::RoomMembersRequest, v1::RoomMembersResponse>;
using UserCall = UnaryCall<v1::UserConnectionsRequest, v1::UserConnectionsResponse>;
using HistoryCall = UnaryCall<v1::HistoryRequest, v1::HistoryResponse>;
using JoinAllCall = UnaryCall<v1::JoinConnectionsRequest, v1::JoinConnectionsResponse>;
using LeaveAllCall = UnaryCall<v1::LeaveConnectionsRequest, v1::LeaveConnectionsResponse>;
using DisconnectCall =
    UnaryCall<v1::DisconnectConnectionsRequest, v1::DisconnectConnectionsResponse>;

constexpr size_t kMaxPageTokenBytes = 1024;

absl::Status ValidateConnId(std::string_view conn) {
  return realtime::ValidateName("conn_id", conn, 1, realtime::kMaxConnIdBytes);
}
absl::Status ValidateRoom(std::string_view room) {
  return realtime::ValidateName("room", room, 1, realtime::kMaxNameBytes);
}
absl::Status ValidateUser(std::string_view user) {
  return realtime::ValidateName("user_id", user, 1, realtime::kMaxNameBytes);
}

absl::StatusOr<ConnRef> ToConnRef(const v1::ConnectionRef& ref, const std::string& field) {
  if (!ref.instance_id().empty()) {
    if (absl::Status s = realtime::ValidateName(absl::StrCat(field, ".instance_id"),
                                                ref.instance_id(), 1, 128);
        !s.ok()) {
      return s;
    }
    if (ref.instance_id().find('/') != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(field, ".instance_id: contains '/'"));
    }
  }
  if (absl::Status s = realtime::ValidateName(absl::StrCat(field, ".conn_id"), ref.conn_id(), 1,
                                              realtime::kMaxConnIdBytes);
      !s.ok()) {
    return s;
  }
  return ConnRef{ref.instance_id(), ref.conn_id()};
}

std::vector<std::string> Rooms(const google::protobuf::RepeatedPtrField<std::string>& rooms) {
  return {rooms.begin(), rooms.end()};
}

void ToProto(const ConnRef& ref, v1::ConnectionRef* out) {
  out->set_instance_id(ref.instance);
  out->set_conn_id(ref.conn);
}

// The `target` oneof of PublishRequest, ConnectionSelector and
// StreamPosition (the same fields), into `event`; `prefix` names the
// message's field in errors ("" at the top).
template <typename Message>
absl::Status ToTarget(const Message& request, std::string_view prefix, Event* event) {
  const auto field = [&](std::string_view name) {
    return std::string(prefix) + std::string(name);
  };
  switch (request.target_case()) {
    case Message::kRoom:
      event->target = TargetKind::kRoom;
      event->to = request.room();
      return realtime::ValidateName(field("room"), event->to, 1, realtime::kMaxNameBytes);
    case Message::kUserId:
      event->target = TargetKind::kUser;
      event->to = request.user_id();
      return realtime::ValidateName(field("user_id"), event->to, 1, realtime::kMaxNameBytes);
    case Message::kConnection: {
      absl::StatusOr<ConnRef> ref = ToConnRef(request.connection(), field("connection"));
      if (!ref.ok()) return ref.status();
      event->target = TargetKind::kConnection;
      event->to = ref->conn;
      event->to_instance = ref->instance;
      return absl::OkStatus();
    }
    case Message::kAll:
      if (!request.all()) return absl::InvalidArgumentError(field("all: must be true when set"));
      event->target = TargetKind::kAll;
      return absl::OkStatus();
    default:
      break;
  }
  return absl::InvalidArgumentError(field("target: one of room, user_id, connection, all"));
}

absl::Status ToExcept(const google::protobuf::RepeatedPtrField<v1::ConnectionRef>& refs,
                      const std::string& field, Event* event) {
  if (static_cast<size_t>(refs.size()) > realtime::kMaxExcept) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": at most ", realtime::kMaxExcept, " connections"));
  }
  for (const v1::ConnectionRef& ref : refs) {
    absl::StatusOr<ConnRef> except = ToConnRef(ref, field);
    if (!except.ok()) return except.status();
    event->except.push_back(*std::move(except));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateRooms(const google::protobuf::RepeatedPtrField<std::string>& rooms) {
  if (static_cast<size_t>(rooms.size()) > realtime::kMaxRoomsPerRequest) {
    return absl::InvalidArgumentError(
        absl::StrCat("rooms: at most ", realtime::kMaxRoomsPerRequest, " per request"));
  }
  for (const std::string& room : rooms) {
    if (absl::Status s = realtime::ValidateName("rooms", room, 1, realtime::kMaxNameBytes);
        !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<realtime::ConnPresence> ToConnPresence(
    const v1::RegisterConnectionRequest& request) {
  if (absl::Status s = ValidateConnId(request.conn_id()); !s.ok()) return s;
  if (!request.user_id().empty()) {
    if (absl::Status s = ValidateUser(request.user_id()); !s.ok()) return s;
  }
  if (absl::Status s = ValidateRooms(request.rooms()); !s.ok()) return s;
  return realtime::ConnPresence{request.conn_id(), request.user_id(), Rooms(request.rooms())};
}

absl::StatusOr<std::vector<realtime::RealtimeHub::ResumePoint>> ToResumePoints(
    const google::protobuf::RepeatedPtrField<v1::StreamPosition>& positions,
    const std::string& instance) {
  if (static_cast<size_t>(positions.size()) > realtime::kMaxResumePoints) {
    return absl::InvalidArgumentError(
        absl::StrCat("resume: at most ", realtime::kMaxResumePoints, " per stream"));
  }
  std::vector<realtime::RealtimeHub::ResumePoint> points;
  absl::flat_hash_set<std::string> seen;
  for (const v1::StreamPosition& position : positions) {
    Event target;
    if (absl::Status s = ToTarget(position, "resume.", &target); !s.ok()) return s;
    if (target.target == TargetKind::kConnection && target.to_instance.empty()) {
      target.to_instance = instance;
    }
    realtime::StreamRef stream = realtime::StreamOf(target);
    if (!seen.insert(realtime::StreamKey(stream)).second) {
      return absl::InvalidArgumentError("resume: a stream named twice");
    }
    points.push_back({std::move(stream), position.sequence()});
  }
  return points;
}

void ToProto(const realtime::StreamRef& stream, uint64_t sequence, v1::StreamPosition* out) {
  switch (stream.target) {
    case TargetKind::kRoom:
      out->set_room(stream.to);
      break;
    case TargetKind::kUser:
      out->set_user_id(stream.to);
      break;
    case TargetKind::kConnection:
      ToProto(ConnRef{stream.to_instance, stream.to}, out->mutable_connection());
      break;
    case TargetKind::kAll:
      out->set_all(true);
      break;
  }
  out->set_sequence(sequence);
}

absl::StatusOr<Event> ToEvent(const v1::PublishRequest& request) {
  Event event;
  if (absl::Status s = ToTarget(request, "", &event); !s.ok()) return s;
  if (absl::Status s = realtime::ValidateName("event", request.event(), 0,
                                              realtime::kMaxEventNameBytes);
      !s.ok()) {
    return s;
  }
  if (absl::StartsWith(request.event(), realtime::kReservedEventPrefix)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "event: the prefix ", realtime::kReservedEventPrefix, " is reserved for the sidecar"));
  }
  if (request.payload().size() > realtime::kMaxPayloadBytes) {
    return absl::InvalidArgumentError(absl::StrCat("payload: at most ", realtime::kMaxPayloadBytes,
                                                   " bytes, got ", request.payload().size()));
  }
  if (absl::Status s = ToExcept(request.exclude(), "exclude", &event); !s.ok()) return s;
  event.name = request.event();
  event.payload = request.payload();
  return event;
}

absl::StatusOr<Event> ToControl(const v1::ConnectionSelector& selector,
                                const google::protobuf::RepeatedPtrField<std::string>* rooms,
                                realtime::Control control) {
  Event event;
  event.control = control;
  if (absl::Status s = ToTarget(selector, "connections.", &event); !s.ok()) return s;
  if (absl::Status s = ToExcept(selector.exclude(), "connections.exclude", &event); !s.ok()) {
    return s;
  }
  if (rooms != nullptr) {
    if (rooms->empty()) return absl::InvalidArgumentError("rooms: at least one");
    if (absl::Status s = ValidateRooms(*rooms); !s.ok()) return s;
    event.rooms = Rooms(*rooms);
  }
  return event;
}

void ToProto(const Event& event, const std::vector<std::string>& conn_ids, v1::Delivery* out) {
  out->set_target(static_cast<v1::Target>(event.target));
  out->set_to(event.to);
  out->set_event(event.name);
  out->set_payload(event.payload);
  for (const std::string& conn : conn_ids) out->add_conn_ids(conn);
  out->set_sequence(event.sequence);
  ToProto(event.published_at, out->mutable_published_at());
  out->set_origin_instance(event.origin);
}

grpc::ServerUnaryReactor* RealtimeService::RegisterConnection(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  return RegisterCall::Start(
      context, request, response, Meter("RealtimeService/RegisterConnection"),
      [this](RegisterCall* call) {
        absl::StatusOr<realtime::ConnPresence> conn = ToConnPresence(call->request());
        if (!conn.ok()) return call->Finish(conn.status());
        hub_->Register(*std::move(conn), [call](absl::Status status) { call->Finish(status); });
      });
}

grpc::ServerUnaryReactor* RealtimeService::UnregisterConnection(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  return UnregisterCall::Start(
      context, request, response, Meter("RealtimeService/UnregisterConnection"),
      [this](UnregisterCall* call) {
        if (absl::Status s = ValidateConnId(call->request().conn_id()); !s.ok()) {
          return call->Finish(s);
        }
        hub_->Unregister(call->request().conn_id(), [call](absl::StatusOr<bool> found) {
          call->Finish(std::move(found), [](bool found, v1::UnregisterConnectionResponse* out) {
            out->set_found(found);
          });
        });
      });
}

grpc::ServerUnaryReactor* RealtimeService::Join(grpc::CallbackServerContext* context,
                                                const grpc::ByteBuffer* request,
                                                grpc::ByteBuffer* response) {
  return JoinCall::Start(context, request, response, Meter("RealtimeService/Join"),
                         [this](JoinCall* call) {
                           const v1::JoinRequest& r = call->request();
                           absl::Status s = ValidateConnId(r.conn_id());
                           if (s.ok()) s = ValidateRooms(r.rooms());
                           if (!s.ok()) return call->Finish(s);
                           hub_->Join(r.conn_id(), Rooms(r.rooms()),
                                      [call](absl::Status status) { call->Finish(status); });
                         });
}

grpc::ServerUnaryReactor* RealtimeService::Leave(grpc::CallbackServerContext* context,
                                                 const grpc::ByteBuffer* request,
                                                 grpc::ByteBuffer* response) {
  return LeaveCall::Start(context, request, response, Meter("RealtimeService/Leave"),
                          [this](LeaveCall* call) {
                            const v1::LeaveRequest& r = call->request();
                            absl::Status s = ValidateConnId(r.conn_id());
                            if (s.ok()) s = ValidateRooms(r.rooms());
                            if (!s.ok()) return call->Finish(s);
                            hub_->Leave(r.conn_id(), Rooms(r.rooms()),
                                        [call](absl::Status status) { call->Finish(status); });
                          });
}

grpc::ServerUnaryReactor* RealtimeService::Publish(grpc::CallbackServerContext* context,
                                                   const grpc::ByteBuffer* request,
                                                   grpc::ByteBuffer* response) {
  return PublishCall::Start(
      context, request, response, Meter("RealtimeService/Publish"), [this, context](PublishCall* call) {
        absl::StatusOr<Event> event = ToEvent(call->request());
        if (!event.ok()) return call->Finish(event.status());
        const std::string& sender = call->request().sender_user_id();
        if (!sender.empty()) {
          if (absl::Status s = realtime::ValidateName("sender_user_id", sender, 1,
                                                      realtime::kMaxNameBytes);
              !s.ok()) {
            return call->Finish(s);
          }
        }
        if (absl::Status id = CheckRequestId(requests_, call->request()); !id.ok()) {
          return call->Finish(id);
        }
        // A request_id is scoped by the sender. Its ledger claim waits on the
        // store: offloaded (the call owns the request until it finishes).
        Offload::Task publish = [this, call, event = *std::move(event)](
                                    absl::Status admitted) mutable {
          if (!admitted.ok()) return call->Finish(admitted);
          RunOnce(
              requests_, "RealtimeService/Publish", call->request().sender_user_id(),
              call->request(), call->response(),
              [this, call, event = std::move(event)](
                  absl::AnyInvocable<void(absl::Status) &&> ran) mutable {
                hub_->Publish(std::move(event), call->request().sender_user_id(),
                              [call, ran = std::move(ran)](
                                  absl::StatusOr<realtime::PublishResult> result) mutable {
                                if (!result.ok()) return std::move(ran)(result.status());
                                call->response()->set_sequence(result->sequence);
                                call->response()->set_instances(result->instances);
                                std::move(ran)(absl::OkStatus());
                              });
              },
              [call](absl::Status status) { call->Finish(status); });
        };
        if (offload_ == nullptr || requests_ == nullptr || call->request().request_id().empty()) {
          return std::move(publish)(absl::OkStatus());
        }
        offload_->Run(std::move(publish), CallProbe(context));
      });
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* RealtimeService::Subscribe(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request) {
  return SubscribeReactor::Start(hub_, metrics_, request);
}

grpc::ServerUnaryReactor* RealtimeService::RoomMembers(grpc::CallbackServerContext* context,
                                                       const grpc::ByteBuffer* request,
                                                       grpc::ByteBuffer* response) {
  return MembersCall::Start(
      context, request, response, Meter("RealtimeService/RoomMembers"),
      [this](MembersCall* call) {
        const v1::RoomMembersRequest& r = call->request();
        if (absl::Status s = ValidateRoom(r.room()); !s.ok()) return call->Finish(s);
        if (r.page_token().size() > kMaxPageTokenBytes) {
          return call->Finish(absl::InvalidArgumentError("page_token: not a token of this API"));
        }
        broker_->RoomMembers(
            r.room(), r.page_size(), r.page_token(),
            [call](absl::StatusOr<realtime::MembersPage> page) {
              call->Finish(std::move(page),
                           [](realtime::MembersPage page, v1::RoomMembersResponse* out) {
                             out->set_count(page.count);
                             for (const ConnRef& m : page.members) ToProto(m, out->add_members());
                             out->set_next_page_token(std::move(page.next_page_token));
                           });
            });
      });
}

grpc::ServerUnaryReactor* RealtimeService::UserConnections(grpc::CallbackServerContext* context,
                                                           const grpc::ByteBuffer* request,
                                                           grpc::ByteBuffer* response) {
  return UserCall::Start(
      context, request, response, Meter("RealtimeService/UserConnections"),
      [this](UserCall* call) {
        if (absl::Status s = ValidateUser(call->request().user_id()); !s.ok()) {
          return call->Finish(s);
        }
        broker_->UserConnections(
            call->request().user_id(), [call](absl::StatusOr<std::vector<ConnRef>> conns) {
              call->Finish(std::move(conns),
                           [](std::vector<ConnRef> conns, v1::UserConnectionsResponse* out) {
                             for (const ConnRef& c : conns) ToProto(c, out->add_connections());
                           });
            });
      });
}

grpc::ServerUnaryReactor* RealtimeService::History(grpc::CallbackServerContext* context,
                                                   const grpc::ByteBuffer* request,
                                                   grpc::ByteBuffer* response) {
  return HistoryCall::Start(
      context, request, response, Meter("RealtimeService/History"), [this](HistoryCall* call) {
        const v1::HistoryRequest& r = call->request();
        if (absl::Status s = ValidateRoom(r.room()); !s.ok()) return call->Finish(s);
        broker_->History(
            r.room(), r.after_sequence(), r.limit(),
            [call](absl::StatusOr<realtime::HistoryPage> page) {
              call->Finish(std::move(page), [](realtime::HistoryPage page, v1::HistoryResponse* out) {
                for (const Event& e : page.events) ToProto(e, {}, out->add_events());
                out->set_complete(page.complete);
                out->set_more(page.more);
                out->set_first_sequence(page.first_sequence);
                out->set_last_sequence(page.last_sequence);
              });
            });
      });
}

// The three cluster-wide operations: one control event each, published
// like an event to the selected connections' target.
template <typename Call>
void RealtimeService::PublishControl(Call* call,
                                     const google::protobuf::RepeatedPtrField<std::string>* rooms,
                                     realtime::Control control) {
  absl::StatusOr<Event> event = ToControl(call->request().connections(), rooms, control);
  if (!event.ok()) return call->Finish(event.status());
  hub_->Publish(*std::move(event), [call](absl::StatusOr<realtime::PublishResult> result) {
    call->Finish(std::move(result), [](const realtime::PublishResult& r, auto* out) {
      out->set_instances(r.instances);
    });
  });
}

grpc::ServerUnaryReactor* RealtimeService::JoinConnections(grpc::CallbackServerContext* context,
                                                           const grpc::ByteBuffer* request,
                                                           grpc::ByteBuffer* response) {
  return JoinAllCall::Start(context, request, response, Meter("RealtimeService/JoinConnections"),
                            [this](JoinAllCall* call) {
                              PublishControl(call, &call->request().rooms(),
                                             realtime::Control::kJoin);
                            });
}

grpc::ServerUnaryReactor* RealtimeService::LeaveConnections(grpc::CallbackServerContext* context,
                                                            const grpc::ByteBuffer* request,
                                                            grpc::ByteBuffer* response) {
  return LeaveAllCall::Start(context, request, response,
                             Meter("RealtimeService/LeaveConnections"),
                             [this](LeaveAllCall* call) {
                               PublishControl(call, &call->request().rooms(),
                                              realtime::Control::kLeave);
                             });
}

grpc::ServerUnaryReactor* RealtimeService::DisconnectConnections(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  return DisconnectCall::Start(context, request, response,
                               Meter("RealtimeService/DisconnectConnections"),
                               [this](DisconnectCall* call) {
                                 PublishControl(call, nullptr, realtime::Control::kDisconnect);
                               });
}

}  // namespace stateside::rpc
