// The frame server on the Redis client's own io_context (frame_server.h:
// how the sidecar serves the frame socket with a Redis session store), in
// process on a real redis-server: a frame's calls start on the client's I/O
// thread, the calls of one frame go to Redis in one write per Redis
// connection, a read of many frames that answer at once lets other work on
// the loop run between its turns, and a Shutdown with calls in flight
// answers them (or, past its deadline, closes and waits for the store to
// end them) before the client may go.
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "sidecar/common/clock.h"
#include "sidecar/common/random.h"
#include "sidecar/crypto/cookie.h"
#include "sidecar/crypto/envelope.h"
#include "sidecar/crypto/keyring.h"
#include "sidecar/crypto/random.h"
#include "sidecar/redis/redis_client.h"
#include "sidecar/redis/redis_session_store.h"
#include "sidecar/rpc/operations.h"
#include "sidecar/server/frame_server.h"
#include "sidecar/server/unix_socket.h"
#include "sidecar/session/session_manager.h"
#include "tests/integration/sidecar/frame_connection.h"
#include "tests/support/redis_server.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"

namespace stateside {
namespace {

using redis::RedisClient;
using testing::FrameConnection;
using testing::GetCall;

// The wall clock, noting which thread reads it: the session manager reads
// it when it starts a Get or an Update, so the counts show where the frame
// server started its calls.
class ThreadNotingClock final : public Clock {
 public:
  absl::Time Now() const override {
    if (const RedisClient* client = watched_.load(); client != nullptr) {
      (client->OnIoThread() ? on_io_thread_ : elsewhere_).fetch_add(1);
    }
    return absl::Now();
  }
  void Watch(const RedisClient* client) { watched_.store(client); }
  int on_io_thread() const { return on_io_thread_.load(); }
  int elsewhere() const { return elsewhere_.load(); }

 private:
  std::atomic<const RedisClient*> watched_{nullptr};
  mutable std::atomic<int> on_io_thread_{0};
  mutable std::atomic<int> elsewhere_{0};
};

v1::PipeCall UpdateCall(uint64_t id, const std::string& session, const std::string& value) {
  v1::PipeCall call;
  call.set_id(id);
  call.mutable_update()->mutable_key()->set_id(session);
  (*call.mutable_update()->mutable_set())["v"] = value;
  return call;
}

class FramesLoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = testing::RedisServer::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    redis_ = *std::move(server);
    redis::RedisOptions options;
    options.command_timeout = absl::Seconds(2);
    auto client = RedisClient::FromUrl(redis_->url(), options);
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = *std::move(client);
    ASSERT_TRUE(client_->WaitConnected(absl::Seconds(10)));
    store_ = std::make_unique<redis::RedisSessionStore>(client_.get(), "loop:");

    random_ = crypto::NewSecureRandom();
    absl::StatusOr<std::string> key = RandomBytes(*random_, 32);
    ASSERT_TRUE(key.ok());
    auto keyring = crypto::Keyring::Create({{"k1", *key}});
    ASSERT_TRUE(keyring.ok()) << keyring.status();
    keyring_ = *std::move(keyring);
    sealer_ = std::make_unique<crypto::Sealer>(keyring_.get(), random_.get());
    auto signer = crypto::CookieSigner::Create({std::string(32, 's')});
    ASSERT_TRUE(signer.ok()) << signer.status();
    signer_ = *std::move(signer);
    session::SessionPolicy policy;
    policy.idle_ttl = absl::Minutes(30);
    policy.absolute_ttl = absl::Hours(8);
    sessions_ = std::make_unique<session::SessionManager>(store_.get(), sealer_.get(),
                                                          signer_.get(), random_.get(), &clock_,
                                                          policy);
    ops_ = std::make_unique<rpc::Operations>(sessions_.get(), nullptr);

    path_ = dir_.File("api.sock.frames");
    ASSERT_TRUE(PrepareSocketPath(path_).ok());
    auto frames = FrameServer::Start(path_, {}, ops_.get(), nullptr, 1 << 20,
                                     &client_->io_context());
    ASSERT_TRUE(frames.ok()) << frames.status();
    frames_ = *std::move(frames);
  }

  void TearDown() override {
    // As the sidecar stops: the frame server before the client it runs on.
    if (redis_ != nullptr) redis_->Resume();
    frames_.reset();
    ops_.reset();
    sessions_.reset();
    store_.reset();
    client_.reset();
  }

