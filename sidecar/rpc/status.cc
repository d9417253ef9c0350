// absl::Status -> grpc::Status.
#include "sidecar/rpc/status.h"

#include <string>

#include "absl/strings/ascii.h"
#include "sidecar/common/error_reason.h"
#include "spdlog/spdlog.h"

namespace stateside::rpc {
namespace {

grpc::StatusCode ToGrpcCode(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return grpc::StatusCode::OK;
    case absl::StatusCode::kCancelled:
      return grpc::StatusCode::CANCELLED;
    case absl::StatusCode::kUnknown:
      return grpc::StatusCode::UNKNOWN;
    case absl::StatusCode::kInvalidArgument:
      return grpc::StatusCode::INVALID_ARGUMENT;
    case absl::StatusCode::kDeadlineExceeded:
      return grpc::StatusCode::DEADLINE_EXCEEDED;
    case absl::StatusCode::kNotFound:
      return grpc::StatusCode::NOT_FOUND;
    case absl::StatusCode::kAlreadyExists:
      return grpc::StatusCode::ALREADY_EXISTS;
    case absl::StatusCode::kPermissionDenied:
      return grpc::StatusCode::PERMISSION_DENIED;
    case absl::StatusCode::kResourceExhausted:
      return grpc::StatusCode::RESOURCE_EXHAUSTED;
    case absl::StatusCode::kFailedPrecondition:
      return grpc::StatusCode::FAILED_PRECONDITION;
    case absl::StatusCode::kAborted:
      return grpc::StatusCode::ABORTED;
    case absl::StatusCode::kOutOfRange:
      return grpc::StatusCode::OUT_OF_RANGE;
    case absl::StatusCode::kUnimplemented:
      return grpc::StatusCode::UNIMPLEMENTED;
    case absl::StatusCode::kInternal:
      return grpc::StatusCode::INTERNAL;
    case absl::StatusCode::kUnavailable:
      return grpc::StatusCode::UNAVAILABLE;
    case absl::StatusCode::kDataLoss:
      return grpc::StatusCode::DATA_LOSS;
    case absl::StatusCode::kUnauthenticated:
      return grpc::StatusCode::UNAUTHENTICATED;
    default:
      return grpc::StatusCode::UNKNOWN;
  }
}

// The reason of an error whose maker named none: from its code.
std::string ReasonOfCode(absl::StatusCode code) {
  if (code == absl::StatusCode::kAborted) return "VERSION_MISMATCH";
  return absl::StatusCodeToString(code);  // "NOT_FOUND", "UNAVAILABLE", ...
}

// The request field a message starts with ("user_id is required",
// "exclude: at most 1024 connections"), or "": a lower_snake_case word
// (dots allowed) followed by a colon, or one with an underscore or a dot.
std::string FieldNamedBy(absl::string_view message) {
  size_t end = 0;
  while (end < message.size() && (absl::ascii_islower(message[end]) ||
                                  absl::ascii_isdigit(message[end]) ||
                                  message[end] == '_' || message[end] == '.')) {
    ++end;
  }
  if (end == 0 || end == message.size()) return "";
  const absl::string_view word = message.substr(0, end);
  const bool colon = message[end] == ':';
  const bool compound = word.find_first_of("_.") != absl::string_view::npos;
  if (!colon && !(compound && message[end] == ' ')) return "";
  return std::string(word);
}

constexpr char kErrorInfoTypeUrl[] = "type.googleapis.com/google.rpc.ErrorInfo";

}  // namespace

void ErrorInfoOf(const absl::Status& status, v1::ErrorInfo* out) {
  const bool hidden = status.code() == absl::StatusCode::kInternal ||
                      status.code() == absl::StatusCode::kUnknown ||
                      status.code() == absl::StatusCode::kDataLoss;
  std::optional<std::string> reason = PayloadOf(status, kReasonPayload);
  out->set_reason(reason.has_value() && !hidden ? *reason : ReasonOfCode(status.code()));
  out->set_domain("stateside.v1");
  if (hidden) return;  // nothing from deep inside reaches a client
  std::string field = PayloadOf(status, kFieldPayload).value_or("");
  if (field.empty() && status.code() == absl::StatusCode::kInvalidArgument) {
    field = FieldNamedBy(status.message());
  }
  if (!field.empty()) (*out->mutable_metadata())["field"] = field;
  if (std::optional<std::string> limit = PayloadOf(status, kLimitPayload)) {
    (*out->mutable_metadata())["limit"] = *limit;
  }
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  const grpc::StatusCode code = ToGrpcCode(status.code());
  std::string message;
  if (code == grpc::StatusCode::INTERNAL || code == grpc::StatusCode::UNKNOWN ||
      code == grpc::StatusCode::DATA_LOSS) {
    spdlog::error("RPC failed: {}", status.ToString());
    message = "internal error (see the sidecar's log)";
  } else {
    message = std::string(status.message());
  }
  v1::RpcStatus details;
  details.set_code(static_cast<int32_t>(code));
  details.set_message(message);
  v1::ErrorInfo info;
  ErrorInfoOf(status, &info);
  google::protobuf::Any* any = details.add_details();
  any->set_type_url(kErrorInfoTypeUrl);
  info.SerializeToString(any->mutable_value());
  return grpc::Status(code, std::move(message), details.SerializeAsString());
}

}  // namespace stateside::rpc
