// FakePipeSidecar: a scripted SessionService.Pipe on gRPC's callback API.
//
// The callback API rather than a synchronous handler: ending a stream with a
// chosen status while the client still sends (the "killed mid-batch" case)
// needs Finish with a read outstanding, which grpc++ allows for reactors
// (the pending read ends with ok=false); a synchronous handler blocked in
// Read() could only be cancelled.
#include "tests/unit/client/fake_pipe_sidecar.h"

#include <algorithm>
#include <utility>

#include "grpc/health/v1/health.grpc.pb.h"
#include "stateside/v1/session.grpc.pb.h"

namespace stateside::testing {
namespace {

using HealthResponse = grpc::health::v1::HealthCheckResponse;

std::string KeyString(const v1::SessionKey& key) {
  return key.has_cookie() ? key.cookie() : key.id();
}

std::string KeyOf(const v1::PipeCall& call) {
  switch (call.op_case()) {
    case v1::PipeCall::kCreate: return call.create().user_id();
    case v1::PipeCall::kGet: return KeyString(call.get().key());
    case v1::PipeCall::kUpdate: return KeyString(call.update().key());
    case v1::PipeCall::kTouch: return KeyString(call.touch().key());
    case v1::PipeCall::kDestroy: return KeyString(call.destroy().key());
    case v1::PipeCall::kRegenerate: return KeyString(call.regenerate().key());
    case v1::PipeCall::kListUserSessions: return call.list_user_sessions().user_id();
    case v1::PipeCall::kDestroyUserSessions: return call.destroy_user_sessions().user_id();
    case v1::PipeCall::kSetOptOut: return call.set_opt_out().subject();
    case v1::PipeCall::kGetOptOut: return call.get_opt_out().subject();
    case v1::PipeCall::OP_NOT_SET: break;
  }
  return "";
}

v1::Session EchoSession(const std::string& id, uint64_t call_id) {
  v1::Session s;
  s.mutable_metadata()->set_id(id);
  s.mutable_metadata()->set_version(1);
  (*s.mutable_attributes())["key"] = id;
  (*s.mutable_attributes())["call"] = std::to_string(call_id);
  s.set_cookie(id + ".sig");
  return s;
}

}  // namespace

// Per stream; shared by the fake (which keeps it after the stream ends, for
// the counters) and the reactor. Guarded by FakePipeSidecar::mu_.
struct FakePipeSidecar::StreamState {
  int index = 0;
  Stream* reactor = nullptr;  // alive until Finish has been called and OnDone ran
  int calls = 0;
  std::vector<v1::PipeResult> to_write;  // answered, not yet in a write
  v1::PipeResponse in_write;  // the write in flight (untouched until OnWriteDone)
  bool writing = false;
  // A StartRead is about to be made: Finish must wait for it (no Start*
  // after Finish).
  bool starting_read = false;
  bool read_closed = false;    // the client half-closed, or the read failed
  bool cancelled = false;      // the client went, or a write failed
  bool end_requested = false;  // EndStream
  grpc::Status end_status;
  bool finished = false;  // Finish called
  bool done = false;      // OnDone ran
};

class FakePipeSidecar::Stream final
    : public grpc::ServerBidiReactor<v1::PipeRequest, v1::PipeResponse> {
 public:
  Stream(FakePipeSidecar* fake, std::shared_ptr<StreamState> state, bool read)
      : fake_(fake), state_(std::move(state)) {
    StartSendInitialMetadata();  // the limit, as the sidecar announces it
    if (read) {
      StartRead(&request_);
      fake_->ReadStarted(state_);
    }
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      {
        absl::MutexLock lock(&fake_->mu_);
        state_->read_closed = true;
      }
      fake_->Pump(state_);
      return;
    }
    if (fake_->OnRead(state_, request_)) {
      StartRead(&request_);
      fake_->ReadStarted(state_);
    } else {
      fake_->Pump(state_);
    }
  }

