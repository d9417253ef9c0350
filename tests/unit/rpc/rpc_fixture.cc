// The in-process RPC fixture, and SessionCaller.
#include "tests/unit/rpc/rpc_fixture.h"

#include <chrono>
#include <utility>

namespace stateside::rpc {
namespace {

// Per call: generous, but no test can hang on a call.
constexpr int kCallSeconds = 10;
// A Pipe stream lives for a test's calls.
constexpr int kStreamSeconds = 60;

std::unique_ptr<grpc::ClientContext> CallContext() {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() +
                        std::chrono::seconds(kCallSeconds));
  return context;
}

}  // namespace

std::string TransportName(const ::testing::TestParamInfo<Transport>& info) {
  return info.param == Transport::kUnary ? "Unary" : "Pipe";
}

void PrintTo(Transport transport, std::ostream* os) {
  *os << (transport == Transport::kUnary ? "Unary" : "Pipe");
}

// One Pipe stream. Its results and end are guarded by the owning caller's
// mu_ (not expressible as ABSL_GUARDED_BY here); the grpc++ stream allows one
// reader and one writer at a time: the reader is whichever caller set
// `reading`, writers take write_mu.
struct SessionCaller::Stream {
  grpc::ClientContext context;  // declared before rw: outlives it
  std::unique_ptr<grpc::ClientReaderWriter<v1::PipeRequest, v1::PipeResponse>> rw;

  absl::Mutex write_mu;
  // Finish() was called: no Write may follow.
  bool finished ABSL_GUARDED_BY(write_mu) = false;

  // Guarded by SessionCaller::mu_.
  bool reading = false;  // a caller is in rw->Read(), unlocked
  bool ended = false;    // Read() returned false and Finish() ran
  grpc::Status end_status;
  std::map<uint64_t, v1::PipeResult> arrived;  // read, not yet taken by its caller
  absl::CondVar changed;                       // `arrived`, `reading` or `ended` changed
};

SessionCaller::SessionCaller(Transport transport, v1::SessionService::Stub* sessions,
                             v1::AnalyticsService::Stub* analytics)
    : transport_(transport), sessions_(sessions), analytics_(analytics) {}

SessionCaller::~SessionCaller() {
  std::shared_ptr<Stream> stream;
  {
    absl::MutexLock lock(&mu_);
    if (stream_ == nullptr || stream_->ended) return;
    stream = std::move(stream_);
  }
  // Not closed (a failed SetUp or test): cancel rather than wait.
  stream->context.TryCancel();
  v1::PipeResponse response;
  while (stream->rw->Read(&response)) {
  }
  absl::MutexLock lock(&stream->write_mu);
  stream->rw->Finish();
  stream->finished = true;
}

grpc::Status SessionCaller::Close() {
  std::shared_ptr<Stream> stream;
  {
    absl::MutexLock lock(&mu_);
    if (stream_ == nullptr || stream_->ended) {
      stream_ = nullptr;
      return grpc::Status::OK;  // its end went to the calls it carried
    }
    stream = std::move(stream_);
  }
  // No call is in progress: nobody else reads or writes the stream.
  stream->rw->WritesDone();
  v1::PipeResponse response;
  while (stream->rw->Read(&response)) {
    for (const v1::PipeResult& result : response.results()) {
      ADD_FAILURE() << "Pipe answered call " << result.id() << " nobody waits for";
    }
  }
  absl::MutexLock lock(&stream->write_mu);
  stream->finished = true;
  return stream->rw->Finish();
}

void SessionCaller::ReadOnce(Stream* stream) {
  stream->reading = true;
  mu_.Unlock();
  v1::PipeResponse response;
  const bool ok = stream->rw->Read(&response);
  grpc::Status end;
  if (!ok) {
    absl::MutexLock lock(&stream->write_mu);
    end = stream->rw->Finish();
    stream->finished = true;
  }
  mu_.Lock();
  stream->reading = false;
  for (v1::PipeResult& result : *response.mutable_results()) {
    const uint64_t id = result.id();
    if (!stream->arrived.emplace(id, std::move(result)).second) {
      ADD_FAILURE() << "Pipe answered call " << id << " twice";
    }
  }
  if (!ok) {
    stream->ended = true;
    // We never half-close a stream with calls in flight, so an OK end here
    // left them unanswered.
    stream->end_status =
        end.ok() ? grpc::Status(grpc::StatusCode::INTERNAL, "Pipe ended OK, calls unanswered")
                 : end;
  }
  stream->changed.SignalAll();
}

