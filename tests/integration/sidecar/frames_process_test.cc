// The frame socket (`<STATESIDE_SOCKET>.frames`, sidecar/server/
// frame_server.h) against the real binary, on the memory store and on a
// real redis-server: Get and Update answer what the unary RPCs answer, other
// calls answer UNIMPLEMENTED one by one, broken streams are closed and
// counted, and the socket file has the gRPC socket's protections and
// lifetime.
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "proto/frames.h"
#include "stateside/v1/session.grpc.pb.h"
#include "tests/integration/sidecar/frame_connection.h"
#include "tests/support/redis_cluster.h"
#include "tests/support/redis_sentinel.h"
#include "tests/support/redis_server.h"
#include "tests/support/sidecar_process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_secrets.h"
#include "tests/support/wait.h"
#include "tests/unit/admin/http_test_client.h"

namespace stateside {
namespace {

namespace v1 = ::stateside::v1;

using testing::FrameConnection;
using testing::GetCall;

// The value of the series `series` (name and labels) on the sidecar's
// admin port; -1 if unread.
double MetricOf(int admin_port, std::string_view series) {
  auto got = testing::Exchange(admin_port, testing::GetRequest("/metrics"));
  if (!got.has_value()) return -1;
  const std::string prefix = absl::StrCat(std::string(series), " ");
  for (absl::string_view line : absl::StrSplit(got->body, '\n')) {
    double value = 0;
    if (absl::ConsumePrefix(&line, prefix) && absl::SimpleAtod(line, &value)) return value;
  }
  return -1;
}

grpc::Status UnaryGetOn(v1::SessionService::Stub& stub, const std::string& session,
                        v1::GetSessionResponse* response) {
  v1::GetSessionRequest request;
  request.mutable_key()->set_id(session);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  return stub.Get(&context, request, response);
}

std::string CreateSessionOn(v1::SessionService::Stub& stub, const std::string& value) {
  v1::CreateSessionRequest request;
  (*request.mutable_attributes())["v"] = value;
  v1::CreateSessionResponse response;
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  EXPECT_TRUE(stub.Create(&context, request, &response).ok());
  return response.session().metadata().id();
}

class FramesProcessTest : public ::testing::TestWithParam<bool /*on_redis*/> {
 protected:
  void SetUp() override { Start({}); }

  void Start(std::map<std::string, std::string> env) {
    auto started = testing::StartBackendSidecar(
        GetParam(), {.socket_path = dir_.File("api.sock"),
                     .env = std::move(env),
                     .log_path = dir_.File("sidecar.log")});
    ASSERT_TRUE(started.ok()) << started.status();
    sidecar_.emplace(std::move(*started));
    channel_ = grpc::CreateChannel("unix:" + dir_.File("api.sock"),
                                   grpc::InsecureChannelCredentials());
    stub_ = v1::SessionService::NewStub(channel_);
  }

  std::string FramesPath() const { return dir_.File("api.sock.frames"); }

  std::string CreateSession(const std::string& value) { return CreateSessionOn(*stub_, value); }

  grpc::Status UnaryGet(const std::string& session, v1::GetSessionResponse* response) {
    return UnaryGetOn(*stub_, session, response);
  }

  // The value of the series `series` (name and labels); -1 if unread.
  double Metric(std::string_view series) {
    return MetricOf(sidecar_->sidecar.admin_port, series);
  }

  // stateside_frame_connections_closed_total{reason="<reason>"}; -1 if unread.
  double ClosedCount(std::string_view reason) {
    return Metric(absl::StrCat("stateside_frame_connections_closed_total{reason=\"",
                               std::string(reason), "\"}"));
  }

