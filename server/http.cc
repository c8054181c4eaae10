// The HTTP/1.1 server of http.h: an accept loop, a goroutine per connection, a request-head parser.
//
// One connection's life (ServeConn, ServeRequests):
//   1. Set the read deadline to now + idle_timeout, then read until the buffer holds a whole head
//      (an empty line), at most max_header_bytes of it. Leading empty lines are dropped (RFC 9112
//      2.2). Bytes after the head stay in the buffer: they are the next pipelined request.
//   2. Parse it (ParseRequestHead), decide (error, 405, 413, or the handler), write the response
//      under a write deadline in one write (two for large bodies).
//   3. Keep-alive: back to 1. Otherwise a lingering close (LingeringClose says why).
// The goroutine's body is a Frame with two deferred calls: one recovers a panic (log, count,
// 500 if the handler was running), the other closes the socket and takes the connection off the
// server's list, whatever happened.
//
// Stopping: when Accept reports the listener closed, ServeHttp sets `closing` and moves every open
// connection's read deadline to now. A connection waiting for a request wakes with a timeout and
// closes; one running its handler writes its response (with "Connection: close") and closes. Each
// connection sets its own deadline before it checks `closing`, and ServeHttp sets `closing` before
// it moves the deadlines, so a connection either sees the flag or has its new deadline overridden
// (deadline updates are ordered by the connection's own lock): none waits out a whole idle timeout.
// ServeHttp then waits for the connection goroutines, at most a write timeout.
//
// Rejected: a connection-state machine with idle/active states (Go's ConnState) to close only idle
// connections: moving the read deadline does the same with no per-request bookkeeping, since a
// handler never reads. Reading request bodies: nothing the admin endpoint serves takes one.
#include "server/http.h"

#include <time.h>

#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <exception>
#include <list>
#include <mutex>

#include "greenline/goroutine.h"
#include "greenline/log.h"
#include "greenline/mutex.h"
#include "greenline/panic.h"
#include "greenline/wait_group.h"
#include "server/linger.h"

namespace greenline::server {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr size_t kReadChunk = 4096;
// Bodies up to this size are copied behind the head and sent in one write; larger ones (a goroutine
// dump of a big server) are written separately rather than copied once more.
constexpr size_t kCoalesceBody = 64 * 1024;

bool IsTchar(unsigned char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

bool IsToken(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return IsTchar(c); });
}

char Lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

