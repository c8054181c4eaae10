// Tests for server/server.h, the connection lifecycle every service shares, over real loopback
// sockets on both pollers: ConnLimit admits up to its maximum and takes places back; a ConnTicket
// counts its connection until it is destroyed, and Wait returns once the last one is gone (false
// while one lives past the deadline) without polling; Stop stops every attached session and
// refuses those that attach later; a connection over the limit is told so and closed, on a
// goroutine Wait also waits for; AcceptLoop hands every connection to its service and returns
// when the listener closes.
#include "server/server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "greenline/chan.h"
#include "greenline/goroutine.h"
#include "greenline/net.h"
#include "greenline/wait_group.h"
#include "server/metrics.h"
#include "server/session.h"
#include "tests/util/http.h"
#include "tests/util/net.h"

namespace greenline::server {
namespace {

using namespace std::chrono_literals;
using greenline::testing::MakeConnPair;
using greenline::testing::ReadFull;

class ServerTest : public greenline::testing::PollerTest {};

INSTANTIATE_TEST_SUITE_P(Pollers, ServerTest,
                         ::testing::Values(PollerKind::kEpoll, PollerKind::kIoUring),
                         greenline::testing::PollerParamName);

// A service whose connections are held open until released, each with a started session.
class HoldingService final : public Service {
 public:
  HoldingService(Metrics& metrics, ConnLimit* limit)
      : Service(ServiceId::kEcho, metrics, limit, "! full\r\n"), release_(MakeChan<bool>()) {}

  std::atomic<int> served{0};
  std::atomic<int> born_stopping{0};  // sessions stopping as soon as they started
  std::atomic<int> stopped{0};        // sessions a Stop woke
  void ReleaseAll() { release_.Close(); }

 protected:
  void Serve(net::Conn conn, ConnTicket ticket) override {
    Go([this, conn, t = std::move(ticket)]() mutable {
      ConnSession session(*this, conn, std::move(t));
      session.Start();
      if (session.stopping()) ++born_stopping;
      ++served;
      // Parked until the test lets go, or a Stop wakes the reader with a past read deadline.
      char byte;
      auto r = conn.Read(&byte, 1);
      if (r.err.timeout() && session.stopping()) ++stopped;
      release_.RecvOk();
      conn.Close();
      session.Finish(DisconnectReason::kShutdown);
    });
  }

