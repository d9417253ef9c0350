// SessionService.Pipe as the sidecar serves it, end to end: any bytes a
// client sends as one PipeRequest message (then half-closes) are answered on
// an in-process server (the sidecar's GrpcServer, memory stores, small
// limits) over a real channel on a Unix socket. The stream never crashes or
// hangs; it ends OK with exactly one result per call when the message's
// framing holds and it carries at most kMaxCallsPerMessage calls, and ends
// INVALID_ARGUMENT or RESOURCE_EXHAUSTED otherwise; every message the
// sidecar writes parses as a PipeResponse whose results carry a known code
// and, unless OK, a message.
#include <grpcpp/generic/generic_stub.h>
#include <google/protobuf/stubs/logging.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"
#include "sidecar/analytics/memory_opt_out_store.h"
#include "sidecar/analytics/opt_out_manager.h"
#include "sidecar/common/clock.h"
#include "sidecar/crypto/cookie.h"
#include "sidecar/crypto/envelope.h"
#include "sidecar/crypto/keyring.h"
#include "sidecar/crypto/random.h"
#include "sidecar/lifecycle/instance.h"
#include "sidecar/rpc/grpc_server.h"
#include "sidecar/rpc/pipe.h"
#include "sidecar/rpc/pipe_wire.h"
#include "sidecar/session/memory_store.h"
#include "sidecar/session/session_manager.h"
#include "stateside/v1/session.pb.h"
#include "tests/fuzz/fuzz_check.h"

namespace stateside {
namespace {

// The server's receive limit: an input is one message, and inputs above
// half of it are skipped (libFuzzer's default -max_len, 4096, is below).
constexpr size_t kMaxMessageBytes = 64 * 1024;

// Built once per process and never torn down (libFuzzer exits the process);
// its temp directory is removed at exit.
struct Sidecar {
  std::string dir;
  std::string socket_path;
  SystemClock clock;
  std::unique_ptr<RandomSource> random = crypto::NewSecureRandom();
  std::unique_ptr<crypto::Keyring> keyring;
  std::unique_ptr<crypto::Sealer> sealer;
  std::unique_ptr<crypto::CookieSigner> signer;
  session::MemorySessionStore session_store{10000};
  MemoryOptOutStore opt_out_store{10000};
  std::unique_ptr<session::SessionManager> sessions;
  std::unique_ptr<OptOutManager> opt_outs;
  std::unique_ptr<lifecycle::Instance> instance;
  std::unique_ptr<rpc::GrpcServer> server;
  std::shared_ptr<grpc::Channel> channel;
};

Sidecar& TheSidecar() {
  static Sidecar* sidecar = [] {
    // Each call with invalid UTF-8 is refused and logged by protobuf: quiet.
    google::protobuf::SetLogHandler(nullptr);
    auto* s = new Sidecar();
    char dir[] = "/tmp/stateside-pipe-fuzz-XXXXXX";
    FUZZ_CHECK(mkdtemp(dir) != nullptr);
    s->dir = dir;
    std::atexit([] { std::filesystem::remove_all(TheSidecar().dir); });
    s->socket_path = s->dir + "/api.sock";
    auto keyring = crypto::Keyring::Create({{"k0", std::string(32, '\x01')}});
    FUZZ_CHECK(keyring.ok());
    s->keyring = *std::move(keyring);
    s->sealer = std::make_unique<crypto::Sealer>(s->keyring.get(), s->random.get());
    auto signer = crypto::CookieSigner::Create({std::string(32, 's')});
    FUZZ_CHECK(signer.ok());
    s->signer = *std::move(signer);
    session::SessionPolicy policy;
    policy.idle_ttl = absl::Hours(1);
    policy.absolute_ttl = absl::Hours(8);
    policy.limits.max_attributes = 8;
    policy.limits.max_attribute_bytes = 1024;
    policy.limits.max_total_bytes = 4096;
    s->sessions = std::make_unique<session::SessionManager>(&s->session_store, s->sealer.get(),
                                                   s->signer.get(), s->random.get(),
                                                   &s->clock, policy);
    s->opt_outs = std::make_unique<OptOutManager>(&s->opt_out_store, s->keyring.get(),
                                                  &s->clock, absl::Hours(24));
    s->instance = std::make_unique<lifecycle::Instance>(
        lifecycle::InstanceIdentity{"fuzz", "host", 1, s->clock.Now(), "0"}, &s->clock);
    s->instance->set_backend("memory");
    s->instance->set_ready(true);
    rpc::GrpcServerOptions options;
    options.socket_path = s->socket_path;
    options.max_receive_message_bytes = kMaxMessageBytes;
    rpc::GrpcServices services;
    services.sessions = s->sessions.get();
    services.opt_outs = s->opt_outs.get();
    services.instance = s->instance.get();
    auto server = rpc::GrpcServer::Start(options, services);
    FUZZ_CHECK(server.ok());
    s->server = *std::move(server);
    s->server->SetServing(true);
    s->channel = grpc::CreateChannel("unix:" + s->socket_path,
                                     grpc::InsecureChannelCredentials());
    return s;
  }();
  return *sidecar;
}

// One step of the async generic call: the tag completes, in order.
bool Step(grpc::CompletionQueue& cq, intptr_t want) {
  void* tag = nullptr;
  bool ok = false;
  FUZZ_CHECK(cq.Next(&tag, &ok));
  FUZZ_CHECK(reinterpret_cast<intptr_t>(tag) == want);
  return ok;
}

int RunOne(const uint8_t* data, size_t size) {
  if (size > kMaxMessageBytes / 2) return -1;  // gRPC's own limit is not the target
  Sidecar& sidecar = TheSidecar();
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);