v1::ErrorInfo ErrorInfoOf(const grpc::Status& status) {
  v1::RpcStatus details;
  v1::ErrorInfo info;
  if (!details.ParseFromString(status.error_details())) return info;
  for (const google::protobuf::Any& any : details.details()) {
    if (any.type_url() == "type.googleapis.com/google.rpc.ErrorInfo") {
      EXPECT_TRUE(info.ParseFromString(any.value()));
    }
  }
  return info;
}

grpc::Status SessionCaller::CallPipe(v1::PipeCall call, v1::PipeResult* result,
                                     bool* stream_ended) {
  std::shared_ptr<Stream> stream;
  {
    absl::MutexLock lock(&mu_);
    if (stream_ == nullptr || stream_->ended) {
      stream_ = std::make_shared<Stream>();
      stream_->context.set_deadline(std::chrono::system_clock::now() +
                                    std::chrono::seconds(kStreamSeconds));
      stream_->rw = sessions_->Pipe(&stream_->context);
    }
    stream = stream_;
    call.set_id(next_id_++);
  }
  const uint64_t id = call.id();
  const v1::PipeCall::OpCase op = call.op_case();
  call.mutable_timeout()->set_seconds(kCallSeconds);
  v1::PipeRequest request;
  *request.add_calls() = std::move(call);
  {
    absl::MutexLock lock(&stream->write_mu);
    // A failed write means the stream has ended; the reads below find out how.
    if (!stream->finished) stream->rw->Write(request);
  }

  absl::MutexLock lock(&mu_);
  while (true) {
    auto it = stream->arrived.find(id);
    if (it != stream->arrived.end()) {
      *result = std::move(it->second);
      stream->arrived.erase(it);
      break;
    }
    if (stream->ended) {
      *stream_ended = true;
      return stream->end_status;
    }
    if (stream->reading) {
      stream->changed.Wait(&mu_);
    } else {
      ReadOnce(stream.get());
    }
  }
  // As a unary status: the ErrorInfo in the details (what the client does).
  std::string details;
  if (result->has_error_info()) {
    v1::RpcStatus rpc_status;
    rpc_status.set_code(result->code());
    rpc_status.set_message(result->message());
    google::protobuf::Any* any = rpc_status.add_details();
    any->set_type_url("type.googleapis.com/google.rpc.ErrorInfo");
    result->error_info().SerializeToString(any->mutable_value());
    details = rpc_status.SerializeAsString();
  }
  const grpc::Status status(static_cast<grpc::StatusCode>(result->code()), result->message(),
                            details);
  // PipeResult's response fields carry the numbers of PipeCall's ops.
  const bool answered = static_cast<int>(result->response_case()) == static_cast<int>(op);
  if (status.ok() && !answered) {
    ADD_FAILURE() << "Pipe result " << id << " is OK without its response: "
                  << result->ShortDebugString();
  }
  if (!status.ok() && result->response_case() != v1::PipeResult::RESPONSE_NOT_SET) {
    ADD_FAILURE() << "Pipe result " << id << " is an error with a response: "
                  << result->ShortDebugString();
  }
  return status;
}

// One operation: its unary RPC on `stub`, or the PipeCall field `op` and the
// PipeResult field `answer` (mutable accessors) over the stream.
template <typename Stub, typename Request, typename Response>
grpc::Status SessionCaller::Call(Stub* stub,
                                 grpc::Status (Stub::*unary)(grpc::ClientContext*,
                                                             const Request&, Response*),
                                 Request* (v1::PipeCall::*op)(),
                                 Response* (v1::PipeResult::*answer)(),
                                 const Request& request, Response* response) {
  if (transport_ == Transport::kUnary) {
    return (stub->*unary)(CallContext().get(), request, response);
  }
  v1::PipeCall call;
  *(call.*op)() = request;
  v1::PipeResult result;
  bool stream_ended = false;
  const grpc::Status status = CallPipe(std::move(call), &result, &stream_ended);
  if (status.ok()) {
    response->Swap((result.*answer)());
    return status;
  }
  // Each Pipe error is checked against the unary RPC's for the same request
  // (errors change nothing, so asking again is harmless): same code, and the
  // same message unless it is the stream's own end (gRPC's, e.g. a size
  // limit naming the message's size).
  Response unary_response;
  const grpc::Status unary_status = (stub->*unary)(CallContext().get(), request, &unary_response);
  EXPECT_EQ(status.error_code(), unary_status.error_code())
      << "Pipe: " << status.error_message() << "; unary: " << unary_status.error_message()
      << "; request: " << request.ShortDebugString();
  if (!stream_ended) {
    EXPECT_EQ(status.error_message(), unary_status.error_message())
        << "request: " << request.ShortDebugString();
  }
  return status;
}

