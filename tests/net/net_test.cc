// Tests for greenline/net.h over real loopback sockets, each one run on both netpoller backends
// (epoll, and io_uring where the kernel lets us set up a ring; skipped with the reason otherwise):
// echo round trips on one and two workers, the addresses each end reports, IPv6 loopback, 8,000
// concurrent echo connections, goroutines migrating between workers mid-conversation (alone, and a
// reader and a writer per connection), concurrent readers and acceptors, a reader that stops (its
// data stays in the kernel), 25 MiB left unread across 800 connections, handles that close on last
// release or after their runtime has gone, Dial by name; read and write deadlines (expiring,
// staying expired, moved, cleared, set while a call waits, racing the data by the hundred thousand
// without losing a byte, on Dial); Close waking a blocked Read, Write and Accept, and racing a
// reader and a writer; peer reset, half-close, EOF, a 16 MiB write to a slow reader; accepting with
// no descriptors left (in a child with a low RLIMIT_NOFILE: clients turned away, no spinning,
// recovery); idle connections that must not look like a deadlock; the "IO wait" wait reason;
// refused dials, busy ports, bad addresses, calls off a goroutine, and Go's error texts. Every test
// checks that the runtime ran the backend it asked for, and that no descriptor outlives the
// runtime.
#include "greenline/net.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "greenline/dump.h"
#include "greenline/goroutine.h"
#include "greenline/mutex.h"
#include "greenline/runtime.h"
#include "greenline/semaphore.h"
#include "greenline/state.h"
#include "greenline/wait_group.h"
#include "tests/util/child_process.h"
#include "tests/util/goroutines.h"
#include "tests/util/net.h"

