// gRPC server reflection on the socket: a client discovers the services and
// their schema without a copy of the protos. Spoken as raw bytes over a
// generic stream (the reflection protos are the library's, not ours), the
// messages built and read with the wire format's own field numbers.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/unknown_field_set.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/rpc/rpc_fixture.h"

namespace stateside::rpc {
namespace {

using ::testing::IsSupersetOf;
using ReflectionTest = RpcTest;

constexpr char kMethod[] = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo";
// ServerReflectionRequest fields.
constexpr int kFileContainingSymbol = 4;
constexpr int kListServices = 7;
// ServerReflectionResponse fields.
constexpr int kFileDescriptorResponse = 4;
constexpr int kListServicesResponse = 6;

// One length-delimited field: tag, length, bytes (all shorter than 128).
std::string Field(int number, const std::string& value) {
  EXPECT_LT(value.size(), 128u);
  return std::string{static_cast<char>(number << 3 | 2), static_cast<char>(value.size())} + value;
}

// The length-delimited values of field `number` in `message`.
std::vector<std::string> Values(const std::string& message, int number) {
  google::protobuf::UnknownFieldSet fields;
  EXPECT_TRUE(fields.ParseFromString(message));
  std::vector<std::string> values;
  for (int i = 0; i < fields.field_count(); ++i) {
    const google::protobuf::UnknownField& f = fields.field(i);
    if (f.number() == number && f.type() == google::protobuf::UnknownField::TYPE_LENGTH_DELIMITED) {
      values.push_back(f.length_delimited());
    }
  }
  return values;
}

// One request on a reflection stream, its one answer (nullopt on failure).
std::optional<std::string> Ask(const std::shared_ptr<grpc::Channel>& channel,
                               const std::string& request) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  grpc::CompletionQueue cq;
  auto step = [&cq](int tag) {
    void* got = nullptr;
    bool ok = false;
    return cq.Next(&got, &ok) && got == reinterpret_cast<void*>(tag) && ok;
  };
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call =
      stub.PrepareCall(&context, kMethod, &cq);
  call->StartCall(reinterpret_cast<void*>(1));
  if (!step(1)) return std::nullopt;
  grpc::Slice slice(request);
  call->Write(grpc::ByteBuffer(&slice, 1), reinterpret_cast<void*>(2));
  if (!step(2)) return std::nullopt;
  call->WritesDone(reinterpret_cast<void*>(3));
  if (!step(3)) return std::nullopt;
  grpc::ByteBuffer response;
  call->Read(&response, reinterpret_cast<void*>(4));
  const bool read = step(4);
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  step(5);
  cq.Shutdown();
  void* tag;
  bool ok;
  while (cq.Next(&tag, &ok)) {
  }
  EXPECT_TRUE(status.ok()) << status.error_code() << " " << status.error_message();
  if (!read || !status.ok()) return std::nullopt;
  std::vector<grpc::Slice> slices;
  if (!response.Dump(&slices).ok()) return std::nullopt;
  std::string bytes;
  for (const grpc::Slice& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return bytes;
}

TEST_F(ReflectionTest, ListsEveryService) {
  const std::optional<std::string> answer = Ask(channel_, Field(kListServices, ""));
  ASSERT_TRUE(answer.has_value());
  const std::vector<std::string> lists = Values(*answer, kListServicesResponse);
  ASSERT_EQ(lists.size(), 1u);
  std::vector<std::string> names;
  for (const std::string& service : Values(lists[0], 1)) {  // ListServiceResponse.service
    for (const std::string& name : Values(service, 1)) names.push_back(name);  // .name
  }
  // (This fixture's server has no RealtimeService: it serves what it has.)
  EXPECT_THAT(names, IsSupersetOf({"stateside.v1.SessionService", "stateside.v1.AnalyticsService",
                                   "stateside.v1.LifecycleService", "grpc.health.v1.Health",
                                   "grpc.reflection.v1alpha.ServerReflection"}));
}

TEST_F(ReflectionTest, DescribesAServiceWithItsMessages) {
  const std::optional<std::string> answer =
      Ask(channel_, Field(kFileContainingSymbol, "stateside.v1.LifecycleService"));
  ASSERT_TRUE(answer.has_value());
  const std::vector<std::string> responses = Values(*answer, kFileDescriptorResponse);
  ASSERT_EQ(responses.size(), 1u);
  bool found = false;
  for (const std::string& bytes : Values(responses[0], 1)) {  // file_descriptor_proto
    google::protobuf::FileDescriptorProto file;
    ASSERT_TRUE(file.ParseFromString(bytes));
    if (file.name() != "stateside/v1/lifecycle.proto") continue;
    found = true;
    EXPECT_EQ(file.package(), "stateside.v1");
    std::vector<std::string> messages;
    for (const auto& m : file.message_type()) messages.push_back(m.name());
    EXPECT_THAT(messages, IsSupersetOf({"GetInstanceResponse", "Capabilities"}));
  }
  EXPECT_TRUE(found) << "lifecycle.proto is among the files returned";
}

}  // namespace
}  // namespace stateside::rpc
