// End to end: the real greenline binary over real loopback sockets, on both pollers (io_uring
// skipped with the reason where no ring can be set up). The expected lines are the documented
// formats written out, not the server's own constants, so a format that drifts fails here.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/server/server_process.h"
#include "tests/util/net.h"

namespace greenline::testing {
namespace {

using namespace std::chrono_literals;
using namespace std::string_literals;

class E2E : public ::testing::TestWithParam<PollerKind> {
 protected:
  void SetUp() override {
    if (GetParam() == PollerKind::kIoUring) {
      std::string why = UringUnavailableReason();
      if (!why.empty()) GTEST_SKIP() << "io_uring poller unavailable: " << why;
    }
  }
  std::vector<std::string> Args(std::vector<std::string> extra = {}) {
    extra.push_back(GetParam() == PollerKind::kIoUring ? "--poller=io_uring" : "--poller=epoll");
    return extra;
  }
};

INSTANTIATE_TEST_SUITE_P(Pollers, E2E, ::testing::Values(PollerKind::kEpoll, PollerKind::kIoUring),
                         PollerParamName);

// ---- echo ------------------------------------------------------------------------------------

TEST_P(E2E, EchoReturnsEachLineExactlyCrLfLfAndBinary) {
  ServerProcess s(Args());
  ASSERT_TRUE(s.ok());
  Client c(s.echo_port());
  ASSERT_TRUE(c.connected());
  std::string binary("b\0i\xff\xfe\x01n\r\x1b[2J\n", 13);
  std::string in = "hello\n" + std::string("telnet\r\n") + binary;
  ASSERT_TRUE(c.Send(in));
  EXPECT_EQ(c.ReadExactly(in.size()), in);
}

TEST_P(E2E, EchoPipelinedLinesInOneWriteAndSplitAcrossWrites) {
  ServerProcess s(Args());
  ASSERT_TRUE(s.ok());
  Client c(s.echo_port());
  std::string all;
  for (int i = 0; i < 2000; ++i) all += "line " + std::to_string(i) + "\n";
  ASSERT_TRUE(c.Send(all));
  EXPECT_EQ(c.ReadExactly(all.size()), all);
  // One line in three writes: nothing comes back until its LF.
  ASSERT_TRUE(c.Send("par"));
  ASSERT_TRUE(c.Send("tial"));
  ASSERT_TRUE(c.Send(" line\n"));
  EXPECT_EQ(c.ReadLine(false), "partial line");
}

TEST_P(E2E, EchoLineAtTheLimitPassesOneByteMoreIsRefusedAndCloses) {
  ServerProcess s(Args({"--max-line=100"}));
  ASSERT_TRUE(s.ok());
  Client c(s.echo_port());
  std::string ok(100, 'a');
  ASSERT_TRUE(c.Send(ok + "\r\n"));  // the terminator does not count
  EXPECT_EQ(c.ReadExactly(102), ok + "\r\n");
  ASSERT_TRUE(c.Send(std::string(101, 'b') + "\n"));
  EXPECT_EQ(c.ReadLine(), "! line too long (max 100 bytes)");
  EXPECT_EQ(c.ReadToEof(), "");
}

TEST_P(E2E, EchoOverlongLineWithoutNewlineIsCutOffWithoutBufferingIt) {
  ServerProcess s(Args());
  ASSERT_TRUE(s.ok());
  Client c(s.echo_port());
  // 1 MiB with no LF: the server must refuse after 4096 bytes, not wait for the end.
  std::thread sender([&] { c.Send(std::string(1 << 20, 'x')); });
  EXPECT_EQ(c.ReadLine(), "! line too long (max 4096 bytes)");
  EXPECT_TRUE(c.ReadToEof().has_value());
  sender.join();
  EXPECT_EQ(
      AwaitMetric(s.http_port(), "greenline_disconnects_total", "reason=\"line_too_long\"", 1), 1);
}

TEST_P(E2E, EchoHalfCloseDeliversPendingRepliesThenCloses) {
  ServerProcess s(Args());
  ASSERT_TRUE(s.ok());
  Client c(s.echo_port());
  ASSERT_TRUE(c.Send("one\ntwo\nunterminated"));
  c.ShutdownWrite();
  EXPECT_EQ(c.ReadToEof(), "one\ntwo\nunterminated");
}

TEST_P(E2E, EchoPanicIsRecoveredSaysInternalErrorAndClosesOnlyThatConnection) {
  ServerProcess s(Args({"--enable-debug-commands"}));
  ASSERT_TRUE(s.ok());
  Client other(s.echo_port());
  ASSERT_TRUE(other.Send("before\n"));
  ASSERT_EQ(other.ReadExactly(7), "before\n");
  Client c(s.echo_port());
  ASSERT_TRUE(c.Send("/debug panic\n"));
  EXPECT_EQ(c.ReadToEof(), "! internal error\r\n");
  ASSERT_TRUE(other.Send("after\n"));  // nothing else noticed
  EXPECT_EQ(other.ReadExactly(6), "after\n");
  EXPECT_EQ(AwaitMetric(s.http_port(), "greenline_panics_recovered_total", "service=\"echo\"", 1),
            1);
  EXPECT_EQ(AwaitMetric(s.http_port(), "greenline_disconnects_total", "reason=\"panic\"", 1), 1);
  EXPECT_NE(s.Output().find("echo: recovered panic"), std::string::npos);
}

TEST_P(E2E, EchoWithoutDebugCommandsEchoesTheDebugLine) {
  ServerProcess s(Args());
  ASSERT_TRUE(s.ok());
  Client c(s.echo_port());
  ASSERT_TRUE(c.Send("/debug panic\n"));
  EXPECT_EQ(c.ReadExactly(13), "/debug panic\n");
}

TEST_P(E2E, TimingIdleAndSlowlorisClientsAreClosed) {
  ServerProcess s(Args({"--idle-timeout=1s"}));
  ASSERT_TRUE(s.ok());
  Client idle(s.echo_port(), 5s), slowloris(s.chat_port(), 5s), active(s.echo_port(), 5s);
  ASSERT_TRUE(slowloris.ReadLine());  // welcome
  ASSERT_TRUE(slowloris.Send("half a li"));
  auto start = std::chrono::steady_clock::now();
  // `active` keeps talking and stays.
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(active.Send("ping\n"));
    ASSERT_EQ(active.ReadLine(), "ping");
    std::this_thread::sleep_for(300ms);
  }
  EXPECT_TRUE(idle.ReadToEof().has_value());
  EXPECT_TRUE(slowloris.ReadToEof().has_value());
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_LT(took, 4s);
  ASSERT_TRUE(active.Send("still here\n"));
  EXPECT_EQ(active.ReadLine(), "still here");
  EXPECT_EQ(AwaitMetric(s.http_port(), "greenline_disconnects_total", "reason=\"idle_timeout\"", 2),
            2);
}

TEST_P(E2E, MaxConnsTurnsTheNextConnectionAway) {
  ServerProcess s(Args({"--max-conns=2"}));
  ASSERT_TRUE(s.ok());
  Client a(s.echo_port()), b(s.chat_port());
  ASSERT_TRUE(a.Send("x\n"));
  ASSERT_EQ(a.ReadLine(), "x");
  ASSERT_TRUE(b.ReadLine());  // welcome: both are admitted
  Client c(s.echo_port());
  EXPECT_EQ(c.ReadLine(), "! server full");
  EXPECT_TRUE(c.ReadToEof().has_value());
  // Room again once one leaves.
  a.ShutdownWrite();
  ASSERT_TRUE(a.ReadToEof().has_value());
  std::optional<std::string> got;
  for (int i = 0; i < 50 && got != "y"; ++i) {
    Client d(s.echo_port());
    d.Send("y\n");
    got = d.ReadLine();
    if (got != "y") std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(got, "y");
}

// ---- chat ------------------------------------------------------------------------------------

struct User {
  Client c;
  std::string nick;
};

// Connects, checks the welcome, and reads the user's own join notice.
User Enter(uint16_t port) {
  User u{Client(port), ""};
  auto welcome = u.c.ReadLine();
  EXPECT_TRUE(welcome.has_value());
  if (!welcome) return u;
  size_t at = welcome->find("guest-");
  EXPECT_NE(at, std::string::npos) << *welcome;
  if (at == std::string::npos) return u;
  size_t end = welcome->find_first_not_of("0123456789", at + 6);
  u.nick = welcome->substr(at, end - at);
  EXPECT_EQ(welcome->rfind("* ", 0), 0u) << *welcome;
  EXPECT_NE(welcome->find("#lobby"), std::string::npos) << *welcome;
  EXPECT_NE(welcome->find("/help"), std::string::npos) << *welcome;
  EXPECT_EQ(u.c.ReadLine(), "* " + u.nick + " joined #lobby");
  return u;
}

// Enter(), and each of `others` (in #lobby) reads the newcomer's join notice.
User EnterSeenBy(uint16_t port, std::initializer_list<User*> others) {
  User u = Enter(port);
  for (User* o : others) EXPECT_EQ(o->c.ReadLine(), "* " + u.nick + " joined #lobby");
  return u;
}

// `u` sends /who and reads lines up to its answer: nothing else may arrive before it.
void ExpectNothingPending(User& u) {
  ASSERT_TRUE(u.c.Send("/who\n"));
  auto l = u.c.ReadLine();
  ASSERT_TRUE(l);
  EXPECT_EQ(l->rfind("* #", 0), 0u) << "unexpected line: " << *l;
}

TEST_P(E2E, ChatMessagesGoToEveryoneElseInTheRoom) {
  ServerProcess s(Args());
  ASSERT_TRUE(s.ok());
  User a = Enter(s.chat_port());
  User b = EnterSeenBy(s.chat_port(), {&a});
  User c = EnterSeenBy(s.chat_port(), {&a, &b});
  ASSERT_TRUE(a.c.Send("hello there\r\n"));  // telnet's CRLF: the CR is removed
  EXPECT_EQ(b.c.ReadLine(false), "[#lobby] " + a.nick + ": hello there\r");
  EXPECT_EQ(c.c.ReadLine(), "[#lobby] " + a.nick + ": hello there");
  ExpectNothingPending(a);  // the sender is not sent its own line
  ASSERT_TRUE(b.c.Send("/me waves\n"));
  EXPECT_EQ(a.c.ReadLine(), "[#lobby] * " + b.nick + " waves");
  EXPECT_EQ(c.c.ReadLine(), "[#lobby] * " + b.nick + " waves");
}

TEST_P(E2E, ChatCommands) {
  ServerProcess s(Args());
  ASSERT_TRUE(s.ok());
  User a = Enter(s.chat_port());
  User b = EnterSeenBy(s.chat_port(), {&a});

  ASSERT_TRUE(a.c.Send("/nick Alice\n"));
  EXPECT_EQ(b.c.ReadLine(), "* " + a.nick + " is now known as Alice");
  EXPECT_EQ(a.c.ReadLine(), "* " + a.nick + " is now known as Alice");
  ASSERT_TRUE(b.c.Send("/nick alice\n"));  // unique ignoring case
  auto taken = b.c.ReadLine();
  ASSERT_TRUE(taken);
  EXPECT_EQ(taken->rfind("! ", 0), 0u) << *taken;
  EXPECT_NE(taken->find("alice"), std::string::npos) << *taken;
  ASSERT_TRUE(b.c.Send("/nick no spaces!\n"));
  auto bad = b.c.ReadLine();
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->rfind("! ", 0), 0u) << *bad;
  ASSERT_TRUE(b.c.Send("/nick bob\n"));
  EXPECT_EQ(b.c.ReadLine(), "* " + b.nick + " is now known as bob");
  EXPECT_EQ(a.c.ReadLine(), "* " + b.nick + " is now known as bob");

  ASSERT_TRUE(a.c.Send("/who\n"));
  EXPECT_EQ(a.c.ReadLine(), "* #lobby: Alice bob");

  ASSERT_TRUE(a.c.Send("/join go\n"));
  EXPECT_EQ(b.c.ReadLine(), "* Alice left #lobby");
  EXPECT_EQ(a.c.ReadLine(), "* Alice joined #go");
  ASSERT_TRUE(b.c.Send("/rooms\n"));
  EXPECT_EQ(b.c.ReadLine(), "* rooms: #go(1) #lobby(1)");
  ASSERT_TRUE(b.c.Send("not for alice\n"));
  ASSERT_TRUE(b.c.Send("/msg ALICE psst\n"));
  EXPECT_EQ(a.c.ReadLine(), "[pm] bob: psst");  // only the pm: the room message stayed in #lobby
  ASSERT_TRUE(b.c.Send("/msg nobody hi\n"));
  auto nouser = b.c.ReadLine();
  ASSERT_TRUE(nouser);
  EXPECT_EQ(nouser->rfind("! ", 0), 0u);
  EXPECT_NE(nouser->find("nobody"), std::string::npos);

  ASSERT_TRUE(b.c.Send("/join #go\n"));
  EXPECT_EQ(a.c.ReadLine(), "* bob joined #go");
  EXPECT_EQ(b.c.ReadLine(), "* bob joined #go");
  ASSERT_TRUE(a.c.Send("/part\n"));
  EXPECT_EQ(b.c.ReadLine(), "* Alice left #go");
  EXPECT_EQ(a.c.ReadLine(), "* Alice joined #lobby");

  ASSERT_TRUE(a.c.Send("/frobnicate\n"));
  auto unknown = a.c.ReadLine();
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->rfind("! ", 0), 0u) << *unknown;
  ASSERT_TRUE(a.c.Send("/debug panic\n"));  // without --enable-debug-commands: no such command
  auto nodebug = a.c.ReadLine();
  ASSERT_TRUE(nodebug);
  EXPECT_EQ(nodebug->rfind("! ", 0), 0u) << *nodebug;