  testing::TempDir dir_;
  std::optional<testing::BackendSidecar> sidecar_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::SessionService::Stub> stub_;
};

TEST_P(FramesProcessTest, TheSocketSitsBesideTheGrpcOneWithItsMode) {
  struct stat st {};
  ASSERT_EQ(lstat(FramesPath().c_str(), &st), 0) << strerror(errno);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0660u);
}

TEST_P(FramesProcessTest, GetAndUpdateAnswerWhatTheUnaryCallsAnswer) {
  const std::string session = CreateSession("one");
  auto frames = FrameConnection::Connect(FramesPath());
  ASSERT_TRUE(frames.has_value());

  v1::PipeRequest request;
  *request.add_calls() = GetCall(1, session);
  *request.add_calls() = GetCall(2, "no-such-session-0123456789abcdef");
  ASSERT_TRUE(frames->Send(request));
  std::map<uint64_t, v1::PipeResult> results = frames->ReadResults(2);
  ASSERT_EQ(results.size(), 2u);

  v1::GetSessionResponse unary;
  ASSERT_TRUE(UnaryGet(session, &unary).ok());
  EXPECT_EQ(results[1].code(), 0);
  EXPECT_EQ(results[1].get().session().metadata().id(), session);
  EXPECT_EQ(results[1].get().session().attributes().at("v"), "one");
  EXPECT_EQ(results[1].get().session().metadata().version(),
            unary.session().metadata().version());

  v1::GetSessionResponse missing;
  const grpc::Status unary_missing = UnaryGet("no-such-session-0123456789abcdef", &missing);
  EXPECT_EQ(results[2].code(), static_cast<int>(unary_missing.error_code()));
  EXPECT_EQ(results[2].message(), unary_missing.error_message());
  EXPECT_FALSE(results[2].has_get());

  // An Update on the frames is what a unary Get then reads.
  request.Clear();
  v1::PipeCall* update = request.add_calls();
  update->set_id(3);
  update->mutable_update()->mutable_key()->set_id(session);
  (*update->mutable_update()->mutable_set())["v"] = "two";
  ASSERT_TRUE(frames->Send(request));
  results = frames->ReadResults(1);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[3].code(), 0) << results[3].message();
  ASSERT_TRUE(UnaryGet(session, &unary).ok());
  EXPECT_EQ(unary.session().attributes().at("v"), "two");
  EXPECT_EQ(results[3].update().metadata().version(),
            unary.session().metadata().version());
}

TEST_P(FramesProcessTest, ManyCallsInOneFrameAreAllAnswered) {
  const std::string session = CreateSession("x");
  auto frames = FrameConnection::Connect(FramesPath());
  ASSERT_TRUE(frames.has_value());
  v1::PipeRequest request;
  for (uint64_t id = 1; id <= 500; ++id) *request.add_calls() = GetCall(id, session);
  ASSERT_TRUE(frames->Send(request));
  ASSERT_TRUE(frames->Send(request));  // the same ids again, once answered or not
  // Every call of both frames answers once: OK, or for the second frame's
  // a DUPLICATE_CALL_ID when it finds the first's id still in flight.
  std::map<uint64_t, std::vector<int>> codes;
  size_t answered = 0;
  while (answered < 1000) {
    std::optional<v1::PipeResponse> response = frames->Read();
    ASSERT_TRUE(response.has_value()) << answered << " of 1000 answered";
    for (const v1::PipeResult& r : response->results()) codes[r.id()].push_back(r.code());
    answered += static_cast<size_t>(response->results_size());
  }
  ASSERT_EQ(codes.size(), 500u);
  for (auto& [id, got] : codes) {
    // In either order: a refusal goes out before the call it collided with.
    ASSERT_EQ(got.size(), 2u) << id;
    std::sort(got.begin(), got.end());
    EXPECT_EQ(got[0], 0) << id;
    EXPECT_TRUE(got[1] == 0 || got[1] == 3) << id << ": " << got[1];
  }
}

