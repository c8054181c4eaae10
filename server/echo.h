// The echo service: each line comes back exactly as received, terminator included, binary bytes
// untouched. One goroutine per connection.
#pragma once

#include "runtime/net/net.h"
#include "server/server.h"

namespace greenline::server {

// Serves one echo connection until the client leaves, goes idle, sends an overlong line, or the
// server shuts down; then closes it. A panic in here is recovered: logged, counted, and only this
// connection closes.
void ServeEcho(Server& server, net::Conn conn);

}  // namespace greenline::server
