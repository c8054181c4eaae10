// A minimal HTTP/1.1 server on greenline's own runtime: a goroutine per connection, net::Conn for
// I/O, for the admin endpoint (/metrics, /healthz, /debug/goroutines).
//
//   auto [ln, err] = greenline::net::Listen("tcp", "0.0.0.0:9070");
//   greenline::server::ServeHttp(ln, [](const HttpRequest& req) {
//     HttpResponse r;
//     r.body = "hello " + req.path + "\n";
//     return r;
//   });  // returns once ln.Close() was called (from another goroutine) and its connections ended
//
// Why not a library: the endpoint answers /healthz, which must tell whether the runtime's workers
// are alive. A library with threads of its own would answer while every worker is stuck. Here a
// reply means a worker ran the handler.
//
// What it speaks (RFC 9112, the part a metrics scraper, a health checker and curl need):
//   - HTTP/1.0 and 1.1. Keep-alive by default on 1.1 ("Connection: close" honoured), on 1.0 only
//     when asked ("Connection: keep-alive"). Pipelined requests are answered in order.
//   - GET and HEAD go to the handler (HEAD: the same headers, Content-Length included, no body).
//     Any other method gets 405 with "Allow: GET, HEAD".
//   - No request bodies: a request announcing one (Content-Length > 0, or any Transfer-Encoding)
//     gets 413 and the connection is closed, since the unread body would be parsed as the next
//     request. Nothing the admin endpoint does needs a body, and not reading one keeps the
//     parser small.
//   - The request line and headers are capped (HttpOptions::max_header_bytes, 8 KiB): over it,
//     431 and close. A malformed head gets 400 and close; an HTTP version other than 1.x, 505.
//     HTTP/1.1 requires exactly one Host header (400 otherwise), as RFC 9112 says a server must.
//   - Every response has Content-Length (no chunking), Server: greenline/VERSION and Date.
//   - Timeouts, by read and write deadlines on the Conn: a request's head must arrive within
//     idle_timeout of the server starting to wait for it (covers idle keep-alive connections and
//     slow senders alike); a response must be written within write_timeout. Either passing closes
//     the connection without an answer, as Go's http.Server does.
//   - After an error response the server closes its side and drains the client's input for a
//     moment before closing the socket ("lingering close"): closing with unread input makes the
//     kernel send RST, which can destroy the response before the client reads it.
//
// A panic in the handler (greenline::Panic, or any C++ exception) is recovered on that
// connection's goroutine: logged at error level with the goroutine id, the peer, the panic value
// and where it was raised, counted in panics_recovered_total{service="http"}, answered with 500,
// and that connection is closed. Other connections do not notice.
//
// From where: ServeHttp from a goroutine; the handler runs on the connection's goroutine, so it may
// park (channels, Blocking, Sleep) but should not run for long without yielding.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "greenline/net.h"
#include "server/metrics.h"

namespace greenline::server {

struct HttpRequest {
  std::string method;   // "GET", "HEAD", ... (case-sensitive, as RFC 9110 says)
  std::string target;   // as received: "/metrics?x=1", or absolute-form "http://host/metrics"
  std::string path;     // the target's path, not percent-decoded: "/metrics"
  std::string query;    // after '?', without it; "" if none
  std::string version;  // "HTTP/1.0" or "HTTP/1.1"
  std::vector<std::pair<std::string, std::string>> headers;  // names as sent, values trimmed
  net::Addr peer;                                            // the client's address

  // The value of the first header named `name` (case-insensitive), or nullptr if there is none.
  const std::string* FindHeader(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  // Extra headers. Content-Length, Transfer-Encoding and Connection are the server's to set (it
  // frames the response): handler values for them are ignored, as is any header whose name or
  // value holds CR or LF.
  std::vector<std::pair<std::string, std::string>> headers;
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

struct HttpOptions {
  // How long the server waits for a request's head (request line and headers) once it starts
  // waiting for it: on a fresh connection, and after each response on a keep-alive one.
  std::chrono::milliseconds idle_timeout = std::chrono::seconds(10);
  // How long writing one response may take.
  std::chrono::milliseconds write_timeout = std::chrono::seconds(10);
  // The most bytes a request head may take, request line and terminating empty line included.
  size_t max_header_bytes = 8192;
  // Where to count connections, bytes and recovered panics (service "http"); may be null. Must
  // outlive ServeHttp.
  Metrics* metrics = nullptr;
};

// Accepts connections on `listener` and serves each on a goroutine of its own until the listener
// is closed (by another goroutine: Listener::Close). Then it stops waiting for further requests on
// its open connections (each finishes the response it is writing, if any, and closes) and returns
// once every connection goroutine has ended. Accept errors other than a closed listener (the net
// layer already rides out running out of descriptors) are logged and retried with a backoff of
// 5 ms doubling to 1 s, as Go's http.Server does; an invalid listener is logged and returns at
// once. Parks; from a goroutine.
void ServeHttp(const net::Listener& listener, HttpHandler handler, const HttpOptions& options = {});

// Parses a request head: the request line and the header lines, up to and including the empty line
// that ends it (lines end with CRLF, or a bare LF as RFC 9112 allows). Fills `request` (all but
// `peer`) and returns 0, or the status to answer with: 400 (malformed), 505 (an HTTP version other
// than 1.x). `error`, if given, says what was wrong. Pure: no I/O (fuzzable).
int ParseRequestHead(std::string_view head, HttpRequest& request, std::string* error = nullptr);

// The reason phrase for a status code ("Not Found"); "Unknown" for codes this server never sends.
std::string_view StatusText(int status);

}  // namespace greenline::server