grpc::Status SessionCaller::Create(const v1::CreateSessionRequest& request,
                                   v1::CreateSessionResponse* response) {
  return Call(sessions_, &v1::SessionService::Stub::Create, &v1::PipeCall::mutable_create,
              &v1::PipeResult::mutable_create, request, response);
}

grpc::Status SessionCaller::Get(const v1::GetSessionRequest& request,
                                v1::GetSessionResponse* response) {
  return Call(sessions_, &v1::SessionService::Stub::Get, &v1::PipeCall::mutable_get,
              &v1::PipeResult::mutable_get, request, response);
}

grpc::Status SessionCaller::Update(const v1::UpdateSessionRequest& request,
                                   v1::UpdateSessionResponse* response) {
  return Call(sessions_, &v1::SessionService::Stub::Update, &v1::PipeCall::mutable_update,
              &v1::PipeResult::mutable_update, request, response);
}

grpc::Status SessionCaller::Touch(const v1::TouchSessionRequest& request,
                                  v1::TouchSessionResponse* response) {
  return Call(sessions_, &v1::SessionService::Stub::Touch, &v1::PipeCall::mutable_touch,
              &v1::PipeResult::mutable_touch, request, response);
}

grpc::Status SessionCaller::Destroy(const v1::DestroySessionRequest& request,
                                    v1::DestroySessionResponse* response) {
  return Call(sessions_, &v1::SessionService::Stub::Destroy, &v1::PipeCall::mutable_destroy,
              &v1::PipeResult::mutable_destroy, request, response);
}

grpc::Status SessionCaller::Regenerate(const v1::RegenerateSessionRequest& request,
                                       v1::RegenerateSessionResponse* response) {
  return Call(sessions_, &v1::SessionService::Stub::Regenerate,
              &v1::PipeCall::mutable_regenerate, &v1::PipeResult::mutable_regenerate, request,
              response);
}

grpc::Status SessionCaller::ListUserSessions(const v1::ListUserSessionsRequest& request,
                                             v1::ListUserSessionsResponse* response) {
  return Call(sessions_, &v1::SessionService::Stub::ListUserSessions,
              &v1::PipeCall::mutable_list_user_sessions,
              &v1::PipeResult::mutable_list_user_sessions, request, response);
}

grpc::Status SessionCaller::DestroyUserSessions(const v1::DestroyUserSessionsRequest& request,
                                                v1::DestroyUserSessionsResponse* response) {
  return Call(sessions_, &v1::SessionService::Stub::DestroyUserSessions,
              &v1::PipeCall::mutable_destroy_user_sessions,
              &v1::PipeResult::mutable_destroy_user_sessions, request, response);
}

grpc::Status SessionCaller::SetOptOut(const v1::SetOptOutRequest& request,
                                      v1::SetOptOutResponse* response) {
  return Call(analytics_, &v1::AnalyticsService::Stub::SetOptOut,
              &v1::PipeCall::mutable_set_opt_out, &v1::PipeResult::mutable_set_opt_out,
              request, response);
}

grpc::Status SessionCaller::GetOptOut(const v1::GetOptOutRequest& request,
                                      v1::GetOptOutResponse* response) {
  return Call(analytics_, &v1::AnalyticsService::Stub::GetOptOut,
              &v1::PipeCall::mutable_get_opt_out, &v1::PipeResult::mutable_get_opt_out,
              request, response);
}