  std::string CreateSession(const std::string& value) {
    session::CreateParams params;
    params.user_id = "loop-user";
    params.attributes = {{"v", value}};
    absl::StatusOr<session::Session> created = sessions_->Create(params);
    EXPECT_TRUE(created.ok()) << created.status();
    return created.ok() ? created->info.id : "";
  }

  // A session holding `value` (*session: its id) and a connection to the
  // frame socket.
  void SessionAndConnection(const std::string& value, std::string* session,
                            std::optional<FrameConnection>* connection) {
    *session = CreateSession(value);
    ASSERT_FALSE(session->empty());
    std::optional<FrameConnection> connected = FrameConnection::Connect(path_);
    ASSERT_TRUE(connected.has_value());
    connection->emplace(std::move(*connected));
  }

  // A session holding `value`, then Redis paused and a frame of 8 Gets of
  // it on `connection`, written to Redis and waiting for their replies.
  void CallsWaitingOnAPausedRedis(const std::string& value,
                                  std::optional<FrameConnection>* connection) {
    std::string session;
    ASSERT_NO_FATAL_FAILURE(SessionAndConnection(value, &session, connection));
    redis_->Pause();
    const uint64_t written = client_->stats().commands_written;
    v1::PipeRequest request;
    for (uint64_t id = 1; id <= 8; ++id) *request.add_calls() = GetCall(id, session);
    ASSERT_TRUE((*connection)->Send(request));
    ASSERT_TRUE(
        testing::WaitFor([&] { return client_->stats().commands_written >= written + 8; }));
  }

  testing::TempDir dir_;
  std::unique_ptr<testing::RedisServer> redis_;
  std::unique_ptr<RedisClient> client_;
  std::unique_ptr<redis::RedisSessionStore> store_;
  ThreadNotingClock clock_;
  std::unique_ptr<RandomSource> random_;
  std::unique_ptr<crypto::Keyring> keyring_;
  std::unique_ptr<crypto::Sealer> sealer_;
  std::unique_ptr<crypto::CookieSigner> signer_;
  std::unique_ptr<session::SessionManager> sessions_;
  std::unique_ptr<rpc::Operations> ops_;
  std::string path_;
  std::unique_ptr<FrameServer> frames_;
};

TEST_F(FramesLoopTest, GetAndUpdateStartOnTheRedisClientsIoThread) {
  std::string session;
  std::optional<FrameConnection> connection;
  ASSERT_NO_FATAL_FAILURE(SessionAndConnection("one", &session, &connection));

  clock_.Watch(client_.get());
  // The Update in a frame of its own: the calls of one frame are not
  // ordered, so a Get beside it might see either value.
  v1::PipeRequest request;
  *request.add_calls() = GetCall(1, session);
  ASSERT_TRUE(connection->Send(request));
  std::map<uint64_t, v1::PipeResult> results = connection->ReadResults(1);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[1].code(), 0) << results[1].message();
  EXPECT_EQ(results[1].get().session().attributes().at("v"), "one");
  request.Clear();
  *request.add_calls() = UpdateCall(2, session, "two");
  ASSERT_TRUE(connection->Send(request));
  results = connection->ReadResults(1);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[2].code(), 0) << results[2].message();
  const uint64_t updated_version = results[2].update().metadata().version();
  EXPECT_GT(updated_version, 1u);

  request.Clear();
  *request.add_calls() = GetCall(3, session);
  ASSERT_TRUE(connection->Send(request));
  results = connection->ReadResults(1);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[3].get().session().attributes().at("v"), "two");
  EXPECT_EQ(results[3].get().session().metadata().version(), updated_version);

  EXPECT_GT(clock_.on_io_thread(), 0);
  EXPECT_EQ(clock_.elsewhere(), 0) << "a frame's call started off the Redis I/O thread";
}

