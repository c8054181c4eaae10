// Tests for server/admin.h: the admin routes served by ServeHttp over real loopback sockets on both
// pollers (/healthz turning 503 once the shutting-down flag is set while the endpoint keeps
// answering; /metrics well-formed, with the right content type and the counts the test made; the
// goroutine dump showing goroutine 1; the index and 404), the loopback-only rule for the dump
// (unit-tested on addresses, and through the handler with a foreign peer), and the dump helper.
#include "server/admin.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <atomic>
#include <chrono>
#include <string>

#include "greenline/goroutine.h"
#include "greenline/runtime.h"
#include "greenline/wait_group.h"
#include "server/http.h"
#include "server/metrics.h"
#include "tests/util/child_process.h"
#include "tests/util/goroutines.h"
#include "tests/util/http.h"
#include "tests/util/net.h"

namespace greenline::server {
namespace {

using namespace std::chrono_literals;
using greenline::testing::GetRequest;
using greenline::testing::HttpClient;
using greenline::testing::HttpReply;
using greenline::testing::ParsePrometheusText;
using greenline::testing::PrometheusText;
using greenline::testing::TestHttpServer;

net::Addr V4(const char* ip) { return greenline::testing::AddrV4(ip); }
net::Addr V6(const char* ip) { return greenline::testing::AddrV6(ip); }

// Options by assignment: designated initializers that leave members out trip g++'s
// -Wmissing-field-initializers (-Wextra).
HttpOptions Counted(Metrics& metrics) {
  HttpOptions o;
  o.metrics = &metrics;
  return o;
}

AdminOptions Admin(const std::atomic<bool>* shutting_down, bool dump_public = false) {
  AdminOptions o;
  o.shutting_down = shutting_down;
  o.debug_goroutines_public = dump_public;
  return o;
}

TEST(AdminHandlerTest, IsLoopbackRecognisesLoopbackAddressesOnly) {
  for (const char* ip : {"127.0.0.1", "127.1.2.3", "127.255.255.254"}) {
    EXPECT_TRUE(IsLoopback(V4(ip))) << ip;
  }
  for (const char* ip : {"::1", "::ffff:127.0.0.1", "::ffff:127.9.9.9"}) {
    EXPECT_TRUE(IsLoopback(V6(ip))) << ip;
  }
  for (const char* ip : {"10.0.0.1", "126.255.255.255", "128.0.0.1", "0.0.0.0", "192.168.1.1"}) {
    EXPECT_FALSE(IsLoopback(V4(ip))) << ip;
  }
  for (const char* ip : {"::", "::2", "fe80::1", "::ffff:10.0.0.1", "::127.0.0.1", "2001:db8::1"}) {
    EXPECT_FALSE(IsLoopback(V6(ip))) << ip;
  }
  EXPECT_FALSE(IsLoopback(net::Addr())) << "no address is not loopback";
}

TEST(AdminHandlerTest, GoroutineDumpIsRefusedToOtherPeersUnlessOpened) {
  greenline::Run(
      [] {
        Metrics metrics;
        HttpRequest req;
        req.method = "GET";
        req.path = "/debug/goroutines";
        HttpHandler closed = MakeAdminHandler(metrics, {});
        HttpHandler open = MakeAdminHandler(metrics, Admin(nullptr, true));
        for (const net::Addr& peer : {V4("10.1.2.3"), V6("2001:db8::7"), V6("::ffff:8.8.8.8")}) {
          req.peer = peer;
          HttpResponse refused = closed(req);
          EXPECT_EQ(refused.status, 403) << peer.String();
          EXPECT_EQ(refused.body.find("goroutine 1"), std::string::npos) << peer.String();
          HttpResponse served = open(req);
          EXPECT_EQ(served.status, 200) << peer.String();
          EXPECT_NE(served.body.find("goroutine 1 ["), std::string::npos) << served.body;
        }
        for (const net::Addr& peer : {V4("127.0.0.1"), V6("::1"), V6("::ffff:127.0.0.1")}) {
          req.peer = peer;
          EXPECT_EQ(closed(req).status, 200) << peer.String();
        }
      },
      greenline::testing::Procs(2));
}

TEST(AdminHandlerTest, GoroutineDumpTextShowsParkedGoroutinesAndTheirWaits) {
  std::string dump;
  greenline::Run(
      [&dump] {
        WaitGroup release;
        release.Add(1);
        WaitGroup parked;
        parked.Add(1);
        Go([&] {
          parked.Done();
          release.Wait();
        });
        parked.Wait();
        greenline::testing::AwaitParked(WaitReason::kSyncWaitGroupWait, 1);
        dump = GoroutineDumpText();
        release.Done();
      },
      greenline::testing::Procs(2));
  EXPECT_NE(dump.find("goroutine 1 ["), std::string::npos) << dump;
  EXPECT_NE(dump.find("[sync.WaitGroup.Wait]"), std::string::npos) << dump;
  EXPECT_EQ(GoroutineDumpText(), "") << "no runtime, no goroutines";
}

class AdminTest : public greenline::testing::PollerTest {};

INSTANTIATE_TEST_SUITE_P(Pollers, AdminTest,
                         ::testing::Values(PollerKind::kEpoll, PollerKind::kIoUring),
                         greenline::testing::PollerParamName);

TEST_P(AdminTest, HealthzIsOkUntilShutdownBeginsThen503) {
  RunNet(2, [] {
    Metrics metrics;
    std::atomic<bool> shutting_down{false};
    TestHttpServer server(MakeAdminHandler(metrics, Admin(&shutting_down)), Counted(metrics));
    HttpClient c(server.address());
    HttpReply r = c.Request(GetRequest("/healthz"));
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "ok\n");
    r = c.Request(GetRequest("/metrics"));
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_EQ(ParsePrometheusText(r.body).Value("greenline_shutting_down"), 0);

    shutting_down = true;
    // The same keep-alive connection, and a new one: the endpoint keeps answering.
    r = c.Request(GetRequest("/healthz"));
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.status, 503);
    EXPECT_EQ(r.body, "shutting down\n");
    HttpClient fresh(server.address());
    r = fresh.Request(GetRequest("/healthz", "", "HEAD"), /*head=*/true);
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.status, 503);
    r = fresh.Request(GetRequest("/metrics"));
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_EQ(ParsePrometheusText(r.body).Value("greenline_shutting_down"), 1);
  });
}

