// stateside::Client's Pipe stream transport against a scripted
// in-process Pipe fake: answers out of order, a stream broken mid-batch,
// per-call deadlines, a sidecar that stops reading, batching, many threads,
// the Async forms, and the fallback to unary RPCs for a sidecar without Pipe.
#include <atomic>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "stateside/client.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"
#include "tests/unit/client/fake_pipe_sidecar.h"
#include "tests/unit/client/fake_sidecar.h"
#include "tests/unit/client/fake_sidecar_fixture.h"

namespace stateside {
namespace {

using testing::FakePipeSidecar;
using testing::FakeSidecar;
using testing::WaitFor;
using ::testing::HasSubstr;
using Mode = FakePipeSidecar::Mode;

std::string Key(int i) { return "session-" + std::to_string(i); }

// The results of N Async calls: slot i records what call i's `done` got and
// how many times it ran. Must outlive the Client that runs the callbacks.
template <typename T>
class Results {
 public:
  explicit Results(int n)
      : n_(n),
        results_(static_cast<size_t>(n), absl::UnknownError("done never ran")),
        runs_(static_cast<size_t>(n), 0),
        done_at_(static_cast<size_t>(n)) {}

  Callback<T> Slot(int i) {
    return [this, i](absl::StatusOr<T> result) {
      absl::MutexLock lock(&mu_);
      results_[static_cast<size_t>(i)] = std::move(result);
      ++runs_[static_cast<size_t>(i)];
      done_at_[static_cast<size_t>(i)] = absl::Now();
      ++total_;
    };
  }

  int total() const {
    absl::MutexLock lock(&mu_);
    return total_;
  }
  bool done(int i) const { return runs(i) > 0; }
  int runs(int i) const {
    absl::MutexLock lock(&mu_);
    return runs_[static_cast<size_t>(i)];
  }
  absl::StatusOr<T> result(int i) const {
    absl::MutexLock lock(&mu_);
    return results_[static_cast<size_t>(i)];
  }
  absl::Time done_at(int i) const {
    absl::MutexLock lock(&mu_);
    return done_at_[static_cast<size_t>(i)];
  }
  bool WaitAll(absl::Duration timeout = absl::Seconds(20)) const {
    return WaitFor([&] { return total() >= n_; }, timeout);
  }

 private:
  const int n_;
  mutable absl::Mutex mu_;
  std::vector<absl::StatusOr<T>> results_ ABSL_GUARDED_BY(mu_);
  std::vector<int> runs_ ABSL_GUARDED_BY(mu_);
  std::vector<absl::Time> done_at_ ABSL_GUARDED_BY(mu_);
  int total_ ABSL_GUARDED_BY(mu_) = 0;
};

class ClientStreamTest : public testing::FakeSidecarTest<FakePipeSidecar> {
 protected:
  // One stream, a long deadline (tests that need a short one set it) and
  // fast retries.
  ClientOptions Options() const {
    ClientOptions o = FastRetryOptions();
    o.call_timeout = absl::Seconds(20);
    o.streams = 1;
    return o;
  }

  // The held call whose key is `key`, if the fake holds one.
  std::optional<FakePipeSidecar::ReceivedCall> HeldCall(const std::string& key) const {
    for (const auto& c : fake_->held()) {
      if (c.key == key) return c;
    }
    return std::nullopt;
  }