TEST_P(FramesProcessTest, AFrameWaitsUntilItsCallsFitInTheUnansweredBudget) {
  if (!GetParam()) GTEST_SKIP() << "the memory store answers every call before the next frame";
  const std::string session = CreateSession("x");
  auto frames = FrameConnection::Connect(FramesPath());
  ASSERT_TRUE(frames.has_value());
  sidecar_->redis->Pause();  // nothing is answered: the calls stay in flight
  v1::PipeRequest first;
  for (uint64_t id = 1; id <= 1000; ++id) *first.add_calls() = GetCall(id, session);
  v1::PipeRequest second;  // 1000 + 100 > 1024: waits for the first's answers
  for (uint64_t id = 1001; id <= 1100; ++id) *second.add_calls() = GetCall(id, session);
  std::string bytes;
  for (const v1::PipeRequest* r : {&first, &second}) {
    rpc::AppendFrameHeader(&bytes, static_cast<uint32_t>(r->ByteSizeLong()));
    bytes += r->SerializeAsString();
  }
  ASSERT_TRUE(frames->SendRaw(bytes));
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (Metric("stateside_rpc_in_flight") < 1000 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));  // polling the gauge, with a deadline
  }
  ASSERT_EQ(Metric("stateside_rpc_in_flight"), 1000);
  // A refusal on another connection goes through the same reading thread
  // after the bytes above: once it is answered, the second frame was seen.
  auto other = FrameConnection::Connect(FramesPath());
  ASSERT_TRUE(other.has_value());
  v1::PipeRequest touch;
  touch.add_calls()->set_id(1);
  ASSERT_TRUE(other->Send(touch));
  ASSERT_EQ(other->ReadResults(1).size(), 1u);
  EXPECT_EQ(Metric("stateside_rpc_in_flight"), 1000);
  sidecar_->redis->Resume();
  std::map<uint64_t, v1::PipeResult> results = frames->ReadResults(1100);
  ASSERT_EQ(results.size(), 1100u);
  for (const auto& [id, r] : results) EXPECT_EQ(r.code(), 0) << id << ": " << r.message();
}

TEST_P(FramesProcessTest, OtherCallsAnswerUnimplementedAndTheConnectionStays) {
  const std::string session = CreateSession("x");
  auto frames = FrameConnection::Connect(FramesPath());
  ASSERT_TRUE(frames.has_value());
  v1::PipeRequest request;
  v1::PipeCall* touch = request.add_calls();
  touch->set_id(7);
  touch->mutable_touch()->mutable_key()->set_id(session);
  v1::PipeCall* create = request.add_calls();
  create->set_id(8);
  create->mutable_create();
  request.add_calls()->set_id(9);  // no operation at all
  *request.add_calls() = GetCall(10, session);
  ASSERT_TRUE(frames->Send(request));
  std::map<uint64_t, v1::PipeResult> results = frames->ReadResults(4);
  ASSERT_EQ(results.size(), 4u);
  EXPECT_EQ(results[7].code(), 12);  // UNIMPLEMENTED
  EXPECT_TRUE(absl::StrContains(results[7].message(), "Get and Update only"));
  EXPECT_EQ(results[8].code(), 12);
  EXPECT_EQ(results[9].code(), 12);
  EXPECT_EQ(results[10].code(), 0);
}

