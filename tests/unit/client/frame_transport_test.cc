// The client's frame-socket transport (client/src/frame_transport.h) against
// a scripted frame server on a Unix socket in a temp dir: which calls take
// the socket and which the fallback, answers matched by id out of order,
// per-call deadlines, a connection that ends, the in-flight bound.
#include "client/src/frame_transport.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <future>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "proto/frames.h"
#include "tests/support/temp_dir.h"

namespace stateside::client_internal {
namespace {

// Answers every call at once with FAILED_PRECONDITION "fallback", counting.
class FakeFallback : public CallTransport {
 public:
  void Start(v1::PipeCall call, absl::Time, OutcomeCallback done) override {
    {
      absl::MutexLock lock(&mu_);
      ops_.push_back(call.op_case());
    }
    done(Outcome{absl::FailedPreconditionError("fallback"), {}});
  }
  void Shutdown() override {}
  std::vector<v1::PipeCall::OpCase> ops() {
    absl::MutexLock lock(&mu_);
    return ops_;
  }

 private:
  absl::Mutex mu_;
  std::vector<v1::PipeCall::OpCase> ops_;
};

// One listening socket; each accepted connection is handed to `serve` on a
// thread of its own.
class FrameServer {
 public:
  using Serve = std::function<void(int fd)>;
  FrameServer(const std::string& path, Serve serve) : serve_(std::move(serve)) {
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.data(), path.size());
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(listen(fd_, 8), 0);
    thread_ = std::thread([this] {
      for (;;) {
        const int c = accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        conns_.emplace_back([this, c] {
          serve_(c);
          close(c);
        });
      }
    });
  }
  ~FrameServer() {
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    thread_.join();
    for (auto& t : conns_) t.join();
  }

