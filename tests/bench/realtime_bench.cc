// RunRealtime: opens the Subscribe stream and registers the room's
// connections, publishes on an absolute schedule with asynchronous unary
// calls (a slow reply never delays the next event), waits for the
// deliveries, reports.
#include "tests/bench/realtime_bench.h"

#include <errno.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/sync_stream.h"
#include "stateside/v1/lifecycle.grpc.pb.h"
#include "stateside/v1/realtime.grpc.pb.h"
#include "tests/bench/proc_cpu.h"
#include "tests/bench/transport.h"
#include "tests/bench/workload.h"

namespace stateside::bench {
namespace {

namespace v1 = ::stateside::v1;

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;
// How long the run waits, after the last Publish reply, for the deliveries
// still missing before counting them lost: live delivery on one machine takes
// milliseconds, so anything later is as good as lost to a client.
constexpr absl::Duration kReceiveGrace = absl::Seconds(2);
// Connections one SubscribeRequest may register (the sidecar's limit); the
// rest are registered with RegisterConnection.
constexpr size_t kMaxStreamConnections = 256;
// A publisher further behind its schedule than this did not offer the rate.
constexpr absl::Duration kLagWarning = absl::Milliseconds(1);
// The first event is due this long after setup: the publisher thread is
// running by then.
constexpr int64_t kStartLeadNs = 20'000'000;
// Deadline of the setup and cleanup calls.
constexpr absl::Duration kSetupTimeout = absl::Seconds(10);

int64_t MonoNanos() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// An absolute deadline, so a late wake-up is not carried over to the next
// event (sleeping "1/rate after the last send" would drift).
void SleepUntilMono(int64_t ns) {
  timespec ts{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
  }
}

void SetDeadline(grpc::ClientContext& context, absl::Duration timeout) {
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
}

absl::Status FromGrpc(absl::string_view what, const grpc::Status& s) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      absl::StrCat(what, ": ", s.error_message()));
}

int Fail(int code, absl::string_view message) {
  std::fprintf(stderr, "stateside-bench: %.*s\n", static_cast<int>(message.size()),
               message.data());
  return code;
}

std::string Describe(const absl::Status& s) {
  return absl::StrCat(absl::StatusCodeToString(s.code()), ": ", s.message());
}

std::optional<absl::Duration> CpuOf(std::optional<pid_t> pid) {
  if (!pid.has_value()) return std::nullopt;
  auto cpu = ProcessCpuTime(*pid);
  if (!cpu.ok()) return std::nullopt;
  return *cpu;
}

std::optional<absl::Duration> Delta(std::optional<absl::Duration> before,
                                    std::optional<absl::Duration> after) {
  if (!before.has_value() || !after.has_value()) return std::nullopt;
  return *after - *before;
}

absl::StatusOr<v1::Instance> GetInstance(const std::shared_ptr<grpc::Channel>& channel) {
  auto stub = v1::LifecycleService::NewStub(channel);
  grpc::ClientContext context;
  SetDeadline(context, kSetupTimeout);
  v1::GetInstanceResponse response;
  grpc::Status s = stub->GetInstance(&context, v1::GetInstanceRequest(), &response);
  if (!s.ok()) return FromGrpc("LifecycleService/GetInstance", s);
  return response.instance();
}

// The Subscribe stream, read by its own thread with blocking reads, so a
// delivery is stamped as soon as gRPC hands it over.
class Receiver {
 public:
  Receiver(const std::shared_ptr<grpc::Channel>& channel, RealtimeLedger* ledger,
           uint64_t run_id)
      : stub_(v1::RealtimeService::NewStub(channel)), ledger_(ledger), run_id_(run_id) {}
  ~Receiver() { (void)Stop(); }

