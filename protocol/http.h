// HTTP/1.1 as pure code: where a request head ends in the bytes a connection received, what the
// head says, what the server does with it before a handler runs, and the bytes of the response
// head. No I/O, no clock of its own: server/http.h reads, writes and times; this file decides.
//
// What it speaks (RFC 9112, the part a metrics scraper, a health checker and curl need):
//   - HTTP/1.0 and 1.1. Keep-alive by default on 1.1 ("Connection: close" honoured), on 1.0 only
//     when asked ("Connection: keep-alive"). Pipelined requests are framed one after the other
//     (HttpHeadFramer leaves the bytes after a head where they are: the next request).
//   - Empty lines before a request line are ignored (RFC 9112 2.2). Lines end with CRLF or a bare
//     LF, which RFC 9112 2.2 allows a server to accept.
//   - GET and HEAD go to the handler (HEAD: the same headers, Content-Length included, no body).
//     Any other method gets 405 with "Allow: GET, HEAD".
//   - No request bodies: a request announcing one (Content-Length > 0, or any Transfer-Encoding)
//     gets 413 and the connection is closed, since the unread body would be parsed as the next
//     request. Nothing the admin endpoint does needs a body, and not reading one keeps the
//     parser small.
//   - The request line and headers are capped (max_header_bytes): over it, 431 and close. A
//     malformed head gets 400 and close; an HTTP version other than 1.x, 505. HTTP/1.1 requires
//     exactly one Host header (400 otherwise), as RFC 9112 3.2 says a server must. Whitespace
//     between a header name and its colon (a request-smuggling vector, RFC 9112 5.1) and obsolete
//     line folding (RFC 9112 5.2) get 400. Content-Length must be digits, and repeated ones must
//     agree.
//   - Request targets in origin form ("/p?q"), absolute form ("http://host/p?q", which a server
//     must accept) and asterisk form ("*"); the authority form (CONNECT) is refused with 400. The
//     path is not percent-decoded.
//   - Every response has Content-Length (no chunking), Server and Date; 204 and 304 carry neither
//     a body nor Content-Length (RFC 9110 8.6). A handler's headers cannot break the framing:
//     Content-Length, Transfer-Encoding and Connection are the server's alone, and a header whose
//     name is not a token or whose value holds CR or LF is dropped.
//   - Responses are always "HTTP/1.1" (RFC 9110 6.2: a server sends its own highest version).
//
// One request on a connection:
//
//   HttpHeadFramer framer(max_header_bytes);
//   HttpHeadFramer::Frame f = framer.Next(buf);   // kNeedMore: drop f.skip bytes, read, again
//   HttpRequest req;                              // kTooLarge: answer 431 and close
//   int status = ParseRequestHead(std::string_view(buf).substr(f.skip, f.length), req, &why);
//   buf.erase(0, f.skip + f.length);              // what is left is the next request
//   if (status != 0) -> ErrorResponse(status, why), close
//   RequestPlan plan = PlanRequest(req);          // keep-alive, HEAD, 405 or 413
//   HttpResponse resp = plan.answer ? *plan.answer : handler(req);
//   AppendResponseHead(resp, {req.version, plan.keep_alive, "greenline/1.0", HttpDate(now)}, &out);
//   out += ResponseBody(resp, plan.head_only);
//
// Rejected: reading request bodies (see above), and chunked responses: every body the admin
// endpoint serves is built whole before it is sent, so its length is known.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace greenline::protocol {

// A parsed request head. server/http.h adds the client's address to it.
struct HttpRequest {
  std::string method;   // "GET", "HEAD", ... (case-sensitive, as RFC 9110 9.1 says)
  std::string target;   // as received: "/metrics?x=1", or absolute-form "http://host/metrics"
  std::string path;     // the target's path, not percent-decoded: "/metrics"; "*" for asterisk-form
  std::string query;    // after '?', without it; "" if none
  std::string version;  // "HTTP/1.0" or "HTTP/1.1" (a later 1.x minor version reads as 1.1)
  std::vector<std::pair<std::string, std::string>> headers;  // names as sent, values trimmed

  // The value of the first header named `name` (case-insensitive), or nullptr if there is none.
  const std::string* FindHeader(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;  // a final status, 200 to 599 (IsFinalStatus)
  std::string content_type = "text/plain; charset=utf-8";  // none is sent when empty
  std::string body;
  // Extra headers. Content-Length, Transfer-Encoding and Connection are the server's to set (it
  // frames the response): handler values for them are ignored, as is any header whose name is not
  // a token or whose value holds CR or LF.
  std::vector<std::pair<std::string, std::string>> headers;
};

// Finds where request heads end in a connection's input as it arrives, in one pass however the
// bytes are cut. It holds no bytes, only how far the last call searched; the caller owns the
// buffer.
//
// Between calls the caller drops the `skip` bytes it was told to drop (empty lines, which would
// otherwise pile up: they count against no limit) and appends what it read. Should it not drop
// them, the next call finds the same skip and searches again from there: the answer is the same,
// only slower. After kComplete the caller consumes skip + length bytes, and the next call frames
// the next (pipelined) request; after kTooLarge the connection is to be answered 431 and closed.
//
// Not thread-safe: one framer belongs to one connection's goroutine (or one read of a head).
class HttpHeadFramer {
 public:
  enum class Status {
    kComplete,  // input[skip, skip + length) is a whole head, its empty line included
    kNeedMore,  // no whole head yet and no limit reached: drop `skip` bytes, append, call again
    kTooLarge,  // no head within max_header_bytes (or one longer than that): answer 431
  };

