// greenline-load echo, end to end: the real greenline-load binary in a child process against the
// real greenline server (tests/server/server_process.h), and against misbehaving servers written
// here with blocking sockets (one that corrupts a byte of the 100th line, one that reads and never
// answers). It checks the exit statuses of loadtest/load/modes.h (0 healthy, 1 errors, 2 usage,
// 3 could not run), the JSON report's figures, that an open loop keeps its asked rate, and that no
// case hangs: every run is bounded, and a stuck server ends the run at its duration with the error
// "no response" and exit status 1. Runs are 1-2 s each.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/loadtest/load_process.h"
#include "tests/server/server_process.h"
#include "tests/util/net.h"

namespace greenline::testing {
namespace {

using namespace std::chrono_literals;

// A misbehaving echo server on 127.0.0.1:<port()>, blocking sockets, a thread per connection.
class BadServer {
 public:
  enum class Kind {
    kCorruptLine100,  // echoes, but flips one byte of the 100th line of each connection
    kSilent,          // reads and discards: never answers
  };

  explicit BadServer(Kind kind) : kind_(kind) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    int one = 1;
    setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    EXPECT_EQ(bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(listen(listen_fd_, 128), 0);
    socklen_t len = sizeof a;
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    accept_thread_ = std::thread([this] { AcceptLoop(); });
  }

  ~BadServer() {
    stop_ = true;
    shutdown(listen_fd_, SHUT_RDWR);  // wakes the blocked accept()
    accept_thread_.join();
    close(listen_fd_);
    std::lock_guard<std::mutex> lock(mu_);
    for (std::thread& t : conn_threads_) t.join();
  }

  uint16_t port() const { return port_; }
  int accepted() const { return accepted_.load(); }

 private:
  void AcceptLoop() {
    for (;;) {
      int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR) continue;
        return;
      }
      ++accepted_;
      std::lock_guard<std::mutex> lock(mu_);
      conn_threads_.emplace_back([this, fd] { Serve(fd); });
    }
  }

  // Until the client closes, or the server stops (polls so that a silent one notices).
  void Serve(int fd) {
    int lines = 0;
    char buf[16384];
    for (;;) {
      pollfd p{fd, POLLIN, 0};
      int ready = poll(&p, 1, 50);
      if (stop_) break;
      if (ready <= 0) continue;
      ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      if (kind_ == Kind::kSilent) continue;
      for (ssize_t i = 0; i < n; ++i) {
        if (lines == 99 && buf[i] != '\n') {
          buf[i] ^= 0x20;      // one byte of line 100 (counting from 1)
          lines = -1'000'000;  // only once
        }
        if (buf[i] == '\n') ++lines;
      }
      if (send(fd, buf, static_cast<size_t>(n), MSG_NOSIGNAL) != n) break;
    }
    close(fd);
  }

  Kind kind_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::thread accept_thread_;
  std::mutex mu_;
  std::vector<std::thread> conn_threads_;  // guarded by mu_
};

