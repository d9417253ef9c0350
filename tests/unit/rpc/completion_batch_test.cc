// CompletionBatch: deferred actions run when the outermost scope ends, in
// order, including those deferred while they run; another thread sees no
// scope.
#include "sidecar/common/completion_batch.h"

#include <string>
#include <thread>

#include "gtest/gtest.h"

namespace stateside {
namespace {

TEST(CompletionBatchTest, ActionsRunWhenTheOutermostScopeEndsInOrder) {
  std::string log;
  EXPECT_FALSE(CompletionBatch::Open());
  {
    CompletionBatch outer;
    EXPECT_TRUE(CompletionBatch::Open());
    CompletionBatch::Defer([&] { log += "a"; });
    {
      CompletionBatch inner;
      CompletionBatch::Defer([&] { log += "b"; });
    }
    EXPECT_EQ(log, "") << "an inner scope's end runs nothing";
    CompletionBatch::Defer([&] { log += "c"; });
    EXPECT_EQ(log, "");
  }
  EXPECT_EQ(log, "abc");
  EXPECT_FALSE(CompletionBatch::Open());
}

TEST(CompletionBatchTest, AnActionDeferredByAnActionRunsInTheSamePass) {
  std::string log;
  {
    CompletionBatch batch;
    CompletionBatch::Defer([&] {
      log += "a";
      EXPECT_TRUE(CompletionBatch::Open());
      CompletionBatch::Defer([&] { log += "c"; });
    });
    CompletionBatch::Defer([&] { log += "b"; });
  }
  EXPECT_EQ(log, "abc");
  // The pass left nothing behind for the next scope.
  { CompletionBatch again; }
  EXPECT_EQ(log, "abc");
}

TEST(CompletionBatchTest, AnotherThreadSeesNoScope) {
  CompletionBatch batch;
  bool open_there = true;
  std::thread([&] { open_there = CompletionBatch::Open(); }).join();
  EXPECT_FALSE(open_there);
  EXPECT_TRUE(CompletionBatch::Open());
}

}  // namespace
}  // namespace stateside
