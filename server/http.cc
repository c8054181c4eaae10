// The HTTP/1.1 server of http.h: an accept loop and a goroutine per connection, around the pure
// HTTP of protocol/http.h.
//
// One connection's life (ServeConn, ServeRequests):
//   1. Set the read deadline to now + idle_timeout, then read until the buffer holds a whole head
//      (an empty line), at most max_header_bytes of it (protocol::HttpHeadFramer says where it
//      ends). Leading empty lines are dropped (RFC 9112 2.2). Bytes after the head stay in the
//      buffer: they are the next pipelined request.
//   2. Parse it (protocol::ParseRequestHead), decide (error, 405 or 413: protocol::PlanRequest; or
//      the handler), write the response under a write deadline in one write (two for large
//      bodies).
//   3. Keep-alive: back to 1. Otherwise a lingering close (LingeringClose says why).
// The goroutine's body is a Frame with two deferred calls: one recovers a panic (log, count,
// 500 if the handler was running), the other closes the socket and finishes the connection's
// session, whatever happened.
//
// Stopping (the service's Stop, server.h): every connection's session is marked stopping and its
// read deadline moves to now. A connection waiting for a request wakes with a timeout and closes;
// one running its handler writes its response (with "Connection: close") and closes. Each
// connection sets its own deadline before it checks stopping(), and Stop marks it stopping before
// it moves the deadline, so a connection either sees the flag or has its new deadline overridden
// (deadline updates are ordered by the connection's own lock): none waits out a whole idle timeout.
//
// Rejected: a connection-state machine with idle/active states (Go's ConnState) to close only idle
// connections: moving the read deadline does the same with no per-request bookkeeping, since a
// handler never reads. Reading request bodies: nothing the admin endpoint serves takes one.
#include "server/http.h"

#include <algorithm>
#include <string>

#include "greenline/goroutine.h"
#include "greenline/log.h"
#include "greenline/panic.h"
#include "server/linger.h"
#include "server/session.h"