  void OnWriteDone(bool ok) override {
    {
      absl::MutexLock lock(&fake_->mu_);
      state_->writing = false;
      state_->in_write.Clear();
      if (!ok) state_->cancelled = true;
    }
    fake_->Pump(state_);
  }

  void OnCancel() override {
    {
      absl::MutexLock lock(&fake_->mu_);
      state_->cancelled = true;
    }
    fake_->Pump(state_);
  }

  void OnDone() override {
    {
      absl::MutexLock lock(&fake_->mu_);
      state_->done = true;
      state_->reactor = nullptr;
      --fake_->open_streams_;
    }
    delete this;
  }

 private:
  FakePipeSidecar* const fake_;
  const std::shared_ptr<StreamState> state_;
  v1::PipeRequest request_;  // owned by the pending read
};

struct FakePipeSidecar::Services {
  class Session final
      : public v1::SessionService::WithCallbackMethod_Pipe<v1::SessionService::Service> {
   public:
    explicit Session(FakePipeSidecar* fake) : fake_(fake) {}
    grpc::ServerBidiReactor<v1::PipeRequest, v1::PipeResponse>* Pipe(
        grpc::CallbackServerContext* context) override {
      size_t announced;
      {
        absl::MutexLock lock(&fake_->mu_);
        announced = fake_->announced_max_message_bytes_;
      }
      context->AddInitialMetadata("stateside-max-message-bytes", std::to_string(announced));
      return fake_->OpenStream();
    }
    grpc::Status Get(grpc::ServerContext*, const v1::GetSessionRequest* request,
                     v1::GetSessionResponse* response) override {
      {
        absl::MutexLock lock(&fake_->mu_);
        ++fake_->unary_gets_;
      }
      *response->mutable_session() = EchoSession(KeyString(request->key()), 0);
      return grpc::Status::OK;
    }

   private:
    FakePipeSidecar* const fake_;
  };

  class Health final : public grpc::health::v1::Health::Service {
   public:
    grpc::Status Check(grpc::ServerContext*, const grpc::health::v1::HealthCheckRequest*,
                       HealthResponse* response) override {
      response->set_status(HealthResponse::SERVING);
      return grpc::Status::OK;
    }
  };

  explicit Services(FakePipeSidecar* fake) : session(fake) {}
  Session session;
  Health health;
};

FakePipeSidecar::FakePipeSidecar() = default;

absl::StatusOr<std::unique_ptr<FakePipeSidecar>> FakePipeSidecar::Start(
    const std::string& socket_path) {
  std::unique_ptr<FakePipeSidecar> fake(new FakePipeSidecar());
  fake->services_ = std::make_unique<Services>(fake.get());
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix:" + socket_path, grpc::InsecureServerCredentials());
  builder.RegisterService(&fake->services_->session);
  builder.RegisterService(&fake->services_->health);
  fake->server_ = builder.BuildAndStart();
  if (fake->server_ == nullptr) {
    return absl::InternalError("fake pipe sidecar failed to start on " + socket_path);
  }
  return fake;
}

FakePipeSidecar::~FakePipeSidecar() {
  if (server_ == nullptr) return;
  // Cancels every stream: each reactor then finishes (OnCancel → Pump) and
  // deletes itself. Wait for that, since the reactors point at this object.
  server_->Shutdown(std::chrono::system_clock::now());
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(
                           +[](int* open) { return *open == 0; }, &open_streams_),
                       absl::Seconds(30));
}

FakePipeSidecar::Stream* FakePipeSidecar::OpenStream() {
  auto state = std::make_shared<StreamState>();
  bool read;
  {
    absl::MutexLock lock(&mu_);
    state->index = static_cast<int>(streams_.size());
    streams_.push_back(state);
    ++open_streams_;
    read = mode_ != Mode::kNeverRead;
    state->starting_read = read;
  }
  auto* stream = new Stream(this, state, read);
  {
    absl::MutexLock lock(&mu_);
    state->reactor = stream;
  }
  return stream;
}