TEST_P(FramesProcessTest, MalformedAndDuplicateCallsAnswerAloneAsOnThePipe) {
  const std::string session = CreateSession("x");
  auto frames = FrameConnection::Connect(FramesPath());
  ASSERT_TRUE(frames.has_value());
  // Field 1 (calls) holding: id 5, then a Get whose bytes are broken.
  const std::string bad_call = std::string("\x08\x05\x5a\x03\xff\xff\xff", 7);
  std::string payload;
  payload += '\x0a';
  payload += static_cast<char>(bad_call.size());
  payload += bad_call;
  v1::PipeRequest good;
  *good.add_calls() = GetCall(6, session);
  *good.add_calls() = GetCall(6, session);
  payload += good.SerializeAsString();
  std::string frame;
  rpc::AppendFrameHeader(&frame, static_cast<uint32_t>(payload.size()));
  ASSERT_TRUE(frames->SendRaw(frame + payload));
  // Three results: the malformed one, a 6 that ran, a 6 refused.
  std::vector<v1::PipeResult> all;
  while (all.size() < 3) {
    auto response = frames->Read();
    ASSERT_TRUE(response.has_value());
    for (const auto& r : response->results()) all.push_back(r);
  }
  ASSERT_EQ(all.size(), 3u);
  int ok = 0;
  int duplicate = 0;
  int malformed = 0;
  for (const v1::PipeResult& r : all) {
    if (r.id() == 5) {
      EXPECT_EQ(r.code(), 3);
      EXPECT_EQ(r.message(), "malformed request: not a valid stateside.v1.GetSessionRequest");
      ++malformed;
    } else if (r.id() == 6 && r.code() == 0) {
      ++ok;
    } else if (r.id() == 6 && r.code() == 3) {
      EXPECT_EQ(r.error_info().reason(), "DUPLICATE_CALL_ID");
      ++duplicate;
    }
  }
  EXPECT_EQ(malformed, 1);
  EXPECT_EQ(ok, 1);
  EXPECT_EQ(duplicate, 1);
}

TEST_P(FramesProcessTest, BrokenStreamsAreClosedAndCounted) {
  struct Case {
    std::string reason;
    std::string bytes;
  };
  std::string oversized;
  rpc::AppendFrameHeader(&oversized, 64u << 20);
  std::string not_a_request;
  // Field 1 announcing 5 bytes, holding 2.
  rpc::AppendFrameHeader(&not_a_request, 4);
  not_a_request += std::string("\x0a\x05", 2) + "ab";
  v1::PipeRequest many;
  for (int i = 0; i < 1025; ++i) many.add_calls()->set_id(static_cast<uint64_t>(i));
  std::string too_many;
  rpc::AppendFrameHeader(&too_many, static_cast<uint32_t>(many.ByteSizeLong()));
  too_many += many.SerializeAsString();
  const Case cases[] = {
      {"zero_length", std::string(4, '\0')},
      {"oversized", oversized},
      {"oversized", "GET / HTTP/1.1\r\n\r\n"},  // garbage reads as a huge length
      {"malformed", not_a_request},
      {"too_many_calls", too_many},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.reason);
    const double before = ClosedCount(c.reason);
    ASSERT_GE(before, 0);
    auto frames = FrameConnection::Connect(FramesPath());
    ASSERT_TRUE(frames.has_value());
    ASSERT_TRUE(frames->SendRaw(c.bytes));
    EXPECT_TRUE(frames->ClosedByPeer());
    EXPECT_EQ(ClosedCount(c.reason), before + 1);
  }
  // A truncated frame is no error: the connection waits for the rest.
  const std::string session = CreateSession("x");
  v1::PipeRequest request;
  *request.add_calls() = GetCall(1, session);
  std::string frame;
  rpc::AppendFrameHeader(&frame, static_cast<uint32_t>(request.ByteSizeLong()));
  frame += request.SerializeAsString();
  auto frames = FrameConnection::Connect(FramesPath());
  ASSERT_TRUE(frames.has_value());
  for (char byte : frame) ASSERT_TRUE(frames->SendRaw(std::string(1, byte)));
  EXPECT_EQ(frames->ReadResults(1).size(), 1u);
}