  ASSERT_TRUE(a.c.Send("/help\n"));
  std::string help;
  for (int i = 0; i < 6; ++i) {
    auto l = a.c.ReadLine();
    ASSERT_TRUE(l);
    EXPECT_EQ(l->rfind("* ", 0), 0u) << *l;
    help += *l + "\n";
  }
  for (const char* cmd : {"/nick", "/join", "/part", "/msg", "/me", "/who", "/rooms", "/quit"}) {
    // The help text may span more lines than read above; keep reading until each is seen.
    while (help.find(cmd) == std::string::npos) {
      auto l = a.c.ReadLine();
      ASSERT_TRUE(l) << "help never mentioned " << cmd << ":\n" << help;
      help += *l + "\n";
    }
  }

  ASSERT_TRUE(b.c.Send("/join lobby\n"));
  EXPECT_EQ(b.c.ReadLine(), "* bob joined #lobby");
  ASSERT_TRUE(a.c.SkipUntil("* bob joined #lobby"));
  ASSERT_TRUE(b.c.Send("/quit off to lunch\n"));
  EXPECT_EQ(b.c.ReadLine(), "* bye");
  EXPECT_TRUE(b.c.ReadToEof().has_value());
  EXPECT_EQ(a.c.ReadLine(), "* bob left #lobby (off to lunch)");
}

