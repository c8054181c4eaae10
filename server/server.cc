#include "server/server.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <mutex>
#include <vector>

#include "greenline/goroutine.h"
#include "server/linger.h"

namespace greenline::server {

bool Server::Register(Session* s) {
  std::lock_guard<Mutex> lock(mu_);
  if (ShuttingDown()) return false;
  sessions_.insert(s);
  return true;
}

void Server::Unregister(Session* s) {
  std::lock_guard<Mutex> lock(mu_);
  sessions_.erase(s);
}

void Server::BeginShutdown(std::chrono::steady_clock::time_point flush_by) {
  std::lock_guard<Mutex> lock(mu_);
  if (shutting_down_.exchange(true, std::memory_order_acq_rel)) return;
  // Under mu_: a session unregisters (and may be destroyed) only after taking mu_, so every
  // pointer here is alive while we call Stop, which returns at once.
  for (Session* s : sessions_) s->Stop(flush_by);
}

bool Server::WaitSessions(std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    bool empty;
    {
      std::lock_guard<Mutex> lock(mu_);
      empty = sessions_.empty() && detached_.load(std::memory_order_acquire) == 0;
    }
    if (empty) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    Sleep(std::chrono::milliseconds(10));
  }
}

void ConnDone(Server& server) {
  server.Leave();
  server.Detached(-1);
}

void AcceptLoop(Server& server, const net::Listener& listener, ServiceId service,
                std::string_view full, StartFn start) {
  Metrics& m = server.metrics();
  std::string full_line(full);
  int errors_in_a_row = 0;
  for (;;) {
    // Not a structured binding: clang 14 (the TSan build) cannot capture one in a lambda.
    std::pair<net::Conn, net::Error> accepted = listener.Accept();
    net::Conn& conn = accepted.first;
    net::Error& err = accepted.second;
    if (err) {
      if (err.closed()) return;
      // The net layer already backs off on EMFILE/ENFILE; anything else is logged, and a run of
      // errors slows the loop down rather than spinning.
      spdlog::warn("{}: accept: {}", ServiceName(service), err.String());
      if (++errors_in_a_row > 3) {
        Sleep(std::chrono::milliseconds(std::min(5 * errors_in_a_row, 1000)));  // Go's cap: 1 s
      }
      continue;
    }
    errors_in_a_row = 0;
    if (!server.Admit()) {
      m.disconnects_total[DisconnectReason::kServerFull].Inc();
      server.Detached(1);
      Go([conn, full_line, &m, service, &server] {
        conn.SetWriteDeadline(std::chrono::steady_clock::now() + std::chrono::seconds(1));
        conn.Write(full_line);
        LingeringClose(conn, &m, service);
        server.Detached(-1);
      });
      continue;
    }
    server.Detached(1);  // also counted from here to its end (ConnDone), around its session's life
    start(server, conn);
  }
}

}  // namespace greenline::server
