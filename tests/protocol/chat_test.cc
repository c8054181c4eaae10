// Tests for protocol/chat.h: every command parses to its kind and arguments, in any case and with
// any blanks around the arguments; each bad use gives its exact error; /debug exists only when
// enabled; "//" escapes a leading slash; blank lines are ignored; and every line the server sends
// has its exact wording (cut /who and /rooms lists saying how many more, /debug block's seconds as
// %g), starts with "* ", "[" or "! " and ends with CRLF.
#include "protocol/chat.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace greenline::protocol {
namespace {

using Kind = Command::Kind;

Command Parse(std::string_view line, bool debug = false) { return ParseChatLine(line, debug); }

// The error a line gets, or a note that it got none.
std::string ErrorOf(std::string_view line, bool debug = false) {
  const Command c = Parse(line, debug);
  return c.kind == Kind::kInvalid ? c.error : "(valid)";
}

TEST(ParseChatLineTest, BlankLinesAreIgnored) {
  EXPECT_EQ(Parse("").kind, Kind::kNone);
  EXPECT_EQ(Parse("   ").kind, Kind::kNone);
}

TEST(ParseChatLineTest, PlainLineIsSaidAsIs) {
  const Command c = Parse("  hello, world ");
  EXPECT_EQ(c.kind, Kind::kSay);
  EXPECT_EQ(c.text, "  hello, world ");
}

TEST(ParseChatLineTest, DoubleSlashSaysALineStartingWithSlash) {
  const Command c = Parse("//shrug me");
  EXPECT_EQ(c.kind, Kind::kSay);
  EXPECT_EQ(c.text, "/shrug me");
  EXPECT_EQ(Parse("//").text, "/");
}

TEST(ParseChatLineTest, Nick) {
  const Command c = Parse("/nick  Alice_1 ");
  EXPECT_EQ(c.kind, Kind::kNick);
  EXPECT_EQ(c.name, "Alice_1");
  EXPECT_EQ(ErrorOf("/nick"), "usage: /nick NAME");
  EXPECT_EQ(ErrorOf("/nick   "), "usage: /nick NAME");
  EXPECT_EQ(ErrorOf("/nick bad.name"),
            "invalid nick: bad.name (letters, digits, _ and -, at most 24)");
  EXPECT_EQ(ErrorOf("/nick two words"),
            "invalid nick: two words (letters, digits, _ and -, at most 24)");
  EXPECT_EQ(ErrorOf("/nick " + std::string(25, 'a')),
            "invalid nick: " + std::string(25, 'a') + " (letters, digits, _ and -, at most 24)");
  EXPECT_EQ(ErrorOf("/nick " + std::string(24, 'a')), "(valid)");
}

TEST(ParseChatLineTest, JoinMakesTheRoomCanonical) {
  EXPECT_EQ(Parse("/join go").kind, Kind::kJoin);
  EXPECT_EQ(Parse("/join go").room, "#go");
  EXPECT_EQ(Parse("/join #go").room, "#go");
  EXPECT_EQ(Parse("/join  #Go-2 ").room, "#Go-2") << "case is the hub's business";
  EXPECT_EQ(ErrorOf("/join"), "usage: /join ROOM");
  EXPECT_EQ(ErrorOf("/join #"),
            "invalid room: # (letters, digits, _ and -, at most 24; # optional)");
  EXPECT_EQ(ErrorOf("/join ##go"),
            "invalid room: ##go (letters, digits, _ and -, at most 24; # optional)");
  EXPECT_EQ(ErrorOf("/join a b"),
            "invalid room: a b (letters, digits, _ and -, at most 24; # optional)");
}

TEST(ParseChatLineTest, Msg) {
  const Command c = Parse("/msg bob  hello  there ");
  EXPECT_EQ(c.kind, Kind::kMsg);
  EXPECT_EQ(c.name, "bob");
  EXPECT_EQ(c.text, "hello  there");
  EXPECT_EQ(ErrorOf("/msg"), "usage: /msg NICK text");
  EXPECT_EQ(ErrorOf("/msg bob"), "usage: /msg NICK text");
  EXPECT_EQ(ErrorOf("/msg bob   "), "usage: /msg NICK text");
  EXPECT_EQ(ErrorOf("/msg b@d hi"), "invalid nick: b@d (letters, digits, _ and -, at most 24)");
}

TEST(ParseChatLineTest, Me) {
  const Command c = Parse("/me waves ");
  EXPECT_EQ(c.kind, Kind::kMe);
  EXPECT_EQ(c.text, "waves");
  EXPECT_EQ(ErrorOf("/me"), "usage: /me text");
  EXPECT_EQ(ErrorOf("/me  "), "usage: /me text");
}

TEST(ParseChatLineTest, QuitWithAndWithoutReason) {
  EXPECT_EQ(Parse("/quit").kind, Kind::kQuit);
  EXPECT_EQ(Parse("/quit").text, "");
  EXPECT_EQ(Parse("/quit  gone fishing ").text, "gone fishing");
}

TEST(ParseChatLineTest, CommandsWithoutArguments) {
  EXPECT_EQ(Parse("/part").kind, Kind::kPart);
  EXPECT_EQ(Parse("/who").kind, Kind::kWho);
  EXPECT_EQ(Parse("/rooms").kind, Kind::kRooms);
  EXPECT_EQ(Parse("/help").kind, Kind::kHelp);
  EXPECT_EQ(Parse("/help  ").kind, Kind::kHelp);
  EXPECT_EQ(ErrorOf("/part now"), "usage: /part");
  EXPECT_EQ(ErrorOf("/who #go"), "usage: /who");
  EXPECT_EQ(ErrorOf("/rooms all"), "usage: /rooms");
  EXPECT_EQ(ErrorOf("/help nick"), "usage: /help");
}

TEST(ParseChatLineTest, CommandNamesIgnoreCase) {
  EXPECT_EQ(Parse("/NICK bob").kind, Kind::kNick);
  EXPECT_EQ(Parse("/Who").kind, Kind::kWho);
  EXPECT_EQ(Parse("/DEBUG panic", true).kind, Kind::kDebugPanic);
}

TEST(ParseChatLineTest, UnknownCommands) {
  EXPECT_EQ(ErrorOf("/foo"), "unknown command /foo (try /help)");
  EXPECT_EQ(ErrorOf("/Foo bar baz"), "unknown command /Foo (try /help)");
  EXPECT_EQ(ErrorOf("/"), "unknown command / (try /help)");
  EXPECT_EQ(ErrorOf("/ hi"), "unknown command / (try /help)");
  EXPECT_EQ(ErrorOf("/nickname bob"), "unknown command /nickname (try /help)");
}

TEST(ParseChatLineTest, DebugCommandsExistOnlyWhenEnabled) {
  EXPECT_EQ(ErrorOf("/debug panic"), "unknown command /debug (try /help)");
  EXPECT_EQ(ErrorOf("/debug block 1"), "unknown command /debug (try /help)");

  EXPECT_EQ(Parse("/debug panic", true).kind, Kind::kDebugPanic);
  const Command block = Parse("/debug block 2.5", true);
  EXPECT_EQ(block.kind, Kind::kDebugBlock);
  EXPECT_EQ(block.seconds, 2.5);
  EXPECT_EQ(Parse("/debug block 3600", true).seconds, 3600);

  const std::string usage = "usage: /debug panic | /debug block SECONDS";
  EXPECT_EQ(ErrorOf("/debug", true), usage);
  EXPECT_EQ(ErrorOf("/debug panic now", true), usage);
  EXPECT_EQ(ErrorOf("/debug block", true), usage);
  EXPECT_EQ(ErrorOf("/debug sleep 1", true), usage);
  for (const std::string bad : {"0", "-1", "3601", "1e9", "inf", "nan", "1s", "1 2", "x"}) {
    EXPECT_EQ(ErrorOf("/debug block " + bad, true),
              "invalid seconds: " + bad + " (a number above 0, at most 3600)");
  }
}

TEST(ParseChatLineTest, ArgumentsAreViewsOfTheLine) {
  const std::string line = "/msg bob hi";
  const Command c = Parse(line);
  EXPECT_EQ(c.name.data(), line.data() + 5);
  EXPECT_EQ(c.text.data(), line.data() + 9);
}

TEST(ChatLinesTest, Names) {
  EXPECT_EQ(GuestNick(1), "guest-1");
  EXPECT_EQ(GuestNick(123456), "guest-123456");
  EXPECT_EQ(NameKey("Alice_B-9"), "alice_b-9");
  EXPECT_EQ(kLobby, "#lobby");
}

TEST(ChatLinesTest, ExactFormats) {
  EXPECT_EQ(
      WelcomeLine("guest-1", "#lobby"),
      "* welcome to greenline chat: you are guest-1 in #lobby (/help lists the commands)\r\n");
  EXPECT_EQ(SayLine("#go", "alice", "hi there"), "[#go] alice: hi there\r\n");
  EXPECT_EQ(ActionLine("#go", "alice", "waves"), "[#go] * alice waves\r\n");
  EXPECT_EQ(PrivateLine("alice", "psst"), "[pm] alice: psst\r\n");
  EXPECT_EQ(NickLine("guest-1", "alice"), "* guest-1 is now known as alice\r\n");
  EXPECT_EQ(JoinedLine("alice", "#go"), "* alice joined #go\r\n");
  EXPECT_EQ(LeftLine("alice", "#lobby"), "* alice left #lobby\r\n");
  EXPECT_EQ(LeftLine("alice", "#go", "gone fishing"), "* alice left #go (gone fishing)\r\n");
  const std::vector<std::string_view> nicks{"alice", "bob", "guest-3"};
  EXPECT_EQ(WhoLine("#go", nicks, 3), "* #go: alice bob guest-3\r\n");
  const std::vector<RoomCount> rooms{{"#lobby", 3}, {"#go", 1}};
  EXPECT_EQ(RoomsLine(rooms, 2), "* rooms: #lobby(3) #go(1)\r\n");
  EXPECT_EQ(DebugBlockLine(2.5), "* blocking this connection's handler for 2.5 s\r\n");
  EXPECT_EQ(kByeLine, "* bye\r\n");
  EXPECT_EQ(kShutdownLine, "* server shutting down\r\n");
}

TEST(ChatLinesTest, CutListsSayHowManyMore) {
  const std::vector<std::string_view> nicks{"alice", "bob"};
  EXPECT_EQ(WhoLine("#big", nicks, 1000), "* #big: alice bob (and 998 more)\r\n");
  EXPECT_EQ(WhoLine("#big", nicks, 3), "* #big: alice bob (and 1 more)\r\n");
  EXPECT_EQ(WhoLine("#big", nicks, 2), "* #big: alice bob\r\n") << "all shown: no suffix";
  EXPECT_EQ(WhoLine("#big", nicks, 0), "* #big: alice bob\r\n") << "a total below the list's size";
  EXPECT_EQ(WhoLine("#empty", {}, 5), "* #empty: (and 5 more)\r\n");
  const std::vector<RoomCount> rooms{{"#lobby", 3}, {"#go", 1}};
  EXPECT_EQ(RoomsLine(rooms, 250), "* rooms: #lobby(3) #go(1) (and 248 more)\r\n");
  EXPECT_EQ(RoomsLine(rooms, 2), "* rooms: #lobby(3) #go(1)\r\n");
}

TEST(ChatLinesTest, DebugBlockWritesTheSecondsAsPercentG) {
  const auto line = [](std::string_view seconds) {
    return "* blocking this connection's handler for " + std::string(seconds) + " s\r\n";
  };
  EXPECT_EQ(DebugBlockLine(1), line("1"));
  EXPECT_EQ(DebugBlockLine(3600), line("3600"));
  EXPECT_EQ(DebugBlockLine(0.1234567), line("0.123457")) << "6 significant digits";
  EXPECT_EQ(DebugBlockLine(1e-5), line("1e-05"));
  EXPECT_EQ(DebugBlockLine(1234567), line("1.23457e+06"));
}

TEST(ChatLinesTest, ExactErrors) {
  EXPECT_EQ(ErrorLine("unknown command /foo (try /help)"),
            "! unknown command /foo (try /help)\r\n");
  EXPECT_EQ(LineTooLongLine(4096), "! line too long (max 4096 bytes)\r\n");
  EXPECT_EQ(NoSuchUserLine("bob"), "! no such user: bob\r\n");
  EXPECT_EQ(NickTakenLine("Bob"), "! nick taken: Bob\r\n");
  EXPECT_EQ(AlreadyInLine("#go"), "! already in #go\r\n");
  EXPECT_EQ(kRateLimitedLine, "! rate limited\r\n");
  EXPECT_EQ(kTooSlowLine, "! too slow\r\n");
  EXPECT_EQ(TooSlowLine(false), "! too slow\r\n");
  EXPECT_EQ(TooSlowLine(true), "\r\n! too slow\r\n") << "ends a line cut short first";
  EXPECT_EQ(kServerFullLine, "! server full\r\n");
  EXPECT_EQ(kInternalErrorLine, "! internal error\r\n");
}

TEST(ChatLinesTest, HelpListsEveryCommand) {
  const std::string help = HelpText(false);
  for (const char* command : {"/nick NAME", "/join ROOM", "/part", "/msg NICK text", "/me text",
                              "/who", "/rooms", "/quit [reason]", "/help", "//text"}) {
    EXPECT_NE(help.find(command), std::string::npos) << command;
  }
  EXPECT_EQ(help.find("/debug"), std::string::npos);
  const std::string debug_help = HelpText(true);
  EXPECT_NE(debug_help.find("/debug panic"), std::string::npos);
  EXPECT_NE(debug_help.find("/debug block SECONDS"), std::string::npos);
}

TEST(ChatLinesTest, EveryServerLineIsOneMarkedCrlfLine) {
  const std::vector<std::string_view> nicks{"a"};
  const std::vector<RoomCount> rooms{{"#lobby", 1}};
  std::vector<std::string> lines = {
      WelcomeLine("guest-1", "#lobby"),
      SayLine("#r", "n", "t"),
      ActionLine("#r", "n", "t"),
      PrivateLine("n", "t"),
      NickLine("a", "b"),
      JoinedLine("n", "#r"),
      LeftLine("n", "#r"),
      LeftLine("n", "#r", "x"),
      WhoLine("#r", nicks, 1),
      WhoLine("#r", nicks, 1000),
      RoomsLine(rooms, 1),
      RoomsLine(rooms, 1000),
      DebugBlockLine(0.5),
      std::string(kByeLine),
      std::string(kShutdownLine),
      ErrorLine("e"),
      LineTooLongLine(1),
      NoSuchUserLine("n"),
      NickTakenLine("n"),
      AlreadyInLine("#r"),
      std::string(kRateLimitedLine),
      std::string(kTooSlowLine),
      TooSlowLine(false),
      std::string(kServerFullLine),
      std::string(kInternalErrorLine),
  };
  // /help is several lines: check each.
  for (std::string help = HelpText(true); !help.empty();) {
    const std::size_t end = help.find("\r\n");
    ASSERT_NE(end, std::string::npos);
    lines.push_back(help.substr(0, end + 2));
    help.erase(0, end + 2);
  }
  for (const std::string& line : lines) {
    EXPECT_TRUE(line.starts_with("* ") || line.starts_with("[") || line.starts_with("! ")) << line;
    ASSERT_TRUE(line.ends_with("\r\n")) << line;
    EXPECT_EQ(line.find('\n'), line.size() - 1) << line;
    EXPECT_EQ(line.find('\r'), line.size() - 2) << line;
  }
}

}  // namespace
}  // namespace greenline::protocol
