// The admin HTTP listener: routing, X-Instance-Id on every answer, limits,
// timeouts, and that hostile clients never block probes.
#include "sidecar/admin/http_server.h"

#include <optional>

#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sidecar/admin/access.h"
#include "tests/support/subprocess.h"
#include "tests/support/wait.h"
#include "tests/unit/admin/http_test_client.h"

namespace stateside::admin {
namespace {

using ::stateside::testing::Exchange;
using ::stateside::testing::GetRequest;
using ::stateside::testing::RawConnection;
using ::stateside::testing::RawResponse;
using ::testing::HasSubstr;

constexpr char kInstance[] = "test-instance-1";

AdminHttpOptions At(std::string address) {
  AdminHttpOptions options;
  options.address = std::move(address);
  return options;
}

class AdminHttpServerTest : public ::testing::Test {
 protected:
  // Starts a server with the test routes; `tweak` adjusts the options.
  void StartServer(void (*tweak)(AdminHttpOptions&) = nullptr) {
    AdminHttpOptions options;
    options.address = "127.0.0.1:0";
    options.instance_id = kInstance;
    if (tweak) tweak(options);
    std::vector<AdminRoute> routes;
    routes.push_back({"GET", "/health", "liveness and more", [](const HttpRequest&) {
                        return HttpResponse::Json(200, R"({"status":"ok"})");
                      }});
    routes.push_back({"GET", "/health/ready", "readiness", [this](const HttpRequest&) {
                        return ready_ ? HttpResponse::Text(200, "ready\n")
                                      : HttpResponse::Text(503, "not ready\n");
                      }});
    routes.push_back({"POST", "/drain", "start a drain", [this](const HttpRequest& r) {
                        ++drains_;
                        last_query_ = r.query;
                        HttpResponse out = HttpResponse::Text(
                            202, absl::StrCat("body=", r.body.size(), "\n"));
                        out.headers.emplace_back("X-Extra", "yes");
                        out.headers.emplace_back("X-Instance-Id", "spoofed");
                        return out;
                      }});
    routes.push_back({"GET", "/echo", "echoes the query", [](const HttpRequest& r) {
                        return HttpResponse::Text(200, r.query);
                      }});
    routes.push_back({"GET", "/big", "a 1 MiB body", [](const HttpRequest&) {
                        return HttpResponse::Text(200, std::string(1 << 20, 'b'));
                      }});
    routes.push_back({"GET", "/throws", "a broken handler", [](const HttpRequest&) -> HttpResponse {
                        throw std::runtime_error("boom");
                      }});
    server_ = std::make_unique<AdminHttpServer>(options, std::move(routes));
    ASSERT_TRUE(server_->Start().ok());
    port_ = server_->port();
    ASSERT_GT(port_, 0);
  }

  void TearDown() override {
    if (server_) server_->Stop();
  }

  // A fresh connection's GET of the readiness probe answers within `deadline`.
  bool ProbeAnswers(absl::Duration deadline) {
    std::optional<RawResponse> r =
        Exchange(port_, GetRequest("/health/ready"), deadline);
    return r && r->status == 200 && r->Header("x-instance-id") == kInstance;
  }