TEST_P(FramesProcessTest, AHeaderBehindTheBackpressureLimitIsCheckedBeforeAnyMemoryIsSpent) {
  // Answers of about 4.7 MiB from one frame: on the memory store they are
  // all queued before the next frame is looked at, so the connection is at
  // its limit with the bad header still unparsed in the same read.
  v1::CreateSessionRequest create;
  for (int i = 0; i < 4; ++i) {
    (*create.mutable_attributes())[absl::StrCat("a", i)] = std::string(60000, 'x');
  }
  v1::CreateSessionResponse created;
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  ASSERT_TRUE(stub_->Create(&context, create, &created).ok());
  const std::string session = created.session().metadata().id();
  const double before = ClosedCount("oversized");
  ASSERT_GE(before, 0);
  auto frames = FrameConnection::Connect(FramesPath());
  ASSERT_TRUE(frames.has_value());
  v1::PipeRequest request;
  for (uint64_t id = 1; id <= 20; ++id) *request.add_calls() = GetCall(id, session);
  std::string bytes;
  rpc::AppendFrameHeader(&bytes, static_cast<uint32_t>(request.ByteSizeLong()));
  bytes += request.SerializeAsString();
  bytes += std::string(4, '\xff');  // a length of 4 GiB
  ASSERT_TRUE(frames->SendRaw(bytes));
  // The answers drain, reading resumes, the header is refused.
  size_t answered = 0;
  while (std::optional<v1::PipeResponse> response = frames->Read()) {
    answered += static_cast<size_t>(response->results_size());
  }
  EXPECT_LE(answered, 20u);
  EXPECT_TRUE(frames->ClosedByPeer());
  EXPECT_EQ(ClosedCount("oversized"), before + 1);
  // Still serving, and its peak memory nowhere near the announced length.
  v1::GetSessionResponse unary;
  EXPECT_TRUE(UnaryGet(session, &unary).ok());
  auto again = FrameConnection::Connect(FramesPath());
  ASSERT_TRUE(again.has_value());
  v1::PipeRequest one;
  *one.add_calls() = GetCall(1, session);
  ASSERT_TRUE(again->Send(one));
  EXPECT_EQ(again->ReadResults(1).size(), 1u);
  std::ifstream proc(absl::StrCat("/proc/", sidecar_->sidecar.process.pid(), "/status"));
  std::string line;
  int64_t peak_kib = -1;
  while (std::getline(proc, line)) {
    absl::string_view rest = line;
    if (absl::ConsumePrefix(&rest, "VmHWM:")) {
      ASSERT_TRUE(absl::SimpleAtoi(absl::StripAsciiWhitespace(absl::StripSuffix(
                                       absl::StripAsciiWhitespace(rest), "kB")),
                                   &peak_kib));
    }
  }
  ASSERT_GT(peak_kib, 0);
  EXPECT_LT(peak_kib, 512 * 1024);
}

TEST_P(FramesProcessTest, TheSocketIsRemovedOnExit) {
  ASSERT_EQ(access(FramesPath().c_str(), F_OK), 0);
  ASSERT_EQ(testing::StopSidecar(sidecar_->sidecar.process, absl::Seconds(20)), 0);
  EXPECT_NE(access(FramesPath().c_str(), F_OK), 0);
  EXPECT_NE(access(dir_.File("api.sock").c_str(), F_OK), 0);
}

INSTANTIATE_TEST_SUITE_P(Backends, FramesProcessTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Redis" : "Memory";
                         });

// Every Redis topology, with the near cache on and off where it may be: the
// frame server runs on the Redis client's I/O thread there (frame_server.h),
// so what must hold is that Get and Update still answer what they should,
// a near cache hit (answered on that thread) included.
struct TopologyCase {
  std::string name;
  std::string topology;  // STATESIDE_REDIS_TOPOLOGY
  bool near_cache = false;
};

