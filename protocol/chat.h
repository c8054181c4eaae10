// The chat protocol: parsing what a user types, and every line the server sends, byte for byte.
//
// The chat hub (rooms, nicks, delivery) lives in server/; this file is the part that needs no
// state: ParseChatLine turns one sanitized line into a Command, and the *Line functions and k*Line
// constants below are the only place the server's wording is written down, so the server, its
// end-to-end tests and these unit tests cannot drift apart.
//
// Every server line ends with CRLF: telnet needs it to return to the first column, and nc and
// line-reading clients see a line either way. A line starts with one of:
//   "* "  a notice (welcome, joins and parts, nick changes, /who, /rooms, /help, bye, shutdown)
//   "["   a message: "[#room] nick: text", "[#room] * nick text" (/me), "[pm] from: text"
//   "! "  an error (unknown command, bad arguments, nick taken, no such user, rate limited, ...)
//
// Names: nicks and rooms use ValidName's charset, [A-Za-z0-9_-]{1,24}. A room's canonical form
// starts with '#', which /join makes optional. Nicks are unique ignoring (ASCII) case: the hub
// keys them by NameKey(). ParseChatLine leaves case alone, for rooms too: whether "#Go" is "#go"
// is the hub's decision.
//
// IRC's convention for text that starts with '/': a line starting "//" is sent as a plain message
// without its first '/' ("//shrug" says "/shrug").
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "protocol/sanitize.h"

namespace greenline::protocol {

// The room every user starts in, and /part returns to.
inline constexpr std::string_view kLobby = "#lobby";

// The longest /debug block accepted, in seconds.
inline constexpr double kMaxDebugBlockSeconds = 3600;

struct Command {
  enum class Kind {
    kNone,        // an empty or all-blank line: ignored
    kSay,         // a plain line: text to the room
    kNick,        // /nick NAME: name
    kJoin,        // /join ROOM: room ("#name")
    kPart,        // /part: back to #lobby
    kMsg,         // /msg NICK text: name, text
    kMe,          // /me text: text
    kWho,         // /who
    kRooms,       // /rooms
    kQuit,        // /quit [reason]: text (the reason, maybe empty)
    kHelp,        // /help
    kDebugPanic,  // /debug panic (only with debug commands enabled)
    kDebugBlock,  // /debug block SECONDS: seconds (only with debug commands enabled)
    kInvalid,     // an unknown command or bad arguments: error
  };
  Kind kind = Kind::kNone;
  // kNick: the new nick; kMsg: the recipient's nick. Valid names; a view into the parsed line.
  std::string_view name;
  // kJoin: the room in canonical form, "#" + a valid name.
  std::string room;
  // kSay, kMe, kMsg: the text (never empty); kQuit: the reason (maybe empty). A view into the
  // parsed line.
  std::string_view text;
  // kDebugBlock: how long to block, in (0, kMaxDebugBlockSeconds].
  double seconds = 0;
  // kInvalid: what is wrong, for ErrorLine(): "unknown command /foo (try /help)",
  // "usage: /nick NAME", ...
  std::string error;
};

// Parses one line the user sent, after the terminator is cut and SanitizeText has run (so it has
// no controls; a TAB is a space by then). Commands are case-insensitive ("/NICK" is "/nick"); the
// arguments are separated by spaces, and blanks around them are dropped. /debug exists only when
// debug_commands is true: otherwise it is an unknown command like any other. The views in the
// result point into `line`.
Command ParseChatLine(std::string_view line, bool debug_commands);

// The key nicks are compared by: ASCII lowercase.
std::string NameKey(std::string_view name);

// A new connection's nick, "guest-N".
std::string GuestNick(uint64_t n);

// --- what the server sends: every line ends with CRLF -----------------------------------------

// "* welcome to greenline chat: you are guest-1 in #lobby (/help lists the commands)"
std::string WelcomeLine(std::string_view nick, std::string_view room);

// "[#room] nick: text": a plain line, to everyone else in the room.
std::string SayLine(std::string_view room, std::string_view nick, std::string_view text);

// "[#room] * nick text": /me.
std::string ActionLine(std::string_view room, std::string_view nick, std::string_view text);

// "[pm] from: text": /msg, to its recipient alone.
std::string PrivateLine(std::string_view from, std::string_view text);

// "* old is now known as new".
std::string NickLine(std::string_view old_nick, std::string_view new_nick);

// "* nick joined #room".
std::string JoinedLine(std::string_view nick, std::string_view room);

// "* nick left #room", or with a reason (/quit reason) "* nick left #room (reason)".
std::string LeftLine(std::string_view nick, std::string_view room, std::string_view reason = {});

// "* #room: nick1 nick2 ...": /who, the nicks in the order given. When they are some of the room's
// `total` users (a big room's list is cut), " (and N more)" ends the line.
std::string WhoLine(std::string_view room, std::span<const std::string_view> nicks,
                    std::size_t total);

struct RoomCount {
  std::string_view room;  // "#name"
  std::size_t users;
};

// "* rooms: #lobby(3) #go(1) ...": /rooms, in the order given. When they are some of the server's
// `total` rooms, " (and N more)" ends the line.
std::string RoomsLine(std::span<const RoomCount> rooms, std::size_t total);

// /help: several lines, each starting "* "; the /debug commands are listed when enabled.
std::string HelpText(bool debug_commands);

// "* blocking this connection's handler for 2.5 s": the answer to /debug block, before it blocks.
// The seconds as printf's %g writes them (6 significant digits), in any locale.
std::string DebugBlockLine(double seconds);

// "* bye": the answer to /quit, before the connection closes.
inline constexpr std::string_view kByeLine = "* bye\r\n";

// Sent to every chat user when the server begins a graceful shutdown.
inline constexpr std::string_view kShutdownLine = "* server shutting down\r\n";

// "! message": an error. Command::error goes through here.
std::string ErrorLine(std::string_view message);

// "! line too long (max 4096 bytes)": then the connection is closed.
std::string LineTooLongLine(std::size_t max_line);

// "! no such user: nick": /msg to a nick nobody has.
std::string NoSuchUserLine(std::string_view nick);

// "! nick taken: nick": /nick to a nick someone has (ignoring case).
std::string NickTakenLine(std::string_view nick);

// "! already in #room": /join of the room the user is in, /part in #lobby.
std::string AlreadyInLine(std::string_view room);

// A line over the flood limit: not delivered.
inline constexpr std::string_view kRateLimitedLine = "! rate limited\r\n";

// Best effort, to a reader whose output queue overflowed, before it is disconnected.
inline constexpr std::string_view kTooSlowLine = "! too slow\r\n";

// kTooSlowLine as it is sent: after a CRLF when the last write stopped mid-line, so that the
// notice starts a line of its own.
std::string TooSlowLine(bool mid_line);

// To a connection over --max-conns, before it is closed.
inline constexpr std::string_view kServerFullLine = "! server full\r\n";

// To a connection whose handler panicked, before it is closed.
inline constexpr std::string_view kInternalErrorLine = "! internal error\r\n";

}  // namespace greenline::protocol
