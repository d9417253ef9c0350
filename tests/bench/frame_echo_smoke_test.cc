// The built stateside-frame-echo, the frame socket's floor: stateside-bench
// --transport frames measures it (calls and its CPU), and it answers as the
// sidecar's frame socket would, closing a connection that breaks the stream
// (garbage, an empty or oversized frame, too many calls) while serving the
// others. Real processes; not a timing assertion.
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "proto/frames.h"
#include "stateside/v1/session.pb.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"

namespace stateside::testing {
namespace {

namespace v1 = ::stateside::v1;

constexpr int kSize = 300;  // the echo's attribute, told apart from the default

class FrameEchoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    socket_ = dir_.File("echo.sock");
    SubprocessOptions options;
    options.argv = {BinPath("stateside-frame-echo"), "--socket", socket_, "--size",
                    std::to_string(kSize)};
    options.log_path = dir_.File("echo.log");
    auto echo = Subprocess::Start(std::move(options));
    ASSERT_TRUE(echo.ok()) << echo.status();
    echo_.emplace(*std::move(echo));
    ASSERT_TRUE(WaitFor([&] { return access(socket_.c_str(), F_OK) == 0 || !echo_->running(); },
                        absl::Seconds(20)));
    ASSERT_TRUE(echo_->running()) << echo_->ReadLog();
  }

  void TearDown() override {
    for (int fd : fds_) close(fd);
    // Whatever a test sent, the echo is still there: a crash fails it.
    if (echo_.has_value()) {
      EXPECT_TRUE(echo_->running()) << echo_->ReadLog();
    }
    if (echo_.has_value() && echo_->running()) {
      echo_->Signal(SIGTERM);
      const std::optional<int> status = echo_->Wait(absl::Seconds(10));
      EXPECT_EQ(status, 0) << echo_->ReadLog();
      // It removes its socket on the way out.
      EXPECT_NE(access(socket_.c_str(), F_OK), 0);
    }
  }

  int Connect() {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, socket_.data(), socket_.size());
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0)
        << std::strerror(errno);
    fds_.push_back(fd);
    return fd;
  }

  static void SendAll(int fd, std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      ASSERT_GT(n, 0) << std::strerror(errno);
      bytes.remove_prefix(static_cast<size_t>(n));
    }
  }

  // What one read returns, waiting at most 10 s for it: "" when the peer
  // closed or nothing came.
  static std::string ReceiveSome(int fd) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 10'000) <= 0) return "";
    char buffer[4096];
    const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    return n > 0 ? std::string(buffer, static_cast<size_t>(n)) : "";
  }

  // True when the echo closes `fd` within 10 s.
  static bool ClosedByPeer(int fd) {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    for (;;) {
      pollfd p{fd, POLLIN, 0};
      const int left = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
      if (left <= 0 || poll(&p, 1, left) <= 0) return false;
      char buffer[256];
      const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
      if (n == 0 || (n < 0 && errno == ECONNRESET)) return true;
      if (n < 0) return false;  // read anything else: keep waiting for the end
    }
  }

  static std::string Frame(const v1::PipeRequest& request) {
    std::string out;
    rpc::AppendFrameHeader(&out, static_cast<uint32_t>(request.ByteSizeLong()));
    request.AppendToString(&out);
    return out;
  }

  // Reads from `fd` until `buffered` holds a whole frame, parses it into
  // *response and drops it from `buffered`.
  static void ReceiveFrame(int fd, std::string& buffered, v1::PipeResponse* response) {
    std::string_view payload;
    size_t consumed = 0;
    rpc::FrameParse parse = rpc::FrameParse::kNeedMore;
    while ((parse = rpc::ParseFrame(buffered, 64 << 20, &payload, &consumed)) ==
           rpc::FrameParse::kNeedMore) {
      const std::string more = ReceiveSome(fd);
      ASSERT_FALSE(more.empty()) << "no answer within 10 s";
      buffered += more;
    }
    ASSERT_EQ(parse, rpc::FrameParse::kFrame);
    ASSERT_TRUE(response->ParseFromArray(payload.data(), static_cast<int>(payload.size())));
    buffered.erase(0, consumed);
  }

  // A frame of a Get (id `get_id`) and an Update (id `get_id + 1`).
  static std::string GetAndUpdate(uint64_t get_id) {
    v1::PipeRequest request;
    v1::PipeCall* get = request.add_calls();
    get->set_id(get_id);
    get->mutable_get()->mutable_key()->set_id("any");
    v1::PipeCall* update = request.add_calls();
    update->set_id(get_id + 1);
    update->mutable_update()->mutable_set()->insert({"bench", "x"});
    return Frame(request);
  }

  // Sends GetAndUpdate(get_id) and checks the answer (ExpectAnswer).
  void ExpectAnswered(int fd, uint64_t get_id) {
    SendAll(fd, GetAndUpdate(get_id));
    ExpectAnswer(fd, get_id);
  }

  // Checks the one answer to GetAndUpdate(get_id): both ids, OK, the canned
  // session for the Get.
  void ExpectAnswer(int fd, uint64_t get_id) {
    std::string buffered;
    v1::PipeResponse response;
    ASSERT_NO_FATAL_FAILURE(ReceiveFrame(fd, buffered, &response));
    EXPECT_TRUE(buffered.empty()) << "the echo answers one frame with one";
    ASSERT_EQ(response.results_size(), 2);
    EXPECT_EQ(response.results(0).id(), get_id);
    EXPECT_EQ(response.results(0).code(), 0);
    ASSERT_TRUE(response.results(0).has_get());
    const v1::Session& session = response.results(0).get().session();
    EXPECT_EQ(session.attributes().at("bench").size(), static_cast<size_t>(kSize));
    EXPECT_FALSE(session.metadata().id().empty());
    EXPECT_FALSE(session.cookie().empty());
    EXPECT_EQ(response.results(1).id(), get_id + 1);
    EXPECT_EQ(response.results(1).code(), 0);
  }

  TempDir dir_;
  std::string socket_;
  std::optional<Subprocess> echo_;
  std::vector<int> fds_;
};

