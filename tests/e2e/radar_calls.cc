// radar-app request helpers for the end-to-end tests.
#include "tests/e2e/radar_calls.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace stateside::testing {

HttpRequest RadarGet(const std::string& target, const std::string& cookie) {
  HttpRequest request;
  request.method = "GET";
  request.target = target;
  if (!cookie.empty()) request.headers.emplace_back("Cookie", cookie);
  return request;
}

HttpRequest RadarPost(const std::string& target, const nlohmann::json& body,
                      const std::string& cookie) {
  HttpRequest request = RadarGet(target, cookie);
  request.method = "POST";
  // radar-app takes JSON POSTs only (415 otherwise), an empty body too.
  request.headers.emplace_back("Content-Type", "application/json");
  if (!body.is_null()) request.body = body.dump();
  return request;
}

std::string CookieHeader(const HttpResponse& response) {
  const std::vector<std::string> cookies = response.SetCookies();
  if (cookies.empty()) return "";
  return cookies.front().substr(0, cookies.front().find(';'));
}

absl::StatusOr<std::string> Login(int port, const std::string& user) {
  auto response = HttpCall(port, RadarPost("/login", {{"user", user}}));
  if (!response.ok()) return response.status();
  const std::string cookie = CookieHeader(*response);
  if (response->status != 200 || cookie.find('=') == std::string::npos ||
      cookie.back() == '=') {
    return absl::InternalError(
        absl::StrCat("login of ", user, " on port ", port, ": ", Describe(*response),
                     " Set-Cookie: ", response->Header("Set-Cookie")));
  }
  return cookie;
}

nlohmann::json BodyJson(const HttpResponse& response) {
  return nlohmann::json::parse(response.body, nullptr, /*allow_exceptions=*/false);
}

std::string Describe(const HttpResponse& response) {
  return absl::StrCat(response.status, " [", response.Header("X-Instance-Id"), "] ",
                      response.body);
}

absl::StatusOr<nlohmann::json> NextJson(WebSocketClient& ws, absl::Duration timeout) {
  auto message = ws.Read(timeout);
  if (!message.ok()) return message.status();
  if (message->closed) {
    return absl::UnavailableError(absl::StrCat("closed with code ", message->close_code));
  }
  nlohmann::json json = nlohmann::json::parse(message->text, nullptr, false);
  if (json.is_discarded() || !json.is_object()) {
    return absl::InternalError(absl::StrCat("not a JSON object: ", message->text));
  }
  return json;
}

absl::StatusOr<RadarSocket> OpenSocket(int port, const std::string& cookie) {
  auto ws = WebSocketClient::Connect(port, "/ws", {{"Cookie", cookie}});
  if (!ws.ok()) return ws.status();
  auto hello = NextJson(**ws);
  if (!hello.ok()) {
    return absl::Status(hello.status().code(),
                        absl::StrCat("waiting for hello: ", hello.status().message()));
  }
  if (hello->value("event", "") != "hello" || hello->value("instance", "").empty()) {
    return absl::InternalError(absl::StrCat("first message is not a hello: ", hello->dump()));
  }
  return RadarSocket{*std::move(ws), *std::move(hello)};
}

absl::Status Join(WebSocketClient& ws, const std::string& room) {
  if (absl::Status sent = ws.Send(nlohmann::json{{"join", room}}.dump()); !sent.ok()) {
    return sent;
  }
  std::string skipped;
  while (true) {
    auto message = NextJson(ws);
    if (!message.ok()) {
      return absl::Status(message.status().code(),
                          absl::StrCat("waiting for {\"joined\":\"", room, "\"}: ",
                                       message.status().message(), "; before it: ", skipped));
    }
    if (message->value("joined", "") == room) return absl::OkStatus();
    absl::StrAppend(&skipped, message->dump(), " ");
  }
}

}  // namespace stateside::testing