class FramesTopologyTest : public ::testing::TestWithParam<TopologyCase> {
 protected:
  void SetUp() override {
    std::map<std::string, std::string> env = {
        {"INSTANCE_ID", "frames-topology"},
        {"SESSION_ENCRYPTION_KEY", testing::kTestKeyHex},
        {"SESSION_SECRET", testing::kTestSecret},
        {"USE_REDIS_SESSIONS", "true"},
        {"STATESIDE_REDIS_TOPOLOGY", GetParam().topology},
        {"STATESIDE_SESSION_NEAR_CACHE", GetParam().near_cache ? "true" : "false"},
    };
    if (GetParam().topology == "cluster") {
      auto started = testing::RedisCluster::Start();
      ASSERT_TRUE(started.ok()) << started.status();
      cluster_ = *std::move(started);
      env["REDIS_URL"] = cluster_->url();
    } else if (GetParam().topology == "sentinel") {
      auto started = testing::RedisSentinelSet::Start();
      ASSERT_TRUE(started.ok()) << started.status();
      sentinels_ = *std::move(started);
      env["REDIS_URL"] = sentinels_->url();
      env["REDIS_SENTINEL_MASTER"] = sentinels_->options().master_name;
    } else {
      auto started = testing::RedisServer::Start();
      ASSERT_TRUE(started.ok()) << started.status();
      server_ = *std::move(started);
      env["REDIS_URL"] = server_->url();
    }
    testing::SidecarProcessOptions options;
    options.socket_path = dir_.File("api.sock");
    options.env = std::move(env);
    options.clear_env = true;
    options.log_path = dir_.File("sidecar.log");
    auto sidecar = testing::StartSidecarProcess(std::move(options));
    ASSERT_TRUE(sidecar.ok()) << sidecar.status();
    sidecar_.emplace(*std::move(sidecar));
    ASSERT_TRUE(testing::WaitFor(
        [&] { return testing::ReadyStatus(sidecar_->admin_port) == 200; }, absl::Seconds(20)))
        << sidecar_->process.ReadLog();
    if (GetParam().near_cache) {
      ASSERT_TRUE(testing::WaitFor(
          [&] { return Metric("stateside_session_near_cache_armed") == 1; }))
          << sidecar_->process.ReadLog();
    }
    stub_ = v1::SessionService::NewStub(grpc::CreateChannel(
        "unix:" + dir_.File("api.sock"), grpc::InsecureChannelCredentials()));
  }

  double Metric(std::string_view series) { return MetricOf(sidecar_->admin_port, series); }

  // Sends `request` and reads its `n` results.
  std::map<uint64_t, v1::PipeResult> Call(FrameConnection& frames,
                                          const v1::PipeRequest& request, size_t n) {
    EXPECT_TRUE(frames.Send(request));
    return frames.ReadResults(n);
  }

  testing::TempDir dir_;
  std::unique_ptr<testing::RedisServer> server_;
  std::unique_ptr<testing::RedisCluster> cluster_;
  std::unique_ptr<testing::RedisSentinelSet> sentinels_;
  std::optional<testing::SidecarProcess> sidecar_;
  std::unique_ptr<v1::SessionService::Stub> stub_;
};

