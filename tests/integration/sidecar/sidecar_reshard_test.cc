// The `stateside` binary on a real six-node Redis Cluster while two
// `stateside-bench` processes keep session reads and session updates in
// flight (64 each) on one session, and `redis-cli --cluster reshard` moves
// that session's slot to another master and back. Not one call may fail at
// the client, and the sidecar's MOVED counter must have risen: the calls
// really followed the slot. (tests/integration/redis/redis_reshard_test
// does the same to the store in process, with the half-migrated cases.)
#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "sidecar/redis/cluster_slots.h"
#include "stateside/v1/session.grpc.pb.h"
#include "tests/support/redis_cluster.h"
#include "tests/support/sidecar_process.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_secrets.h"
#include "tests/support/wait.h"
#include "tests/support/web_client.h"

namespace stateside::testing {
namespace {

namespace v1 = ::stateside::v1;

constexpr int kInflight = 64;
// The benchmark's session lives in one of the lowest kMaxMovedSlots slots,
// all on the master of slot 0: a reshard from there moves the lowest slots
// first, and back from the other master (whose own slots are all higher)
// returns the same ones.
constexpr int kMaxMovedSlots = 256;
// Each bench runs this long; both reshards must end inside it (0.8 s in a
// quiet Release run, 4.4-4.6 s on a busy machine).
constexpr int kBenchSeconds = 15;

// stateside_redis_redirects_total{kind="<kind>"} on /metrics; -1 when it
// cannot be read.
double Redirects(int port, const std::string& kind) {
  const absl::StatusOr<double> value =
      ScrapeMetric(port, absl::StrCat("stateside_redis_redirects_total{kind=\"", kind, "\"}"));
  if (value.ok()) return *value;
  return absl::IsNotFound(value.status()) ? 0 : -1;  // none followed yet, or unread
}

// INFO's total_commands_processed of the node on `port` (-1 if unread).
int64_t CommandsProcessed(RedisCluster& cluster, int port) {
  const RunResult r = cluster.Cli(port, {"INFO", "stats"});
  constexpr std::string_view kField = "total_commands_processed:";
  const size_t at = r.out.find(kField);
  int64_t n = -1;
  if (at == std::string::npos) return -1;
  const size_t start = at + kField.size();
  if (!absl::SimpleAtoi(r.out.substr(start, r.out.find('\r', start) - start), &n)) return -1;
  return n;
}

// One stateside-bench run on its own thread; its result once it ended.
class BenchRun {
 public:
  explicit BenchRun(std::vector<std::string> argv) {
    thread_ = std::thread([this, argv = std::move(argv)] {
      result_ = Run(argv, {}, absl::Seconds(kBenchSeconds + 60));
      done_.store(true);
    });
  }
  ~BenchRun() { Join(); }
  bool done() const { return done_.load(); }
  const RunResult& Join() {
    if (thread_.joinable()) thread_.join();
    return result_;
  }