  std::unique_ptr<AdminHttpServer> server_;
  int port_ = 0;
  std::atomic<bool> ready_{true};
  std::atomic<int> drains_{0};
  std::string last_query_;  // written on the I/O thread, read after a reply
};

TEST_F(AdminHttpServerTest, ServesRouteWithInstanceIdAndContentType) {
  StartServer();
  auto r = Exchange(port_, GetRequest("/health"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, R"({"status":"ok"})");
  EXPECT_EQ(r->Header("content-type"), "application/json");
  EXPECT_EQ(r->Header("x-instance-id"), kInstance);
}

TEST_F(AdminHttpServerTest, HandlerDecidesStatus) {
  StartServer();
  ready_ = false;
  auto r = Exchange(port_, GetRequest("/health/ready"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->Header("x-instance-id"), kInstance);
}

TEST_F(AdminHttpServerTest, UnknownPathIs404WithInstanceId) {
  StartServer();
  for (const char* path : {"/", "/nope", "/health/", "/HEALTH", "/health/ready/x"}) {
    auto r = Exchange(port_, GetRequest(path));
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 404) << path;
    EXPECT_EQ(r->Header("x-instance-id"), kInstance) << path;
  }
}

TEST_F(AdminHttpServerTest, WrongMethodIs405WithAllow) {
  StartServer();
  auto r = Exchange(port_, GetRequest("/health", "DELETE"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405);
  EXPECT_EQ(r->Header("allow"), "GET, HEAD");
  EXPECT_EQ(r->Header("x-instance-id"), kInstance);

  r = Exchange(port_, GetRequest("/drain", "GET"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405);
  EXPECT_EQ(r->Header("allow"), "POST");
  EXPECT_EQ(drains_, 0);
}

TEST_F(AdminHttpServerTest, UnknownMethodTokenIs405OnKnownPath) {
  StartServer();
  auto r = Exchange(port_, GetRequest("/health", "BREW"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405);
  EXPECT_EQ(r->Header("x-instance-id"), kInstance);
}

TEST_F(AdminHttpServerTest, HeadAnswersLikeGetWithoutBody) {
  StartServer();
  auto c = RawConnection::Connect(port_);
  ASSERT_TRUE(c.ok());
  // Pipelined: if HEAD sent a body, the GET's response would not parse.
  ASSERT_TRUE(c->Send(GetRequest("/health", "HEAD") + GetRequest("/health")));
  auto head = c->ReadResponse(absl::Seconds(5), /*head=*/true);
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->Header("content-length"), "15");
  auto get = c->ReadResponse(absl::Seconds(5));
  ASSERT_TRUE(get);
  EXPECT_EQ(get->status, 200);
  EXPECT_EQ(get->body, R"({"status":"ok"})");
}

TEST_F(AdminHttpServerTest, KeepAliveServesManyRequestsOnOneConnection) {
  StartServer();
  auto c = RawConnection::Connect(port_);
  ASSERT_TRUE(c.ok());
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(c->Send(GetRequest(i % 2 ? "/health" : "/nope")));
    auto r = c->ReadResponse(absl::Seconds(5));
    ASSERT_TRUE(r) << i;
    EXPECT_EQ(r->status, i % 2 ? 200 : 404);
    EXPECT_NE(r->Header("connection"), "close");
  }
}

TEST_F(AdminHttpServerTest, ConnectionCloseAndHttp10AreHonoured) {
  StartServer();
  auto c = RawConnection::Connect(port_);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(c->Send("GET /health HTTP/1.0\r\n\r\n"));
  auto r = c->ReadResponse(absl::Seconds(5));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(c->WaitClosed(absl::Seconds(5)));

  auto c2 = RawConnection::Connect(port_);
  ASSERT_TRUE(c2.ok());
  ASSERT_TRUE(c2->Send("GET /health HTTP/1.1\r\nConnection: close\r\n\r\n"));
  r = c2->ReadResponse(absl::Seconds(5));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->Header("connection"), "close");
  EXPECT_TRUE(c2->WaitClosed(absl::Seconds(5)));
}

TEST_F(AdminHttpServerTest, QueryAndBodyReachTheHandler) {
  StartServer();
  auto r = Exchange(port_, GetRequest("/echo?a=1&b=2"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "a=1&b=2");

  r = Exchange(port_,
               "POST /drain?now=1 HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 202);
  EXPECT_EQ(r->body, "body=5\n");
  EXPECT_EQ(r->Header("x-extra"), "yes");
  EXPECT_EQ(r->Header("x-instance-id"), kInstance);  // not the handler's
  EXPECT_EQ(drains_, 1);
  EXPECT_EQ(last_query_, "now=1");
}

TEST_F(AdminHttpServerTest, ThrowingHandlerIs500AndServerSurvives) {
  StartServer();
  auto r = Exchange(port_, GetRequest("/throws"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 500);
  EXPECT_EQ(r->Header("x-instance-id"), kInstance);
  EXPECT_TRUE(ProbeAnswers(absl::Seconds(5)));
}

TEST_F(AdminHttpServerTest, BodyOverLimitIs413) {
  StartServer();
  auto c = RawConnection::Connect(port_);
  ASSERT_TRUE(c.ok());
  std::string body(100 * 1024, 'x');
  c->Send(absl::StrCat("POST /drain HTTP/1.1\r\nHost: t\r\nContent-Length: ",
                       body.size(), "\r\n\r\n", body));
  auto r = c->ReadResponse(absl::Seconds(5));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(r->Header("x-instance-id"), kInstance);
  EXPECT_TRUE(c->WaitClosed(absl::Seconds(5)));
  EXPECT_EQ(drains_, 0);
}

TEST_F(AdminHttpServerTest, ChunkedBodyOverLimitIs413) {
  StartServer();
  auto c = RawConnection::Connect(port_);
  ASSERT_TRUE(c.ok());
  std::string chunk(16 * 1024, 'y');
  std::string request = "POST /drain HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 6; ++i) absl::StrAppend(&request, "4000\r\n", chunk, "\r\n");
  request += "0\r\n\r\n";
  c->Send(request);
  auto r = c->ReadResponse(absl::Seconds(5));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(drains_, 0);
}

TEST_F(AdminHttpServerTest, HugeHeaderIs431) {
  StartServer();
  auto c = RawConnection::Connect(port_);
  ASSERT_TRUE(c.ok());
  c->Send(absl::StrCat("GET /health HTTP/1.1\r\nHost: t\r\nX-Big: ",
                       std::string(100 * 1024, 'h'), "\r\n\r\n"));
  auto r = c->ReadResponse(absl::Seconds(5));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 431);
  EXPECT_EQ(r->Header("x-instance-id"), kInstance);
  EXPECT_TRUE(c->WaitClosed(absl::Seconds(5)));
  EXPECT_TRUE(ProbeAnswers(absl::Seconds(5)));
}

TEST_F(AdminHttpServerTest, ManySmallHeadersOverLimitAre431) {
  StartServer();
  std::string request = "GET /health HTTP/1.1\r\nHost: t\r\n";
  for (int i = 0; i < 2000; ++i) absl::StrAppend(&request, "X-", i, ": v\r\n");
  auto r = Exchange(port_, request + "\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 431);
}

TEST_F(AdminHttpServerTest, NonHttpBytesGet400AndClose) {
  StartServer();
  const std::string garbage[] = {
      std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 15),
      std::string("\0\0\0\0\r\n\r\n", 8),
      "GET /health HTTP/9.9\r\n\r\n",
      "GET /health\r\n\r\n",
      "GET /health HTTP/1.1\r\nBad Header Line\r\n\r\n",
      "POST /drain HTTP/1.1\r\nContent-Length: nope\r\n\r\n",
  };
  for (const std::string& bytes : garbage) {
    auto c = RawConnection::Connect(port_);
    ASSERT_TRUE(c.ok());
    c->Send(bytes);
    auto r = c->ReadResponse(absl::Seconds(5));
    ASSERT_TRUE(r) << bytes;
    EXPECT_EQ(r->status, 400) << bytes;
    EXPECT_EQ(r->Header("x-instance-id"), kInstance);
    EXPECT_TRUE(c->WaitClosed(absl::Seconds(5))) << bytes;
  }
  EXPECT_EQ(drains_, 0);
  EXPECT_TRUE(ProbeAnswers(absl::Seconds(5)));
}

TEST_F(AdminHttpServerTest, PartialRequestGets408ThenClose) {
  StartServer([](AdminHttpOptions& o) { o.read_timeout = absl::Milliseconds(200); });
  auto c = RawConnection::Connect(port_);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(c->Send("GET /heal"));
  auto r = c->ReadResponse(absl::Seconds(5));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 408);
  EXPECT_EQ(r->Header("x-instance-id"), kInstance);
  EXPECT_TRUE(c->WaitClosed(absl::Seconds(5)));
}

TEST_F(AdminHttpServerTest, IdleConnectionIsClosedSilently) {
  StartServer([](AdminHttpOptions& o) { o.read_timeout = absl::Milliseconds(200); });
  auto c = RawConnection::Connect(port_);
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->ReadResponse(absl::Seconds(5)));  // closed, nothing sent
  EXPECT_TRUE(c->WaitClosed(absl::Seconds(1)));
}

TEST_F(AdminHttpServerTest, SlowlorisDoesNotBlockProbes) {
  StartServer([](AdminHttpOptions& o) { o.read_timeout = absl::Milliseconds(500); });
  constexpr int kSlow = 20;
  std::vector<RawConnection> slow;
  for (int i = 0; i < kSlow; ++i) {
    auto c = RawConnection::Connect(port_);
    ASSERT_TRUE(c.ok());
    slow.push_back(std::move(*c));
  }
  // The slow clients trickle a request that never ends, one byte per
  // connection every 10 ms, until the server cuts them off: each stops
  // sending once its answer came. (Bytes sent after the server's lingering
  // close would draw a TCP reset, which discards the unread answer.)
  std::vector<std::optional<RawResponse>> answers(kSlow);  // the trickler's until joined
  std::thread trickler([&] {
    const std::string endless = "GET /health HTTP/1.1\r\nX-Slow: " + std::string(4096, 's');
    const absl::Time give_up = absl::Now() + absl::Seconds(20);
    int answered = 0;
    for (size_t i = 0; i < endless.size() && answered < kSlow && absl::Now() < give_up; ++i) {
      for (int c = 0; c < kSlow; ++c) {
        if (answers[c].has_value()) continue;
        answers[c] = slow[c].ReadResponse(absl::ZeroDuration());
        if (answers[c].has_value()) {
          ++answered;
        } else {
          slow[c].Send(endless.substr(i, 1));
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));  // the client's pace
    }
  });
  // Probes on other connections answer promptly the whole time.
  absl::Time until = absl::Now() + absl::Seconds(1);
  int probes = 0;
  bool probes_ok = true;
  while (probes_ok && absl::Now() < until) {
    absl::Time start = absl::Now();
    probes_ok = ProbeAnswers(absl::Seconds(1));
    EXPECT_TRUE(probes_ok) << "probe " << probes;
    EXPECT_LT(absl::Now() - start, absl::Milliseconds(500));
    ++probes;
  }
  EXPECT_GT(probes, 10);
  // The server cut every slow client off at its read deadline: 408, close.
  trickler.join();
  for (int c = 0; c < kSlow; ++c) {
    ASSERT_TRUE(answers[c].has_value()) << "slow client " << c << " got no answer";
    EXPECT_EQ(answers[c]->status, 408);
    EXPECT_TRUE(slow[c].WaitClosed(absl::Seconds(5)));
  }
}

TEST_F(AdminHttpServerTest, ClientThatNeverReadsIsDroppedAtWriteDeadline) {
  StartServer([](AdminHttpOptions& o) { o.write_timeout = absl::Milliseconds(200); });
  auto stuck = RawConnection::Connect(port_);
  ASSERT_TRUE(stuck.ok());
  std::string pipelined;
  for (int i = 0; i < 100; ++i) pipelined += GetRequest("/big");
  ASSERT_TRUE(stuck->Send(pipelined));  // ~100 MiB of answers, never read
  EXPECT_TRUE(ProbeAnswers(absl::Seconds(1)));
  // Once the server gives up, our writes meet a reset.
  EXPECT_TRUE(stateside::testing::WaitFor([&] { return !stuck->Send("x"); },
                                          absl::Seconds(10)));
  EXPECT_TRUE(ProbeAnswers(absl::Seconds(1)));
}

TEST_F(AdminHttpServerTest, TwoHundredConcurrentConnectionsAllAnswered) {
  // All from 127.0.0.1: lift the per-peer cap (OnePeerCannotTakeEverySlot).
  StartServer([](AdminHttpOptions& o) { o.max_connections_per_peer = 200; });
  constexpr int kConnections = 200;
  std::vector<RawConnection> conns;
  for (int i = 0; i < kConnections; ++i) {
    auto c = RawConnection::Connect(port_);
    ASSERT_TRUE(c.ok()) << i;
    conns.push_back(std::move(*c));
  }
  for (RawConnection& c : conns) ASSERT_TRUE(c.Send(GetRequest("/health/ready")));
  int answered = 0;
  for (RawConnection& c : conns) {
    auto r = c.ReadResponse(absl::Seconds(10));
    if (r && r->status == 200 && r->Header("x-instance-id") == kInstance) ++answered;
  }
  EXPECT_EQ(answered, kConnections);
}

TEST_F(AdminHttpServerTest, ConnectionsPastTheCapAreClosed) {
  StartServer([](AdminHttpOptions& o) { o.max_connections = 3; });
  std::vector<RawConnection> held;
  for (int i = 0; i < 3; ++i) {
    auto c = RawConnection::Connect(port_);
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE(c->Send(GetRequest("/health")));
    ASSERT_TRUE(c->ReadResponse(absl::Seconds(5)));  // accepted and counted
    held.push_back(std::move(*c));
  }
  auto extra = RawConnection::Connect(port_);
  ASSERT_TRUE(extra.ok());
  extra->Send(GetRequest("/health"));
  EXPECT_FALSE(extra->ReadResponse(absl::Seconds(5)));
  EXPECT_TRUE(extra->WaitClosed(absl::Seconds(1)));
  // Freeing a slot lets the next client in.
  held.pop_back();
  EXPECT_TRUE(stateside::testing::WaitFor([&] { return ProbeAnswers(absl::Seconds(1)); }));
}

TEST_F(AdminHttpServerTest, OnePeerCannotTakeEverySlot) {
  // The whole cap would let 40 in; one peer gets 32 of them.
  static std::atomic<int> refused{0};
  refused = 0;
  StartServer([](AdminHttpOptions& o) {
    o.max_connections = 40;
    o.max_connections_per_peer = 32;
    o.on_connection_refused = [] { ++refused; };
  });
  std::vector<RawConnection> held;
  for (int i = 0; i < 32; ++i) {
    auto c = RawConnection::Connect("127.0.0.1", port_, "127.0.0.1");
    ASSERT_TRUE(c.ok()) << c.status();
    ASSERT_TRUE(c->Send(GetRequest("/health")));
    ASSERT_TRUE(c->ReadResponse(absl::Seconds(5))) << i;  // accepted and counted
    held.push_back(*std::move(c));
  }
  // The 33rd from the same peer is closed without an answer...
  auto extra = RawConnection::Connect("127.0.0.1", port_, "127.0.0.1");
  ASSERT_TRUE(extra.ok());
  extra->Send(GetRequest("/health/ready"));
  EXPECT_FALSE(extra->ReadResponse(absl::Seconds(5)));
  EXPECT_TRUE(extra->WaitClosed(absl::Seconds(1)));
  EXPECT_EQ(refused, 1);
  // ...while another peer (the kubelet's probe) still gets through.
  auto probe = RawConnection::Connect("127.0.0.1", port_, "127.0.0.2");
  ASSERT_TRUE(probe.ok()) << probe.status();
  ASSERT_TRUE(probe->Send(GetRequest("/health/ready")));
  auto answer = probe->ReadResponse(absl::Seconds(5));
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->status, 200);
  // A slot given back is the peer's again.
  held.front().Close();
  EXPECT_TRUE(stateside::testing::WaitFor([&] {
    auto again = RawConnection::Connect("127.0.0.1", port_, "127.0.0.1");
    if (!again.ok() || !again->Send(GetRequest("/health"))) return false;
    return again->ReadResponse(absl::Seconds(1)).has_value();
  }));
}

TEST_F(AdminHttpServerTest, HandlersSeeThePeerAddress) {
  std::string seen;
  AdminHttpServer server(At("127.0.0.1:0"),
                         {{"GET", "/peer", "", [&](const HttpRequest& r) {
                             seen = r.peer_address;
                             return HttpResponse::Text(200, r.peer);
                           }}});
  ASSERT_TRUE(server.Start().ok());
  auto c = RawConnection::Connect("127.0.0.1", server.port(), "127.0.0.3");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE(c->Send(GetRequest("/peer")));
  auto r = c->ReadResponse(absl::Seconds(5));
  ASSERT_TRUE(r);
  EXPECT_EQ(seen, "127.0.0.3");
  EXPECT_THAT(r->body, ::testing::StartsWith("127.0.0.3:"));
}

TEST(AdminHttpServerAccessTest, GuardedRouteRefusesARemotePeerWith403) {
  const std::optional<std::string> local = stateside::testing::NonLoopbackLocalAddress();
  if (!local) GTEST_SKIP() << "this machine has no non-loopback IPv4 address";
  int drains = 0;
  const AdminAccess access(nullptr);
  AdminHttpServer server(
      At("0.0.0.0:0"),
      {{"POST", "/drain", "", access.Guard([&](const HttpRequest&) {
                                ++drains;
                                return HttpResponse::Text(202, "draining\n");
                              },
                              nullptr)}});
  ASSERT_TRUE(server.Start().ok());
  auto remote = RawConnection::Connect(*local, server.port());
  ASSERT_TRUE(remote.ok()) << remote.status();
  ASSERT_TRUE(remote->Send(GetRequest("/drain", "POST")));
  auto r = remote->ReadResponse(absl::Seconds(5));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 403);
  EXPECT_THAT(r->body, HasSubstr("\"error\""));
  EXPECT_EQ(drains, 0);
  auto loopback = Exchange(server.port(), GetRequest("/drain", "POST"));
  ASSERT_TRUE(loopback);
  EXPECT_EQ(loopback->status, 202);
  EXPECT_EQ(drains, 1);
}

TEST_F(AdminHttpServerTest, CurlSeesInstanceId) {
  StartServer();
  auto result = stateside::testing::Run(
      {"curl", "-sS", "-i", "--max-time", "5",
       absl::StrCat("http://127.0.0.1:", port_, "/health")});
  if (result.exit_status == 127 || result.err.find("No such file") != std::string::npos) {
    GTEST_SKIP() << "curl not installed";
  }
  ASSERT_EQ(result.exit_status, 0) << result.err;
  EXPECT_THAT(result.out, HasSubstr("HTTP/1.1 200 OK"));
  EXPECT_THAT(result.out, HasSubstr(absl::StrCat("X-Instance-Id: ", kInstance)));
}

TEST_F(AdminHttpServerTest, StopClosesConnectionsAndIsIdempotent) {
  StartServer();
  auto c = RawConnection::Connect(port_);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(c->Send(GetRequest("/health")));
  ASSERT_TRUE(c->ReadResponse(absl::Seconds(5)));
  server_->Stop();
  EXPECT_TRUE(c->WaitClosed(absl::Seconds(5)));
  EXPECT_FALSE(RawConnection::Connect(port_).ok());
  server_->Stop();
}

TEST(AdminHttpServerStartTest, RejectsBadAddresses) {
  for (const char* address : {"", "nonsense", "127.0.0.1", ":80", "127.0.0.1:99999",
                              "127.0.0.1:http", "no-such-host.invalid:1"}) {
    AdminHttpServer server(At(address), {});
    EXPECT_EQ(server.Start().code(), absl::StatusCode::kInvalidArgument) << address;
    EXPECT_EQ(server.port(), 0);
  }
}

TEST(AdminHttpServerStartTest, PortInUseIsUnavailable) {
  AdminHttpServer first(At("127.0.0.1:0"), {});
  ASSERT_TRUE(first.Start().ok());
  AdminHttpServer second(At(absl::StrCat("127.0.0.1:", first.port())), {});
  EXPECT_EQ(second.Start().code(), absl::StatusCode::kUnavailable);
}

TEST(AdminHttpServerStartTest, Ipv6LiteralBinds) {
  AdminHttpServer server(At("[::1]:0"), {});
  absl::Status s = server.Start();
  if (!s.ok()) GTEST_SKIP() << "no IPv6 loopback here: " << s;
  EXPECT_GT(server.port(), 0);
}

TEST(AdminHttpServerStartTest, BadRouteTablesAreRejected) {
  auto ok = [](const HttpRequest&) { return HttpResponse::Text(200, ""); };
  AdminHttpServer duplicate(At("127.0.0.1:0"),
                            {{"GET", "/a", "", ok}, {"GET", "/a", "", ok}});
  EXPECT_EQ(duplicate.Start().code(), absl::StatusCode::kInvalidArgument);
  AdminHttpServer no_handler(At("127.0.0.1:0"), {{"GET", "/a", "", nullptr}});
  EXPECT_EQ(no_handler.Start().code(), absl::StatusCode::kInvalidArgument);
  AdminHttpServer relative(At("127.0.0.1:0"), {{"GET", "a", "", ok}});
  EXPECT_EQ(relative.Start().code(), absl::StatusCode::kInvalidArgument);
}

TEST(AdminHttpServerStartTest, RouteHelpListsTheTable) {
  auto ok = [](const HttpRequest&) { return HttpResponse::Text(200, ""); };
  AdminHttpServer server({}, {{"GET", "/health", "the health", ok},
                              {"POST", "/drain", "start a drain", ok}});
  EXPECT_EQ(server.RouteHelp(), "GET /health  the health\nPOST /drain  start a drain\n");
}

}  // namespace
}  // namespace stateside::admin
