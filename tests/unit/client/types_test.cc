// The public value types: SessionRef detection, names, the default socket.
#include "stateside/types.h"

#include <cstdlib>

#include "gtest/gtest.h"
#include "stateside/client.h"

namespace stateside {
namespace {

TEST(SessionRefTest, TextWithADotIsACookie) {
  EXPECT_EQ(SessionRef::Parse("abc.sig"), SessionRef::Cookie("abc.sig"));
  EXPECT_EQ(SessionRef::Parse("."), SessionRef::Cookie("."));
  EXPECT_EQ(SessionRef::Parse("a.b.c"), SessionRef::Cookie("a.b.c"));
}

TEST(SessionRefTest, TextWithoutADotIsAnId) {
  EXPECT_EQ(SessionRef::Parse("c2Vzc2lvbi1pZC1mb3ItdGVzdHMtMDEyMzQ1Njc4OWE"),
            SessionRef::Id("c2Vzc2lvbi1pZC1mb3ItdGVzdHMtMDEyMzQ1Njc4OWE"));
  EXPECT_EQ(SessionRef::Parse("-_x"), SessionRef::Id("-_x"));
  EXPECT_EQ(SessionRef::Parse(""), SessionRef::Id(""));
}

TEST(TypesTest, NamesOfEnums) {
  EXPECT_EQ(DrainStateName(DrainState::kDraining), "DRAINING");
  EXPECT_EQ(DrainStateName(DrainState::kUnspecified), "UNSPECIFIED");
  EXPECT_EQ(ServingStatusName(ServingStatus::kNotServing), "NOT_SERVING");
  EXPECT_EQ(ServingStatusName(ServingStatus::kServing), "SERVING");
}

TEST(ClientOptionsTest, SocketPathComesFromTheEnvironmentOrTheDefault) {
  const char* saved = std::getenv("STATESIDE_SOCKET");
  const std::string saved_value = saved ? saved : "";
  setenv("STATESIDE_SOCKET", "/run/x/s.sock", 1);
  EXPECT_EQ(ClientOptions().socket_path, "/run/x/s.sock");
  setenv("STATESIDE_SOCKET", "", 1);
  EXPECT_EQ(ClientOptions().socket_path, "/tmp/stateside/stateside.sock");
  unsetenv("STATESIDE_SOCKET");
  EXPECT_EQ(DefaultSocketPath(), "/tmp/stateside/stateside.sock");
  if (saved) setenv("STATESIDE_SOCKET", saved_value.c_str(), 1);
}

}  // namespace
}  // namespace stateside