 private:
  std::thread thread_;
  std::atomic<bool> done_{false};
  RunResult result_;
};

TEST(SidecarReshardTest, NoBenchCallFailsWhileTheSessionsSlotMovesAndBack) {
  absl::StatusOr<std::unique_ptr<RedisCluster>> started = RedisCluster::Start();
  ASSERT_TRUE(started.ok()) << started.status();
  RedisCluster& cluster = **started;

  TempDir dir;
  const std::string socket = dir.File("api.sock");
  SidecarProcessOptions options;
  options.socket_path = socket;
  options.env = {
      {"INSTANCE_ID", "reshard-test"},
      {"SESSION_ENCRYPTION_KEY", kTestKeyHex},
      {"SESSION_SECRET", kTestSecret},
      {"USE_REDIS_SESSIONS", "true"},
      {"STATESIDE_REDIS_TOPOLOGY", "cluster"},
      {"REDIS_URL", cluster.url()},
  };
  options.clear_env = true;
  options.log_path = dir.File("sidecar.log");
  absl::StatusOr<SidecarProcess> sidecar = StartSidecarProcess(std::move(options));
  ASSERT_TRUE(sidecar.ok()) << sidecar.status();
  const int port = sidecar->admin_port;
  ASSERT_TRUE(WaitFor([&] { return ReadyStatus(port) == 200; }, absl::Seconds(20)))
      << sidecar->process.ReadLog();

  // A session in the lowest slots (about 1 create in 64 lands there).
  auto stub = v1::SessionService::NewStub(
      grpc::CreateChannel("unix:" + socket, grpc::InsecureChannelCredentials()));
  std::string id;
  int slot = -1;
  for (int i = 0; i < 2000 && id.empty(); ++i) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::CreateSessionRequest request;
    (*request.mutable_attributes())["cart"] = "[]";
    v1::CreateSessionResponse response;
    const grpc::Status status = stub->Create(&context, request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    const std::string& created = response.session().metadata().id();
    const int s = redis::KeySlot(absl::StrCat("s:{", created, "}"));
    if (s < kMaxMovedSlots) {
      id = created;
      slot = s;
    }
  }
  ASSERT_FALSE(id.empty()) << "no session landed in the lowest " << kMaxMovedSlots << " slots";
  const int from = cluster.MasterOfSlot(0);
  ASSERT_EQ(cluster.MasterOfSlot(slot), from);
  int to = 0;
  for (int p : cluster.MasterPorts()) {
    if (p != from) to = p;
  }
  ASSERT_NE(to, 0);
  const int moved_slots = slot + 1;
  const double moved_before = Redirects(port, "moved");
  ASSERT_GE(moved_before, 0);

  auto bench = [&](const char* op) {
    return std::vector<std::string>{
        BinPath("stateside-bench"), "--socket", socket, "--json", "--op", op, "--session", id,
        "--inflight", std::to_string(kInflight), "--duration", std::to_string(kBenchSeconds),
        "--warmup", "0", "--size", "1024"};
  };
  const int64_t idle = CommandsProcessed(cluster, from);
  BenchRun get(bench("session-get"));
  BenchRun update(bench("session-update"));
  // Both have calls going before the first slot moves: the session's
  // master has served a few thousand more commands.
  ASSERT_TRUE(WaitFor([&] { return CommandsProcessed(cluster, from) > idle + 2000; },
                      absl::Seconds(20), absl::Milliseconds(100)))
      << "no load reached the session's master";

  const absl::Time start = absl::Now();
  const absl::Status there = cluster.Reshard(from, to, moved_slots);
  ASSERT_TRUE(there.ok()) << there;
  ASSERT_TRUE(WaitFor([&] { return cluster.MasterOfSlot(slot) == to; }));
  const absl::Status back = cluster.Reshard(to, from, moved_slots);
  ASSERT_TRUE(back.ok()) << back;
  ASSERT_TRUE(WaitFor([&] { return cluster.MasterOfSlot(slot) == from; }));
  const absl::Duration resharding = absl::Now() - start;
  EXPECT_FALSE(get.done() || update.done())
      << "the reshards (" << resharding << ") outlasted a bench run of " << kBenchSeconds
      << " s: the load did not cover them";

  for (BenchRun* run : {&get, &update}) {
    const RunResult& r = run->Join();
    ASSERT_EQ(r.exit_status, 0) << r.out << r.err << sidecar->process.ReadLog();
    const nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << r.out;
    std::cout << "[bench] " << j["op"] << ": " << j["calls"] << " calls, " << j["errors"]
              << " errors, " << j["calls_per_second"] << " calls/s, p99 " << j["p99_us"]
              << " us, max " << j["max_us"] << " us\n";
    EXPECT_GT(j["calls"].get<int64_t>(), 0) << j.dump();
    EXPECT_EQ(j["errors"], 0) << j.dump();
  }
  const double moved_after = Redirects(port, "moved");
  std::cout << "[reshard] " << moved_slots << " slots there and back in " << resharding
            << "; MOVED followed " << moved_after - moved_before << ", ASK "
            << Redirects(port, "ask") << "\n";
  EXPECT_GT(moved_after, moved_before);
  EXPECT_TRUE(sidecar->process.running()) << sidecar->process.ReadLog();
}

}  // namespace
}  // namespace stateside::testing
