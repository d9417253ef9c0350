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
//
// Sockets end with their session (close code 1008): a logout closes this
// process's sockets of that session (CloseSession) or, "everywhere", of
// that user (CloseUser). The other instances are told: "everywhere" by the
// sidecar itself (DestroyUserSessions' close_connections delivers
// kCloseConnectionsEvent with the user's connections there), a single
// logout by kSessionEndedEvent, which the app publishes to the user. A
// second thread checks the session
// of every open socket again every `session_check_interval` (and at once on
// a kSessionEndedEvent that is not "everywhere"): the net under a lost
// event, an expiry, or a session destroyed by another program.
#ifndef STATESIDE_APP_WEBSOCKET_HUB_H_
#define STATESIDE_APP_WEBSOCKET_HUB_H_

#include <boost/beast/websocket/rfc6455.hpp>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "app/websocket_session.h"
#include "stateside/client.h"

namespace radar {

// The realtime event a logout publishes to the user; its payload is
// {"everywhere": true} when every session of the user ended. Never
// forwarded to a socket (a broadcast's event is always "message").
inline constexpr char kSessionEndedEvent[] = "session-ended";
// What the sidecar delivers for DestroyUserSessions' close_connections:
// close the connections it names.
inline constexpr char kCloseConnectionsEvent[] = "stateside.close";

class WebSocketHub {
 public:
  // `client` outlives the hub.
  WebSocketHub(stateside::Client* client, absl::Duration session_check_interval);
  ~WebSocketHub();  // Stop()
  WebSocketHub(const WebSocketHub&) = delete;
  WebSocketHub& operator=(const WebSocketHub&) = delete;

  // Subscribes (returns the error if the sidecar refuses), then starts the
  // reading thread and the session checks.
  absl::Status Start();
  // Ends the stream and joins the threads. Idempotent.
  void Stop();

  void Add(const std::string& conn_id, std::weak_ptr<WebSocketSession> session,
           const SocketOwner& owner);
  void Remove(const std::string& conn_id);
  // Records a confirmed join (true) or leave, for re-registration.
  void SetMembership(const std::string& conn_id, const std::string& room, bool member);
  // Asks every live session to close with `code`, in random order, spread
  // evenly over `spread` (zero: all at once). Blocks until the last one is
  // asked, or returns early closing the rest at once when Stop() is called.
  void CloseAll(boost::beast::websocket::close_code code,
                absl::Duration spread = absl::ZeroDuration());
  // Closes (1008) the sockets opened by that session / by any session of
  // that user; returns how many.
  size_t CloseSession(const std::string& session_id);
  size_t CloseUser(const std::string& user);
  size_t size() const;

 private:
  struct Entry {
    std::weak_ptr<WebSocketSession> session;
    std::string user;
    std::string session_id;  // the session that opened it
    std::set<std::string> rooms;
  };

  // Closes the sockets whose entry `match` accepts; mu_ not held.
  template <typename Match>
  size_t CloseWhere(Match match);
  // The session-check thread's loop.
  void CheckSessions();
  bool CheckDue() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || check_now_; }

  void Run();
  // Waits with backoff and subscribes again, resuming where the ended
  // stream left off (ResumePoints); false once stopping.
  bool Resubscribe();
  // Notes the delivery's stream position. Reading thread only.
  void Remember(const stateside::Delivery& delivery);
  // Forgets the positions of streams no live socket can receive any more.
  void ForgetUnreachable();
  // The positions of the streams that can still reach a live socket: the
  // broadcasts, and the rooms, users and connections of live sockets (at
  // most the sidecar's 256). Reading thread only.
  std::vector<stateside::StreamPosition> ResumePoints();
  // Registers every live connection again (with its rooms), up to 64 calls
  // at a time; returns once each answered. Reading thread only.
  void Reregister();
  void Dispatch(const stateside::Delivery& delivery);
  void DispatchGap(const stateside::Gap& gap);

  // Constant after construction.
  stateside::Client* const client_;
  const absl::Duration session_check_interval_;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> connections_ ABSL_GUARDED_BY(mu_);
  // Replaced only by the reading thread; Stop() cancels it from outside.
  std::unique_ptr<stateside::Subscription> subscription_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool check_now_ ABSL_GUARDED_BY(mu_) = false;  // a session ended somewhere
  // "<target>:<name>" -> the last position delivered of that stream: what
  // a new stream resumes from after the old one ended (the events in
  // between are replayed instead of lost). Reading thread only.
  std::map<std::string, stateside::StreamPosition> positions_;
  size_t prune_at_ = 4096;  // positions_' size that prunes it next
  std::thread thread_;  // started by Start(), joined by Stop()
  std::thread checker_;  // CheckSessions(); started by Start(), joined by Stop()
};

}  // namespace radar

#endif  // STATESIDE_APP_WEBSOCKET_HUB_H_