TEST(LoadEchoTest, ClosedLoopAgainstGreenlineIsHealthy) {
  ServerProcess s({"--workers=1"});
  ASSERT_TRUE(s.ok());
  LoadRun r = RunLoad({"echo", "--port", std::to_string(s.echo_port()), "--conns", "8",
                       "--pipeline", "2", "--duration", "1", "--warmup", "0.3"});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  ASSERT_TRUE(r.json.is_object()) << r.Describe();
  EXPECT_EQ(r.json["tool"], "greenline-load");
  EXPECT_EQ(r.json["mode"], "echo");
  EXPECT_EQ(r.json["ok"], true);
  EXPECT_EQ(r.json["throughput"]["unit"], "lines");
  EXPECT_GT(r.json["throughput"]["count"].get<uint64_t>(), 0u);
  EXPECT_EQ(r.json["latency_us"]["count"], r.json["throughput"]["count"]);
  EXPECT_GT(r.json["latency_us"]["p99"].get<double>(), 0);
  EXPECT_LE(r.json["latency_us"]["p50"].get<double>(), r.json["latency_us"]["p99"].get<double>());
  EXPECT_LE(r.json["latency_us"]["p99"].get<double>(), r.json["latency_us"]["max"].get<double>());
  EXPECT_EQ(r.json["errors_total"], 0);
  EXPECT_EQ(r.json["extra"]["conns"], 8);
  EXPECT_LE(r.json["extra"]["lines_in_flight_at_end"].get<uint64_t>(), 16u);
  EXPECT_NEAR(r.json["window_seconds"].get<double>(), 1.0, 0.01);
  EXPECT_FALSE(r.json.contains("server_cpu"));  // only with --stat-cpu
  // The text report went to stderr (the JSON has stdout).
  EXPECT_NE(r.err.find("Latency Distribution"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("Errors: none"), std::string::npos) << r.err;
}

TEST(LoadEchoTest, OpenLoopKeepsTheAskedRate) {
  ServerProcess s({"--workers=1"});
  ASSERT_TRUE(s.ok());
  const double rate = 2000;
  LoadRun r = RunLoad({"echo", "--port", std::to_string(s.echo_port()), "--conns", "10", "--rate",
                       "2000", "--duration", "1.5", "--warmup", "0.3"});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  double achieved = r.json["extra"]["achieved_rate"].get<double>();
  EXPECT_NEAR(achieved, rate, rate * 0.1) << r.Describe();
  EXPECT_TRUE(r.json["extra"].contains("client_behind_schedule"));
  EXPECT_EQ(r.json["extra"]["rate"], rate);
  EXPECT_EQ(r.json["errors_total"], 0);
}

TEST(LoadEchoTest, CorruptedEchoIsAMismatchErrorAndExitsOne) {
  BadServer bad(BadServer::Kind::kCorruptLine100);
  LoadRun r = RunLoad({"echo", "--port", std::to_string(bad.port()), "--conns", "2", "--duration",
                       "1", "--warmup", "0"});
  ASSERT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_EQ(r.json["ok"], false);
  EXPECT_GE(r.json["errors"]["mismatch"].get<uint64_t>(), 1u) << r.Describe();
  EXPECT_GE(r.json["errors_total"].get<uint64_t>(), 1u);
  EXPECT_NE(r.err.find("line 99"), std::string::npos) << r.err;  // seq numbers count from 0
}

TEST(LoadEchoTest, NothingListeningExitsThreeQuickly) {
  uint16_t port = UnusedLoopbackPort();
  LoadRun r = RunLoad({"echo", "--port", std::to_string(port), "--duration", "5"}, 10s);
  EXPECT_EQ(r.exit_code, 3) << r.Describe();
  EXPECT_LT(r.seconds, 3.0) << r.Describe();
  EXPECT_NE(
      r.err.find("cannot connect to 127.0.0.1:" + std::to_string(port) + ": Connection refused"),
      std::string::npos)
      << r.err;
}

TEST(LoadEchoTest, BadFlagsExitTwo) {
  EXPECT_EQ(RunLoad({"echo", "--conns", "0"}).exit_code, 2);
  EXPECT_EQ(RunLoad({"echo", "--size", "1"}).exit_code, 2);
  EXPECT_EQ(RunLoad({"echo", "--no-such-flag"}).exit_code, 2);
  EXPECT_EQ(RunLoad({"echo", "--pipeline", "65536", "--size", "4096"}).exit_code, 2);
  EXPECT_EQ(RunLoad({"--duration", "-1", "echo"}).exit_code, 2);
  EXPECT_EQ(RunLoad({}).exit_code, 2);  // no mode
  EXPECT_EQ(RunLoad({"--version"}).exit_code, 0);
}

// Decision: a server that accepts and never answers ends the run at its duration like any other
// (nothing waits for it) and is reported as the error "no response", so the exit status is 1.
TEST(LoadEchoTest, StuckServerEndsAtDurationWithNoResponseError) {
  BadServer silent(BadServer::Kind::kSilent);
  LoadRun r = RunLoad({"echo", "--port", std::to_string(silent.port()), "--conns", "3",
                       "--duration", "1", "--warmup", "0.2"},
                      15s);
  ASSERT_FALSE(r.timed_out) << r.Describe();
  EXPECT_LT(r.seconds, 1.2 + 3) << r.Describe();
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_EQ(r.json["throughput"]["count"], 0);
  EXPECT_EQ(r.json["errors"]["no response"], 3) << r.Describe();
  EXPECT_EQ(r.json["extra"]["lines_in_flight_at_end"], 3);
}

TEST(LoadEchoTest, StatCpuAndServerPidReportServerFigures) {
  ServerProcess s({"--workers=1"});
  ASSERT_TRUE(s.ok());
  LoadRun r =
      RunLoad({"echo", "--port", std::to_string(s.echo_port()), "--conns", "4", "--duration", "1",
               "--warmup", "0.2", "--stat-cpu", "0", "--server-pid", std::to_string(s.pid())});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  const auto& cpu = r.json["server_cpu"];
  ASSERT_TRUE(cpu.is_object()) << r.Describe();
  EXPECT_EQ(cpu["cpu"], 0);
  EXPECT_GT(cpu["clk_tck"].get<int>(), 0);
  uint64_t ticks = cpu["busy_jiffies"].get<uint64_t>() + cpu["idle_jiffies"].get<uint64_t>();
  // One CPU over a 1 s window: about clk_tck ticks (loose: steal and tick granularity).
  EXPECT_GT(ticks, 0u);
  EXPECT_LE(ticks, 2u * cpu["clk_tck"].get<uint64_t>());
  EXPECT_GE(cpu["utilization"].get<double>(), 0.0);
  EXPECT_LE(cpu["utilization"].get<double>(), 1.0);
  EXPECT_GT(cpu["ns_per_unit"].get<double>(), 0.0);
  EXPECT_DOUBLE_EQ(cpu["ns_per_1000_units"].get<double>(), 1000 * cpu["ns_per_unit"].get<double>());
  // The user/kernel split: user ticks are a part of the busy ones, the kernel's rate the rest.
  uint64_t busy = cpu["busy_jiffies"].get<uint64_t>(), user = cpu["user_jiffies"].get<uint64_t>();
  EXPECT_LE(user, busy);
  EXPECT_NEAR(cpu["kernel_ns_per_unit"].get<double>() / cpu["ns_per_unit"].get<double>(),
              static_cast<double>(busy - user) / static_cast<double>(busy), 1e-9);
  const auto& server = r.json["server"];
  ASSERT_TRUE(server.is_object()) << r.Describe();
  EXPECT_EQ(server["pid"], s.pid());
  EXPECT_GT(server["rss_bytes"].get<uint64_t>(), 1u << 20);
  EXPECT_GE(server["peak_rss_bytes"].get<uint64_t>(), server["rss_bytes"].get<uint64_t>());
  // The server's own CPU, and its user-space part: the server echoed lines for a second.
  ASSERT_GT(server["process_jiffies"].get<uint64_t>(), 0u);
  EXPECT_LE(server["process_user_jiffies"].get<uint64_t>(),
            server["process_jiffies"].get<uint64_t>());
  EXPECT_NEAR(
      server["user_ns_per_unit"].get<double>() / server["process_ns_per_unit"].get<double>(),
      static_cast<double>(server["process_user_jiffies"].get<uint64_t>()) /
          static_cast<double>(server["process_jiffies"].get<uint64_t>()),
      1e-9);
  EXPECT_GT(r.json["client_cpu"]["seconds"].get<double>(), 0.0);
  EXPECT_NE(r.err.find("Server CPU 0:"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace greenline::testing
