// Tests for protocol/sanitize.h: valid UTF-8 passes unchanged; ill-formed UTF-8 becomes U+FFFD
// per maximal subpart (Unicode's own example, and Markus Kuhn's decoder test cases: boundaries,
// lone and missing continuation bytes, overlongs, surrogates, code points above U+10FFFF); C0,
// DEL and C1 are removed and TAB is a space; escape sequences (CSI, OSC, DCS, SOS, PM, APC, two
// byte, in 7-bit and C1 form) are removed whole, so injection attempts leave only their text; the
// result is always safe and a fixed point (checked for every input of up to 2 bytes); and
// ValidName accepts exactly [A-Za-z0-9_-]{1,24}.
#include "protocol/sanitize.h"

#include <gtest/gtest.h>

#include <string>

namespace greenline::protocol {
namespace {

const std::string kFffd = "\xef\xbf\xbd";

// The expectations start with std::string("a") + ..., not "a" + ...: g++ 12 warns (-Wrestrict, a
// false positive, GCC bug 105329) on a literal plus a temporary string at -O2.

std::string Fffd(int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += kFffd;
  return out;
}

// The output rules every result must follow: no byte below 0x20, no DEL, no C1 (C2 80..C2 9F).
void ExpectSafe(const std::string& out, const std::string& in) {
  for (std::size_t i = 0; i < out.size(); ++i) {
    const auto b = static_cast<unsigned char>(out[i]);
    ASSERT_TRUE(b >= 0x20 && b != 0x7f)
        << "control byte in output of " << testing::PrintToString(in);
    if (b == 0xc2 && i + 1 < out.size()) {
      const auto next = static_cast<unsigned char>(out[i + 1]);
      ASSERT_FALSE(next >= 0x80 && next <= 0x9f)
          << "C1 in output of " << testing::PrintToString(in);
    }
  }
}

TEST(SanitizeTextTest, ValidTextIsUnchanged) {
  for (const std::string text : {
           "plain ASCII, punctuation !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
           "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5",  // κόσμε, Kuhn's first test
           "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",          // 日本語
           "\xf0\x9f\x98\x80",                              // U+1F600
           "\xc2\xa0",                                      // U+00A0, the first after C1
           "\xdf\xbf",                                      // U+07FF, the last of 2 bytes
           "\xe0\xa0\x80",                                  // U+0800, the first of 3 bytes
           "\xed\x9f\xbf",                                  // U+D7FF, just below the surrogates
           "\xee\x80\x80",                                  // U+E000, just above them
           "\xef\xbf\xbd",                                  // U+FFFD itself
           "\xef\xbf\xbe\xef\xbf\xbf",                      // U+FFFE, U+FFFF: noncharacters
           "\xf0\x90\x80\x80",                              // U+10000, the first of 4 bytes
           "\xf4\x8f\xbf\xbf",                              // U+10FFFF, the last code point
       }) {
    EXPECT_EQ(SanitizeText(text), text) << testing::PrintToString(text);
  }
}

TEST(SanitizeTextTest, UnicodesMaximalSubpartExample) {
  // The Unicode Standard, Table 3-8: a F1 80 80 | E1 80 | C2 | b | 80 | c | 80 | BF | d.
  EXPECT_EQ(SanitizeText("\x61\xf1\x80\x80\xe1\x80\xc2\x62\x80\x63\x80\xbf\x64"),
            std::string("a") + Fffd(3) + "b" + Fffd(1) + "c" + Fffd(2) + "d");
}

TEST(SanitizeTextTest, LoneContinuationBytesAreOneEach) {
  EXPECT_EQ(SanitizeText("\x80"), Fffd(1));
  EXPECT_EQ(SanitizeText("\xbf"), Fffd(1));
  EXPECT_EQ(SanitizeText("a\x80\xbf\x80z"), std::string("a") + Fffd(3) + "z");
  std::string all;
  for (int b = 0x80; b <= 0xbf; ++b) all += static_cast<char>(b);
  EXPECT_EQ(SanitizeText(all), Fffd(64));
}

TEST(SanitizeTextTest, LonelyStartBytesAreOneEach) {
  for (int b = 0xc2; b <= 0xf4; ++b) {
    const std::string in = std::string(1, static_cast<char>(b)) + " ";
    EXPECT_EQ(SanitizeText(in), kFffd + " ") << std::hex << b;
  }
}

TEST(SanitizeTextTest, TruncatedSequenceIsOneReplacement) {
  EXPECT_EQ(SanitizeText("\xe2\x82"), Fffd(1));      // U+20AC without its last byte
  EXPECT_EQ(SanitizeText("\xf0\x9f\x98"), Fffd(1));  // U+1F600 without its last byte
  EXPECT_EQ(SanitizeText("\xf0\x9f"), Fffd(1));
  EXPECT_EQ(SanitizeText("\xe2\x82z"), kFffd + "z");  // the breaking byte starts afresh
  EXPECT_EQ(SanitizeText("\xe2\x82\xe2\x82\xac"), kFffd + "\xe2\x82\xac");
  // Kuhn 3.4, truncated sequences concatenated: each well-formed prefix is one maximal subpart
  // (his own examples start with overlong leads, which Unicode replaces byte by byte).
  EXPECT_EQ(SanitizeText("\xc2\xe0\xa0\xf0\x90\x80\xdf\xef\xbf\xf4\x8f\xbf"), Fffd(6));
  EXPECT_EQ(SanitizeText("\xe0\x80"), Fffd(2)) << "E0 80 is no prefix of anything";
}

TEST(SanitizeTextTest, ImpossibleBytesAreReplaced) {
  EXPECT_EQ(SanitizeText("\xfe"), Fffd(1));
  EXPECT_EQ(SanitizeText("\xff"), Fffd(1));
  EXPECT_EQ(SanitizeText("\xfe\xfe\xff\xff"), Fffd(4));
}

TEST(SanitizeTextTest, OverlongFormsAreIllFormed) {
  // "/" as 2, 3 and 4 bytes (Kuhn 4.1), and the largest overlongs (4.2). C0, C1 never start a
  // sequence; E0 and F0 only with a second byte that makes the value need their length.
  EXPECT_EQ(SanitizeText("\xc0\xaf"), Fffd(2));
  EXPECT_EQ(SanitizeText("\xe0\x80\xaf"), Fffd(3));
  EXPECT_EQ(SanitizeText("\xf0\x80\x80\xaf"), Fffd(4));
  EXPECT_EQ(SanitizeText("\xc1\xbf"), Fffd(2));
  EXPECT_EQ(SanitizeText("\xe0\x9f\xbf"), Fffd(3));
  EXPECT_EQ(SanitizeText("\xf0\x8f\xbf\xbf"), Fffd(4));
  EXPECT_EQ(SanitizeText("\xc0\x80"), Fffd(2)) << "overlong NUL";
  EXPECT_EQ(SanitizeText("\xf8\x88\x80\x80\x80"), Fffd(5)) << "5-byte forms are gone";
}

TEST(SanitizeTextTest, SurrogatesAreIllFormed) {
  EXPECT_EQ(SanitizeText("\xed\xa0\x80"), Fffd(3));  // U+D800
  EXPECT_EQ(SanitizeText("\xed\xbf\xbf"), Fffd(3));  // U+DFFF
  EXPECT_EQ(SanitizeText("\xed\xa0\x80\xed\xb0\x80"), Fffd(6)) << "a CESU-8 pair";
}

TEST(SanitizeTextTest, AboveU10ffffIsIllFormed) {
  EXPECT_EQ(SanitizeText("\xf4\x90\x80\x80"), Fffd(4));  // U+110000
  EXPECT_EQ(SanitizeText("\xf5\x80\x80\x80"), Fffd(4));
  EXPECT_EQ(SanitizeText("\xf7\xbf\xbf\xbf"), Fffd(4));
}

TEST(SanitizeTextTest, ControlsAreRemovedAndTabIsASpace) {
  EXPECT_EQ(SanitizeText(std::string("a\0b\x01"
                                     "c\x1f"
                                     "d\x7f"
                                     "e",
                                     9)),
            "abcde");
  EXPECT_EQ(SanitizeText("a\tb"), "a b");
  EXPECT_EQ(SanitizeText("line\r\nfeed\rcarriage\x08\x08\x08\x07\x0c"), "linefeedcarriage");
  EXPECT_EQ(SanitizeText("\xc2\x80\xc2\x85\xc2\x99\xc2\x9cx"), "x") << "C1: PAD, NEL, SCI, ST";
}

TEST(SanitizeTextTest, CsiSequencesAreRemoved) {
  EXPECT_EQ(SanitizeText("\x1b[2J"), "");
  EXPECT_EQ(SanitizeText("a\x1b[31mred\x1b[0mb"), "aredb");
  EXPECT_EQ(SanitizeText("\x1b[?1049h\x1b[1;1H\x1b[ qtext"), "text");
  EXPECT_EQ(SanitizeText("\x1b[12"), "") << "unfinished at the end of the line";
  EXPECT_EQ(SanitizeText("\x1b[12\x18x"), "x") << "CAN cancels";
  EXPECT_EQ(SanitizeText("\x1b[1\xc3\xa9x"), "\xc3\xa9x") << "non-ASCII ends it";
  EXPECT_EQ(SanitizeText("\x1b[1\n;31mx"), "x") << "C0 inside is dropped, as on a terminal";
}

TEST(SanitizeTextTest, C1CsiAndOscAreRemoved) {
  EXPECT_EQ(SanitizeText("\xc2\x9b"
                         "31mred"),
            "red");
  EXPECT_EQ(SanitizeText("\xc2\x9d"
                         "0;pwned\xc2\x9c"
                         "after"),
            "after");
  EXPECT_EQ(SanitizeText("\xc2\x90q#0\xc2\x9cx"), "x") << "DCS";
  EXPECT_EQ(SanitizeText("\xc2\x98sos\xc2\x9c\xc2\x9epm\xc2\x9c\xc2\x9f"
                         "apc\xc2\x9cx"),
            "x");
}

TEST(SanitizeTextTest, OscAndOtherStringsAreRemoved) {
  EXPECT_EQ(SanitizeText("\x1b]0;pwned\x07"
                         "after"),
            "after");
  EXPECT_EQ(SanitizeText("\x1b]0;pwned\x1b\\after"), "after");
  EXPECT_EQ(SanitizeText("before\x1b]0;pwned"), "before") << "open to the end of the line";
  EXPECT_EQ(SanitizeText("\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\"), "link") << "hyperlink";
  EXPECT_EQ(SanitizeText("\x1b]52;c;cm0gLXJmIH4=\x07x"), "x") << "clipboard write";
  EXPECT_EQ(SanitizeText("\x1bPq#0;2;0;0;0\x1b\\x"), "x") << "DCS (sixel)";
  EXPECT_EQ(SanitizeText("\x1bXsos\x1b\\\x1b^pm\x1b\\\x1b_apc\x1b\\x"), "x");
  EXPECT_EQ(SanitizeText("\x1b]t\xff\xc3\xa9\x07x"), "x") << "anything inside is swallowed";
  EXPECT_EQ(SanitizeText("\x1b]0;t\x1b[2Jx"), "x") << "ESC inside starts a new sequence";
}

TEST(SanitizeTextTest, TwoByteAndCharsetSequencesAreRemoved) {
  EXPECT_EQ(SanitizeText("\x1b"
                         "c"),
            "")
      << "RIS, full reset";
  EXPECT_EQ(SanitizeText("\x1b(0abc\x1b(B"), "abc") << "charset designation";
  EXPECT_EQ(SanitizeText("\x1b#8"), "") << "DECALN";
  EXPECT_EQ(SanitizeText("\x1b"
                         "7save\x1b"
                         "8"),
            "save");
  EXPECT_EQ(SanitizeText("\x1b\x1b[2Jx"), "x") << "ESC ESC restarts";
  EXPECT_EQ(SanitizeText("abc\x1b"), "abc");
  EXPECT_EQ(SanitizeText("\x1b\xc3\xa9"), "\xc3\xa9") << "ESC before non-ASCII: only ESC goes";
  EXPECT_EQ(SanitizeText("\x1b\xffx"), kFffd + "x");
}

TEST(SanitizeTextTest, AppendsToWhatIsThere) {
  std::string out = "[#lobby] guest-1: ";
  AppendSanitizedText("hi\x1b[2J", &out);
  EXPECT_EQ(out, "[#lobby] guest-1: hi");
}

TEST(SanitizeTextTest, EveryShortInputGivesSafeFixedPoint) {
  for (int a = 0; a < 256; ++a) {
    for (int b = -1; b < 256; ++b) {
      std::string in(1, static_cast<char>(a));
      if (b >= 0) in += static_cast<char>(b);
      const std::string out = SanitizeText(in);
      ExpectSafe(out, in);
      ASSERT_EQ(SanitizeText(out), out) << testing::PrintToString(in);
      ASSERT_LE(out.size(), 3 * in.size());
    }
  }
}

TEST(SanitizeTextTest, InjectionAttemptsLeaveSafeText) {
  for (const std::string in : {
           "\x1b]0;pwned\x07",
           "\x1b[2J",
           "\xc2\x9b"
           "31m",
           "\x1b[6n",
           "\x1bP$q\"p\x1b\\",
           "\x1b]1337;File=inline=1:AAAA\x07",
           "\xc2\x9b\xc2\x9b\x1b\x1b\x1b]\x1b\\\x1b[",
           "\x1b[\xed\xa0\x80"
           "31m",
           "\xe2\x80\xae"
           "reversed",
       }) {
    const std::string out = SanitizeText(in);
    ExpectSafe(out, in);
    EXPECT_EQ(out.find('\x1b'), std::string::npos);
    EXPECT_EQ(SanitizeText(out), out);
  }
}

TEST(ValidNameTest, AcceptsExactlyTheNameCharset) {
  EXPECT_TRUE(ValidName("a"));
  EXPECT_TRUE(ValidName("guest-12"));
  EXPECT_TRUE(ValidName("A-b_C9"));
  EXPECT_TRUE(ValidName(std::string(24, 'x')));
  EXPECT_FALSE(ValidName(std::string(25, 'x')));
  EXPECT_FALSE(ValidName(""));
  EXPECT_FALSE(ValidName("a b"));
  EXPECT_FALSE(ValidName("#room"));
  EXPECT_FALSE(ValidName("caf\xc3\xa9"));
  EXPECT_FALSE(ValidName("a.b"));
  EXPECT_FALSE(ValidName(std::string("a\0", 2)));
}

}  // namespace
}  // namespace greenline::protocol
