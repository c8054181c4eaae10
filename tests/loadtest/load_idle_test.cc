// greenline-load's idle mode (loadtest/load/idle_mode.cc), the real binary end to end against the
// real greenline server: connections spread over two loopback source addresses are opened, held
// and still echo after the hold, with the server's RSS growth per connection read from /proc (and
// from /metrics); connections the server refuses past --max-conns are errors by kind; nothing
// listening exits 3 at once; chat users join their rooms and the RSS slope is reported; more
// connections than RLIMIT_NOFILE allows is a usage error (2).
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/loadtest/load_process.h"
#include "tests/server/server_process.h"
#include "tests/util/net.h"

namespace greenline::testing {
namespace {

TEST(LoadIdleTest, HoldsConnectionsOverTwoSourceAddressesAndTheyStillEcho) {
  ServerProcess server({});
  ASSERT_TRUE(server.ok());
  const LoadRun r = RunLoad({"idle", "--port", std::to_string(server.echo_port()), "--conns", "300",
                             "--source-addrs", "2", "--hold", "1", "--sample", "50", "--server-pid",
                             std::to_string(server.pid())});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  ASSERT_TRUE(r.json.is_object()) << r.Describe();
  const nlohmann::json& extra = r.json["extra"];
  EXPECT_EQ(r.json["throughput"]["unit"], "connections");
  EXPECT_EQ(r.json["throughput"]["count"], 300);
  EXPECT_EQ(extra["conns_opened"], 300);
  EXPECT_EQ(extra["source_addrs"], 2);
  EXPECT_EQ(extra["sample_checked"], 50);
  EXPECT_EQ(extra["sample_ok"], 50);
  EXPECT_GT(extra["connect_per_second"].get<double>(), 0);
  ASSERT_TRUE(extra["rss_per_conn_bytes"].is_number()) << r.Describe();
  EXPECT_GT(extra["rss_per_conn_bytes"].get<double>(), 0) << r.Describe();
  EXPECT_GT(extra["rss_after_bytes"].get<uint64_t>(), extra["rss_before_bytes"].get<uint64_t>());
  EXPECT_EQ(r.json["latency_us"]["count"], 300);  // one connect latency per connection
}

TEST(LoadIdleTest, ReadsTheServersRssFromMetrics) {
  ServerProcess server({});
  ASSERT_TRUE(server.ok());
  const std::string url = "http://127.0.0.1:" + std::to_string(server.http_port()) + "/metrics";
  const LoadRun r = RunLoad({"idle", "--port", std::to_string(server.echo_port()), "--conns", "100",
                             "--hold", "0", "--sample", "10", "--metrics-url", url});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  const nlohmann::json& extra = r.json["extra"];
  EXPECT_EQ(extra["rss_source"], "metrics");
  EXPECT_GT(extra["rss_before_bytes"].get<uint64_t>(), 1u << 20) << r.Describe();  // a live process
  EXPECT_TRUE(extra["rss_per_conn_bytes"].is_number()) << r.Describe();
  EXPECT_TRUE(extra["rss_error"].is_null()) << r.Describe();
  EXPECT_EQ(extra["sample_ok"], 10) << r.Describe();
}

TEST(LoadIdleTest, ChatUsersJoinRoomsDrainAndTheSlopeIsReported) {
  ServerProcess server({"--chat-rate=0"});
  ASSERT_TRUE(server.ok());
  const std::string url = "http://127.0.0.1:" + std::to_string(server.http_port()) + "/metrics";
  const LoadRun r =
      RunLoad({"idle", "--service", "chat", "--port", std::to_string(server.chat_port()), "--conns",
               "400", "--room-size", "50", "--slope-from", "200", "--hold", "0", "--sample", "30",
               "--metrics-url", url});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  const nlohmann::json& extra = r.json["extra"];
  EXPECT_EQ(extra["conns_opened"], 400);
  // Each sample's "/join" of its own room was answered "! already in" that room: it is in it.
  EXPECT_EQ(extra["sample_checked"], 30);
  EXPECT_EQ(extra["sample_ok"], 30) << r.Describe();
  EXPECT_EQ(extra["conns_at_slope_from"], 200);
  ASSERT_TRUE(extra["rss_slope_bytes_per_conn"].is_number()) << r.Describe();
  EXPECT_GT(extra["rss_at_slope_from_bytes"].get<int64_t>(), 0);
  // Nothing the users were sent was left unread (the peek after the hold found nothing).
  EXPECT_TRUE(r.json["errors"].empty()) << r.Describe();
}

TEST(LoadIdleTest, ConnectionsTheServerRefusesAreErrorsByKind) {
  ServerProcess server({"--max-conns", "100"});
  ASSERT_TRUE(server.ok());
  const LoadRun r = RunLoad({"idle", "--port", std::to_string(server.echo_port()), "--conns", "120",
                             "--hold", "0.5", "--sample", "20"});
  ASSERT_EQ(r.exit_code, 1) << r.Describe();
  const nlohmann::json& errors = r.json["errors"];
  const uint64_t refused =
      errors.value("! server full", uint64_t{0}) + errors.value("closed early", uint64_t{0});
  EXPECT_EQ(refused, 20u) << r.Describe();
  EXPECT_EQ(r.json["extra"]["sample_ok"], 20);  // the sample comes from those still open
}

TEST(LoadIdleTest, NothingListeningExits3AtOnce) {
  const uint16_t port = UnusedLoopbackPort();
  const LoadRun r =
      RunLoad({"idle", "--port", std::to_string(port), "--conns", "50"}, std::chrono::seconds(20));
  EXPECT_EQ(r.exit_code, 3) << r.Describe();
  EXPECT_LT(r.seconds, 5);
  EXPECT_NE(r.err.find("cannot connect"), std::string::npos) << r.Describe();
}

TEST(LoadIdleTest, MoreConnectionsThanDescriptorsIsAUsageError) {
  rlimit rl{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
  if (rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= 50'000'000) {
    GTEST_SKIP() << "RLIMIT_NOFILE's hard limit is too high to exceed";
  }
  const LoadRun r =
      RunLoad({"idle", "--port", "1", "--conns", "50000000"}, std::chrono::seconds(20));
  EXPECT_EQ(r.exit_code, 2) << r.Describe();
  EXPECT_NE(r.err.find("RLIMIT_NOFILE"), std::string::npos) << r.Describe();
}

}  // namespace
}  // namespace greenline::testing