  bool WaitHeld(size_t n) const {
    return WaitFor([&] { return fake_->held().size() >= n; });
  }
};

TEST_F(ClientStreamTest, CallsTravelOnOneStreamWithTheirOwnIdsAndDeadlines) {
  auto client = Connect(Options());
  ASSERT_NE(client, nullptr);
  for (int i = 0; i < 3; ++i) {
    auto got = client->GetSession(SessionRef::Id(Key(i)));
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->info.id, Key(i));
  }
  EXPECT_EQ(fake_->streams_opened(), 1);
  EXPECT_EQ(fake_->unary_gets(), 0);
  const auto received = fake_->received();
  ASSERT_EQ(received.size(), 3u);
  EXPECT_NE(received[0].id, received[1].id);
  EXPECT_NE(received[1].id, received[2].id);
  EXPECT_NE(received[0].id, received[2].id);
  for (const auto& c : received) {
    EXPECT_EQ(c.op, v1::PipeCall::kGet);
    EXPECT_GT(c.timeout, absl::ZeroDuration());
    EXPECT_LE(c.timeout, absl::Seconds(20));
  }
}

TEST_F(ClientStreamTest, StreamsZeroUsesTheUnaryRpcs) {
  ClientOptions o = Options();
  o.streams = 0;
  auto client = Connect(o);
  ASSERT_NE(client, nullptr);
  auto got = client->GetSession(SessionRef::Id(Key(1)));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->info.id, Key(1));
  EXPECT_EQ(fake_->unary_gets(), 1);
  EXPECT_EQ(fake_->streams_opened(), 0);
}

TEST_F(ClientStreamTest, OutOfOrderCompletion) {
  constexpr int kCalls = 8;
  Results<Session> results(kCalls);
  auto client = Connect(Options());
  ASSERT_NE(client, nullptr);
  fake_->SetMode(Mode::kHold);
  for (int i = 0; i < kCalls; ++i) {
    client->GetSessionAsync(SessionRef::Id(Key(i)), true, results.Slot(i));
  }
  ASSERT_TRUE(WaitHeld(kCalls));
  EXPECT_EQ(results.total(), 0);

  // Answer the last call first, then the one before it, ...: each answer
  // completes exactly its own caller.
  for (int i = kCalls - 1; i >= 0; --i) {
    auto held = HeldCall(Key(i));
    ASSERT_TRUE(held.has_value()) << Key(i);
    ASSERT_TRUE(fake_->Answer(*held));
    ASSERT_TRUE(WaitFor([&] { return results.done(i); })) << Key(i);
    for (int j = 0; j < i; ++j) {
      EXPECT_FALSE(results.done(j)) << j << " before " << i;
    }
  }
  for (int i = 0; i < kCalls; ++i) {
    auto got = results.result(i);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->info.id, Key(i));
    EXPECT_EQ(got->attributes.at("key"), Key(i));
    EXPECT_EQ(results.runs(i), 1);
  }
  EXPECT_EQ(fake_->streams_opened(), 1);
}

TEST_F(ClientStreamTest, OutOfOrderCompletionOfSyncCallsOnThreads) {
  constexpr int kCalls = 4;
  auto client = Connect(Options());
  ASSERT_NE(client, nullptr);
  fake_->SetMode(Mode::kHold);
  std::vector<absl::StatusOr<Session>> got(kCalls, absl::UnknownError("not run"));
  std::atomic<int> finished{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kCalls; ++i) {
    threads.emplace_back([&, i] {
      got[static_cast<size_t>(i)] = client->GetSession(SessionRef::Id(Key(i)));
      ++finished;
    });
  }
  ASSERT_TRUE(WaitHeld(kCalls));
  for (int i = kCalls - 1; i >= 0; --i) {
    auto held = HeldCall(Key(i));
    ASSERT_TRUE(held.has_value()) << Key(i);
    ASSERT_TRUE(fake_->Answer(*held));
    ASSERT_TRUE(WaitFor([&] { return finished.load() == kCalls - i; }));
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kCalls; ++i) {
    ASSERT_TRUE(got[static_cast<size_t>(i)].ok()) << got[static_cast<size_t>(i)].status();
    EXPECT_EQ(got[static_cast<size_t>(i)]->info.id, Key(i));
  }
}

