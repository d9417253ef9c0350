// WebSocketSession: one client's WebSocket on GET /ws — registration with
// the sidecar, the upgrade, join/leave requests and a bounded write queue.
// Thread-safe entry points (Send, Close) post to the connection's strand;
// everything else runs on that strand. Sidecar calls use the client's Async
// forms and post their answer to the strand; no thread waits for them. One
// at a time: the register before the upgrade, a join or leave before the
// next message is read, and the unregister after the last of them answered.
//
// Protocol (text frames, JSON):
//   server → client first: {"event":"hello","conn":…,"instance":…,"user":…}
//   client → server: {"join":"room"} / {"leave":"room"}; the server answers
//     {"joined":"room"} / {"left":"room"} once the sidecar confirmed, or
//     {"event":"error","error":…}. The next client message is read only
//     after that answer, so one connection's joins and leaves stay in order.
//   server → client: published events (see WebSocketHub) and gaps.
// A client that stops reading while messages pile up (kMaxQueuedMessages
// or kMaxQueuedBytes)
// is closed with 1008 (policy violation) instead of growing memory; one
// that stops answering pings is cut after the idle timeout. A close that
// the peer does not complete within kCloseTimeout (e.g. the close frame is
// stuck behind a write the client never reads) ends with the TCP close.
#ifndef STATESIDE_APP_WEBSOCKET_SESSION_H_
#define STATESIDE_APP_WEBSOCKET_SESSION_H_

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "app/drain.h"
#include "app/http_util.h"
#include "app/load_limit.h"
#include "stateside/client.h"

namespace radar {

class WebSocketHub;
namespace websocket = boost::beast::websocket;

// What every WebSocket session uses; owned by main, outlives the sessions'
// handlers (the client, whose destruction ends the calls still running, is
// destroyed first).
struct WebSocketDeps {
  stateside::Client* client = nullptr;
  WebSocketHub* hub = nullptr;
  DrainState* drain = nullptr;
  std::string instance;
  size_t max_message_bytes = 16384;
};

// Whose socket it is: the session that opened it (checked again while it
// is open, closed when the session ends) and that session's user.
struct SocketOwner {
  std::string user;
  std::string session_id;
};

class WebSocketSession : public std::enable_shared_from_this<WebSocketSession> {
 public:
  // Messages waiting for a slow client before it is closed (1008). A
  // burst of that many is normal; more means the client is not reading.
  static constexpr size_t kMaxQueuedMessages = 256;
  // ... or that many bytes (a payload may be up to 64 KiB).
  static constexpr size_t kMaxQueuedBytes = 1 << 20;
  // How long a closing handshake may take before the socket is just closed.
  static constexpr std::chrono::seconds kCloseTimeout{5};

  // Counts as work in flight (DrainState) until unregistered; holds
  // `connection` (the connection cap's unit) until destroyed.
  WebSocketSession(const WebSocketDeps* deps, boost::beast::tcp_stream stream,
                   std::string conn_id, SocketOwner owner, LoadLimit::Slot connection);
  ~WebSocketSession();

  // Registers the connection with the sidecar, then completes the upgrade
  // of `request` (or answers it with an HTTP error). Once, on the strand.
  void Start(Request request);
  // Queues a text message (shared: one copy for a fan-out). Any thread.
  void Send(std::shared_ptr<const std::string> text);
  // Sends a close frame with `code` after the message being written, if
  // any; queued messages are dropped. Any thread; later calls do nothing.
  void Close(websocket::close_code code);

  const std::string& conn_id() const { return conn_id_; }

 private:
  // Notes that the sidecar call answered; false (and unregisters) if the
  // session finished meanwhile.
  bool CallAnswered();
  void OnRegistered(absl::Status status);
  void RefuseUpgrade(Response response);
  void OnAccept(boost::beast::error_code ec);
  void DoRead();
  void OnRead(boost::beast::error_code ec, std::size_t bytes);
  void HandleMessage(const std::string& text);
  void OnRoomOp(bool join, const std::string& room, absl::Status status);
  void Enqueue(std::shared_ptr<const std::string> text);
  void DoWrite();
  void OnWrite(boost::beast::error_code ec, std::size_t bytes);
  void StartClose(websocket::close_code code);
  // Once: leaves the hub, unregisters with the sidecar (after the call
  // pending, if any), ends the work unit.
  void Finish();
  // UnregisterConnectionAsync; its answer ends the work unit.
  void Unregister();

  // Constant after construction.
  const WebSocketDeps* const deps_;
  const std::string conn_id_;
  const SocketOwner owner_;
  const LoadLimit::Slot connection_;
  const boost::beast::tcp_stream::executor_type executor_;  // the strand

  // On the strand only.
  websocket::stream<boost::beast::tcp_stream> ws_;
  boost::asio::steady_timer close_timer_;  // bounds StartClose()
  boost::beast::flat_buffer buffer_;
  Request request_;  // the upgrade request, until accepted
  std::shared_ptr<Response> refusal_;  // an HTTP answer instead of the upgrade
  std::deque<std::shared_ptr<const std::string>> queue_;  // not yet written
  size_t queued_bytes_ = 0;  // the sizes of queue_'s messages
  std::shared_ptr<const std::string> writing_;  // being written (its buffer is in use)
  bool accepted_ = false;
  bool closing_ = false;
  bool finished_ = false;
  bool call_pending_ = false;  // a register, join or leave awaits its answer
  std::optional<websocket::close_code> close_code_;  // asked before accepted
};

}  // namespace radar

#endif  // STATESIDE_APP_WEBSOCKET_SESSION_H_
