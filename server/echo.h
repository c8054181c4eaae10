// The echo service: each line comes back exactly as received, terminator included, binary bytes
// untouched. One goroutine per connection.
#pragma once

#include "greenline/net.h"
#include "server/server.h"

namespace greenline::server {

// Serves one echo connection until the client leaves, goes idle, sends an overlong line, or the
// server shuts down; then closes it. A panic in here is recovered: logged, counted, and only this
// connection closes. A StartFn (server.h): the connection's goroutine is a hibernating one
// (GoHibernating), which gives its stack back whenever its client has nothing more to say, so an
// idle echo connection holds its state (a few hundred bytes; no read buffer while no partial line
// is pending), not a stack.
void StartEcho(Server& server, net::Conn conn);

}  // namespace greenline::server
