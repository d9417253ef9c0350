// The client's RealtimeService calls (what Client's realtime methods delegate
// to), their retry table, and protobuf ⇄ public type conversions.
// Thread-safe: RealtimeCalls is shared by every thread using the Client.
// Only the client's .cc files (and its tests) include this header.
#ifndef STATESIDE_CLIENT_SRC_REALTIME_INTERNAL_H_
#define STATESIDE_CLIENT_SRC_REALTIME_INTERNAL_H_

#include <grpcpp/channel.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "client/src/retry.h"
#include "client/src/rpc_set.h"
#include "client/src/timer.h"
#include "stateside/client.h"
#include "stateside/realtime.h"
#include "stateside/v1/realtime.grpc.pb.h"

namespace stateside::client_internal {

void ConnectionRefToProto(const ConnectionRef& ref, v1::ConnectionRef* out);
ConnectionRef ConnectionRefFromProto(const v1::ConnectionRef& ref);
Target TargetFromProto(v1::Target target);
Delivery DeliveryFromProto(const v1::Delivery& d);
Gap GapFromProto(const v1::Gap& g);
// nullopt for `subscribed` and for kinds this client does not know.
std::optional<RealtimeEvent> EventFromProto(const v1::RealtimeEvent& e);

class RealtimeCalls {
 public:
  // REQUIRES: options validated (Client::Connect does it); `timer` (the
  // waits between retries of the Async forms) outlives this.
  RealtimeCalls(std::shared_ptr<::grpc::Channel> channel, const ClientOptions& options,
                Timer* timer);
  ~RealtimeCalls();  // Shutdown()
  RealtimeCalls(const RealtimeCalls&) = delete;
  RealtimeCalls& operator=(const RealtimeCalls&) = delete;

  absl::Status RegisterConnection(std::string_view conn_id, std::string_view user_id,
                                  const std::vector<std::string>& rooms);
  absl::StatusOr<bool> UnregisterConnection(std::string_view conn_id);
  absl::Status Join(std::string_view conn_id, const std::vector<std::string>& rooms);
  absl::Status Leave(std::string_view conn_id, const std::vector<std::string>& rooms);
  absl::StatusOr<PublishResult> Publish(const PublishTarget& target,
                                        std::string_view event, std::string_view payload,
                                        const std::vector<ConnectionRef>& except,
                                        std::string_view sender_user_id,
                                        std::string_view request_id);
  // JoinConnections, LeaveConnections (`rooms` set), DisconnectConnections.
  enum class Operation { kJoin, kLeave, kDisconnect };
  absl::StatusOr<int64_t> ConnectionsCall(Operation operation, const PublishTarget& of,
                                          const std::vector<std::string>* rooms,
                                          const std::vector<ConnectionRef>& except);
  absl::StatusOr<std::unique_ptr<Subscription>> Subscribe(
      const std::vector<ConnectionRegistration>& connections,
      const std::vector<StreamPosition>& resume);
  absl::StatusOr<RoomMembersPage> RoomMembers(std::string_view room, int page_size,
                                              std::string_view page_token);
  absl::StatusOr<std::vector<ConnectionRef>> UserConnections(std::string_view user_id);
  absl::StatusOr<RoomHistory> History(std::string_view room, uint64_t after_sequence,
                                      int limit);

  // The Async forms (contract in client.h): the blocking call's request,
  // retries and deadline, with the attempts on gRPC's callback API and the
  // waits between them on the timer.
  void RegisterConnectionAsync(std::string_view conn_id, std::string_view user_id,
                               const std::vector<std::string>& rooms, StatusCallback done);
  void UnregisterConnectionAsync(std::string_view conn_id, Callback<bool> done);
  void JoinAsync(std::string_view conn_id, const std::vector<std::string>& rooms,
                 StatusCallback done);
  void LeaveAsync(std::string_view conn_id, const std::vector<std::string>& rooms,
                  StatusCallback done);
  void PublishAsync(const PublishTarget& target, std::string_view event,
                    std::string_view payload, const std::vector<ConnectionRef>& except,
                    std::string_view sender_user_id, Callback<PublishResult> done);
  void RoomMembersAsync(std::string_view room, int page_size, std::string_view page_token,
                        Callback<RoomMembersPage> done);
  void UserConnectionsAsync(std::string_view user_id,
                            Callback<std::vector<ConnectionRef>> done);
  // Ends the Async calls in flight with CANCELLED (their `done` has run when
  // it returns); later ones are refused the same way. A call waiting for its
  // retry is answered when the timer runs or stops, also CANCELLED: call this
  // before the timer stops, so the retries it then runs are refused.
  // Idempotent.
  void Shutdown();

 private:
  template <typename Request, typename Response, typename Method, typename Parse>
  auto Blocking(Rpc rpc, absl::StatusOr<Request> request, Method method, Parse parse)
      -> absl::StatusOr<decltype(parse(Response()))>;
  template <typename Request, typename T>
  struct AsyncCall;
  template <typename Request, typename Response, typename T, typename Method, typename Parse>
  void Async(Rpc rpc, absl::StatusOr<Request> request, Method method, Parse parse,
             Callback<T> done);
  template <typename Response, typename Pending, typename Method, typename Parse>
  void StartAttempt(std::shared_ptr<Pending> call, Method method, Parse parse);

  // CallWithRetries (retrying_call.h) with this object's jitter.
  template <typename Attempt>
  absl::Status Call(Rpc rpc, const Attempt& attempt);
  double Jitter();

  // Constant after construction. Channels and stubs are thread-safe.
  const ClientOptions options_;
  const std::shared_ptr<::grpc::Channel> channel_;
  const std::unique_ptr<v1::RealtimeService::Stub> stub_;
  Timer* const timer_;
  RpcSet calls_;  // the Async forms' attempts

  absl::Mutex rng_mu_;
  absl::BitGen rng_ ABSL_GUARDED_BY(rng_mu_);
};

}  // namespace stateside::client_internal

#endif  // STATESIDE_CLIENT_SRC_REALTIME_INTERNAL_H_
