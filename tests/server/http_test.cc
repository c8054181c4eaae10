// Tests for server/http.h: ServeHttp over real loopback sockets on both pollers (the request-head
// parser and the response head on their own are protocol/http.h's, in tests/protocol/http_test.cc):
// GET with its framing headers, keep-alive and pipelining, HEAD, HTTP/1.0, Connection: close, 405
// with Allow, 413 for bodies, 431 for oversized heads, 400 for malformed ones (each answered, then
// closed), a handler panic answered with 500, logged and counted while the next connection works,
// the idle timeout closing a silent or slow (slowloris) client, the connection and byte counts,
// closing the listener ending idle keep-alive connections and ServeHttp itself, an invalid
// listener, and 200 clients at once.
#include "server/http.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include "greenline/goroutine.h"
#include "greenline/log.h"
#include "greenline/panic.h"
#include "greenline/wait_group.h"
#include "server/metrics.h"
#include "tests/util/http.h"
#include "tests/util/net.h"

namespace greenline::server {
namespace {

using namespace std::chrono_literals;
using greenline::testing::GetRequest;
using greenline::testing::HttpClient;
using greenline::testing::HttpReply;
using greenline::testing::TestHttpServer;
using std::chrono::steady_clock;

// ---- ServeHttp over sockets ------------------------------------------------------------------

class HttpTest : public greenline::testing::PollerTest {};

INSTANTIATE_TEST_SUITE_P(Pollers, HttpTest,
                         ::testing::Values(PollerKind::kEpoll, PollerKind::kIoUring),
                         greenline::testing::PollerParamName);

// Answers every request with what it saw: "METHOD path?query".
HttpResponse EchoRequest(const HttpRequest& req) {
  HttpResponse r;
  r.body = req.method + " " + req.path + (req.query.empty() ? "" : "?" + req.query) + "\n";
  r.headers.emplace_back("X-Peer-Loopback", req.peer.String().rfind("127.", 0) == 0 ? "1" : "0");
  return r;
}

TEST_P(HttpTest, GetIsAnsweredWithFramingAndServerHeaders) {
  RunNet(2, [] {
    TestHttpServer server(EchoRequest);
    HttpClient c(server.address());
    HttpReply r = c.Request(GetRequest("/hello?x=1"));
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.version, "HTTP/1.1");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "GET /hello?x=1\n");
    EXPECT_EQ(r.Header("Content-Length"), std::to_string(r.body.size()));
    EXPECT_EQ(r.Header("Content-Type"), "text/plain; charset=utf-8");
    EXPECT_EQ(r.Header("Server"), "greenline/" + std::string(BuildVersion()));
    EXPECT_TRUE(r.HasHeader("Date"));
    EXPECT_EQ(r.Header("X-Peer-Loopback"), "1") << "the handler sees the client's address";
    EXPECT_FALSE(r.HasHeader("Connection")) << "1.1 keeps the connection by default";
  });
}

TEST_P(HttpTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  RunNet(2, [] {
    TestHttpServer server(EchoRequest);
    HttpClient c(server.address());
    for (int i = 0; i < 5; ++i) {
      HttpReply r = c.Request(GetRequest("/n" + std::to_string(i)));
      ASSERT_TRUE(r.ok) << "request " << i << ": " << r.error;
      EXPECT_EQ(r.body, "GET /n" + std::to_string(i) + "\n");
    }
  });
}

TEST_P(HttpTest, PipelinedRequestsAreAnsweredInOrder) {
  RunNet(2, [] {
    TestHttpServer server(EchoRequest);
    HttpClient c(server.address());
    // Three requests in one write, the middle one a HEAD; then the last one split mid-line.
    ASSERT_TRUE(c.Send(GetRequest("/a") + GetRequest("/b", "", "HEAD") + GetRequest("/c")));
    HttpReply a = c.Receive();
    HttpReply b = c.Receive(/*head=*/true);
    HttpReply cc = c.Receive();
    ASSERT_TRUE(a.ok && b.ok && cc.ok) << a.error << b.error << cc.error;
    EXPECT_EQ(a.body, "GET /a\n");
    EXPECT_EQ(b.body, "");
    EXPECT_EQ(b.Header("Content-Length"), "8") << "HEAD announces the length: \"HEAD /b\\n\"";
    EXPECT_EQ(cc.body, "GET /c\n");
    std::string d = GetRequest("/d");
    ASSERT_TRUE(c.Send(d.substr(0, 9)));
    Sleep(20ms);
    ASSERT_TRUE(c.Send(d.substr(9)));
    HttpReply dr = c.Receive();
    ASSERT_TRUE(dr.ok) << dr.error;
    EXPECT_EQ(dr.body, "GET /d\n");
  });
}

