// The command line of stateside-bench (CLI11) and its validation rules.
#include "tests/bench/bench_options.h"

#include <cmath>
#include <utility>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tests/bench/realtime_bench.h"

namespace stateside::bench {
namespace {

struct OpInfo {
  Op op;
  const char* name;
  const char* rpc;
};

constexpr OpInfo kOps[] = {
    {Op::kPing, "ping", "grpc.health.v1.Health/Check"},
    {Op::kSessionGet, "session-get", "stateside.v1.SessionService/Get"},
    {Op::kSessionUpdate, "session-update", "stateside.v1.SessionService/Update"},
    {Op::kSessionCreate, "session-create", "stateside.v1.SessionService/Create"},
    {Op::kOptOutGet, "optout-get", "stateside.v1.AnalyticsService/GetOptOut"},
    {Op::kEmpty, "empty", "stateside.v1.SessionService/Pipe, a call without an operation"},
    {Op::kRealtimeXInstance, "realtime-xinstance",
     "stateside.v1.RealtimeService/Publish -> Subscribe (two sidecars)"},
    {Op::kRealtimeFanout, "realtime-fanout",
     "stateside.v1.RealtimeService/Publish -> Subscribe (one sidecar)"},
};

// Bounds that keep a typo from asking for something absurd; generous enough
// for any real measurement on one machine.
constexpr int64_t kMaxInflight = 100000;
constexpr int64_t kMaxChannels = 1024;
constexpr int64_t kMaxSizeBytes = 4 << 20;  // gRPC's default message limit
constexpr double kMaxDurationSeconds = 24 * 3600;
constexpr size_t kMaxSocketPathBytes = 107;  // sun_path holds 108 with the NUL

absl::StatusOr<absl::Duration> Seconds(const char* flag, double value,
                                       bool zero_ok) {
  if (!std::isfinite(value) || value < 0 || (!zero_ok && value == 0) ||
      value > kMaxDurationSeconds) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: must be a number of seconds %s 0 and at most %.0f", flag,
        zero_ok ? ">=" : ">", kMaxDurationSeconds));
  }
  return absl::Seconds(value);
}

absl::StatusOr<size_t> Count(const char* flag, int64_t value, int64_t low,
                             int64_t high) {
  if (value < low || value > high) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: must be between %d and %d", flag, low, high));
  }
  return static_cast<size_t>(value);
}

}  // namespace

const char* OpName(Op op) {
  for (const OpInfo& info : kOps) {
    if (info.op == op) return info.name;
  }
  return "?";
}

const char* OpRpc(Op op) {
  for (const OpInfo& info : kOps) {
    if (info.op == op) return info.rpc;
  }
  return "?";
}

const char* TransportName(TransportKind t) {
  switch (t) {
    case TransportKind::kUnary:
      return "unary";
    case TransportKind::kStream:
      return "stream";
    case TransportKind::kClientStream:
      return "client-stream";
    case TransportKind::kClientUnary:
      return "client-unary";
    case TransportKind::kClientFrames:
      return "client-frames";
    case TransportKind::kFrames:
      return "frames";
  }
  return "?";
}

bool OpUsesSession(Op op) {
  return op == Op::kSessionGet || op == Op::kSessionUpdate;
}

bool OpUsesPayload(Op op) {
  return OpUsesSession(op) || op == Op::kSessionCreate || OpIsRealtime(op);
}

bool OpIsRealtime(Op op) {
  return op == Op::kRealtimeXInstance || op == Op::kRealtimeFanout;
}

