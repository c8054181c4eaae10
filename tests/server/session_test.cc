// Tests for server/session.h over real loopback sockets on both pollers: why a connection ends
// (ReasonFor: EOF, the idle deadline, a shutdown's Stop, a cut-off, an error); Finish takes the
// session off its tracker, so a Stop that comes after never reaches it; IdleTimer closes a silent
// connection and a Touch keeps a talking one open; ServeHibernating starts the connection on its
// own goroutine, runs its steps without a stack in between, ends it once, and turns a panic in a
// step into a recovered, counted end with kPanic.
#include "server/session.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "greenline/chan.h"
#include "greenline/goroutine.h"
#include "greenline/net.h"
#include "greenline/panic.h"
#include "server/metrics.h"
#include "server/server.h"
#include "tests/util/http.h"
#include "tests/util/net.h"

namespace greenline::server {
namespace {

using namespace std::chrono_literals;
using greenline::testing::ConnPair;
using greenline::testing::MakeConnPair;

class SessionTest : public greenline::testing::PollerTest {};

INSTANTIATE_TEST_SUITE_P(Pollers, SessionTest,
                         ::testing::Values(PollerKind::kEpoll, PollerKind::kIoUring),
                         greenline::testing::PollerParamName);

// A service that serves nothing itself: the tests drive sessions by hand.
class BareService final : public Service {
 public:
  explicit BareService(Metrics& metrics) : Service(ServiceId::kEcho, metrics) {}
  ConnTicket Ticket() { return std::move(*tracker().Admit(nullptr)); }

 protected:
  void Serve(net::Conn, ConnTicket) override {}
};

net::Error ReadError(const net::Conn& c) {
  char buf[16];
  for (;;) {
    net::IoResult r = c.Read(buf, sizeof buf);
    if (r.err) return r.err;
  }
}

TEST_P(SessionTest, ReasonForTellsEofIdleShutdownCutOffAndError) {
  RunNet(2, [] {
    Metrics metrics;
    BareService service(metrics);
    {  // EOF
      ConnPair p = MakeConnPair();
      ConnSession s(service, p.server, service.Ticket());
      s.Start();
      p.client.Close();
      EXPECT_EQ(s.ReasonFor(ReadError(p.server)), DisconnectReason::kEof);
      s.Finish(DisconnectReason::kEof);
    }
    {  // the idle deadline
      ConnPair p = MakeConnPair();
      ConnSession s(service, p.server, service.Ticket());
      s.Start();
      p.server.SetReadDeadline(std::chrono::steady_clock::now() + 10ms);
      EXPECT_EQ(s.ReasonFor(ReadError(p.server)), DisconnectReason::kIdleTimeout);
      s.Finish(DisconnectReason::kIdleTimeout);
    }
    {  // a shutdown: Stop wakes the reader with a past deadline
      ConnPair p = MakeConnPair();
      ConnSession s(service, p.server, service.Ticket());
      s.Start();
      s.Stop(std::chrono::steady_clock::now() + 1s);
      EXPECT_TRUE(s.stopping());
      EXPECT_EQ(s.ReasonFor(ReadError(p.server)), DisconnectReason::kShutdown);
      s.Finish(DisconnectReason::kShutdown);
    }
    {  // a cut-off from another goroutine; the first reason sticks
      ConnPair p = MakeConnPair();
      ConnSession s(service, p.server, service.Ticket());
      s.Start();
      s.CutOff(DisconnectReason::kTooSlow);
      s.CutOff(DisconnectReason::kError);
      EXPECT_EQ(s.ReasonFor(ReadError(p.server)), DisconnectReason::kTooSlow);
      s.Finish(DisconnectReason::kTooSlow);
    }
    {  // an error that is none of those
      ConnPair p = MakeConnPair();
      ConnSession s(service, p.server, service.Ticket());
      s.Start();
      p.server.Close();
      EXPECT_EQ(s.ReasonFor(ReadError(p.server)), DisconnectReason::kError);
      s.Finish(DisconnectReason::kError);
      p.client.Close();
    }
    EXPECT_EQ(metrics.disconnects_total[DisconnectReason::kEof].Value(), 1u);
    EXPECT_EQ(metrics.disconnects_total[DisconnectReason::kTooSlow].Value(), 1u);
    EXPECT_EQ(metrics.connections_active[ServiceId::kEcho].Value(), 0);
    EXPECT_EQ(metrics.connections_total[ServiceId::kEcho].Value(), 5u);
  });
}

TEST_P(SessionTest, AFinishedSessionIsNotStoppedAndItsTicketStillCounts) {
  RunNet(1, [] {
    Metrics metrics;
    BareService service(metrics);
    ConnPair p = MakeConnPair();
    std::atomic<int> stops{0};
    auto s = std::make_unique<ConnSession>(service, p.server, service.Ticket(), [&] { ++stops; });
    s->Start();
    s->Finish(DisconnectReason::kEof);
    service.Stop(std::chrono::steady_clock::now() + 1s);
    EXPECT_EQ(stops, 0) << "Stop reached a session that had finished";
    EXPECT_FALSE(service.Wait(std::chrono::steady_clock::now() + 20ms))
        << "its ticket still counts";
    s.reset();
    EXPECT_TRUE(service.Wait(std::chrono::steady_clock::now() + 10s));
    p.client.Close();
    p.server.Close();
  });
}

TEST_P(SessionTest, TimingIdleTimerClosesSilenceAndATouchKeepsTheConnectionOpen) {
  RunNet(1, [] {
    ConnPair p = MakeConnPair();
    IdleTimer idle(200ms, p.server, /*both=*/false);
    idle.Touch();
    auto start = std::chrono::steady_clock::now();
    EXPECT_TRUE(ReadError(p.server).timeout());
    auto waited = std::chrono::steady_clock::now() - start;
    EXPECT_GE(waited, 190ms);  // 63/64 of the timeout at the least
    p.client.Close();
    p.server.Close();
  });
}

// What the connections of a HibernatingService report.
struct StepLog {
  Chan<DisconnectReason> ended = MakeChan<DisconnectReason>(4);
  std::atomic<uint64_t> started_on{0};  // the goroutine the last one started on
  std::atomic<int> steps{0};            // the last one's steps, when it ended
};

// A hibernating connection for ServeHibernating: echoes what it reads, hibernates when there is
// nothing to read, and panics when asked to.
class StepConn {
 public:
  StepConn(Service& service, net::Conn conn, ConnTicket ticket, StepLog& log)
      : session_(service, std::move(conn), std::move(ticket)), log_(log) {}