bool StartsWithIgnoreCase(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && EqualsIgnoreCase(s.substr(0, prefix.size()), prefix);
}

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// True if the comma-separated list `value` ("keep-alive, Upgrade") holds `token`, ignoring case.
bool HasToken(std::string_view value, std::string_view token) {
  while (!value.empty()) {
    size_t comma = value.find(',');
    if (EqualsIgnoreCase(TrimOws(value.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

int Fail(std::string* error, int status, std::string_view why) {
  if (error != nullptr) *error = why;
  return status;
}

// Splits the request target into path and query (RFC 9112 3.2: origin-form "/p?q", absolute-form
// "http://host/p?q", which a server must accept, and asterisk-form "*"). False if it is none.
bool SplitTarget(std::string_view target, HttpRequest& req) {
  std::string_view rest;
  if (target.front() == '/') {
    rest = target;
  } else if (target == "*") {
    req.path = "*";
    return true;
  } else if (StartsWithIgnoreCase(target, "http://") || StartsWithIgnoreCase(target, "https://")) {
    std::string_view after = target.substr(target.find("//") + 2);
    size_t end = after.find_first_of("/?#");
    if (end == 0 || after.empty()) return false;  // no authority
    rest = end == std::string_view::npos ? std::string_view() : after.substr(end);
  } else {
    return false;
  }
  rest = rest.substr(0, rest.find('#'));  // a fragment is never sent; drop one if it is
  size_t q = rest.find('?');
  req.path = std::string(rest.substr(0, q));
  if (q != std::string_view::npos) req.query = std::string(rest.substr(q + 1));
  if (req.path.empty()) req.path = "/";  // "http://host" and "http://host?x" mean "/"
  return true;
}

// Where the panic now being handled was raised, for the log. From the deferred call that recovered
// it. Panic() records its backtrace (PanicStack); any other C++ exception carries none.
std::string PanicOrigin() {
  std::string stack = PanicStack();
  if (!stack.empty()) return stack;
  return "\t(a C++ exception not raised by Panic: where it was thrown is not recorded)\n";
}

// "Sun, 06 Nov 1994 08:49:37 GMT" (RFC 9110 5.6.7), without the locale-dependent strftime names.
std::string HttpDate() {
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  time_t now = time(nullptr);
  struct tm tm {};
  gmtime_r(&now, &tm);
  char buf[64];
  snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d GMT", kDays[tm.tm_wday], tm.tm_mday,
           kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

HttpResponse ErrorResponse(int status, std::string_view detail) {
  HttpResponse r;
  r.status = status;
  r.body = std::to_string(status) + " " + std::string(StatusText(status));
  if (!detail.empty()) r.body += ": " + std::string(detail);
  r.body += "\n";
  return r;
}

// Headers that frame the response: the server's alone to set (a handler's would desynchronise the
// client).
bool IsFramingHeader(std::string_view name) {
  return EqualsIgnoreCase(name, "Content-Length") || EqualsIgnoreCase(name, "Transfer-Encoding") ||
         EqualsIgnoreCase(name, "Connection");
}

bool HasLineBreak(std::string_view s) { return s.find_first_of("\r\n") != std::string_view::npos; }

// The state shared by the accept loop and the connection goroutines; lives in ServeHttp's frame,
// which outlives them all (ServeHttp waits for `running`).
struct Server {
  HttpHandler handler;  // called concurrently from the connection goroutines
  HttpOptions options;
  // Set once the listener is closed: connections stop after their current response. Sequentially
  // consistent, for the ordering with read deadlines described at the top of this file.
  std::atomic<bool> closing{false};
  Mutex mu;
  std::list<net::Conn> conns;  // guarded by mu: the open connections, to stop them at the end
  WaitGroup running;           // the connection goroutines
};

// What a connection's deferred calls need from its body.
struct ConnState {
  bool in_handler = false;  // a panic there is answered with 500
  bool head_only = false;   // the request being handled is a HEAD
};

void CountReceived(Metrics* m, size_t n) {
  if (m != nullptr && n > 0) m->bytes_received_total[Service::kHttp].Add(n);
}

// Where ReadHead left the connection.
enum class HeadStatus {
  kComplete,  // buf starts with a whole head of *len bytes
  kTooLarge,  // no head within max_header_bytes
  kGone,      // EOF, timeout, reset or closed before a whole head: nothing to answer
};

// The length of the head at the start of `buf` (up to and including the empty line that ends it),
// or npos; lines before `from` have been searched already.
size_t FindHeadEnd(std::string_view buf, size_t from) {
  for (size_t i = buf.find('\n', from); i != std::string_view::npos; i = buf.find('\n', i + 1)) {
    if (i + 1 < buf.size() && buf[i + 1] == '\n') return i + 2;
    if (i + 2 < buf.size() && buf[i + 1] == '\r' && buf[i + 2] == '\n') return i + 3;
  }
  return std::string_view::npos;
}

HeadStatus ReadHead(const net::Conn& conn, std::string& buf, size_t max, Metrics* m, size_t* len) {
  size_t searched = 0;
  for (;;) {
    size_t skip = 0;  // empty lines before a request line are ignored (RFC 9112 2.2)
    for (;;) {
      if (buf.compare(skip, 2, "\r\n") == 0) {
        skip += 2;
      } else if (skip < buf.size() && buf[skip] == '\n') {
        skip += 1;
      } else {
        break;
      }
    }
    if (skip > 0) {
      buf.erase(0, skip);
      searched = 0;
    }
    size_t end = FindHeadEnd(buf, searched);
    if (end != std::string::npos) {
      *len = end;
      return end > max ? HeadStatus::kTooLarge : HeadStatus::kComplete;
    }
    if (buf.size() >= max) return HeadStatus::kTooLarge;  // a head would have to be longer
    searched = buf.size() >= 2 ? buf.size() - 2 : 0;      // a terminator may straddle the read
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
  int status = resp.status;
  if (status < 200 || status > 599) {
    // 1xx would need a second response behind it; anything else is not HTTP.
    Logf(LogLevel::kError, "http: handler returned status %d; answering 500", status);
    return WriteResponse(conn, o, version, ErrorResponse(500, "bad status from handler"),
                         keep_alive, head_only);
  }
  // 204 and 304 never carry a body, nor (204) a Content-Length (RFC 9110 8.6).
  bool bodiless = status == 204 || status == 304;
  std::string out;
  out.reserve(256 + (resp.body.size() <= kCoalesceBody ? resp.body.size() : 0));
  out.append("HTTP/1.1 ").append(std::to_string(status)).append(" ");
  out.append(StatusText(status)).append("\r\n");
  out.append("Server: greenline/").append(BuildVersion()).append("\r\n");
  out.append("Date: ").append(HttpDate()).append("\r\n");
  if (!bodiless) {
    if (!resp.content_type.empty() && !HasLineBreak(resp.content_type)) {
      out.append("Content-Type: ").append(resp.content_type).append("\r\n");
    }
    out.append("Content-Length: ").append(std::to_string(resp.body.size())).append("\r\n");
  }
  if (!keep_alive) {
    out.append("Connection: close\r\n");
  } else if (version == "HTTP/1.0") {
    out.append("Connection: keep-alive\r\n");  // 1.0 closes unless told otherwise
  }
  for (const auto& [name, value] : resp.headers) {
    if (!IsToken(name) || IsFramingHeader(name) || HasLineBreak(value)) continue;
    out.append(name).append(": ").append(value).append("\r\n");
  }
  out.append("\r\n");
  bool send_body = !head_only && !bodiless && !resp.body.empty();
  bool separate = send_body && resp.body.size() > kCoalesceBody;
  if (send_body && !separate) out.append(resp.body);

  conn.SetWriteDeadline(Clock::now() + o.write_timeout);
  net::IoResult w = conn.Write(out);
  size_t sent = w.n;
  if (!w.err && separate) {
    w = conn.Write(resp.body);
    sent += w.n;
  }
  if (o.metrics != nullptr) o.metrics->bytes_sent_total[Service::kHttp].Add(sent);
  return !w.err;
}

void ServeRequests(Server& s, const net::Conn& conn, ConnState& st) {
  const HttpOptions& o = s.options;
  net::Addr peer = conn.RemoteAddr();
  std::string buf;
  for (;;) {
    conn.SetReadDeadline(Clock::now() + o.idle_timeout);
    if (s.closing.load()) return;  // after our own deadline: see the top of this file
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
      int status = ParseRequestHead(std::string_view(buf).substr(0, head_len), req, &why);
      buf.erase(0, head_len);
      if (status != 0) {
        resp = ErrorResponse(status, why);
      } else {
        head_only = req.method == "HEAD";
        const std::string* connection = req.FindHeader("Connection");
        keep_alive = req.version == "HTTP/1.0"
                         ? connection != nullptr && HasToken(*connection, "keep-alive")
                         : connection == nullptr || !HasToken(*connection, "close");
        const std::string* length = req.FindHeader("Content-Length");
        if (req.FindHeader("Transfer-Encoding") != nullptr ||
            (length != nullptr && length->find_first_not_of('0') != std::string::npos)) {
          // The body is unread: it would be parsed as the next request.
          resp = ErrorResponse(413, "this server accepts no request body");
          keep_alive = false;
        } else if (req.method != "GET" && !head_only) {
          resp = ErrorResponse(405, "");
          resp.headers.emplace_back("Allow", "GET, HEAD");
        } else {
          st.in_handler = true;
          st.head_only = head_only;
          resp = s.handler(req);
          st.in_handler = false;
        }
      }
    }
    if (s.closing.load()) keep_alive = false;
    if (!WriteResponse(conn, o, req.version, resp, keep_alive, head_only)) return;
    if (!keep_alive) {
      LingeringClose(conn, o.metrics, Service::kHttp);
      return;
    }
  }
}

void ServeConn(Server& s, const net::Conn& conn, std::list<net::Conn>::iterator self) {
  ConnState st;
  Frame([&](Defer& defer) {
    defer([&] {
      conn.Close();  // after a lingering close it is closed already: that error is expected
      {
        std::lock_guard<Mutex> lock(s.mu);
        s.conns.erase(self);
      }
      if (s.options.metrics != nullptr) {
        s.options.metrics->connections_active[Service::kHttp].Dec();
      }
      s.running.Done();  // last: ServeHttp's frame, which holds `s`, may end right after
    });
    defer([&] {
      PanicValue v = Recover();
      if (!v) return;
      std::string peer = conn.RemoteAddr().String();
      std::string origin = PanicOrigin();
      if (!origin.empty() && origin.back() == '\n') origin.pop_back();  // the sink adds its own
      Log(LogLevel::kError, "http: panic serving " + peer + " (goroutine " +
                                std::to_string(GoroutineId()) + "), recovered: " + v.String() +
                                "\n" + origin);
      if (s.options.metrics != nullptr) {
        s.options.metrics->panics_recovered_total[Service::kHttp].Inc();
      }
      if (!st.in_handler) return;  // the panic was ours, not the handler's: nothing to answer
      HttpResponse resp = ErrorResponse(500, "the handler panicked; see the server log");
      if (WriteResponse(conn, s.options, "HTTP/1.1", resp, false, st.head_only)) {
        LingeringClose(conn, s.options.metrics, Service::kHttp);
      }
    });
    ServeRequests(s, conn, st);
  });
}

}  // namespace

const std::string* HttpRequest::FindHeader(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (EqualsIgnoreCase(n, name)) return &v;
  }
  return nullptr;
}

std::string_view StatusText(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 204:
      return "No Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Content Too Large";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

int ParseRequestHead(std::string_view head, HttpRequest& req, std::string* error) {
  req.method.clear();
  req.target.clear();
  req.path.clear();
  req.query.clear();
  req.version.clear();
  req.headers.clear();
  size_t pos = 0;
  // The next line without its terminator (LF, or CRLF); false at the end of `head`.
  auto next_line = [&](std::string_view* line) {
    size_t nl = head.find('\n', pos);
    if (nl == std::string_view::npos) return false;
    *line = head.substr(pos, nl - pos);
    if (!line->empty() && line->back() == '\r') line->remove_suffix(1);
    pos = nl + 1;
    return true;
  };

  // request-line = method SP request-target SP HTTP-version
  std::string_view line;
  if (!next_line(&line) || line.empty()) return Fail(error, 400, "no request line");
  for (unsigned char c : line) {
    if (c < 0x20 || c == 0x7f) return Fail(error, 400, "control character in the request line");
  }
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    return Fail(error, 400, "the request line is not: method target version");
  }
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (!IsToken(method)) return Fail(error, 400, "bad method");
  if (target.empty()) return Fail(error, 400, "empty request target");
  for (unsigned char c : target) {
    if (c > 0x7e) return Fail(error, 400, "non-ASCII byte in the request target");
  }
  bool digits = version.size() == 8 && version[5] >= '0' && version[5] <= '9' &&
                version[6] == '.' && version[7] >= '0' && version[7] <= '9';
  if (!digits || version.substr(0, 5) != "HTTP/") return Fail(error, 400, "bad HTTP version");
  if (version[5] != '1') return Fail(error, 505, "only HTTP/1.x is served");
  req.method = std::string(method);
  req.target = std::string(target);
  // A later 1.x minor version is answered as 1.1, the highest we speak (RFC 9110 2.5).
  req.version = version[7] == '0' ? "HTTP/1.0" : "HTTP/1.1";
  if (!SplitTarget(target, req)) return Fail(error, 400, "bad request target");

  // field-line = field-name ":" OWS field-value OWS
  bool ended = false;
  while (next_line(&line)) {
    if (line.empty()) {
      ended = true;
      break;
    }
    if (line.front() == ' ' || line.front() == '\t') {
      return Fail(error, 400, "obsolete header line folding");
    }
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) return Fail(error, 400, "header line without a colon");
    std::string_view name = line.substr(0, colon);
    // No whitespace before the colon either (RFC 9112 5.1: a smuggling vector).
    if (!IsToken(name)) return Fail(error, 400, "bad header name");
    std::string_view value = TrimOws(line.substr(colon + 1));
    for (unsigned char c : value) {
      if ((c < 0x20 && c != '\t') || c == 0x7f) {
        return Fail(error, 400, "control character in a header value");
      }
    }
    req.headers.emplace_back(std::string(name), std::string(value));
  }
  if (!ended) return Fail(error, 400, "unterminated request head");

  int hosts = 0;
  const std::string* length = nullptr;
  for (const auto& [name, value] : req.headers) {
    if (EqualsIgnoreCase(name, "Host")) ++hosts;
    if (EqualsIgnoreCase(name, "Content-Length")) {
      bool number = !value.empty() && value.size() <= 18 &&
                    value.find_first_not_of("0123456789") == std::string::npos;
      if (!number) return Fail(error, 400, "bad Content-Length");
      if (length != nullptr && *length != value) return Fail(error, 400, "conflicting lengths");
      length = &value;
    }
  }
  if (hosts > 1) return Fail(error, 400, "more than one Host header");
  if (hosts == 0 && req.version == "HTTP/1.1") return Fail(error, 400, "HTTP/1.1 needs a Host");
  return 0;
}

void ServeHttp(const net::Listener& listener, HttpHandler handler, const HttpOptions& options) {
  Server s;
  s.handler = std::move(handler);
  s.options = options;
  Metrics* m = options.metrics;
  std::chrono::milliseconds backoff{0};
  for (;;) {
    // Not a structured binding: clang 14 (the TSan build) cannot capture one in a lambda.
    std::pair<net::Conn, net::Error> accepted = listener.Accept();
    if (accepted.second) {
      if (accepted.second.closed()) break;
      if (accepted.second.kind() == net::Error::Kind::kInvalid) {
        // An invalid listener, or not called from a goroutine: retrying cannot help.
        Logf(LogLevel::kError, "http: %s; not serving", accepted.second.String().c_str());
        break;
      }
      backoff = backoff == 0ms ? 5ms : std::min<std::chrono::milliseconds>(2 * backoff, 1s);
      Logf(LogLevel::kWarn, "http: accept error: %s; retrying in %lld ms",
           accepted.second.String().c_str(), static_cast<long long>(backoff.count()));
      Sleep(backoff);
      continue;
    }
    backoff = 0ms;
    const net::Conn& conn = accepted.first;
    if (m != nullptr) {
      m->connections_total[Service::kHttp].Inc();
      m->connections_active[Service::kHttp].Inc();
    }
    std::list<net::Conn>::iterator self;
    {
      std::lock_guard<Mutex> lock(s.mu);
      self = s.conns.insert(s.conns.end(), conn);
    }
    s.running.Add(1);
    Go([&s, conn, self] { ServeConn(s, conn, self); });
    Yield();  // let it start; a burst of connections would otherwise keep this loop running long
  }
  s.closing.store(true);
  {
    std::lock_guard<Mutex> lock(s.mu);
    for (const net::Conn& conn : s.conns) conn.SetReadDeadline(Clock::now());
  }
  s.running.Wait();
}

}  // namespace greenline::server
