// The realtime flags of stateside-bench and the payload header of its events.
#include <algorithm>
#include <cmath>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "tests/bench/realtime_bench.h"

namespace stateside::bench {
namespace {

// Far above what one machine publishes; keeps a typo from scheduling
// events a nanosecond apart.
constexpr double kMaxRate = 1e6;
// The ledger keeps 16 bytes per event: at most ~160 MB.
constexpr double kMaxEvents = 1e7;
constexpr size_t kMaxSocketPathBytes = 107;  // as --socket

void PutU64(char* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

uint64_t GetU64(const char* in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) {
    v |= static_cast<uint64_t>(static_cast<unsigned char>(in[i])) << (8 * i);
  }
  return v;
}

}  // namespace

void AddRealtimeFlags(CLI::App& app, RealtimeFlags& flags) {
  app.add_option("--rate", flags.rate,
                 "realtime ops: events published per second, on a fixed "
                 "schedule (open loop)");
  app.add_option("--publish-socket", flags.publish_socket,
                 "realtime-xinstance: Unix socket of the sidecar that "
                 "publishes (another instance on the same Redis)");
  app.add_option("--connections", flags.connections,
                 "realtime ops: connections registered in the room on "
                 "--socket; each event is delivered to all of them [1]");
  app.add_option("--publish-server-pid", flags.publish_server_pid,
                 "realtime-xinstance: pid of the publishing sidecar: report "
                 "its CPU time per event (/proc)");
}

absl::Status ApplyRealtimeFlags(const CLI::App& app, const RealtimeFlags& flags,
                                BenchOptions& options) {
  const bool realtime = OpIsRealtime(options.op);
  const std::string op = OpName(options.op);
  if (!realtime) {
    for (const char* flag :
         {"--rate", "--publish-socket", "--connections", "--publish-server-pid"}) {
      if (app.count(flag) > 0) {
        return absl::InvalidArgumentError(
            absl::StrCat(flag, ": only for the realtime ops, not ", op));
      }
    }
    return absl::OkStatus();
  }
  // Open loop: the rate sets the load, not a number of callers.
  for (const char* flag : {"--inflight", "--channels"}) {
    if (app.count(flag) > 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          flag, ": not for ", op, " (it publishes at a fixed --rate)"));
    }
  }
  if (options.transport != TransportKind::kUnary) {
    return absl::InvalidArgumentError(
        absl::StrCat("--transport: ", op, " publishes with unary calls only"));
  }
  if (app.count("--rate") == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--rate: required for ", op, " (events per second)"));
  }
  if (!std::isfinite(flags.rate) || flags.rate <= 0 || flags.rate > kMaxRate) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--rate: must be events per second > 0 and at most ", kMaxRate));
  }
  const double events =
      flags.rate * absl::ToDoubleSeconds(options.warmup + options.duration);
  if (events > kMaxEvents) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--rate: ", flags.rate, "/s over --warmup + --duration is ", events,
        " events; at most ", kMaxEvents, " per run"));
  }
  if (flags.connections < 1 ||
      flags.connections > static_cast<int64_t>(kRealtimeMaxConnections)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--connections: must be between 1 and ", kRealtimeMaxConnections));
  }
  if (options.size_bytes < kRealtimeHeaderBytes ||
      options.size_bytes > kRealtimeMaxPayloadBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--size: the payload of ", op, " must be between ", kRealtimeHeaderBytes,
        " (its header) and ", kRealtimeMaxPayloadBytes, " bytes"));
  }
  if (options.op == Op::kRealtimeXInstance) {
    if (flags.publish_socket.empty() ||
        flags.publish_socket.size() > kMaxSocketPathBytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--publish-socket: ", op, " needs the publishing sidecar's socket, "
          "a path of 1 to ", kMaxSocketPathBytes, " bytes"));
    }
    if (flags.publish_socket == options.socket_path) {
      return absl::InvalidArgumentError(
          "--publish-socket: must be another sidecar than --socket");
    }
    if (app.count("--publish-server-pid") > 0) {
      if (flags.publish_server_pid <= 0) {
        return absl::InvalidArgumentError(
            "--publish-server-pid: must be a process id > 0");
      }
      options.publish_server_pid = static_cast<pid_t>(flags.publish_server_pid);
    }
  } else {
    for (const char* flag : {"--publish-socket", "--publish-server-pid"}) {
      if (app.count(flag) > 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            flag, ": ", op, " publishes on --socket itself"));
      }
    }
  }
  options.publish_socket = flags.publish_socket;
  options.rate = flags.rate;
  options.connections = static_cast<size_t>(flags.connections);
  return absl::OkStatus();
}

std::string EncodeRealtimePayload(const PayloadStamp& stamp, size_t size,
                                  std::string_view filler) {
  std::string out(std::max(size, kRealtimeHeaderBytes), '\0');
  PutU64(&out[0], stamp.run_id);
  PutU64(&out[8], stamp.sequence);
  PutU64(&out[16], static_cast<uint64_t>(stamp.sent_ns));
  for (size_t i = kRealtimeHeaderBytes; !filler.empty() && i < out.size(); ++i) {
    out[i] = filler[i % filler.size()];
  }
  return out;
}

std::optional<PayloadStamp> DecodeRealtimePayload(std::string_view payload) {
  if (payload.size() < kRealtimeHeaderBytes) return std::nullopt;
  PayloadStamp stamp;
  stamp.run_id = GetU64(payload.data());
  stamp.sequence = GetU64(payload.data() + 8);
  stamp.sent_ns = static_cast<int64_t>(GetU64(payload.data() + 16));
  return stamp;
}

}  // namespace stateside::bench
