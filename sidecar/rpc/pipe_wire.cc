// Splitting a PipeRequest into its calls' bytes (see pipe_wire.h).
#include "sidecar/rpc/pipe_wire.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>

#include <cstdint>

namespace stateside::rpc {
namespace {

using google::protobuf::io::CodedInputStream;
using google::protobuf::internal::WireFormatLite;

constexpr uint32_t kCallsTag =
    (1u << 3) | static_cast<uint32_t>(WireFormatLite::WIRETYPE_LENGTH_DELIMITED);
constexpr uint32_t kIdTag = (1u << 3) | static_cast<uint32_t>(WireFormatLite::WIRETYPE_VARINT);
// PipeCall's oneof `op`: fields 10 (create) to 19 (get_opt_out).
constexpr int kFirstOpField = 10;
constexpr int kLastOpField = 19;
// The most bytes protobuf's parser reads for a tag or a length (a varint of
// 32 bits); a longer one, which CodedInputStream would still read, it
// refuses.
constexpr int kMaxVarint32Bytes = 5;

CodedInputStream Input(std::string_view bytes) {
  return CodedInputStream(reinterpret_cast<const uint8_t*>(bytes.data()),
                          static_cast<int>(bytes.size()));
}

}  // namespace

absl::Status SplitPipeRequest(std::string_view bytes, std::vector<std::string_view>* calls) {
  // gRPC's receive limit (an int) already bounds a message; the check keeps
  // the int conversion below honest for any other caller.
  if (bytes.size() > static_cast<size_t>(INT32_MAX)) {
    return absl::InvalidArgumentError("malformed request: larger than 2 GiB");
  }
  CodedInputStream in = Input(bytes);
  while (true) {
    const int tag_start = in.CurrentPosition();
    if (static_cast<size_t>(tag_start) == bytes.size()) return absl::OkStatus();
    // Not at the end: 0 is an invalid tag, or one cut off by the end (its
    // bytes consumed); field number 0 and an overlong tag are refused by a
    // parser as well.
    const uint32_t tag = in.ReadTag();
    if (tag == 0 || WireFormatLite::GetTagFieldNumber(tag) == 0 ||
        in.CurrentPosition() - tag_start > kMaxVarint32Bytes) {
      break;
    }
    if (tag == kCallsTag) {
      uint32_t length = 0;
      const int length_start = in.CurrentPosition();
      if (!in.ReadVarint32(&length) || in.CurrentPosition() - length_start > kMaxVarint32Bytes) {
        break;
      }
      // A 5-byte length carries bits above 32 in its last byte, which
      // ReadVarint32 drops: refused, as protobuf refuses a size of 2 GiB on.
      if (in.CurrentPosition() - length_start == kMaxVarint32Bytes &&
          static_cast<uint8_t>(bytes[static_cast<size_t>(length_start) + 4]) >= 8) {
        break;
      }
      const int start = in.CurrentPosition();
      if (length > INT32_MAX || !in.Skip(static_cast<int>(length))) break;
      calls->push_back(bytes.substr(static_cast<size_t>(start), length));
      continue;
    }
    // Another field, or field 1 with another wire type: an unknown field to
    // a parser. An end-group tag outside a group is malformed.
    if (WireFormatLite::GetTagWireType(tag) == WireFormatLite::WIRETYPE_END_GROUP) break;
    if (!WireFormatLite::SkipField(&in, tag)) break;
  }
  return absl::InvalidArgumentError(
      "malformed request: not a valid stateside.v1.PipeRequest");
}

MalformedCall ReadMalformedCall(std::string_view call) {
  MalformedCall read;
  if (call.size() > static_cast<size_t>(INT32_MAX)) return read;
  CodedInputStream in = Input(call);
  while (true) {
    const uint32_t tag = in.ReadTag();
    if (tag == 0) return read;
    if (tag == kIdTag) {
      uint64_t value = 0;
      if (!in.ReadVarint64(&value)) return read;
      read.id = value;
      continue;
    }
    const int field = WireFormatLite::GetTagFieldNumber(tag);
    if (field >= kFirstOpField && field <= kLastOpField &&
        WireFormatLite::GetTagWireType(tag) == WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
      read.op_field = field;
    }
    if (WireFormatLite::GetTagWireType(tag) == WireFormatLite::WIRETYPE_END_GROUP ||
        !WireFormatLite::SkipField(&in, tag)) {
      return read;
    }
  }
}

}  // namespace stateside::rpc