void RpcTest::SetUp() {
  socket_path_ = dir_.File("api.sock");
  random_ = crypto::NewSecureRandom();
  auto keyring = crypto::Keyring::Create({{"k0", std::string(32, '\x01')}});
  ASSERT_TRUE(keyring.ok()) << keyring.status();
  keyring_ = *std::move(keyring);
  sealer_ = std::make_unique<crypto::Sealer>(keyring_.get(), random_.get());
  auto signer = crypto::CookieSigner::Create({std::string(32, 's')});
  ASSERT_TRUE(signer.ok()) << signer.status();
  signer_ = *std::move(signer);
  session_store_ = std::make_unique<session::MemorySessionStore>(1000);
  opt_out_store_ = std::make_unique<MemoryOptOutStore>(1000);
  session::SessionPolicy policy;
  policy.idle_ttl = absl::Hours(1);
  policy.absolute_ttl = absl::Hours(8);
  policy.limits.max_attributes = kMaxAttributes;
  policy.limits.max_attribute_bytes = kMaxAttributeBytes;
  policy.limits.max_total_bytes = kMaxSessionBytes;
  sessions_ = std::make_unique<session::SessionManager>(session_store_.get(), sealer_.get(),
                                               signer_.get(), random_.get(),
                                               &clock_, policy);
  opt_outs_ = std::make_unique<OptOutManager>(opt_out_store_.get(),
                                              keyring_.get(), &clock_,
                                              absl::Hours(24 * 365));
  request_store_ = std::make_unique<session::MemoryRequestStore>(1000);
  requests_ = std::make_unique<session::RequestLedger>(request_store_.get(), keyring_.get(),
                                                       sealer_.get(), random_.get(), &clock_,
                                                       absl::Minutes(10));
  lifecycle::InstanceIdentity identity{"rpc-test", "host", 42, clock_.Now(),
                                       "9.9.9"};
  instance_ = std::make_unique<lifecycle::Instance>(identity, &clock_);
  instance_->set_backend("memory");
  instance_->set_ready(true);

  GrpcServerOptions options;
  options.socket_path = socket_path_;
  options.max_receive_message_bytes = kMaxMessageBytes;
  options.offload_threads = offload_threads_;
  options.offload_queue = offload_queue_;
  GrpcServices services;
  services.sessions = sessions_.get();
  services.opt_outs = opt_outs_.get();
  services.requests = requests_.get();
  services.instance = instance_.get();
  services.drain = drain_;
  services.poke = poke_;
  services.metrics = metrics_;
  services.realtime_hub = realtime_hub_;
  services.realtime_broker = realtime_broker_;
  services.session_changes = session_changes_;
  sessions_->SetChangeSink(session_changes_);
  auto server = GrpcServer::Start(options, services);
  ASSERT_TRUE(server.ok()) << server.status();
  server_ = *std::move(server);
  server_->SetServing(true);

  channel_ = grpc::CreateChannel("unix:" + socket_path_,
                                 grpc::InsecureChannelCredentials());
  session_stub_ = v1::SessionService::NewStub(channel_);
  analytics_stub_ = v1::AnalyticsService::NewStub(channel_);
  lifecycle_stub_ = v1::LifecycleService::NewStub(channel_);
  health_stub_ = grpc::health::v1::Health::NewStub(channel_);
  calls_ = std::make_unique<SessionCaller>(transport_, session_stub_.get(),
                                           analytics_stub_.get());
}

void RpcTest::TearDown() {
  // Before the server goes, so its stream ends in order, not by shutdown.
  if (calls_ != nullptr) {
    const grpc::Status closed = calls_->Close();
    EXPECT_TRUE(closed.ok()) << "Pipe stream ended " << closed.error_code() << ": "
                             << closed.error_message();
    calls_.reset();
  }
  if (server_ != nullptr) server_->Shutdown(absl::Now() + absl::Seconds(5));
}

std::unique_ptr<grpc::ClientContext> RpcTest::Context() {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  return context;
}

v1::Session RpcTest::CreateSession(const std::string& user,
                                   std::map<std::string, std::string> attributes) {
  v1::CreateSessionRequest request;
  request.set_user_id(user);
  for (auto& [name, value] : attributes) (*request.mutable_attributes())[name] = value;
  v1::CreateSessionResponse response;
  const grpc::Status status = calls_->Create(request, &response);
  EXPECT_TRUE(status.ok()) << status.error_code() << " " << status.error_message();
  return response.session();
}

v1::SessionKey RpcTest::IdKey(const v1::Session& session) {
  v1::SessionKey key;
  key.set_id(session.metadata().id());
  return key;
}

v1::SessionKey RpcTest::CookieKey(const v1::Session& session) {
  v1::SessionKey key;
  key.set_cookie(session.cookie());
  return key;
}

}  // namespace stateside::rpc
