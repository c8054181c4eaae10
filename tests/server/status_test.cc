// Tests for server/status.h and the status routes of server/admin.h: a sample holds the runtime's
// goroutine counts (a goroutine the test parks on a channel shows as blocking in "chan receive")
// and the metrics' counts; the ring keeps the last `keep` samples and `since` gives only newer
// ones; Run samples each period until Stop; the page, its scripts and its data are served with
// their types and headers, to loopback peers only unless opened; the page's files are built in.
// The page itself, in a browser, is tests/status/status_page_test.py.
#include "server/status.h"

#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

#include "greenline/chan.h"
#include "greenline/goroutine.h"
#include "greenline/runtime.h"
#include "greenline/wait_group.h"
#include "server/admin.h"
#include "server/metrics.h"
#include "tests/util/child_process.h"
#include "tests/util/net.h"

namespace greenline::server {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

StatusBoard::Options Keep(size_t keep, std::chrono::milliseconds period = 1s) {
  StatusBoard::Options o;
  o.keep = keep;
  o.period = period;
  return o;
}

TEST(StatusBoardTest, SampleHoldsGoroutineStatesAndTheMetricsCounts) {
  greenline::Run(
      [] {
        Metrics metrics;
        metrics.connections_active[ServiceId::kChat].Add(3);
        metrics.lines_received_total[ServiceId::kEcho].Add(7);
        metrics.lines_sent_total[ServiceId::kChat].Add(40);
        metrics.panics_recovered_total[ServiceId::kEcho].Inc();
        metrics.panics_recovered_total[ServiceId::kChat].Inc();
        metrics.chat_rooms.Set(2);
        auto never = MakeChan<int>();
        WaitGroup parked, done;
        parked.Add(1);
        done.Add(1);
        Go([&] {
          parked.Done();
          never.Recv();  // blocking, in "chan receive", until closed
          done.Done();
        });
        parked.Wait();
        StatusBoard board(metrics, nullptr);
        // The goroutine may not have parked yet: sample until it has.
        json s;
        for (int i = 0; i < 1000; ++i) {
          board.Sample();
          json j = json::parse(board.Json(0));
          s = j["samples"].back();
          if (s["goroutines"]["waiting"].value("chan receive", 0) >= 1) break;
          Sleep(1ms);
        }
        EXPECT_GE(s["goroutines"]["waiting"].value("chan receive", 0), 1) << s.dump();
        EXPECT_GE(s["goroutines"]["blocking"].get<int>(), 1) << s.dump();
        EXPECT_EQ(s["goroutines"]["live"].get<int>(),
                  s["goroutines"]["running"].get<int>() + s["goroutines"]["blocking"].get<int>());
        EXPECT_EQ(s["connections"]["chat"], 3);
        EXPECT_EQ(s["connections"]["echo"], 0);
        EXPECT_EQ(s["lines_received"]["echo"], 7);
        EXPECT_EQ(s["lines_sent"]["chat"], 40);
        EXPECT_EQ(s["panics_recovered"], 2);
        EXPECT_EQ(s["chat_rooms"], 2);
        EXPECT_GT(s["resident_bytes"].get<double>(), 0);
        EXPECT_GE(s["cpu_seconds"].get<double>(), 0);
        never.Close();
        done.Wait();
      },
      greenline::testing::Procs(2));
}

TEST(StatusBoardTest, KeepsTheLastSamplesAndGivesOnlyThoseAfterSince) {
  greenline::Run([] {
    Metrics metrics;
    StatusBoard board(metrics, nullptr, Keep(3));
    for (int i = 0; i < 5; ++i) board.Sample();
    json all = json::parse(board.Json(0));
    ASSERT_EQ(all["samples"].size(), 3u);
    EXPECT_EQ(all["samples"][0]["seq"], 3);
    EXPECT_EQ(all["samples"][2]["seq"], 5);
    EXPECT_EQ(all["last_seq"], 5);
    EXPECT_EQ(all["keep"], 3);
    EXPECT_EQ(all["workers"], MaxProcs());
    EXPECT_EQ(all["rooms"]["total"], 0);  // no chat service
    json newer = json::parse(board.Json(4));
    ASSERT_EQ(newer["samples"].size(), 1u);
    EXPECT_EQ(newer["samples"][0]["seq"], 5);
    EXPECT_TRUE(json::parse(board.Json(5))["samples"].empty());
    // Every wait reason is named once, running-class ones first.
    bool seen_blocking = false;
    for (const json& r : all["reasons"]) {
      if (r["blocking"].get<bool>()) seen_blocking = true;
      EXPECT_FALSE(seen_blocking && !r["blocking"].get<bool>()) << all["reasons"].dump();
    }
    EXPECT_EQ(all["reasons"].size(), static_cast<size_t>(WaitReason::kCount) - 1);
  });
}

TEST(StatusBoardTest, RunSamplesEachPeriodUntilStopped) {
  greenline::Run([] {
    Metrics metrics;
    StatusBoard board(metrics, nullptr, Keep(100, 20ms));
    WaitGroup running;
    running.Add(1);
    Go([&] {
      board.Run();
      running.Done();
    });
    // One sample at once, then one per period: wait for a few (generously, for slow builds).
    for (int i = 0; i < 500 && json::parse(board.Json(0))["last_seq"].get<int>() < 4; ++i) {
      Sleep(10ms);
    }
    EXPECT_GE(json::parse(board.Json(0))["last_seq"].get<int>(), 4);
    board.Stop();
    running.Wait();  // Run returned
    int last = json::parse(board.Json(0))["last_seq"];
    Sleep(60ms);
    EXPECT_EQ(json::parse(board.Json(0))["last_seq"], last) << "sampled after Stop";
  });
}

TEST(StatusRoutesTest, PageScriptsAndDataAreServedToLoopbackPeersUnlessOpened) {
  greenline::Run([] {
    Metrics metrics;
    StatusBoard board(metrics, nullptr);
    board.Sample();
    board.Sample();
    AdminOptions closed_options;
    closed_options.status = &board;
    AdminOptions open_options = closed_options;
    open_options.status_public = true;
    HttpHandler closed = MakeAdminHandler(metrics, closed_options);
    HttpHandler open = MakeAdminHandler(metrics, open_options);
    auto get = [](HttpHandler& h, const char* path, const char* query, const net::Addr& peer) {
      HttpRequest req;
      req.method = "GET";
      req.path = path;
      req.query = query;
      req.peer = peer;
      return h(req);
    };
    auto header = [](const HttpResponse& r, const std::string& name) {
      for (const auto& [k, v] : r.headers) {
        if (k == name) return v;
      }
      return std::string();
    };
    const net::Addr local = greenline::testing::AddrV4("127.0.0.1");
    const net::Addr foreign = greenline::testing::AddrV4("10.1.2.3");

    HttpResponse page = get(closed, "/", "", local);
    EXPECT_EQ(page.status, 200);
    EXPECT_EQ(page.content_type, "text/html; charset=utf-8");
    EXPECT_NE(page.body.find("<canvas id=\"chart-goroutines\">"), std::string::npos);
    EXPECT_NE(header(page, "Content-Security-Policy").find("default-src 'self'"),
              std::string::npos);
    EXPECT_EQ(header(page, "X-Content-Type-Options"), "nosniff");

    HttpResponse script = get(closed, "/static/status.js", "", local);
    EXPECT_EQ(script.status, 200);
    EXPECT_EQ(script.content_type, "text/javascript; charset=utf-8");
    EXPECT_EQ(script.body, StatusPageScript());
    HttpResponse chart = get(closed, "/static/chart.min.js", "", local);
    EXPECT_EQ(chart.status, 200);
    EXPECT_NE(chart.body.find("Chart.js v3"), std::string::npos) << chart.body.substr(0, 200);
    EXPECT_EQ(get(closed, "/static/icon.svg", "", local).content_type, "image/svg+xml");
    EXPECT_EQ(get(closed, "/static/nothing.js", "", local).status, 404);

    HttpResponse data = get(closed, "/status.json", "since=1", local);
    EXPECT_EQ(data.status, 200);
    EXPECT_EQ(data.content_type, "application/json");
    EXPECT_EQ(header(data, "Cache-Control"), "no-store");
    json j = json::parse(data.body);
    ASSERT_EQ(j["samples"].size(), 1u);
    EXPECT_EQ(j["samples"][0]["seq"], 2);
    EXPECT_EQ(
        json::parse(get(closed, "/status.json", "x=1&since=bad", local).body)["samples"].size(), 2u)
        << "a since that is not a number means all";

    // A loopback peer naming the server by "localhost" or an IP address is served; one that names
    // it otherwise (a page whose name was rebound to 127.0.0.1) is not.
    auto with_host = [&](HttpHandler& h, const char* host) {
      HttpRequest req;
      req.method = "GET";
      req.path = "/status.json";
      req.peer = local;
      req.headers.emplace_back("Host", host);
      return h(req).status;
    };
    for (const char* host :
         {"localhost:9070", "LOCALHOST", "127.0.0.1:9070", "10.0.0.5", "[::1]:9070"}) {
      EXPECT_EQ(with_host(closed, host), 200) << host;
    }
    for (const char* host :
         {"evil.example", "evil.example:9070", "localhost.evil.example", ":9070"}) {
      EXPECT_EQ(with_host(closed, host), 403) << host;
      EXPECT_EQ(with_host(open, host), 200) << host << " (opened to all)";
    }

    for (const char* path : {"/", "/status.json", "/static/status.js", "/static/chart.min.js"}) {
      HttpResponse refused = get(closed, path, "", foreign);
      EXPECT_EQ(refused.status, 403) << path;
      EXPECT_NE(refused.body.find("--status-public"), std::string::npos) << refused.body;
      EXPECT_EQ(get(open, path, "", foreign).status, 200) << path;
    }
    // Without a board, / is the plain index, as before.
    HttpHandler plain = MakeAdminHandler(metrics, {});
    HttpResponse index = get(plain, "/", "", local);
    EXPECT_EQ(index.content_type, "text/plain; charset=utf-8");
    EXPECT_NE(index.body.find("/metrics"), std::string::npos);
    EXPECT_EQ(get(plain, "/status.json", "", local).status, 404);
  });
}

TEST(StatusRoutesTest, PageFilesAreBuiltIn) {
  EXPECT_EQ(StatusPageHtml().substr(0, 15), "<!doctype html>");
  EXPECT_NE(StatusPageHtml().find("/static/status.js"), std::string::npos);
  EXPECT_NE(StatusPageScript().find("/status.json?since="), std::string::npos);
  EXPECT_GT(ChartJs().size(), 100000u);
  EXPECT_EQ(StatusPageScript().find("innerHTML"), std::string_view::npos)
      << "the page's script puts text into the page, never markup";
}

}  // namespace
}  // namespace greenline::server