  // What the stream must do with this message, from the framing alone.
  std::vector<std::string_view> calls;
  const bool framed = rpc::SplitPipeRequest(bytes, &calls).ok();
  const bool accepted =
      framed && calls.size() <= static_cast<size_t>(rpc::PipeReactor::kMaxCallsPerMessage);

  grpc::GenericStub generic(sidecar.channel);
  grpc::CompletionQueue cq;
  grpc::ClientContext context;
  // A hang is a finding: the deadline turns it into a failed check.
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  auto call = generic.PrepareCall(&context, "/stateside.v1.SessionService/Pipe", &cq);
  call->StartCall(reinterpret_cast<void*>(1));
  FUZZ_CHECK(Step(cq, 1));
  grpc::Slice slice(bytes.data(), bytes.size());
  grpc::ByteBuffer buffer(&slice, 1);
  call->Write(buffer, reinterpret_cast<void*>(2));
  Step(cq, 2);  // may fail if the server already ended the stream
  call->WritesDone(reinterpret_cast<void*>(3));
  Step(cq, 3);
  size_t results = 0;
  while (true) {
    grpc::ByteBuffer in;
    call->Read(&in, reinterpret_cast<void*>(4));
    if (!Step(cq, 4)) break;
    std::vector<grpc::Slice> slices;
    FUZZ_CHECK(in.Dump(&slices).ok());
    std::string joined;
    for (const grpc::Slice& s : slices) {
      joined.append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
    v1::PipeResponse response;
    FUZZ_CHECK(response.ParseFromString(joined));
    for (const v1::PipeResult& r : response.results()) {
      FUZZ_CHECK(r.code() >= 0 && r.code() <= 16);
      FUZZ_CHECK(r.code() == 0 || !r.message().empty());
      ++results;
    }
  }
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  FUZZ_CHECK(Step(cq, 5));
  if (accepted) {
    FUZZ_CHECK(status.ok());
    FUZZ_CHECK(results == calls.size());
  } else {
    FUZZ_CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT ||
               status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
    FUZZ_CHECK(results <= calls.size());
  }
  cq.Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (cq.Next(&tag, &ok)) {
  }
  return 0;
}

}  // namespace
}  // namespace stateside

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return stateside::RunOne(data, size);
}
