// The server's logs: spdlog to stdout, as text or as one JSON object per line, and the runtime's
// own lines (base/log.h) forwarded into the same stream.
#pragma once

#include <spdlog/spdlog.h>

#include "server/config.h"

namespace greenline::server {

// Sets up the default spdlog logger (stdout, thread-safe) at the configured level and format, and
// routes the runtime's log sink into it. Call once, before the runtime starts.
void SetUpLogging(const Config& config);

// Writes out what is buffered (before exit: std::exit does not run spdlog's shutdown in time).
void FlushLogs();

}  // namespace greenline::server
