#include "tests/bench/client_transport.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "stateside/client.h"

namespace stateside::bench {
namespace {

SessionRef RefFromKey(const v1::SessionKey& key) {
  return key.kind_case() == v1::SessionKey::kCookie ? SessionRef::Cookie(key.cookie())
                                                    : SessionRef::Id(key.id());
}

grpc::StatusCode Code(const absl::Status& status) {
  // absl and gRPC share the numbering.
  return static_cast<grpc::StatusCode>(status.code());
}

class ClientTransport final : public Transport {
 public:
  ClientTransport(std::unique_ptr<Client> client, const Workload& w, CompletionSink* sink)
      : client_(std::move(client)), w_(w), sink_(sink) {
    if (w.op == Op::kSessionGet) ref_ = RefFromKey(w.get.key());
    if (w.op == Op::kSessionUpdate) {
      ref_ = RefFromKey(w.update.key());
      for (const auto& [name, value] : w.update.set()) set_[name] = value;
    }
    if (w.op == Op::kSessionCreate) {
      for (const auto& [name, value] : w.create.attributes()) create_[name] = value;
    }
  }

  void Issue(size_t slot) override {
    auto done = [this, slot](const auto& result) { sink_->OnCallDone(slot, Code(result.status())); };
    switch (w_.op) {
      case Op::kSessionGet:
        return client_->GetSessionAsync(ref_, !w_.get.has_touch() || w_.get.touch(), done);
      case Op::kSessionUpdate:
        return client_->UpdateSessionAsync(ref_, set_, {}, std::nullopt, done);
      case Op::kSessionCreate:
        return client_->CreateSessionAsync(w_.create.user_id(), create_, {}, done);
      case Op::kOptOutGet:
        return client_->GetOptOutAsync(w_.opt_out_get.subject(), done);
      default:  // refused by MakeClientTransport
        return sink_->OnCallDone(slot, grpc::StatusCode::UNIMPLEMENTED);
    }
  }

 private:
  const std::unique_ptr<Client> client_;
  const Workload& w_;
  CompletionSink* const sink_;
  SessionRef ref_;
  Attributes set_;
  Attributes create_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Transport>> MakeClientTransport(
    TransportParams params, const std::string& socket_path, int streams, bool frames) {
  const Op op = params.workload->op;
  if (op != Op::kSessionGet && op != Op::kSessionUpdate && op != Op::kSessionCreate &&
      op != Op::kOptOutGet) {
    return absl::UnimplementedError(
        "the client transports carry session-get, session-update, session-create and "
        "optout-get");
  }
  ClientOptions options;
  options.socket_path = socket_path;
  options.call_timeout = params.call_timeout;
  options.ready_timeout = params.call_timeout;
  options.streams = streams;
  options.frames = frames;
  // Room for every slot's call on one stream.
  options.max_calls_per_stream = static_cast<int>(std::max<size_t>(params.slots, 1));
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(options);
  if (!client.ok()) return client.status();
  return std::unique_ptr<Transport>(
      new ClientTransport(*std::move(client), *params.workload, params.sink));
}

}  // namespace stateside::bench