  ConnSession& session() { return session_; }
  void Start() {
    session_.Start();
    log_.started_on = GoroutineId();
  }
  NextStep Step() {
    ++steps_;
    char buf[64];
    for (;;) {
      net::IoResult r = session_.conn().TryRead(buf, sizeof buf);
      if (r.err.would_block()) return session_.conn().ResumeWhenReadable();
      if (r.n > 0 && std::string(buf, r.n).find("panic") != std::string::npos) Panic("asked to");
      if (r.n > 0) session_.conn().Write(buf, r.n);
      if (r.err) return session_.ReasonFor(r.err);
    }
  }
  void End(DisconnectReason why) {
    session_.conn().Close();
    session_.Finish(why);
    log_.steps = steps_;
    log_.ended.TrySend(why);
  }

 private:
  ConnSession session_;
  StepLog& log_;
  int steps_ = 0;
};

class HibernatingService final : public Service {
 public:
  explicit HibernatingService(Metrics& metrics) : Service(ServiceId::kEcho, metrics) {}
  StepLog log;

 protected:
  void Serve(net::Conn conn, ConnTicket ticket) override {
    ServeHibernating(std::make_unique<StepConn>(*this, std::move(conn), std::move(ticket), log));
  }
};

TEST_P(SessionTest, ServeHibernatingRunsStepsEndsOnceAndRecoversAPanic) {
  RunNet(2, [] {
    Metrics metrics;
    HibernatingService service(metrics);
    {
      ConnPair p = MakeConnPair();
      service.Accept(p.server);
      for (const char* line : {"one\n", "two\n"}) {
        ASSERT_FALSE(p.client.Write(line).err);
        char buf[4];
        ASSERT_TRUE(greenline::testing::ReadFull(p.client, buf, 4));
        EXPECT_EQ(std::string(buf, 4), line);
      }
      p.client.Close();
      EXPECT_EQ(service.log.ended.Recv(), DisconnectReason::kEof);
      EXPECT_NE(service.log.started_on, GoroutineId()) << "started on the accepting goroutine";
      EXPECT_GE(service.log.steps, 2) << "it hibernated between the lines";
    }
    {
      ConnPair p = MakeConnPair();
      service.Accept(p.server);
      ASSERT_FALSE(p.client.Write("panic\n").err);
      EXPECT_EQ(service.log.ended.Recv(), DisconnectReason::kPanic);
      EXPECT_EQ(metrics.panics_recovered_total[ServiceId::kEcho].Value(), 1u);
      char byte;
      EXPECT_TRUE(p.client.Read(&byte, 1).err.eof());  // closed by End
      p.client.Close();
    }
    service.Stop(std::chrono::steady_clock::now() + 1s);
    EXPECT_TRUE(service.Wait(std::chrono::steady_clock::now() + 10s));
    EXPECT_EQ(service.log.ended.Len(), 0u) << "each connection ended exactly once";
    EXPECT_EQ(metrics.disconnects_total[DisconnectReason::kPanic].Value(), 1u);
  });
}

}  // namespace
}  // namespace greenline::server