absl::StatusOr<ParsedCommandLine> ParseBenchOptions(
    const std::vector<std::string>& args) {
  std::string socket, op = "", transport = "unary", session;
  int64_t inflight = 1, channels = 1, size = 1024, server_pid = 0;
  double duration = 10, warmup = 1, connect_timeout = 5, call_timeout = 10;
  bool json = false;
  std::vector<std::string> cpu_of;
  RealtimeFlags realtime;

  CLI::App app(
      "stateside-bench: keeps N calls in flight against a Stateside sidecar's "
      "Unix socket for a fixed time and reports calls/s and latency "
      "percentiles. The realtime ops instead publish events at a fixed --rate "
      "and report publish -> delivery latency and losses.",
      args.empty() ? "stateside-bench" : args[0]);
  app.add_option("--socket", socket,
                 "Unix socket of the sidecar; with --transport frames, the frame socket itself "
                 "(the sidecar's SOCKET.frames, the session being prepared on SOCKET; or "
                 "stateside-frame-echo's)")
      ->required();
  app.add_option("--op", op,
                 "ping (grpc.health.v1.Health/Check, the empty-RPC floor), "
                 "session-get, session-update, session-create, optout-get, "
                 "empty (stream and frames only: a Pipe call without an operation, which "
                 "the sidecar answers at once with an error; the transport's own floor), "
                 "realtime-xinstance, realtime-fanout")
      ->required();
  app.add_option("--inflight", inflight, "calls kept in flight [1]");
  app.add_option("--duration", duration, "measured seconds [10]");
  app.add_option("--warmup", warmup, "seconds run before measuring [1]");
  app.add_option("--size", size,
                 "bytes of the session attribute (session ops) or of the "
                 "event payload (realtime ops) [1024]");
  app.add_option("--session", session,
                 "existing session id or cookie for session-get/update "
                 "[default: create one]");
  app.add_option("--channels", channels,
                 "gRPC channels (connections); calls are spread over them [1]");
  app.add_option("--transport", transport,
                 "unary or stream (the wire), client-stream, client-unary or client-frames (the "
                 "client library; its streams = --channels; client-frames: Get and Update on the "
                 "frame socket), frames (the frame socket's protocol without the library, "
                 "session-get and session-update only, --channels connections to the frame "
                 "socket named by --socket) [unary]");
  app.add_option("--server-pid", server_pid,
                 "sidecar pid: report its CPU time per call (/proc)");
  app.add_option("--cpu-of", cpu_of,
                 "NAME=PID[,PID...]: also report these processes' CPU time per "
                 "call, summed, as NAME (e.g. the Redis nodes); repeatable");
  app.add_option("--connect-timeout", connect_timeout,
                 "seconds to wait for the sidecar before giving up [5]");
  app.add_option("--call-timeout", call_timeout, "deadline of each call [10]");
  app.add_flag("--json", json, "print one JSON object instead of text");
  AddRealtimeFlags(app, realtime);

  std::vector<const char*> argv;
  argv.reserve(args.size());
  for (const std::string& a : args) argv.push_back(a.c_str());
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::CallForHelp&) {
    ParsedCommandLine help;
    help.help = app.help();
    return help;
  } catch (const CLI::ParseError& e) {
    return absl::InvalidArgumentError(e.what());
  }

  BenchOptions o;
  if (socket.empty() || socket.size() > kMaxSocketPathBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--socket: must be a path of 1 to ", kMaxSocketPathBytes, " bytes"));
  }
  o.socket_path = socket;

  bool known_op = false;
  for (const OpInfo& info : kOps) {
    if (op == info.name) {
      o.op = info.op;
      known_op = true;
    }
  }
  if (!known_op) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--op: unknown operation '", op,
        "' (ping, session-get, session-update, session-create, optout-get, empty, "
        "realtime-xinstance, realtime-fanout)"));
  }
  if (o.op == Op::kEmpty && transport != "stream" && transport != "frames") {
    return absl::InvalidArgumentError(absl::StrCat(
        "--op empty: only on --transport stream or frames (a Pipe call without an "
        "operation), not ", transport));
  }
  if (transport == "unary") {
    o.transport = TransportKind::kUnary;
  } else if (transport == "stream") {
    o.transport = TransportKind::kStream;
    if (o.op == Op::kPing) {
      return absl::InvalidArgumentError(
          "--transport stream: --op ping has no stream form (the empty-call floor "
          "is the unary Health/Check)");
    }
  } else if (transport == "client-stream" || transport == "client-unary" ||
             transport == "client-frames") {
    o.transport = transport == "client-stream"   ? TransportKind::kClientStream
                  : transport == "client-unary" ? TransportKind::kClientUnary
                                                : TransportKind::kClientFrames;
    if (o.op == Op::kPing) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--transport ", transport,
          ": --op ping has no client form (the empty-call floor is the unary Health/Check)"));
    }
  } else if (transport == "frames") {
    o.transport = TransportKind::kFrames;
    if (!OpUsesSession(o.op) && o.op != Op::kEmpty) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--transport frames: the frame socket carries only session-get and session-update "
          "(and empty, the calls it refuses at once), not ", op));
    }
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--transport: unknown transport '", transport,
                     "' (unary, stream, client-stream, client-unary, client-frames or frames)"));
  }

  auto n = Count("--inflight", inflight, 1, kMaxInflight);
  if (!n.ok()) return n.status();
  o.inflight = *n;
  n = Count("--channels", channels, 1, kMaxChannels);
  if (!n.ok()) return n.status();
  o.channels = *n;
  n = Count("--size", size, 0, kMaxSizeBytes);
  if (!n.ok()) return n.status();
  o.size_bytes = *n;

  auto d = Seconds("--duration", duration, /*zero_ok=*/false);
  if (!d.ok()) return d.status();
  o.duration = *d;
  d = Seconds("--warmup", warmup, /*zero_ok=*/true);
  if (!d.ok()) return d.status();
  o.warmup = *d;
  d = Seconds("--connect-timeout", connect_timeout, /*zero_ok=*/false);
  if (!d.ok()) return d.status();
  o.connect_timeout = *d;
  d = Seconds("--call-timeout", call_timeout, /*zero_ok=*/false);
  if (!d.ok()) return d.status();
  o.call_timeout = *d;

  if (!session.empty() && !OpUsesSession(o.op)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--session: only for session-get and session-update, not ", op));
  }
  o.session = session;
  if (app.count("--server-pid") > 0) {
    if (server_pid <= 0) {
      return absl::InvalidArgumentError("--server-pid: must be a process id > 0");
    }
    o.server_pid = static_cast<pid_t>(server_pid);
  }
  for (const std::string& text : cpu_of) {
    absl::StatusOr<ProcessGroup> group = ParseProcessGroup(text);
    if (!group.ok()) return absl::InvalidArgumentError(absl::StrCat("--cpu-of: ", group.status().message()));
    o.cpu_of.push_back(*std::move(group));
  }
  o.json = json;
  if (absl::Status s = ApplyRealtimeFlags(app, realtime, o); !s.ok()) return s;

  ParsedCommandLine parsed;
  parsed.options = std::move(o);
  return parsed;
}

}  // namespace stateside::bench
