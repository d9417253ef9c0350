// The realtime client tests' fixture: a fake RealtimeService on a socket in
// a temp dir and a Client for it (fast backoff), plus event helpers.
#ifndef STATESIDE_TESTS_UNIT_CLIENT_REALTIME_FIXTURE_H_
#define STATESIDE_TESTS_UNIT_CLIENT_REALTIME_FIXTURE_H_

#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "gtest/gtest.h"
#include "stateside/client.h"
#include "stateside/realtime.h"
#include "tests/unit/client/fake_realtime_service.h"
#include "tests/unit/client/fake_sidecar_fixture.h"

namespace stateside::testing {

inline constexpr absl::Duration kLong = absl::Seconds(10);

class RealtimeClientTest : public FakeSidecarTest<FakeRealtimeService> {
 protected:
  ClientOptions Options() const {
    ClientOptions o = FastRetryOptions();
    o.call_timeout = absl::Seconds(5);
    return o;
  }

  std::unique_ptr<Client> Connected(const ClientOptions& o) { return Connect(o); }
  std::unique_ptr<Client> Connected() { return Connect(Options()); }

  std::unique_ptr<Subscription> Subscribed(Client& c,
                                           std::vector<ConnectionRegistration> conns = {}) {
    auto sub = c.Subscribe(conns);
    EXPECT_TRUE(sub.ok()) << sub.status();
    return sub.ok() ? std::move(*sub) : nullptr;
  }

  // Calls the client method behind `rpc`; returns its status.
  static absl::Status Invoke(Client& c, Rpc rpc) {
    switch (rpc) {
      case Rpc::kRegisterConnection: return c.RegisterConnection("c1", "alice");
      case Rpc::kUnregisterConnection: return c.UnregisterConnection("c1").status();
      case Rpc::kJoin: return c.Join("c1", {"lobby"});
      case Rpc::kLeave: return c.Leave("c1", {"lobby"});
      case Rpc::kPublish:
        return c.Publish(PublishTarget::Room("lobby"), "chat", "hi").status();
      case Rpc::kSubscribe: return c.Subscribe().status();
      case Rpc::kRoomMembers: return c.RoomMembers("lobby").status();
      case Rpc::kUserConnections: return c.UserConnections("alice").status();
      case Rpc::kHistory: return c.History("lobby").status();
      default:  // the other services: client_test
        break;
    }
    return absl::InternalError("not a call of this test");
  }
};

inline Delivery ExpectDelivery(const absl::StatusOr<RealtimeEvent>& event) {
  EXPECT_TRUE(event.ok()) << event.status();
  if (!event.ok() || !std::holds_alternative<Delivery>(*event)) {
    ADD_FAILURE() << "not a delivery";
    return {};
  }
  return std::get<Delivery>(*event);
}

inline Gap ExpectGap(const absl::StatusOr<RealtimeEvent>& event) {
  EXPECT_TRUE(event.ok()) << event.status();
  if (!event.ok() || !std::holds_alternative<Gap>(*event)) {
    ADD_FAILURE() << "not a gap";
    return {};
  }
  return std::get<Gap>(*event);
}

}  // namespace stateside::testing

#endif  // STATESIDE_TESTS_UNIT_CLIENT_REALTIME_FIXTURE_H_
