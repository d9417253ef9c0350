// Preparing and cleaning up the state a benchmark run reads or writes.
#include "tests/bench/workload.h"

#include <unistd.h>

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "stateside/v1/analytics.grpc.pb.h"
#include "stateside/v1/session.grpc.pb.h"

namespace stateside::bench {
namespace {

namespace v1 = ::stateside::v1;

// Sessions made by session-create expire on their own soon after a run
// instead of holding the store's memory for the default 24 h.
constexpr absl::Duration kCreatedSessionIdleTtl = absl::Minutes(10);
constexpr absl::Duration kSetupTimeout = absl::Seconds(5);

absl::Status FromGrpc(const char* what, const grpc::Status& s) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      absl::StrCat(what, ": ", s.error_message()));
}

void SetDeadline(grpc::ClientContext& context, absl::Duration timeout) {
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
}

void SetKey(const std::string& session, v1::SessionKey& key) {
  // A cookie is "id.signature"; an id (base64url) never holds a dot.
  if (session.find('.') != std::string::npos) {
    key.set_cookie(session);
  } else {
    key.set_id(session);
  }
}

absl::Status PrepareSession(const BenchOptions& options,
                            const std::shared_ptr<grpc::Channel>& channel,
                            const std::string& payload, Workload& w) {
  auto stub = v1::SessionService::NewStub(channel);
  v1::SessionKey key;
  if (options.session.empty()) {
    v1::CreateSessionRequest request;
    (*request.mutable_attributes())[kBenchAttribute] = payload;
    v1::CreateSessionResponse response;
    grpc::ClientContext context;
    SetDeadline(context, kSetupTimeout);
    if (absl::Status s = FromGrpc("creating the benchmark session",
                                  stub->Create(&context, request, &response));
        !s.ok()) {
      return s;
    }
    w.created_session_id = response.session().metadata().id();
    key.set_id(w.created_session_id);
  } else {
    SetKey(options.session, key);
    v1::GetSessionRequest request;
    *request.mutable_key() = key;
    request.set_touch(false);
    v1::GetSessionResponse response;
    grpc::ClientContext context;
    SetDeadline(context, kSetupTimeout);
    if (absl::Status s = FromGrpc("--session: reading the session",
                                  stub->Get(&context, request, &response));
        !s.ok()) {
      return s;
    }
  }
  *w.get.mutable_key() = key;
  *w.update.mutable_key() = key;
  (*w.update.mutable_set())[kBenchAttribute] = payload;
  return absl::OkStatus();
}

}  // namespace

std::string MakePayload(size_t size) {
  std::string out(size, '\0');
  uint64_t x = 0x9E3779B97F4A7C15ull;  // xorshift64: cheap, deterministic
  for (char& c : out) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c = static_cast<char>(x & 0xff);
  }
  return out;
}

absl::StatusOr<Workload> PrepareWorkload(
    const BenchOptions& options, const std::shared_ptr<grpc::Channel>& channel) {
  Workload w;
  w.op = options.op;
  const std::string payload =
      OpUsesPayload(options.op) ? MakePayload(options.size_bytes) : "";
  switch (options.op) {
    case Op::kPing: {
      // The whole server's health (""): the cheapest RPC the sidecar serves.
      auto stub = grpc::health::v1::Health::NewStub(channel);
      grpc::health::v1::HealthCheckResponse response;
      grpc::ClientContext context;
      SetDeadline(context, kSetupTimeout);
      if (absl::Status s = FromGrpc("grpc.health.v1.Health/Check",
                                    stub->Check(&context, w.ping, &response));
          !s.ok()) {
        return s;
      }
      if (response.status() !=
          grpc::health::v1::HealthCheckResponse::SERVING) {
        w.warnings.push_back(absl::StrCat(
            "the sidecar's health is ",
            grpc::health::v1::HealthCheckResponse::ServingStatus_Name(
                response.status()),
            " (measured anyway)"));
      }
      break;
    }
    case Op::kSessionGet:
    case Op::kSessionUpdate:
      if (absl::Status s = PrepareSession(options, channel, payload, w); !s.ok()) {
        return s;
      }
      break;
    case Op::kSessionCreate: {
      (*w.create.mutable_attributes())[kBenchAttribute] = payload;
      w.create.mutable_idle_ttl()->set_seconds(
          absl::ToInt64Seconds(kCreatedSessionIdleTtl));
      break;
    }
    case Op::kOptOutGet: {
      // A subject that is opted out, so every Get finds a stored flag.
      w.opt_out_subject = absl::StrCat("stateside-bench-", getpid());
      auto stub = v1::AnalyticsService::NewStub(channel);
      v1::SetOptOutRequest request;
      request.set_subject(w.opt_out_subject);
      request.set_opted_out(true);
      v1::SetOptOutResponse response;
      grpc::ClientContext context;
      SetDeadline(context, kSetupTimeout);
      if (absl::Status s = FromGrpc("setting the benchmark opt-out",
                                    stub->SetOptOut(&context, request, &response));
          !s.ok()) {
        return s;
      }
      w.opt_out_get.set_subject(w.opt_out_subject);
      break;
    }
    case Op::kEmpty:  // nothing behind it
      break;
    // Open-loop operations prepare their own state (RunRealtime).
    case Op::kRealtimeXInstance:
    case Op::kRealtimeFanout:
      break;
  }
  return w;
}

Workload FramesOnlyWorkload(const BenchOptions& options) {
  Workload w;
  w.op = options.op;
  v1::SessionKey key;
  SetKey(options.session.empty() ? std::string(43, 'B') : options.session, key);
  *w.get.mutable_key() = key;
  *w.update.mutable_key() = key;
  (*w.update.mutable_set())[kBenchAttribute] = MakePayload(options.size_bytes);
  return w;
}

void CleanupWorkload(const Workload& workload,
                     const std::shared_ptr<grpc::Channel>& channel,
                     absl::Duration timeout) {
  if (!workload.created_session_id.empty()) {
    auto stub = v1::SessionService::NewStub(channel);
    v1::DestroySessionRequest request;
    request.mutable_key()->set_id(workload.created_session_id);
    v1::DestroySessionResponse response;
    grpc::ClientContext context;
    SetDeadline(context, timeout);
    (void)stub->Destroy(&context, request, &response);
  }
  if (!workload.opt_out_subject.empty()) {
    auto stub = v1::AnalyticsService::NewStub(channel);
    v1::SetOptOutRequest request;
    request.set_subject(workload.opt_out_subject);
    request.set_opted_out(false);
    v1::SetOptOutResponse response;
    grpc::ClientContext context;
    SetDeadline(context, timeout);
    (void)stub->SetOptOut(&context, request, &response);
  }
}

}  // namespace stateside::bench
