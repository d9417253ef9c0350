// The admin port of the real `stateside` binary as a remote peer meets it:
// POST /drain from a non-loopback address is refused (403 without a token,
// 401 without the right one) while the probes keep answering and the
// instance keeps serving; the token file is checked at start; /info and
// /metrics show no socket path and no secret.
#include <grpcpp/grpcpp.h>

#include <fstream>
#include <map>
#include <optional>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "stateside/v1/lifecycle.grpc.pb.h"
#include "tests/support/sidecar_process.h"
#include "tests/support/subprocess.h"
#include "tests/support/test_secrets.h"
#include "tests/support/temp_dir.h"
#include "tests/unit/admin/http_test_client.h"

namespace stateside {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::RawConnection;
using testing::RawResponse;
using testing::Subprocess;
namespace v1 = ::stateside::v1;

constexpr char kToken[] = "admin-token-0123456789abcdef-0123456789";
using testing::kTestKeyHex;

class AdminProcessTest : public ::testing::Test {
 protected:
  // Starts the sidecar with its admin listener on every interface (as in a
  // pod), port 0, and waits until it serves.
  void StartSidecar(std::map<std::string, std::string> env = {}) {
    env["INSTANCE_ID"] = "admin-test";
    auto sidecar = testing::StartSidecarProcess({.socket_path = socket_,
                                                 .admin_host = "0.0.0.0",
                                                 .env = env,
                                                 .clear_env = true,
                                                 .log_path = dir_.File("sidecar.log")});
    ASSERT_TRUE(sidecar.ok()) << sidecar.status();
    process_.emplace(std::move(sidecar->process));
    port_ = sidecar->admin_port;
    channel_ = grpc::CreateChannel("unix:" + socket_, grpc::InsecureChannelCredentials());
  }

  // One request from `host` (connecting to the same address) on a fresh
  // connection.
  std::optional<RawResponse> Http(const std::string& host, const std::string& path,
                                  const std::string& method = "GET",
                                  const std::string& authorization = "") {
    auto c = RawConnection::Connect(host, port_);
    if (!c.ok()) return std::nullopt;
    std::string request = absl::StrCat(method, " ", path, " HTTP/1.1\r\nHost: t\r\n");
    if (!authorization.empty()) absl::StrAppend(&request, "Authorization: ", authorization, "\r\n");
    request += "Content-Length: 0\r\n\r\n";
    if (!c->Send(request)) return std::nullopt;
    return c->ReadResponse(absl::Seconds(5));
  }

  v1::DrainState DrainStateOverGrpc() {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::GetInstanceResponse response;
    EXPECT_TRUE(v1::LifecycleService::NewStub(channel_)
                    ->GetInstance(&context, {}, &response)
                    .ok());
    return response.instance().drain_state();
  }

  // A non-loopback address of this machine to come from; "" if none.
  std::string RemoteAddress() {
    return testing::NonLoopbackLocalAddress().value_or("");
  }