TEST_F(ClientStreamTest, StreamKilledMidBatchFailsExactlyTheInFlightCalls) {
  constexpr int kCalls = 6;
  constexpr int kAnswered = 2;
  Results<SessionInfo> results(kCalls);
  ClientOptions o = Options();
  o.max_retries = 0;
  auto client = Connect(o);
  ASSERT_NE(client, nullptr);
  fake_->SetMode(Mode::kHold);
  // UpdateSession is never retried, so the stream's end shows unhidden.
  for (int i = 0; i < kCalls; ++i) {
    client->UpdateSessionAsync(SessionRef::Id(Key(i)), {{"a", "1"}}, {}, std::nullopt,
                               results.Slot(i));
  }
  ASSERT_TRUE(WaitHeld(kCalls));
  for (int i = 0; i < kAnswered; ++i) {
    auto held = HeldCall(Key(i));
    ASSERT_TRUE(held.has_value());
    ASSERT_TRUE(fake_->Answer(*held));
  }
  ASSERT_TRUE(WaitFor([&] { return results.total() == kAnswered; }));
  fake_->EndStream(0, grpc::Status(grpc::StatusCode::INTERNAL, "sidecar blew up"));
  ASSERT_TRUE(results.WaitAll());

  for (int i = 0; i < kCalls; ++i) {
    auto r = results.result(i);
    EXPECT_EQ(results.runs(i), 1) << i;
    if (i < kAnswered) {
      ASSERT_TRUE(r.ok()) << i << ": " << r.status();
      EXPECT_EQ(r->id, Key(i));
    } else {
      EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << i << ": " << r.status();
      // "the message names the stream's status"
      EXPECT_THAT(std::string(r.status().message()), HasSubstr("sidecar blew up"));
    }
  }
  EXPECT_EQ(fake_->received().size(), static_cast<size_t>(kCalls));  // nothing re-sent

  // The next call opens a new stream.
  fake_->SetMode(Mode::kAnswer);
  auto updated = client->UpdateSession(SessionRef::Id("after"), {{"a", "1"}});
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->id, "after");
  EXPECT_EQ(fake_->streams_opened(), 2);
  EXPECT_EQ(fake_->calls_on_stream(1), 1);
}

TEST_F(ClientStreamTest, SyncIdempotentCallsOnAKilledStreamAreRetriedOnANewOne) {
  constexpr int kCalls = 3;
  auto client = Connect(Options());  // max_retries = 3
  ASSERT_NE(client, nullptr);
  fake_->SetMode(Mode::kHold);
  std::vector<absl::StatusOr<Session>> got(kCalls, absl::UnknownError("not run"));
  std::vector<std::thread> threads;
  for (int i = 0; i < kCalls; ++i) {
    threads.emplace_back([&, i] {
      got[static_cast<size_t>(i)] = client->GetSession(SessionRef::Id(Key(i)));
    });
  }
  ASSERT_TRUE(WaitHeld(kCalls));
  fake_->SetMode(Mode::kAnswer);
  fake_->EndStream(0, grpc::Status(grpc::StatusCode::UNAVAILABLE, "going away"));
  for (auto& t : threads) t.join();
  for (int i = 0; i < kCalls; ++i) {
    ASSERT_TRUE(got[static_cast<size_t>(i)].ok()) << got[static_cast<size_t>(i)].status();
    EXPECT_EQ(got[static_cast<size_t>(i)]->info.id, Key(i));
  }
  EXPECT_GE(fake_->streams_opened(), 2);
  // Each call was sent once on the killed stream and once more after it.
  EXPECT_EQ(fake_->received().size(), static_cast<size_t>(2 * kCalls));
}

TEST_F(ClientStreamTest, AsyncCallsOnAKilledStreamFollowTheRetryPolicy) {
  Results<Session> gets(2);
  Results<SessionInfo> updates(2);
  auto client = Connect(Options());  // max_retries = 3
  ASSERT_NE(client, nullptr);
  fake_->SetMode(Mode::kHold);
  for (int i = 0; i < 2; ++i) {
    client->GetSessionAsync(SessionRef::Id(Key(i)), true, gets.Slot(i));
    client->UpdateSessionAsync(SessionRef::Id(Key(10 + i)), {{"a", "1"}}, {}, std::nullopt,
                               updates.Slot(i));
  }
  ASSERT_TRUE(WaitHeld(4));
  fake_->SetMode(Mode::kAnswer);
  fake_->EndStream(0, grpc::Status(grpc::StatusCode::UNAVAILABLE, "going away"));
  ASSERT_TRUE(gets.WaitAll());
  ASSERT_TRUE(updates.WaitAll());
  for (int i = 0; i < 2; ++i) {
    // GetSession is retried (on a new stream) and succeeds ...
    ASSERT_TRUE(gets.result(i).ok()) << gets.result(i).status();
    EXPECT_EQ(gets.result(i)->info.id, Key(i));
    EXPECT_EQ(gets.runs(i), 1);
    // ... UpdateSession is not.
    EXPECT_EQ(updates.result(i).status().code(), absl::StatusCode::kUnavailable)
        << updates.result(i).status();
    EXPECT_EQ(updates.runs(i), 1);
  }
  EXPECT_EQ(fake_->received().size(), 6u);
  EXPECT_GE(fake_->streams_opened(), 2);
}