TEST_P(HttpTest, HeadGetsTheHeadersOfGetWithoutTheBody) {
  RunNet(1, [] {
    TestHttpServer server(EchoRequest);
    HttpClient c(server.address());
    HttpReply r = c.Request(GetRequest("/x", "", "HEAD"), /*head=*/true);
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.Header("Content-Length"), "8");  // "HEAD /x\n"
    // Had a body followed, it would be read as the start of the next response.
    HttpReply next = c.Request(GetRequest("/y"));
    ASSERT_TRUE(next.ok) << next.error;
    EXPECT_EQ(next.status, 200);
    EXPECT_EQ(next.body, "GET /y\n");
  });
}

TEST_P(HttpTest, OtherMethodsGet405WithAllowAndKeepTheConnection) {
  RunNet(1, [] {
    std::atomic<int> calls{0};
    TestHttpServer server([&calls](const HttpRequest& req) {
      ++calls;
      return EchoRequest(req);
    });
    HttpClient c(server.address());
    for (const char* method : {"POST", "PUT", "DELETE", "OPTIONS", "get"}) {
      HttpReply r = c.Request(GetRequest("/", "", method));
      ASSERT_TRUE(r.ok) << method << ": " << r.error;
      EXPECT_EQ(r.status, 405) << method;
      EXPECT_EQ(r.Header("Allow"), "GET, HEAD") << method;
    }
    EXPECT_EQ(calls.load(), 0) << "the handler sees GET and HEAD only";
    HttpReply r = c.Request(GetRequest("/"));
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.status, 200);
  });
}

TEST_P(HttpTest, ConnectionCloseIsHonoured) {
  RunNet(1, [] {
    TestHttpServer server(EchoRequest);
    HttpClient c(server.address());
    HttpReply r = c.Request(GetRequest("/", "Connection: close\r\n"));
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.Header("Connection"), "close");
    EXPECT_TRUE(c.AwaitClose(5s)) << "the server closes after the response";
  });
}

