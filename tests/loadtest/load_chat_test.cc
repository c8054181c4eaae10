// greenline-load's chat mode (loadtest/load/chat_mode.cc), the real binary end to end: a healthy
// run against the real greenline server (flood control off) reports every delivery and no loss;
// a fake chat server written here, which drops one broadcast, makes it report the loss and exit 1;
// greenline's flood control shows up as "! rate limited" errors; bad flags exit 2; nothing
// listening exits 3 at once. Each run takes a few seconds at most (CI runs it on 2 cores, and
// under ASan).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "tests/loadtest/load_process.h"
#include "tests/server/server_process.h"
#include "tests/util/net.h"

namespace greenline::testing {
namespace {

// A count of the run's report (its "extra" object). A missing one fails the test and reads as
// UINT64_MAX, so that no check against zero passes because a key disappeared.
uint64_t Extra(const LoadRun& r, const char* key) {
  if (!r.json.is_object() || !r.json.contains("extra") || !r.json["extra"].contains(key)) {
    ADD_FAILURE() << "the report has no extra." << key << ": " << r.Describe();
    return UINT64_MAX;
  }
  return r.json["extra"][key].get<uint64_t>();
}

// How many errors of `kind` the run reports (the report lists only kinds that occurred).
uint64_t ErrorsOf(const LoadRun& r, const std::string& kind) {
  return r.json.is_object() ? r.json["errors"].value(kind, uint64_t{0}) : 0;
}

TEST(LoadChatTest, HealthyRunAgainstGreenlineDeliversEverything) {
  ServerProcess server({"--chat-rate", "0"});
  ASSERT_TRUE(server.ok());
  const LoadRun r = RunLoad({"chat", "--port", std::to_string(server.chat_port()), "--users", "50",
                             "--rooms", "2", "--rate", "5", "--duration", "2", "--warmup", "0.5"});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  ASSERT_TRUE(r.json.is_object()) << r.Describe();
  EXPECT_EQ(r.json["mode"], "chat");
  EXPECT_TRUE(r.json["ok"].get<bool>());
  EXPECT_EQ(r.json["throughput"]["unit"], "deliveries");
  EXPECT_EQ(Extra(r, "lost"), 0u);
  EXPECT_EQ(Extra(r, "duplicated"), 0u);
  EXPECT_EQ(Extra(r, "reordered"), 0u);
  // Every message sent reached the 24 other members of its room.
  const uint64_t sent = Extra(r, "messages_sent");
  EXPECT_EQ(Extra(r, "expected_deliveries"), sent * 24);
  EXPECT_EQ(Extra(r, "received"), Extra(r, "expected_deliveries"));
  // In the 2 s window: 50 users x 5 messages/s x 24 receivers x 2 s = 12,000 deliveries.
  const double deliveries = static_cast<double>(Extra(r, "deliveries"));
  EXPECT_NEAR(deliveries, 12000, 12000 * 0.15) << r.Describe();
  EXPECT_EQ(r.json["latency_us"]["count"].get<uint64_t>(), Extra(r, "deliveries"));
}

// A chat server with just enough of greenline's protocol for the handshake and room broadcast,
// on blocking sockets and a thread per client, that drops the `drop_at`-th broadcast delivery.
class FakeChatServer {
 public:
  explicit FakeChatServer(int drop_at) : drop_at_(drop_at) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    listen(listen_fd_, 128);
    socklen_t len = sizeof(addr);
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    accept_thread_ = std::thread([this] { AcceptLoop(); });
  }
  ~FakeChatServer() {
    shutdown(listen_fd_, SHUT_RDWR);
    close(listen_fd_);
    accept_thread_.join();
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& c : clients_) shutdown(c.fd, SHUT_RDWR);
    }
    for (auto& t : threads_) t.join();
    for (auto& c : clients_) close(c.fd);
  }
  uint16_t port() const { return port_; }
  int dropped() const { return dropped_.load(); }

 private:
  struct ClientInfo {
    int fd;
    std::string nick, room;
  };

  void AcceptLoop() {
    for (int n = 1;; ++n) {
      const int fd = accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) return;
      std::lock_guard<std::mutex> lock(mu_);
      clients_.push_back({fd, "guest-" + std::to_string(n), "#lobby"});
      threads_.emplace_back([this, i = clients_.size() - 1] { Serve(i); });
    }
  }

  // Called with mu_ held (it orders the broadcasts, as a real server's room does).
  void SendLocked(int fd, const std::string& line) {
    send(fd, line.data(), line.size(), MSG_NOSIGNAL);
  }

  void Serve(size_t i) {
    int fd;
    {
      std::lock_guard<std::mutex> lock(mu_);
      fd = clients_[i].fd;
      SendLocked(fd, "* welcome to fake chat: you are " + clients_[i].nick + " in #lobby\r\n");
    }
    std::string buf;
    char chunk[4096];
    for (;;) {
      const ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
      if (n <= 0) return;
      buf.append(chunk, n);
      for (size_t nl; (nl = buf.find('\n')) != std::string::npos; buf.erase(0, nl + 1)) {
        std::string line = buf.substr(0, nl);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        std::lock_guard<std::mutex> lock(mu_);
        ClientInfo& me = clients_[i];
        if (line.rfind("/nick ", 0) == 0) {
          const std::string old = me.nick;
          me.nick = line.substr(6);
          SendLocked(fd, "* " + old + " is now known as " + me.nick + "\r\n");
        } else if (line.rfind("/join ", 0) == 0) {
          me.room = line.substr(5);  // "/join R" -> "#R" (without a copy GCC 12 warns: PR105651)
          me.room[0] = '#';
          for (auto& c : clients_) {
            if (c.room == me.room) SendLocked(c.fd, "* " + me.nick + " joined " + me.room + "\r\n");
          }
        } else {
          for (auto& c : clients_) {
            if (&c == &me || c.room != me.room) continue;
            if (++deliveries_ == drop_at_) {
              dropped_.fetch_add(1);
              continue;
            }
            SendLocked(c.fd, "[" + me.room + "] " + me.nick + ": " + line + "\r\n");
          }
        }
      }
    }
  }

  const int drop_at_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::thread accept_thread_;
  std::mutex mu_;
  std::vector<ClientInfo> clients_;   // guarded by mu_ (Serve keeps an index: it may grow)
  std::vector<std::thread> threads_;  // guarded by mu_
  int deliveries_ = 0;                // guarded by mu_
  std::atomic<int> dropped_{0};
};

