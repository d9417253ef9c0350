// Realtime across real processes: `stateside` sidecars on one real
// redis-server (started here), driven through the generated RealtimeService
// stubs over their Unix sockets, observed through their Subscribe streams
// and their /metrics. Shared by the realtime_*_test binaries.
// Not thread-safe: the test's main thread owns the fixture; an EventStream
// may be read from any one thread.
#ifndef STATESIDE_TESTS_INTEGRATION_REALTIME_REALTIME_FIXTURE_H_
#define STATESIDE_TESTS_INTEGRATION_REALTIME_REALTIME_FIXTURE_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "stateside/v1/realtime.grpc.pb.h"
#include "tests/support/redis_server.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"

namespace stateside::testing {

namespace v1 = ::stateside::v1;

// One Subscribe stream, read by its own thread into a queue so the test can
// wait for the next message with a deadline. The first message
// (`subscribed`) is read at once; with `paused`, nothing after it is read
// until Resume(), so the stream behaves like an app that stopped reading.
class EventStream {
 public:
  EventStream(v1::RealtimeService::Stub* stub, const v1::SubscribeRequest& request,
              bool paused = false);
  // Cancels the stream and joins the reader.
  ~EventStream();
  EventStream(const EventStream&) = delete;
  EventStream& operator=(const EventStream&) = delete;

  // True once the first message, `subscribed: true`, has arrived.
  bool WaitSubscribed(absl::Duration timeout = absl::Seconds(15));
  // The next message after `subscribed`; nullopt if none comes within
  // `timeout` or the stream ended.
  std::optional<v1::RealtimeEvent> Next(absl::Duration timeout = absl::Seconds(10));
  // The next Delivery, skipping (and collecting in `skipped`) anything else.
  std::optional<v1::Delivery> NextDelivery(absl::Duration timeout = absl::Seconds(10),
                                           std::vector<v1::RealtimeEvent>* skipped = nullptr);
  void Resume();
  // The stream's final status once it has ended on its own (nullopt: still
  // open after `timeout`).
  std::optional<grpc::Status> WaitEnded(absl::Duration timeout);
  // Messages read but not yet taken by Next.
  size_t buffered() const;

 private:
  void ReadLoop();

  // Declared before reader_: the context must outlive the reader.
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReader<v1::RealtimeEvent>> reader_;
  std::thread thread_;

  mutable absl::Mutex mu_;
  bool subscribed_ ABSL_GUARDED_BY(mu_) = false;
  bool paused_ ABSL_GUARDED_BY(mu_) = false;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status status_ ABSL_GUARDED_BY(mu_);
  std::deque<v1::RealtimeEvent> events_ ABSL_GUARDED_BY(mu_);
};

// One sidecar process (INSTANCE_ID = name) on the shared Redis.
struct Pod {
  std::string name;
  std::string socket;
  int admin_port = 0;
  std::optional<Subprocess> process;
  std::unique_ptr<v1::RealtimeService::Stub> rt;

  // GET /metrics on the admin port ("" if it failed).
  std::string Scrape() const;
  // A series' value in a fresh scrape: `series` is the name with its labels
  // as printed, e.g. `stateside_realtime_dropped_total{reason="overflow"}`.
  // A labelled series that was never touched is absent: 0.
  double Metric(const std::string& series) const;
  double Received() const { return Metric("stateside_realtime_received_total"); }
};

// The value of `series` in a /metrics text (nullopt if absent).
std::optional<double> MetricIn(const std::string& text, const std::string& series);

// A ClientContext with a deadline, for unary calls.
std::unique_ptr<grpc::ClientContext> Ctx(absl::Duration timeout = absl::Seconds(10));

// A ConnectionRef as a comparable pair.
using Ref = std::pair<std::string, std::string>;  // (instance, conn)

class RealtimeClusterTest : public ::testing::Test {
 protected:
  void SetUp() override;
  // Fails the test if any sidecar it started reported a sanitizer error.
  void TearDown() override;

  // Starts a sidecar named `name` and waits until it serves and (unless
  // `realtime_probe` is false) its realtime subscription is up.
  void StartPod(Pod& pod, const std::string& name,
                const std::map<std::string, std::string>& extra_env = {},
                bool realtime_probe = true);

  // A Subscribe stream on `pod`, its `subscribed` already read (expects it).
  static std::unique_ptr<EventStream> OpenStream(const Pod& pod, bool paused = false,
                                                 const v1::SubscribeRequest& request = {});

  // Unary calls; each asserts nothing, returns the status.
  static grpc::Status Register(const Pod& pod, const std::string& conn, const std::string& user,
                               const std::vector<std::string>& rooms = {});
  static grpc::Status Unregister(const Pod& pod, const std::string& conn);
  static grpc::Status Join(const Pod& pod, const std::string& conn,
                           const std::vector<std::string>& rooms);
  static grpc::Status Leave(const Pod& pod, const std::string& conn,
                            const std::vector<std::string>& rooms);
  static grpc::Status Publish(const Pod& pod, const v1::PublishRequest& request,
                              v1::PublishResponse* response = nullptr);

  static v1::PublishRequest ToRoom(const std::string& room, const std::string& payload,
                                   const std::string& event = "msg");
  static v1::PublishRequest ToUser(const std::string& user, const std::string& payload);
  static v1::PublishRequest ToConn(const std::string& instance, const std::string& conn,
                                   const std::string& payload);
  static v1::PublishRequest ToAll(const std::string& payload);
  static void AddExcept(v1::PublishRequest& request, const std::string& instance,
                        const std::string& conn);

  // Every member of `room` as `pod` sees it (all pages of `page_size`),
  // in the order returned; nullopt if a call failed.
  static std::optional<std::vector<Ref>> Members(const Pod& pod, const std::string& room,
                                                 int page_size = 1000,
                                                 int64_t* count = nullptr);
  static std::optional<std::set<Ref>> MemberSet(const Pod& pod, const std::string& room);
  static std::optional<std::set<Ref>> UserConns(const Pod& pod, const std::string& user);

  // Returns once Redis has processed every SUBSCRIBE and UNSUBSCRIBE `pod`
  // sent before (Leave answers before its UNSUBSCRIBE is confirmed): joins
  // its connection `conn` to a fresh room, which answers once that room's
  // SUBSCRIBE, sent after them on the same connection, is confirmed.
  void Fence(const Pod& pod, const std::string& conn);

  // Proves that `stream` (on `pod`) got nothing before now: publishes a
  // marker to connection `conn` of `pod` from `from` and checks that the
  // stream's next message is that marker. Redis hands one subscriber
  // connection its messages in publish order, and the marker is published
  // after everything the test published before, so anything meant for the
  // pod would have come first.
  void ExpectNothingBeforeMarker(const Pod& from, const Pod& pod, EventStream& stream,
                                 const std::string& conn);

  TempDir dir_;
  std::unique_ptr<RedisServer> redis_;
  int markers_ = 0;
  int starts_ = 0;
  int fences_ = 0;
  std::vector<std::string> logs_;  // of every sidecar started
};

}  // namespace stateside::testing

#endif  // STATESIDE_TESTS_INTEGRATION_REALTIME_REALTIME_FIXTURE_H_