TEST_P(FramesTopologyTest, GetAndUpdateOnTheFrameSocketAnswerAsTheUnaryCalls) {
  const std::string session = CreateSessionOn(*stub_, "one");
  ASSERT_FALSE(session.empty());
  auto frames = FrameConnection::Connect(dir_.File("api.sock.frames"));
  ASSERT_TRUE(frames.has_value());

  // Read twice: with the near cache the second is answered from it.
  const std::string hits = "stateside_session_near_cache_lookups_total{result=\"hit\"}";
  const double hits_before = Metric(hits);
  for (uint64_t id : {1, 2}) {
    v1::PipeRequest request;
    *request.add_calls() = GetCall(id, session);
    std::map<uint64_t, v1::PipeResult> results = Call(*frames, request, 1);
    ASSERT_EQ(results.size(), 1u);
    EXPECT_EQ(results[id].code(), 0) << results[id].message();
    EXPECT_EQ(results[id].get().session().attributes().at("v"), "one");
  }
  if (GetParam().near_cache) {
    EXPECT_EQ(Metric(hits), hits_before + 1);
  }

  v1::PipeRequest request;
  v1::PipeCall* update = request.add_calls();
  update->set_id(3);
  update->mutable_update()->mutable_key()->set_id(session);
  (*update->mutable_update()->mutable_set())["v"] = "two";
  std::map<uint64_t, v1::PipeResult> updated = Call(*frames, request, 1);
  ASSERT_EQ(updated.size(), 1u);
  EXPECT_EQ(updated[3].code(), 0) << updated[3].message();

  // The update is read back on the frames (the near cache dropped its copy)
  // and by the unary call, at the version the update answered.
  request.Clear();
  for (uint64_t id = 10; id < 110; ++id) *request.add_calls() = GetCall(id, session);
  std::map<uint64_t, v1::PipeResult> results = Call(*frames, request, 100);
  ASSERT_EQ(results.size(), 100u);
  for (const auto& [id, result] : results) {
    EXPECT_EQ(result.code(), 0) << id << ": " << result.message();
    EXPECT_EQ(result.get().session().attributes().at("v"), "two") << id;
    EXPECT_EQ(result.get().session().metadata().version(), updated[3].update().metadata().version());
  }
  v1::GetSessionResponse unary;
  ASSERT_TRUE(UnaryGetOn(*stub_, session, &unary).ok());
  EXPECT_EQ(unary.session().attributes().at("v"), "two");
  EXPECT_EQ(unary.session().metadata().version(), updated[3].update().metadata().version());

  // A clean stop with the frame socket on the Redis thread.
  EXPECT_EQ(testing::StopSidecar(sidecar_->process, absl::Seconds(20)), 0)
      << sidecar_->process.ReadLog();
}

INSTANTIATE_TEST_SUITE_P(
    Topologies, FramesTopologyTest,
    ::testing::Values(TopologyCase{"StandaloneNearCache", "standalone", true},
                      TopologyCase{"Sentinel", "sentinel", false},
                      TopologyCase{"SentinelNearCache", "sentinel", true},
                      TopologyCase{"Cluster", "cluster", false}),
    [](const ::testing::TestParamInfo<TopologyCase>& info) { return info.param.name; });

// Settings: turned off, and STATESIDE_ALLOWED_UIDS checked per connection.
TEST(FramesSettingsTest, FramesFalseServesNoFrameSocket) {
  testing::TempDir dir;
  auto sidecar = testing::StartSidecarProcess({.socket_path = dir.File("api.sock"),
                                               .env = {{"STATESIDE_FRAMES", "false"}},
                                               .log_path = dir.File("sidecar.log")});
  ASSERT_TRUE(sidecar.ok()) << sidecar.status();
  EXPECT_EQ(access(dir.File("api.sock").c_str(), F_OK), 0);
  EXPECT_NE(access(dir.File("api.sock.frames").c_str(), F_OK), 0);
}

TEST(FramesSettingsTest, AUidNotAllowedIsClosedUnanswered) {
  testing::TempDir dir;
  // Only some other uid may call: this process is refused.
  auto sidecar = testing::StartSidecarProcess(
      {.socket_path = dir.File("api.sock"),
       .env = {{"STATESIDE_ALLOWED_UIDS", std::to_string(getuid() + 1)}},
       .log_path = dir.File("sidecar.log")});
  ASSERT_TRUE(sidecar.ok()) << sidecar.status();
  auto frames = FrameConnection::Connect(dir.File("api.sock.frames"));
  ASSERT_TRUE(frames.has_value());
  v1::PipeRequest request;
  *request.add_calls() = GetCall(1, "any");
  frames->Send(request);  // may fail: the sidecar may have closed already
  EXPECT_TRUE(frames->ClosedByPeer());
  auto got = testing::Exchange(sidecar->admin_port, testing::GetRequest("/metrics"));
  ASSERT_TRUE(got.has_value());
  EXPECT_TRUE(absl::StrContains(
      got->body, "stateside_frame_connections_closed_total{reason=\"refused_uid\"} 1"));
}

}  // namespace
}  // namespace stateside