bool FakePipeSidecar::OnRead(const std::shared_ptr<StreamState>& state,
                             const v1::PipeRequest& request) {
  absl::MutexLock lock(&mu_);
  ++requests_read_;
  max_calls_per_request_ = std::max(max_calls_per_request_, request.calls_size());
  max_request_bytes_ = std::max(max_request_bytes_, request.ByteSizeLong());
  for (const v1::PipeCall& call : request.calls()) {
    ReceivedCall r;
    r.stream = state->index;
    r.id = call.id();
    r.op = call.op_case();
    r.timeout = absl::Seconds(call.timeout().seconds()) +
                absl::Nanoseconds(call.timeout().nanos());
    r.key = KeyOf(call);
    received_.push_back(r);
    ++state->calls;
    if (mode_ == Mode::kAnswer) {
      state->to_write.push_back(CannedResult(call));
    } else {
      held_.push_back(std::move(r));
      held_calls_.push_back(call);
    }
  }
  const bool again = mode_ != Mode::kNeverRead && !state->finished && !state->cancelled &&
                     !state->end_requested;
  state->starting_read = again;
  return again;
}

void FakePipeSidecar::ReadStarted(const std::shared_ptr<StreamState>& state) {
  {
    absl::MutexLock lock(&mu_);
    state->starting_read = false;
  }
  Pump(state);
}

bool FakePipeSidecar::Owes(const StreamState& state) const {
  return std::any_of(held_.begin(), held_.end(),
                     [&](const ReceivedCall& c) { return c.stream == state.index; });
}

void FakePipeSidecar::Pump(const std::shared_ptr<StreamState>& state) {
  Stream* reactor = nullptr;
  bool write = false;
  grpc::Status finish_status;
  {
    absl::MutexLock lock(&mu_);
    // The reactor is not there yet while OpenStream constructs it; it pumps
    // again once its first read is started.
    if (state->finished || state->writing || state->starting_read ||
        state->reactor == nullptr) {
      return;
    }
    if (!state->cancelled && !state->to_write.empty()) {
      for (v1::PipeResult& r : state->to_write) *state->in_write.add_results() = std::move(r);
      state->to_write.clear();
      state->writing = true;
      write = true;
    } else if (state->cancelled || state->end_requested || (state->read_closed && !Owes(*state))) {
      // The client half-closed and nothing is owed: end OK, as the sidecar does.
      state->finished = true;
      finish_status = state->cancelled
                          ? grpc::Status(grpc::StatusCode::CANCELLED, "cancelled")
                          : state->end_status;
    } else {
      return;
    }
    reactor = state->reactor;
  }
  // Unlocked (grpc++ may run reactions inline). The reactor stays alive:
  // OnDone cannot come before Finish, and no one else finishes while
  // `writing` is set.
  if (write) {
    reactor->StartWrite(&state->in_write);
  } else {
    reactor->Finish(finish_status);
  }
}

void FakePipeSidecar::SetMode(Mode mode) {
  absl::MutexLock lock(&mu_);
  mode_ = mode;
}

bool FakePipeSidecar::Answer(const ReceivedCall& call, grpc::StatusCode code,
                             const std::string& message) {
  std::shared_ptr<StreamState> state;
  {
    absl::MutexLock lock(&mu_);
    size_t i = 0;
    while (i < held_.size() && (held_[i].stream != call.stream || held_[i].id != call.id)) ++i;
    if (i == held_.size()) return false;
    v1::PipeResult result;
    if (code == grpc::StatusCode::OK) {
      result = CannedResult(held_calls_[i]);
    } else {
      result.set_id(call.id);
      result.set_code(code);
      result.set_message(message);
    }
    held_.erase(held_.begin() + static_cast<std::ptrdiff_t>(i));
    held_calls_.erase(held_calls_.begin() + static_cast<std::ptrdiff_t>(i));
    state = streams_[static_cast<size_t>(call.stream)];
    state->to_write.push_back(std::move(result));
  }
  Pump(state);
  return true;
}

