// greenline: line-protocol echo (7007) and chat (7070) servers, and an HTTP endpoint (9070) with
// the live status page (/), /metrics, /healthz and /debug/goroutines. Every connection is a
// goroutine of greenline's runtime.
//
// Signals: SIGTERM or SIGINT starts a graceful shutdown (stop accepting, /healthz 503, chat users
// told, queued output flushed, connections closed, exit 0 within --shutdown-grace); a second one
// exits at once (status 1). SIGQUIT prints the goroutine dump to stderr and the server runs on.
#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "greenline/chan.h"
#include "greenline/goroutine.h"
#include "greenline/net.h"
#include "greenline/runtime.h"
#include "greenline/signal.h"
#include "greenline/wait_group.h"
#include "protocol/chat.h"
#include "server/admin.h"
#include "server/chat.h"
#include "server/config.h"
#include "server/echo.h"
#include "server/http.h"
#include "server/logging.h"
#include "server/metrics.h"
#include "server/scavenger.h"
#include "server/server.h"
#include "server/status.h"

namespace {

using namespace greenline;
using namespace greenline::server;

[[noreturn]] void Die(const std::string& message) {
  spdlog::critical("{}", message);
  ShutDownLogs();
  std::_Exit(1);
}

net::Listener ListenOrDie(std::string_view what, const std::string& addr) {
  auto [ln, err] = net::Listen("tcp", addr);
  if (err) Die(std::string(what) + ": cannot listen on " + addr + ": " + err.String());
  return ln;
}

void Serve(const Config& cfg) {
  // SIGTERM or SIGINT starts the shutdown; a second one ends the process at once. They stay
  // watched until the process exits (main() blocked them until this point).
  auto signals = MakeChan<int>(2);
  signal::Notify(signals, {SIGTERM, SIGINT});

  // Static: a clean shutdown leaves nothing behind (every goroutine has ended when Serve returns,
  // so LeakSanitizer has nothing to report); an unclean one exits with _Exit and never destroys
  // what the abandoned goroutines still use.
  static Metrics metrics;
  static ConnLimit line_limit(cfg.max_conns);  // echo and chat together
  static EchoService echo(cfg, metrics, &line_limit);
  static ChatService chat(cfg, metrics, &line_limit);
  static std::atomic<bool> shutting_down{false};
  AdminOptions admin;
  admin.shutting_down = &shutting_down;
  admin.debug_goroutines_public = cfg.debug_goroutines_public;
  // The status page's sampler: a goroutine from now until the shutdown's end.
  static StatusBoard status(metrics, cfg.chat_addr.empty() ? nullptr : &chat);
  admin.status = &status;
  admin.status_public = cfg.status_public;
  HttpOptions http_options;
  http_options.metrics = &metrics;
  static HttpService http(MakeAdminHandler(metrics, admin), http_options);

  struct Listening {
    Service& service;
    std::string_view what;
    const std::string& addr;
    net::Listener listener;
  };
  std::vector<Listening> line_services = {{echo, "echo", cfg.echo_addr, {}},
                                          {chat, "chat", cfg.chat_addr, {}}};
  Listening admin_endpoint{http, "http", cfg.http_addr, {}};
  for (Listening* l : {&line_services[0], &line_services[1], &admin_endpoint}) {
    if (!l->addr.empty()) l->listener = ListenOrDie(l->what, l->addr);
  }

  auto addr = [](const Listening& l) {
    return l.listener.valid() ? l.listener.LocalAddr().String() : std::string("off");
  };
  spdlog::info("greenline {} serving echo on {}, chat on {}, http on {}", kVersion,
               addr(line_services[0]), addr(line_services[1]), addr(admin_endpoint));
  spdlog::info("{} workers, {} poller; max {} connections, lines up to {} bytes, idle timeout {}",
               MaxProcs(), net::PollerName(), cfg.max_conns, cfg.max_line,
               cfg.idle_timeout.count() > 0 ? FormatDuration(cfg.idle_timeout) : "none");
  if (line_services[1].listener.valid()) {
    spdlog::info(
        "chat output: {} KiB per connection for up to {} (unless draining at {} KiB/s), "
        "{} KiB at most; {} MiB for all connections",
        cfg.out_queue >> 10, FormatDuration(cfg.out_queue_grace), cfg.out_min_rate >> 10,
        cfg.out_queue_hard >> 10, cfg.out_memory >> 20);
  }

  static HeapScavenger scavenger;
  WaitGroup sampling;  // the status board's sampler (when there is an admin endpoint) and the
                       // heap scavenger
  sampling.Add(1);
  if (admin_endpoint.listener.valid()) {
    sampling.Add(1);
    Go([&] {
      status.Run();
      sampling.Done();
    });
  }
  Go([&] {
    scavenger.Run();
    sampling.Done();
  });

  WaitGroup line_loops, http_loop;  // the accept loops
  for (Listening& l : line_services) {
    if (!l.listener.valid()) continue;
    line_loops.Add(1);
    Go([&] {
      AcceptLoop(l.listener, l.service);
      line_loops.Done();
    });
  }
  if (admin_endpoint.listener.valid()) {
    http_loop.Add(1);
    Go([&] {
      AcceptLoop(admin_endpoint.listener, http);
      http_loop.Done();
    });
  }

  int sig = signals.Recv();
  spdlog::info("received {}: shutting down (grace {})", sig == SIGTERM ? "SIGTERM" : "SIGINT",
               FormatDuration(cfg.shutdown_grace));
  auto deadline = Clock::now() + cfg.shutdown_grace;
  auto returning = MakeChan<bool>();
  WaitGroup second_signal;
  second_signal.Add(1);
  Go([&] {
    int again = 0;
    if (Select(RecvCase(signals, [&](int sig) { again = sig; }), RecvCase(returning)) == 0) {
      spdlog::warn("received {} again: exiting now", again == SIGTERM ? "SIGTERM" : "SIGINT");
      ShutDownLogs();
      std::_Exit(1);
    }
    second_signal.Done();
  });

  // /healthz turns 503, and every line connection is told at once; a connection accepted from
  // now on is closed without being served. Queued output has until a little before the deadline:
  // a quarter of the grace (at least 600 ms, for the 500 ms lingering closes that follow; at most
  // 1 s; never over half the grace) is kept back, so connections can still close cleanly within
  // the grace period.
  shutting_down.store(true);
  int64_t at_start = line_limit.in_use();
  using Duration = Clock::duration;
  const Duration grace = cfg.shutdown_grace;
  const Duration reserve = std::min(std::max<Duration>(grace / 4, std::chrono::milliseconds(600)),
                                    std::min<Duration>(std::chrono::seconds(1), grace / 2));
  // The listeners close first (as Go's http.Server.Shutdown does): once a client has seen its
  // connection stopped, a new one is refused, not accepted and then closed.
  for (Listening& l : line_services) {
    if (l.listener.valid()) l.listener.Close();
  }
  for (Listening& l : line_services) l.service.Stop(deadline - reserve);
  line_loops.Wait();
  bool all_closed = true;
  for (Listening& l : line_services) all_closed &= l.service.Wait(deadline);
  if (!all_closed) {
    spdlog::warn("shutdown grace period over with {} connections still open; exiting",
                 line_limit.in_use());
    ShutDownLogs();
    std::_Exit(0);  // their goroutines are abandoned, as Go's are when main returns
  }
  spdlog::info("shutdown complete: {} connections closed", at_start);
  // Nothing is left running: the admin endpoint (it answered 503 until now), then the goroutine
  // waiting for a second signal.
  if (admin_endpoint.listener.valid()) admin_endpoint.listener.Close();
  http_loop.Wait();
  http.Stop();
  http.Wait();
  status.Stop();
  scavenger.Stop();
  sampling.Wait();
  returning.Close();
  second_signal.Wait();
  ShutDownLogs();
}

}  // namespace

int main(int argc, char** argv) {
  ParseResult parsed = ParseCommandLine(argc, argv);
  if (parsed.exit_status) return *parsed.exit_status;
  static Config config;  // outlives the runtime's goroutines (Main exits without unwinding)
  config = parsed.config;
  // Blocked here, before the logging thread and the runtime's threads exist, so that a signal
  // during start-up waits for Serve's signal::Notify (which unblocks them where it delivers them)
  // instead of killing the process with the default action.
  sigset_t shutdown_signals;
  sigemptyset(&shutdown_signals);
  sigaddset(&shutdown_signals, SIGTERM);
  sigaddset(&shutdown_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &shutdown_signals, nullptr);
  SetUpLogging(config);

  Options options;
  options.max_procs = config.workers;
  options.poller = config.poller;
  options.log_startup = true;
  Main([] { Serve(config); }, options);
}
