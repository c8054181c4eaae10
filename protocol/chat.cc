#include "protocol/chat.h"

#include <charconv>
#include <initializer_list>
#include <string>
#include <system_error>

namespace greenline::protocol {
namespace {

constexpr std::string_view kCrlf = "\r\n";
constexpr std::string_view kNameRule = "letters, digits, _ and -, at most 24";
static_assert(kMaxNameLength == 24, "kNameRule and HelpText spell out the limit");
static_assert(kMaxDebugBlockSeconds == 3600, "ParseDebug and HelpText spell out the limit");

std::string_view TrimBlanks(std::string_view s) {
  const std::size_t first = s.find_first_not_of(' ');
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(' ') - first + 1);
}

// Splits "word rest" at the first blank: returns the word, leaves the rest (trimmed) in *rest.
std::string_view FirstWord(std::string_view s, std::string_view* rest) {
  const std::size_t blank = s.find(' ');
  if (blank == std::string_view::npos) {
    *rest = {};
    return s;
  }
  *rest = TrimBlanks(s.substr(blank + 1));
  return s.substr(0, blank);
}

std::string Concat(std::initializer_list<std::string_view> parts) {
  std::size_t size = 0;
  for (const std::string_view p : parts) size += p.size();
  std::string out;
  out.reserve(size);
  for (const std::string_view p : parts) out.append(p);
  return out;
}

// " (and N more)" for a list that shows `shown` of `total` items; "" when it shows them all.
std::string AndMore(std::size_t shown, std::size_t total) {
  if (total <= shown) return {};
  return Concat({" (and ", std::to_string(total - shown), " more)"});
}

Command Invalid(std::string error) {
  Command c;
  c.kind = Command::Kind::kInvalid;
  c.error = std::move(error);
  return c;
}

Command Usage(std::string_view usage) { return Invalid(Concat({"usage: ", usage})); }

Command Of(Command::Kind kind) {
  Command c;
  c.kind = kind;
  return c;
}

// The commands that take no argument refuse one, so "/who #go" says what /who does instead of
// quietly listing the user's own room.
Command NoArgument(Command::Kind kind, std::string_view usage, std::string_view rest) {
  return rest.empty() ? Of(kind) : Usage(usage);
}

Command ParseDebug(std::string_view rest) {
  constexpr std::string_view kDebugUsage = "/debug panic | /debug block SECONDS";
  std::string_view arg;
  const std::string_view sub = FirstWord(rest, &arg);
  if (sub == "panic" && arg.empty()) return Of(Command::Kind::kDebugPanic);
  if (sub != "block" || arg.empty()) return Usage(kDebugUsage);
  double seconds = 0;
  const auto [end, ec] = std::from_chars(arg.data(), arg.data() + arg.size(), seconds);
  // !(x > 0) also refuses NaN; from_chars parses "inf" and "nan" too.
  if (ec != std::errc() || end != arg.data() + arg.size() || !(seconds > 0) ||
      seconds > kMaxDebugBlockSeconds) {
    return Invalid(Concat({"invalid seconds: ", arg, " (a number above 0, at most 3600)"}));
  }
  Command c = Of(Command::Kind::kDebugBlock);
  c.seconds = seconds;
  return c;
}

}  // namespace

Command ParseChatLine(std::string_view line, bool debug_commands) {
  if (TrimBlanks(line).empty()) return Of(Command::Kind::kNone);
  if (line[0] != '/' || line.starts_with("//")) {
    Command c = Of(Command::Kind::kSay);
    c.text = line[0] == '/' ? line.substr(1) : line;
    return c;
  }
  std::string_view rest;
  const std::string_view word = FirstWord(line.substr(1), &rest);
  const std::string verb = NameKey(word);
  using Kind = Command::Kind;
  if (verb == "nick") {
    if (rest.empty()) return Usage("/nick NAME");
    if (!ValidName(rest)) return Invalid(Concat({"invalid nick: ", rest, " (", kNameRule, ")"}));
    Command c = Of(Kind::kNick);
    c.name = rest;
    return c;
  }
  if (verb == "join") {
    const std::string_view name = rest.starts_with('#') ? rest.substr(1) : rest;
    if (rest.empty()) return Usage("/join ROOM");
    if (!ValidName(name)) {
      return Invalid(Concat({"invalid room: ", rest, " (", kNameRule, "; # optional)"}));
    }
    Command c = Of(Kind::kJoin);
    c.room = Concat({"#", name});
    return c;
  }
  if (verb == "msg") {
    std::string_view text;
    const std::string_view nick = FirstWord(rest, &text);
    if (nick.empty() || text.empty()) return Usage("/msg NICK text");
    if (!ValidName(nick)) return Invalid(Concat({"invalid nick: ", nick, " (", kNameRule, ")"}));
    Command c = Of(Kind::kMsg);
    c.name = nick;
    c.text = text;
    return c;
  }
  if (verb == "me") {
    if (rest.empty()) return Usage("/me text");
    Command c = Of(Kind::kMe);
    c.text = rest;
    return c;
  }
  if (verb == "quit") {
    Command c = Of(Kind::kQuit);
    c.text = rest;
    return c;
  }
  if (verb == "part") return NoArgument(Kind::kPart, "/part", rest);
  if (verb == "who") return NoArgument(Kind::kWho, "/who", rest);
  if (verb == "rooms") return NoArgument(Kind::kRooms, "/rooms", rest);
  if (verb == "help") return NoArgument(Kind::kHelp, "/help", rest);
  if (verb == "debug" && debug_commands) return ParseDebug(rest);
  return Invalid(Concat({"unknown command /", word, " (try /help)"}));
}

