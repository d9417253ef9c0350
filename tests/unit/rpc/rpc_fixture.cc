// The in-process RPC fixture.
#include "tests/unit/rpc/rpc_fixture.h"

#include <chrono>

namespace stateside::rpc {

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
  session_store_ = std::make_unique<MemorySessionStore>(1000);
  opt_out_store_ = std::make_unique<MemoryOptOutStore>(1000);
  SessionPolicy policy;
  policy.idle_ttl = absl::Hours(1);
  policy.absolute_ttl = absl::Hours(8);
  policy.limits.max_attributes = kMaxAttributes;
  policy.limits.max_attribute_bytes = kMaxAttributeBytes;
  policy.limits.max_total_bytes = kMaxSessionBytes;
  sessions_ = std::make_unique<SessionManager>(session_store_.get(), sealer_.get(),
                                               signer_.get(), random_.get(),
                                               &clock_, policy);
  opt_outs_ = std::make_unique<OptOutManager>(opt_out_store_.get(),
                                              keyring_.get(), &clock_,
                                              absl::Hours(24 * 365));
  lifecycle::InstanceIdentity identity{"rpc-test", "host", 42, clock_.Now(),
                                       "9.9.9"};
  instance_ = std::make_unique<lifecycle::Instance>(identity, &clock_);
  instance_->set_backend("memory");
  instance_->set_ready(true);

  GrpcServerOptions options;
  options.socket_path = socket_path_;
  options.max_receive_message_bytes = kMaxMessageBytes;
  GrpcServices services;
  services.sessions = sessions_.get();
  services.opt_outs = opt_outs_.get();
  services.instance = instance_.get();
  services.drain = drain_;
  services.poke = poke_;
  services.metrics = metrics_;
  services.realtime_hub = realtime_hub_;
  services.realtime_broker = realtime_broker_;
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
}

void RpcTest::TearDown() {
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
  const grpc::Status status = session_stub_->Create(Context().get(), request, &response);
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