 private:
  Serve serve_;
  int fd_;
  std::thread thread_;
  std::vector<std::thread> conns_;
};

bool ReadExactly(int fd, size_t n, std::string* out) {
  out->resize(n);
  size_t got = 0;
  while (got < n) {
    const ssize_t r = recv(fd, out->data() + got, n - got, 0);
    if (r <= 0) return false;
    got += static_cast<size_t>(r);
  }
  return true;
}

// The next request frame; false on EOF.
bool ReadRequest(int fd, v1::PipeRequest* request) {
  std::string header;
  if (!ReadExactly(fd, rpc::kFrameHeaderBytes, &header)) return false;
  const auto* b = reinterpret_cast<const unsigned char*>(header.data());
  const size_t length = b[0] | (b[1] << 8) | (b[2] << 16) | (static_cast<size_t>(b[3]) << 24);
  std::string payload;
  return ReadExactly(fd, length, &payload) && request->ParseFromString(payload);
}

void WriteResponse(int fd, const v1::PipeResponse& response) {
  std::string frame;
  rpc::AppendFrameHeader(&frame, static_cast<uint32_t>(response.ByteSizeLong()));
  response.AppendToString(&frame);
  ASSERT_EQ(send(fd, frame.data(), frame.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(frame.size()));
}

v1::PipeCall Get(const std::string& id) {
  v1::PipeCall call;
  call.mutable_get()->mutable_key()->set_id(id);
  return call;
}

class FrameTransportTest : public ::testing::Test {
 protected:
  std::string Path() const { return dir_.File("api.sock.frames"); }

  // Starts `call` and returns its outcome's future.
  std::future<Outcome> Run(FrameTransport& transport, v1::PipeCall call,
                           absl::Duration timeout = absl::Seconds(5)) {
    auto promise = std::make_shared<std::promise<Outcome>>();
    std::future<Outcome> future = promise->get_future();
    transport.Start(std::move(call), absl::Now() + timeout,
                    [promise](Outcome o) { promise->set_value(std::move(o)); });
    return future;
  }

  testing::TempDir dir_;
  Timer timer_;
  FakeFallback fallback_;
};

TEST_F(FrameTransportTest, WithoutTheSocketGetGoesToTheFallback) {
  FrameTransport transport(Path(), 16, &fallback_, &timer_);
  EXPECT_EQ(Run(transport, Get("a")).get().status.message(), "fallback");
  EXPECT_EQ(fallback_.ops(), std::vector<v1::PipeCall::OpCase>{v1::PipeCall::kGet});
}

TEST_F(FrameTransportTest, GetAndUpdateTakeTheSocketAndAnswersMatchByIdOutOfOrder) {
  FrameServer server(Path(), [](int fd) {
    // Two calls, answered in reverse order in one frame.
    v1::PipeRequest first;
    v1::PipeRequest second;
    if (!ReadRequest(fd, &first) || !ReadRequest(fd, &second)) return;
    ASSERT_EQ(first.calls_size(), 1);
    ASSERT_EQ(second.calls_size(), 1);
    EXPECT_TRUE(first.calls(0).has_timeout());  // the time the call has left
    v1::PipeResponse response;
    v1::PipeResult* r2 = response.add_results();
    r2->set_id(second.calls(0).id());
    r2->mutable_update()->mutable_metadata()->set_version(9);
    v1::PipeResult* r1 = response.add_results();
    r1->set_id(first.calls(0).id());
    r1->set_code(5);
    r1->set_message("session not found");
    WriteResponse(fd, response);
  });
  FrameTransport transport(Path(), 16, &fallback_, &timer_);
  std::future<Outcome> get = Run(transport, Get("a"));
  v1::PipeCall update;
  update.mutable_update()->mutable_key()->set_id("b");
  std::future<Outcome> updated = Run(transport, update);
  v1::PipeCall touch;
  touch.mutable_touch()->mutable_key()->set_id("c");
  EXPECT_EQ(Run(transport, touch).get().status.message(), "fallback");

  const Outcome g = get.get();
  EXPECT_EQ(g.status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(g.status.message(), "session not found");
  const Outcome u = updated.get();
  ASSERT_TRUE(u.status.ok()) << u.status;
  EXPECT_EQ(u.result.update().metadata().version(), 9u);
  EXPECT_EQ(fallback_.ops(), std::vector<v1::PipeCall::OpCase>{v1::PipeCall::kTouch});
}

TEST_F(FrameTransportTest, AnUnansweredCallEndsAtItsDeadline) {
  absl::Notification release;
  FrameServer server(Path(), [&release](int fd) {
    v1::PipeRequest request;
    ReadRequest(fd, &request);
    release.WaitForNotification();  // never answers
  });
  FrameTransport transport(Path(), 16, &fallback_, &timer_);
  const absl::Time start = absl::Now();
  const Outcome o = Run(transport, Get("a"), absl::Milliseconds(200)).get();
  EXPECT_EQ(o.status.code(), absl::StatusCode::kDeadlineExceeded) << o.status;
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(190));
  release.Notify();
  transport.Shutdown();
}

TEST_F(FrameTransportTest, AConnectionThatEndsFailsItsCallsUnavailableThenGrpcCarriesThem) {
  FrameServer server(Path(), [](int fd) {
    v1::PipeRequest request;
    ReadRequest(fd, &request);  // then closes without answering
  });
  FrameTransport transport(Path(), 16, &fallback_, &timer_);
  const Outcome o = Run(transport, Get("a")).get();
  EXPECT_EQ(o.status.code(), absl::StatusCode::kUnavailable) << o.status;
  // Closed before any answer: the next call takes the fallback, at once.
  EXPECT_EQ(Run(transport, Get("b")).get().status.message(), "fallback");
}

TEST_F(FrameTransportTest, CallsThatExpireWhileThePeerDoesNotReadAreNeverSent) {
  absl::Notification read;
  absl::Mutex mu;
  std::vector<std::string> sessions;  // the Updates' keys, in the order read
  FrameServer server(Path(), [&](int fd) {
    read.WaitForNotification();  // reads nothing until then
    v1::PipeRequest request;
    while (ReadRequest(fd, &request)) {
      absl::MutexLock lock(&mu);
      for (const v1::PipeCall& call : request.calls()) {
        sessions.push_back(call.has_update() ? call.update().key().id() : call.get().key().id());
      }
      if (sessions.back() == "last") {
        v1::PipeResponse response;
        response.add_results()->set_id(request.calls(0).id());
        WriteResponse(fd, response);
        return;
      }
    }
  });
  FrameTransport transport(Path(), 512, &fallback_, &timer_);
  // 200 Updates of 100 KiB (20 MB): far more than the socket buffers hold.
  std::vector<std::future<Outcome>> stale;
  for (int i = 0; i < 200; ++i) {
    v1::PipeCall update;
    update.mutable_update()->mutable_key()->set_id(absl::StrCat("s", i));
    (*update.mutable_update()->mutable_set())["v"] = std::string(100 << 10, 'x');
    stale.push_back(Run(transport, update, absl::Milliseconds(200)));
  }
  for (auto& f : stale) {
    EXPECT_EQ(f.get().status.code(), absl::StatusCode::kDeadlineExceeded);
  }
  read.Notify();
  const Outcome last = Run(transport, Get("last")).get();
  EXPECT_TRUE(last.status.ok()) << last.status;
  absl::MutexLock lock(&mu);
  ASSERT_FALSE(sessions.empty());
  EXPECT_EQ(sessions.back(), "last");
  // What the socket buffers and one chunk held went out before the calls
  // expired; none of the rest, however long the peer stalled.
  EXPECT_LT(sessions.size(), 40u);
}

TEST_F(FrameTransportTest, MoreCallsThanTheBoundFailResourceExhausted) {
  absl::Notification release;
  FrameServer server(Path(), [&release](int fd) {
    v1::PipeRequest request;
    while (ReadRequest(fd, &request)) {
    }
    release.WaitForNotification();
  });
  FrameTransport transport(Path(), 2, &fallback_, &timer_);
  std::future<Outcome> a = Run(transport, Get("a"));
  std::future<Outcome> b = Run(transport, Get("b"));
  EXPECT_EQ(Run(transport, Get("c")).get().status.code(), absl::StatusCode::kResourceExhausted);
  transport.Shutdown();
  EXPECT_EQ(a.get().status.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(b.get().status.code(), absl::StatusCode::kCancelled);
  // After Shutdown: CANCELLED, never the fallback.
  EXPECT_EQ(Run(transport, Get("d")).get().status.code(), absl::StatusCode::kCancelled);
  release.Notify();
}

}  // namespace
}  // namespace stateside::client_internal