TEST_P(HttpTest, Http10ClosesUnlessAskedToKeepAlive) {
  RunNet(1, [] {
    TestHttpServer server(EchoRequest);
    {
      HttpClient c(server.address());
      HttpReply r = c.Request("GET /old HTTP/1.0\r\n\r\n");
      ASSERT_TRUE(r.ok) << r.error;
      EXPECT_EQ(r.status, 200);
      EXPECT_EQ(r.body, "GET /old\n");
      EXPECT_EQ(r.Header("Connection"), "close");
      EXPECT_TRUE(c.AwaitClose(5s));
    }
    HttpClient c(server.address());
    for (int i = 0; i < 2; ++i) {
      HttpReply r = c.Request("GET /old HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
      ASSERT_TRUE(r.ok) << "request " << i << ": " << r.error;
      EXPECT_EQ(r.Header("Connection"), "keep-alive");
    }
  });
}

TEST_P(HttpTest, OversizedHeadGets431AndClose) {
  RunNet(2, [] {
    HttpOptions o;
    o.max_header_bytes = 8192;
    TestHttpServer server(EchoRequest, o);
    // Under the limit: served.
    {
      HttpClient c(server.address());
      std::string fits = GetRequest("/", "X-Pad: " + std::string(8000, 'a') + "\r\n");
      ASSERT_LE(fits.size(), 8192u);
      HttpReply r = c.Request(fits);
      ASSERT_TRUE(r.ok) << r.error;
      EXPECT_EQ(r.status, 200);
    }
    // Over it, with more still coming after the limit: 431, read by the client before the close.
    for (size_t pad : {8200, 64 * 1024}) {
      HttpClient c(server.address());
      HttpReply r = c.Request(GetRequest("/", "X-Pad: " + std::string(pad, 'a') + "\r\n"));
      ASSERT_TRUE(r.ok) << pad << ": " << r.error;
      EXPECT_EQ(r.status, 431) << pad;
      EXPECT_EQ(r.Header("Connection"), "close");
      EXPECT_TRUE(c.AwaitClose(5s)) << pad;
    }
  });
}

TEST_P(HttpTest, MalformedRequestsGet400AndClose) {
  RunNet(2, [] {
    std::atomic<int> calls{0};
    TestHttpServer server([&calls](const HttpRequest& req) {
      ++calls;
      return EchoRequest(req);
    });
    for (const char* raw : {
             "GET /\r\n\r\n", "GET / HTTP/1.1\r\n\r\n",
             "GET / HTTP/1.1\r\nHost: e\r\nno colon\r\n\r\n",
             "\x16\x03\x01\x02\x01\r\n\r\n",  // binary (a TLS hello's first bytes, no NUL)
         }) {
      HttpClient c(server.address());
      HttpReply r = c.Request(raw);
      ASSERT_TRUE(r.ok) << r.error;
      EXPECT_EQ(r.status, 400) << raw;
      EXPECT_EQ(r.Header("Connection"), "close");
      EXPECT_TRUE(c.AwaitClose(5s));
    }
    HttpClient c(server.address());
    HttpReply r = c.Request("GET / HTTP/2.0\r\nHost: e\r\n\r\n");
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.status, 505);
    EXPECT_EQ(calls.load(), 0);
  });
}

TEST_P(HttpTest, RequestsWithABodyGet413AndClose) {
  RunNet(1, [] {
    TestHttpServer server(EchoRequest);
    for (const char* raw : {
             "GET / HTTP/1.1\r\nHost: e\r\nContent-Length: 5\r\n\r\nhello",
             "POST / HTTP/1.1\r\nHost: e\r\nTransfer-Encoding: "
             "chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
         }) {
      HttpClient c(server.address());
      HttpReply r = c.Request(raw);
      ASSERT_TRUE(r.ok) << r.error;
      EXPECT_EQ(r.status, 413) << raw;
      EXPECT_TRUE(c.AwaitClose(5s));
    }
    HttpClient c(server.address());
    HttpReply r = c.Request(GetRequest("/", "Content-Length: 0\r\n"));
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.status, 200) << "an empty body is no body";
  });
}

TEST_P(HttpTest, HandlerHeadersCannotBreakTheFraming) {
  RunNet(1, [] {
    TestHttpServer server([](const HttpRequest&) {
      HttpResponse r;
      r.body = "abc";
      r.headers = {{"Content-Length", "999"},
                   {"Connection", "close"},
                   {"X-Injected", "a\r\nX-Evil: 1"},
                   {"X-Fine", "yes"}};
      return r;
    });
    HttpClient c(server.address());
    for (int i = 0; i < 2; ++i) {
      HttpReply r = c.Request(GetRequest("/"));
      ASSERT_TRUE(r.ok) << r.error;
      EXPECT_EQ(r.Header("Content-Length"), "3");
      EXPECT_EQ(r.body, "abc");
      EXPECT_FALSE(r.HasHeader("Connection"));
      EXPECT_FALSE(r.HasHeader("X-Injected"));
      EXPECT_FALSE(r.HasHeader("X-Evil"));
      EXPECT_EQ(r.Header("X-Fine"), "yes");
    }
  });
}