TEST_F(ClientStreamTest, PerRequestDeadlinesInsideABatch) {
  constexpr int kFirst = 3;
  constexpr int kCalls = 6;
  const absl::Duration timeout = absl::Seconds(1);
  Results<Session> results(kCalls);
  ClientOptions o = Options();
  o.call_timeout = timeout;
  auto client = Connect(o);
  ASSERT_NE(client, nullptr);
  fake_->SetMode(Mode::kHold);
  // Two batches, started at different times: each call keeps its own deadline.
  std::vector<absl::Time> started(kCalls);
  for (int i = 0; i < kCalls; ++i) {
    if (i == kFirst) {
      ASSERT_TRUE(WaitHeld(kFirst));
    }
    started[static_cast<size_t>(i)] = absl::Now();
    client->GetSessionAsync(SessionRef::Id(Key(i)), true, results.Slot(i));
  }
  ASSERT_TRUE(results.WaitAll());
  for (int i = 0; i < kCalls; ++i) {
    EXPECT_EQ(results.result(i).status().code(), absl::StatusCode::kDeadlineExceeded)
        << i << ": " << results.result(i).status();
    EXPECT_EQ(results.runs(i), 1);
    const absl::Duration took = results.done_at(i) - started[static_cast<size_t>(i)];
    EXPECT_GE(took, timeout / 2) << i;
    EXPECT_LT(took, timeout + absl::Seconds(2)) << i;
  }
  // The sidecar was told each call's time left.
  const auto received = fake_->received();
  ASSERT_EQ(received.size(), static_cast<size_t>(kCalls));
  for (const auto& c : received) {
    EXPECT_GT(c.timeout, absl::ZeroDuration()) << c.key;
    EXPECT_LE(c.timeout, timeout) << c.key;
  }

  // Late answers are ignored: they come before the next call's answer on the
  // same stream, so once that call is done they have been read.
  for (const auto& c : fake_->held()) {
    EXPECT_TRUE(fake_->Answer(c));
  }
  fake_->SetMode(Mode::kAnswer);
  auto next = client->GetSession(SessionRef::Id("next"));
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->info.id, "next");
  EXPECT_EQ(fake_->streams_opened(), 1);
  for (int i = 0; i < kCalls; ++i) {
    EXPECT_EQ(results.runs(i), 1) << i;
    EXPECT_EQ(results.result(i).status().code(), absl::StatusCode::kDeadlineExceeded);
  }
}

TEST_F(ClientStreamTest, SyncCallUnansweredEndsAtItsDeadline) {
  ClientOptions o = Options();
  o.call_timeout = absl::Milliseconds(300);
  auto client = Connect(o);
  ASSERT_NE(client, nullptr);
  fake_->SetMode(Mode::kHold);
  const absl::Time start = absl::Now();
  auto got = client->GetSession(SessionRef::Id(Key(0)));
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(got.status().code(), absl::StatusCode::kDeadlineExceeded) << got.status();
  EXPECT_GE(took, absl::Milliseconds(150));
  EXPECT_LT(took, absl::Milliseconds(300) + absl::Seconds(2));
}

