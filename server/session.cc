#include "server/session.h"

#include <spdlog/spdlog.h>

#include "greenline/goroutine.h"

namespace greenline::server {

ConnSession::ConnSession(Server& server, net::Conn conn, ServiceId service)
    : server_(server), conn_(std::move(conn)), service_(service) {}

bool ConnSession::Start() {
  peer_ = conn_.RemoteAddr().String();
  Metrics& m = server_.metrics();
  m.connections_total[service_].Inc();
  m.connections_active[service_].Inc();
  registered_ = server_.Register(this);
  SPDLOG_DEBUG("{}: {} connected (goroutine {})", ServiceName(service_), peer_, GoroutineId());
  return registered_;
}

void ConnSession::Finish(DisconnectReason reason) {
  if (registered_) server_.Unregister(this);
  registered_ = false;
  Metrics& m = server_.metrics();
  m.connections_active[service_].Dec();
  m.disconnects_total[reason].Inc();
  SPDLOG_DEBUG("{}: {} disconnected: {}", ServiceName(service_), peer_,
               DisconnectReasonName(reason));
}

void ConnSession::Stop(std::chrono::steady_clock::time_point flush_by) {
  flush_by_.store(flush_by.time_since_epoch().count(), std::memory_order_release);
  stopping_.store(true, std::memory_order_seq_cst);
  // What is queued goes out until flush_by; a client that does not read by then is given up on.
  // Before OnStop: a cut-off it (or one before it) makes keeps its own, earlier deadline.
  conn_.SetWriteDeadline(flush_by);
  OnStop();
  conn_.SetReadDeadline(std::chrono::steady_clock::now());
}

void ConnSession::LogPanic(const PanicValue& value) {
  server_.metrics().panics_recovered_total[service_].Inc();
  std::string stack = PanicStack();
  spdlog::error("{}: recovered panic in goroutine {} serving {}: {}{}{}", ServiceName(service_),
                GoroutineId(), peer_.empty() ? "?" : peer_, value.String(),
                stack.empty() ? "" : "\n", stack);
}

IdleTimer::IdleTimer(const Server& server, net::Conn conn, bool both)
    : conn_(std::move(conn)),
      timeout_(server.config().idle_timeout),
      slack_(timeout_ / 64),
      both_(both) {}

void IdleTimer::Touch() {
  if (timeout_.count() <= 0) return;
  auto now = std::chrono::steady_clock::now();
  if (now - last_ < slack_) return;
  last_ = now;
  if (both_) {
    conn_.SetDeadline(now + timeout_);
  } else {
    conn_.SetReadDeadline(now + timeout_);
  }
}

}  // namespace greenline::server