TEST_P(HttpTest, AHandlerPanicGets500IsCountedAndTheNextConnectionWorks) {
  // The recovered panic is logged at error level: keep it out of the test output.
  static std::atomic<int> logged{0};
  static std::string last_log;
  logged = 0;
  last_log.clear();
  LogSink old = SetLogSink([](LogLevel level, std::string_view message) {
    if (level == LogLevel::kError && message.find("http: panic serving") != message.npos) {
      last_log = std::string(message);
      ++logged;
    }
  });
  RunNet(2, [] {
    Metrics metrics;
    HttpOptions o;
    o.metrics = &metrics;
    TestHttpServer server(
        [](const HttpRequest& req) -> HttpResponse {
          if (req.path == "/panic") Panic("handler exploded");
          if (req.path == "/throw") throw std::runtime_error("a C++ exception");
          return EchoRequest(req);
        },
        o);
    HttpClient ok(server.address());  // a connection that must not notice
    ASSERT_TRUE(ok.Request(GetRequest("/before")).ok);
    for (const char* path : {"/panic", "/throw"}) {
      HttpClient c(server.address());
      HttpReply r = c.Request(GetRequest(path));
      ASSERT_TRUE(r.ok) << path << ": " << r.error;
      EXPECT_EQ(r.status, 500) << path;
      EXPECT_EQ(r.Header("Connection"), "close");
      EXPECT_TRUE(c.AwaitClose(5s)) << path;
    }
    EXPECT_EQ(metrics.panics_recovered_total[ServiceId::kHttp].Value(), 2u);
    HttpReply r = ok.Request(GetRequest("/after"));
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.body, "GET /after\n");
    HttpClient fresh(server.address());
    r = fresh.Request(GetRequest("/fresh"));
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.status, 200);
  });
  SetLogSink(old);
  EXPECT_EQ(logged.load(), 2);
  EXPECT_NE(last_log.find("a C++ exception"), std::string::npos) << last_log;
  EXPECT_NE(last_log.find("goroutine "), std::string::npos) << last_log;
  EXPECT_NE(last_log.find("127.0.0.1:"), std::string::npos) << "the peer: " << last_log;
}

TEST_P(HttpTest, APanicLogCarriesWhereItWasRaised) {
  static std::string log;
  LogSink old = SetLogSink([](LogLevel level, std::string_view message) {
    if (level == LogLevel::kError) log = std::string(message);
  });
  RunNet(1, [] {
    TestHttpServer server([](const HttpRequest&) -> HttpResponse { Panic("boom"); });
    HttpClient c(server.address());
    HttpReply r = c.Request(GetRequest("/"));
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.status, 500);
  });
  SetLogSink(old);
  EXPECT_NE(log.find("recovered: boom"), std::string::npos) << log;
  EXPECT_NE(log.find("#0 "), std::string::npos) << "a backtrace: " << log;
}

TEST_P(HttpTest, TimingASilentConnectionIsClosedAfterTheIdleTimeout) {
  RunNet(2, [] {
    HttpOptions o;
    o.idle_timeout = 300ms;
    TestHttpServer server(EchoRequest, o);
    // Silent from the start.
    HttpClient silent(server.address());
    steady_clock::duration waited{};
    EXPECT_TRUE(silent.AwaitClose(10s, &waited));
    EXPECT_GE(waited, 250ms);
    EXPECT_LT(waited, 5s);
    // Idle after a request (keep-alive).
    HttpClient idle(server.address());
    ASSERT_TRUE(idle.Request(GetRequest("/")).ok);
    EXPECT_TRUE(idle.AwaitClose(10s, &waited));
    EXPECT_GE(waited, 250ms);
    // Slowloris: a byte every 100 ms keeps the connection busy but never completes the head; the
    // timeout counts from the start of the head, not from the last byte.
    HttpClient slow(server.address());
    steady_clock::time_point start = steady_clock::now();
    std::string req = GetRequest("/");
    for (size_t i = 0; i + 1 < req.size() && steady_clock::now() - start < 3s; ++i) {
      if (!slow.Send(req.substr(i, 1))) break;
      Sleep(100ms);
    }
    EXPECT_TRUE(slow.AwaitClose(10s));
    EXPECT_LT(steady_clock::now() - start, 2s) << "the trickle kept the connection open";
  });
}