TEST_F(ClientStreamTest, ASidecarThatNeverReads) {
  constexpr int kBound = 4;
  const absl::Duration timeout = absl::Seconds(3);
  Results<Session> results(kBound + 1);
  fake_->SetMode(Mode::kNeverRead);
  ClientOptions o = Options();
  o.call_timeout = timeout;
  o.max_calls_per_stream = kBound;
  auto client = Connect(o);
  ASSERT_NE(client, nullptr);
  const absl::Time start = absl::Now();
  for (int i = 0; i < kBound; ++i) {
    client->GetSessionAsync(SessionRef::Id(Key(i)), true, results.Slot(i));
  }
  // One more than the stream may hold fails at once, while the others wait.
  client->GetSessionAsync(SessionRef::Id(Key(kBound)), true, results.Slot(kBound));
  ASSERT_TRUE(WaitFor([&] { return results.done(kBound); }, timeout / 2));
  EXPECT_EQ(results.result(kBound).status().code(), absl::StatusCode::kResourceExhausted)
      << results.result(kBound).status();
  for (int i = 0; i < kBound; ++i) {
    EXPECT_FALSE(results.done(i)) << i;
  }

  // The held ones end at their deadline although the sidecar never answers.
  ASSERT_TRUE(results.WaitAll());
  for (int i = 0; i < kBound; ++i) {
    EXPECT_EQ(results.result(i).status().code(), absl::StatusCode::kDeadlineExceeded)
        << i << ": " << results.result(i).status();
    EXPECT_LT(results.done_at(i) - start, timeout + absl::Seconds(2)) << i;
    EXPECT_EQ(results.runs(i), 1);
  }
  EXPECT_EQ(fake_->requests_read(), 0);
  EXPECT_EQ(fake_->unary_gets(), 0);
}

TEST_F(ClientStreamTest, SyncCallToASidecarThatNeverReadsEndsAtItsDeadline) {
  fake_->SetMode(Mode::kNeverRead);
  ClientOptions o = Options();
  o.call_timeout = absl::Milliseconds(400);
  auto client = Connect(o);
  ASSERT_NE(client, nullptr);
  const absl::Time start = absl::Now();
  auto got = client->TouchSession(SessionRef::Id(Key(0)));
  EXPECT_EQ(got.status().code(), absl::StatusCode::kDeadlineExceeded) << got.status();
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(400) + absl::Seconds(2));
}

TEST_F(ClientStreamTest, Batching) {
  constexpr int kCalls = 64;
  Results<Session> results(kCalls);
  auto client = Connect(Options());
  ASSERT_NE(client, nullptr);
  fake_->SetMode(Mode::kHold);
  for (int i = 0; i < kCalls; ++i) {
    client->GetSessionAsync(SessionRef::Id(Key(i)), true, results.Slot(i));
  }
  ASSERT_TRUE(WaitHeld(kCalls));
  EXPECT_GT(fake_->max_calls_per_request(), 1);
  EXPECT_LT(fake_->requests_read(), kCalls);
  EXPECT_EQ(fake_->streams_opened(), 1);
  for (const auto& c : fake_->held()) {
    ASSERT_TRUE(fake_->Answer(c));
  }
  ASSERT_TRUE(results.WaitAll());
  for (int i = 0; i < kCalls; ++i) {
    auto got = results.result(i);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->info.id, Key(i));
  }
}

TEST_F(ClientStreamTest, ManyThreads) {
  constexpr int kThreads = 16;
  constexpr int kCallsPerThread = 200;
  ClientOptions o = Options();
  o.streams = 2;
  auto client = Connect(o);
  ASSERT_NE(client, nullptr);
  std::atomic<int> ok{0};
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCallsPerThread; ++i) {
        const std::string key = absl::StrCat("t", t, "-", i);
        if (i % 4 == 3) {
          auto got = client->UpdateSession(SessionRef::Id(key), {{"a", "1"}, {"b", "2"}});
          (got.ok() && got->id == key && got->version == 2 ? ok : wrong)++;
        } else {
          auto got = client->GetSession(SessionRef::Id(key));
          const bool mine = got.ok() && got->info.id == key && got->attributes.count("key") == 1 &&
                            got->attributes.at("key") == key;
          (mine ? ok : wrong)++;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), kThreads * kCallsPerThread);
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(fake_->streams_opened(), 2);
  // Spread over both streams.
  EXPECT_GT(fake_->calls_on_stream(0), 0);
  EXPECT_GT(fake_->calls_on_stream(1), 0);
  EXPECT_EQ(fake_->calls_on_stream(0) + fake_->calls_on_stream(1),
            kThreads * kCallsPerThread);
  EXPECT_EQ(fake_->unary_gets(), 0);
}

