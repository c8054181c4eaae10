#include "server/session.h"

#include <spdlog/spdlog.h>

#include "greenline/goroutine.h"

namespace greenline::server {

ConnSession::ConnSession(Service& service, net::Conn conn, ConnTicket ticket,
                         std::function<void()> on_stop, Notifier* wake)
    : ticket_(std::move(ticket)),
      service_(service),
      conn_(std::move(conn)),
      on_stop_(std::move(on_stop)),
      wake_(wake) {}

void ConnSession::Start() {
  peer_ = conn_.RemoteAddr().String();
  Metrics& m = service_.metrics();
  m.connections_total[service_.id()].Inc();
  m.connections_active[service_.id()].Inc();
  if (!ticket_.Attach(this)) stopping_.store(true, std::memory_order_seq_cst);
  if (service_.RecordsEachConnection()) {
    SPDLOG_DEBUG("{}: {} connected (goroutine {})", ServiceName(service_.id()), peer_,
                 GoroutineId());
  }
}

ConnSession::~ConnSession() { ticket_.Detach(); }

void ConnSession::Finish(std::optional<DisconnectReason> reason) {
  ticket_.Detach();
  Metrics& m = service_.metrics();
  m.connections_active[service_.id()].Dec();
  if (!reason || !service_.RecordsEachConnection()) return;
  m.disconnects_total[*reason].Inc();
  SPDLOG_DEBUG("{}: {} disconnected: {}", ServiceName(service_.id()), peer_,
               DisconnectReasonName(*reason));
}

void ConnSession::Stop(Clock::time_point flush_by) {
  flush_by_.store(flush_by.time_since_epoch().count(), std::memory_order_release);
  stopping_.store(true, std::memory_order_seq_cst);
  // What is queued goes out until flush_by; a client that does not read by then is given up on.
  // Before on_stop: a cut-off it (or one before it) makes keeps its own, earlier deadline.
  conn_.SetWriteDeadline(flush_by);
  if (on_stop_) on_stop_();
  conn_.SetReadDeadline(Clock::now());
  if (wake_ != nullptr) wake_->Notify();
}

void ConnSession::CutOff(DisconnectReason why) {
  int expected = -1;
  cut_reason_.compare_exchange_strong(expected, static_cast<int>(why));
  auto now = Clock::now();
  conn_.SetWriteDeadline(now);
  conn_.SetReadDeadline(now);
  if (wake_ != nullptr) wake_->Notify();
}

DisconnectReason ConnSession::ReasonFor(const net::Error& err) const {
  if (err.eof()) return DisconnectReason::kEof;
  // A deadline in the past is how Stop and CutOff wake the connection; otherwise it is the idle
  // deadline, which IdleTimer keeps moving.
  if (err.timeout() && stopping()) return DisconnectReason::kShutdown;
  if (std::optional<DisconnectReason> why = cut()) return *why;
  if (err.timeout()) return DisconnectReason::kIdleTimeout;
  return DisconnectReason::kError;
}

void ConnSession::LogPanic(const PanicValue& value) {
  service_.metrics().panics_recovered_total[service_.id()].Inc();
  std::string stack = PanicStack();
  spdlog::error("{}: recovered panic in goroutine {} serving {}: {}{}{}",
                ServiceName(service_.id()), GoroutineId(), peer_.empty() ? "?" : peer_,
                value.String(), stack.empty() ? "" : "\n", stack);
}

IdleTimer::IdleTimer(std::chrono::nanoseconds timeout, net::Conn conn, bool both)
    : conn_(std::move(conn)), timeout_(timeout), slack_(timeout_ / 64), both_(both) {}

void IdleTimer::Touch() {
  if (timeout_.count() <= 0) return;
  auto now = Clock::now();
  if (now - last_ < slack_) return;
  last_ = now;
  if (both_) {
    conn_.SetDeadline(now + timeout_);
  } else {
    conn_.SetReadDeadline(now + timeout_);
  }
}

}  // namespace greenline::server
