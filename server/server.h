// The server's connection lifecycle, shared by every service (echo, chat and the HTTP endpoint):
// one accept loop, one connection tracker, one shutdown path.
//
//   accept ──> Service::Accept ──> admitted? ──yes──> Serve(conn, ticket): the service's goroutine
//                                      │               (ConnSession attaches to the ticket)
//                                      no ──> "! server full", lingering close, on a tracked
//                                             goroutine of its own
//
// A Service owns its state (chat: the rooms and nicks; HTTP: the handler) and its ConnTracker.
// Every connection it takes holds a ConnTicket from admission until the goroutine serving it is
// done with everything the service owns; the tracker counts tickets, so Wait needs no polling. A
// connection's session attaches itself to its ticket for shutdown. Shutdown, per service (main.cc
// sequences them: the line services, then the HTTP endpoint): Stop(flush_by) refuses new sessions
// and stops the attached ones (chat queues "* server shutting down"; every reader is woken by a
// read deadline in the past and finishes what it owes by `flush_by`), the listener is closed, and
// Wait(deadline) returns once the last ticket is gone.
//
// Rejected: one registry and one count for the whole server (a shutdown stops services in an
// order, and waits for each); goroutines polling a count (what this replaced).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>

#include "greenline/chan.h"
#include "greenline/mutex.h"
#include "greenline/net.h"
#include "server/metrics.h"

namespace greenline::server {

using Clock = std::chrono::steady_clock;

class ConnSession;
class ConnTracker;

// Admission against --max-conns, shared by the services it limits (echo and chat together).
class ConnLimit {
 public:
  explicit ConnLimit(int64_t max) : max_(max) {}  // max <= 0: no limit
  // Takes a place; false when all are taken.
  bool TryTake() {
    int64_t n = in_use_.fetch_add(1, std::memory_order_relaxed) + 1;
    if (max_ > 0 && n > max_) {
      in_use_.fetch_sub(1, std::memory_order_relaxed);
      return false;
    }
    return true;
  }
  void Give() { in_use_.fetch_sub(1, std::memory_order_relaxed); }
  int64_t in_use() const { return in_use_.load(std::memory_order_relaxed); }

 private:
  const int64_t max_;
  std::atomic<int64_t> in_use_{0};
};

// One connection's membership of its service's tracker, from admission until it is destroyed
// (move-only; a moved-from ticket holds nothing). Destroy it last: once the last ticket is gone,
// whoever waits for the service may tear down what the connection used.
class ConnTicket {
 public:
  ConnTicket(ConnTicket&& other) noexcept;
  ConnTicket& operator=(ConnTicket&&) = delete;
  ~ConnTicket();

  // Attaches the connection's session, for Stop. False once the tracker is stopping: the caller
  // closes the connection without serving it. Once per ticket.
  bool Attach(ConnSession* session);
  // Detaches it again: once this returns, no Stop calls it (one still running has finished). The
  // connection still counts until the ticket is destroyed. Call it before the session, or anything
  // its Stop touches, is destroyed.
  void Detach();

 private:
  friend class ConnTracker;
  ConnTicket(ConnTracker* tracker, ConnLimit* limit) : tracker_(tracker), limit_(limit) {}

  ConnTracker* tracker_;
  ConnLimit* limit_;  // the place it holds, or nullptr
  ConnSession* session_ = nullptr;
};

// A service's live connections: Go's WaitGroup plus the registry a shutdown walks.
class ConnTracker {
 public:
  ConnTracker();
  ConnTracker(const ConnTracker&) = delete;
  ConnTracker& operator=(const ConnTracker&) = delete;

  // A ticket holding a place of `limit` (none when `limit` is null); nullopt when it is full.
  std::optional<ConnTicket> Admit(ConnLimit* limit);
  // Stops accepting sessions and stops every attached one (ConnSession::Stop: they have until
  // `flush_by` to deliver what they owe). Once; returns at once.
  void Stop(Clock::time_point flush_by);
  // Parks until no ticket is left (true) or `deadline` passes (false; the zero time point waits
  // without one). Connections admitted meanwhile are waited for too (after Stop they end at once).
  // One waiter at a time.
  bool Wait(Clock::time_point deadline = {});
  // Tickets alive now (connections being served or turned away).
  int64_t live() const;

 private:
  friend class ConnTicket;
  void Leave();

  mutable Mutex mu_;
  int64_t live_ GL_GUARDED_BY(mu_) = 0;
  bool stopping_ GL_GUARDED_BY(mu_) = false;
  std::unordered_set<ConnSession*> sessions_ GL_GUARDED_BY(mu_);  // attached, not yet left
  // Made by Wait while tickets are live, closed (and forgotten) when the last one goes; nil while
  // nobody waits.
  Chan<bool> idle_ GL_GUARDED_BY(mu_);
};

// What a listener's connections get: echo, chat, the HTTP endpoint.
class Service {
 public:
  // `limit`: the admission it counts against (null: none); `full_line`: what a connection turned
  // away over it is told.
  Service(ServiceId id, Metrics& metrics, ConnLimit* limit = nullptr,
          std::string_view full_line = {})
      : id_(id), metrics_(metrics), limit_(limit), full_line_(full_line) {}
  virtual ~Service() = default;
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  ServiceId id() const { return id_; }
  Metrics& metrics() const { return metrics_; }
  // Whether each connection is logged (at debug) as it comes and goes, and counted by why it
  // ended: the line services' are; the HTTP endpoint's are not (every scrape would drown them).
  virtual bool RecordsEachConnection() const { return true; }
  ConnTracker& tracker() { return tracker_; }

  // Takes an accepted connection: admits it and Serve()s it, or turns it away (the full line, a
  // lingering close, on a tracked goroutine of its own). From the accept loop; returns at once.
  void Accept(net::Conn conn);
  // Shutdown, as ConnTracker::Stop and Wait.
  void Stop(Clock::time_point flush_by) { tracker_.Stop(flush_by); }
  bool Wait(Clock::time_point deadline = {}) { return tracker_.Wait(deadline); }

 protected:
  // Starts serving an admitted connection (on a goroutine of the service's choosing) and returns
  // at once. `ticket` must live until that goroutine is done with everything the service owns.
  virtual void Serve(net::Conn conn, ConnTicket ticket) = 0;

 private:
  const ServiceId id_;
  Metrics& metrics_;
  ConnLimit* const limit_;
  const std::string full_line_;
  ConnTracker tracker_;
};

// Accepts on `listener` and hands each connection to `service` until the listener is closed (by
// another goroutine), or is invalid (logged). Accept errors are logged and retried with a backoff
// of 5 ms doubling to 1 s, as Go's http.Server does (the net layer already rides out running out
// of descriptors). The service's connections may still run when it returns. Parks; from a
// goroutine.
void AcceptLoop(const net::Listener& listener, Service& service);

}  // namespace greenline::server