TEST_P(AdminTest, MetricsAreWellFormedAndShowTheCounts) {
  RunNet(2, [] {
    Metrics metrics;
    metrics.lines_received_total[ServiceId::kChat].Add(42);
    metrics.bytes_sent_total[ServiceId::kEcho].Add(1000);
    metrics.connections_active[ServiceId::kChat].Add(7);
    metrics.connections_active[ServiceId::kChat].Dec();
    metrics.disconnects_total[DisconnectReason::kTooSlow].Inc();
    metrics.disconnects_total[DisconnectReason::kIdleTimeout].Add(3);
    metrics.rate_limited_total[ServiceId::kChat].Add(5);
    metrics.chat_rooms.Set(3);
    TestHttpServer server(MakeAdminHandler(metrics, {}), Counted(metrics));
    HttpClient c(server.address());
    HttpReply r = c.Request(GetRequest("/metrics"));
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.Header("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
    PrometheusText p = ParsePrometheusText(r.body);
    for (const std::string& problem : p.problems) ADD_FAILURE() << problem;
    // Value fails the test on a missing sample: the zeros and lower bounds below are checked on
    // samples that are there.
    EXPECT_EQ(p.Value(R"(greenline_lines_received_total{service="chat"})"), 42);
    EXPECT_EQ(p.Value(R"(greenline_lines_received_total{service="echo"})"), 0);
    EXPECT_EQ(p.Value(R"(greenline_bytes_sent_total{service="echo"})"), 1000);
    EXPECT_EQ(p.Value(R"(greenline_connections_active{service="chat"})"), 6);
    EXPECT_EQ(p.Value(R"(greenline_disconnects_total{reason="too_slow"})"), 1);
    EXPECT_EQ(p.Value(R"(greenline_disconnects_total{reason="idle_timeout"})"), 3);
    EXPECT_EQ(p.Value(R"(greenline_rate_limited_total{service="chat"})"), 5);
    EXPECT_EQ(p.Value("greenline_chat_rooms"), 3);
    // This scrape's own connection, counted by ServeHttp.
    EXPECT_EQ(p.Value(R"(greenline_connections_total{service="http"})"), 1);
    EXPECT_EQ(p.Value(R"(greenline_connections_active{service="http"})"), 1);
    EXPECT_GT(p.Value(R"(greenline_bytes_received_total{service="http"})"), 0);
    // The runtime: this goroutine, the server's and the connection's at least.
    EXPECT_GE(p.Value(R"(greenline_goroutines{state="running"})"), 3);
    EXPECT_GE(p.Value(R"(greenline_goroutines{state="blocking"})"), 0);
    EXPECT_EQ(p.Value("greenline_workers"), 2);
    std::string poller = greenline::testing::PollerNameOf(GetParam());
    EXPECT_EQ(p.Value(R"(greenline_poller_info{kind=")" + poller + "\"}"), 1) << r.body;
    EXPECT_EQ(p.Value(R"(greenline_build_info{version=")" + std::string(BuildVersion()) + "\"}"),
              1);
    // The process.
    EXPECT_GT(p.Value("process_resident_memory_bytes"), 1 << 20);
    EXPECT_GT(p.Value("process_open_fds"), 3);
    EXPECT_GE(p.Value("process_max_fds"), p.Value("process_open_fds"));
    EXPECT_GE(p.Value("process_cpu_seconds_total"), 0);
    EXPECT_GT(p.Value("process_start_time_seconds"), 1.5e9);
    for (const char* family :
         {"greenline_connections_active", "greenline_connections_total",
          "greenline_lines_received_total", "greenline_lines_sent_total",
          "greenline_bytes_received_total", "greenline_bytes_sent_total",
          "greenline_panics_recovered_total", "greenline_disconnects_total", "greenline_goroutines",
          "greenline_chat_rooms", "greenline_poller_info", "process_resident_memory_bytes",
          "process_cpu_seconds_total", "process_open_fds"}) {
      EXPECT_TRUE(p.HasFamily(family)) << "docs/operating.md lists " << family;
    }
  });
}

