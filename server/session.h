// Per-connection bookkeeping both services share: registration for shutdown, metrics, the idle
// deadline, and the report of a recovered panic.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

#include "greenline/net.h"
#include "greenline/panic.h"
#include "server/metrics.h"
#include "server/server.h"

namespace greenline::server {

// One connection's Session. Stop() marks it stopping, wakes its reader with a read deadline in
// the past and gives a writer until the shutdown's flush deadline; a reader checks stopping()
// after moving its own deadline (IdleTimer::Touch), so a Stop racing with that move is never
// lost.
class ConnSession : public Session {
 public:
  ConnSession(Server& server, net::Conn conn, ServiceId service);

  // Counts the connection and registers it for shutdown; false when shutdown has begun (the
  // caller closes without serving).
  bool Start();
  // Unregisters and counts the disconnect. The connection must be closed (or about to be).
  void Finish(DisconnectReason reason);

  void Stop(std::chrono::steady_clock::time_point flush_by) override;
  bool stopping() const { return stopping_.load(std::memory_order_seq_cst); }
  // Once stopping(): when what is queued must have gone out.
  std::chrono::steady_clock::time_point flush_by() const {
    return std::chrono::steady_clock::time_point(
        std::chrono::steady_clock::duration(flush_by_.load(std::memory_order_acquire)));
  }

  // At error level: service, goroutine id, peer, panic value, and where it was raised. Call from
  // the deferred call that recovered it.
  void LogPanic(const PanicValue& value);

  const std::string& peer() const { return peer_; }
  Server& server() const { return server_; }

 protected:
  // For subclasses that must do more on Stop (chat's goodbye notice); runs after the write
  // deadline moved to the flush deadline, before the reader is woken.
  virtual void OnStop() {}

  Server& server_;
  net::Conn conn_;
  ServiceId service_;

 private:
  std::string peer_;
  std::atomic<bool> stopping_{false};
  std::atomic<std::chrono::steady_clock::rep> flush_by_{0};
  bool registered_ = false;
};

// Keeps a connection's deadline `idle_timeout` ahead of its last read. Moving a deadline costs a
// timer update, so Touch() moves it only once 1/64 of the timeout has passed since the last move:
// a client is closed after between 63/64 and 64/64 of the timeout of silence.
class IdleTimer {
 public:
  // `both`: the write deadline moves too (echo: a client that never reads its replies is idle).
  IdleTimer(const Server& server, net::Conn conn, bool both = true);
  void Touch();

 private:
  net::Conn conn_;
  std::chrono::nanoseconds timeout_;
  std::chrono::nanoseconds slack_;
  std::chrono::steady_clock::time_point last_{};
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

}  // namespace greenline::server