  // Opens the stream and waits for its `subscribed` message.
  absl::Status Start(const v1::SubscribeRequest& request, absl::Duration timeout) {
    reader_ = stub_->Subscribe(&context_, request);
    thread_ = std::thread([this] { Loop(); });
    absl::MutexLock lock(&mu_);
    auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return subscribed_ || ended_; };
    if (!mu_.AwaitWithTimeout(absl::Condition(&ready), timeout)) {
      return absl::DeadlineExceededError(absl::StrCat(
          "RealtimeService/Subscribe: no `subscribed` within ", absl::FormatDuration(timeout)));
    }
    return ended_ ? end_ : absl::OkStatus();
  }

  // Cancels the stream; the error it had ended with before, if any.
  absl::Status Stop() {
    if (!thread_.joinable()) return absl::OkStatus();
    bool ended_before;
    {
      absl::MutexLock lock(&mu_);
      ended_before = ended_;
    }
    context_.TryCancel();
    thread_.join();
    absl::MutexLock lock(&mu_);
    return ended_before ? end_ : absl::OkStatus();
  }

 private:
  void Loop() {
    v1::RealtimeEvent event;
    while (reader_->Read(&event)) {
      const int64_t received_ns = MonoNanos();
      const absl::Time received_at = absl::Now();
      switch (event.kind_case()) {
        case v1::RealtimeEvent::kSubscribed: {
          absl::MutexLock lock(&mu_);
          subscribed_ = true;
          break;
        }
        case v1::RealtimeEvent::kDelivery: {
          const v1::Delivery& d = event.delivery();
          std::optional<PayloadStamp> stamp = DecodeRealtimePayload(d.payload());
          if (!stamp.has_value() || stamp->run_id != run_id_) {
            ledger_->OnUnknown();
            break;
          }
          std::optional<int64_t> from_sidecar;
          if (d.has_published_at()) {
            const absl::Time published = absl::FromUnixSeconds(d.published_at().seconds()) +
                                         absl::Nanoseconds(d.published_at().nanos());
            from_sidecar = absl::ToInt64Nanoseconds(received_at - published);
          }
          ledger_->OnReceived(*stamp, received_ns, static_cast<size_t>(d.conn_ids_size()),
                              from_sidecar);
          break;
        }
        case v1::RealtimeEvent::kGap:
          ledger_->OnGap(event.gap().dropped());
          break;
        case v1::RealtimeEvent::KIND_NOT_SET:
          break;
      }
    }
    const grpc::Status status = reader_->Finish();
    absl::MutexLock lock(&mu_);
    ended_ = true;
    end_ = FromGrpc("RealtimeService/Subscribe", status);
    if (end_.ok()) end_ = absl::UnavailableError("RealtimeService/Subscribe ended");
  }

  const std::unique_ptr<v1::RealtimeService::Stub> stub_;
  RealtimeLedger* const ledger_;
  const uint64_t run_id_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReader<v1::RealtimeEvent>> reader_;
  std::thread thread_;
  absl::Mutex mu_;
  bool subscribed_ ABSL_GUARDED_BY(mu_) = false;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status end_ ABSL_GUARDED_BY(mu_);
};

// The publishing schedule, CLOCK_MONOTONIC ns: event i is due at
// start + i / rate; events due in [window_start, end) are measured; none is
// due at or after end.
struct Schedule {
  int64_t start = 0;
  int64_t window_start = 0;
  int64_t end = 0;
  double rate = 1;
};

// One Publish in flight; deletes itself when it completes.
struct PublishCall {
  grpc::ClientContext context;
  v1::PublishRequest request;
  v1::PublishResponse response;
};

// Publishes on `schedule` (blocking the calling thread until the last event
// is sent, not answered); returns how far it fell behind at worst.
absl::Duration PublishOnSchedule(v1::RealtimeService::Stub& stub, const BenchOptions& options,
                                 const std::string& room, uint64_t run_id,
                                 const Schedule& schedule, RealtimeLedger& ledger) {
  const std::string filler = MakePayload(options.size_bytes);
  const double period_ns = 1e9 / schedule.rate;
  int64_t max_lag = 0;
  for (uint64_t i = 0;; ++i) {
    const int64_t due = schedule.start + std::llround(static_cast<double>(i) * period_ns);
    if (due >= schedule.end) break;
    SleepUntilMono(due);
    auto* call = new PublishCall;
    call->request.set_room(room);
    call->request.set_event("bench");
    SetDeadline(call->context, options.call_timeout);
    const int64_t sent = MonoNanos();
    max_lag = std::max(max_lag, sent - due);
    call->request.set_payload(
        EncodeRealtimePayload({run_id, i, sent}, options.size_bytes, filler));
    ledger.OnSent(i, sent, due >= schedule.window_start);
    stub.async()->Publish(&call->context, &call->request, &call->response,
                          [&ledger, call, i](grpc::Status status) {
                            ledger.OnPublishDone(i, MonoNanos(), status.error_code());
                            delete call;
                          });
  }
  return absl::Nanoseconds(max_lag);
}