TEST_P(AdminTest, GoroutineDumpShowsGoroutineOneToALoopbackClient) {
  RunNet(2, [] {
    Metrics metrics;
    TestHttpServer server(MakeAdminHandler(metrics, {}), Counted(metrics));
    HttpClient c(server.address());
    HttpReply r = c.Request(GetRequest("/debug/goroutines"));
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.status, 200);
    EXPECT_NE(r.body.find("goroutine 1 ["), std::string::npos) << r.body;
    // The handler's own goroutine is in the dump, waiting for the blocking pool.
    EXPECT_NE(r.body.find("[syscall]"), std::string::npos) << r.body;
  });
}

TEST_P(AdminTest, IndexListsTheEndpointsAndUnknownPathsAre404) {
  RunNet(1, [] {
    Metrics metrics;
    TestHttpServer server(MakeAdminHandler(metrics, {}), Counted(metrics));
    HttpClient c(server.address());
    HttpReply r = c.Request(GetRequest("/"));
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.status, 200);
    for (const char* path : {"/healthz", "/metrics", "/debug/goroutines"}) {
      EXPECT_NE(r.body.find(path), std::string::npos) << r.body;
    }
    for (const char* path : {"/nope", "/metrics/", "/healthz/x", "/debug"}) {
      r = c.Request(GetRequest(path));
      ASSERT_TRUE(r.ok) << r.error;
      EXPECT_EQ(r.status, 404) << path;
    }
    r = c.Request(GetRequest("/healthz?verbose=1"));
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.status, 200) << "the query does not change the route";
  });
}

}  // namespace
}  // namespace greenline::server