TEST_P(E2E, ChatOverlongLineIsRefusedAndCloses) {
  ServerProcess s(Args({"--max-line=100"}));
  ASSERT_TRUE(s.ok());
  User a = Enter(s.chat_port());
  User b = EnterSeenBy(s.chat_port(), {&a});
  ASSERT_TRUE(a.c.Send(std::string(100, 'a') + "\r\n"));  // at the limit: delivered
  EXPECT_EQ(b.c.ReadLine(), "[#lobby] " + a.nick + ": " + std::string(100, 'a'));
  ASSERT_TRUE(a.c.Send(std::string(101, 'b') + "\n"));
  EXPECT_EQ(a.c.ReadLine(), "! line too long (max 100 bytes)");
  EXPECT_TRUE(a.c.ReadToEof().has_value());
  EXPECT_EQ(b.c.ReadLine(), "* " + a.nick + " left #lobby");
  ExpectNothingPending(b);  // nothing of the overlong line reached the room
}

TEST_P(E2E, ChatHalfCloseDeliversPendingRepliesThenCloses) {
  ServerProcess s(Args());
  ASSERT_TRUE(s.ok());
  User a = Enter(s.chat_port());
  ASSERT_TRUE(a.c.Send("/who\n/rooms\n"));
  a.c.ShutdownWrite();
  EXPECT_EQ(a.c.ReadLine(), "* #lobby: " + a.nick);
  EXPECT_EQ(a.c.ReadLine(), "* rooms: #lobby(1)");
  EXPECT_EQ(a.c.ReadToEof(), "");
}

TEST_P(E2E, ChatTelnetNegotiationIsRefusedAndStripped) {
  ServerProcess s(Args());
  ASSERT_TRUE(s.ok());
  User a = Enter(s.chat_port());
  User b = EnterSeenBy(s.chat_port(), {&a});
  // IAC DO ECHO, IAC WILL NAWS, a subnegotiation, IAC IAC inside text.
  std::string in =
      "\xff\xfd\x01\xff\xfb\x1f\xff\xfa\x1f\x00\x50\x00\x18\xff\xf0hi\xff\xff there\r\n"s;
  ASSERT_TRUE(b.c.Send(in));
  // The refusals come back to b: IAC WONT ECHO, IAC DONT NAWS.
  EXPECT_EQ(b.c.ReadExactly(6), std::string("\xff\xfc\x01\xff\xfe\x1f", 6));
  // 0xFF alone is not valid UTF-8: a replacement character.
  EXPECT_EQ(a.c.ReadLine(), "[#lobby] " + b.nick + ": hi\xef\xbf\xbd there");
}

TEST_P(E2E, ChatTextCannotDriveAnotherTerminal) {
  ServerProcess s(Args());
  ASSERT_TRUE(s.ok());
  User a = Enter(s.chat_port());
  User b = EnterSeenBy(s.chat_port(), {&a});
  ASSERT_TRUE(
      b.c.Send("\x1b]0;pwned\x07safe\x1b[2J\x1b[31m text\x07\x08\xc2\x9b"
               "31m!\n"));
  EXPECT_EQ(a.c.ReadLine(), "[#lobby] " + b.nick + ": safe text!");
  ASSERT_TRUE(b.c.Send("caf\xc3\xa9 \xe2\x82\xac ok, bad: \xc3\x28 \xed\xa0\x80\n"));
  auto l = a.c.ReadLine();
  ASSERT_TRUE(l);
  EXPECT_EQ(l->rfind("[#lobby] " + b.nick + ": caf\xc3\xa9 \xe2\x82\xac ok, bad: \xef\xbf\xbd(", 0),
            0u)
      << *l;
  EXPECT_EQ(l->find('\xed'), std::string::npos);  // the surrogate did not get through
}

TEST_P(E2E, ChatFloodControlDropsExcessLines) {
  ServerProcess s(Args({"--chat-rate=5", "--chat-burst=5"}));
  ASSERT_TRUE(s.ok());
  User a = Enter(s.chat_port());
  User b = EnterSeenBy(s.chat_port(), {&a});
  std::string flood;
  for (int i = 0; i < 50; ++i) flood += "m" + std::to_string(i) + "\n";
  ASSERT_TRUE(b.c.Send(flood));
  EXPECT_EQ(b.c.ReadLine(), "! rate limited");
  // a gets the burst (about 5, plus what refilled meanwhile), not 50.
  std::this_thread::sleep_for(300ms);
  a.c.SetTimeout(300ms);
  int got = 0;
  while (auto l = a.c.ReadLine()) {
    EXPECT_EQ(l->rfind("[#lobby] " + b.nick + ": m", 0), 0u) << *l;
    ++got;
  }
  EXPECT_GE(got, 5);
  EXPECT_LE(got, 10);
  auto m = HttpGet(s.http_port(), "/metrics");
  EXPECT_GE(MetricValue(m.body, "greenline_rate_limited_total", "service=\"chat\"").value_or(0),
            40);
}

// How many goroutines of the dump at `port`'s /debug/goroutines are hibernating in each wait
// reason, and how many hold a stack.
struct DumpCounts {
  std::map<std::string, int> hibernating;  // by wait reason
  int with_stack = 0;
};
DumpCounts CountDump(uint16_t http_port) {
  DumpCounts counts;
  std::string body = HttpGet(http_port, "/debug/goroutines").body;
  std::istringstream in(body);
  std::string line, reason;
  while (std::getline(in, line)) {
    if (line.starts_with("goroutine ")) {
      size_t open = line.find('['), close = line.find(']');
      reason = open < close && close != std::string::npos ? line.substr(open + 1, close - open - 1)
                                                          : "?";
    } else if (line.find("(hibernating: no stack") != std::string::npos) {
      ++counts.hibernating[reason];
    } else if (line.starts_with("\t#0 ")) {
      ++counts.with_stack;
    }
  }
  return counts;
}