TEST_P(HttpTest, CountsConnectionsAndBytes) {
  RunNet(2, [] {
    Metrics metrics;
    HttpOptions o;
    o.metrics = &metrics;
    TestHttpServer server(EchoRequest, o);
    std::string req = GetRequest("/count");
    size_t received = 0;
    {
      HttpClient a(server.address());
      HttpClient b(server.address());
      for (HttpClient* c : {&a, &b}) {
        HttpReply r = c->Request(req);
        ASSERT_TRUE(r.ok) << r.error;
        received += req.size();
      }
      EXPECT_EQ(metrics.connections_total[ServiceId::kHttp].Value(), 2u);
      EXPECT_EQ(metrics.connections_active[ServiceId::kHttp].Value(), 2);
      EXPECT_EQ(metrics.bytes_received_total[ServiceId::kHttp].Value(), received);
      // Counted once the write has returned, which may be after the client has the reply.
      for (int i = 0; i < 500 && metrics.bytes_sent_total[ServiceId::kHttp].Value() <= 200; ++i) {
        Sleep(2ms);
      }
      EXPECT_GT(metrics.bytes_sent_total[ServiceId::kHttp].Value(), 2 * 100u);
    }
    // The clients are gone: the server sees EOF and closes its side.
    for (int i = 0; i < 500 && metrics.connections_active[ServiceId::kHttp].Value() != 0; ++i) {
      Sleep(2ms);
    }
    EXPECT_EQ(metrics.connections_active[ServiceId::kHttp].Value(), 0);
    EXPECT_EQ(metrics.connections_total[ServiceId::kEcho].Value(), 0u)
        << "other services untouched";
  });
}

TEST_P(HttpTest, ClosingTheListenerEndsIdleConnectionsAndServeHttp) {
  RunNet(2, [] {
    HttpOptions o;
    o.idle_timeout = 1h;  // so only the stop can end them
    auto server = std::make_unique<TestHttpServer>(EchoRequest, o);
    std::vector<std::unique_ptr<HttpClient>> clients;
    for (int i = 0; i < 10; ++i) {
      clients.push_back(std::make_unique<HttpClient>(server->address()));
      if (i % 2 == 0) {
        ASSERT_TRUE(clients.back()->Request(GetRequest("/")).ok);
      }
    }
    Sleep(20ms);  // the silent ones are accepted and waiting
    steady_clock::time_point start = steady_clock::now();
    server->Stop();  // returns once every connection goroutine has ended
    EXPECT_LT(steady_clock::now() - start, 2s);
    for (auto& c : clients) EXPECT_TRUE(c->AwaitClose(2s));
  });
}

TEST_P(HttpTest, AnInvalidListenerIsLoggedAndServeHttpReturns) {
  static std::atomic<int> errors{0};
  errors = 0;
  LogSink old = SetLogSink([](LogLevel level, std::string_view) {
    if (level == LogLevel::kError) ++errors;
  });
  RunNet(1, [] { ServeHttp(net::Listener(), EchoRequest); });
  SetLogSink(old);
  EXPECT_EQ(errors.load(), 1);
}

TEST_P(HttpTest, StressManyClientsAtOnce) {
  RunNet(2, [] {
    Metrics metrics;
    HttpOptions o;
    o.metrics = &metrics;
    TestHttpServer server(EchoRequest, o);
    constexpr int kClients = 200;
    constexpr int kRequests = 10;
    std::atomic<int> good{0};
    WaitGroup done;
    for (int i = 0; i < kClients; ++i) {
      done.Add(1);
      Go([&, i] {
        HttpClient c(server.address());
        for (int j = 0; j < kRequests; ++j) {
          std::string path = "/" + std::to_string(i) + "/" + std::to_string(j);
          HttpReply r = c.Request(GetRequest(path));
          if (r.ok && r.body == "GET " + path + "\n") ++good;
        }
        done.Done();
      });
    }
    done.Wait();
    EXPECT_EQ(good.load(), kClients * kRequests);
    EXPECT_EQ(metrics.connections_total[ServiceId::kHttp].Value(), uint64_t{kClients});
  });
}

}  // namespace
}  // namespace greenline::server
