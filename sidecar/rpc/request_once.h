// A typed call through the request ledger (session/request_ledger.h): the
// operations with a request_id (Create, Regenerate, Publish) run through
// RunOnce, which applies the call at most once per request_id and answers a
// retry with the first response. Header-only; thread-safe as the ledger.
#ifndef STATESIDE_SIDECAR_RPC_REQUEST_ONCE_H_
#define STATESIDE_SIDECAR_RPC_REQUEST_ONCE_H_

#include <optional>
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

// What the ledger keys a call with a request_id by, taken from the request
// while it is at hand (an offloaded call runs after the request is gone).
struct OnceClaim {
  std::string method;
  std::string scope;
  std::string request_id;
  std::string body;  // FingerprintBody
};

// INVALID_ARGUMENT if `request` carries a request_id the ledger would refuse
// (RequestLedger::ValidateRequestId); checked before a call is queued, so a
// malformed one is answered as such even when the pool is full.
template <typename Request>
absl::Status CheckRequestId(const session::RequestLedger* ledger, const Request& request) {
  if (ledger == nullptr || request.request_id().empty()) return absl::OkStatus();
  return session::RequestLedger::ValidateRequestId(request.request_id());
}

// The claim of `request`, or nullopt when it runs unconditionally (no
// request_id, or no ledger). `method` and `scope` as RequestLedger::Call's.
template <typename Request>
std::optional<OnceClaim> ClaimOf(const session::RequestLedger* ledger, std::string_view method,
                                 std::string_view scope, const Request& request) {
  if (ledger == nullptr || request.request_id().empty()) return std::nullopt;
  return OnceClaim{std::string(method), std::string(scope), request.request_id(),
                   FingerprintBody(request)};
}

// Runs `run` (which fills *response and then calls its argument with the
// status) once per request_id: without a claim at once; else through the
// ledger, and `done` answers either this run's response or the first one's,
// parsed into *response. The ledger's claim blocks the calling thread.
template <typename Response>
void RunOnce(const session::RequestLedger* ledger, const std::optional<OnceClaim>& claim,
             Response* response,
             absl::AnyInvocable<void(absl::AnyInvocable<void(absl::Status) &&>) &&> run,
             absl::AnyInvocable<void(absl::Status) &&> done) {
  if (ledger == nullptr || !claim.has_value()) return std::move(run)(std::move(done));
  ledger->Once(
      {.method = claim->method, .scope = claim->scope, .request_id = claim->request_id,
       .body = claim->body},
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

// The same, with the claim taken from `request` (ClaimOf).
template <typename Request, typename Response>
void RunOnce(const session::RequestLedger* ledger, std::string_view method,
             std::string_view scope, const Request& request, Response* response,
             absl::AnyInvocable<void(absl::AnyInvocable<void(absl::Status) &&>) &&> run,
             absl::AnyInvocable<void(absl::Status) &&> done) {
  RunOnce(ledger, ClaimOf(ledger, method, scope, request), response, std::move(run),
          std::move(done));
}

}  // namespace stateside::rpc

#endif  // STATESIDE_SIDECAR_RPC_REQUEST_ONCE_H_