TEST_P(E2E, ChatIdleConnectionsHoldNoStackAndWakeForInputAndOutput) {
  ServerProcess s(Args());
  ASSERT_TRUE(s.ok());
  DumpCounts before = CountDump(s.http_port());
  const int asleep_before = before.hibernating["IO wait"];
  // Users in a room of their own: each read everything it was sent, so nothing is queued.
  constexpr int kUsers = 30;
  std::vector<User> users;
  for (int i = 0; i < kUsers; ++i) {
    // Each has left the lobby before the next comes: nobody hears of anyone in the lobby.
    users.push_back(Enter(s.chat_port()));
    ASSERT_TRUE(users.back().c.Send("/join #quiet\n"));
    ASSERT_EQ(users.back().c.ReadLine(), "* " + users.back().nick + " joined #quiet");
  }
  for (int i = 0; i < kUsers; ++i) {
    for (int j = i + 1; j < kUsers; ++j) {
      ASSERT_EQ(users[i].c.ReadLine(), "* " + users[j].nick + " joined #quiet") << i << " " << j;
    }
  }
  // Each connection: a reader hibernating in IO wait, a writer hibernating on its outbox. A writer
  // that has just written may not be back asleep yet: look again for a while.
  auto all_asleep = [&](DumpCounts* c) {
    for (int tries = 0; tries < 100; ++tries) {
      *c = CountDump(s.http_port());
      // The goroutines with a stack are the server's own (main, signals, accept loops, this
      // request): as many as before any user came.
      if (c->hibernating["IO wait"] >= asleep_before + kUsers &&
          c->hibernating["sync.Notifier.Wait"] >= kUsers && c->with_stack == before.with_stack) {
        return true;
      }
      std::this_thread::sleep_for(20ms);
    }
    return false;
  };
  DumpCounts idle;
  EXPECT_TRUE(all_asleep(&idle)) << idle.hibernating["IO wait"] << " readers, "
                                 << idle.hibernating["sync.Notifier.Wait"] << " writers asleep, "
                                 << idle.with_stack << " goroutines with a stack ("
                                 << before.with_stack << " before)";
  // A line wakes its sender's reader and every other member's writer; the sender's /who answer
  // wakes its own writer.
  ASSERT_TRUE(users[0].c.Send("anyone here?\n/who\n"));
  for (int i = 1; i < kUsers; ++i) {
    EXPECT_EQ(users[i].c.ReadLine(), "[#quiet] " + users[0].nick + ": anyone here?");
  }
  auto who = users[0].c.ReadLine();
  ASSERT_TRUE(who);
  EXPECT_EQ(who->rfind("* #quiet:", 0), 0u) << *who;
  EXPECT_EQ(std::count(who->begin(), who->end(), ' '), kUsers + 1) << *who;
  EXPECT_TRUE(all_asleep(&idle)) << "asleep again after the traffic: " << idle.with_stack
                                 << " goroutines with a stack (" << before.with_stack << " before)";
}

TEST_P(E2E, StatusJsonListsRoomsBiggestFirstAndEqualOnesByName) {
  // The status page's rooms (ChatHub::BiggestRooms through the board's sampler): biggest first,
  // rooms of the same size by name, #lobby even when empty, and how many rooms there are.
  ServerProcess s(Args({}));
  ASSERT_TRUE(s.ok());
  std::vector<User> users;
  for (int i = 0; i < 5; ++i) users.push_back(Enter(s.chat_port()));
  const char* rooms[] = {"#big", "#big", "#big", "#tie-b", "#tie-a"};
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(users[i].c.Send(std::string("/join ") + rooms[i] + "\n"));
    std::string joined = "* " + users[i].nick + " joined " + rooms[i];
    for (auto l = users[i].c.ReadLine(); l != joined; l = users[i].c.ReadLine()) {
      ASSERT_TRUE(l.has_value()) << users[i].nick << " never joined " << rooms[i];
    }
  }
  const std::string want =
      R"([{"members":3,"name":"#big"},{"members":1,"name":"#tie-a"},)"
      R"({"members":1,"name":"#tie-b"},{"members":0,"name":"#lobby"}])";
  nlohmann::json j;
  for (int i = 0; i < 100; ++i) {  // the board samples once a second
    j = nlohmann::json::parse(HttpGet(s.http_port(), "/status.json").body, nullptr, false);
    if (!j.is_discarded() && j["rooms"]["biggest"].dump() == want) break;
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_FALSE(j.is_discarded());
  EXPECT_EQ(j["rooms"]["biggest"].dump(), want);
  EXPECT_EQ(j["rooms"]["total"], 4);
  EXPECT_EQ(j["samples"].back()["connections"]["chat"], 5);
}

// `n` users in #lobby who have read every join notice (their own and the later ones').
std::vector<User> EnterMany(uint16_t port, int n) {
  std::vector<User> users;
  for (int i = 0; i < n; ++i) users.push_back(Enter(port));
  for (int i = 0; i < n; ++i) {
    for (int j = i + 1; j < n; ++j) {
      EXPECT_EQ(users[i].c.ReadLine(), "* " + users[j].nick + " joined #lobby");
    }
  }
  return users;
}

// A burst of `lines` lines of 4 KB from `sender`, numbered from 0.
std::string BurstLine(int k) { return std::to_string(k) + " " + std::string(3990, 'b'); }
void SendBurst(User& sender, int lines) {
  std::string all;
  for (int k = 0; k < lines; ++k) all += BurstLine(k) + "\n";
  ASSERT_TRUE(sender.c.Send(all));
}

// Reads `lines` burst lines from `sender` in order (skipping notices), at most `bytes_per_second`
// (0: as fast as it can); how many arrived in order.
int ReadBurst(User& u, const User& sender, int lines, double bytes_per_second) {
  auto start = std::chrono::steady_clock::now();
  size_t bytes = 0;
  for (int k = 0; k < lines;) {
    auto l = u.c.ReadLine();
    if (!l) return k;
    if (l->rfind("* ", 0) == 0) continue;  // someone leaving
    if (*l != "[#lobby] " + sender.nick + ": " + BurstLine(k)) return k;
    ++k;
    bytes += l->size() + 2;
    if (bytes_per_second > 0) {
      std::this_thread::sleep_until(
          start +
          std::chrono::duration_cast<std::chrono::nanoseconds>(
              std::chrono::duration<double>(static_cast<double>(bytes) / bytes_per_second)));
    }
  }
  return lines;
}

// Samples `http_port`'s /metrics every 10 ms until stopped: the most chat output queued and the
// highest RSS it saw.
class OutputSampler {
 public:
  explicit OutputSampler(uint16_t http_port)
      : thread_([this, http_port] {
          while (!stop_.load()) {
            auto m = HttpGet(http_port, "/metrics");
            double q = MetricValue(m.body, "greenline_chat_output_bytes").value_or(0);
            double r = MetricValue(m.body, "process_resident_memory_bytes").value_or(0);
            max_queued_.store(std::max(max_queued_.load(), q));
            max_rss_.store(std::max(max_rss_.load(), r));
            std::this_thread::sleep_for(10ms);
          }
        }) {}
  ~OutputSampler() { Stop(); }
  void Stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }
  double max_queued() const { return max_queued_.load(); }
  double max_rss() const { return max_rss_.load(); }
  // Waits until some sample saw more than `bytes` queued, at most `timeout`.
  void WaitQueuedOver(double bytes, std::chrono::milliseconds timeout) const {
    auto end = std::chrono::steady_clock::now() + timeout;
    while (max_queued() <= bytes && std::chrono::steady_clock::now() < end) {
      std::this_thread::sleep_for(5ms);
    }
  }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<double> max_queued_{0}, max_rss_{0};
  std::thread thread_;  // last: it starts once the rest is made
};