 private:
  Chan<bool> release_;
};

TEST(ConnLimitTest, AdmitsUpToItsMaximumAndTakesPlacesBack) {
  ConnLimit limit(2);
  EXPECT_TRUE(limit.TryTake());
  EXPECT_TRUE(limit.TryTake());
  EXPECT_FALSE(limit.TryTake());
  EXPECT_EQ(limit.in_use(), 2);
  limit.Give();
  EXPECT_TRUE(limit.TryTake());
  ConnLimit none(0);
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(none.TryTake());
}

TEST_P(ServerTest, WaitReturnsOnceTheLastTicketIsGoneAndNotBefore) {
  RunNet(2, [] {
    Metrics metrics;
    HoldingService service(metrics, nullptr);
    std::vector<greenline::testing::ConnPair> pairs;
    for (int i = 0; i < 3; ++i) {
      pairs.push_back(MakeConnPair());
      service.Accept(pairs.back().server);
    }
    while (service.served < 3) Sleep(1ms);
    EXPECT_EQ(service.tracker().live(), 3);
    service.Stop(std::chrono::steady_clock::now() + 1s);
    // Stopped, but the connections hold their tickets until released: Wait times out.
    EXPECT_FALSE(service.Wait(std::chrono::steady_clock::now() + 50ms));
    service.ReleaseAll();
    EXPECT_TRUE(service.Wait(std::chrono::steady_clock::now() + 10s));
    EXPECT_EQ(service.tracker().live(), 0);
    EXPECT_EQ(service.stopped, 3) << "every attached session was stopped";
    EXPECT_EQ(service.born_stopping, 0);
    EXPECT_EQ(metrics.connections_active[ServiceId::kEcho].Value(), 0);
  });
}

TEST_P(ServerTest, ASessionThatAttachesAfterStopIsStoppingAtOnce) {
  RunNet(1, [] {
    Metrics metrics;
    HoldingService service(metrics, nullptr);
    service.Stop(std::chrono::steady_clock::now() + 1s);
    greenline::testing::ConnPair p = MakeConnPair();
    service.Accept(p.server);
    while (service.served < 1) Sleep(1ms);
    EXPECT_EQ(service.born_stopping, 1);
    EXPECT_EQ(service.stopped, 0) << "it never attached, so the Stop that came first missed it";
    p.client.Close();  // its read ends
    service.ReleaseAll();
    EXPECT_TRUE(service.Wait(std::chrono::steady_clock::now() + 10s));
  });
}

TEST_P(ServerTest, AConnectionOverTheLimitIsToldAndClosedAndWaitedFor) {
  RunNet(2, [] {
    Metrics metrics;
    ConnLimit limit(1);
    HoldingService service(metrics, &limit);
    greenline::testing::ConnPair first = MakeConnPair();
    service.Accept(first.server);
    greenline::testing::ConnPair second = MakeConnPair();
    service.Accept(second.server);  // over the limit
    std::string got(8, '\0');
    net::Error err;
    ASSERT_TRUE(ReadFull(second.client, got.data(), got.size(), &err)) << err.String();
    EXPECT_EQ(got, "! full\r\n");
    char byte;
    EXPECT_TRUE(second.client.Read(&byte, 1).err.eof());  // then closed
    EXPECT_EQ(metrics.disconnects_total[DisconnectReason::kServerFull].Value(), 1u);
    EXPECT_EQ(limit.in_use(), 1) << "the one turned away holds no place";
    while (service.served < 1) Sleep(1ms);  // the admitted one's goroutine may not have run yet
    EXPECT_EQ(service.served, 1);
    service.Stop(std::chrono::steady_clock::now() + 1s);
    service.ReleaseAll();
    EXPECT_TRUE(service.Wait(std::chrono::steady_clock::now() + 10s));
    EXPECT_EQ(limit.in_use(), 0);
  });
}

TEST_P(ServerTest, AcceptLoopServesEveryConnectionAndReturnsWhenTheListenerCloses) {
  RunNet(2, [] {
    Metrics metrics;
    HoldingService service(metrics, nullptr);
    // Not a structured binding: clang 14 (the TSan build) cannot capture one in a lambda.
    std::pair<net::Listener, net::Error> listening = net::Listen("tcp", "127.0.0.1:0");
    ASSERT_FALSE(listening.second) << listening.second.String();
    net::Listener ln = listening.first;
    WaitGroup loop;
    loop.Add(1);
    Go([&] {
      AcceptLoop(ln, service);
      loop.Done();
    });
    std::vector<net::Conn> clients;
    for (int i = 0; i < 20; ++i) {
      auto [c, derr] = net::Dial("tcp", ln.LocalAddr().String());
      ASSERT_FALSE(derr) << derr.String();
      clients.push_back(c);
    }
    while (service.served < 20) Sleep(1ms);
    ln.Close();
    loop.Wait();  // returned: the listener is closed
    EXPECT_EQ(metrics.connections_total[ServiceId::kEcho].Value(), 20u);
    service.Stop(std::chrono::steady_clock::now() + 1s);
    service.ReleaseAll();
    EXPECT_TRUE(service.Wait(std::chrono::steady_clock::now() + 10s));
    for (auto& c : clients) c.Close();
  });
}

// Connections that end on their own while a shutdown's Stop walks them: each session's on_stop
// touches state the connection owns and destroys once it has finished (chat's outbox, here a heap
// counter), so a Stop that reached a finished session would read freed memory (ASan says so).
class EndingService final : public Service {
 public:
  explicit EndingService(Metrics& metrics)
      : Service(ServiceId::kChat, metrics), go_(MakeChan<bool>()) {}
  void Go() { go_.Close(); }
  std::atomic<int> served{0};
  std::atomic<int64_t> stops{0};

 protected:
  void Serve(net::Conn conn, ConnTicket ticket) override {
    greenline::Go([this, conn, t = std::move(ticket)]() mutable {
      auto owned = std::make_unique<std::atomic<int>>(0);
      ConnSession session(*this, conn, std::move(t), [this, o = owned.get()] {
        ++*o;
        ++stops;
      });
      session.Start();
      ++served;
      go_.RecvOk();
      Yield();
      conn.Close();
      session.Finish(DisconnectReason::kEof);
      owned.reset();  // what on_stop touches goes: no Stop may reach the session any more
    });
  }

 private:
  Chan<bool> go_;
};

TEST_P(ServerTest, StressStopWhileConnectionsEndOnTheirOwn) {
  RunNet(4, [] {
    constexpr int kConns = 200;
    Metrics metrics;
    EndingService service(metrics);
    std::vector<greenline::testing::ConnPair> pairs;
    for (int i = 0; i < kConns; ++i) {
      pairs.push_back(MakeConnPair());
      service.Accept(pairs.back().server);
    }
    while (service.served < kConns) Sleep(1ms);
    service.Go();                                         // they all start to end ...
    service.Stop(std::chrono::steady_clock::now() + 1s);  // ... while Stop walks them
    EXPECT_TRUE(service.Wait(std::chrono::steady_clock::now() + 20s));
    EXPECT_LE(service.stops, kConns);
    for (auto& p : pairs) p.client.Close();
  });
}

}  // namespace
}  // namespace greenline::server
