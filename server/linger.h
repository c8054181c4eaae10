// Ending a connection without losing what was last sent to it.
#pragma once

#include "greenline/net.h"
#include "server/metrics.h"

namespace greenline::server {

// Closes `conn` after the server's last words. Closing a socket with unread input makes the kernel
// send RST instead of FIN, and an RST that reaches the client before it has read the last reply
// destroys that reply: exactly the "! line too long", the 431, the "* server shutting down" it most
// needs to see, sent while it is still sending. So: FIN first (CloseWrite), then read and drop what
// the client still sends until its EOF, 512 KiB or 500 ms, then close. Go's http.Server
// (closeWriteAndWait) and Apache (lingering close) do the same. What is drained is counted in
// `metrics` (may be null) as `service`'s received bytes. Parks; from the connection's goroutine.
void LingeringClose(const net::Conn& conn, Metrics* metrics, ServiceId service);

}  // namespace greenline::server
