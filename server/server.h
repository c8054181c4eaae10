// What the echo and chat services share: the configuration, the metrics, the connection limit,
// and the registry of live connections that a graceful shutdown walks.
//
// Each accepted connection is one goroutine (chat adds a writer goroutine for it). Shutdown, in
// order (main.cc): the listeners close, /healthz turns 503, every registered connection's Stop()
// runs (chat queues "* server shutting down"; both wake their reader with a past read deadline),
// the handlers deliver what they owe and close, and the process exits once none is left or the
// grace period is over.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <unordered_set>

#include "greenline/mutex.h"
#include "greenline/net.h"
#include "server/config.h"
#include "server/metrics.h"

namespace greenline::server {

class ChatHub;

// A live connection as shutdown sees it.
class Session {
 public:
  virtual ~Session() = default;
  // Asks the connection to finish: deliver what is queued by `flush_by`, then close. Any
  // goroutine; returns at once.
  virtual void Stop(std::chrono::steady_clock::time_point flush_by) = 0;
};

class Server {
 public:
  Server(const Config& config, Metrics& metrics) : config_(config), metrics_(metrics) {}

  const Config& config() const { return config_; }
  Metrics& metrics() { return metrics_; }

  // Admission against --max-conns (echo and chat together). False: the caller turns the
  // connection away ("! server full").
  bool Admit() {
    int64_t n = active_.fetch_add(1, std::memory_order_relaxed) + 1;
    if (config_.max_conns > 0 && n > config_.max_conns) {
      active_.fetch_sub(1, std::memory_order_relaxed);
      return false;
    }
    return true;
  }
  void Leave() { active_.fetch_sub(1, std::memory_order_relaxed); }
  int64_t Active() const { return active_.load(std::memory_order_relaxed); }

  // Sessions registered here are stopped by Shutdown(). Register returns false once shutdown has
  // begun (the caller closes the connection).
  bool Register(Session* s);
  void Unregister(Session* s);

  bool ShuttingDown() const { return shutting_down_.load(std::memory_order_acquire); }
  std::atomic<bool>& shutting_down_flag() { return shutting_down_; }

  // Marks the server as shutting down and stops every registered session, which have until
  // `flush_by` to deliver what they have queued. Once.
  void BeginShutdown(std::chrono::steady_clock::time_point flush_by);
  // Waits until every session has unregistered, and every goroutine counted by Detached has
  // ended, or `deadline` passes; true if all finished.
  bool WaitSessions(std::chrono::steady_clock::time_point deadline);
  // A connection goroutine starts (+1) or ends (-1): every one the accept loop starts, including
  // those turning a connection away, from before its session registers until after it is gone.
  void Detached(int delta) { detached_.fetch_add(delta, std::memory_order_acq_rel); }

  // The chat service's rooms and nicks (main.cc sets it when chat is on).
  ChatHub* chat_hub = nullptr;

 private:
  const Config& config_;
  Metrics& metrics_;
  std::atomic<int64_t> active_{0};
  std::atomic<bool> shutting_down_{false};
  std::atomic<int> detached_{0};
  Mutex mu_;
  std::unordered_set<Session*> sessions_;  // under mu_
};

// How a service takes an admitted connection over: start(server, conn) starts the goroutine that
// serves it and returns (the accept loop does not wait); that goroutine's last act is
// ConnDone(server), after which `server` may be gone.
using StartFn = void (*)(Server& server, net::Conn conn);
void ConnDone(Server& server);

// Serves `listener` until it is closed: accepts, applies the connection limit, and hands each
// connection to `start`. `full` is written to a connection over the limit. `server` must outlive
// every connection.
void AcceptLoop(Server& server, const net::Listener& listener, ServiceId service,
                std::string_view full, StartFn start);

}  // namespace greenline::server
