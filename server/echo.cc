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
  EchoConn(Server& server, net::Conn conn)
      : conn_(conn),
        session_(server, conn, ServiceId::kEcho),
        counters_(server.metrics(), ServiceId::kEcho),
        framer_(server.config().max_line),
        idle_(server, conn) {}

  // One step: serves until the client has nothing more to say (then hibernates) or the connection
  // ends (then closes it). A panic is recovered here, by the step's deferred call: logged, counted,
  // and only this connection closes.
  Resume Step() {
    Resume next = Resume::Done();
    bool done = true;
    Frame([&](Defer& defer) {
      defer([&] {
        if (PanicValue v = Recover()) {
          reason_ = DisconnectReason::kPanic;
          session_.LogPanic(v);
          done = true;
        }
        if (done) Close();
      });
      bool first = !started_;
      if (first) {
        started_ = true;
        if (!session_.Start()) {
          reason_ = DisconnectReason::kShutdown;
          return;
        }
      }
      if (std::optional<DisconnectReason> end = Serve(first, &next)) {
        reason_ = *end;
      } else {
        done = false;
      }
    });
    return done ? Resume::Done() : next;
  }

  Server& server() const { return session_.server(); }

 private:
  // Reads, echoes, and says why it stopped; or nothing, with *next set, when it is to hibernate.
  // The idle deadline moves when a read brought something (and at the start), not when a step
  // begins: a step woken by the deadline itself must see it passed.
  std::optional<DisconnectReason> Serve(bool first, Resume* next) {
    const Config& cfg = server().config();
    for (bool touch = first;; touch = true) {
      if (touch) idle_.Touch();
      if (session_.stopping()) return DisconnectReason::kShutdown;
      std::span<char> space = framer_.Space();
      auto [n, err] = conn_.TryRead(space.data(), space.size());
      if (err.would_block()) {
        framer_.Trim();  // no buffer while idle, unless a partial line is pending
        *next = conn_.ResumeWhenReadable();
        return std::nullopt;
      }
      if (n > 0) {
        framer_.Commit(n);
        counters_.Received(n);
        // The lines taken out lie back to back in the framer's buffer: one write, no copy.
        const char* begin = nullptr;
        const char* end = nullptr;
        uint64_t lines = 0;
        protocol::LineFramer::Line line;
        protocol::LineFramer::Status st;
        while ((st = framer_.Next(&line)) == protocol::LineFramer::Status::kLine) {
          if (begin == nullptr) begin = line.content.data();
          end = line.terminator.data() + line.terminator.size();
          ++lines;
        }
        counters_.LinesReceived(lines);
        if (lines > 0) {
          auto size = static_cast<size_t>(end - begin);
          if (auto w = conn_.Write(begin, size); w.err) {
            // A write deadline is the idle deadline too: a client that never reads its replies.
            if (!w.err.timeout()) return DisconnectReason::kError;
            return session_.stopping() ? DisconnectReason::kShutdown
                                       : DisconnectReason::kIdleTimeout;
          }
          counters_.Sent(size, lines);
        }
        if (st == protocol::LineFramer::Status::kTooLong) {
          std::string msg = protocol::LineTooLongLine(cfg.max_line);
          if (!conn_.Write(msg).err) counters_.Sent(msg.size(), 1);
          return DisconnectReason::kLineTooLong;
        }
      }
      if (err) {
        if (err.eof()) {
          // Half-close: an unterminated last line still comes back, then we close.
          std::string_view rest = framer_.Rest();
          if (!rest.empty() && !conn_.Write(rest).err) counters_.Sent(rest.size(), 0);
          return DisconnectReason::kEof;
        }
        if (err.timeout()) {
          return session_.stopping() ? DisconnectReason::kShutdown : DisconnectReason::kIdleTimeout;
        }
        return DisconnectReason::kError;
      }
    }
  }

  void Close() {
    // After a reset there is nobody to tell; otherwise our last words (the reply to a half-close,
    // "! line too long") must not be destroyed by an RST for input we did not read.
    if (reason_ == DisconnectReason::kError) {
      conn_.Close();
    } else {
      LingeringClose(conn_, &server().metrics(), ServiceId::kEcho);
    }
    session_.Finish(reason_);
  }

  net::Conn conn_;
  ConnSession session_;
  ConnCounters counters_;
  protocol::LineFramer framer_;
  IdleTimer idle_;
  bool started_ = false;
  DisconnectReason reason_ = DisconnectReason::kError;
};

}  // namespace

void StartEcho(Server& server, net::Conn conn) {
  GoHibernating([st = std::make_unique<EchoConn>(server, conn)]() mutable -> Resume {
    Resume next = st->Step();
    if (next.wait == nullptr) {
      Server& s = st->server();
      st.reset();  // the session is gone before the server may be
      ConnDone(s);
    }
    return next;
  });
}

}  // namespace greenline::server
