#include "server/echo.h"

#include <memory>
#include <optional>
#include <span>
#include <string>

#include "greenline/panic.h"
#include "protocol/chat.h"
#include "protocol/line.h"
#include "server/linger.h"
#include "server/session.h"

namespace greenline::server {

namespace {

// One echo connection: everything it remembers between the steps of its hibernating goroutine.
class EchoConn {
 public:
  EchoConn(EchoService& service, net::Conn conn, ConnTicket ticket)
      : session_(service, conn, std::move(ticket)),
        counters_(service.metrics(), ServiceId::kEcho),
        framer_(service.config().max_line),
        max_line_(service.config().max_line),
        idle_(service.config().idle_timeout, conn, /*both=*/true),
        debug_commands_(service.config().debug_commands) {}

  void Start() {
    session_.Start();
    idle_.Touch();
  }

  ConnSession& session() { return session_; }

  // Reads and echoes until the client has nothing more to say (then hibernates) or the connection
  // ends. The idle deadline moves when a read brought something (and at the start), not when a
  // step begins: a step woken by the deadline itself must see it passed.
  NextStep Step() {
    for (;;) {
      if (session_.stopping()) return DisconnectReason::kShutdown;
      std::span<char> space = framer_.Space();
      auto [n, err] = conn().TryRead(space.data(), space.size());
      if (err.would_block()) {
        framer_.Trim();  // no buffer while idle, unless a partial line is pending
        return conn().ResumeWhenReadable();
      }
      if (n > 0) {
        idle_.Touch();
        if (std::optional<DisconnectReason> end = EchoLines(n)) return *end;
      }
      if (err) {
        // Half-close: an unterminated last line still comes back, then we close.
        if (err.eof()) Send(framer_.Rest(), 0);
        return session_.ReasonFor(err);
      }
    }
  }

  void End(DisconnectReason reason) {
    if (reason == DisconnectReason::kPanic) {
      conn().SetWriteDeadline(Clock::now() + std::chrono::seconds(1));
      Send(protocol::kInternalErrorLine, 1);
    }
    // After a reset there is nobody to tell; otherwise our last words (the reply to a half-close,
    // "! line too long") must not be destroyed by an RST for input we did not read.
    if (reason == DisconnectReason::kError) {
      conn().Close();
    } else {
      LingeringClose(conn(), &session_.service().metrics(), ServiceId::kEcho);
    }
    session_.Finish(reason);
  }

 private:
  const net::Conn& conn() const { return session_.conn(); }

  // Frames the `n` bytes just read and writes back the lines they complete; the reason to end, if
  // any. The lines taken out lie back to back in the framer's buffer: one write, no copy.
  std::optional<DisconnectReason> EchoLines(size_t n) {
    framer_.Commit(n);
    counters_.Received(n);
    const char* begin = nullptr;
    const char* end = nullptr;
    uint64_t lines = 0;
    protocol::LineFramer::Line line;
    protocol::LineFramer::Status st;
    while ((st = framer_.Next(&line)) == protocol::LineFramer::Status::kLine) {
      if (debug_commands_ && line.content == "/debug panic") {
        Panic("/debug panic from " + session_.peer());
      }
      if (begin == nullptr) begin = line.content.data();
      end = line.terminator.data() + line.terminator.size();
      ++lines;
    }
    counters_.LinesReceived(lines);
    if (lines > 0) {
      auto size = static_cast<size_t>(end - begin);
      // A write deadline is the idle deadline too: a client that never reads its replies.
      if (auto w = conn().Write(begin, size); w.err) return session_.ReasonFor(w.err);
      counters_.Sent(size, lines);
    }
    if (st == protocol::LineFramer::Status::kTooLong) {
      Send(protocol::LineTooLongLine(max_line_), 1);
      return DisconnectReason::kLineTooLong;
    }
    return std::nullopt;
  }

  void Send(std::string_view text, uint64_t lines) {
    if (!text.empty() && !conn().Write(text).err) counters_.Sent(text.size(), lines);
  }

  ConnSession session_;  // first: its ticket goes last
  ConnCounters counters_;
  protocol::LineFramer framer_;
  const size_t max_line_;
  IdleTimer idle_;
  const bool debug_commands_;
};

}  // namespace

EchoService::EchoService(const Config& config, Metrics& metrics, ConnLimit* limit)
    : Service(ServiceId::kEcho, metrics, limit, protocol::kServerFullLine), config_(config) {}

void EchoService::Serve(net::Conn conn, ConnTicket ticket) {
  ServeHibernating(std::make_unique<EchoConn>(*this, std::move(conn), std::move(ticket)));
}

}  // namespace greenline::server