std::string NameKey(std::string_view name) {
  std::string key(name);
  for (char& c : key) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return key;
}

std::string GuestNick(uint64_t n) { return "guest-" + std::to_string(n); }

std::string WelcomeLine(std::string_view nick, std::string_view room) {
  return Concat({"* welcome to greenline chat: you are ", nick, " in ", room,
                 " (/help lists the commands)", kCrlf});
}

std::string SayLine(std::string_view room, std::string_view nick, std::string_view text) {
  return Concat({"[", room, "] ", nick, ": ", text, kCrlf});
}

std::string ActionLine(std::string_view room, std::string_view nick, std::string_view text) {
  return Concat({"[", room, "] * ", nick, " ", text, kCrlf});
}

std::string PrivateLine(std::string_view from, std::string_view text) {
  return Concat({"[pm] ", from, ": ", text, kCrlf});
}

std::string NickLine(std::string_view old_nick, std::string_view new_nick) {
  return Concat({"* ", old_nick, " is now known as ", new_nick, kCrlf});
}

std::string JoinedLine(std::string_view nick, std::string_view room) {
  return Concat({"* ", nick, " joined ", room, kCrlf});
}

std::string LeftLine(std::string_view nick, std::string_view room, std::string_view reason) {
  if (reason.empty()) return Concat({"* ", nick, " left ", room, kCrlf});
  return Concat({"* ", nick, " left ", room, " (", reason, ")", kCrlf});
}

std::string WhoLine(std::string_view room, std::span<const std::string_view> nicks,
                    std::size_t total) {
  std::string out = Concat({"* ", room, ":"});
  for (const std::string_view nick : nicks) out.append(" ").append(nick);
  return out.append(AndMore(nicks.size(), total)).append(kCrlf);
}

std::string RoomsLine(std::span<const RoomCount> rooms, std::size_t total) {
  std::string out = "* rooms:";
  for (const RoomCount& r : rooms) {
    out.append(" ").append(r.room).append("(").append(std::to_string(r.users)).append(")");
  }
  return out.append(AndMore(rooms.size(), total)).append(kCrlf);
}

std::string HelpText(bool debug_commands) {
  std::string out =
      "* commands:\r\n"
      "*   /nick NAME       change your nick (letters, digits, _ and -, at most 24)\r\n"
      "*   /join ROOM       move to ROOM (# optional), created if nobody is there\r\n"
      "*   /part            go back to #lobby\r\n"
      "*   /msg NICK text   a private message to NICK\r\n"
      "*   /me text         an action: [#room] * you text\r\n"
      "*   /who             who is in your room\r\n"
      "*   /rooms           every room, with its number of users\r\n"
      "*   /quit [reason]   leave\r\n"
      "*   /help            this list\r\n"
      "*   //text           send a line that starts with /\r\n";
  if (debug_commands) {
    out +=
        "* debug commands (--enable-debug-commands):\r\n"
        "*   /debug panic          make this connection's handler panic\r\n"
        "*   /debug block SECONDS  block this connection's handler (at most 3600)\r\n";
  }
  return out;
}

std::string DebugBlockLine(double seconds) {
  // to_chars with a precision is printf's %g (and fmt's {:g}) without a locale: "2.5", "1e-05".
  char buf[32];  // room for any double in 6 significant digits: "-1.23457e-308"
  const char* end =
      std::to_chars(buf, buf + sizeof buf, seconds, std::chars_format::general, 6).ptr;
  return Concat(
      {"* blocking this connection's handler for ", std::string_view(buf, end - buf), " s", kCrlf});
}

std::string ErrorLine(std::string_view message) { return Concat({"! ", message, kCrlf}); }

std::string LineTooLongLine(std::size_t max_line) {
  return Concat({"! line too long (max ", std::to_string(max_line), " bytes)", kCrlf});
}

std::string NoSuchUserLine(std::string_view nick) {
  return Concat({"! no such user: ", nick, kCrlf});
}

std::string NickTakenLine(std::string_view nick) { return Concat({"! nick taken: ", nick, kCrlf}); }

std::string AlreadyInLine(std::string_view room) { return Concat({"! already in ", room, kCrlf}); }

std::string TooSlowLine(bool mid_line) {
  return mid_line ? Concat({kCrlf, kTooSlowLine}) : std::string(kTooSlowLine);
}

}  // namespace greenline::protocol