TEST_P(E2E, ChatStressBurstIntoReadersThatDrainLosesNone) {
  // A reader may be over the soft limit (64 KiB here) for 10 s. A burst of 8 MB leaves readers that
  // start to read late and then drain as fast as they can far over it for a while: none is cut,
  // all get everything. (With the limit of old, a cut at once past --out-queue, they were cut.)
  // The readers wait until the server has queued more than all their soft limits together, so
  // some reader was over its limit however fast they read next to the server (a sanitizer build
  // is slower than they are); fixed receive buffers (no autotuning up to megabytes) keep the
  // kernel from absorbing the burst.
  ServerProcess s(Args({"--chat-rate=0", "--out-queue=64KiB", "--out-queue-hard=64MiB"}));
  ASSERT_TRUE(s.ok());
  constexpr int kReaders = 5, kLines = 2000;
  constexpr double kOverAll = kReaders * 64.0 * 1024;
  std::vector<User> readers = EnterMany(s.chat_port(), kReaders);
  for (User& r : readers) {
    int size = 256 << 10;
    ASSERT_EQ(setsockopt(r.c.fd(), SOL_SOCKET, SO_RCVBUF, &size, sizeof size), 0);
  }
  User sender = Enter(s.chat_port());
  for (User& r : readers) ASSERT_EQ(r.c.ReadLine(), "* " + sender.nick + " joined #lobby");
  std::vector<int> got(kReaders);
  std::vector<std::thread> threads;
  OutputSampler sampler(s.http_port());
  for (int i = 0; i < kReaders; ++i) {
    threads.emplace_back([&, i] {
      sampler.WaitQueuedOver(kOverAll, 5000ms);
      got[i] = ReadBurst(readers[i], sender, kLines, 0);
    });
  }
  SendBurst(sender, kLines);
  for (auto& t : threads) t.join();
  sampler.Stop();
  for (int i = 0; i < kReaders; ++i) EXPECT_EQ(got[i], kLines) << "reader " << i;
  // Some reader was over the soft limit (else this tested nothing).
  EXPECT_GT(sampler.max_queued(), kOverAll);
  auto m = HttpGet(s.http_port(), "/metrics");
  EXPECT_EQ(MetricValue(m.body, "greenline_disconnects_total", "reason=\"too_slow\""), 0);
  EXPECT_EQ(MetricValue(m.body, "greenline_connections_active", "service=\"chat\""), kReaders + 1);
}