TEST_F(FrameEchoTest, BenchMeasuresCallsAndTheEchosCpu) {
  RunResult r = testing::Run({BinPath("stateside-bench"), "--socket", socket_, "--transport",
                              "frames", "--op", "session-get", "--inflight", "8", "--channels",
                              "2", "--duration", "0.5", "--warmup", "0.1", "--size",
                              std::to_string(kSize), "--server-pid",
                              std::to_string(echo_->pid()), "--json"},
                             {}, absl::Seconds(60));
  ASSERT_EQ(r.exit_status, 0) << r.err << "\n" << echo_->ReadLog();
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["op"], "session-get");
  EXPECT_EQ(j["transport"], "frames");
  EXPECT_GT(j["calls"].get<int64_t>(), 0) << j.dump();
  EXPECT_EQ(j["errors"], 0) << j.dump();
  EXPECT_TRUE(j["server_cpu_us_per_call"].is_number()) << j.dump();
  EXPECT_GT(j["server_cpu_us_per_call"].get<double>(), 0) << j.dump();
}

TEST_F(FrameEchoTest, SocketIsOwnerOnly) {
  struct stat st;
  ASSERT_EQ(stat(socket_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(FrameEchoTest, BrokenStreamsCloseTheirConnectionOnly) {
  const int good = Connect();
  ExpectAnswered(good, 7);

  // A frame whose payload is not a PipeRequest (a varint that never ends).
  const int garbage = Connect();
  std::string bad;
  rpc::AppendFrameHeader(&bad, 5);
  bad.append(5, '\xff');
  SendAll(garbage, bad);
  // A header announcing far more than the sidecar's limit: refused at once,
  // without waiting for the payload.
  const int oversized = Connect();
  std::string huge;
  rpc::AppendFrameHeader(&huge, 0x7fffffff);
  SendAll(oversized, huge);
  // And one announcing nothing.
  const int empty = Connect();
  std::string zero;
  rpc::AppendFrameHeader(&zero, 0);
  SendAll(empty, zero);

  EXPECT_TRUE(ClosedByPeer(garbage));
  EXPECT_TRUE(ClosedByPeer(oversized));
  EXPECT_TRUE(ClosedByPeer(empty));
  // The others are served as before, and new ones too.
  ExpectAnswered(good, 9);
  ExpectAnswered(Connect(), 11);
  EXPECT_TRUE(echo_->running());
}

// A frame whose header comes in two writes, the echo reading the first
// before the second is sent, is answered as any other.
TEST_F(FrameEchoTest, HeaderSplitAcrossWritesIsAnswered) {
  const int fd = Connect();
  const std::string frame = GetAndUpdate(41);
  SendAll(fd, frame.substr(0, 2));
  // A round trip on another connection: the echo has seen the first two
  // bytes (they were ready before this frame was sent) when it answers.
  ExpectAnswered(Connect(), 51);
  SendAll(fd, frame.substr(2));
  ExpectAnswer(fd, 41);
}

// More than 1,024 calls in one frame closes that connection only.
TEST_F(FrameEchoTest, FrameOfTooManyCallsClosesItsConnectionOnly) {
  const int good = Connect();
  ExpectAnswered(good, 61);
  v1::PipeRequest request;
  for (int i = 0; i < 1025; ++i) {
    v1::PipeCall* get = request.add_calls();
    get->set_id(static_cast<uint64_t>(i));
    get->mutable_get()->mutable_key()->set_id("any");
  }
  const int crowded = Connect();
  SendAll(crowded, Frame(request));
  EXPECT_TRUE(ClosedByPeer(crowded));
  ExpectAnswered(good, 63);
}

// A second echo on the socket of one that is running refuses to take it
// over, and the first one still serves.
TEST_F(FrameEchoTest, LiveSocketIsNotTakenOver) {
  RunResult r = testing::Run({BinPath("stateside-frame-echo"), "--socket", socket_}, {},
                             absl::Seconds(30));
  EXPECT_EQ(r.exit_status, 2) << r.err;
  EXPECT_THAT(r.err, ::testing::HasSubstr("another server is listening"));
  ExpectAnswered(Connect(), 31);
}

// A PipeRequest of no calls (here a field it does not know, so that the
// frame is not empty) is answered with nothing: the next answer on the
// connection is the next frame's.
TEST_F(FrameEchoTest, FrameOfNoCallsGetsNoAnswer) {
  const int fd = Connect();
  std::string no_calls;
  rpc::AppendFrameHeader(&no_calls, 2);
  no_calls.append("\x10\x00", 2);  // field 2, varint 0
  SendAll(fd, no_calls);
  ExpectAnswered(fd, 21);
}

// Frames whose answers come to more than the 4 MiB the echo lets wait for
// one connection: it holds back the frames it has read, and answers them
// once the socket drains, with no new bytes arriving to wake it.
TEST_F(FrameEchoTest, FramesHeldBackWhileAnswersWaitAreAnsweredAfterwards) {
  constexpr int kFrames = 16;  // 1,024 gets of a 300-byte session each: ~7 MiB of answers
  v1::PipeRequest request;
  for (int i = 0; i < 1024; ++i) {
    v1::PipeCall* get = request.add_calls();
    get->set_id(static_cast<uint64_t>(i));
    get->mutable_get()->mutable_key()->set_id("any");
  }
  std::string frames;
  for (int i = 0; i < kFrames; ++i) frames += Frame(request);
  const int fd = Connect();
  // All of it at once, from a thread of its own: the echo stops reading
  // while its answers wait, so the sending may block until they are read.
  std::thread sender([&] { SendAll(fd, frames); });
  std::string buffered;
  int answered = 0;
  for (; answered < kFrames; ++answered) {
    v1::PipeResponse response;
    ReceiveFrame(fd, buffered, &response);
    if (::testing::Test::HasFatalFailure() || response.results_size() != 1024) break;
    EXPECT_EQ(response.results(1023).id(), 1023u);
  }
  // Unblocks the sender if the echo stopped answering.
  if (answered < kFrames) shutdown(fd, SHUT_RDWR);
  sender.join();
  ASSERT_EQ(answered, kFrames);
  EXPECT_TRUE(buffered.empty());
  ExpectAnswered(fd, 5000);
}

// stateside-bench --transport frames --socket DIR/NAME with `args`.
RunResult FramesBench(const TempDir& dir, const char* name, std::vector<std::string> args) {
  std::vector<std::string> argv = {BinPath("stateside-bench"), "--socket", dir.File(name),
                                   "--transport", "frames"};
  argv.insert(argv.end(), args.begin(), args.end());
  return testing::Run(argv, {}, absl::Seconds(30));
}

TEST(FrameEchoCliTest, BenchRefusesOpsTheFrameSocketDoesNotCarry) {
  TempDir dir;
  RunResult r = FramesBench(dir, "x.sock", {"--op", "ping"});
  EXPECT_EQ(r.exit_status, 2) << r.err;
  EXPECT_THAT(r.err, ::testing::HasSubstr("--transport frames"));
}

TEST(FrameEchoCliTest, AbsentFrameSocketExitsOne) {
  TempDir dir;
  RunResult r = FramesBench(dir, "absent.sock", {"--op", "session-get"});
  EXPECT_EQ(r.exit_status, 1) << r.err;
  EXPECT_THAT(r.err, ::testing::HasSubstr("absent.sock"));
}

}  // namespace
}  // namespace stateside::testing
