// Text sanitizing: what one chat user sends must not drive another user's terminal.
//
// SanitizeText turns any byte string (one line, without its terminator) into text that is safe to
// print on a terminal:
//   - valid UTF-8: each maximal ill-formed subsequence becomes one U+FFFD, Unicode's "substitution
//     of maximal subparts" (The Unicode Standard, 3.9 and Table 3-7): overlong forms, surrogates
//     (ED A0..BF) and anything above U+10FFFF are ill-formed; a truncated sequence is one U+FFFD,
//     and the byte that broke it starts afresh.
//   - no control characters: C0 (U+0000..U+001F) and DEL are removed, except TAB, which becomes a
//     space (it separates words; a terminal would expand it); C1 (U+0080..U+009F) are removed.
//   - no escape sequences, removed whole, so their parameters do not show up as garbage:
//       ESC [ params intermediates final          CSI, final byte 0x40..0x7E ("\e[2J")
//       ESC ] ... BEL or ST                       OSC ("\e]0;title\a" sets a window title)
//       ESC P / X / ^ / _ ... BEL or ST           DCS, SOS, PM, APC
//       ESC intermediates final, ESC x            two-byte and charset sequences ("\e(0", "\ec")
//     ST is ESC \ or U+009C. The C1 forms, as UTF-8 code points, start the same sequences: U+009B
//     is CSI, U+009D OSC, U+0090 DCS, U+0098 SOS, U+009E PM, U+009F APC. A string sequence left
//     open runs to the end of the line (the line is the unit: nothing carries over to the next).
//     As in the VT500 parser, CAN and SUB cancel a sequence; a non-ASCII character ends a CSI or
//     ESC sequence and is kept as text.
// How exactly a sequence ends only decides how much of the text after it survives: the output
// contains no ESC and no C1 at all, so no terminal can read a sequence in it.
//
// The result contains no byte below 0x20, no 0x7F and no C1 code point, is valid UTF-8, and is a
// fixed point: SanitizeText(SanitizeText(x)) == SanitizeText(x). It is at most 3 times as long as
// the input (one U+FFFD, 3 bytes, per input byte at worst).
//
// Not removed: format characters such as bidirectional overrides (U+202E) and zero-width spaces.
// They can make a line look odd but cannot drive the terminal.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace greenline::protocol {

// Longest nick or room name, in bytes (the names are ASCII).
inline constexpr std::size_t kMaxNameLength = 24;

// The line made safe to print (see above).
std::string SanitizeText(std::string_view line);

// Appends SanitizeText(line) to *out, without a temporary.
void AppendSanitizedText(std::string_view line, std::string* out);

// True if `name` is a valid nick or room name: [A-Za-z0-9_-]{1,24}.
bool ValidName(std::string_view name);

}  // namespace greenline::protocol