TEST_F(ClientStreamTest, AsyncCallbacksRunExactlyOnceAndDestructionCancels) {
  constexpr int kCalls = 10;
  Results<Session> results(kCalls);
  auto client = Connect(Options());
  ASSERT_NE(client, nullptr);
  fake_->SetMode(Mode::kHold);
  for (int i = 0; i < kCalls; ++i) {
    client->GetSessionAsync(SessionRef::Id(Key(i)), true, results.Slot(i));
  }
  ASSERT_TRUE(WaitHeld(kCalls));
  EXPECT_EQ(results.total(), 0);
  client.reset();
  // Checked at once: every `done` ran before the destructor returned.
  EXPECT_EQ(results.total(), kCalls);
  for (int i = 0; i < kCalls; ++i) {
    EXPECT_EQ(results.runs(i), 1) << i;
    EXPECT_EQ(results.result(i).status().code(), absl::StatusCode::kCancelled)
        << i << ": " << results.result(i).status();
  }
  // Answers arriving now reach no one (the client is gone).
  for (const auto& c : fake_->held()) fake_->Answer(c);
  EXPECT_EQ(results.total(), kCalls);
}

TEST_F(ClientStreamTest, AsyncArgumentErrorRunsDoneOnTheCallingThread) {
  auto client = Connect(Options());
  ASSERT_NE(client, nullptr);
  bool ran = false;
  absl::Status status;
  client->GetSessionAsync(SessionRef::Id(std::string("bad\xff", 4)), true,
                          [&](absl::StatusOr<Session> got) {
                            ran = true;
                            status = got.status();
                          });
  EXPECT_TRUE(ran);  // before GetSessionAsync returned
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(fake_->received().size(), 0u);
}

TEST_F(ClientStreamTest, DoneMayStartAnotherCall) {
  constexpr int kChain = 10;
  auto client = Connect(Options());
  ASSERT_NE(client, nullptr);
  std::atomic<int> completed{0};
  std::atomic<int> failed{0};
  std::function<void(int)> start = [&](int i) {
    client->GetSessionAsync(SessionRef::Id(Key(i)), true, [&, i](absl::StatusOr<Session> got) {
      if (!got.ok() || got->info.id != Key(i)) ++failed;
      ++completed;
      if (i + 1 < kChain) start(i + 1);
    });
  };
  start(0);
  ASSERT_TRUE(WaitFor([&] { return completed.load() == kChain; }));
  EXPECT_EQ(failed.load(), 0);
  client.reset();  // before `start` and the counters go
}

TEST_F(ClientStreamTest, AllSessionAndOptOutOperationsTravelOnTheStream) {
  auto client = Connect(Options());
  ASSERT_NE(client, nullptr);
  const SessionRef ref = SessionRef::Id("s1");
  auto created = client->CreateSession("alice", {{"a", "1"}});
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created->info.user_id, "alice");
  ASSERT_TRUE(client->GetSession(ref, false).ok());
  ASSERT_TRUE(client->UpdateSession(ref, {{"a", "1"}}, {"b"}, 3).ok());
  ASSERT_TRUE(client->TouchSession(ref).ok());
  auto destroyed = client->DestroySession(ref);
  ASSERT_TRUE(destroyed.ok()) << destroyed.status();
  EXPECT_TRUE(*destroyed);
  auto regenerated = client->RegenerateSession(ref);
  ASSERT_TRUE(regenerated.ok()) << regenerated.status();
  EXPECT_EQ(regenerated->info.id, "regenerated-s1");
  auto listed = client->ListUserSessions("alice");
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].user_id, "alice");
  auto count = client->DestroyUserSessions("alice");
  ASSERT_TRUE(count.ok()) << count.status();
  EXPECT_EQ(*count, 1u);
  EXPECT_TRUE(client->SetOptOut("alice", true).ok());
  auto opted = client->GetOptOut("alice");
  ASSERT_TRUE(opted.ok()) << opted.status();
  EXPECT_TRUE(*opted);

  std::vector<v1::PipeCall::OpCase> ops;
  for (const auto& c : fake_->received()) ops.push_back(c.op);
  EXPECT_THAT(ops, ::testing::ElementsAre(
                       v1::PipeCall::kCreate, v1::PipeCall::kGet, v1::PipeCall::kUpdate,
                       v1::PipeCall::kTouch, v1::PipeCall::kDestroy, v1::PipeCall::kRegenerate,
                       v1::PipeCall::kListUserSessions, v1::PipeCall::kDestroyUserSessions,
                       v1::PipeCall::kSetOptOut, v1::PipeCall::kGetOptOut));
  EXPECT_EQ(fake_->streams_opened(), 1);
}

