// Helpers for the server tests (tests/server/): a raw HTTP/1.1 client over net::Conn that keeps
// unread bytes between responses (keep-alive, pipelining), a ServeHttp instance on a loopback port,
// and a fixture that runs each test on both pollers and checks that no descriptor outlives the
// runtime.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "greenline/net.h"
#include "greenline/runtime.h"
#include "greenline/wait_group.h"
#include "server/http.h"

namespace greenline::testing {

// One response as the client read it.
struct HttpReply {
  bool ok = false;    // a whole response arrived (else `error` says what happened)
  std::string error;  // why not
  int status = 0;
  std::string version;  // "HTTP/1.1"
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  // The first header named `name` (case-insensitive); "" if none. HasHeader tells them apart.
  std::string Header(std::string_view name) const;
  bool HasHeader(std::string_view name) const;
};

// "GET <path> HTTP/1.1\r\nHost: localhost\r\n<extra>\r\n": `extra` holds whole header lines.
std::string GetRequest(std::string_view path, std::string_view extra = "",
                       std::string_view method = "GET");

// A client connection. From a goroutine.
class HttpClient {
 public:
  explicit HttpClient(const std::string& address);  // dials; fails the test if it cannot
  bool connected() const { return conn_.valid(); }
  const net::Conn& conn() const { return conn_; }

  bool Send(std::string_view raw);
  // Reads one response (for a HEAD request: `head`, no body follows its Content-Length). Gives up
  // after `limit`.
  HttpReply Receive(bool head = false, std::chrono::milliseconds limit = std::chrono::seconds(10));
  HttpReply Request(std::string_view raw, bool head = false) {
    if (!Send(raw)) {
      HttpReply failed;
      failed.error = "send failed";
      return failed;
    }
    return Receive(head);
  }
  // Waits up to `limit` for the server to close the connection (EOF or reset, after any bytes
  // still unread). True if it did; *waited says how long it took.
  bool AwaitClose(std::chrono::milliseconds limit,
                  std::chrono::steady_clock::duration* waited = nullptr);

 private:
  net::Conn conn_;
  std::string buf_;  // received, not yet consumed
};

// ServeHttp on 127.0.0.1:<free port>, on a goroutine of its own. Stop (or the destructor) closes
// the listener and waits for ServeHttp to return. From a goroutine.
class TestHttpServer {
 public:
  explicit TestHttpServer(server::HttpHandler handler, const server::HttpOptions& options = {});
  ~TestHttpServer() { Stop(); }
  TestHttpServer(const TestHttpServer&) = delete;
  TestHttpServer& operator=(const TestHttpServer&) = delete;

  const std::string& address() const { return address_; }
  void Stop();

 private:
  net::Listener listener_;
  std::string address_;
  WaitGroup returned_;
  bool stopped_ = false;
};

// Prometheus text format 0.0.4, checked line by line. Samples and types are read through Value and
// Type, which fail the test where they are called when the text lacks the sample or the TYPE line:
// the maps are private because std::map's operator[] would insert 0 (or "") for a missing key, and
// a check like `EXPECT_GE(samples[key], 0)` would pass on a sample that is not there.
class PrometheusText {
 public:
  // Whether the text has the sample `key` ("name{label=\"v\"}", as written).
  bool Has(const std::string& key) const { return samples_.count(key) != 0; }
  // The value of the sample `key`. A missing sample is a test failure at the caller's line, and
  // NaN, which no EXPECT_EQ, _LT, _LE, _GT or _GE passes either. (The caller's file and line come
  // from __builtin_FILE/__builtin_LINE: clang 14, the tsan preset's compiler, has no
  // std::source_location with libstdc++ 12.)
  double Value(const std::string& key, const char* file = __builtin_FILE(),
               int line = __builtin_LINE()) const;
  // Whether the text has a TYPE line for `family`.
  bool HasFamily(const std::string& family) const { return types_.count(family) != 0; }
  // The family's type ("counter", "gauge" or "untyped"). A missing TYPE line is a test failure at
  // the caller's line, and "".
  std::string Type(const std::string& family, const char* file = __builtin_FILE(),
                   int line = __builtin_LINE()) const;

  std::vector<std::string> problems;  // lines that break the format, and why

 private:
  friend PrometheusText ParsePrometheusText(const std::string& text);

  std::map<std::string, double> samples_;     // "name{label=\"v\"}" (as written) -> value
  std::map<std::string, std::string> types_;  // family -> "counter", "gauge", "untyped"
  std::set<std::string> helps_;               // families with a # HELP line
};
// Every line must be "# HELP name text", "# TYPE name counter|gauge|untyped" or a sample
// `name{labels} value` of a family whose HELP and TYPE came before it; no sample twice; counters
// end in _total.
PrometheusText ParsePrometheusText(const std::string& text);

// A test run on each poller, like NetTest (tests/net/net_test.cc): the io_uring instance is skipped
// where no ring can be set up; TearDown checks that the runtime left no descriptor open.
class PollerTest : public ::testing::TestWithParam<PollerKind> {
 protected:
  static void SetUpTestSuite();
  void SetUp() override;
  void TearDown() override;
  // Runs `body` as the main goroutine of a runtime with `procs` workers on this test's poller.
  void RunNet(int procs, const std::function<void()>& body);

 private:
  int fds_before_ = -1;
  std::string fd_list_before_;
};

}  // namespace greenline::testing
