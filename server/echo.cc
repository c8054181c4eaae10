#include "server/echo.h"

#include <span>
#include <string>

#include "protocol/chat.h"
#include "protocol/line.h"
#include "runtime/panic/panic.h"
#include "server/linger.h"
#include "server/session.h"

namespace greenline::server {

namespace {

// Reads, echoes, and says why it stopped.
DisconnectReason EchoLoop(Server& server, const net::Conn& conn, ConnSession& session) {
  const Config& cfg = server.config();
  ConnCounters counters(server.metrics(), Service::kEcho);
  protocol::LineFramer framer(cfg.max_line);
  IdleTimer idle(server, conn);
  std::string out;
  for (;;) {
    idle.Touch();
    if (session.stopping()) return DisconnectReason::kShutdown;
    std::span<char> space = framer.Space();
    auto [n, err] = conn.Read(space.data(), space.size());
    if (n > 0) {
      framer.Commit(n);
      counters.Received(n);
      out.clear();
      uint64_t lines = 0;
      protocol::LineFramer::Line line;
      protocol::LineFramer::Status st;
      while ((st = framer.Next(&line)) == protocol::LineFramer::Status::kLine) {
        out.append(line.content);
        out.append(line.terminator);
        ++lines;
      }
      counters.LinesReceived(lines);
      if (!out.empty()) {
        if (auto w = conn.Write(out); w.err) {
          // A write deadline is the idle deadline too: a client that never reads its replies.
          if (!w.err.timeout()) return DisconnectReason::kError;
          return session.stopping() ? DisconnectReason::kShutdown : DisconnectReason::kIdleTimeout;
        }
        counters.Sent(out.size(), lines);
      }
      if (st == protocol::LineFramer::Status::kTooLong) {
        std::string msg = protocol::LineTooLongLine(cfg.max_line);
        if (!conn.Write(msg).err) counters.Sent(msg.size(), 1);
        return DisconnectReason::kLineTooLong;
      }
    }
    if (err) {
      if (err.eof()) {
        // Half-close: an unterminated last line still comes back, then we close.
        std::string_view rest = framer.Rest();
        if (!rest.empty() && !conn.Write(rest).err) counters.Sent(rest.size(), 0);
        return DisconnectReason::kEof;
      }
      if (err.timeout()) {
        return session.stopping() ? DisconnectReason::kShutdown : DisconnectReason::kIdleTimeout;
      }
      return DisconnectReason::kError;
    }
  }
}

}  // namespace

void ServeEcho(Server& server, net::Conn conn) {
  ConnSession session(server, conn, Service::kEcho);
  DisconnectReason reason = DisconnectReason::kError;
  Frame([&](Defer& defer) {
    defer([&] {
      if (PanicValue v = Recover()) {
        reason = DisconnectReason::kPanic;
        session.LogPanic(v);
      }
      // After a reset there is nobody to tell; otherwise our last words (the reply to a half-close,
      // "! line too long") must not be destroyed by an RST for input we did not read.
      if (reason == DisconnectReason::kError) {
        conn.Close();
      } else {
        LingeringClose(conn, &server.metrics(), Service::kEcho);
      }
      session.Finish(reason);
    });
    if (!session.Start()) {
      reason = DisconnectReason::kShutdown;
      return;
    }
    reason = EchoLoop(server, conn, session);
  });
}

}  // namespace greenline::server
