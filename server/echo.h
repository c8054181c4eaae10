// The echo service: each line comes back exactly as received, terminator included, binary bytes
// untouched.
#pragma once

#include "greenline/net.h"
#include "server/config.h"
#include "server/server.h"

namespace greenline::server {

// Serves each echo connection until the client leaves, goes idle, sends an overlong line, or the
// server shuts down; then closes it. A panic in a connection's handler is recovered: logged,
// counted, the client is told "! internal error", and only that connection closes. Each connection
// is a hibernating goroutine (ServeHibernating, session.h), which gives its stack back whenever
// its client has nothing more to say: an idle echo connection holds its state (a few hundred
// bytes; no read buffer while no partial line is pending), not a stack.
class EchoService final : public Service {
 public:
  // `limit` (may be null) is shared with the other line services; `config` must outlive this.
  EchoService(const Config& config, Metrics& metrics, ConnLimit* limit);

  const Config& config() const { return config_; }

 protected:
  void Serve(net::Conn conn, ConnTicket ticket) override;

 private:
  const Config& config_;
};

}  // namespace greenline::server
