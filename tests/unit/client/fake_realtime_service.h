// An in-process gRPC server implementing RealtimeService (and Health,
// SERVING) on a Unix socket, with scripted replies and failures and a
// test-driven Subscribe stream, so the client's request mapping, retries and
// Subscription can be observed.
// Thread-safe: the test thread scripts while gRPC threads serve.
// Linking it also keeps gRPC initialized for the whole test binary (see the
// .cc for why).
#ifndef STATESIDE_TESTS_UNIT_CLIENT_FAKE_REALTIME_SERVICE_H_
#define STATESIDE_TESTS_UNIT_CLIENT_FAKE_REALTIME_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "client/src/realtime_internal.h"
#include "stateside/v1/realtime.pb.h"

namespace stateside::testing {

using client_internal::Rpc;

class FakeRealtimeService {
 public:
  // Listens on `socket_path` (created by gRPC).
  static absl::StatusOr<std::unique_ptr<FakeRealtimeService>> Start(
      const std::string& socket_path);
  // Ends every open stream (as a sidecar shutting down does) and stops.
  ~FakeRealtimeService();

  // The next `n` calls of `rpc` answer `status`; later ones succeed.
  void FailNext(Rpc rpc, int n, grpc::Status status);
  // How many calls of `rpc` arrived (including failed ones).
  int calls(Rpc rpc) const;

  // The last request of each kind.
  v1::RegisterConnectionRequest last_register() const;
  v1::UnregisterConnectionRequest last_unregister() const;
  v1::JoinRequest last_join() const;
  v1::LeaveRequest last_leave() const;
  v1::PublishRequest last_publish() const;
  // The request_id of every Publish attempt, in order of arrival.
  std::vector<std::string> publish_request_ids() const;
  v1::SubscribeRequest last_subscribe() const;
  v1::RoomMembersRequest last_room_members() const;
  v1::UserConnectionsRequest last_user_connections() const;
  v1::HistoryRequest last_history() const;

  // Replies. Unregister answers found = whether RegisterConnection saw the
  // id. Publish answers sequence 12 (room) or 0, instances 2.
  // RoomMembers pages through `members` (at most max_page_size a page; the
  // token is the index of the next member), count = members.size().
  void SetRoomMembers(std::vector<v1::ConnectionRef> members, int max_page_size);
  // Every RoomMembers reply carries this next_page_token (a broken sidecar).
  void SetStuckPageToken(std::string token);
  void SetUserConnections(std::vector<v1::ConnectionRef> connections);
  void SetHistory(v1::HistoryResponse response);

  // --- Subscribe: each stream gets the events pushed while it is open. ---
  // While held, new streams wait before sending `subscribed`.
  void HoldSubscribed(bool hold);
  // New streams send a delivery where `subscribed` belongs.
  void BreakProtocol();
  // Appends an event to every open stream (registered just before it sends
  // `subscribed`, so an event pushed once Subscribe returned reaches it).
  void PushEvent(const v1::RealtimeEvent& event);
  // Open and future streams end with `status` once they have sent what was
  // pushed to them.
  void EndStreams(grpc::Status status);
  // Streams open right now (registered for events).
  int streams() const;
  // Events written to all streams so far (stalls when a client stops reading).
  int written() const;

  // Called by the service implementation.
  grpc::Status Enter(Rpc rpc, grpc::ServerContext* context);
  void Record(const google::protobuf::Message& request);
  bool Unregister(const std::string& conn_id);
  void FillRoomMembers(const v1::RoomMembersRequest& request, v1::RoomMembersResponse* out) const;
  std::vector<v1::ConnectionRef> user_connections() const;
  v1::HistoryResponse history() const;
  grpc::Status ServeSubscribe(grpc::ServerContext* context,
                              grpc::ServerWriter<v1::RealtimeEvent>* writer);

 private:
  struct Services;
  FakeRealtimeService() = default;

  mutable absl::Mutex mu_;
  std::map<Rpc, int> calls_ ABSL_GUARDED_BY(mu_);
  std::map<Rpc, std::pair<int, grpc::Status>> failures_ ABSL_GUARDED_BY(mu_);
  // Last request of each type, by full message name.
  std::map<std::string, std::unique_ptr<google::protobuf::Message>> last_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> registered_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> publish_request_ids_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::ConnectionRef> members_ ABSL_GUARDED_BY(mu_);
  int max_page_size_ ABSL_GUARDED_BY(mu_) = 100;
  std::optional<std::string> stuck_token_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::ConnectionRef> user_connections_ ABSL_GUARDED_BY(mu_);
  v1::HistoryResponse history_ ABSL_GUARDED_BY(mu_);

  bool hold_subscribed_ ABSL_GUARDED_BY(mu_) = false;
  bool break_protocol_ ABSL_GUARDED_BY(mu_) = false;
  std::set<std::deque<v1::RealtimeEvent>*> queues_ ABSL_GUARDED_BY(mu_);
  std::optional<grpc::Status> end_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int written_ ABSL_GUARDED_BY(mu_) = 0;

  std::unique_ptr<Services> services_;
  std::unique_ptr<grpc::Server> server_;
};

// Builders for the events tests push.
v1::RealtimeEvent RoomDelivery(const std::string& room, uint64_t sequence,
                               const std::string& event, const std::string& payload,
                               std::vector<std::string> conn_ids);
v1::RealtimeEvent OverflowGap(uint64_t dropped);
v1::RealtimeEvent RedisGap(int64_t from_seconds, int64_t to_seconds);
v1::ConnectionRef Ref(const std::string& instance, const std::string& conn);

}  // namespace stateside::testing

#endif  // STATESIDE_TESTS_UNIT_CLIENT_FAKE_REALTIME_SERVICE_H_
