// WebSocketSession: registration, upgrade, join/leave and the write queue.
#include "app/websocket_session.h"

#include <boost/asio/post.hpp>

#include <utility>
#include <vector>

#include "app/browser_guard.h"
#include "app/websocket_hub.h"
#include "spdlog/spdlog.h"

namespace radar {
namespace {

namespace beast = boost::beast;
namespace asio = boost::asio;

// The closing handshake and the upgrade must finish within this; a peer
// silent for kIdle (it does not even answer our pings, sent at kIdle / 2)
// is cut: a vanished or stuck client does not hold a connection forever.
constexpr auto kHandshakeTimeout = std::chrono::seconds(10);
constexpr auto kIdleTimeout = std::chrono::seconds(30);

std::shared_ptr<const std::string> Message(const Json& json) {
  return std::make_shared<const std::string>(
      json.dump(-1, ' ', false, Json::error_handler_t::replace));
}

}  // namespace

WebSocketSession::WebSocketSession(const WebSocketDeps* deps, beast::tcp_stream stream,
                                   std::string conn_id, SocketOwner owner,
                                   LoadLimit::Slot connection)
    : deps_(deps),
      conn_id_(std::move(conn_id)),
      owner_(std::move(owner)),
      connection_(std::move(connection)),
      executor_(stream.get_executor()),
      ws_(std::move(stream)),
      close_timer_(executor_) {
  deps_->drain->WorkStarted();
  // The first message, ahead of any event that arrives during the upgrade.
  queue_.push_back(Message(Json{{"event", "hello"},
                                {"conn", conn_id_},
                                {"instance", deps_->instance},
                                {"user", owner_.user}}));
  queued_bytes_ = queue_.front()->size();
}

WebSocketSession::~WebSocketSession() = default;

void WebSocketSession::Start(Request request) {
  request_ = std::move(request);
  deps_->hub->Add(conn_id_, weak_from_this(), owner_);
  call_pending_ = true;
  deps_->client->RegisterConnectionAsync(
      conn_id_, owner_.user, {}, [self = shared_from_this()](absl::Status status) {
        asio::post(self->executor_,
                   [self, status = std::move(status)] { self->OnRegistered(status); });
      });
}

bool WebSocketSession::CallAnswered() {
  call_pending_ = false;
  if (!finished_) return true;
  Unregister();  // Finish() left it for now
  return false;
}

void WebSocketSession::OnRegistered(absl::Status status) {
  if (!CallAnswered()) return;
  if (!status.ok()) {
    RefuseUpgrade(SidecarError(status, "ws: register connection", false));
    return;
  }
  if (close_code_.has_value() || deps_->drain->draining()) {
    Response response = ErrorResponse(http::status::service_unavailable, "draining");
    response.set(http::field::retry_after, "1");
    RefuseUpgrade(std::move(response));
    return;
  }
  beast::get_lowest_layer(ws_).expires_never();  // the websocket timeouts take over
  websocket::stream_base::timeout timeouts{};
  timeouts.handshake_timeout = kHandshakeTimeout;
  timeouts.idle_timeout = kIdleTimeout;
  timeouts.keep_alive_pings = true;
  ws_.set_option(timeouts);
  ws_.set_option(websocket::stream_base::decorator(
      [instance = deps_->instance](websocket::response_type& response) {
        response.set("X-Instance-Id", instance);
      }));
  ws_.read_message_max(deps_->max_message_bytes);
  ws_.async_accept(request_, [self = shared_from_this()](beast::error_code ec) {
    self->OnAccept(ec);
  });
}

void WebSocketSession::RefuseUpgrade(Response response) {
  response.version(request_.version());
  response.set("X-Instance-Id", deps_->instance);
  AddSecurityHeaders(response);
  response.keep_alive(false);
  response.prepare_payload();
  refusal_ = std::make_shared<Response>(std::move(response));
  beast::get_lowest_layer(ws_).expires_after(kHandshakeTimeout);
  http::async_write(ws_.next_layer(), *refusal_,
                    [self = shared_from_this()](beast::error_code, std::size_t) {
                      beast::error_code ignored;
                      self->ws_.next_layer().socket().shutdown(
                          asio::ip::tcp::socket::shutdown_both, ignored);
                      self->ws_.next_layer().close();
                      self->Finish();
                    });
}

void WebSocketSession::OnAccept(beast::error_code ec) {
  request_ = {};
  if (ec) {
    spdlog::debug("ws {}: upgrade failed: {}", conn_id_, ec.message());
    Finish();
    return;
  }
  accepted_ = true;
  spdlog::debug("ws {}: open", conn_id_);
  if (close_code_.has_value()) {
    const websocket::close_code code = *close_code_;
    closing_ = false;
    StartClose(code);
  } else if (!queue_.empty()) {
    DoWrite();
  }
  DoRead();
}

void WebSocketSession::DoRead() {
  ws_.async_read(buffer_, [self = shared_from_this()](beast::error_code ec, std::size_t n) {
    self->OnRead(ec, n);
  });
}

void WebSocketSession::OnRead(beast::error_code ec, std::size_t) {
  if (ec) {
    // Closed by either side, timed out, or broken: the connection is over.
    if (ec != websocket::error::closed) spdlog::debug("ws {}: {}", conn_id_, ec.message());
    Finish();
    return;
  }
  const std::string text = beast::buffers_to_string(buffer_.data());
  buffer_.consume(buffer_.size());
  if (closing_) {
    DoRead();  // until the peer's close frame
    return;
  }
  HandleMessage(text);
}

void WebSocketSession::HandleMessage(const std::string& text) {
  nlohmann::json message = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  const bool is_object = !message.is_discarded() && message.is_object();
  const bool join = is_object && message.contains("join");
  const auto room = is_object ? message.find(join ? "join" : "leave") : message.end();
  if (!is_object || room == message.end() || !room->is_string() ||
      room->get_ref<const std::string&>().empty()) {
    Enqueue(Message(Json{{"event", "error"},
                         {"error", "expected {\"join\":\"room\"} or {\"leave\":\"room\"}"}}));
    DoRead();
    return;
  }
  // No read is pending until OnRoomOp: the next join or leave is sent
  // only after this one's answer.
  std::string name = room->get<std::string>();
  const std::vector<std::string> rooms = {name};
  auto done = [self = shared_from_this(), join, name = std::move(name)](absl::Status status) {
    asio::post(self->executor_, [self, join, name, status = std::move(status)] {
      self->OnRoomOp(join, name, status);
    });
  };
  call_pending_ = true;
  if (join) {
    deps_->client->JoinAsync(conn_id_, rooms, std::move(done));
  } else {
    deps_->client->LeaveAsync(conn_id_, rooms, std::move(done));
  }
}

void WebSocketSession::OnRoomOp(bool join, const std::string& room, absl::Status status) {
  if (!CallAnswered()) return;
  if (status.ok()) {
    deps_->hub->SetMembership(conn_id_, room, join);
    Enqueue(Message(Json{{join ? "joined" : "left", room}}));
  } else {
    // The sidecar names a bad room (INVALID_ARGUMENT); other causes are
    // logged and reported generically.
    const bool bad_room = status.code() == absl::StatusCode::kInvalidArgument;
    if (!bad_room) spdlog::warn("ws {}: {}: {}", conn_id_, join ? "join" : "leave", status.ToString());
    Enqueue(Message(Json{{"event", "error"},
                         {"error", bad_room ? std::string(status.message())
                                            : std::string("sidecar unavailable")}}));
  }
  DoRead();
}

void WebSocketSession::Send(std::shared_ptr<const std::string> text) {
  asio::post(executor_, [self = shared_from_this(), text = std::move(text)]() mutable {
    self->Enqueue(std::move(text));
  });
}

void WebSocketSession::Close(websocket::close_code code) {
  asio::post(executor_, [self = shared_from_this(), code] { self->StartClose(code); });
}

void WebSocketSession::Enqueue(std::shared_ptr<const std::string> text) {
  if (closing_ || finished_) return;
  if (queue_.size() >= kMaxQueuedMessages ||
      queued_bytes_ + text->size() > kMaxQueuedBytes) {
    spdlog::warn("ws {}: client not reading ({} messages queued): closing", conn_id_,
                 queue_.size());
    StartClose(websocket::close_code::policy_error);
    return;
  }
  queued_bytes_ += text->size();
  queue_.push_back(std::move(text));
  if (accepted_ && !writing_) DoWrite();
}

void WebSocketSession::DoWrite() {
  writing_ = queue_.front();
  queue_.pop_front();
  queued_bytes_ -= writing_->size();
  ws_.text(true);
  ws_.async_write(asio::buffer(*writing_),
                  [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                    self->OnWrite(ec, n);
                  });
}

void WebSocketSession::OnWrite(beast::error_code ec, std::size_t) {
  writing_.reset();
  if (ec) {
    // The read side notices too and finishes the session.
    beast::get_lowest_layer(ws_).close();
    return;
  }
  if (!closing_ && !queue_.empty()) DoWrite();
}

void WebSocketSession::StartClose(websocket::close_code code) {
  if (closing_ || finished_) return;
  closing_ = true;
  if (!accepted_) {
    close_code_ = code;  // OnRegistered refuses, or OnAccept closes at once
    return;
  }
  queue_.clear();  // the message being written (writing_) stays alive
  queued_bytes_ = 0;
  // Beast allows one close alongside the pending read and write; the read
  // then ends with error::closed once the peer answers, and Finish() runs.
  ws_.async_close(code, [self = shared_from_this()](beast::error_code ec) {
    self->close_timer_.cancel();
    if (ec) beast::get_lowest_layer(self->ws_).close();
  });
  close_timer_.expires_after(kCloseTimeout);
  close_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
    // Still not closed: the pending read and write fail, Finish() follows.
    if (!ec && !self->finished_) beast::get_lowest_layer(self->ws_).close();
  });
}

void WebSocketSession::Finish() {
  if (finished_) return;
  finished_ = true;
  closing_ = true;
  close_timer_.cancel();
  queue_.clear();
  queued_bytes_ = 0;
  deps_->hub->Remove(conn_id_);
  // After the register, join or leave still running (its answer calls it):
  // an unregister sent beside it could be applied first.
  if (!call_pending_) Unregister();
}

void WebSocketSession::Unregister() {
  // Holds no reference to the session: it may go before the answer comes.
  deps_->client->UnregisterConnectionAsync(
      conn_id_, [conn_id = conn_id_, drain = deps_->drain](absl::StatusOr<bool> found) {
        if (!found.ok()) spdlog::warn("ws {}: unregister: {}", conn_id, found.status().ToString());
        spdlog::debug("ws {}: closed", conn_id);
        drain->WorkFinished();
      });
}

}  // namespace radar
