// stateside-bench's command line: what to measure and how, parsed and
// validated once (CLI11). Scripts depend on these flags:
//   --socket PATH --op OP [--inflight N] [--duration S] [--size BYTES] [--json]
//   [--session ID] [--channels N] [--warmup S]
//   [--transport unary|stream|client-stream|client-unary|client-frames|frames]
//   [--server-pid PID] [--connect-timeout S] [--call-timeout S]
// and for the realtime ops (realtime_bench.h): --rate R
//   [--publish-socket PATH] [--connections N] [--publish-server-pid PID]
// A plain value: thread-compatible.
#ifndef STATESIDE_TESTS_BENCH_BENCH_OPTIONS_H_
#define STATESIDE_TESTS_BENCH_BENCH_OPTIONS_H_

#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/bench/proc_cpu.h"

namespace stateside::bench {

enum class Op {
  kPing,           // grpc.health.v1.Health/Check: the empty-RPC floor
  kSessionGet,     // SessionService/Get of one session
  kSessionUpdate,  // SessionService/Update setting one attribute
  kSessionCreate,  // SessionService/Create with one attribute
  kOptOutGet,      // AnalyticsService/GetOptOut of one subject
  // A PipeCall without an operation (stream and frames only): the server
  // answers it at once, without any work behind it (the Pipe INVALID_ARGUMENT,
  // the frame socket UNIMPLEMENTED), so its cost is the transport's own per
  // call; that refusal counts as the call's success, any other code not.
  kEmpty,
  // Open-loop RealtimeService Publish → Subscribe delivery (realtime_bench.h):
  kRealtimeXInstance,  // publish on --publish-socket, receive on --socket
  kRealtimeFanout,     // publish and receive on --socket, N connections
};

// How calls travel: one unary RPC per call, or SessionService.Pipe (one
// multiplexed, batching stream per channel; not for ping).
// unary, stream: the bench's own minimal clients of the wire; client-*:
// the client library's Async forms (tests/bench/client_transport.h);
// frames: the frame socket's protocol itself (tests/bench/frames_transport.h),
// --socket then naming the frame socket.
enum class TransportKind {
  kUnary,
  kStream,
  kClientStream,
  kClientUnary,
  kClientFrames,
  kFrames,
};

const char* OpName(Op op);                   // "session-get"
const char* OpRpc(Op op);                    // "stateside.v1.SessionService/Get"
const char* TransportName(TransportKind t);  // "unary"
// True for the operations that read or write one existing session.
bool OpUsesSession(Op op);
// True for the operations whose payload is --size bytes.
bool OpUsesPayload(Op op);
// True for the realtime ops (run by RunRealtime, not the closed loop).
bool OpIsRealtime(Op op);

struct BenchOptions {
  std::string socket_path;
  Op op = Op::kPing;
  TransportKind transport = TransportKind::kUnary;
  size_t inflight = 1;    // calls kept outstanding at every moment
  size_t channels = 1;    // gRPC channels (each its own connection)
  size_t size_bytes = 1024;  // attribute value size (session ops)
  absl::Duration duration = absl::Seconds(10);  // measured window
  absl::Duration warmup = absl::Seconds(1);     // before the window, not counted
  // An existing session (raw id, or a signed cookie "id.signature") for
  // session-get/update; empty = the bench creates (and destroys) its own.
  std::string session;
  std::optional<pid_t> server_pid;  // sidecar whose CPU is read from /proc
  // --cpu-of NAME=PID[,PID...]: other processes (e.g. the Redis nodes behind
  // the sidecar) whose CPU per call is reported under NAME, summed.
  std::vector<ProcessGroup> cpu_of;
  absl::Duration connect_timeout = absl::Seconds(5);
  absl::Duration call_timeout = absl::Seconds(10);  // deadline of every call
  bool json = false;

  // Realtime ops only (realtime_bench.h).
  std::string publish_socket;  // realtime-xinstance: the publishing sidecar
  double rate = 0;             // events published per second (open loop)
  size_t connections = 1;      // connections registered in the room
  std::optional<pid_t> publish_server_pid;  // --publish-socket's sidecar
};

// Result of parsing: either options to run, or text to print and exit 0
// (--help).
struct ParsedCommandLine {
  std::optional<BenchOptions> options;  // empty when help was asked for
  std::string help;
};

// Parses args (args[0] is the program name). A bad flag, value or
// combination is INVALID_ARGUMENT with a one-line message naming the flag.
absl::StatusOr<ParsedCommandLine> ParseBenchOptions(
    const std::vector<std::string>& args);

}  // namespace stateside::bench

#endif  // STATESIDE_TESTS_BENCH_BENCH_OPTIONS_H_
