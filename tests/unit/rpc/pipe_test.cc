// SessionService.Pipe over a real channel: the answers and codes of the
// unary RPCs, ids echoed, many calls per message (answered together in one
// write when they complete together), per-call deadlines, a call
// without an operation, a malformed message, a malformed call, a duplicate
// id, an out-of-range timeout, the announced limit, and many concurrent
// streams.
#include <grpcpp/generic/generic_stub.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sidecar/rpc/pipe.h"
#include "sidecar/rpc/pipe_wire.h"
#include "tests/unit/rpc/rpc_fixture.h"

namespace stateside::rpc {
namespace {

using PipeTest = RpcTest;

// Sends the calls in one message, half-closes, and returns every result by
// id (a failed stream fails the test).
std::map<uint64_t, v1::PipeResult> RunPipe(v1::SessionService::Stub& stub,
                                           const std::vector<v1::PipeCall>& calls,
                                           int* messages_read = nullptr) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  auto stream = stub.Pipe(context.get());
  // At most 100 calls a message: the fixture's server takes 16 KiB messages.
  for (size_t i = 0; i < calls.size(); i += 100) {
    v1::PipeRequest request;
    for (size_t j = i; j < std::min(calls.size(), i + 100); ++j) *request.add_calls() = calls[j];
    EXPECT_TRUE(stream->Write(request));
  }
  EXPECT_TRUE(stream->WritesDone());
  std::map<uint64_t, v1::PipeResult> results;
  v1::PipeResponse response;
  int messages = 0;
  while (stream->Read(&response)) {
    ++messages;
    for (const v1::PipeResult& r : response.results()) {
      EXPECT_TRUE(results.emplace(r.id(), r).second) << "id " << r.id() << " answered twice";
    }
  }
  const grpc::Status status = stream->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
  if (messages_read != nullptr) *messages_read = messages;
  return results;
}

v1::PipeCall GetCall(uint64_t id, const v1::SessionKey& key) {
  v1::PipeCall call;
  call.set_id(id);
  *call.mutable_get()->mutable_key() = key;
  return call;
}

TEST_F(PipeTest, AnswersAndCodesAreThoseOfTheUnaryRpcs) {
  const v1::Session session = CreateSession("alice", {{"cart", "[]"}});
  v1::SessionKey forged = CookieKey(session);
  forged.set_cookie(forged.cookie() + "x");

  std::vector<v1::PipeCall> calls;
  calls.push_back(GetCall(1, CookieKey(session)));
  calls.push_back(GetCall(2, forged));
  v1::PipeCall stale;
  stale.set_id(3);
  *stale.mutable_update()->mutable_key() = IdKey(session);
  (*stale.mutable_update()->mutable_set())["cart"] = "[1]";
  stale.mutable_update()->set_expected_version(7);
  calls.push_back(stale);
  v1::PipeCall too_big;
  too_big.set_id(4);
  *too_big.mutable_update()->mutable_key() = IdKey(session);
  (*too_big.mutable_update()->mutable_set())["big"] = std::string(kMaxAttributeBytes + 1, 'x');
  calls.push_back(too_big);
  v1::PipeCall set_opt_out;
  set_opt_out.set_id(5);
  set_opt_out.mutable_set_opt_out()->set_subject("alice");
  set_opt_out.mutable_set_opt_out()->set_opted_out(true);
  calls.push_back(set_opt_out);
  v1::PipeCall empty;
  empty.set_id(6);
  calls.push_back(empty);
  v1::PipeCall negative = GetCall(7, IdKey(session));
  negative.mutable_timeout()->set_seconds(-1);
  calls.push_back(negative);

  const auto results = RunPipe(*session_stub_, calls);
  ASSERT_EQ(results.size(), calls.size());

  // Each against its unary twin.
  v1::GetSessionRequest get;
  *get.mutable_key() = CookieKey(session);
  v1::GetSessionResponse unary_get;
  ASSERT_TRUE(session_stub_->Get(Context().get(), get, &unary_get).ok());
  EXPECT_EQ(results.at(1).code(), 0);
  EXPECT_EQ(results.at(1).get().session().attributes().at("cart"), "[]");
  EXPECT_EQ(results.at(1).get().session().metadata().id(), unary_get.session().metadata().id());

  *get.mutable_key() = forged;
  const grpc::Status unary_forged = session_stub_->Get(Context().get(), get, &unary_get);
  EXPECT_EQ(results.at(2).code(), unary_forged.error_code());
  EXPECT_EQ(results.at(2).message(), unary_forged.error_message());
  EXPECT_FALSE(results.at(2).has_get());

  v1::UpdateSessionResponse unary_update;
  const grpc::Status unary_stale =
      session_stub_->Update(Context().get(), stale.update(), &unary_update);
  EXPECT_EQ(unary_stale.error_code(), grpc::StatusCode::ABORTED);
  EXPECT_EQ(results.at(3).code(), unary_stale.error_code());
  EXPECT_EQ(results.at(3).message(), unary_stale.error_message());

  const grpc::Status unary_big =
      session_stub_->Update(Context().get(), too_big.update(), &unary_update);
  EXPECT_EQ(unary_big.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(results.at(4).code(), unary_big.error_code());
  EXPECT_EQ(results.at(4).message(), unary_big.error_message());

  EXPECT_EQ(results.at(5).code(), 0);
  v1::GetOptOutRequest opt_out;
  opt_out.set_subject("alice");
  v1::GetOptOutResponse opted;
  ASSERT_TRUE(analytics_stub_->GetOptOut(Context().get(), opt_out, &opted).ok());
  EXPECT_TRUE(opted.opted_out());

  EXPECT_EQ(results.at(6).code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(results.at(7).code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(PipeTest, ManyCallsInOneMessageAreEachAnsweredOnceByTheirIds) {
  const v1::Session session = CreateSession("bob", {{"k", "v"}});
  std::vector<v1::PipeCall> calls;
  for (uint64_t id = 100; id < 600; ++id) calls.push_back(GetCall(id, IdKey(session)));
  int messages = 0;
  const auto results = RunPipe(*session_stub_, calls, &messages);
  ASSERT_EQ(results.size(), calls.size());
  for (const auto& [id, r] : results) {
    EXPECT_GE(id, 100u);
    EXPECT_LT(id, 600u);
    EXPECT_EQ(r.code(), 0) << r.message();
  }
  // How many answers share a message depends on how fast each write goes
  // out (the batching is opportunistic), so it is not asserted here; its
  // effect is what stateside-bench --transport stream measures.
  EXPECT_GE(messages, 1);
  EXPECT_LE(messages, 500);
  RecordProperty("messages", messages);
}

// A stream reuses one call object (and its arena's first block) for call
// after call, so sequential calls make one object, not one each; a call's
// answer is its own, not what the object held before.
TEST_F(PipeTest, SequentialCallsOnOneStreamReuseOneCallObject) {
  const v1::Session a = CreateSession("erin", {{"k", "a"}});
  const v1::Session b = CreateSession("erin", {{"k", "b"}});
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  auto stream = session_stub_->Pipe(&context);
  const size_t made = PipeReactor::CallsMadeForTest();
  for (uint64_t id = 1; id <= 20; ++id) {
    const v1::Session& session = id % 2 == 0 ? a : b;
    v1::PipeRequest request;
    *request.add_calls() = GetCall(id, IdKey(session));
    ASSERT_TRUE(stream->Write(request));
    v1::PipeResponse response;
    ASSERT_TRUE(stream->Read(&response));
    ASSERT_EQ(response.results_size(), 1);
    const v1::PipeResult& r = response.results(0);
    EXPECT_EQ(r.id(), id);
    ASSERT_EQ(r.code(), 0) << r.message();
    EXPECT_EQ(r.get().session().attributes().at("k"), id % 2 == 0 ? "a" : "b");
  }
  EXPECT_EQ(PipeReactor::CallsMadeForTest() - made, 1u);
  EXPECT_TRUE(stream->WritesDone());
  EXPECT_TRUE(stream->Finish().ok());
}

// The calls of one message that complete at once (here: the memory store
// answers inline) are queued together and go out in one write, rather than
// the first result alone and the rest after it.
TEST_F(PipeTest, CallsAnsweredTogetherShareOneWrite) {
  const v1::Session session = CreateSession("bob", {{"k", "v"}});
  std::vector<v1::PipeCall> calls;
  for (uint64_t id = 1; id <= 100; ++id) calls.push_back(GetCall(id, IdKey(session)));
  int messages = 0;
  const auto results = RunPipe(*session_stub_, calls, &messages);
  ASSERT_EQ(results.size(), calls.size());
  for (const auto& [id, r] : results) EXPECT_EQ(r.code(), 0) << r.message();
  EXPECT_EQ(messages, 1);
}

// Each operation goes to its own handler and its answer in its own field.
TEST_F(PipeTest, EveryOperationIsCarriedToItsOwnHandler) {
  const v1::Session a = CreateSession("dave", {{"k", "v"}});
  const v1::Session b = CreateSession("dave");
  const v1::Session c = CreateSession("dave");
  std::vector<v1::PipeCall> calls(8);
  for (size_t i = 0; i < calls.size(); ++i) calls[i].set_id(i);
  (*calls[0].mutable_create()->mutable_attributes())["x"] = "1";
  *calls[1].mutable_touch()->mutable_key() = IdKey(a);
  *calls[2].mutable_destroy()->mutable_key() = IdKey(b);
  *calls[3].mutable_regenerate()->mutable_key() = IdKey(c);
  calls[4].mutable_list_user_sessions()->set_user_id("nobody");
  calls[5].mutable_destroy_user_sessions()->set_user_id("nobody");
  calls[6].mutable_get_opt_out()->set_subject("dave");
  *calls[7].mutable_update()->mutable_key() = IdKey(a);
  (*calls[7].mutable_update()->mutable_set())["k"] = "w";
  const auto r = RunPipe(*session_stub_, calls);
  ASSERT_EQ(r.size(), calls.size());
  for (const auto& [id, result] : r) EXPECT_EQ(result.code(), 0) << id << ": " << result.message();
  EXPECT_EQ(r.at(0).create().session().attributes().at("x"), "1");
  EXPECT_EQ(r.at(1).touch().metadata().id(), a.metadata().id());
  EXPECT_TRUE(r.at(2).destroy().existed());
  EXPECT_NE(r.at(3).regenerate().session().metadata().id(), c.metadata().id());
  EXPECT_EQ(r.at(4).list_user_sessions().sessions_size(), 0);
  EXPECT_EQ(r.at(5).destroy_user_sessions().destroyed(), 0u);
  EXPECT_FALSE(r.at(6).get_opt_out().opted_out());
  EXPECT_TRUE(r.at(6).has_get_opt_out());
  EXPECT_EQ(r.at(7).update().metadata().version(), 2u);
}

// More calls in one message than a stream may have unanswered: refused, so a
// single message cannot grow the sidecar's memory past the bound.
TEST_F(PipeTest, AMessageWithTooManyCallsEndsTheStream) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  auto stream = session_stub_->Pipe(context.get());
  v1::PipeRequest request;
  for (int i = 0; i <= PipeReactor::kMaxCallsPerMessage; ++i) {
    request.add_calls()->set_id(static_cast<uint64_t>(i));
  }
  stream->Write(request);
  stream->WritesDone();
  v1::PipeResponse response;
  while (stream->Read(&response)) {
  }
  const grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(status.error_message(), ::testing::HasSubstr("at most 1024 calls"));
}

TEST_F(PipeTest, AnExpiredPerCallDeadlineIsDeadlineExceededAlone) {
  const v1::Session session = CreateSession();
  v1::PipeCall hurried = GetCall(1, IdKey(session));
  hurried.mutable_timeout()->set_nanos(1);  // over before any answer exists
  const auto results = RunPipe(*session_stub_, {hurried, GetCall(2, IdKey(session))});
  EXPECT_EQ(results.at(1).code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_FALSE(results.at(1).has_get());
  EXPECT_EQ(results.at(2).code(), 0);
}

// Sends `bytes` as one raw Pipe message (what a foreign client could send),
// half-closes, and returns every result in the order read and the status.
std::vector<v1::PipeResult> RunRawPipe(const std::shared_ptr<grpc::Channel>& channel,
                                       const std::string& bytes, grpc::Status* status) {
  grpc::GenericStub generic(channel);
  grpc::CompletionQueue cq;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  auto call = generic.PrepareCall(&context, "/stateside.v1.SessionService/Pipe", &cq);
  auto step = [&cq](intptr_t want) {
    void* tag = nullptr;
    bool ok = false;
    EXPECT_TRUE(cq.Next(&tag, &ok));
    EXPECT_EQ(reinterpret_cast<intptr_t>(tag), want);
    return ok;
  };
  call->StartCall(reinterpret_cast<void*>(1));
  EXPECT_TRUE(step(1));
  grpc::Slice slice(bytes);
  grpc::ByteBuffer buffer(&slice, 1);
  call->Write(buffer, reinterpret_cast<void*>(2));
  step(2);
  call->WritesDone(reinterpret_cast<void*>(3));
  step(3);
  std::vector<v1::PipeResult> results;
  while (true) {
    grpc::ByteBuffer in;
    call->Read(&in, reinterpret_cast<void*>(4));
    if (!step(4)) break;
    v1::PipeResponse response;
    std::vector<grpc::Slice> slices;
    EXPECT_TRUE(in.Dump(&slices).ok());
    std::string joined;
    for (const grpc::Slice& s : slices) {
      joined.append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
    EXPECT_TRUE(response.ParseFromString(joined));
    for (const v1::PipeResult& r : response.results()) results.push_back(r);
  }
  call->Finish(status, reinterpret_cast<void*>(5));
  EXPECT_TRUE(step(5));
  cq.Shutdown();
  void* tag;
  bool ok;
  while (cq.Next(&tag, &ok)) {
  }
  return results;
}

// Field 1 (calls) of a PipeRequest holding `call` as raw bytes.
std::string Framed(const std::string& call) {
  std::string out("\x0a", 1);
  size_t n = call.size();
  do {
    out.push_back(static_cast<char>((n & 0x7f) | (n > 0x7f ? 0x80 : 0)));
    n >>= 7;
  } while (n != 0);
  return out + call;
}

// The framing is read as a parser reads it: a request that protobuf refuses
// (a tag cut off at the end, a zero tag) is refused, one it accepts is split.
TEST(SplitPipeRequestTest, RefusesWhatAParserRefusesAndSplitsTheRest) {
  v1::PipeRequest request;
  request.add_calls()->set_id(7);
  request.add_calls()->set_id(8);
  const std::string whole = request.SerializeAsString();
  std::vector<std::string_view> calls;
  ASSERT_TRUE(SplitPipeRequest(whole, &calls).ok());
  EXPECT_EQ(calls.size(), 2u);
  const std::vector<std::string> refused = {
      whole + std::string("\x80", 1),      // a varint tag cut off at the end
      whole + std::string("\x80\x80", 2),  // likewise, two bytes of it
      whole + std::string("\x00", 1),      // tag 0
      std::string("\x0a\xff\x01", 3),     // a call of 255 bytes, none there
      std::string("\x02\x00", 2),          // field number 0, length-delimited
      // A tag of six bytes (field 1, length-delimited, padded), then an
      // empty call.
      std::string("\x8a\x80\x80\x80\x80\x00\x00", 7),
      // A call's length in six bytes (5, padded), then its five bytes.
      std::string("\x0a\x85\x80\x80\x80\x80\x00", 7) + std::string(5, '\x08'),
      // A length of 2^32 + 2 in five bytes, which a 32-bit read turns into 2.
      std::string("\x0a\x82\x80\x80\x80\x10", 6) + std::string("\x08\x01", 2),
  };
  for (const std::string& bytes : refused) {
    v1::PipeRequest parsed;
    ASSERT_FALSE(parsed.ParseFromString(bytes)) << "protobuf accepts it: the case is wrong";
    calls.clear();
    const absl::Status status = SplitPipeRequest(bytes, &calls);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << absl::CHexEscape(bytes);
  }
  calls.clear();
  EXPECT_TRUE(SplitPipeRequest("", &calls).ok());  // no calls at all
  EXPECT_TRUE(calls.empty());
  // What a parser accepts as unknown fields is accepted too: field 1 as a
  // varint, another field, a group.
  for (const std::string& bytes : {std::string("\x08\x01", 2) + whole,
                                   whole + std::string("\x10\x05", 2),
                                   whole + std::string("\x13\x08\x01\x14", 4)}) {
    v1::PipeRequest parsed;
    ASSERT_TRUE(parsed.ParseFromString(bytes)) << absl::CHexEscape(bytes);
    calls.clear();
    EXPECT_TRUE(SplitPipeRequest(bytes, &calls).ok()) << absl::CHexEscape(bytes);
    EXPECT_EQ(calls.size(), 2u);
  }
}

// Only a message whose framing is broken ends the stream.
TEST_F(PipeTest, AMalformedMessageEndsTheStreamWithInvalidArgument) {
  // Field 1, length-delimited, 255 bytes announced, none there.
  grpc::Status status;
  const auto results = RunRawPipe(channel_, std::string("\x0a\xff\x01", 3), &status);
  EXPECT_TRUE(results.empty());
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), ::testing::HasSubstr("malformed request"));
}

TEST_F(PipeTest, TheStreamAnnouncesTheSidecarsReceiveLimit) {
  auto context = Context();
  auto stream = session_stub_->Pipe(context.get());
  stream->WaitForInitialMetadata();
  const auto& metadata = context->GetServerInitialMetadata();
  auto it = metadata.find(std::string(PipeReactor::kMaxMessageBytesKey));
  ASSERT_NE(it, metadata.end());
  EXPECT_EQ(std::string(it->second.data(), it->second.size()),
            std::to_string(kMaxMessageBytes));
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

// A foreign client's call with invalid UTF-8 in a string field fails alone,
// with its id; a good call of the same message is answered; the stream
// ends OK. A call whose id cannot be read is answered with id 0.
TEST_F(PipeTest, AMalformedCallFailsAloneWithItsId) {
  const v1::Session session = CreateSession("erin", {{"k", "v"}});
  const std::string good = GetCall(1, IdKey(session)).SerializeAsString();
  v1::PipeCall bad_call = GetCall(2, IdKey(session));
  bad_call.mutable_get()->mutable_key()->set_id("PLACEHOLDER");
  std::string bad = bad_call.SerializeAsString();
  bad.replace(bad.find("PLACEHOLDER"), 11, "\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8\xf7\xf6\xf5");
  const std::string no_id("\x08\xff", 2);  // id field, varint cut short
  grpc::Status status;
  const auto results =
      RunRawPipe(channel_, Framed(good) + Framed(bad) + Framed(no_id), &status);
  EXPECT_TRUE(status.ok()) << status.error_message();
  std::map<uint64_t, v1::PipeResult> by_id;
  for (const auto& r : results) EXPECT_TRUE(by_id.emplace(r.id(), r).second) << r.id();
  ASSERT_EQ(by_id.size(), 3u);
  EXPECT_EQ(by_id.at(1).code(), 0) << by_id.at(1).message();
  EXPECT_EQ(by_id.at(1).get().session().attributes().at("k"), "v");
  EXPECT_EQ(by_id.at(2).code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(by_id.at(2).message(),
            "malformed request: not a valid stateside.v1.GetSessionRequest");
  EXPECT_EQ(by_id.at(0).code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(by_id.at(0).message(), "malformed request: not a valid stateside.v1.PipeCall");
}

// Two calls with one id on a stream: the second is refused, the first runs.
TEST_F(PipeTest, ADuplicateIdInFlightIsRefusedAndTheFirstCallRuns) {
  const v1::Session session = CreateSession("frank");
  v1::PipeCall first;
  first.set_id(9);
  *first.mutable_update()->mutable_key() = IdKey(session);
  (*first.mutable_update()->mutable_set())["a"] = "1";
  v1::PipeCall second = first;
  (*second.mutable_update()->mutable_set())["a"] = "2";
  v1::PipeRequest request;
  *request.add_calls() = first;
  *request.add_calls() = second;
  grpc::Status status;
  const auto results = RunRawPipe(channel_, request.SerializeAsString(), &status);
  EXPECT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(results.size(), 2u);
  std::multiset<int> codes;
  for (const auto& r : results) {
    EXPECT_EQ(r.id(), 9u);
    codes.insert(r.code());
    if (r.code() != 0) {
      EXPECT_THAT(r.message(), ::testing::HasSubstr("already in flight"));
      EXPECT_EQ(r.error_info().reason(), "DUPLICATE_CALL_ID");
      EXPECT_EQ(r.error_info().metadata().at("field"), "id");
    }
  }
  EXPECT_EQ(codes, (std::multiset<int>{0, grpc::StatusCode::INVALID_ARGUMENT}));
  v1::GetSessionRequest get;
  *get.mutable_key() = IdKey(session);
  v1::GetSessionResponse got;
  ASSERT_TRUE(session_stub_->Get(Context().get(), get, &got).ok());
  EXPECT_EQ(got.session().attributes().at("a"), "1");
  EXPECT_EQ(got.session().metadata().version(), 2u);
}

// PipeCall.timeout is range-checked as every other Duration: negative
// nanos or more than a century are INVALID_ARGUMENT for that call alone.
TEST_F(PipeTest, AnOutOfRangeTimeoutIsInvalidArgumentAlone) {
  const v1::Session session = CreateSession();
  v1::PipeCall negative_nanos = GetCall(1, IdKey(session));
  negative_nanos.mutable_timeout()->set_seconds(5);
  negative_nanos.mutable_timeout()->set_nanos(-1);
  v1::PipeCall too_long = GetCall(2, IdKey(session));
  too_long.mutable_timeout()->set_seconds(int64_t{200} * 365 * 24 * 3600);
  v1::PipeCall fine = GetCall(3, IdKey(session));
  fine.mutable_timeout()->set_seconds(30);
  const auto results = RunPipe(*session_stub_, {negative_nanos, too_long, fine});
  EXPECT_EQ(results.at(1).code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(results.at(1).message(), ::testing::HasSubstr("timeout"));
  EXPECT_EQ(results.at(2).code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(results.at(3).code(), 0) << results.at(3).message();
}

TEST_F(PipeTest, ConcurrentStreamsFromManyThreads) {
  const v1::Session session = CreateSession("carol");  // 8 threads, 8 attributes
  std::vector<std::thread> threads;
  std::atomic<int> answered{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      std::vector<v1::PipeCall> calls;
      for (int i = 0; i < 50; ++i) {
        v1::PipeCall call;
        call.set_id(static_cast<uint64_t>(i));
        *call.mutable_update()->mutable_key() = IdKey(session);
        (*call.mutable_update()->mutable_set())[absl::StrCat("t", t)] = absl::StrCat(i);
        calls.push_back(call);
      }
      const auto results = RunPipe(*session_stub_, calls);
      EXPECT_EQ(results.size(), calls.size());
      for (const auto& [id, r] : results) {
        EXPECT_EQ(r.code(), 0) << r.message();
        if (r.code() == 0) answered.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(answered.load(), 8 * 50);
  // Every update landed: version 1 + 400.
  v1::GetSessionRequest get;
  *get.mutable_key() = IdKey(session);
  v1::GetSessionResponse got;
  ASSERT_TRUE(session_stub_->Get(Context().get(), get, &got).ok());
  EXPECT_EQ(got.session().metadata().version(), 401u);
  EXPECT_EQ(got.session().attributes().at("t3"), "49");
}

}  // namespace
}  // namespace stateside::rpc
