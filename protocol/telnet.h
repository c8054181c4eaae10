// TelnetFilter: removes telnet commands (RFC 854) from a byte stream and refuses every option.
//
// Chat is for humans on telnet, and a telnet client mixes commands into what the user types: IAC
// (0xFF) starts a command, IAC IAC stands for one 0xFF data byte. The filter runs on each chunk as
// it arrives, so a command may be split anywhere across reads; its state is 72 bytes (a state, a
// verb and which options were refused), whatever the input: O(1) memory per connection. It can
// filter in place (FeedInPlace), in the line framer's buffer, since removing commands only ever
// shrinks the data.
//
// Negotiation: greenline implements no telnet option, so it refuses all of them, the one answer
// RFC 854 lets any party give: DO x is answered IAC WONT x, WILL x is answered IAC DONT x. WONT and
// DONT are never answered (they only confirm the state we are in; answering them is how two peers
// loop forever). Each (verb, option) pair is answered at most once per connection: a client that
// repeats DO x gets no further reply, so it cannot make us write more than 2 x 256 replies of
// 3 bytes however much it sends.
//
// Other commands:
//   - two-byte commands (NOP, DM, BRK, IP, AO, AYT, EC, EL, GA, a stray SE, and bytes below 240
//     after IAC, which are not commands) are dropped; none needs an answer for a line protocol.
//   - subnegotiation, IAC SB ... IAC SE, is dropped whole. Since every option is refused, no
//     subnegotiation is ever meaningful, so its bytes are discarded as they arrive instead of
//     being buffered: the cap is zero, and a peer that never sends IAC SE only swallows its own
//     input. Inside it IAC IAC is an escaped 0xFF (still dropped) and IAC SE ends it, always.
//   - CR NUL, telnet's bare carriage return, becomes CR. CR LF passes through (the line framer
//     takes CRLF as a terminator).
#pragma once

#include <bitset>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace greenline::protocol {

// RFC 854 command codes.
namespace telnet {
inline constexpr unsigned char kSe = 240;
inline constexpr unsigned char kNop = 241;
inline constexpr unsigned char kDm = 242;
inline constexpr unsigned char kBrk = 243;
inline constexpr unsigned char kIp = 244;
inline constexpr unsigned char kAo = 245;
inline constexpr unsigned char kAyt = 246;
inline constexpr unsigned char kEc = 247;
inline constexpr unsigned char kEl = 248;
inline constexpr unsigned char kGa = 249;
inline constexpr unsigned char kSb = 250;
inline constexpr unsigned char kWill = 251;
inline constexpr unsigned char kWont = 252;
inline constexpr unsigned char kDo = 253;
inline constexpr unsigned char kDont = 254;
inline constexpr unsigned char kIac = 255;
}  // namespace telnet

class TelnetFilter {
 public:
  // Filters the next chunk of the stream: appends its data bytes to *data and the bytes to send
  // back to the peer (option refusals) to *reply. Never fails; any byte sequence is accepted.
  // `in` must not point into *data.
  void Feed(std::string_view in, std::string* data, std::string* reply);

  // The same, in place: the data bytes of `chunk` are moved to its front and their number is
  // returned. Data never outgrows the input (every command shrinks it), so a chat connection can
  // read into LineFramer::Space(), filter there and Commit() what is left, without a copy:
  //   std::span<char> space = framer.Space();
  //   auto [n, err] = conn.Read(space.data(), space.size());
  //   framer.Commit(telnet.FeedInPlace(space.first(n), &reply));
  std::size_t FeedInPlace(std::span<char> chunk, std::string* reply);

 private:
  // Filters in[0, n) into out, which may be `in` itself (it never writes past what it has read),
  // and returns the number of data bytes written.
  std::size_t Filter(const char* in, std::size_t n, char* out, std::string* reply);

  enum class State : uint8_t {
    kData,   // plain data
    kCr,     // plain data, the last data byte was CR (a NUL now is dropped)
    kIac,    // after IAC: a command byte follows
    kVerb,   // after IAC WILL/WONT/DO/DONT (in verb_): the option byte follows
    kSb,     // inside a subnegotiation: everything is dropped
    kSbIac,  // inside a subnegotiation, after IAC: SE ends it
  };
  State state_ = State::kData;
  unsigned char verb_ = 0;
  // Options already refused, per verb received: we answer each (verb, option) once.
  std::bitset<256> refused_do_;
  std::bitset<256> refused_will_;
};

}  // namespace greenline::protocol
