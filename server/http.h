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
// What it speaks (the part of RFC 9112 a metrics scraper, a health checker and curl need: HTTP/1.0
// and 1.1, keep-alive and pipelining, GET and HEAD only, no request bodies, every response with
// Content-Length, Server: greenline/VERSION and Date) is protocol/http.h's: the request-head
// framer and parser, what is answered before the handler runs, and the response head are pure
// code there, unit-tested and fuzzed. This file adds the I/O:
//   - The request line and headers are capped (HttpOptions::max_header_bytes, 8 KiB): over it,
//     431 and close. A malformed head gets 400 and close, a body 413 and close.
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

#include "greenline/net.h"
#include "protocol/http.h"
#include "server/metrics.h"
#include "server/server.h"

namespace greenline::server {

// A request as the handler sees it: the parsed head (protocol/http.h) and who sent it.
struct HttpRequest : protocol::HttpRequest {
  net::Addr peer;  // the client's address
};

// What a handler answers: status, content type, body and extra headers (protocol/http.h says which
// of those the server drops).
using HttpResponse = protocol::HttpResponse;

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

// The HTTP endpoint as a Service (server.h): a goroutine per connection, serving requests with
// `handler` until the client leaves, a timeout passes, or Stop (the connection finishes the
// response it is writing, if any, with "Connection: close", and closes).
class HttpService final : public Service {
 public:
  HttpService(HttpHandler handler, const HttpOptions& options);

  // Stop as Service::Stop, giving a response being written its write timeout.
  using Service::Stop;
  void Stop() { Service::Stop(std::chrono::steady_clock::now() + options_.write_timeout); }

  bool RecordsEachConnection() const override { return false; }

 protected:
  void Serve(net::Conn conn, ConnTicket ticket) override;

 private:
  void ServeConn(net::Conn conn, ConnTicket ticket);

  const HttpHandler handler_;  // called concurrently from the connection goroutines
  const HttpOptions options_;
};

// Accepts connections on `listener` and serves each on a goroutine of its own until the listener
// is closed (by another goroutine: Listener::Close). Then it stops its open connections (each
// finishes the response it is writing, if any, and closes) and returns once every connection
// goroutine has ended. Accept errors are handled as AcceptLoop (server.h) says; an invalid
// listener is logged and ServeHttp returns at once. Parks; from a goroutine.
void ServeHttp(const net::Listener& listener, HttpHandler handler, const HttpOptions& options = {});

}  // namespace greenline::server
