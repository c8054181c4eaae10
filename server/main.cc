// greenline: line-protocol echo (7007) and chat (7070) servers, and an HTTP endpoint (9070) with
// /metrics, /healthz and /debug/goroutines. Every connection is a goroutine of greenline's runtime.
//
// Signals: SIGTERM or SIGINT starts a graceful shutdown (stop accepting, /healthz 503, chat users
// told, queued output flushed, connections closed, exit 0 within --shutdown-grace); a second one
// exits at once (status 1). SIGQUIT prints the goroutine dump to stderr and the server runs on.
#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "protocol/chat.h"
#include "runtime/chan/chan.h"
#include "runtime/chan/timer_chan.h"
#include "runtime/net/net.h"
#include "runtime/sched/goroutine.h"
#include "runtime/sched/runtime.h"
#include "server/admin.h"
#include "server/chat.h"
#include "server/config.h"
#include "server/echo.h"
#include "server/http.h"
#include "server/logging.h"
#include "server/metrics.h"
#include "server/server.h"

namespace {

using namespace greenline;
using namespace greenline::server;

sigset_t ShutdownSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  return set;
}

[[noreturn]] void Die(const std::string& message) {
  spdlog::critical("{}", message);
  FlushLogs();
  std::_Exit(1);
}

net::Listener ListenOrDie(std::string_view what, const std::string& addr) {
  auto [ln, err] = net::Listen("tcp", addr);
  if (err) Die(std::string(what) + ": cannot listen on " + addr + ": " + err.String());
  return ln;
}

void Serve(const Config& cfg) {
  Metrics& metrics = *new Metrics;
  // Never destroyed: connection goroutines still running when the grace period ends use them
  // until the process exits.
  Server& server = *new Server(cfg, metrics);
  server.chat_hub = new ChatHub(server);

  net::Listener echo, chat, http;
  if (!cfg.echo_addr.empty()) echo = ListenOrDie("echo", cfg.echo_addr);
  if (!cfg.chat_addr.empty()) chat = ListenOrDie("chat", cfg.chat_addr);
  if (!cfg.http_addr.empty()) http = ListenOrDie("http", cfg.http_addr);

  auto addr = [](const net::Listener& ln) {
    return ln.valid() ? ln.LocalAddr().String() : std::string("off");
  };
  spdlog::info("greenline {} serving echo on {}, chat on {}, http on {}", kVersion, addr(echo),
               addr(chat), addr(http));
  spdlog::info("{} workers, {} poller; max {} connections, lines up to {} bytes, idle timeout {}",
               MaxProcs(), net::PollerName(), cfg.max_conns, cfg.max_line,
               cfg.idle_timeout.count() > 0 ? FormatDuration(cfg.idle_timeout) : "none");

  auto loops_done = MakeChan<bool>(3);
  int loops = 0;
  if (echo.valid()) {
    ++loops;
    Go([&] {
      AcceptLoop(server, echo, Service::kEcho, protocol::kServerFullLine, ServeEcho);
      loops_done.Send(true);
    });
  }
  if (chat.valid()) {
    ++loops;
    Go([&] {
      AcceptLoop(server, chat, Service::kChat, protocol::kServerFullLine, ServeChat);
      loops_done.Send(true);
    });
  }
  if (http.valid()) {
    AdminOptions admin;
    admin.shutting_down = &server.shutting_down_flag();
    admin.debug_goroutines_public = cfg.debug_goroutines_public;
    HttpHandler handler = MakeAdminHandler(metrics, admin);
    // Not waited for: /healthz answers 503 until the process exits.
    HttpOptions hopts;
    hopts.metrics = &metrics;
    Go([http, handler, hopts] { ServeHttp(http, handler, hopts); });
  }

  // Signals arrive at sigwait on a blocking-pool thread (they are blocked in every thread: main()
  // blocked them before the runtime started its threads).
  auto signals = MakeChan<int>(4);
  Go([signals] {
    sigset_t set = ShutdownSignals();
    for (;;) {
      int sig = 0;
      if (Blocking([&] { return sigwait(&set, &sig); }) != 0) continue;
      signals.Send(sig);
    }
  });
  int sig = signals.Recv();
  spdlog::info("received {}: shutting down (grace {})", sig == SIGTERM ? "SIGTERM" : "SIGINT",
               FormatDuration(cfg.shutdown_grace));
  auto deadline = std::chrono::steady_clock::now() + cfg.shutdown_grace;
  // A second signal ends it at once.
  Go([signals] {
    int again = signals.Recv();
    spdlog::warn("received {} again: exiting now", again == SIGTERM ? "SIGTERM" : "SIGINT");
    FlushLogs();
    std::_Exit(1);
  });

  if (echo.valid()) echo.Close();
  if (chat.valid()) chat.Close();
  for (int i = 0; i < loops; ++i) loops_done.Recv();
  server.BeginShutdown();
  int64_t at_start = server.Active();
  bool clean = server.WaitSessions(deadline);
  if (clean) {
    spdlog::info("shutdown complete: {} connections closed", at_start);
  } else {
    spdlog::warn("shutdown grace period over with {} connections still open; exiting",
                 server.Active());
  }
  FlushLogs();
}

}  // namespace

int main(int argc, char** argv) {
  ParseResult parsed = ParseCommandLine(argc, argv);
  if (parsed.exit_status) return *parsed.exit_status;
  static Config config;  // outlives the runtime's goroutines (Main exits without unwinding)
  config = parsed.config;
  SetUpLogging(config);

  // Blocked here, before the runtime creates its threads, so every thread inherits the mask and
  // only the signal goroutine's sigwait sees them.
  sigset_t set = ShutdownSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  Options options;
  options.max_procs = config.workers;
  options.poller = config.poller;
  options.log_startup = true;
  Main([] { Serve(config); }, options);
}