void FakePipeSidecar::EndStream(int stream, grpc::Status status) {
  std::shared_ptr<StreamState> state;
  {
    absl::MutexLock lock(&mu_);
    if (stream < 0 || stream >= static_cast<int>(streams_.size())) return;
    state = streams_[static_cast<size_t>(stream)];
    state->end_requested = true;
    state->end_status = std::move(status);
    for (size_t i = held_.size(); i-- > 0;) {
      if (held_[i].stream != stream) continue;
      held_.erase(held_.begin() + static_cast<std::ptrdiff_t>(i));
      held_calls_.erase(held_calls_.begin() + static_cast<std::ptrdiff_t>(i));
    }
  }
  Pump(state);
}

std::vector<FakePipeSidecar::ReceivedCall> FakePipeSidecar::held() const {
  absl::MutexLock lock(&mu_);
  return held_;
}

std::vector<FakePipeSidecar::ReceivedCall> FakePipeSidecar::received() const {
  absl::MutexLock lock(&mu_);
  return received_;
}

int FakePipeSidecar::streams_opened() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(streams_.size());
}

int FakePipeSidecar::open_streams() const {
  absl::MutexLock lock(&mu_);
  return open_streams_;
}

int FakePipeSidecar::calls_on_stream(int stream) const {
  absl::MutexLock lock(&mu_);
  if (stream < 0 || stream >= static_cast<int>(streams_.size())) return 0;
  return streams_[static_cast<size_t>(stream)]->calls;
}

size_t FakePipeSidecar::max_request_bytes() const {
  absl::MutexLock lock(&mu_);
  return max_request_bytes_;
}

void FakePipeSidecar::SetAnnouncedMaxMessageBytes(size_t bytes) {
  absl::MutexLock lock(&mu_);
  announced_max_message_bytes_ = bytes;
}

int FakePipeSidecar::max_calls_per_request() const {
  absl::MutexLock lock(&mu_);
  return max_calls_per_request_;
}

int FakePipeSidecar::requests_read() const {
  absl::MutexLock lock(&mu_);
  return requests_read_;
}

int FakePipeSidecar::unary_gets() const {
  absl::MutexLock lock(&mu_);
  return unary_gets_;
}

v1::PipeResult FakePipeSidecar::CannedResult(const v1::PipeCall& call) {
  v1::PipeResult r;
  r.set_id(call.id());
  r.set_code(grpc::StatusCode::OK);
  const std::string key = KeyOf(call);
  switch (call.op_case()) {
    case v1::PipeCall::kCreate:
      *r.mutable_create()->mutable_session() = EchoSession("created-" + key, call.id());
      r.mutable_create()->mutable_session()->mutable_metadata()->set_user_id(key);
      break;
    case v1::PipeCall::kGet:
      *r.mutable_get()->mutable_session() = EchoSession(key, call.id());
      break;
    case v1::PipeCall::kUpdate: {
      v1::SessionMetadata* m = r.mutable_update()->mutable_metadata();
      m->set_id(key);
      m->set_version(static_cast<uint64_t>(call.update().set_size()));
      break;
    }
    case v1::PipeCall::kTouch:
      r.mutable_touch()->mutable_metadata()->set_id(key);
      break;
    case v1::PipeCall::kDestroy:
      r.mutable_destroy()->set_existed(true);
      break;
    case v1::PipeCall::kRegenerate:
      *r.mutable_regenerate()->mutable_session() = EchoSession("regenerated-" + key, call.id());
      break;
    case v1::PipeCall::kListUserSessions:
      r.mutable_list_user_sessions()->add_sessions()->set_user_id(key);
      break;
    case v1::PipeCall::kDestroyUserSessions:
      r.mutable_destroy_user_sessions()->set_destroyed(1);
      break;
    case v1::PipeCall::kSetOptOut:
      r.mutable_set_opt_out();
      break;
    case v1::PipeCall::kGetOptOut:
      r.mutable_get_opt_out()->set_opted_out(true);
      break;
    case v1::PipeCall::OP_NOT_SET:
      r.set_code(grpc::StatusCode::INVALID_ARGUMENT);
      r.set_message("no operation");
      break;
  }
  return r;
}

}  // namespace stateside::testing