TEST_P(E2E, ChatReaderOverTheSoftLimitIsCutAfterTheGraceUnlessItDrainsAtTheMinimumRate) {
  ServerProcess s(Args({"--chat-rate=0", "--out-queue=64KiB", "--out-queue-grace=1s",
                        "--out-min-rate=64KiB", "--out-queue-hard=64MiB"}));
  ASSERT_TRUE(s.ok());
  // One never reads; one reads at 4 MB/s, far below what the server could send it but above the
  // minimum rate, so its queue stays over the soft limit for seconds.
  std::vector<User> users = EnterMany(s.chat_port(), 2);
  User& stuck = users[0];
  User& trickle = users[1];
  User sender = Enter(s.chat_port());
  ASSERT_EQ(stuck.c.ReadLine(), "* " + sender.nick + " joined #lobby");
  ASSERT_EQ(trickle.c.ReadLine(), "* " + sender.nick + " joined #lobby");
  // 16 MB: the kernel buffers about 8 MB for a reader that does not read; the rest is queued.
  constexpr int kLines = 4000;
  int got = 0;
  std::thread reader([&] { got = ReadBurst(trickle, sender, kLines, 4e6); });
  auto start = std::chrono::steady_clock::now();
  SendBurst(sender, kLines);
  // The stuck one is cut off once its grace is over, not before.
  std::optional<double> cut;
  auto waited = std::chrono::steady_clock::duration::zero();
  for (;;) {
    cut = MetricValue(HttpGet(s.http_port(), "/metrics").body, "greenline_disconnects_total",
                      "reason=\"too_slow\"");
    waited = std::chrono::steady_clock::now() - start;
    if (cut == 1 || waited > 15s) break;
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(cut, 1) << "the reader that never reads was not cut off";
  EXPECT_GE(waited, 1s) << "cut off before its grace was over";
  reader.join();
  EXPECT_EQ(got, kLines) << "the reader draining at 4 MB/s lost messages or was cut off";
  stuck.c.SetTimeout(10s);
  EXPECT_TRUE(stuck.c.ReadToEof().has_value()) << "the stuck reader's socket was not closed";
  auto m = HttpGet(s.http_port(), "/metrics");
  EXPECT_EQ(MetricValue(m.body, "greenline_disconnects_total", "reason=\"too_slow\""), 1);
}

TEST_P(E2E, ChatStressOutputBudgetPausesTheSenderAndCutsNobody) {
  // All queues together may hold 512 KiB. A 16 MB burst into 5 readers (with small receive
  // buffers, so the kernel holds little of it) would queue megabytes even on a slow (sanitizer)
  // build: the sender is not read while the budget is exhausted, TCP pushes back on it, and
  // everyone gets everything in order, nobody cut (each is over the 64 KiB soft limit for a while,
  // draining), with queued output never far over the budget.
  ServerProcess s(Args({"--chat-rate=0", "--out-queue=64KiB", "--out-memory=512KiB"}));
  ASSERT_TRUE(s.ok());
  constexpr int kReaders = 5, kLines = 4000;
  constexpr double kBudget = 512 << 10;
  std::vector<User> readers = EnterMany(s.chat_port(), kReaders);
  for (User& r : readers) {
    int size = 256 << 10;
    ASSERT_EQ(setsockopt(r.c.fd(), SOL_SOCKET, SO_RCVBUF, &size, sizeof size), 0);
  }
  User sender = Enter(s.chat_port());
  for (User& r : readers) ASSERT_EQ(r.c.ReadLine(), "* " + sender.nick + " joined #lobby");
  auto m0 = HttpGet(s.http_port(), "/metrics");
  EXPECT_EQ(MetricValue(m0.body, "greenline_chat_output_limit_bytes"), kBudget);
  [[maybe_unused]] double rss_before =
      MetricValue(m0.body, "process_resident_memory_bytes").value_or(0);
  std::vector<int> got(kReaders);
  std::vector<std::thread> threads;
  OutputSampler sampler(s.http_port());
  for (int i = 0; i < kReaders; ++i) {
    // Slower than the server fills their queues, so the budget runs out.
    threads.emplace_back([&, i] { got[i] = ReadBurst(readers[i], sender, kLines, 8e6); });
  }
  SendBurst(sender, kLines);
  for (auto& t : threads) t.join();
  sampler.Stop();
  for (int i = 0; i < kReaders; ++i) EXPECT_EQ(got[i], kLines) << "reader " << i;
  auto m = HttpGet(s.http_port(), "/metrics");
  EXPECT_GE(MetricValue(m.body, "greenline_chat_output_exhausted_total").value_or(0), 1)
      << "the budget was never exhausted: the test did not test it";
  EXPECT_EQ(MetricValue(m.body, "greenline_chat_output_exhausted"), 0);
  EXPECT_EQ(MetricValue(m.body, "greenline_disconnects_total", "reason=\"too_slow\""), 0);
  // The budget, plus what one line to the room adds once it is exhausted.
  EXPECT_LE(sampler.max_queued(), kBudget + kReaders * 4100);
  EXPECT_GT(sampler.max_queued(), 0);
#if !defined(GREENLINE_ASAN) && !defined(GREENLINE_TSAN)
  EXPECT_LT(sampler.max_rss() - rss_before, kBudget + 12e6)
      << "RSS before " << rss_before / 1e6 << " MB";
#endif
  // The sender was paused, not dropped: it is still there and can talk.
  ASSERT_TRUE(sender.c.Send("/who\n"));
  auto who = sender.c.ReadLine();
  ASSERT_TRUE(who) << "the sender was dropped";
  EXPECT_EQ(who->rfind("* #lobby:", 0), 0u) << *who;
}

TEST_P(E2E, ChatStressSlowReaderIsCutOffAndTheRoomGetsEverything) {
  // Past the hard limit a reader is cut off at once, whatever the soft limit's grace.
  ServerProcess s(Args(
      {"--out-queue=64KiB", "--out-queue-grace=1h", "--out-queue-hard=256KiB", "--chat-rate=0"}));
  ASSERT_TRUE(s.ok());
  // The slow one never reads after its welcome. (Its receive buffer is left alone: shrunk below
  // loopback's 64 KB MSS, the kernel would trickle the backlog out on persist-timer probes, and the
  // check that the server closed it would take minutes.)
  User slow = Enter(s.chat_port());
  constexpr int kFast = 10;
  std::vector<User> fast;
  for (int i = 0; i < kFast; ++i) fast.push_back(Enter(s.chat_port()));
  for (int i = 0; i < kFast; ++i) {
    for (int j = i + 1; j < kFast; ++j) {
      ASSERT_EQ(fast[i].c.ReadLine(), "* " + fast[j].nick + " joined #lobby");
    }
  }
  User sender = Enter(s.chat_port());
  for (User& f : fast) ASSERT_EQ(f.c.ReadLine(), "* " + sender.nick + " joined #lobby");
  // Rounds of 16 lines of 4,000 bytes. The fast readers must keep up or they are (rightly) cut
  // off too: after each round the sender waits until every one of them has read it. The slow
  // one's backlog grows by 64 KB a round: past the kernel's socket buffers (loopback's are large,
  // megabytes) it reaches the 256 KiB hard limit and is cut off. Then a few more rounds.
  constexpr int kRound = 16;
  std::string payload(3990, 'p');
  std::atomic<int> sent{0};
  std::vector<std::atomic<int>> progress(kFast);
  std::atomic<bool> done{false};
  std::vector<std::thread> readers;
  for (int i = 0; i < kFast; ++i) {
    readers.emplace_back([&, i] {
      User& f = fast[i];
      for (int k = 0; !done.load() || k < sent.load();) {
        if (k >= sent.load()) {
          std::this_thread::sleep_for(1ms);
          continue;
        }
        auto l = f.c.ReadLine();
        ASSERT_TRUE(l) << f.nick << " lost message " << k;
        if (l->rfind("* ", 0) == 0) continue;  // the slow one leaving
        ASSERT_EQ(*l, "[#lobby] " + sender.nick + ": " + std::to_string(k) + " " + payload);
        progress[i].store(++k);
      }
    });
  }
  int cut_at = -1;
  std::optional<double> rss_sample =
      MetricValue(HttpGet(s.http_port(), "/metrics").body, "process_resident_memory_bytes");
  ASSERT_TRUE(rss_sample.has_value()) << "no process_resident_memory_bytes in /metrics";
  double rss_before = *rss_sample;
  // After the cut, 400 rounds more (26 MB): a server that kept the slow one's backlog would grow by
  // that much.
  for (int round = 0; round < 800 && (cut_at < 0 || round < cut_at + 400); ++round) {
    for (int j = 0; j < kRound; ++j) {
      int k = sent.load();
      ASSERT_TRUE(sender.c.Send(std::to_string(k) + " " + payload + "\n"));
      sent.store(k + 1);
    }
    auto deadline = std::chrono::steady_clock::now() + 20s;
    for (auto& p : progress) {
      while (p.load() < sent.load() && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(1ms);
      }
      ASSERT_EQ(p.load(), sent.load()) << "a fast reader fell behind";
    }

    if (cut_at < 0 && round % 4 == 3) {
      auto m = HttpGet(s.http_port(), "/metrics");
      if (MetricValue(m.body, "greenline_disconnects_total", "reason=\"too_slow\"") == 1) {
        cut_at = round;
      }
    }
  }
  done.store(true);
  for (auto& t : readers) t.join();
  ASSERT_GE(cut_at, 0) << "the slow reader was never cut off after " << sent.load() << " lines";
  EXPECT_EQ(
      AwaitMetric(s.http_port(), "greenline_connections_active", "service=\"chat\"", kFast + 1),
      kFast + 1);
  auto m = HttpGet(s.http_port(), "/metrics");
  EXPECT_EQ(MetricValue(m.body, "greenline_disconnects_total", "reason=\"too_slow\""), 1);
  double rss = MetricValue(m.body, "process_resident_memory_bytes").value_or(1e12);
#if !defined(GREENLINE_ASAN) && !defined(GREENLINE_TSAN)
  // Memory stayed bounded. (Not under sanitizers: ASan's quarantine keeps freed memory, TSan
  // shadows it.)
  EXPECT_LT(rss - rss_before, 12e6)
      << sent.load() << " lines of 4 KB sent; RSS before " << rss_before / 1e6 << " MB";
#endif
  // The slow one's socket was closed: what the kernel had buffered, then EOF.
  slow.c.SetTimeout(10s);
  EXPECT_TRUE(slow.c.ReadToEof().has_value());
  std::printf(
      "slow reader cut off after %d rounds of 64 KB; %d lines sent; server RSS %.1f MB "
      "(%.1f MB before the flood)\n",
      cut_at + 1, sent.load(), rss / 1e6, rss_before / 1e6);
}

TEST_P(E2E, ChatStressPanicsAreRecoveredPerConnectionWhileOthersChat) {
  ServerProcess s(Args({"--enable-debug-commands", "--chat-rate=0"}));
  ASSERT_TRUE(s.ok());
  constexpr int kChatters = 100, kPanickers = 100, kMessages = 20;
  std::vector<User> chatters;
  for (int i = 0; i < kChatters; ++i) {
    chatters.push_back(Enter(s.chat_port()));
    ASSERT_TRUE(chatters.back().c.Send("/join talk\n"));
    ASSERT_EQ(chatters.back().c.ReadLine(), "* " + chatters.back().nick + " joined #talk");
  }
  // Everyone's join notices, read so the counts below are exact.
  for (int i = 0; i < kChatters; ++i) {
    for (int j = i + 1; j < kChatters; ++j) {
      ASSERT_EQ(chatters[i].c.ReadLine(), "* " + chatters[j].nick + " joined #talk");
    }
  }
  std::thread panickers([&] {
    for (int i = 0; i < kPanickers; ++i) {
      User p = Enter(s.chat_port());
      ASSERT_TRUE(p.c.Send("/debug panic\n"));
      EXPECT_EQ(p.c.ReadLine(), "! internal error");
      EXPECT_TRUE(p.c.ReadToEof().has_value());
    }
  });
  // Each chatter sends kMessages; each must receive all of everyone else's, in order per sender.
  for (int k = 0; k < kMessages; ++k) {
    for (int i = 0; i < kChatters; ++i) {
      ASSERT_TRUE(chatters[i].c.Send("msg " + std::to_string(k) + "\n"));
    }
  }
  for (int i = 0; i < kChatters; ++i) {
    std::vector<int> next(kChatters, 0);
    int expected = (kChatters - 1) * kMessages;
    for (int got = 0; got < expected;) {
      auto l = chatters[i].c.ReadLine();
      ASSERT_TRUE(l) << chatters[i].nick << " got " << got << " of " << expected;
      // "[#talk] guest-N: msg K"
      size_t colon = l->find(": msg ");
      ASSERT_TRUE(l->rfind("[#talk] ", 0) == 0 && colon != std::string::npos) << *l;
      std::string nick = l->substr(8, colon - 8);
      int from = -1;
      for (int j = 0; j < kChatters; ++j) {
        if (chatters[j].nick == nick) from = j;
      }
      ASSERT_GE(from, 0) << *l;
      ASSERT_EQ(std::stoi(l->substr(colon + 6)), next[from]++) << "from " << nick;
      ++got;
    }
  }
  panickers.join();
  EXPECT_EQ(AwaitMetric(s.http_port(), "greenline_panics_recovered_total", "service=\"chat\"",
                        kPanickers),
            kPanickers);
  std::string out = s.Output();
  EXPECT_NE(out.find("recovered panic"), std::string::npos);
  EXPECT_NE(out.find("/debug panic from 127.0.0.1:"), std::string::npos);
}

// ---- the process -----------------------------------------------------------------------------

TEST_P(E2E, GracefulShutdownNotifiesFlushesAndExitsZero) {
  ServerProcess s(Args({"--enable-debug-commands", "--shutdown-grace=5s"}));
  ASSERT_TRUE(s.ok());
  User a = Enter(s.chat_port());
  User b = EnterSeenBy(s.chat_port(), {&a});
  // b's handler is busy for 1 s: shutdown waits for it (and /healthz says 503 meanwhile).
  ASSERT_TRUE(b.c.Send("/debug block 1\n"));
  ASSERT_TRUE(b.c.ReadLine());  // the notice that it blocks
  Client e(s.echo_port());
  ASSERT_TRUE(e.Send("before\n"));
  ASSERT_EQ(e.ReadLine(), "before");
  auto start = std::chrono::steady_clock::now();
  s.Signal(SIGTERM);
  EXPECT_EQ(a.c.ReadLine(), "* server shutting down");
  EXPECT_TRUE(a.c.ReadToEof().has_value());
  EXPECT_TRUE(e.ReadToEof().has_value());
  EXPECT_EQ(HttpGet(s.http_port(), "/healthz").status, 503);
  EXPECT_EQ(Client(s.echo_port()).connected(), false);  // no longer accepting
  EXPECT_EQ(s.Wait(10s), 0) << s.Output();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  EXPECT_NE(s.Output().find("shutting down"), std::string::npos);
}

TEST_P(E2E, GracefulShutdownDeliversABacklogQueuedBeforeIt) {
  // A backlog queued for a reader that is not reading when SIGTERM comes, bigger than the kernel's
  // socket buffers can hold (twice the send buffer's maximum, tcp_wmem, plus 2 MB; at least 6 MB):
  // the server must keep writing after the signal, until the grace period's flush deadline, not
  // give up after a moment. (A long grace: sanitizer builds are slow readers.)
  size_t wmem_max = 4 << 20;
  {
    std::ifstream in("/proc/sys/net/ipv4/tcp_wmem");
    size_t lo = 0, def = 0;
    in >> lo >> def >> wmem_max;
  }
  const size_t backlog = std::max<size_t>(6u << 20, 2 * wmem_max + (2u << 20));
  if (backlog > (48u << 20)) GTEST_SKIP() << "tcp_wmem's maximum is too large to outgrow";
  ServerProcess s(Args({"--chat-rate=0", "--out-queue=64MiB", "--shutdown-grace=10s"}));
  ASSERT_TRUE(s.ok());
  User reader = Enter(s.chat_port());
  User sender = EnterSeenBy(s.chat_port(), {&reader});
  const std::string payload(1000, 'q');
  const int kLines = static_cast<int>(backlog / 1000);
  std::string burst;
  for (int i = 0; i < kLines; ++i) burst += std::to_string(i) + " " + payload + "\n";
  // The server reads it all (nothing is written back to the sender, the queue has room). Lines
  // are handled in order: the sender's /who answer means every line was queued.
  ASSERT_TRUE(sender.c.Send(burst + "/who\n"));
  sender.c.SetTimeout(30s);
  auto who = sender.c.ReadLine();
  ASSERT_TRUE(who) << "the sender's lines were not all handled";
  ASSERT_EQ(who->rfind("* #lobby: ", 0), 0u) << *who;
  auto start = std::chrono::steady_clock::now();
  s.Signal(SIGTERM);
  std::this_thread::sleep_for(1500ms);  // the reader looks away for a while
  reader.c.SetTimeout(10s);
  for (int i = 0; i < kLines; ++i) {
    auto l = reader.c.ReadLine();
    ASSERT_TRUE(l) << "line " << i << " of " << kLines << " lost at shutdown";
    ASSERT_EQ(*l, "[#lobby] " + sender.nick + ": " + std::to_string(i) + " " + payload);
  }
  EXPECT_EQ(reader.c.ReadLine(), "* server shutting down");
  EXPECT_EQ(reader.c.ReadToEof(), "");
  EXPECT_EQ(s.Wait(15s), 0) << s.Output();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
}

TEST_P(E2E, SecondSignalExitsAtOnce) {
  ServerProcess s(Args({"--enable-debug-commands", "--shutdown-grace=30s"}));
  ASSERT_TRUE(s.ok());
  User a = Enter(s.chat_port());
  ASSERT_TRUE(a.c.Send("/debug block 20\n"));
  ASSERT_TRUE(a.c.ReadLine());
  s.Signal(SIGINT);
  std::this_thread::sleep_for(200ms);
  auto start = std::chrono::steady_clock::now();
  s.Signal(SIGINT);
  EXPECT_EQ(s.Wait(5s), 1);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
}

TEST_P(E2E, SigquitDumpsGoroutinesAndKeepsServing) {
  ServerProcess s(Args());
  ASSERT_TRUE(s.ok());
  Client e(s.echo_port());
  ASSERT_TRUE(e.Send("a\n"));
  ASSERT_EQ(e.ReadLine(), "a");
  s.Signal(SIGQUIT);
  std::string out;
  for (int i = 0; i < 100 && out.find("goroutine 1 [") == std::string::npos; ++i) {
    std::this_thread::sleep_for(50ms);
    out = s.Output();
  }
  EXPECT_NE(out.find("goroutine 1 ["), std::string::npos) << out;
  EXPECT_NE(out.find("IO wait"), std::string::npos) << out;  // the echo connection's reader
  ASSERT_TRUE(e.Send("b\n"));
  EXPECT_EQ(e.ReadLine(), "b");
  auto dump = HttpGet(s.http_port(), "/debug/goroutines");
  EXPECT_EQ(dump.status, 200);
  EXPECT_NE(dump.body.find("goroutine 1 ["), std::string::npos);
}

TEST_P(E2E, MetricsCountTrafficAndJsonLogsParse) {
  ServerProcess s(Args({"--log-format=json", "--log-level=debug"}));
  ASSERT_TRUE(s.ok());
  {
    Client e(s.echo_port());
    ASSERT_TRUE(e.Send("one\ntwo\nthree\n"));
    ASSERT_EQ(e.ReadExactly(14), "one\ntwo\nthree\n");
    User u = Enter(s.chat_port());
    ASSERT_TRUE(u.c.Send("/nick \"quoted\\name\n"));  // an error line that carries odd bytes
    ASSERT_TRUE(u.c.ReadLine());
  }
  // Both connections are over once counted as closed (after the server's lingering close).
  EXPECT_EQ(AwaitMetric(s.http_port(), "greenline_connections_active", "service=\"chat\"", 0), 0);
  EXPECT_EQ(AwaitMetric(s.http_port(), "greenline_connections_active", "service=\"echo\"", 0), 0);
  auto m = HttpGet(s.http_port(), "/metrics");
  ASSERT_EQ(m.status, 200);
  EXPECT_EQ(MetricValue(m.body, "greenline_lines_received_total", "service=\"echo\""), 3);
  EXPECT_EQ(MetricValue(m.body, "greenline_lines_sent_total", "service=\"echo\""), 3);
  EXPECT_EQ(MetricValue(m.body, "greenline_connections_total", "service=\"echo\""), 1);
  EXPECT_EQ(MetricValue(m.body, "greenline_connections_active", "service=\"echo\""), 0);
  std::string kind = GetParam() == PollerKind::kIoUring ? "io_uring" : "epoll";
  EXPECT_EQ(MetricValue(m.body, "greenline_poller_info", "kind=\"" + kind + "\""), 1);
  EXPECT_GT(MetricValue(m.body, "process_resident_memory_bytes").value_or(0), 0);
  s.Signal(SIGTERM);
  ASSERT_EQ(s.Wait(10s), 0);
  std::istringstream lines(s.Output());
  std::string line;
  int n = 0;
  bool saw_poller = false;
  while (std::getline(lines, line)) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << "not JSON: " << line;
    ASSERT_TRUE(j.contains("msg") && j.contains("level") && j.contains("time")) << line;
    saw_poller |= j["msg"].get<std::string>().find(kind) != std::string::npos;
    ++n;
  }
  EXPECT_GT(n, 3);
  EXPECT_TRUE(saw_poller);
}