  struct Frame {
    Status status = Status::kNeedMore;
    // Bytes of empty lines ("\r\n" or "\n") before the request line (RFC 9112 2.2): to drop.
    std::size_t skip = 0;
    // kComplete: the head's length from `skip`, at most max_header_bytes; 0 otherwise.
    // skip + length <= the input's size, always.
    std::size_t length = 0;
  };

  // max_header_bytes: the most bytes a head may take, request line and terminating empty line
  // included; leading empty lines do not count.
  explicit HttpHeadFramer(std::size_t max_header_bytes) : max_(max_header_bytes) {}

  // Looks for a head at the start of `input` (the connection's bytes received and not consumed).
  Frame Next(std::string_view input);

 private:
  std::size_t max_;
  // Bytes after the skipped empty lines known to hold no head's end (except one that a later byte
  // may complete): a head trickling in is scanned once, not once per read.
  std::size_t searched_ = 0;
};

// Parses a request head: the request line and the header lines, up to and including the empty line
// that ends it (lines end with CRLF, or a bare LF as RFC 9112 2.2 allows). Fills `request` and
// returns 0, or the status to answer with: 400 (malformed), 505 (an HTTP version other than 1.x).
// `error`, if given, says what was wrong. Reads `head` only; on failure `request` holds whatever
// was parsed before the fault.
int ParseRequestHead(std::string_view head, HttpRequest& request, std::string* error = nullptr);

// What the server does with a request ParseRequestHead accepted, before any handler sees it.
struct RequestPlan {
  // The connection stays open after the response: on HTTP/1.1 unless "Connection: close", on
  // HTTP/1.0 only with "Connection: keep-alive" (RFC 9112 9.3). Never after a 413.
  bool keep_alive = false;
  // A HEAD request: the response goes out without its body (ResponseBody).
  bool head_only = false;
  // Set when the request is answered without the handler: 413 when it announces a body
  // (Content-Length > 0, or any Transfer-Encoding), else 405 with "Allow: GET, HEAD" for a method
  // other than GET and HEAD.
  std::optional<HttpResponse> answer;
};
RequestPlan PlanRequest(const HttpRequest& request);

// The reason phrase for a status code ("Not Found"); "Unknown" for codes this server never sends.
std::string_view StatusText(int status);

// True for 200 to 599: a 1xx would need a second response behind it, and anything else is not
// HTTP. AppendResponseHead formats any number; the server answers 500 for a handler's other ones.
bool IsFinalStatus(int status);

// An error answer: "404 Not Found\n", or with a detail "400 Bad Request: no request line\n", as
// text/plain.
HttpResponse ErrorResponse(int status, std::string_view detail);

// "Sun, 06 Nov 1994 08:49:37 GMT" (RFC 9110 5.6.7, IMF-fixdate): `t` in UTC, to the second below,
// without the locale-dependent names of strftime.
std::string HttpDate(std::chrono::system_clock::time_point t);

// What a response head says besides the handler's response.
struct ResponseHeadParams {
  // The request's version ("HTTP/1.0" or "HTTP/1.1"; "" when it was not parsed). A 1.0 client
  // closes unless told "Connection: keep-alive".
  std::string_view request_version;
  // Whether the server keeps the connection open after this response ("Connection: close" if not).
  bool keep_alive = false;
  std::string_view server;  // the Server header's value: "greenline/1.2.3"
  std::string_view date;    // the Date header's value: HttpDate(now)
};

// Appends the status line and headers of `response`, its ending empty line included, to *out:
//   HTTP/1.1 200 OK / Server / Date / Content-Type (if set) / Content-Length / Connection ("close"
//   whenever the server closes, "keep-alive" to a 1.0 client it keeps) / the handler's headers
//   that survive the filter above.
// 204 and 304 get no Content-Type nor Content-Length. Content-Length is the body's size for HEAD
// too: what a GET would have received.
void AppendResponseHead(const HttpResponse& response, const ResponseHeadParams& params,
                        std::string* out);

// The bytes that follow the head: the body, or nothing for a HEAD request and for 204 and 304.
std::string_view ResponseBody(const HttpResponse& response, bool head_only);

}  // namespace greenline::protocol