TEST_F(FramesLoopTest, TheCallsOfOneFrameGoToRedisInOneWrite) {
  std::string session;
  std::optional<FrameConnection> connection;
  ASSERT_NO_FATAL_FAILURE(SessionAndConnection("x", &session, &connection));
  constexpr uint64_t kCalls = 64;
  v1::PipeRequest request;
  for (uint64_t id = 1; id <= kCalls; ++id) *request.add_calls() = GetCall(id, session);

  const redis::RedisClientStats before = client_->stats();
  ASSERT_TRUE(connection->Send(request));
  std::map<uint64_t, v1::PipeResult> results = connection->ReadResults(kCalls);
  ASSERT_EQ(results.size(), kCalls);
  for (const auto& [id, result] : results) EXPECT_EQ(result.code(), 0) << id;
  const redis::RedisClientStats after = client_->stats();
  EXPECT_GE(after.commands_written - before.commands_written, kCalls);
  // The frame's commands are spread over the client's connections
  // (round-robin), each written in one go: one write per connection, and an
  // idle PING may add one.
  const auto connections = static_cast<uint64_t>(client_->options().connections);
  EXPECT_LE(after.batches_written - before.batches_written, connections + 1);
  EXPECT_LT(connections + 1, kCalls) << "the bound must tell one write per call apart";
}

TEST_F(FramesLoopTest, FramesThatAnswerAtOnceLetOtherWorkOnTheLoopRunBetweenTurns) {
  auto connection = FrameConnection::Connect(path_);
  ASSERT_TRUE(connection.has_value());
  // A frame of kCalls calls that do not parse: each is refused at once, so
  // its room in the budget of unanswered calls comes back at once and only
  // the turn's budget bounds what one read handler does.
  constexpr size_t kCalls = FrameServer::kMaxCallsPerFrame;
  constexpr size_t kFrames = 4;
  std::string calls;
  for (size_t i = 0; i < kCalls; ++i) calls += std::string("\x0a\x01\xff", 3);
  std::string frame;
  rpc::AppendFrameHeader(&frame, static_cast<uint32_t>(calls.size()));
  frame += calls;
  // One frame first, answered: the connection is adopted and its next read
  // is waiting on the loop.
  ASSERT_TRUE(connection->SendRaw(frame));
  size_t answered = 0;
  while (answered < kCalls) {
    std::optional<v1::PipeResponse> response = connection->Read();
    ASSERT_TRUE(response.has_value());
    answered += static_cast<size_t>(response->results_size());
  }

  // The loop is held while the frames are written, so that one read gets
  // them all (they fit in the connection's idle read buffer): without the
  // turn's budget a single handler would answer every call before anything
  // else ran on the loop. The marker is posted at the end of the first
  // turn; the calls handled before it runs are recorded (all on the loop).
  size_t handled = 0;
  std::optional<size_t> handled_when_marker_ran;
  absl::Notification observing;
  absl::Notification written;
  boost::asio::post(client_->io_context(), [&] {
    frames_->ObserveTurnsForTest([&](size_t turn_calls) {
      const bool first = handled == 0 && turn_calls > 0;
      handled += turn_calls;
      if (first) {
        boost::asio::post(client_->io_context(), [&] { handled_when_marker_ran = handled; });
      }
    });
    observing.Notify();
    written.WaitForNotification();
  });
  observing.WaitForNotification();
  std::string frames;
  for (size_t i = 0; i < kFrames; ++i) frames += frame;
  ASSERT_LT(frames.size(), 16384u) << "the frames must fit in one read";
  ASSERT_TRUE(connection->SendRaw(frames));
  written.Notify();

  answered = 0;
  while (answered < kFrames * kCalls) {
    std::optional<v1::PipeResponse> response = connection->Read();
    ASSERT_TRUE(response.has_value()) << answered << " answered";
    for (const v1::PipeResult& result : response->results()) {
      EXPECT_EQ(result.code(), 3) << "INVALID_ARGUMENT";
    }
    answered += static_cast<size_t>(response->results_size());
  }
  // Every call is answered, so every turn has ended; the marker, posted
  // after the first, ran between turns. Read on the loop, where they were
  // written.
  std::optional<size_t> marker;
  size_t total = 0;
  absl::Notification read;
  boost::asio::post(client_->io_context(), [&] {
    marker = handled_when_marker_ran;
    total = handled;
    frames_->ObserveTurnsForTest(nullptr);
    read.Notify();
  });
  read.WaitForNotification();
  EXPECT_EQ(total, kFrames * kCalls);
  ASSERT_TRUE(marker.has_value());
  // The first turn handled one frame (more calls than kTurnCalls), then
  // let the marker run before the next.
  EXPECT_EQ(*marker, kCalls) << "the first turn handled " << *marker << " calls of "
                             << kFrames * kCalls << " read at once";
}