TEST(LoadChatTest, ReportsALostBroadcastAsAnError) {
  FakeChatServer server(/*drop_at=*/20);
  const LoadRun r =
      RunLoad({"chat", "--port", std::to_string(server.port()), "--users", "4", "--rooms", "1",
               "--rate", "10", "--duration", "1", "--warmup", "0.2", "--threads", "2"});
  EXPECT_EQ(server.dropped(), 1);
  ASSERT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_EQ(Extra(r, "lost"), 1u) << r.Describe();
  EXPECT_EQ(ErrorsOf(r, "lost"), 1u);
  EXPECT_EQ(Extra(r, "duplicated"), 0u);
  EXPECT_EQ(Extra(r, "reordered"), 0u);
  EXPECT_FALSE(r.json["ok"].get<bool>());
}

TEST(LoadChatTest, CountsRateLimitedLinesUnderFloodControl) {
  ServerProcess server({});  // default flood control: 20 lines/s, burst 40
  ASSERT_TRUE(server.ok());
  const LoadRun r =
      RunLoad({"chat", "--port", std::to_string(server.chat_port()), "--users", "4", "--rooms", "1",
               "--rate", "50", "--duration", "1.5", "--warmup", "0.5"});
  ASSERT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_GE(ErrorsOf(r, "! rate limited"), 1u) << r.Describe();
}

TEST(LoadChatTest, NothingListeningExits3AtOnce) {
  const uint16_t port = UnusedLoopbackPort();
  const LoadRun r =
      RunLoad({"chat", "--port", std::to_string(port), "--users", "10"}, std::chrono::seconds(20));
  EXPECT_EQ(r.exit_code, 3) << r.Describe();
  EXPECT_LT(r.seconds, 5);
  EXPECT_NE(r.err.find("cannot connect"), std::string::npos) << r.Describe();
}

TEST(LoadChatTest, BadFlagsExit2) {
  EXPECT_EQ(RunLoad({"chat", "--rooms", "0"}, std::chrono::seconds(20)).exit_code, 2);
  EXPECT_EQ(RunLoad({"chat", "--users", "2", "--rooms", "3"}, std::chrono::seconds(20)).exit_code,
            2);
  EXPECT_EQ(RunLoad({"chat", "--rate", "-1"}, std::chrono::seconds(20)).exit_code, 2);
}

}  // namespace
}  // namespace greenline::testing
