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
#include "tests/support/temp_dir.h"
#include "tests/unit/client/fake_realtime_service.h"

namespace stateside::testing {

inline constexpr absl::Duration kLong = absl::Seconds(10);

class RealtimeClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto fake = FakeRealtimeService::Start(socket_);
    ASSERT_TRUE(fake.ok()) << fake.status();
    fake_ = std::move(*fake);
  }

  // Fast backoff so retry tests take milliseconds.
  ClientOptions Options() const {
    ClientOptions o;
    o.socket_path = socket_;
    o.initial_backoff = absl::Milliseconds(1);
    o.max_backoff = absl::Milliseconds(4);
    o.call_timeout = absl::Seconds(5);
    return o;
  }

  std::unique_ptr<Client> Connected(ClientOptions o) {
    auto client = Client::Connect(o);
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? std::move(*client) : nullptr;
  }
  std::unique_ptr<Client> Connected() { return Connected(Options()); }

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

  TempDir dir_;
  const std::string socket_ = dir_.File("s.sock");
  std::unique_ptr<FakeRealtimeService> fake_;
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