TEST_F(ClientStreamTest, AnErrorAnswerKeepsItsCodeAndMessage) {
  Results<Session> results(1);
  auto client = Connect(Options());
  ASSERT_NE(client, nullptr);
  fake_->SetMode(Mode::kHold);
  client->GetSessionAsync(SessionRef::Id(Key(0)), true, results.Slot(0));
  ASSERT_TRUE(WaitHeld(1));
  ASSERT_TRUE(fake_->Answer(fake_->held()[0], grpc::StatusCode::NOT_FOUND, "no such session"));
  ASSERT_TRUE(results.WaitAll());
  EXPECT_EQ(results.result(0).status(), absl::NotFoundError("no such session"));
  EXPECT_EQ(fake_->received().size(), 1u);  // not retried
}

// A sidecar without Pipe (the unary fake answers UNIMPLEMENTED for it).
class ClientStreamFallbackTest : public testing::FakeSidecarTest<FakeSidecar> {
 protected:
  ClientOptions Options() const {
    ClientOptions o;
    o.socket_path = socket_;
    o.call_timeout = absl::Seconds(20);
    o.streams = 1;
    return o;
  }
};

using client_internal::Rpc;

TEST_F(ClientStreamFallbackTest, FallbackToUnary) {
  auto client = Client::Connect(Options());
  ASSERT_TRUE(client.ok()) << client.status();
  const SessionRef ref = SessionRef::Cookie(FakeSidecar::kCookie);
  auto got = (*client)->GetSession(ref);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->info.id, FakeSidecar::kSessionId);
  EXPECT_EQ(fake_->calls(Rpc::kGetSession), 1);
  auto updated = (*client)->UpdateSession(ref, {{"a", "1"}});
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(fake_->calls(Rpc::kUpdateSession), 1);
  // Later calls go straight to the unary RPCs.
  ASSERT_TRUE((*client)->GetSession(ref).ok());
  EXPECT_EQ(fake_->calls(Rpc::kGetSession), 2);
}

TEST_F(ClientStreamFallbackTest, CallsWaitingOnTheRefusedStreamAreSentUnaryOnce) {
  constexpr int kCalls = 16;
  Results<Session> results(kCalls);
  auto client = Client::Connect(Options());
  ASSERT_TRUE(client.ok()) << client.status();
  const SessionRef ref = SessionRef::Cookie(FakeSidecar::kCookie);
  for (int i = 0; i < kCalls; ++i) (*client)->GetSessionAsync(ref, true, results.Slot(i));
  ASSERT_TRUE(results.WaitAll());
  for (int i = 0; i < kCalls; ++i) {
    ASSERT_TRUE(results.result(i).ok()) << results.result(i).status();
    EXPECT_EQ(results.runs(i), 1);
  }
  // Each exactly once: the refused stream ran none of them.
  EXPECT_EQ(fake_->calls(Rpc::kGetSession), kCalls);
  // Not retried as failures either: UpdateSession (never retried) works too.
  auto updated = (*client)->UpdateSession(ref, {{"a", "1"}});
  EXPECT_TRUE(updated.ok()) << updated.status();
}

