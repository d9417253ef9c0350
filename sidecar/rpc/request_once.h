// A typed call through the request ledger (session/request_ledger.h): the
// operations with a request_id (Create, Regenerate, Publish) run through
// RunOnce, which applies the call at most once per request_id and answers a
// retry with the first response. Header-only; thread-safe as the ledger.
#ifndef STATESIDE_SIDECAR_RPC_REQUEST_ONCE_H_
#define STATESIDE_SIDECAR_RPC_REQUEST_ONCE_H_

#include <string>
#include <string_view>
#include <utility>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "sidecar/session/request_ledger.h"

namespace stateside::rpc {

// The request as its fingerprint covers it: serialized deterministically,
// without its request_id.
template <typename Request>
std::string FingerprintBody(const Request& request) {
  Request copy = request;
  copy.clear_request_id();
  std::string out;
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    copy.SerializeToCodedStream(&coded);
  }
  return out;
}

// Runs `run` (which fills *response and then calls its argument with the
// status) once per request_id: without a request_id (or a ledger) at once;
// else through the ledger, and `done` answers either this run's response or
// the first one's, parsed into *response. `method` and `scope` as
// RequestLedger::Call's.
template <typename Request, typename Response>
void RunOnce(const session::RequestLedger* ledger, std::string_view method,
             std::string_view scope, const Request& request, Response* response,
             absl::AnyInvocable<void(absl::AnyInvocable<void(absl::Status) &&>) &&> run,
             absl::AnyInvocable<void(absl::Status) &&> done) {
  if (ledger == nullptr || request.request_id().empty()) {
    return std::move(run)(std::move(done));
  }
  const std::string body = FingerprintBody(request);
  ledger->Once(
      {.method = method, .scope = scope, .request_id = request.request_id(), .body = body},
      [response, run = std::move(run)](session::RequestLedger::Reply reply) mutable {
        std::move(run)([response, reply = std::move(reply)](absl::Status status) mutable {
          if (!status.ok()) return std::move(reply)(status);
          std::move(reply)(response->SerializeAsString());
        });
      },
      [response, done = std::move(done)](session::RequestLedger::Answer answer) mutable {
        if (!answer.ok()) return std::move(done)(answer.status());
        if (!response->ParseFromString(*answer)) {
          return std::move(done)(absl::InternalError("request ledger: a stored answer did not parse"));
        }
        std::move(done)(absl::OkStatus());
      });
}

}  // namespace stateside::rpc

#endif  // STATESIDE_SIDECAR_RPC_REQUEST_ONCE_H_
