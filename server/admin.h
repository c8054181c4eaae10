// The admin endpoint's routes, served by ServeHttp (http.h) on the admin port (default :9070):
//
//   /                  the live status page (server/status.h), with a board; else an index of
//                      these endpoints. To loopback clients that name it by "localhost" or an
//                      IP address (Host), unless opened to all; so are:
//   /status.json       the page's data (?since=SEQ: samples after SEQ only)
//   /static/status.js, /static/chart.min.js, /static/icon.svg   the page's scripts and icon
//   /healthz           200 "ok" while the server runs; 503 "shutting down" once the shutting-down
//                      flag is set (it keeps answering through a graceful shutdown, so a load
//                      balancer sees the server leave before its connections close)
//   /metrics           Metrics::RenderPrometheus, text format 0.0.4
//   /debug/goroutines  the goroutine dump (what Go users know from net/http/pprof's
//                      goroutine?debug=2); to loopback clients only (as /), unless opened to all
//   anything else      404
//
// Wiring (server/main.cc):
//   AdminOptions admin;
//   admin.shutting_down = &shutting_down;          // the flag SIGTERM sets
//   admin.debug_goroutines_public = flag;
//   admin.status = &board;                         // StatusBoard (server/status.h); may be null
//   admin.status_public = flag;
//   HttpOptions http;
//   http.metrics = &metrics;
//   ServeHttp(admin_listener, MakeAdminHandler(metrics, admin), http);
//
// The dump and /proc reads run on the blocking pool (greenline::Blocking): they can take
// milliseconds on a big server, and must not hold a worker meanwhile.
#pragma once

#include <atomic>
#include <string>

#include "greenline/net.h"
#include "server/http.h"
#include "server/metrics.h"
#include "server/status.h"

namespace greenline::server {

struct AdminOptions {
  // /healthz answers 503 once this is true, and greenline_shutting_down reads 1. Null: never.
  // Must outlive the handler.
  const std::atomic<bool>* shutting_down = nullptr;
  // Serve /debug/goroutines to every client, not only to loopback ones. The dump shows the
  // server's code paths and every connection's state: open it only on a trusted network.
  bool debug_goroutines_public = false;
  // The status page's data; null: / is a plain index and /status.json is 404. Must outlive the
  // handler.
  StatusBoard* status = nullptr;
  // Serve the status page and its data to every client, not only to loopback ones. It shows
  // connection counts, room names and member counts: open it only on a trusted network.
  bool status_public = false;
};

// The admin routes above. `metrics` must outlive the handler. The handler may be called from many
// goroutines at once.
HttpHandler MakeAdminHandler(Metrics& metrics, const AdminOptions& options = {});

// True for a loopback address: 127.0.0.0/8, ::1, and IPv4-mapped ::ffff:127.0.0.0/104 (what an
// IPv4 client of a dual-stack listener looks like).
bool IsLoopback(const net::Addr& addr);

// The running runtime's goroutine dump as text (greenline/dump.h), cut at 64 MiB with a note saying
// so. Runs the dump on the blocking pool from a goroutine. Empty when no
// runtime runs.
std::string GoroutineDumpText();

}  // namespace greenline::server
