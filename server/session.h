// Per-connection bookkeeping every service shares (ConnSession: counts, shutdown, cut-offs, why
// the connection ended, panics), the idle deadline, and the helper that runs a connection on a
// hibernating goroutine (ServeHibernating).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>

#include "greenline/goroutine.h"
#include "greenline/net.h"
#include "greenline/notifier.h"
#include "greenline/panic.h"
#include "server/metrics.h"
#include "server/server.h"

namespace greenline::server {

// One connection as the server's lifecycle sees it. Owns the connection's ConnTicket (destroyed
// last, with the session). Stop() (a shutdown) marks it stopping, moves its write deadline to the
// shutdown's flush deadline, runs the service's `on_stop`, and wakes its reader with a read
// deadline in the past; CutOff() (from another goroutine: a reader that fell behind) records why
// and wakes both sides with past deadlines. A reader checks stopping() after moving its own
// deadline (IdleTimer::Touch), so a Stop racing with that move is never lost.
class ConnSession {
 public:
  // `on_stop`: what the service adds to a shutdown's Stop (chat queues its goodbye); it runs after
  // the write deadline moved and before the reader is woken, on the goroutine that stops.
  // `wake` (may be null): Stop and CutOff notify it too, for a reader that may be waiting on
  // something other than its socket (chat's poster waiting for the output budget).
  ConnSession(Service& service, net::Conn conn, ConnTicket ticket,
              std::function<void()> on_stop = {}, Notifier* wake = nullptr);
  ConnSession(const ConnSession&) = delete;
  ConnSession& operator=(const ConnSession&) = delete;
  ~ConnSession();  // detaches, if Finish did not (then before its own members go)

  // Counts the connection and attaches it to its service's tracker for shutdown. If shutdown has
  // begun it is stopping at once: the connection ends with kShutdown without being served.
  void Start();
  // Takes the connection off its tracker's registry (no Stop reaches it from now on) and counts
  // the disconnect, with `reason`, when its service records each connection (the line services).
  // The connection must be closed, or about to be. Call it before anything `on_stop` touches goes.
  void Finish(std::optional<DisconnectReason> reason);

  void Stop(Clock::time_point flush_by);
  bool stopping() const { return stopping_.load(std::memory_order_seq_cst); }
  // Once stopping(): when what is queued must have gone out.
  Clock::time_point flush_by() const {
    return Clock::time_point(Clock::duration(flush_by_.load(std::memory_order_acquire)));
  }

  // Ends the connection from another goroutine: the first reason given sticks.
  void CutOff(DisconnectReason why);
  std::optional<DisconnectReason> cut() const {
    int r = cut_reason_.load(std::memory_order_acquire);
    if (r < 0) return std::nullopt;
    return static_cast<DisconnectReason>(r);
  }

  // Why the connection ends after `err` from a read or write: EOF, a shutdown, a cut-off, the idle
  // deadline, or an error. The one place that reads the two ways a deadline is used.
  DisconnectReason ReasonFor(const net::Error& err) const;

  // At error level: service, goroutine id, peer, panic value, and where it was raised; counted.
  // From the deferred call that recovered it.
  void LogPanic(const PanicValue& value);

  const std::string& peer() const { return peer_; }
  const net::Conn& conn() const { return conn_; }
  Service& service() const { return service_; }

 private:
  ConnTicket ticket_;  // first: destroyed last
  Service& service_;
  const net::Conn conn_;
  const std::function<void()> on_stop_;
  Notifier* const wake_;
  std::string peer_;
  std::atomic<bool> stopping_{false};
  std::atomic<Clock::rep> flush_by_{0};
  std::atomic<int> cut_reason_{-1};
};

// Keeps a connection's deadline `timeout` ahead of its last read. Moving a deadline costs a timer
// update, so Touch() moves it only once 1/64 of the timeout has passed since the last move: a
// client is closed after between 63/64 and 64/64 of the timeout of silence.
class IdleTimer {
 public:
  // `both`: the write deadline moves too (echo: a client that never reads its replies is idle).
  // A zero timeout: none.
  IdleTimer(std::chrono::nanoseconds timeout, net::Conn conn, bool both);
  void Touch();

 private:
  net::Conn conn_;
  std::chrono::nanoseconds timeout_;
  std::chrono::nanoseconds slack_;
  Clock::time_point last_{};
  bool both_;
};

// A connection's traffic, counted in the shared metrics.
class ConnCounters {
 public:
  ConnCounters(Metrics& m, ServiceId s) : m_(m), s_(s) {}
  void Received(size_t bytes) { m_.bytes_received_total[s_].Add(bytes); }
  void LinesReceived(uint64_t n) {
    if (n > 0) m_.lines_received_total[s_].Add(n);
  }
  void Sent(size_t bytes, uint64_t lines) {
    m_.bytes_sent_total[s_].Add(bytes);
    if (lines > 0) m_.lines_sent_total[s_].Add(lines);
  }

 private:
  Metrics& m_;
  ServiceId s_;
};

// What one step of a connection served by a hibernating goroutine asks for: wait without a stack
// (a Resume: Conn::ResumeWhenReadable, Notifier::ResumeWhenNotified) or end, and why.
using NextStep = std::variant<Resume, DisconnectReason>;

// Serves a connection on a hibernating goroutine (GoHibernating), so that it holds no stack while
// its client is quiet. `state` is everything the connection remembers between steps; it has
//   ConnSession& session();
//   void Start();                     // on the first step: ConnSession::Start and the like
//   NextStep Step();                  // one step: serve until there is nothing to do now
//   void End(DisconnectReason why);   // close, say goodbye, Finish
// Each step runs in a Frame whose deferred call recovers a panic (logged and counted by the
// session; the connection then ends with kPanic) and ends the connection when the step says so;
// then `state` is destroyed, its ticket last.
template <class State>
void ServeHibernating(std::unique_ptr<State> state) {
  GoHibernating([st = std::move(state), started = false]() mutable -> Resume {
    std::optional<DisconnectReason> end;
    Resume next;
    Frame([&](Defer& defer) {
      defer([&] {
        if (PanicValue v = Recover()) {
          st->session().LogPanic(v);
          end = DisconnectReason::kPanic;
        }
        if (end) st->End(*end);
      });
      if (!started) {
        started = true;
        st->Start();
      }
      NextStep step = st->Step();
      if (auto* reason = std::get_if<DisconnectReason>(&step)) {
        end = *reason;
      } else {
        next = std::get<Resume>(step);
      }
    });
    if (!end) return next;
    st.reset();
    return Resume::Done();
  });
}

}  // namespace greenline::server