// ---- flags -----------------------------------------------------------------------------------

struct Ran {
  int status;
  std::string out;
};
Ran RunGreenline(const std::string& args) {
  std::string cmd = std::string(GreenlineBinary()) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int st = pclose(p);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

TEST(E2EFlags, HelpVersionAndUsageErrors) {
  Ran help = RunGreenline("--help");
  EXPECT_EQ(help.status, 0);
  for (const char* flag : {"--echo-addr",
                           "--chat-addr",
                           "--http-addr",
                           "--workers",
                           "--poller",
                           "--max-conns",
                           "--max-line",
                           "--idle-timeout",
                           "--out-queue",
                           "--out-queue-grace",
                           "--out-min-rate",
                           "--out-queue-hard",
                           "--out-memory",
                           "--chat-rate",
                           "--chat-burst",
                           "--shutdown-grace",
                           "--log-level",
                           "--log-format",
                           "--enable-debug-commands",
                           "GREENLINE_CHAT_ADDR",
                           "GREENLINE_OUT_MEMORY"}) {
    EXPECT_NE(help.out.find(flag), std::string::npos) << flag << " missing from --help";
  }
  Ran version = RunGreenline("--version");
  EXPECT_EQ(version.status, 0);
  EXPECT_EQ(version.out.rfind("greenline ", 0), 0u) << version.out;
  Ran bad = RunGreenline("--no-such-flag");
  EXPECT_EQ(bad.status, 2);
  Ran dur = RunGreenline("--idle-timeout=soon");
  EXPECT_EQ(dur.status, 2);
  EXPECT_NE(dur.out.find("--idle-timeout"), std::string::npos) << dur.out;
  Ran poller = RunGreenline("--poller=kqueue");
  EXPECT_EQ(poller.status, 2);
  // The output bounds: a hard limit under the soft one, a budget under the hard limit, and a bad
  // rate or grace are usage errors that name the flag.
  for (const char* args :
       {"--out-queue=2MiB --out-queue-hard=1MiB", "--out-queue=32MiB --out-memory=16MiB",
        "--out-min-rate=fast", "--out-queue-grace=later", "--out-memory=lots"}) {
    Ran r = RunGreenline(args);
    EXPECT_EQ(r.status, 2) << args;
    std::string flag(args, std::string_view(args).find_last_of('='));
    flag = flag.substr(flag.rfind(' ') == std::string::npos ? 0 : flag.rfind(' ') + 1);
    EXPECT_NE(r.out.find(flag), std::string::npos) << args << ": " << r.out;
  }
}

TEST(E2EFlags, EnvironmentVariablesConfigureAndFlagsWin) {
  setenv("GREENLINE_MAX_LINE", "10", 1);
  setenv("GREENLINE_IDLE_TIMEOUT", "5m", 1);
  {
    ServerProcess s({"--poller=epoll"});
    ASSERT_TRUE(s.ok());
    Client c(s.echo_port());
    ASSERT_TRUE(c.Send(std::string(11, 'z') + "\n"));
    EXPECT_EQ(c.ReadLine(), "! line too long (max 10 bytes)");
    EXPECT_NE(s.Output().find("idle timeout 5m0s"), std::string::npos) << s.Output();
  }
  {
    ServerProcess s({"--poller=epoll", "--max-line=20"});
    ASSERT_TRUE(s.ok());
    Client c(s.echo_port());
    ASSERT_TRUE(c.Send(std::string(11, 'z') + "\n"));
    EXPECT_EQ(c.ReadLine(), std::string(11, 'z'));
  }
  unsetenv("GREENLINE_MAX_LINE");
  unsetenv("GREENLINE_IDLE_TIMEOUT");
}

TEST(E2EFlags, ListenersCanBeTurnedOffAndABusyPortFailsClearly) {
  ServerProcess a({"--poller=epoll", "--chat-addr=off"});
  ASSERT_TRUE(a.ok());
  EXPECT_FALSE(Client(a.chat_port()).connected());
  EXPECT_NE(a.Output().find("chat on off"), std::string::npos) << a.Output();
  Ran busy = RunGreenline("--poller=epoll --echo-addr=127.0.0.1:" + std::to_string(a.echo_port()) +
                          " --chat-addr=off --http-addr=off");
  EXPECT_EQ(busy.status, 1);
  EXPECT_NE(busy.out.find("cannot listen"), std::string::npos) << busy.out;
}

}  // namespace
}  // namespace greenline::testing