absl::Status RegisterConnection(v1::RealtimeService::Stub& stub,
                                const v1::RegisterConnectionRequest& request) {
  grpc::ClientContext context;
  SetDeadline(context, kSetupTimeout);
  v1::RegisterConnectionResponse response;
  return FromGrpc(absl::StrCat("RealtimeService/RegisterConnection ", request.conn_id()),
                  stub.RegisterConnection(&context, request, &response));
}

void UnregisterConnections(v1::RealtimeService::Stub& stub,
                           const std::vector<std::string>& conns) {
  for (const std::string& conn : conns) {
    grpc::ClientContext context;
    SetDeadline(context, absl::Seconds(2));
    v1::UnregisterConnectionRequest request;
    request.set_conn_id(conn);
    v1::UnregisterConnectionResponse response;
    (void)stub.UnregisterConnection(&context, request, &response);
  }
}

}  // namespace

int RunRealtime(const BenchOptions& options) {
  const bool xinstance = options.op == Op::kRealtimeXInstance;
  if (options.publish_server_pid.has_value()) {
    if (auto cpu = ProcessCpuTime(*options.publish_server_pid); !cpu.ok()) {
      return Fail(kExitUsage, absl::StrCat("--publish-server-pid: ", cpu.status().message()));
    }
  }
  // Two connections even on one sidecar: the deliveries' stream and the
  // Publish calls do not share an HTTP/2 connection, as in an app whose
  // publishing and receiving are separate.
  auto channels = MakeChannels(options.socket_path, xinstance ? 1 : 2);
  if (absl::Status s = ConnectChannels(options.socket_path, channels, options.connect_timeout);
      !s.ok()) {
    return Fail(kExitFailure, s.message());
  }
  std::shared_ptr<grpc::Channel> receive_channel = channels[0];
  std::shared_ptr<grpc::Channel> publish_channel = xinstance ? nullptr : channels[1];
  if (xinstance) {
    auto publish = MakeChannels(options.publish_socket, 1);
    if (absl::Status s =
            ConnectChannels(options.publish_socket, publish, options.connect_timeout);
        !s.ok()) {
      return Fail(kExitFailure, s.message());
    }
    publish_channel = publish[0];
  }

  std::vector<std::string> warnings;
  auto receiving = GetInstance(receive_channel);
  auto publishing = GetInstance(publish_channel);
  if (!receiving.ok() || !publishing.ok()) {
    return Fail(kExitFailure, absl::StrCat("setup failed: ",
                                           Describe(receiving.ok() ? publishing.status()
                                                                   : receiving.status())));
  }
  if (xinstance) {
    if (receiving->id() == publishing->id()) {
      return Fail(kExitUsage, absl::StrCat("--publish-socket: reaches the same instance (",
                                           receiving->id(), ") as --socket"));
    }
    for (const v1::Instance* instance : {&*receiving, &*publishing}) {
      if (instance->backend() != "redis") {
        warnings.push_back(absl::StrCat("instance ", instance->id(), " runs on the ",
                                        instance->backend(),
                                        " backend: events cannot cross instances"));
      }
    }
  }

  // Names unique to this run, so nothing left over from another run (or
  // anyone else's room) is counted.
  std::random_device random;
  const uint64_t run_id = (static_cast<uint64_t>(random()) << 32) | random();
  const std::string tag = absl::StrFormat("bench-%08x", static_cast<uint32_t>(run_id));
  const std::string room = tag;
  v1::SubscribeRequest subscribe;
  std::vector<v1::RegisterConnectionRequest> extra;
  for (size_t i = 0; i < options.connections; ++i) {
    v1::RegisterConnectionRequest conn;
    conn.set_conn_id(absl::StrCat(tag, "-", i));
    conn.add_rooms(room);
    if (i < kMaxStreamConnections) {
      *subscribe.add_connections() = std::move(conn);
    } else {
      extra.push_back(std::move(conn));
    }
  }

  RealtimeLedger ledger(
      options.connections,
      static_cast<size_t>(
          std::ceil(options.rate * absl::ToDoubleSeconds(options.warmup + options.duration))) +
          1);
  Receiver receiver(receive_channel, &ledger, run_id);
  if (absl::Status s = receiver.Start(subscribe, options.call_timeout); !s.ok()) {
    return Fail(kExitFailure, absl::StrCat("setup failed: ", Describe(s)));
  }
  auto receive_stub = v1::RealtimeService::NewStub(receive_channel);
  std::vector<std::string> registered;  // by RegisterConnection: ours to remove
  for (const v1::RegisterConnectionRequest& conn : extra) {
    if (absl::Status s = RegisterConnection(*receive_stub, conn); !s.ok()) {
      UnregisterConnections(*receive_stub, registered);
      return Fail(kExitFailure, absl::StrCat("setup failed: ", Describe(s)));
    }
    registered.push_back(conn.conn_id());
  }

  Schedule schedule;
  schedule.rate = options.rate;
  schedule.start = MonoNanos() + kStartLeadNs;
  schedule.window_start = schedule.start + absl::ToInt64Nanoseconds(options.warmup);
  schedule.end = schedule.window_start + absl::ToInt64Nanoseconds(options.duration);
  auto publish_stub = v1::RealtimeService::NewStub(publish_channel);
  absl::Duration max_lag;
  std::thread publisher([&] {
    max_lag = PublishOnSchedule(*publish_stub, options, room, run_id, schedule, ledger);
  });
  SleepUntilMono(schedule.window_start);
  const auto server_before = CpuOf(options.server_pid);
  const auto publisher_before = CpuOf(options.publish_server_pid);
  const absl::Duration client_before = SelfCpuTime();
  SleepUntilMono(schedule.end);
  const auto server_after = CpuOf(options.server_pid);
  const auto publisher_after = CpuOf(options.publish_server_pid);
  const absl::Duration client_after = SelfCpuTime();
  publisher.join();

  if (!ledger.AwaitPublishesDone(absl::Now() + options.call_timeout + absl::Seconds(5))) {
    Fail(kExitFailure, "Publish calls still outstanding past their deadline");
    // Their callbacks use the ledger: leave without destroying it.
    std::fflush(stdout);
    _exit(kExitFailure);
  }
  (void)ledger.AwaitAllReceived(absl::Now() + kReceiveGrace);
  if (absl::Status s = receiver.Stop(); !s.ok()) {
    warnings.push_back(absl::StrCat("the Subscribe stream ended early: ", Describe(s)));
  }
  UnregisterConnections(*receive_stub, registered);

  RealtimeResult result = ledger.Tally();
  result.window = options.duration;
  result.max_schedule_lag = max_lag;
  result.server_cpu = Delta(server_before, server_after);
  result.publish_server_cpu = Delta(publisher_before, publisher_after);
  result.client_cpu = client_after - client_before;
  result.instance = receiving->id();
  result.publish_instance = publishing->id();
  result.admin_address = receiving->admin_address();
  if (max_lag > kLagWarning) {
    warnings.push_back(absl::StrCat("the publisher fell up to ", absl::FormatDuration(max_lag),
                                    " behind its schedule: the rate was not offered evenly"));
  }
  const std::string out = options.json ? FormatRealtimeJson(options, result, warnings) + "\n"
                                       : FormatRealtimeText(options, result, warnings);
  std::fputs(out.c_str(), stdout);
  if (result.delivered == 0) {
    return Fail(kExitFailure, "no event was delivered in the measured window");
  }
  return 0;
}

}  // namespace stateside::bench
