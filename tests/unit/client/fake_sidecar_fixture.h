// The client tests' fixture: an in-process fake of the sidecar (FakeSidecar,
// FakePipeSidecar or FakeRealtimeService) on a socket in a temp dir, and
// Clients connected to it. Used from the test thread only.
#ifndef STATESIDE_TESTS_UNIT_CLIENT_FAKE_SIDECAR_FIXTURE_H_
#define STATESIDE_TESTS_UNIT_CLIENT_FAKE_SIDECAR_FIXTURE_H_

#include <memory>
#include <string>
#include <utility>

#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "stateside/client.h"
#include "tests/support/temp_dir.h"

namespace stateside::testing {

// `Fake` has `static absl::StatusOr<std::unique_ptr<Fake>> Start(socket)`.
template <typename Fake>
class FakeSidecarTest : public ::testing::Test {
 protected:
  void SetUp() override { StartFake(); }

  // Starts the fake on socket_ (again, after a test reset fake_).
  void StartFake() {
    auto fake = Fake::Start(socket_);
    ASSERT_TRUE(fake.ok()) << fake.status();
    fake_ = std::move(*fake);
  }

  // The fake's socket and a fast backoff (1 ms, at most 4 ms), so that
  // retry tests take milliseconds.
  ClientOptions FastRetryOptions() const {
    ClientOptions o;
    o.socket_path = socket_;
    o.initial_backoff = absl::Milliseconds(1);
    o.max_backoff = absl::Milliseconds(4);
    return o;
  }

  // A client connected with `options`; null (and a failed expectation)
  // when Connect fails.
  static std::unique_ptr<Client> Connect(const ClientOptions& options) {
    auto client = Client::Connect(options);
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? std::move(*client) : nullptr;
  }

  TempDir dir_;
  const std::string socket_ = dir_.File("s.sock");
  std::unique_ptr<Fake> fake_;
};

}  // namespace stateside::testing

#endif  // STATESIDE_TESTS_UNIT_CLIENT_FAKE_SIDECAR_FIXTURE_H_