  testing::TempDir dir_;
  std::string socket_ = dir_.File("run/api.sock");
  std::optional<Subprocess> process_;
  int port_ = 0;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(AdminProcessTest, RemotePostDrainWithoutTokenIs403AndThePodKeepsServing) {
  const std::string remote = RemoteAddress();
  if (remote.empty()) {
    GTEST_SKIP() << "no non-loopback IPv4 address on this machine: a remote "
                    "peer cannot be made without a network";
  }
  StartSidecar();
  auto refused = Http(remote, "/drain", "POST");
  ASSERT_TRUE(refused.has_value()) << process_->ReadLog();
  EXPECT_EQ(refused->status, 403);
  EXPECT_EQ(refused->Header("content-type"), "application/json");
  auto body = nlohmann::json::parse(refused->body, nullptr, false);
  ASSERT_TRUE(body.is_object()) << refused->body;
  EXPECT_THAT(body.value("error", ""), HasSubstr("loopback"));
  // The probes still answer the remote peer, and nothing drains.
  auto ready = Http(remote, "/health/ready");
  ASSERT_TRUE(ready.has_value());
  EXPECT_EQ(ready->status, 200);
  auto health = Http(remote, "/health");
  ASSERT_TRUE(health.has_value());
  EXPECT_EQ(nlohmann::json::parse(health->body).value("drain_state", ""), "SERVING");
  EXPECT_EQ(DrainStateOverGrpc(), v1::DRAIN_STATE_SERVING);
  auto metrics = Http("127.0.0.1", "/metrics");
  ASSERT_TRUE(metrics.has_value());
  EXPECT_THAT(metrics->body,
              HasSubstr("stateside_admin_requests_refused_total{reason=\"not_loopback\","
                        "route=\"/drain\"} 1"));
  // From loopback the same request drains.
  auto accepted = Http("127.0.0.1", "/drain", "POST");
  ASSERT_TRUE(accepted.has_value());
  EXPECT_EQ(accepted->status, 202);
  EXPECT_EQ(Http(remote, "/health/ready")->status, 503);
}

// POST /keys/rewrap writes to every stored value: the access rule of POST
// /drain. On the memory backend there is nothing to sweep.
TEST_F(AdminProcessTest, RemotePostKeysRewrapIs403AndTheMemoryBackendIsDoneAtOnce) {
  StartSidecar();
  const std::string remote = RemoteAddress();
  if (!remote.empty()) {
    auto refused = Http(remote, "/keys/rewrap", "POST");
    ASSERT_TRUE(refused.has_value()) << process_->ReadLog();
    EXPECT_EQ(refused->status, 403);
    EXPECT_THAT(Http("127.0.0.1", "/metrics")->body,
                HasSubstr("stateside_admin_requests_refused_total{reason=\"not_loopback\","
                          "route=\"/keys/rewrap\"} 1"));
  }
  auto bad_rate = Http("127.0.0.1", "/keys/rewrap?rate=-1", "POST");
  ASSERT_TRUE(bad_rate.has_value());
  EXPECT_EQ(bad_rate->status, 400) << bad_rate->body;
  auto started = Http("127.0.0.1", "/keys/rewrap?rate=10", "POST");
  ASSERT_TRUE(started.has_value());
  EXPECT_EQ(started->status, 202);
  auto body = nlohmann::json::parse(started->body, nullptr, false);
  EXPECT_EQ(body.value("state", ""), "done") << started->body;
  auto status = Http(remote.empty() ? "127.0.0.1" : remote, "/keys/rewrap");
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->status, 200);
  EXPECT_THAT(status->body, HasSubstr("memory backend"));
}

TEST_F(AdminProcessTest, WithATokenEveryPeerMustSendIt) {
  StartSidecar({{"STATESIDE_ADMIN_TOKEN_FILE", dir_.WriteFile("token", std::string(kToken) + "\n")}});
  const std::string remote = RemoteAddress();
  std::vector<std::string> peers = {"127.0.0.1"};
  if (!remote.empty()) peers.push_back(remote);
  for (const std::string& peer : peers) {
    SCOPED_TRACE(peer);
    auto missing = Http(peer, "/drain", "POST");
    ASSERT_TRUE(missing.has_value());
    EXPECT_EQ(missing->status, 401);
    EXPECT_EQ(missing->Header("www-authenticate"), "Bearer realm=\"stateside-admin\"");
    auto wrong = Http(peer, "/drain", "POST", "Bearer not-the-token-0123456789abcdef");
    ASSERT_TRUE(wrong.has_value());
    EXPECT_EQ(wrong->status, 401);
    EXPECT_THAT(wrong->Header("www-authenticate"), HasSubstr("invalid_token"));
  }
  EXPECT_EQ(DrainStateOverGrpc(), v1::DRAIN_STATE_SERVING);
  auto accepted = Http(peers.back(), "/drain", "POST", std::string("Bearer ") + kToken);
  ASSERT_TRUE(accepted.has_value());
  EXPECT_EQ(accepted->status, 202);
  EXPECT_EQ(Http("127.0.0.1", "/health/ready")->status, 503);
  EXPECT_THAT(process_->ReadLog(), Not(HasSubstr(kToken)));
}

TEST_F(AdminProcessTest, ShortTokenFileExits2NamingTheSetting) {
  const testing::RunResult result = testing::Run(
      {"env", "-i",
       "STATESIDE_ADMIN_TOKEN_FILE=" + dir_.WriteFile("short", "too-short-token\n"),
       "STATESIDE_SOCKET=" + socket_, testing::BinPath("stateside")},
      {}, absl::Seconds(30));
  EXPECT_EQ(result.exit_status, 2) << result.err;
  EXPECT_THAT(result.err, HasSubstr("STATESIDE_ADMIN_TOKEN_FILE"));
  EXPECT_THAT(result.err, Not(HasSubstr("too-short-token")));
}

TEST_F(AdminProcessTest, InfoAndMetricsShowNoSocketPathAndNoSecret) {
  const std::string secret = "a-cookie-secret-that-must-stay-hidden-0123";
  StartSidecar({{"SESSION_ENCRYPTION_KEYS", std::string("kid1:") + kTestKeyHex},
                {"SESSION_SECRET", secret},
                {"STATESIDE_ADMIN_TOKEN_FILE", dir_.WriteFile("token", kToken)}});
  for (const char* path : {"/", "/info", "/metrics", "/health"}) {
    SCOPED_TRACE(path);
    auto r = Http("127.0.0.1", path);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->status, 200);
    EXPECT_THAT(r->body, Not(HasSubstr(socket_)));
    EXPECT_THAT(r->body, Not(HasSubstr("api.sock")));
    EXPECT_THAT(r->body, Not(HasSubstr(kTestKeyHex)));
    EXPECT_THAT(r->body, Not(HasSubstr(secret)));
    EXPECT_THAT(r->body, Not(HasSubstr(kToken)));
  }
  auto info = nlohmann::json::parse(Http("127.0.0.1", "/info")->body);
  EXPECT_FALSE(info.contains("socket"));
  EXPECT_EQ(info.value("id", ""), "admin-test");
  // The status page's data: key ids (never keys), the cluster, readiness.
  ASSERT_EQ(info["keys"].size(), 1u) << info.dump();
  EXPECT_EQ(info["keys"][0].value("id", ""), "kid1");
  EXPECT_EQ(info["keys"][0].value("primary", false), true);
  ASSERT_EQ(info["instances"]["list"].size(), 1u) << info.dump();
  EXPECT_EQ(info["instances"]["list"][0].value("id", ""), "admin-test");
  EXPECT_EQ(info["not_ready_reasons"], nlohmann::json::array());
  EXPECT_TRUE(info["sessions"].contains("not_found_by_cause")) << info.dump();
  EXPECT_TRUE(info["realtime"].contains("gaps_by_reason")) << info.dump();
  auto page = Http("127.0.0.1", "/");
  ASSERT_TRUE(page.has_value());
  EXPECT_THAT(page->Header("content-type"), HasSubstr("text/html"));
  EXPECT_THAT(page->Header("content-security-policy"), HasSubstr("default-src 'none'"));
  EXPECT_THAT(page->body, HasSubstr("<td id=\"instance-id\">admin-test</td>"));
  EXPECT_THAT(page->body, Not(HasSubstr("<script")));
}

}  // namespace
}  // namespace stateside