namespace greenline {
namespace {

using namespace std::chrono_literals;
using net::Addr;
using net::Conn;
using net::Deadline;
using net::Error;
using net::IoResult;
using net::Listener;
using std::chrono::steady_clock;
using testing::AwaitParked;
using testing::ConnPair;
using testing::FillPattern;
using testing::MakeConnPair;
using testing::PatternMismatch;
using testing::ReadFull;
using testing::Say;

constexpr size_t kNpos = std::string::npos;

double Millis(steady_clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

// Listens on `address`, failing the test (and returning an invalid listener) if it cannot.
Listener ListenOrFail(std::string_view address = "127.0.0.1:0") {
  std::pair<Listener, Error> r = net::Listen("tcp", address);
  EXPECT_FALSE(r.second) << "listen " << address << ": " << r.second.String();
  return r.first;
}

Conn DialOrFail(const std::string& address) {
  std::pair<Conn, Error> r = net::Dial("tcp", address);
  EXPECT_FALSE(r.second) << "dial " << address << ": " << r.second.String();
  return r.first;
}

// Runs `call` on a goroutine of its own: `returned` is Add()ed now, and Done() when it returns.
template <class F>
void GoCall(WaitGroup& returned, F call) {
  returned.Add(1);
  Go([&returned, call = std::move(call)]() mutable {
    call();
    returned.Done();
  });
}

// Writes stream `seed`'s bytes [offset, offset + size) from another goroutine while this one
// reads them back from `conn` (an echo), so neither side waits on a full socket buffer. True if
// every byte came back in order.
bool RoundTrip(const Conn& conn, uint64_t seed, uint64_t offset, size_t size) {
  std::vector<char> out(size), in(size);
  FillPattern(seed, offset, out.data(), size);
  IoResult written;
  WaitGroup wrote;
  GoCall(wrote, [&] { written = conn.Write(out.data(), size); });
  Error err;
  bool read = ReadFull(conn, in.data(), size, &err);
  wrote.Wait();
  EXPECT_FALSE(written.err) << written.err.String();
  EXPECT_EQ(written.n, size);
  EXPECT_TRUE(read) << "read: " << err.String();
  size_t bad = PatternMismatch(seed, offset, in.data(), size);
  EXPECT_EQ(bad, size) << "first wrong byte at " << bad << " of " << size;
  return read && !written.err && bad == size;
}

// Turns a call that never returns into a test failure: unless destroyed within `limit`, it fails
// the test and runs `on_expiry` (which should close what the call waits on, so it returns).
class Watchdog {
 public:
  Watchdog(std::chrono::milliseconds limit, std::string what, std::function<void()> on_expiry) {
    finished_.Add(1);
    Go([this, limit, what = std::move(what), on_expiry = std::move(on_expiry)] {
      steady_clock::time_point end = steady_clock::now() + limit;
      while (!stop_.load()) {
        if (steady_clock::now() >= end) {
          ADD_FAILURE() << "still waiting after " << limit.count() << " ms: " << what;
          on_expiry();
          break;
        }
        Sleep(5ms);
      }
      finished_.Done();
    });
  }
  ~Watchdog() {
    stop_ = true;
    finished_.Wait();
  }

 private:
  std::atomic<bool> stop_{false};
  WaitGroup finished_;
};

// Tests run on each backend. SetUp skips the io_uring instance where no ring can be set up;
// TearDown checks that the runtime left no descriptor open (the runtime keeps one spare
// descriptor for EMFILE for the life of the process: SetUpTestSuite lets it open first).
class NetTest : public ::testing::TestWithParam<PollerKind> {
 protected:
  static void SetUpTestSuite() {
    greenline::Run([] { ListenOrFail().Close(); }, Poller(PollerKind::kEpoll, 1));
  }

  void SetUp() override {
    if (GetParam() == PollerKind::kIoUring) {
      std::string why = testing::UringUnavailableReason();
      if (!why.empty()) GTEST_SKIP() << "no io_uring poller here: " << why;
    }
    fds_before_ = testing::CountOpenFds();
    fd_list_before_ = testing::DescribeOpenFds();
  }

  void TearDown() override {
    if (fds_before_ < 0) return;
    EXPECT_EQ(testing::CountOpenFds(), fds_before_)
        << "descriptors left open after the runtime stopped.\nbefore:\n"
        << fd_list_before_ << "after:\n"
        << testing::DescribeOpenFds();
  }

  static Options Poller(PollerKind kind, int procs) {
    Options o;
    o.max_procs = procs;
    o.poller = kind;
    return o;
  }
  Options Opts(int procs) const { return Poller(GetParam(), procs); }

  // Runs `body` as the main goroutine of a runtime on this test's backend with `procs` workers,
  // and checks that the runtime used that backend.
  void RunNet(int procs, const std::function<void()>& body) {
    std::string poller;
    greenline::Run(
        [&] {
          poller = net::PollerName();
          body();
        },
        Opts(procs));
    EXPECT_EQ(poller, testing::PollerNameOf(GetParam()));
  }

 private:
  int fds_before_ = -1;
  std::string fd_list_before_;
};

INSTANTIATE_TEST_SUITE_P(Pollers, NetTest,
                         ::testing::Values(PollerKind::kEpoll, PollerKind::kIoUring),
                         testing::PollerParamName);

// ---- Connections and round trips ---------------------------------------------------------------

TEST_P(NetTest, EchoRoundTripsOnOneAndTwoWorkers) {
  for (int procs : {1, 2}) {
    SCOPED_TRACE(std::to_string(procs) + " worker(s)");
    RunNet(procs, [&] {
      Listener ln = ListenOrFail();
      ASSERT_TRUE(ln.valid());
      WaitGroup server_done;
      testing::GoEchoServer(ln, server_done);
      Conn c = DialOrFail(ln.LocalAddr().String());
      if (c.valid()) {
        uint64_t offset = 0;
        for (size_t size : {1, 2, 100, 1460, 4096, 65536, 1 << 20}) {
          for (int round = 0; round < 10 && RoundTrip(c, 7, offset, size); ++round) offset += size;
        }
        EXPECT_FALSE(c.Close());
      }
      EXPECT_FALSE(ln.Close());
      server_done.Wait();
    });
  }
}

TEST_P(NetTest, AddressesNameBothEndsOfTheConnection) {
  RunNet(2, [&] {
    Listener ln = ListenOrFail();
    ASSERT_TRUE(ln.valid());
    std::string laddr = ln.LocalAddr().String();
    EXPECT_EQ(laddr.rfind("127.0.0.1:", 0), 0u) << laddr;
    EXPECT_NE(ln.LocalAddr().port(), 0) << "listening on :0 picks a port";
    EXPECT_EQ(ln.LocalAddr().family(), AF_INET);
    EXPECT_GE(ln.Fd(), 0);
    // A name is resolved with getaddrinfo on the blocking pool ("localhost" is in /etc/hosts).
    WaitGroup accepted;
    GoCall(accepted, [&] { ln.Accept().first.Close(); });
    std::pair<Conn, Error> byname =
        net::Dial("tcp4", "localhost:" + std::to_string(ln.LocalAddr().port()));
    EXPECT_FALSE(byname.second) << byname.second.String();
    EXPECT_EQ(byname.first.RemoteAddr().String(), laddr);
    byname.first.Close();
    accepted.Wait();
    ln.Close();

    ConnPair p = MakeConnPair();
    ASSERT_TRUE(p.client.valid() && p.server.valid());
    EXPECT_EQ(p.client.RemoteAddr().String(), p.server.LocalAddr().String());
    EXPECT_EQ(p.client.LocalAddr().String(), p.server.RemoteAddr().String());
    EXPECT_EQ(p.client.LocalAddr().String().rfind("127.0.0.1:", 0), 0u)
        << p.client.LocalAddr().String();
    EXPECT_NE(p.client.LocalAddr().port(), p.client.RemoteAddr().port());
    EXPECT_FALSE(p.client.LocalAddr().empty());
    EXPECT_TRUE(Addr().empty());
    EXPECT_EQ(Addr().String(), "");
    p.client.Close();
    p.server.Close();
  });
}

TEST_P(NetTest, Ipv6LoopbackEchoes) {
  if (!testing::HostHasIpv6Loopback()) GTEST_SKIP() << "no ::1 on this host";
  for (const char* network : {"tcp", "tcp6"}) {
    SCOPED_TRACE(network);  // on the test's thread: gtest keeps traces per thread
    RunNet(2, [&] {
      std::pair<Listener, Error> l = net::Listen(network, "[::1]:0");
      ASSERT_FALSE(l.second) << l.second.String();
      Listener ln = l.first;
      std::string addr = ln.LocalAddr().String();
      EXPECT_EQ(addr.rfind("[::1]:", 0), 0u) << addr;
      EXPECT_EQ(ln.LocalAddr().family(), AF_INET6);
      WaitGroup server_done;
      testing::GoEchoServer(ln, server_done);
      std::pair<Conn, Error> d = net::Dial(network, addr);
      EXPECT_FALSE(d.second) << d.second.String();
      if (!d.second) {
        EXPECT_EQ(d.first.RemoteAddr().String(), addr);
        EXPECT_EQ(d.first.LocalAddr().String().rfind("[::1]:", 0), 0u)
            << d.first.LocalAddr().String();
        RoundTrip(d.first, 11, 0, 100'000);
        d.first.Close();
      }
      ln.Close();
      server_done.Wait();
    });
  }
}

// 8,000 connections open at once, both ends in this process (16,000 descriptors), each end a
// goroutine: every client's bytes come back to it and to no other.
TEST_P(NetTest, StressEightThousandConcurrentEchoConnections) {
  constexpr int kConns = 8000;
  constexpr size_t kBytes = 1024;
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_max < 16'500) {
    GTEST_SKIP() << "RLIMIT_NOFILE hard limit " << rl.rlim_max << " < 16,500";
  }
  ASSERT_GE(testing::RaiseNofileToHard(), 16'500u);
  RunNet(2, [&] {
    Listener ln = ListenOrFail();
    ASSERT_TRUE(ln.valid());
    std::string addr = ln.LocalAddr().String();
    WaitGroup server_done;
    testing::GoEchoServer(ln, server_done);
    // Not more dials in flight than the listen backlog takes: an overflowing accept queue drops
    // handshakes that the kernel retries only after a second.
    Semaphore dialing(512);
    WaitGroup connected, echoed, clients_done;
    connected.Add(kConns);
    echoed.Add(kConns);
    clients_done.Add(kConns);
    std::atomic<int> verified{0};
    Mutex mu;
    std::string first_error;  // guarded by mu
    auto fail = [&](int i, const std::string& what) {
      mu.Lock();
      if (first_error.empty()) first_error = "connection " + std::to_string(i) + ": " + what;
      mu.Unlock();
    };
    for (int i = 0; i < kConns; ++i) {
      Go([&, i] {
        dialing.Acquire();
        std::pair<Conn, Error> d = net::Dial("tcp", addr);
        dialing.Release();
        Conn c = d.first;
        if (d.second) fail(i, "dial: " + d.second.String());
        // Every client holds its connection until all have dialed and been echoed, so all 16,000
        // descriptors are open at once.
        connected.Done();
        connected.Wait();
        if (c.valid()) {
          c.SetDeadline(steady_clock::now() + 30s);  // a lost byte fails the test, not hangs it
          char out[kBytes], in[kBytes];
          FillPattern(i, 0, out, kBytes);
          Error err;
          IoResult w = c.Write(out, kBytes);
          if (w.err) {
            fail(i, "write: " + w.err.String());
          } else if (!ReadFull(c, in, kBytes, &err)) {
            fail(i, "read: " + err.String());
          } else if (PatternMismatch(i, 0, in, kBytes) != kBytes) {
            fail(i, "wrong bytes echoed");
          } else {
            verified.fetch_add(1);
          }
        }
        echoed.Done();
        echoed.Wait();
        c.Close();
        clients_done.Done();
      });
      if (i % 64 == 0) Yield();  // spawning 8,000 takes milliseconds
    }
    clients_done.Wait();
    ln.Close();
    server_done.Wait();
    EXPECT_EQ(verified.load(), kConns) << first_error;
  });
}

// Goroutines that yield between every read and write migrate between the two workers while their
// sockets stay registered where they were opened: no byte may be lost, doubled or crossed.
TEST_P(NetTest, StressMigratingGoroutinesKeepEveryByteInOrder) {
  constexpr int kConns = 200;
  constexpr int kRounds = 100;
  RunNet(2, [&] {
    Listener ln = ListenOrFail();
    ASSERT_TRUE(ln.valid());
    std::string addr = ln.LocalAddr().String();
    WaitGroup server_done;
    testing::GoEchoServer(ln, server_done, /*yield=*/true);
    WaitGroup clients_done;
    clients_done.Add(kConns);
    std::atomic<int> good_rounds{0};
    for (int i = 0; i < kConns; ++i) {
      Go([&, i] {
        Conn c = DialOrFail(addr);
        c.SetDeadline(steady_clock::now() + 30s);
        uint64_t offset = 0;
        char out[2048], in[2048];
        for (int round = 0; c.valid() && round < kRounds; ++round) {
          size_t size = 1 + (static_cast<size_t>(i) * 131 + round * 977) % sizeof out;
          FillPattern(i, offset, out, size);
          Yield();
          IoResult w = c.Write(out, size);
          Yield();
          Error err;
          if (w.err || !ReadFull(c, in, size, &err)) {
            ADD_FAILURE() << "connection " << i << " round " << round << ": "
                          << (w.err ? w.err.String() : err.String());
            break;
          }
          if (PatternMismatch(i, offset, in, size) != size) {
            ADD_FAILURE() << "connection " << i << " round " << round << ": wrong bytes";
            break;
          }
          offset += size;
          good_rounds.fetch_add(1);
          if (round % 16 == 0) Sleep(100us);
        }
        c.Close();
        clients_done.Done();
      });
    }
    clients_done.Wait();
    ln.Close();
    server_done.Wait();
    EXPECT_EQ(good_rounds.load(), kConns * kRounds);
  });
}

// Four goroutines read one connection at once (allowed: they are served one after the other):
// together they get every byte exactly once, and each sees EOF.
TEST_P(NetTest, ConcurrentReadersShareTheStreamWithoutLosingBytes) {
  constexpr size_t kLen = 4 << 20;
  constexpr int kReaders = 4;
  RunNet(2, [&] {
    ConnPair p = MakeConnPair();
    ASSERT_TRUE(p.client.valid());
    p.server.SetReadDeadline(steady_clock::now() + 20s);
    std::vector<char> out(kLen);
    FillPattern(13, 0, out.data(), kLen);
    std::vector<uint64_t> want(256, 0);
    for (char c : out) ++want[static_cast<uint8_t>(c)];
    std::vector<uint64_t> got[kReaders];
    int eofs = 0;
    Mutex mu;
    WaitGroup readers;
    for (int r = 0; r < kReaders; ++r) {
      got[r].assign(256, 0);
      GoCall(readers, [&, r] {
        char buf[1000];
        for (;;) {
          IoResult res = p.server.Read(buf, sizeof buf);
          for (size_t i = 0; i < res.n; ++i) ++got[r][static_cast<uint8_t>(buf[i])];
          if (res.err) {
            EXPECT_TRUE(res.err.eof()) << res.err.String();
            mu.Lock();
            ++eofs;
            mu.Unlock();
            break;
          }
          if (res.n < 100) Yield();
        }
      });
    }
    IoResult w = p.client.Write(out.data(), kLen);
    EXPECT_FALSE(w.err) << w.err.String();
    EXPECT_FALSE(p.client.CloseWrite());
    readers.Wait();
    EXPECT_EQ(eofs, kReaders);
    std::vector<uint64_t> sum(256, 0);
    for (int r = 0; r < kReaders; ++r) {
      for (int b = 0; b < 256; ++b) sum[b] += got[r][b];
    }
    EXPECT_EQ(sum, want) << "bytes lost or read twice";
    p.client.Close();
    p.server.Close();
  });
}

// Four goroutines accept on one listener: each connection is handed to exactly one of them.
TEST_P(NetTest, ConcurrentAcceptsEachGetADistinctConnection) {
  constexpr int kConns = 200;
  constexpr int kAcceptors = 4;
  RunNet(2, [&] {
    Listener ln = ListenOrFail();
    ASSERT_TRUE(ln.valid());
    std::string addr = ln.LocalAddr().String();
    std::vector<int> seen(kConns, 0);
    Mutex mu;
    WaitGroup acceptors, handlers;
    for (int a = 0; a < kAcceptors; ++a) {
      GoCall(acceptors, [&] {
        for (;;) {
          std::pair<Conn, Error> acc = ln.Accept();
          if (acc.second) {
            EXPECT_TRUE(acc.second.closed()) << acc.second.String();
            break;
          }
          GoCall(handlers, [&, c = acc.first] {
            c.SetReadDeadline(steady_clock::now() + 10s);
            uint32_t id = 0;
            Error err;
            if (ReadFull(c, &id, sizeof id, &err) && id < kConns) {
              mu.Lock();
              ++seen[id];
              mu.Unlock();
            } else {
              ADD_FAILURE() << "no id: " << err.String();
            }
            c.Close();
          });
        }
      });
    }
    WaitGroup clients;
    for (uint32_t i = 0; i < kConns; ++i) {
      GoCall(clients, [&, i] {
        Conn c = DialOrFail(addr);
        EXPECT_FALSE(c.Write(&i, sizeof i).err);
        char b;
        c.SetReadDeadline(steady_clock::now() + 10s);
        EXPECT_TRUE(c.Read(&b, 1).err.eof());  // the handler has counted it and closed
        c.Close();
      });
    }
    clients.Wait();
    ln.Close();
    acceptors.Wait();
    handlers.Wait();
    for (int i = 0; i < kConns; ++i) EXPECT_EQ(seen[i], 1) << "connection " << i;
  });
}

// A reader and a writer goroutine on each connection, each hopping between workers while the I/O
// is in flight: a multishot recv armed on one worker's ring delivers to a reader now running on
// the other, and sends complete on the ring they were queued on. Every byte is checked.
TEST_P(NetTest, StressReaderAndWriterOfOneConnectionMigrateIndependently) {
  constexpr int kConns = 200;
  constexpr int kLines = 100;
  RunNet(2, [&] {
    Listener ln = ListenOrFail();
    ASSERT_TRUE(ln.valid());
    std::string addr = ln.LocalAddr().String();
    WaitGroup server_done, clients;
    testing::GoEchoServer(ln, server_done);
    std::atomic<int> intact{0};
    for (int i = 0; i < kConns; ++i) {
      GoCall(clients, [&, i] {
        Conn c = DialOrFail(addr);
        if (!c.valid()) return;
        c.SetDeadline(steady_clock::now() + 30s);
        WaitGroup wrote;
        GoCall(wrote, [c, i] {
          for (int r = 0; r < kLines; ++r) {
            if (c.Write(std::to_string(i) + ":" + std::to_string(r) + "\n").err) break;
            if (r % 3 == 0) Yield();
            if (r % 17 == 0) Sleep(200us);
          }
        });
        std::string expect, got;
        for (int r = 0; r < kLines; ++r)
          expect += std::to_string(i) + ":" + std::to_string(r) + "\n";
        char buf[97];  // odd size: chunks split across reads
        while (got.size() < expect.size()) {
          IoResult r = c.Read(buf, sizeof buf);
          got.append(buf, r.n);
          if (r.err) {
            ADD_FAILURE() << "connection " << i << ": " << r.err.String();
            break;
          }
          Yield();
        }
        wrote.Wait();
        EXPECT_EQ(got, expect) << "connection " << i;
        if (got == expect) intact.fetch_add(1);
        c.Close();
      });
    }
    clients.Wait();
    ln.Close();
    server_done.Wait();
    EXPECT_EQ(intact.load(), kConns);
  });
}

// A connection may outlive its runtime (a handle kept after Run returned): closing it then
// releases the descriptor and touches nothing of the runtime that is gone.
TEST_P(NetTest, AConnOutlivingItsRuntimeClosesCleanly) {
  Conn kept, kept_server;
  Listener kept_ln;
  RunNet(2, [&] {
    kept_ln = ListenOrFail();
    ConnPair p = MakeConnPair();
    ASSERT_TRUE(p.client.valid());
    EXPECT_FALSE(p.client.Write("x").err);
    char b;
    EXPECT_EQ(p.server.Read(&b, 1).n, 1u);  // io_uring: a receive is armed when Run ends
    kept = p.client;
    kept_server = p.server;
  });
  int fd = kept.Fd();
  int server_fd = kept_server.Fd();
  ASSERT_GE(fd, 0);
  EXPECT_FALSE(kept.Close());
  EXPECT_FALSE(kept_server.Close());
  EXPECT_FALSE(kept_ln.Close());
  EXPECT_EQ(fcntl(fd, F_GETFD), -1) << "the descriptor is closed";
  EXPECT_EQ(fcntl(server_fd, F_GETFD), -1) << "the descriptor with a receive armed is closed";
}

// A handle kept from one Run() into the next names goroutines, rings and buffers of a runtime
// that is gone: the next runtime treats it as closed (no call reaches the old state) and closing
// it still releases its descriptor.
TEST_P(NetTest, AConnFromAnEarlierRuntimeIsClosedInTheNextOne) {
  Conn kept_server;
  RunNet(2, [&] {
    ConnPair p = MakeConnPair();
    ASSERT_TRUE(p.client.valid());
    EXPECT_FALSE(p.client.Write("x").err);
    char b;
    EXPECT_EQ(p.server.Read(&b, 1).n, 1u);  // io_uring: a receive armed on a ring that will go
    kept_server = p.server;
    p.client.Close();
  });
  int fd = kept_server.Fd();
  RunNet(2, [&] {
    char b;
    IoResult r = kept_server.Read(&b, 1);
    EXPECT_TRUE(r.err.closed()) << r.err.String();
    EXPECT_TRUE(kept_server.Write("y").err.closed());
    EXPECT_FALSE(kept_server.Close());
    EXPECT_EQ(fcntl(fd, F_GETFD), -1) << "the descriptor is closed";
  });
}

// A reader that stops reading must not have its socket drained into the runtime's buffers: the
// data stays in the kernel's receive queue (TCP flow control then pushes back on the sender).
TEST_P(NetTest, AConnectionThatStopsReadingLeavesItsDataInTheKernel) {
  RunNet(1, [&] {
    ConnPair p = MakeConnPair();
    ASSERT_TRUE(p.client.valid());
    EXPECT_FALSE(p.client.Write("a").err);
    char b;
    EXPECT_EQ(p.server.Read(&b, 1).n, 1u);  // with io_uring this arms the receive
    std::string mb(1 << 20, 'z');
    p.client.SetWriteDeadline(steady_clock::now() + 2s);
    IoResult w = p.client.Write(mb);
    EXPECT_FALSE(w.err) << w.err.String();
    Sleep(200ms);
    // Bytes still in the kernel: the receiver's queue and the sender's unsent/unacked queue.
    int rcvq = 0, sndq = 0;
    ASSERT_EQ(ioctl(p.server.Fd(), FIONREAD, &rcvq), 0);
    ASSERT_EQ(ioctl(p.client.Fd(), TIOCOUTQ, &sndq), 0);
    long taken = static_cast<long>(mb.size()) - rcvq - sndq;
    // The runtime took at most its per-connection bound: the receive is cancelled past 64 KiB,
    // plus what the kernel delivered before the cancel took effect (~270 KB seen here; the
    // provided-buffer ring holds 4 MiB, and without the bound all 1 MiB would be taken).
    EXPECT_LE(taken, 512 * 1024) << "receive queue " << rcvq << ", send queue " << sndq;
    // And nothing is lost: it all reads back.
    size_t total = 0;
    char buf[8192];
    p.server.SetReadDeadline(steady_clock::now() + 5s);
    while (total < mb.size()) {
      IoResult r = p.server.Read(buf, sizeof buf);
      total += r.n;
      if (r.err) break;
    }
    EXPECT_EQ(total, mb.size());
    p.client.Close();
    p.server.Close();
  });
}

// Readers that have read once (so the io_uring backend keeps a receive armed) then stop, while
// their peers send 32 KiB each: 25 MiB unread in all, far more than the receive buffers the
// backend provides. When the readers resume, every connection's bytes are all there, in order.
TEST_P(NetTest, StressUnreadDataOnManyConnectionsOutlastsTheReceiveBuffers) {
  constexpr int kConns = 800;
  constexpr size_t kBytes = 32 << 10;
  RunNet(2, [&] {
    Listener ln = ListenOrFail();
    ASSERT_TRUE(ln.valid());
    std::string addr = ln.LocalAddr().String();
    WaitGroup started, written, readers, writers;
    started.Add(kConns);
    written.Add(kConns);
    GoCall(readers, [&] {
      for (int i = 0; i < kConns; ++i) {
        std::pair<Conn, Error> acc = ln.Accept();
        if (acc.second) {
          ADD_FAILURE() << acc.second.String();
          for (; i < kConns; ++i) started.Done();
          break;
        }
        GoCall(readers, [&, c = acc.first] {
          c.SetReadDeadline(steady_clock::now() + 30s);
          uint64_t seed = 0;
          std::vector<char> in(kBytes);
          Error err;
          bool ok = ReadFull(c, &seed, sizeof seed, &err);
          started.Done();
          written.Wait();
          ok = ok && ReadFull(c, in.data(), kBytes, &err);
          EXPECT_TRUE(ok) << err.String();
          if (ok) {
            EXPECT_EQ(PatternMismatch(seed, 0, in.data(), kBytes), kBytes);
          }
          c.Close();
        });
        if (i % 64 == 0) Yield();
      }
    });
    for (uint64_t i = 0; i < kConns; ++i) {
      GoCall(writers, [&, i] {
        Conn c = DialOrFail(addr);
        std::vector<char> out(kBytes);
        FillPattern(i, 0, out.data(), kBytes);
        EXPECT_FALSE(c.Write(&i, sizeof i).err);
        started.Wait();
        c.SetWriteDeadline(steady_clock::now() + 30s);
        IoResult w = c.Write(out.data(), kBytes);
        EXPECT_FALSE(w.err) << w.err.String();
        written.Done();
        c.SetReadDeadline(steady_clock::now() + 30s);
        char b;
        EXPECT_TRUE(c.Read(&b, 1).err.eof());
        c.Close();
      });
      if (i % 64 == 0) Yield();
    }
    writers.Wait();
    readers.Wait();
    ln.Close();
  });
}

// Dropping every handle closes the socket (the peer reads EOF); a copy keeps it open.
TEST_P(NetTest, TheLastHandleGoingAwayClosesTheSocket) {
  RunNet(1, [&] {
    ConnPair p = MakeConnPair();
    ASSERT_TRUE(p.client.valid());
    Conn copy = p.client;
    p.client = Conn();
    EXPECT_FALSE(copy.Write("still open").err);
    char buf[10];
    Error err;
    EXPECT_TRUE(ReadFull(p.server, buf, sizeof buf, &err)) << err.String();
    copy = Conn();
    p.server.SetReadDeadline(steady_clock::now() + 5s);
    IoResult r = p.server.Read(buf, sizeof buf);
    EXPECT_TRUE(r.err.eof()) << r.err.String();
    p.server.Close();
  });
}

// ---- Deadlines ---------------------------------------------------------------------------------

TEST_P(NetTest, TimingReadDeadlineExpiresAndStaysExpiredUntilMoved) {
  RunNet(2, [&] {
    ConnPair p = MakeConnPair();
    ASSERT_TRUE(p.client.valid());
    char buf[16];
    steady_clock::time_point t0 = steady_clock::now();
    EXPECT_FALSE(p.client.SetReadDeadline(t0 + 50ms));
    IoResult r = p.client.Read(buf, sizeof buf);
    double waited = Millis(steady_clock::now() - t0);
    EXPECT_TRUE(r.err.timeout()) << r.err.String();
    EXPECT_EQ(r.n, 0u);
    EXPECT_GE(waited, 50) << "a deadline never fires early";
    EXPECT_LT(waited, 2000);
    EXPECT_NE(r.err.String().find("i/o timeout"), kNpos) << r.err.String();
    EXPECT_EQ(r.err.String().rfind("read tcp 127.0.0.1:", 0), 0u) << r.err.String();

    // Later reads fail at once, even with data waiting.
    ASSERT_FALSE(p.server.Write("late").err);
    Sleep(20ms);
    t0 = steady_clock::now();
    r = p.client.Read(buf, sizeof buf);
    EXPECT_TRUE(r.err.timeout()) << "read after the deadline: " << r.err.String();
    EXPECT_EQ(r.n, 0u);
    EXPECT_LT(Millis(steady_clock::now() - t0), 1000);

    // Moving the deadline ahead lets the data through.
    EXPECT_FALSE(p.client.SetReadDeadline(steady_clock::now() + 10s));
    Error err;
    ASSERT_TRUE(ReadFull(p.client, buf, 4, &err)) << err.String();
    EXPECT_EQ(std::string(buf, 4), "late");

    // Expired again, then cleared: a read waits for the peer as long as it takes.
    EXPECT_FALSE(p.client.SetReadDeadline(steady_clock::now() - 1s));
    EXPECT_TRUE(p.client.Read(buf, sizeof buf).err.timeout());
    EXPECT_FALSE(p.client.SetReadDeadline(Deadline{}));
    WaitGroup sent;
    GoCall(sent, [&] {
      Sleep(100ms);
      EXPECT_FALSE(p.server.Write("again").err);
    });
    ASSERT_TRUE(ReadFull(p.client, buf, 5, &err)) << err.String();
    EXPECT_EQ(std::string(buf, 5), "again");
    sent.Wait();
    p.client.Close();
    p.server.Close();
  });
}

// The peer never reads: a write larger than both socket buffers stops at the deadline having
// sent n < len bytes, and exactly those n bytes reach the peer.
TEST_P(NetTest, TimingWriteDeadlineStopsAWriteToAPeerThatNeverReads) {
  constexpr size_t kLen = 64 << 20;  // far beyond loopback's send + receive buffers
  std::vector<char> big(kLen);
  FillPattern(3, 0, big.data(), kLen);
  RunNet(2, [&] {
    ConnPair p = MakeConnPair();
    ASSERT_TRUE(p.client.valid());
    steady_clock::time_point t0 = steady_clock::now();
    EXPECT_FALSE(p.client.SetWriteDeadline(t0 + 100ms));
    IoResult w = p.client.Write(big.data(), kLen);
    double waited = Millis(steady_clock::now() - t0);
    EXPECT_TRUE(w.err.timeout()) << w.err.String();
    EXPECT_GT(w.n, 0u);
    EXPECT_LT(w.n, kLen);
    EXPECT_GE(waited, 100);
    EXPECT_LT(waited, 2000);
    EXPECT_NE(w.err.String().find("i/o timeout"), kNpos) << w.err.String();

    IoResult again = p.client.Write("x");
    EXPECT_TRUE(again.err.timeout()) << again.err.String();
    EXPECT_EQ(again.n, 0u);

    // The peer gets exactly the n bytes the write reported, then EOF.
    EXPECT_FALSE(p.client.Close());
    p.server.SetReadDeadline(steady_clock::now() + 10s);
    std::vector<char> in(1 << 20);
    size_t got = 0;
    for (;;) {
      IoResult r = p.server.Read(in.data(), in.size());
      if (r.n > 0) {
        size_t bad = PatternMismatch(3, got, in.data(), r.n);
        ASSERT_EQ(bad, r.n) << "wrong byte at offset " << got + bad;
        got += r.n;
      }
      if (r.err) {
        EXPECT_TRUE(r.err.eof()) << r.err.String();
        break;
      }
    }
    EXPECT_EQ(got, w.n) << "the peer received a different count than Write reported";
    p.server.Close();
  });
}

TEST_P(NetTest, DeadlineSetWhileAReadWaitsWakesIt) {
  for (int procs : {1, 2}) {
    for (bool past : {true, false}) {
      SCOPED_TRACE(std::to_string(procs) + " worker(s), " +
                   (past ? "deadline in the past" : "deadline 50 ms ahead"));
      RunNet(procs, [&] {
        ConnPair p = MakeConnPair();
        ASSERT_TRUE(p.client.valid());
        Watchdog dog(5000ms, "a Read whose deadline passed", [&] { p.client.Close(); });
        IoResult r;
        WaitGroup done;
        GoCall(done, [&] {
          char buf[16];
          r = p.client.Read(buf, sizeof buf);
        });
        ASSERT_TRUE(AwaitParked(WaitReason::kIOWait, 1));
        steady_clock::time_point t0 = steady_clock::now();
        p.client.SetReadDeadline(past ? t0 - 1s : t0 + 50ms);
        done.Wait();
        double waited = Millis(steady_clock::now() - t0);
        EXPECT_TRUE(r.err.timeout()) << r.err.String();
        if (!past) {
          EXPECT_GE(waited, 50);
        }
        EXPECT_LT(waited, 1000);
        p.client.Close();
        p.server.Close();
      });
    }
  }
}

// Reads and writes with deadlines of a millisecond or two, racing the data: many time out, and a
// timed-out write reports how much went out. Resuming after each timeout, both streams arrive
// whole and in order: no byte is lost to a deadline that fired as the data came (or went).
TEST_P(NetTest, StressDeadlinesRacingWithDataLoseNoBytes) {
  constexpr int kConns = 64;
  constexpr size_t kBytes = 128 << 10;
  RunNet(2, [&] {
    Listener ln = ListenOrFail();
    ASSERT_TRUE(ln.valid());
    std::string addr = ln.LocalAddr().String();
    std::atomic<int> read_timeouts{0}, write_timeouts{0};
    WaitGroup all;
    GoCall(all, [&] {
      for (int i = 0; i < kConns; ++i) {
        std::pair<Conn, Error> acc = ln.Accept();
        if (acc.second) {
          ADD_FAILURE() << acc.second.String();
          break;
        }
        GoCall(all, [&, i, c = acc.first] {  // reads stream `seed` with short deadlines
          uint64_t rng = 0x9e3779b97f4a7c15ULL * (i + 1);
          int small = 8 << 10;  // small buffers: the writer has to wait for this reader
          setsockopt(c.Fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
          uint64_t seed = 0;
          Error err;
          ASSERT_TRUE(ReadFull(c, &seed, sizeof seed, &err)) << err.String();
          size_t got = 0;
          char buf[4096];
          steady_clock::time_point give_up = steady_clock::now() + 30s;
          while (steady_clock::now() < give_up) {
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            c.SetReadDeadline(steady_clock::now() + std::chrono::microseconds(rng % 1500));
            IoResult r = c.Read(buf, 1 + rng % sizeof buf);
            size_t bad = PatternMismatch(seed, got, buf, r.n);
            ASSERT_EQ(bad, r.n) << "connection " << seed << ": wrong byte at " << got + bad;
            got += r.n;
            if (rng % 16 == 0) Sleep(std::chrono::microseconds(rng % 3000));  // writers wait
            if (r.err.timeout()) {
              read_timeouts.fetch_add(1);
            } else if (r.err) {
              EXPECT_TRUE(r.err.eof()) << r.err.String();
              break;
            }
          }
          EXPECT_EQ(got, kBytes) << "connection " << seed;
          c.Close();
        });
      }
    });
    for (uint64_t i = 0; i < kConns; ++i) {
      GoCall(all, [&, i] {  // writes stream i in pieces with short deadlines
        Conn c = DialOrFail(addr);
        ASSERT_TRUE(c.valid());
        int small = 8 << 10;
        setsockopt(c.Fd(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
        ASSERT_FALSE(c.Write(&i, sizeof i).err);
        std::vector<char> out(kBytes);
        FillPattern(i, 0, out.data(), kBytes);
        uint64_t rng = 0xbf58476d1ce4e5b9ULL * (i + 1);
        size_t sent = 0;
        steady_clock::time_point give_up = steady_clock::now() + 30s;
        while (sent < kBytes && steady_clock::now() < give_up) {
          rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
          size_t piece = std::min<size_t>(kBytes - sent, 1 + rng % (64 << 10));
          c.SetWriteDeadline(steady_clock::now() + std::chrono::microseconds(rng % 2000));
          IoResult w = c.Write(out.data() + sent, piece);
          sent += w.n;
          if (w.err.timeout()) {
            write_timeouts.fetch_add(1);
            EXPECT_LT(w.n, piece);
          } else if (w.err) {
            ADD_FAILURE() << "write: " << w.err.String();
            break;
          } else {
            EXPECT_EQ(w.n, piece);
          }
        }
        EXPECT_EQ(sent, kBytes);
        c.SetWriteDeadline(Deadline{});
        EXPECT_FALSE(c.CloseWrite());
        c.SetReadDeadline(steady_clock::now() + 30s);
        char b;
        EXPECT_TRUE(c.Read(&b, 1).err.eof());
        c.Close();
      });
    }
    all.Wait();
    ln.Close();
    std::printf("read timeouts %d, write timeouts %d\n", read_timeouts.load(),
                write_timeouts.load());
    EXPECT_GT(read_timeouts.load(), 0) << "the read deadlines never raced the data";
    EXPECT_GT(write_timeouts.load(), 0) << "the write deadlines never raced the data";
  });
}

TEST_P(NetTest, DialWithAPassedDeadlineTimesOut) {
  RunNet(1, [&] {
    Listener ln = ListenOrFail();
    ASSERT_TRUE(ln.valid());
    std::pair<Conn, Error> d = net::Dial("tcp", ln.LocalAddr().String(), steady_clock::now() - 1ms);
    EXPECT_FALSE(d.first.valid());
    EXPECT_TRUE(d.second.timeout()) << d.second.String();
    EXPECT_NE(d.second.String().find("i/o timeout"), kNpos) << d.second.String();
    // A deadline ahead does not get in the way, nor outlive the dial.
    d = net::Dial("tcp", ln.LocalAddr().String(), steady_clock::now() + 50ms);
    ASSERT_FALSE(d.second) << d.second.String();
    Sleep(100ms);
    EXPECT_FALSE(d.first.Write("x").err) << "the dial deadline stayed on the connection";
    d.first.Close();
    ln.Close();
  });
}

// ---- Close -------------------------------------------------------------------------------------

TEST_P(NetTest, CloseWakesABlockedReadAndLaterCallsFail) {
  for (int procs : {1, 2}) {
    SCOPED_TRACE(std::to_string(procs) + " worker(s)");
    RunNet(procs, [&] {
      ConnPair p = MakeConnPair();
      ASSERT_TRUE(p.client.valid());
      IoResult r;
      WaitGroup done;
      GoCall(done, [&] {
        char buf[16];
        r = p.client.Read(buf, sizeof buf);
      });
      ASSERT_TRUE(AwaitParked(WaitReason::kIOWait, 1));
      {
        Watchdog dog(5000ms, "a Read on a closed connection", [&] { p.server.Write("x"); });
        EXPECT_FALSE(p.client.Close());
        done.Wait();
      }
      EXPECT_TRUE(r.err.closed()) << r.err.String();
      EXPECT_NE(r.err.String().find("use of closed network connection"), kNpos) << r.err.String();
      Error again = p.client.Close();
      EXPECT_TRUE(again.closed()) << "closing twice: " << again.String();
      char buf[4];
      EXPECT_TRUE(p.client.Read(buf, sizeof buf).err.closed());
      EXPECT_TRUE(p.client.Write("x").err.closed());
      EXPECT_TRUE(p.client.SetDeadline(steady_clock::now()).closed());
      // The peer sees the connection end.
      p.server.SetReadDeadline(steady_clock::now() + 5s);
      EXPECT_TRUE(p.server.Read(buf, sizeof buf).err.eof());
      p.server.Close();
    });
  }
}

TEST_P(NetTest, CloseWakesABlockedWrite) {
  std::vector<char> big(64 << 20);
  RunNet(2, [&] {
    ConnPair p = MakeConnPair();
    ASSERT_TRUE(p.client.valid());
    IoResult w;
    WaitGroup done;
    GoCall(done, [&] { w = p.client.Write(big.data(), big.size()); });
    ASSERT_TRUE(AwaitParked(WaitReason::kIOWait, 1));
    {
      Watchdog dog(5000ms, "a Write on a closed connection", [&] { p.server.Close(); });
      EXPECT_FALSE(p.client.Close());
      done.Wait();
    }
    EXPECT_TRUE(w.err.closed()) << w.err.String();
    EXPECT_LT(w.n, big.size());
    p.server.Close();
  });
}

TEST_P(NetTest, CloseWakesABlockedAccept) {
  for (int procs : {1, 2}) {
    SCOPED_TRACE(std::to_string(procs) + " worker(s)");
    RunNet(procs, [&] {
      Listener ln = ListenOrFail();
      ASSERT_TRUE(ln.valid());
      std::string addr = ln.LocalAddr().String();
      Error err;
      WaitGroup done;
      GoCall(done, [&] { err = ln.Accept().second; });
      ASSERT_TRUE(AwaitParked(WaitReason::kIOWait, 1));
      {
        Watchdog dog(5000ms, "an Accept on a closed listener", [&] { net::Dial("tcp", addr); });
        EXPECT_FALSE(ln.Close());
        done.Wait();
      }
      EXPECT_TRUE(err.closed()) << err.String();
      EXPECT_NE(err.String().find("use of closed network connection"), kNpos) << err.String();
      EXPECT_TRUE(ln.Close().closed()) << "closing twice";
      EXPECT_TRUE(ln.Accept().second.closed());
    });
  }
}

// Close races with a reader and a writer on the same connection (data flowing both ways through
// an echo server) on 300 connections at once: every call returns, with closed().
TEST_P(NetTest, StressCloseRacesWithReadsAndWrites) {
  constexpr int kConns = 300;
  RunNet(2, [&] {
    Listener ln = ListenOrFail();
    ASSERT_TRUE(ln.valid());
    std::string addr = ln.LocalAddr().String();
    WaitGroup server_done, clients;
    testing::GoEchoServer(ln, server_done);
    for (int i = 0; i < kConns; ++i) {
      GoCall(clients, [&, i] {
        Conn c = DialOrFail(addr);
        if (!c.valid()) return;
        WaitGroup calls;
        GoCall(calls, [c] {
          char buf[4096];
          Error err;
          while (!(err = c.Read(buf, sizeof buf).err)) {
          }
          EXPECT_TRUE(err.closed()) << "read: " << err.String();
        });
        GoCall(calls, [c, i] {
          char buf[4096];
          FillPattern(i, 0, buf, sizeof buf);
          Error err;
          while (!(err = c.Write(buf, sizeof buf).err)) {
          }
          EXPECT_TRUE(err.closed()) << "write: " << err.String();
        });
        Sleep(std::chrono::microseconds(i % 7 * 300));
        EXPECT_FALSE(c.Close());
        calls.Wait();
      });
    }
    clients.Wait();
    ln.Close();
    server_done.Wait();
  });
}

// ---- How connections end -----------------------------------------------------------------------

// An abortive close (SO_LINGER {1, 0}) sends RST. Linux hands out the data that arrived before the
// RST first, then reports ECONNRESET once: so a reader sees "abc", then reset(), whether or not the
// RST came before its first read.
TEST_P(NetTest, PeerResetIsReportedAfterTheDataSentBeforeIt) {
  for (bool parked : {false, true}) {
    SCOPED_TRACE(parked ? "reader parked when the RST arrives" : "RST there before the read");
    RunNet(2, [&] {
      ConnPair p = MakeConnPair();
      ASSERT_TRUE(p.client.valid());
      p.client.SetReadDeadline(steady_clock::now() + 5s);  // a missed RST fails, not hangs
      std::string got;
      Error err;
      WaitGroup done;
      GoCall(done, [&] {
        char buf[16];
        for (;;) {
          IoResult r = p.client.Read(buf, sizeof buf);
          got.append(buf, r.n);
          if (r.err) {
            err = r.err;
            break;
          }
        }
      });
      if (parked) {
        ASSERT_TRUE(AwaitParked(WaitReason::kIOWait, 1));
      }
      ASSERT_FALSE(p.server.Write("abc").err);
      linger lg{1, 0};
      ASSERT_EQ(setsockopt(p.server.Fd(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
      EXPECT_FALSE(p.server.Close());
      done.Wait();
      EXPECT_EQ(got, "abc");
      EXPECT_TRUE(err.reset()) << err.String();
      EXPECT_EQ(err.errnum(), ECONNRESET);
      EXPECT_NE(err.String().find("read tcp 127.0.0.1:"), kNpos) << err.String();
      EXPECT_NE(err.String().find(": connection reset by peer"), kNpos) << err.String();
      p.client.Close();
    });
  }
}

// CloseWrite sends FIN: the peer reads everything, then EOF, and can still answer; the half-closed
// side reads the answer, but may not write any more.
TEST_P(NetTest, HalfCloseDeliversEverythingThenEofAndTheReplyStillFlows) {
  constexpr size_t kLen = 300'000;
  RunNet(2, [&] {
    ConnPair p = MakeConnPair();
    ASSERT_TRUE(p.client.valid());
    p.client.SetDeadline(steady_clock::now() + 10s);
    p.server.SetDeadline(steady_clock::now() + 10s);
    WaitGroup served;
    GoCall(served, [&] {
      std::vector<char> in(kLen + 1);
      size_t got = 0;
      Error err;
      for (;;) {
        IoResult r = p.server.Read(in.data() + got, in.size() - got);
        got += r.n;
        if (r.err) {
          err = r.err;
          break;
        }
      }
      EXPECT_TRUE(err.eof()) << err.String();
      EXPECT_EQ(err.String(), "EOF");
      EXPECT_EQ(got, kLen);
      EXPECT_EQ(PatternMismatch(5, 0, in.data(), got), got);
      EXPECT_FALSE(p.server.Write("got " + std::to_string(got)).err);
      EXPECT_FALSE(p.server.Close());
    });
    std::vector<char> out(kLen);
    FillPattern(5, 0, out.data(), kLen);
    IoResult w = p.client.Write(out.data(), kLen);
    EXPECT_FALSE(w.err) << w.err.String();
    EXPECT_FALSE(p.client.CloseWrite());
    std::string reply;
    char buf[64];
    Error err;
    for (;;) {
      IoResult r = p.client.Read(buf, sizeof buf);
      reply.append(buf, r.n);
      if (r.err) {
        err = r.err;
        break;
      }
    }
    EXPECT_EQ(reply, "got " + std::to_string(kLen));
    EXPECT_TRUE(err.eof()) << err.String();
    served.Wait();
    // Writing after CloseWrite fails (EPIPE; and the process gets no SIGPIPE).
    IoResult late = p.client.Write("x");
    EXPECT_TRUE(late.err) << "write after CloseWrite succeeded";
    EXPECT_EQ(late.err.kind(), Error::Kind::kPipe) << late.err.String();
    p.client.Close();
  });
}

// One Write of 16 MiB to a reader that starts late and reads in small pieces, pausing now and
// then: the write parks and resumes many times, and every byte arrives once, in order.
TEST_P(NetTest, LargeWriteToASlowReaderArrivesIntactAndInOrder) {
  constexpr size_t kLen = 16 << 20;
  std::vector<char> out(kLen);
  FillPattern(9, 0, out.data(), kLen);
  RunNet(2, [&] {
    ConnPair p = MakeConnPair();
    ASSERT_TRUE(p.client.valid());
    p.client.SetDeadline(steady_clock::now() + 30s);
    p.server.SetDeadline(steady_clock::now() + 30s);
    IoResult w;
    WaitGroup wrote;
    GoCall(wrote, [&] { w = p.server.Write(out.data(), kLen); });
    Sleep(50ms);  // let the buffers fill and the writer park
    char buf[997];
    size_t got = 0;
    size_t next_pause = 1 << 20;
    while (got < kLen) {
      IoResult r = p.client.Read(buf, sizeof buf);
      size_t bad = PatternMismatch(9, got, buf, r.n);
      ASSERT_EQ(bad, r.n) << "wrong byte at offset " << got + bad;
      got += r.n;
      if (r.err) {
        ADD_FAILURE() << "read after " << got << " bytes: " << r.err.String();
        break;
      }
      if (got >= next_pause) {
        Sleep(1ms);
        next_pause += 1 << 20;
      }
    }
    wrote.Wait();
    EXPECT_FALSE(w.err) << w.err.String();
    EXPECT_EQ(w.n, kLen);
    EXPECT_EQ(got, kLen);
    p.server.Close();
    char extra;
    EXPECT_TRUE(p.client.Read(&extra, 1).err.eof()) << "bytes beyond the 16 MiB";
    p.client.Close();
  });
}

// A goroutine that writes in a loop to a socket with room never waits for the network: on io_uring
// its sends go out directly while nothing else is runnable, and every 64th goes through the ring,
// so the worker still reaps its other sockets' completions and their goroutines get to run long
// before the writer is done.
TEST_P(NetTest, AWriterInALoopLetsTheWorkerReapOtherSockets) {
  if (GetParam() == PollerKind::kEpoll) {
    GTEST_SKIP() << "epoll's Write parks only on EAGAIN: a writer with room holds its worker "
                    "until it yields (cooperative scheduling; preemption is issue 21's)";
  }
  constexpr int kWrites = 2000;  // 16 bytes each: 32 KB, which the socket's buffers hold
  RunNet(1, [&] {
    ConnPair busy = MakeConnPair();
    ConnPair other = MakeConnPair();
    ASSERT_TRUE(busy.client.valid());
    ASSERT_TRUE(other.client.valid());
    std::atomic<int> written{0};
    int written_when_read = -1;
    WaitGroup done;
    GoCall(done, [&] {
      char c;
      IoResult r = other.client.Read(&c, 1);  // parks: its recv is armed on the ring
      EXPECT_EQ(r.n, 1u) << r.err.String();
      written_when_read = written.load();
    });
    greenline::Yield();  // the reader arms its recv and parks
    ASSERT_FALSE(other.server.Write("x", 1).err);
    GoCall(done, [&] {
      char line[16];
      std::memset(line, 'w', sizeof line);
      for (int i = 0; i < kWrites; ++i) {
        IoResult w = busy.server.Write(line, sizeof line);
        ASSERT_FALSE(w.err) << w.err.String();
        written.store(i + 1);
      }
    });
    done.Wait();
    EXPECT_GE(written_when_read, 0);
    EXPECT_LT(written_when_read, kWrites / 2) << "the reader ran only after the writer had sent "
                                              << written_when_read << " of " << kWrites << " lines";
    busy.client.Close();
    busy.server.Close();
    other.client.Close();
    other.server.Close();
  });
}

// ---- Running out of descriptors ----------------------------------------------------------------

// True once `n` worker threads are running: each names itself "greenline-wN" once its poller is set
// up (runtime/sched/scheduler.cc, WorkerThread). Sleeps in 1 ms steps, about 5 s at most.
bool AwaitWorkerThreads(int n) {
  for (int attempt = 0; attempt < 5000; ++attempt) {
    int named = 0;
    if (DIR* d = opendir("/proc/self/task")) {
      while (dirent* e = readdir(d)) {
        std::string comm_path = std::string("/proc/self/task/") + e->d_name + "/comm";
        if (FILE* f = std::fopen(comm_path.c_str(), "r")) {
          char comm[32] = {};
          if (std::fgets(comm, sizeof comm, f) != nullptr &&
              std::strncmp(comm, "greenline-w", 11) == 0) {
            ++named;
          }
          std::fclose(f);
        }
      }
      closedir(d);
    }
    if (named >= n) return true;
    Sleep(1ms);
  }
  return false;
}

// In a child with RLIMIT_NOFILE lowered to leave room for about a dozen accepted connections,
// raw clients (their sockets made before the limit dropped, so only the server runs short)
// connect and send "ping". Those accepted are echoed; the rest must be turned away (EOF or reset),
// not left hanging; the listener must not burn CPU while out of descriptors; and once some
// connections close, new clients are accepted and served. The child prints "FAIL: ..." lines.
void AcceptWithoutDescriptors() {
  constexpr int kFirst = 40;  // more than the room left
  constexpr int kDuring = 8;  // connect while the CPU time is measured
  constexpr int kLater = 4;   // connect after connections have closed
  constexpr int kClose = 6;   // accepted connections closed to make room
  constexpr int kRoom = 12;   // descriptors left for the server to accept into
  auto fail = [](const std::string& what) { Say("FAIL: %s", what.c_str()); };
  // Run() starts the main goroutine before every worker has set up its poller (an io_uring ring is
  // a descriptor): lowering the limit before they have is a fatal error, not what this tests.
  if (!AwaitWorkerThreads(MaxProcs())) return fail("workers did not start");

  Listener ln = ListenOrFail();
  if (!ln.valid()) return fail("listen");
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  to.sin_port = htons(ln.LocalAddr().port());
  // One connection through its whole life (accept, echo, close) while descriptors are plenty:
  // UBSan checks a type's vptr the first time through a pipe(2), which fails once descriptors run
  // out (runtime/HACKING.md); later checks hit its cache. On a listener of its own: io_uring's
  // accept reads RLIMIT_NOFILE when it is armed, so `ln` must not accept before the limit drops.
  {
    int open_before = testing::CountOpenFds();
    Listener warm = ListenOrFail();
    WaitGroup served;
    GoCall(served, [warm] { testing::EchoConn(warm.Accept().first); });
    sockaddr_in warm_to = to;
    warm_to.sin_port = htons(warm.LocalAddr().port());
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    char buf[4];
    bool echoed = connect(fd, reinterpret_cast<sockaddr*>(&warm_to), sizeof warm_to) == 0 &&
                  write(fd, "ping", 4) == 4 && Blocking([&] {
                    pollfd pfd{fd, POLLIN, 0};
                    return poll(&pfd, 1, 5000) == 1 && read(fd, buf, sizeof buf) == 4;
                  });
    close(fd);
    served.Wait();
    warm.Close();
    if (!echoed) return fail("warm-up round trip");
    // io_uring closes a descriptor once its cancelled operations complete: wait for that, so the
    // room left below is exact.
    for (int i = 0; i < 1000 && testing::CountOpenFds() > open_before; ++i) Sleep(1ms);
  }

  std::vector<int> clients;
  for (int i = 0; i < kFirst + kDuring + kLater; ++i) {
    clients.push_back(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  }
  // The limit that leaves exactly kRoom free descriptor numbers (new descriptors take the lowest
  // free number below the limit; those open above it stay usable).
  int limit = 0;
  for (int free_slots = 0; free_slots < kRoom; ++limit) {
    if (fcntl(limit, F_GETFD) == -1) ++free_slots;
  }
  rlimit rl{};
  rl.rlim_cur = rl.rlim_max = static_cast<rlim_t>(limit);
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0) return fail("setrlimit");
  Say("limit=%d open=%d", static_cast<int>(rl.rlim_cur), testing::CountOpenFds());

  std::atomic<int> accepted{0}, open_served{0};
  WaitGroup server_done;
  GoCall(server_done, [&] {
    for (;;) {
      std::pair<Conn, Error> a = ln.Accept();
      if (a.second) {
        if (!a.second.closed()) fail("accept: " + a.second.String());
        break;
      }
      accepted.fetch_add(1);
      open_served.fetch_add(1);
      server_done.Add(1);
      Conn c = a.first;
      Go([&, c] {
        testing::EchoConn(c);
        open_served.fetch_sub(1);
        server_done.Done();
      });
    }
  });

  // Connects clients [from, to) and sends "ping"; then waits (on the blocking pool) until each is
  // echoed (served), or ends with EOF or reset (turned away), or `wait` passes (hung).
  struct Outcome {
    int served = 0, turned_away = 0, hung = 0;
    std::vector<int> served_clients;  // indexes into `clients`
  };
  auto run_clients = [&](int from, int until, std::chrono::milliseconds wait) {
    for (int i = from; i < until; ++i) {
      if (connect(clients[i], reinterpret_cast<sockaddr*>(&to), sizeof to) != 0 ||
          write(clients[i], "ping", 4) != 4) {
        fail("client " + std::to_string(i) + ": " + std::strerror(errno));
      }
    }
    return Blocking([&] {
      Outcome o;
      steady_clock::time_point end = steady_clock::now() + wait;
      for (int i = from; i < until; ++i) {
        char buf[8];
        size_t got = 0;
        for (;;) {
          int left = static_cast<int>(
              std::chrono::duration_cast<std::chrono::milliseconds>(end - steady_clock::now())
                  .count());
          pollfd pfd{clients[i], POLLIN, 0};
          if (left <= 0 || poll(&pfd, 1, left) != 1) {
            ++o.hung;
            break;
          }
          ssize_t n = read(clients[i], buf + got, sizeof buf - got);
          if (n <= 0) {
            ++o.turned_away;
            break;
          }
          got += static_cast<size_t>(n);
          if (got >= 4) {
            ++o.served;
            o.served_clients.push_back(i);
            break;
          }
        }
      }
      return o;
    });
  };

  Outcome first = run_clients(0, kFirst, 5000ms);
  Say("first: served=%d turned_away=%d hung=%d", first.served, first.turned_away, first.hung);
  if (first.hung != 0) fail("clients left hanging while the server had no descriptors");
  if (first.served == 0 || first.served > kRoom) fail("served count out of range");
  if (first.turned_away == 0) fail("no client was turned away");

  // Out of descriptors with clients still arriving: the listener backs off instead of spinning.
  rusage before{}, after{};
  getrusage(RUSAGE_SELF, &before);
  steady_clock::time_point t0 = steady_clock::now();
  Outcome during = run_clients(kFirst, kFirst + kDuring, 3000ms);
  Sleep(1s - (steady_clock::now() - t0));
  getrusage(RUSAGE_SELF, &after);
  auto cpu_ms = [](const rusage& r) {
    return (r.ru_utime.tv_sec + r.ru_stime.tv_sec) * 1000.0 +
           (r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1000.0;
  };
  double wall = Millis(steady_clock::now() - t0);
  double cpu = cpu_ms(after) - cpu_ms(before);
  Say("during: served=%d turned_away=%d hung=%d cpu=%.0fms wall=%.0fms", during.served,
      during.turned_away, during.hung, cpu, wall);
  if (during.hung != 0) fail("clients left hanging while out of descriptors");
  if (during.served != 0) fail("served clients with no descriptor to serve them with");
  if (cpu > 0.3 * wall) fail("the listener spins while out of descriptors");

  // Freeing descriptors: the listener serves new clients again.
  int open_before = open_served.load();
  // (Marked closed: the server reuses the numbers, and must not have them closed under it.)
  for (int i = 0; i < kClose && i < static_cast<int>(first.served_clients.size()); ++i) {
    close(clients[first.served_clients[i]]);
    clients[first.served_clients[i]] = -1;
  }
  for (int i = 0; i < 500 && open_served.load() > open_before - kClose; ++i) Sleep(10ms);
  if (open_served.load() > open_before - kClose) fail("closed connections did not end");
  Outcome later = run_clients(kFirst + kDuring, kFirst + kDuring + kLater, 5000ms);
  Say("later: served=%d turned_away=%d hung=%d", later.served, later.turned_away, later.hung);
  if (later.served != kLater) fail("new clients not served after descriptors freed up");

  for (int fd : clients) {
    if (fd >= 0) close(fd);
  }
  ln.Close();
  server_done.Wait();
  Say("done");
}

TEST_P(NetTest, AcceptSurvivesRunningOutOfDescriptors) {
  testing::ChildResult r =
      testing::RunRuntimeInChild([] { AcceptWithoutDescriptors(); }, Opts(2), 30);
  ASSERT_TRUE(r.exited) << "signal " << r.signal << (r.timed_out ? " (timed out)" : "") << "\n"
                        << r.output;
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.find("FAIL"), kNpos) << r.output;
  EXPECT_NE(r.output.find("\ndone\n"), kNpos) << r.output;
  // Logged once per episode, not once per failed accept.
  size_t logs = 0;
  for (size_t at = r.output.find("too many open files"); at != kNpos;
       at = r.output.find("too many open files", at + 1)) {
    ++logs;
  }
  EXPECT_GE(logs, 1u) << r.output;
  EXPECT_LE(logs, 4u) << r.output;
}

// ---- Idle connections and wait reasons ---------------------------------------------------------

// 500 connections idle with a goroutine parked in Read on each end's server side, the acceptor
// parked in Accept, and the main goroutine in WaitGroup::Wait: no goroutine can run, but the
// network can wake them, so this is not a deadlock. A plain thread connects 300 ms later and
// sends the byte that releases main.
void IdleConnections() {
  constexpr int kConns = 500;
  Listener ln = ListenOrFail();
  if (!ln.valid()) return;
  uint16_t port = ln.LocalAddr().port();
  WaitGroup release, readers_done;
  release.Add(1);
  GoCall(readers_done, [&] {
    for (int i = 0; i < kConns + 1; ++i) {
      std::pair<Conn, Error> a = ln.Accept();
      if (a.second) break;
      readers_done.Add(1);
      Conn c = a.first;
      Go([&, c] {
        char buf[16];
        for (;;) {
          IoResult r = c.Read(buf, sizeof buf);
          if (r.n > 0) release.Done();
          if (r.err) break;
        }
        c.Close();
        readers_done.Done();
      });
    }
  });
  std::vector<Conn> clients;
  for (int i = 0; i < kConns; ++i)
    clients.push_back(DialOrFail("127.0.0.1:" + std::to_string(port)));
  if (!AwaitParked(WaitReason::kIOWait, kConns + 1)) Say("FAIL: readers not parked");
  std::thread waker([port] {
    std::this_thread::sleep_for(300ms);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    to.sin_port = htons(port);
    if (connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0 || write(fd, "!", 1) != 1) {
      Say("FAIL: waker: %s", std::strerror(errno));
    }
    close(fd);
  });
  steady_clock::time_point t0 = steady_clock::now();
  release.Wait();
  Say("waited_ms=%.0f", Millis(steady_clock::now() - t0));
  Blocking([&] { waker.join(); });
  for (const Conn& c : clients) c.Close();
  ln.Close();
  readers_done.Wait();
  Say("done");
}

TEST_P(NetTest, IdleConnectionsParkedInReadAreNotADeadlock) {
  for (int procs : {1, 2}) {
    SCOPED_TRACE(std::to_string(procs) + " worker(s)");
    testing::ChildResult r = testing::RunRuntimeInChild([] { IdleConnections(); }, Opts(procs), 30);
    EXPECT_TRUE(r.exited && r.exit_code == 0)
        << "exit " << r.exit_code << " signal " << r.signal << "\n"
        << r.output;
    EXPECT_EQ(r.output.find("deadlock"), kNpos) << r.output;
    EXPECT_EQ(r.output.find("FAIL"), kNpos) << r.output;
    EXPECT_NE(r.output.find("\ndone\n"), kNpos) << r.output;
    size_t at = r.output.find("waited_ms=");
    ASSERT_NE(at, kNpos) << r.output;
    EXPECT_GE(std::stod(r.output.substr(at + 10)), 250) << "released before the waker ran";
  }
}

// Goroutines parked in Read and in Accept wait in "IO wait": counted so by ReadStateCounts (and
// not as blocking), and shown so in the goroutine dump.
TEST_P(NetTest, GoroutinesParkedInReadAndAcceptAreInIoWait) {
  constexpr int kReaders = 20;
  RunNet(2, [&] {
    std::vector<ConnPair> pairs;
    for (int i = 0; i < kReaders; ++i) pairs.push_back(MakeConnPair());
    WaitGroup done;
    for (const ConnPair& p : pairs) {
      GoCall(done, [c = p.server] {
        char buf[16];
        while (!c.Read(buf, sizeof buf).err) {
        }
      });
    }
    Listener ln = ListenOrFail();
    GoCall(done, [ln] { EXPECT_TRUE(ln.Accept().second.closed()); });
    EXPECT_TRUE(AwaitParked(WaitReason::kIOWait, kReaders + 1));
    StateCounts counts = ReadStateCounts();
    EXPECT_EQ(counts.by_reason[static_cast<int>(WaitReason::kIOWait)], kReaders + 1);
    EXPECT_EQ(counts.blocking, 0) << "IO wait is a running-class wait";
    EXPECT_EQ(WaitReasonName(WaitReason::kIOWait), "IO wait");

    int fd = memfd_create("dump", MFD_CLOEXEC);  // a file: a pipe could fill before we read it
    ASSERT_GE(fd, 0);
    Blocking([&] { WriteGoroutineDump(fd); });
    std::string dump(static_cast<size_t>(lseek(fd, 0, SEEK_END)), '\0');
    EXPECT_EQ(pread(fd, dump.data(), dump.size(), 0), static_cast<ssize_t>(dump.size()));
    close(fd);
    int in_io_wait = 0;
    for (size_t at = dump.find(" [IO wait]:"); at != kNpos; at = dump.find(" [IO wait]:", at + 1)) {
      ++in_io_wait;
    }
    EXPECT_EQ(in_io_wait, kReaders + 1) << dump;

    for (const ConnPair& p : pairs) p.client.Close();
    ln.Close();
    done.Wait();
    for (const ConnPair& p : pairs) p.server.Close();
  });
}

// ---- Errors ------------------------------------------------------------------------------------

TEST_P(NetTest, DialToAPortWithNoListenerIsRefused) {
  RunNet(1, [&] {
    uint16_t port = testing::UnusedLoopbackPort();
    ASSERT_NE(port, 0);
    std::string addr = "127.0.0.1:" + std::to_string(port);
    std::pair<Conn, Error> d = net::Dial("tcp", addr);
    EXPECT_FALSE(d.first.valid());
    EXPECT_EQ(d.second.kind(), Error::Kind::kRefused) << d.second.String();
    EXPECT_EQ(d.second.errnum(), ECONNREFUSED);
    EXPECT_EQ(d.second.String().rfind("dial tcp " + addr + ": ", 0), 0u) << d.second.String();
    EXPECT_NE(d.second.String().find("connection refused"), kNpos) << d.second.String();
  });
}

TEST_P(NetTest, ListenOnABusyPortFailsWithAddressInUse) {
  RunNet(1, [&] {
    Listener ln = ListenOrFail();
    ASSERT_TRUE(ln.valid());
    std::string addr = ln.LocalAddr().String();
    std::pair<Listener, Error> again = net::Listen("tcp", addr);
    EXPECT_FALSE(again.first.valid());
    EXPECT_EQ(again.second.errnum(), EADDRINUSE) << again.second.String();
    EXPECT_EQ(again.second.String().rfind("listen tcp " + addr, 0), 0u) << again.second.String();
    EXPECT_NE(again.second.String().find("address already in use"), kNpos) << again.second.String();
    ln.Close();
  });
}

TEST_P(NetTest, BadNetworksAndAddressesAreErrors) {
  RunNet(1, [&] {
    std::pair<Listener, Error> l = net::Listen("udp", "127.0.0.1:0");
    EXPECT_EQ(l.second.kind(), Error::Kind::kInvalid) << l.second.String();
    l = net::Listen("tcp", "127.0.0.1");  // no port
    EXPECT_EQ(l.second.kind(), Error::Kind::kResolve) << l.second.String();
    EXPECT_NE(l.second.String().find("missing port in address"), kNpos) << l.second.String();
    std::pair<Conn, Error> d = net::Dial("tcp", "::1:80");  // IPv6 without brackets
    EXPECT_TRUE(d.second);
    EXPECT_FALSE(d.first.valid());
  });
}

TEST_P(NetTest, ReadsAfterThePeerClosesReturnEof) {
  RunNet(2, [&] {
    ConnPair p = MakeConnPair();
    ASSERT_TRUE(p.client.valid());
    ASSERT_FALSE(p.server.Write("bye").err);
    EXPECT_FALSE(p.server.Close());
    p.client.SetReadDeadline(steady_clock::now() + 5s);
    char buf[16];
    Error err;
    ASSERT_TRUE(ReadFull(p.client, buf, 3, &err)) << err.String();
    EXPECT_EQ(std::string(buf, 3), "bye");
    for (int i = 0; i < 2; ++i) {
      IoResult r = p.client.Read(buf, sizeof buf);
      EXPECT_EQ(r.n, 0u);
      EXPECT_TRUE(r.err.eof()) << r.err.String();
      EXPECT_EQ(r.err.String(), "EOF");
    }
    p.client.Close();
  });
}

// The API is for goroutines: from a plain thread (here a blocking-pool thread) and on an invalid
// handle, calls fail with an error instead of blocking a thread the scheduler cannot see.
TEST_P(NetTest, CallsOffAGoroutineOrOnAnInvalidHandleFail) {
  RunNet(1, [&] {
    ConnPair p = MakeConnPair();
    ASSERT_TRUE(p.client.valid());
    Error read_err, dial_err;
    Blocking([&] {
      char buf[4];
      read_err = p.client.Read(buf, sizeof buf).err;
      dial_err = net::Dial("tcp", p.server.LocalAddr().String()).second;
    });
    EXPECT_EQ(read_err.kind(), Error::Kind::kInvalid) << read_err.String();
    EXPECT_NE(read_err.String().find("goroutine"), kNpos) << read_err.String();
    EXPECT_EQ(dial_err.kind(), Error::Kind::kInvalid) << dial_err.String();
    char buf[4];
    EXPECT_EQ(Conn().Read(buf, sizeof buf).err.kind(), Error::Kind::kInvalid);
    EXPECT_EQ(Conn().Close().kind(), Error::Kind::kInvalid);
    EXPECT_EQ(Listener().Accept().second.kind(), Error::Kind::kInvalid);
    p.client.Close();
    p.server.Close();
  });
}

// Error values without a runtime: Go's texts.
TEST(NetErrorTest, FormatsLikeGo) {
  EXPECT_FALSE(Error());
  EXPECT_EQ(Error::Eof().String(), "EOF");
  EXPECT_TRUE(Error::Eof().eof());
  Error reset = Error::FromErrno(ECONNRESET, "read", "tcp 127.0.0.1:7007->127.0.0.1:41234");
  EXPECT_TRUE(reset.reset());
  EXPECT_EQ(reset.errnum(), ECONNRESET);
  EXPECT_EQ(reset.String(), "read tcp 127.0.0.1:7007->127.0.0.1:41234: connection reset by peer");
  Error timeout = Error::Make(Error::Kind::kTimeout, "read", "tcp a->b", "i/o timeout");
  EXPECT_TRUE(timeout.timeout());
  EXPECT_EQ(timeout.String(), "read tcp a->b: i/o timeout");
  EXPECT_EQ(Error::FromErrno(ECONNREFUSED, "dial").kind(), Error::Kind::kRefused);
  EXPECT_EQ(Error::FromErrno(EPIPE, "write").kind(), Error::Kind::kPipe);
  EXPECT_EQ(Error::FromErrno(EMFILE, "accept").kind(), Error::Kind::kSys);
}

TEST(NetErrorTest, CallsWithoutARuntimeFail) {
  EXPECT_EQ(net::PollerName(), "");
  EXPECT_EQ(net::PollerReason(), "");
  std::pair<Listener, Error> l = net::Listen("tcp", "127.0.0.1:0");
  EXPECT_FALSE(l.first.valid());
  EXPECT_TRUE(l.second);
}

// ---- Hibernating goroutines (GoHibernating, TryRead, ResumeWhenReadable) -----------------------

// How many goroutines the dump shows hibernating (no stack between two steps).
int HibernatingInDump() {
  int fd = memfd_create("dump", 0);
  if (fd < 0) return -1;
  WriteGoroutineDump(fd);
  std::string text(static_cast<size_t>(lseek(fd, 0, SEEK_END)), '\0');
  ssize_t got = pread(fd, text.data(), text.size(), 0);
  close(fd);
  if (got != static_cast<ssize_t>(text.size())) return -1;
  int n = 0;
  for (size_t at = 0; (at = text.find("(hibernating: no stack", at)) != kNpos; ++at) ++n;
  return n;
}

bool AwaitHibernating(int n) {
  steady_clock::time_point end = steady_clock::now() + 10s;
  while (HibernatingInDump() != n) {
    if (steady_clock::now() >= end) return false;
    Sleep(2ms);
  }
  return true;
}

// An echo server whose connections are hibernating goroutines: all a connection remembers between
// steps is this struct; its goroutine has a stack only while it echoes.
struct HibernatingEcho {
  Conn conn;
  std::atomic<int64_t>* steps;
  std::atomic<int64_t>* destroyed;
  HibernatingEcho(Conn c, std::atomic<int64_t>* s, std::atomic<int64_t>* d)
      : conn(std::move(c)), steps(s), destroyed(d) {}
  ~HibernatingEcho() { destroyed->fetch_add(1); }

  Resume Step() {
    steps->fetch_add(1);
    char buf[2048];
    for (;;) {
      IoResult r = conn.TryRead(buf, sizeof buf);
      if (r.err.would_block()) return conn.ResumeWhenReadable();
      if (r.n > 0 && conn.Write(buf, r.n).err) break;
      if (r.err) break;
    }
    conn.Close();
    return Resume::Done();
  }
};

void GoHibernatingEchoServer(const Listener& ln, WaitGroup& done, std::atomic<int64_t>* steps,
                             std::atomic<int64_t>* destroyed) {
  done.Add(1);
  Go([ln, &done, steps, destroyed] {
    for (;;) {
      std::pair<Conn, Error> a = ln.Accept();
      if (a.second) break;
      GoHibernating([st = std::make_unique<HibernatingEcho>(a.first, steps, destroyed)] {
        return st->Step();
      });
    }
    done.Done();
  });
}

// Hundreds of connections whose server goroutines hibernate between exchanges: every one is seen
// without a stack while its client pauses, each exchange comes back byte for byte (the goroutines
// restart on fresh stacks, on either worker), and each connection's state is destroyed once.
TEST_P(NetTest, StressHibernatingGoroutinesHoldNoStackWhileIdleAndLoseNoByte) {
  constexpr int kConns = 300;
  constexpr int kRounds = 4;
  constexpr size_t kBytes = 3000;  // more than the server's buffer: one exchange, several reads
  std::atomic<int64_t> steps{0}, destroyed{0};
  RunNet(2, [&] {
    Listener ln = ListenOrFail();
    ASSERT_TRUE(ln.valid());
    std::string addr = ln.LocalAddr().String();
    WaitGroup server_done, round_done, go_on, clients_done;
    GoHibernatingEchoServer(ln, server_done, &steps, &destroyed);
    std::atomic<int> verified{0};
    round_done.Add(kConns);
    go_on.Add(1);
    clients_done.Add(kConns);
    for (int i = 0; i < kConns; ++i) {
      Go([&, i] {
        Conn c = DialOrFail(addr);
        c.SetDeadline(steady_clock::now() + 30s);  // a lost byte fails the test, not hangs it
        std::vector<char> out(kBytes), in(kBytes);
        int good = 0;
        for (int round = 0; round < kRounds && c.valid(); ++round) {
          FillPattern(i, round * kBytes, out.data(), kBytes);
          if (!c.Write(out.data(), kBytes).err && ReadFull(c, in.data(), kBytes) &&
              PatternMismatch(i, round * kBytes, in.data(), kBytes) == kBytes) {
            ++good;
          }
          if (round == 0) {
            round_done.Done();
            go_on.Wait();  // main counts the hibernating server goroutines meanwhile
          }
          Sleep(std::chrono::milliseconds(1 + i % 7));
        }
        if (good == kRounds) verified.fetch_add(1);
        c.Close();
        clients_done.Done();
      });
    }
    round_done.Wait();
    EXPECT_TRUE(AwaitHibernating(kConns)) << HibernatingInDump() << " hibernating";
    go_on.Done();
    clients_done.Wait();
    // Each connection's goroutine sees EOF and ends; its state is destroyed with it.
    steady_clock::time_point end = steady_clock::now() + 10s;
    while (destroyed.load() < kConns && steady_clock::now() < end) Sleep(2ms);
    ln.Close();
    server_done.Wait();
    EXPECT_EQ(verified.load(), kConns);
    EXPECT_EQ(HibernatingInDump(), 0);
  });
  EXPECT_EQ(destroyed.load(), kConns);
  // The exchange after the pause starts a new step (each goroutine was seen hibernating); others
  // may or may not, as data and the pauses race.
  EXPECT_GE(steps.load(), int64_t{kConns} * 2);
}

// What wakes a hibernating reader is what wakes a parked one: its read deadline (set before or
// while it hibernates), Close, and the peer's EOF, each reported by the next step's TryRead.
TEST_P(NetTest, HibernatingReaderWakesForDeadlineCloseAndEof) {
  enum Cause { kDeadlineBefore, kDeadlineWhile, kClose, kEof };
  for (Cause cause : {kDeadlineBefore, kDeadlineWhile, kClose, kEof}) {
    SCOPED_TRACE("cause " + std::to_string(cause));
    RunNet(1, [&] {
      ConnPair p = MakeConnPair();
      ASSERT_TRUE(p.server.valid() && p.client.valid());
      if (cause == kDeadlineBefore) p.server.SetReadDeadline(steady_clock::now() + 1s);
      struct Reader {
        Conn conn;
        Error* result;
        WaitGroup* done;
        int steps = 0;
        Resume Step() {
          ++steps;
          char c;
          IoResult r = conn.TryRead(&c, 1);
          if (r.err.would_block()) return conn.ResumeWhenReadable();
          *result = r.err;
          done->Done();
          return Resume::Done();
        }
      };
      Error result;
      WaitGroup done;
      done.Add(1);
      GoHibernating(
          [st = std::make_unique<Reader>(Reader{p.server, &result, &done})] { return st->Step(); });
      ASSERT_TRUE(AwaitHibernating(1));
      steady_clock::time_point woken = steady_clock::now();
      switch (cause) {
        case kDeadlineBefore:
          break;
        case kDeadlineWhile:
          p.server.SetReadDeadline(steady_clock::now() + 20ms);
          break;
        case kClose:
          p.server.Close();
          break;
        case kEof:
          p.client.CloseWrite();
          break;
      }
      done.Wait();
      EXPECT_LT(steady_clock::now() - woken, 5s);
      switch (cause) {
        case kDeadlineBefore:
        case kDeadlineWhile:
          EXPECT_TRUE(result.timeout()) << result.String();
          break;
        case kClose:
          EXPECT_TRUE(result.closed()) << result.String();
          break;
        case kEof:
          EXPECT_TRUE(result.eof()) << result.String();
          break;
      }
      p.server.Close();
      p.client.Close();
    });
  }
}

// A runtime that ends while a goroutine hibernates destroys that goroutine's state (nothing of it
// is on a stack), as it does an unstarted goroutine's; and a hibernating goroutine waiting for the
// network is running-class: the main goroutine waiting for it is no deadlock.
TEST_P(NetTest, HibernatingGoroutineStateIsDestroyedWhenTheRuntimeEnds) {
  struct State {
    Conn conn;
    std::atomic<int>* destroyed;
    State(Conn c, std::atomic<int>* d) : conn(std::move(c)), destroyed(d) {}
    ~State() { destroyed->fetch_add(1); }
  };
  std::atomic<int> destroyed{0};
  ConnPair p;  // both ends stay open until the runtime has ended: no EOF ends the goroutine
  RunNet(1, [&] {
    p = MakeConnPair();
    ASSERT_TRUE(p.server.valid());
    GoHibernating([st = std::make_unique<State>(p.server, &destroyed)] {
      char c;
      if (st->conn.TryRead(&c, 1).err.would_block()) return st->conn.ResumeWhenReadable();
      return Resume::Done();
    });
    ASSERT_TRUE(AwaitHibernating(1));
    EXPECT_GE(testing::ParkedFor(WaitReason::kIOWait), 1);
    EXPECT_EQ(destroyed.load(), 0);
  });
  EXPECT_EQ(destroyed.load(), 1);
  p.client.Close();
  p.server.Close();
}

}  // namespace
}  // namespace greenline
