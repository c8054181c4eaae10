#include "server/server.h"

#include <algorithm>
#include <utility>

#include "greenline/goroutine.h"
#include "greenline/log.h"
#include "greenline/timer_chan.h"
#include "server/linger.h"
#include "server/session.h"

namespace greenline::server {

// ---- ConnTicket --------------------------------------------------------------------------------

ConnTicket::ConnTicket(ConnTicket&& other) noexcept
    : tracker_(std::exchange(other.tracker_, nullptr)),
      limit_(std::exchange(other.limit_, nullptr)),
      session_(std::exchange(other.session_, nullptr)) {}

ConnTicket::~ConnTicket() {
  if (tracker_ == nullptr) return;
  Detach();
  if (limit_ != nullptr) limit_->Give();
  tracker_->Leave();
}

bool ConnTicket::Attach(ConnSession* session) {
  MutexLock lock(tracker_->mu_);
  if (tracker_->stopping_) return false;
  tracker_->sessions_.insert(session);
  session_ = session;
  return true;
}

void ConnTicket::Detach() {
  if (session_ == nullptr) return;
  // Under the tracker's lock: Stop calls sessions under it, so after this none is calling ours.
  MutexLock lock(tracker_->mu_);
  tracker_->sessions_.erase(session_);
  session_ = nullptr;
}

// ---- ConnTracker -------------------------------------------------------------------------------

ConnTracker::ConnTracker() = default;

std::optional<ConnTicket> ConnTracker::Admit(ConnLimit* limit) {
  if (limit != nullptr && !limit->TryTake()) return std::nullopt;
  MutexLock lock(mu_);
  ++live_;
  return ConnTicket(this, limit);
}

void ConnTracker::Leave() {
  MutexLock lock(mu_);
  if (--live_ == 0 && idle_ != Chan<bool>()) {
    idle_.Close();
    idle_ = Chan<bool>();
  }
}

void ConnTracker::Stop(Clock::time_point flush_by) {
  MutexLock lock(mu_);
  if (stopping_) return;
  stopping_ = true;
  for (ConnSession* s : sessions_) s->Stop(flush_by);  // each returns at once
}

bool ConnTracker::Wait(Clock::time_point deadline) {
  Chan<TimePoint> timeout;  // nil (never ready) without a deadline
  if (deadline != Clock::time_point{}) {
    timeout = After(std::max(deadline - Clock::now(), Clock::duration::zero()));
  }
  for (;;) {
    Chan<bool> idle;
    {
      MutexLock lock(mu_);
      if (live_ == 0) return true;
      if (idle_ == Chan<bool>()) idle_ = MakeChan<bool>();
      idle = idle_;
    }
    // Closed when the count reached zero; it may have gone up again since: look once more.
    if (Select(RecvCase(idle), RecvCase(timeout)) == 1) return false;
  }
}

int64_t ConnTracker::live() const {
  MutexLock lock(mu_);
  return live_;
}

// ---- Service -----------------------------------------------------------------------------------

void Service::Accept(net::Conn conn) {
  std::optional<ConnTicket> ticket = tracker_.Admit(limit_);
  if (ticket) {
    Serve(std::move(conn), std::move(*ticket));
    return;
  }
  metrics_.disconnects_total[DisconnectReason::kServerFull].Inc();
  // Turned away, but tracked: a shutdown waits for its lingering close too.
  std::optional<ConnTicket> tracked = tracker_.Admit(nullptr);
  Go([this, conn, t = std::move(*tracked)] {
    conn.SetWriteDeadline(Clock::now() + std::chrono::seconds(1));
    conn.Write(full_line_);
    LingeringClose(conn, &metrics_, id_);
  });
}

// ---- AcceptLoop --------------------------------------------------------------------------------

void AcceptLoop(const net::Listener& listener, Service& service) {
  using namespace std::chrono_literals;
  std::chrono::milliseconds backoff{0};
  for (;;) {
    // Not a structured binding: clang 14 (the TSan build) cannot capture one in a lambda.
    std::pair<net::Conn, net::Error> accepted = listener.Accept();
    const net::Error& err = accepted.second;
    if (err) {
      if (err.closed()) return;
      if (err.kind() == net::Error::Kind::kInvalid) {
        // An invalid listener, or not called from a goroutine: retrying cannot help.
        Log(LogLevel::kError,
            std::string(ServiceName(service.id())) + ": " + err.String() + "; not serving");
        return;
      }
      backoff = backoff == 0ms ? 5ms : std::min<std::chrono::milliseconds>(2 * backoff, 1s);
      Log(LogLevel::kWarn, std::string(ServiceName(service.id())) + ": accept: " + err.String() +
                               "; retrying in " + std::to_string(backoff.count()) + " ms");
      Sleep(backoff);
      continue;
    }
    backoff = 0ms;
    service.Accept(std::move(accepted.first));
    Yield();  // let it start: a burst of connections would otherwise keep this loop running long
  }
}

}  // namespace greenline::server