TEST_F(FramesLoopTest, AFrameClientThatNeverReadsStallsNeitherRedisNorOtherConnections) {
  const std::string large = CreateSession(std::string(60 * 1024, 'x'));
  const std::string small = CreateSession("small");
  ASSERT_FALSE(large.empty());
  ASSERT_FALSE(small.empty());

  // A client that writes Gets of the large session and never reads: its
  // socket fills, the server's answers for it pile up to the backpressure
  // bound, and it stops being read; nothing on the loop waits for it.
  const int stuck = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  ASSERT_GE(stuck, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path_.data(), path_.size());
  ASSERT_EQ(::connect(stuck, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  v1::PipeRequest gets;
  for (uint64_t id = 1; id <= 16; ++id) *gets.add_calls() = GetCall(id, large);
  std::string frame;
  rpc::AppendFrameHeader(&frame, static_cast<uint32_t>(gets.ByteSizeLong()));
  gets.AppendToString(&frame);
  // Written until the socket takes no more (the sidecar stops reading it
  // once 4 MiB of answers wait); each frame asks for about 1 MiB.
  const uint64_t replies_before = client_->stats().replies;
  size_t sent = 0;
  while (sent < 200 * frame.size()) {
    const ssize_t n = ::send(stuck, frame.data() + sent % frame.size(),
                             frame.size() - sent % frame.size(), MSG_NOSIGNAL);
    if (n <= 0) {
      ASSERT_TRUE(errno == EAGAIN || errno == EWOULDBLOCK) << strerror(errno);
      break;
    }
    sent += static_cast<size_t>(n);
  }
  ASSERT_GE(sent, frame.size());
  // The first frame's answers (more than the socket holds) are read from
  // Redis: the loop has a connection it cannot write to.
  ASSERT_TRUE(testing::WaitFor([&] { return client_->stats().replies >= replies_before + 16; }));

  // Another connection is answered, and so is a plain command on the client.
  auto other = FrameConnection::Connect(path_);
  ASSERT_TRUE(other.has_value());
  v1::PipeRequest request;
  *request.add_calls() = GetCall(1, small);
  ASSERT_TRUE(other->Send(request));
  std::map<uint64_t, v1::PipeResult> results = other->ReadResults(1);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[1].get().session().attributes().at("v"), "small");
  EXPECT_TRUE(client_->Call(redis::RedisCommand({"PING"})).ok());
  ::close(stuck);
}

TEST_F(FramesLoopTest, ShutdownWithCallsInFlightAnswersThemBeforeItCloses) {
  std::optional<FrameConnection> connection;
  ASSERT_NO_FATAL_FAILURE(CallsWaitingOnAPausedRedis("kept", &connection));

  std::thread shutdown([this] { frames_->Shutdown(absl::Now() + absl::Seconds(30)); });
  // New connections are refused once reading stops.
  ASSERT_TRUE(testing::WaitFor([&] { return !FrameConnection::Connect(path_).has_value(); }));
  redis_->Resume();
  std::map<uint64_t, v1::PipeResult> results = connection->ReadResults(8);
  shutdown.join();
  ASSERT_EQ(results.size(), 8u);
  for (const auto& [id, result] : results) {
    EXPECT_EQ(result.code(), 0) << id << ": " << result.message();
    EXPECT_EQ(result.get().session().attributes().at("v"), "kept");
  }
  EXPECT_TRUE(connection->ClosedByPeer());
}

TEST_F(FramesLoopTest, ShutdownPastItsDeadlineClosesAndWaitsForTheStoreToEndTheCalls) {
  std::optional<FrameConnection> connection;
  ASSERT_NO_FATAL_FAILURE(CallsWaitingOnAPausedRedis("lost", &connection));

  // Returns once the command timeout has failed the calls (nothing of the
  // server is left on the loop then): the server, then the client, may go.
  frames_->Shutdown(absl::Now());
  EXPECT_GE(client_->stats().command_timeouts, 1u);
  EXPECT_TRUE(connection->ClosedByPeer());
  frames_.reset();
  client_.reset();
}

// A connection reuses one call object for call after call (the Redis
// store's Get and Update run on it down to the reply): the sequential calls
// make one object, not one each.
TEST_F(FramesLoopTest, SequentialCallsOnOneConnectionReuseOneCallObject) {
  std::string session;
  std::optional<FrameConnection> connection;
  ASSERT_NO_FATAL_FAILURE(SessionAndConnection("reused", &session, &connection));
  for (uint64_t id = 1; id <= 40; ++id) {
    v1::PipeRequest request;
    *request.add_calls() = id % 2 == 0 ? UpdateCall(id, session, absl::StrCat("v", id))
                                       : GetCall(id, session);
    ASSERT_TRUE(connection->Send(request));
    std::map<uint64_t, v1::PipeResult> results = connection->ReadResults(1);
    ASSERT_EQ(results.size(), 1u);
    ASSERT_EQ(results[id].code(), 0) << results[id].message();
    // A reused object answers this call's own value (no state of the last).
    if (id % 2 == 1 && id > 1) {
      EXPECT_EQ(results[id].get().session().attributes().at("v"), absl::StrCat("v", id - 1));
    }
  }
  EXPECT_EQ(frames_->CallsMadeForTest(), 1u);
}

// A burst makes an object per call in flight; afterwards the connection
// keeps kKeptCalls of them, so the next burst makes only the rest again.
TEST_F(FramesLoopTest, ABurstMakesAnObjectPerCallAndTheConnectionKeepsABoundedPool) {
  std::string session;
  std::optional<FrameConnection> connection;
  ASSERT_NO_FATAL_FAILURE(SessionAndConnection("burst", &session, &connection));
  constexpr uint64_t kBurst = 200;
  static_assert(kBurst > FrameServer::kKeptCalls);
  for (uint64_t round = 0; round < 2; ++round) {
    v1::PipeRequest request;
    for (uint64_t i = 1; i <= kBurst; ++i) *request.add_calls() = GetCall(round * kBurst + i, session);
    ASSERT_TRUE(connection->Send(request));
    const std::map<uint64_t, v1::PipeResult> results = connection->ReadResults(kBurst);
    ASSERT_EQ(results.size(), kBurst);
    for (const auto& [id, result] : results) ASSERT_EQ(result.code(), 0) << id;
  }
  // One frame's calls all take their objects before any completes.
  EXPECT_EQ(frames_->CallsMadeForTest(), kBurst + (kBurst - FrameServer::kKeptCalls));
}

// Calls that complete after their connection was closed (the server shut
// down past its deadline while Redis was paused) give their objects back to
// a pool that is still there: each call holds its connection until it is
// done, and the connection goes with the last one (run under ASan, a use
// after free fails here).
TEST_F(FramesLoopTest, CallsCompletingAfterTheirConnectionClosedTouchNothingFreed) {
  std::optional<FrameConnection> connection;
  ASSERT_NO_FATAL_FAILURE(CallsWaitingOnAPausedRedis("closed", &connection));
  std::thread shutdown([this] { frames_->Shutdown(absl::Now()); });
  // Closed by the shutdown, with the 8 calls still waiting on Redis.
  EXPECT_TRUE(connection->ClosedByPeer());
  redis_->Resume();
  shutdown.join();
  EXPECT_EQ(client_->stats().command_timeouts, 0u) << "the calls ended by Redis' answers";
  EXPECT_EQ(frames_->CallsMadeForTest(), 8u);
  frames_.reset();
}

// StopReading (as Shutdown and the destructor) waits for work it posts to
// the loop: called on the loop it would wait for ever, so it aborts instead.
TEST(FramesLoopDeathTest, StopReadingOnTheLoopAbortsInsteadOfHanging) {
  testing::TempDir dir;
  const std::string path = dir.File("api.sock.frames");
  ASSERT_TRUE(PrepareSocketPath(path).ok());
  // Without the check the statement never returns (the test times out).
  // The log goes to stdout, which the death test does not match.
  EXPECT_EXIT(
      {
        boost::asio::io_context loop;
        auto work = boost::asio::make_work_guard(loop);
        std::thread thread([&loop] { loop.run(); });
        auto frames = FrameServer::Start(path, {}, nullptr, nullptr, 1 << 20, &loop);
        if (frames.ok()) {
          absl::Notification stopped;
          boost::asio::post(loop, [&] {
            (*frames)->StopReading();
            stopped.Notify();
          });
          stopped.WaitForNotification();
        }
      },
      ::testing::KilledBySignal(SIGABRT), "");
}

}  // namespace
}  // namespace stateside
