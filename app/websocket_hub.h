// WebSocketHub: this process's live WebSockets by connection id, and the
// one realtime Subscription that feeds them. Thread-safe.
//
// The map conn_id → session (with its user and rooms, for re-registering)
// is the only per-process state of radar-app, and holds live sockets only.
// One thread reads the Subscription and hands each Delivery to the
// sessions its conn_ids name, as
//   {"event":<event>, ...the payload's fields..., "sequence":<room seq>}
// (a payload that is not a JSON object arrives as "payload": text), and
// each Gap to every session as {"event":"gap","reason":…,"dropped":n}.
// When the stream ends (UNAVAILABLE: the sidecar restarted) the thread
// subscribes again with backoff and re-registers every live connection.
#ifndef STATESIDE_APP_WEBSOCKET_HUB_H_
#define STATESIDE_APP_WEBSOCKET_HUB_H_

#include <boost/beast/websocket/rfc6455.hpp>

#include <memory>
#include <set>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "stateside/client.h"

namespace radar {

class WebSocketSession;

class WebSocketHub {
 public:
  explicit WebSocketHub(stateside::Client* client);  // client outlives the hub
  ~WebSocketHub();  // Stop()
  WebSocketHub(const WebSocketHub&) = delete;
  WebSocketHub& operator=(const WebSocketHub&) = delete;

  // Subscribes (returns the error if the sidecar refuses), then starts the
  // reading thread.
  absl::Status Start();
  // Ends the stream and joins the thread. Idempotent.
  void Stop();

  void Add(const std::string& conn_id, std::weak_ptr<WebSocketSession> session,
           const std::string& user);
  void Remove(const std::string& conn_id);
  // Records a confirmed join (true) or leave, for re-registration.
  void SetMembership(const std::string& conn_id, const std::string& room, bool member);
  // Asks every live session to close with `code`.
  void CloseAll(boost::beast::websocket::close_code code);
  size_t size() const;

 private:
  struct Entry {
    std::weak_ptr<WebSocketSession> session;
    std::string user;
    std::set<std::string> rooms;
  };

  void Run();
  // Waits with backoff and subscribes again; false once stopping.
  bool Resubscribe();
  void Reregister();
  void Dispatch(const stateside::Delivery& delivery);
  void DispatchGap(const stateside::Gap& gap);

  stateside::Client* const client_;  // constant after construction

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> connections_ ABSL_GUARDED_BY(mu_);
  // Replaced only by the reading thread; Stop() cancels it from outside.
  std::unique_ptr<stateside::Subscription> subscription_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;  // started by Start(), joined by Stop()
};

}  // namespace radar

#endif  // STATESIDE_APP_WEBSOCKET_HUB_H_
