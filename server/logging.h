// The server's logs: spdlog to stdout, as text or as one JSON object per line, and the runtime's
// own lines (greenline/log.h) forwarded into the same stream.
//
// Asynchronous: a log call formats the line and queues it (8,192 lines), and one spdlog thread
// writes them. A worker thread must not block on stdout: under `docker logs` it is a pipe that
// fills when the reader lags, and a worker blocked in write(2) stops every goroutine it runs. When
// the queue is full the oldest queued line is dropped, never the caller's time.
#pragma once

#include <spdlog/spdlog.h>

#include "server/config.h"

namespace greenline::server {

// Sets up the default spdlog logger (stdout, thread-safe) at the configured level and format, and
// routes the runtime's log sink into it. Call once, before the runtime starts.
void SetUpLogging(const Config& config);

// Writes out every queued line and stops the logging thread; from then on the runtime's lines go
// to stderr directly and spdlog must not be used. Call last, before exiting.
void ShutDownLogs();

}  // namespace greenline::server