namespace greenline::server {
namespace {

using protocol::ErrorResponse;

using namespace std::chrono_literals;

constexpr size_t kReadChunk = 4096;
// Bodies up to this size are copied behind the head and sent in one write; larger ones (a goroutine
// dump of a big server) are written separately rather than copied once more.
constexpr size_t kCoalesceBody = 64 * 1024;

// Where the panic now being handled was raised, for the log. From the deferred call that recovered
// it. Panic() records its backtrace (PanicStack); any other C++ exception carries none.
std::string PanicOrigin() {
  std::string stack = PanicStack();
  if (!stack.empty()) return stack;
  return "\t(a C++ exception not raised by Panic: where it was thrown is not recorded)\n";
}

// Where a service given no metrics counts: nowhere anyone reads.
Metrics& Uncounted() {
  static auto* metrics = new Metrics();
  return *metrics;
}

// What a connection's deferred calls need from its body.
struct ConnState {
  bool in_handler = false;  // a panic there is answered with 500
  bool head_only = false;   // the request being handled is a HEAD
};

void CountReceived(Metrics* m, size_t n) {
  if (m != nullptr && n > 0) m->bytes_received_total[ServiceId::kHttp].Add(n);
}

// Where ReadHead left the connection.
enum class HeadStatus {
  kComplete,  // buf starts with a whole head of *len bytes
  kTooLarge,  // no head within max_header_bytes
  kGone,      // EOF, timeout, reset or closed before a whole head: nothing to answer
};

HeadStatus ReadHead(const net::Conn& conn, std::string& buf, size_t max, Metrics* m, size_t* len) {
  protocol::HttpHeadFramer framer(max);
  for (;;) {
    protocol::HttpHeadFramer::Frame f = framer.Next(buf);
    buf.erase(0, f.skip);  // empty lines before a request line are ignored (RFC 9112 2.2)
    if (f.status == protocol::HttpHeadFramer::Status::kComplete) {
      *len = f.length;
      return HeadStatus::kComplete;
    }
    if (f.status == protocol::HttpHeadFramer::Status::kTooLarge) return HeadStatus::kTooLarge;
    size_t old = buf.size();
    buf.resize(old + kReadChunk);
    net::IoResult r = conn.Read(buf.data() + old, kReadChunk);
    buf.resize(old + r.n);
    CountReceived(m, r.n);
    if (r.n == 0 && r.err) return HeadStatus::kGone;
  }
}

// Writes `resp` as the answer to a request of `version`. False if the write failed (the connection
// is then done).
bool WriteResponse(const net::Conn& conn, const HttpOptions& o, const std::string& version,
                   const HttpResponse& resp, bool keep_alive, bool head_only) {
  if (!protocol::IsFinalStatus(resp.status)) {
    Logf(LogLevel::kError, "http: handler returned status %d; answering 500", resp.status);
    return WriteResponse(conn, o, version, ErrorResponse(500, "bad status from handler"),
                         keep_alive, head_only);
  }
  static const std::string kServer = "greenline/" + std::string(BuildVersion());
  std::string_view body = protocol::ResponseBody(resp, head_only);
  bool separate = body.size() > kCoalesceBody;
  std::string out;
  out.reserve(256 + (resp.body.size() <= kCoalesceBody ? resp.body.size() : 0));
  protocol::AppendResponseHead(
      resp, {version, keep_alive, kServer, protocol::HttpDate(std::chrono::system_clock::now())},
      &out);
  if (!separate) out.append(body);

  conn.SetWriteDeadline(Clock::now() + o.write_timeout);
  net::IoResult w = conn.Write(out);
  size_t sent = w.n;
  if (!w.err && separate) {
    w = conn.Write(body);
    sent += w.n;
  }
  if (o.metrics != nullptr) o.metrics->bytes_sent_total[ServiceId::kHttp].Add(sent);
  return !w.err;
}

void ServeRequests(const HttpHandler& handler, const HttpOptions& o, const ConnSession& session,
                   ConnState& st) {
  const net::Conn& conn = session.conn();
  net::Addr peer = conn.RemoteAddr();
  std::string buf;
  for (;;) {
    conn.SetReadDeadline(Clock::now() + o.idle_timeout);
    if (session.stopping()) return;  // after our own deadline: see the top of this file
    size_t head_len = 0;
    HeadStatus hs = ReadHead(conn, buf, o.max_header_bytes, o.metrics, &head_len);
    if (hs == HeadStatus::kGone) return;

    HttpRequest req;
    req.peer = peer;
    HttpResponse resp;
    bool keep_alive = false;
    bool head_only = false;
    if (hs == HeadStatus::kTooLarge) {
      resp = ErrorResponse(431, "the request line and headers exceed " +
                                    std::to_string(o.max_header_bytes) + " bytes");
    } else {
      std::string why;
      int status = protocol::ParseRequestHead(std::string_view(buf).substr(0, head_len), req, &why);
      buf.erase(0, head_len);
      if (status != 0) {
        resp = ErrorResponse(status, why);
      } else {
        protocol::RequestPlan plan = protocol::PlanRequest(req);
        head_only = plan.head_only;
        keep_alive = plan.keep_alive;
        if (plan.answer) {
          resp = std::move(*plan.answer);  // 413 (a body) or 405 (not GET nor HEAD)
        } else {
          st.in_handler = true;
          st.head_only = head_only;
          resp = handler(req);
          st.in_handler = false;
        }
      }
    }
    if (session.stopping()) keep_alive = false;
    if (!WriteResponse(conn, o, req.version, resp, keep_alive, head_only)) return;
    if (!keep_alive) {
      LingeringClose(conn, o.metrics, ServiceId::kHttp);
      return;
    }
  }
}

}  // namespace

HttpService::HttpService(HttpHandler handler, const HttpOptions& options)
    : Service(ServiceId::kHttp, options.metrics != nullptr ? *options.metrics : Uncounted()),
      handler_(std::move(handler)),
      options_(options) {}

void HttpService::Serve(net::Conn conn, ConnTicket ticket) {
  Go([this, conn, t = std::move(ticket)]() mutable { ServeConn(conn, std::move(t)); });
}

void HttpService::ServeConn(net::Conn conn, ConnTicket ticket) {
  ConnSession session(*this, conn, std::move(ticket));
  ConnState st;
  Frame([&](Defer& defer) {
    defer([&] {
      conn.Close();  // after a lingering close it is closed already: that error is expected
      session.Finish(std::nullopt);
    });
    defer([&] {
      PanicValue v = Recover();
      if (!v) return;
      std::string origin = PanicOrigin();
      if (!origin.empty() && origin.back() == '\n') origin.pop_back();  // the sink adds its own
      Log(LogLevel::kError, "http: panic serving " + conn.RemoteAddr().String() + " (goroutine " +
                                std::to_string(GoroutineId()) + "), recovered: " + v.String() +
                                "\n" + origin);
      metrics().panics_recovered_total[ServiceId::kHttp].Inc();
      if (!st.in_handler) return;  // the panic was ours, not the handler's: nothing to answer
      HttpResponse resp = ErrorResponse(500, "the handler panicked; see the server log");
      if (WriteResponse(conn, options_, "HTTP/1.1", resp, false, st.head_only)) {
        LingeringClose(conn, options_.metrics, ServiceId::kHttp);
      }
    });
    session.Start();
    ServeRequests(handler_, options_, session, st);
  });
}

void ServeHttp(const net::Listener& listener, HttpHandler handler, const HttpOptions& options) {
  HttpService service(std::move(handler), options);
  AcceptLoop(listener, service);
  service.Stop();
  service.Wait();
}

}  // namespace greenline::server
