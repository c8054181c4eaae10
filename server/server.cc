#include "server/server.h"

#include <spdlog/spdlog.h>

#include <vector>

#include "runtime/sched/goroutine.h"

namespace greenline::server {

bool Server::Register(Session* s) {
  mu_.Lock();
  bool ok = !ShuttingDown();
  if (ok) sessions_.insert(s);
  mu_.Unlock();
  return ok;
}

void Server::Unregister(Session* s) {
  mu_.Lock();
  sessions_.erase(s);
  mu_.Unlock();
}

void Server::BeginShutdown() {
  mu_.Lock();
  if (shutting_down_.exchange(true, std::memory_order_acq_rel)) {
    mu_.Unlock();
    return;
  }
  // Under mu_: a session unregisters (and may be destroyed) only after taking mu_, so every
  // pointer here is alive while we call Stop, which returns at once.
  for (Session* s : sessions_) s->Stop();
  mu_.Unlock();
}

bool Server::WaitSessions(std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    mu_.Lock();
    bool empty = sessions_.empty();
    mu_.Unlock();
    if (empty) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    Sleep(std::chrono::milliseconds(10));
  }
}

void AcceptLoop(Server& server, const net::Listener& listener, Service service,
                std::string_view full, ServeFn serve) {
  Metrics& m = server.metrics();
  std::string full_line(full);
  int errors_in_a_row = 0;
  for (;;) {
    auto [conn, err] = listener.Accept();
    if (err) {
      if (err.closed()) return;
      // The net layer already backs off on EMFILE/ENFILE; anything else is logged, and a run of
      // errors slows the loop down rather than spinning.
      spdlog::warn("{}: accept: {}", ServiceName(service), err.String());
      if (++errors_in_a_row > 3) Sleep(std::chrono::milliseconds(5 * errors_in_a_row));
      continue;
    }
    errors_in_a_row = 0;
    if (!server.Admit()) {
      m.disconnects_total[DisconnectReason::kServerFull].Inc();
      Go([conn, full_line] {
        conn.SetWriteDeadline(std::chrono::steady_clock::now() + std::chrono::seconds(1));
        conn.Write(full_line);
        conn.Close();
      });
      continue;
    }
    Go([conn, serve, &server] {
      serve(server, conn);
      server.Leave();
    });
  }
}

}  // namespace greenline::server
