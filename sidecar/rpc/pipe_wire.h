// The framing of a serialized stateside.v1.PipeRequest, read without parsing
// its calls, so that each call is parsed (and, if malformed, refused) on its
// own: one bad call fails one call, not the stream.
//
// A PipeRequest is `repeated PipeCall calls = 1`; on the wire each call is a
// length-delimited field 1 whose payload is the call's own encoding, so
// splitting the message is the same as parsing a view of it with
// `repeated bytes calls = 1`. Pure functions; thread-safe.
#ifndef STATESIDE_SIDECAR_RPC_PIPE_WIRE_H_
#define STATESIDE_SIDECAR_RPC_PIPE_WIRE_H_

#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

namespace stateside::rpc {

// Appends to `calls` the encoding of each call of the PipeRequest `bytes`,
// in order; the views point into `bytes`. Other fields are skipped, as a
// parser keeps them as unknown fields. INVALID_ARGUMENT if the framing
// itself is broken (a truncated tag, length or field, a stray end-group):
// then no call boundary can be trusted and `calls` holds those found before.
absl::Status SplitPipeRequest(std::string_view bytes, std::vector<std::string_view>* calls);

// What can be read of a call whose encoding does not parse as a PipeCall,
// so that its INVALID_ARGUMENT carries its id and reads as the unary RPC's.
struct MalformedCall {
  // The last id field read before the first malformed byte (the parser's
  // last-one-wins); 0, the proto default, if none could be read.
  uint64_t id = 0;
  // The field number of the operation (PipeCall's oneof `op`) met last, or
  // 0 if none was met.
  int op_field = 0;
};
MalformedCall ReadMalformedCall(std::string_view call);

}  // namespace stateside::rpc

#endif  // STATESIDE_SIDECAR_RPC_PIPE_WIRE_H_