// The sidecar announces its receive limit; a write carrying more would end
// the stream for every call it holds, so batches stay below it.
TEST_F(ClientStreamTest, BatchesStayBelowTheLimitTheSidecarAnnounces) {
  constexpr size_t kLimit = 16 * 1024;
  constexpr int kCalls = 20;  // 4 KiB each: 80 KiB queued at once
  fake_->SetAnnouncedMaxMessageBytes(kLimit);
  fake_->SetMode(Mode::kHold);
  Results<SessionInfo> results(kCalls);
  auto client = Connect(Options());
  ASSERT_NE(client, nullptr);
  for (int i = 0; i < kCalls; ++i) {
    client->UpdateSessionAsync(SessionRef::Id(Key(i)), {{"a", std::string(4096, 'x')}}, {},
                               std::nullopt, results.Slot(i));
  }
  ASSERT_TRUE(WaitHeld(kCalls));
  EXPECT_LE(fake_->max_request_bytes(), kLimit);
  EXPECT_GT(fake_->requests_read(), 1);
  for (const auto& held : fake_->held()) ASSERT_TRUE(fake_->Answer(held));
  ASSERT_TRUE(results.WaitAll());
  for (int i = 0; i < kCalls; ++i) EXPECT_TRUE(results.result(i).ok()) << results.result(i).status();
}

// A call larger than the announced limit fails alone with RESOURCE_EXHAUSTED
// naming the limit, and is never sent: whether the lane learnt the limit
// after the call was queued (the first call of a new stream) or before.
TEST_F(ClientStreamTest, ACallLargerThanTheAnnouncedLimitFailsAloneUnsent) {
  fake_->SetAnnouncedMaxMessageBytes(16 * 1024);
  ClientOptions o = Options();
  o.max_retries = 0;
  auto client = Connect(o);
  ASSERT_NE(client, nullptr);
  const std::string big(32 * 1024, 'x');
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto refused = client->UpdateSession(SessionRef::Id("big"), {{"a", big}});
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted) << attempt;
    EXPECT_THAT(std::string(refused.status().message()),
                ::testing::HasSubstr("stateside-max-message-bytes = 16384"));
    auto fine = client->GetSession(SessionRef::Id(Key(attempt)));
    EXPECT_TRUE(fine.ok()) << fine.status();
  }
  for (const auto& c : fake_->received()) EXPECT_NE(c.key, "big");
  EXPECT_EQ(fake_->streams_opened(), 1);
}

// The app may start before its sidecar (same pod): each stream's connection
// is first tried while the socket does not exist yet, and waits out a
// reconnect backoff after that. Connect returns only once every stream can
// carry a call, so the first calls, Creates that are never retried, succeed
// on every stream.
TEST(ClientStartupTest, CallsRightAfterConnectSucceedWhenTheSidecarStartedLate) {
  ::stateside::testing::TempDir dir;
  ClientOptions o;
  o.socket_path = dir.File("late.sock");
  o.ready_timeout = absl::Seconds(30);
  o.call_timeout = absl::Seconds(20);
  o.streams = 4;
  absl::StatusOr<std::unique_ptr<Client>> connected = absl::UnknownError("not run");
  std::thread connect([&] { connected = Client::Connect(o); });
  // The sidecar starts late: the delay is the scenario, not a wait for an
  // event (the client's failed attempts cannot be observed from here).
  absl::SleepFor(absl::Milliseconds(300));
  auto fake = FakePipeSidecar::Start(o.socket_path);
  connect.join();
  ASSERT_TRUE(fake.ok()) << fake.status();
  ASSERT_TRUE(connected.ok()) << connected.status();
  for (int lane = 0; lane < o.streams; ++lane) {
    auto created = (*connected)->CreateSession(absl::StrCat("user-", lane), {});
    EXPECT_TRUE(created.ok()) << "call " << lane << ": " << created.status();
  }
  EXPECT_EQ((*fake)->streams_opened(), o.streams);
}

}  // namespace
}  // namespace stateside
