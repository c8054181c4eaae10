// Tests for protocol/telnet.h: IAC commands are removed from the data and IAC IAC is one 0xFF;
// DO and WILL are refused (WONT, DONT) once per option and verb, WONT and DONT never answered;
// two-byte commands vanish; subnegotiations vanish whatever their length, ended only by IAC SE;
// CR NUL is CR; every split of the input into reads gives the same data and replies; and
// filtering in place gives what filtering into a string does.
#include "protocol/telnet.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace greenline::protocol {
namespace {

struct Filtered {
  std::string data;
  std::string reply;

  bool operator==(const Filtered&) const = default;
};

Filtered Filter(const std::vector<std::string_view>& chunks) {
  TelnetFilter filter;
  Filtered out;
  for (const std::string_view chunk : chunks) filter.Feed(chunk, &out.data, &out.reply);
  return out;
}

Filtered Filter(std::string_view in) { return Filter(std::vector<std::string_view>{in}); }

// The same through FeedInPlace, each chunk in a buffer of its own as a read would leave it.
Filtered FilterInPlace(const std::vector<std::string_view>& chunks) {
  TelnetFilter filter;
  Filtered out;
  for (const std::string_view chunk : chunks) {
    std::string buf(chunk);
    const std::size_t n = filter.FeedInPlace(buf, &out.reply);
    EXPECT_LE(n, buf.size());
    out.data.append(buf, 0, n);
  }
  return out;
}

// Telnet bytes, spelled for readability.
const std::string kIac = "\xff";
const std::string kDo = "\xff\xfd";
const std::string kDont = "\xff\xfe";
const std::string kWill = "\xff\xfb";
const std::string kWont = "\xff\xfc";
const std::string kSb = "\xff\xfa";
const std::string kSe = "\xff\xf0";
const std::string kEcho = "\x01";
const std::string kSga = "\x03";
const std::string kTtype = "\x18";
const std::string kNaws = "\x1f";

TEST(TelnetFilterTest, PlainDataPassesThrough) {
  const Filtered f = Filter("hello, world\r\n");
  EXPECT_EQ(f.data, "hello, world\r\n");
  EXPECT_EQ(f.reply, "");
}

TEST(TelnetFilterTest, IacIacIsOneFfDataByte) {
  EXPECT_EQ(Filter("a" + kIac + kIac + "b").data,
            "a\xff"
            "b");
  EXPECT_EQ(Filter(kIac + kIac + kIac + kIac).data, "\xff\xff");
}

TEST(TelnetFilterTest, DoIsRefusedWithWont) {
  const Filtered f = Filter("a" + kDo + kEcho + "b");
  EXPECT_EQ(f.data, "ab");
  EXPECT_EQ(f.reply, kWont + kEcho);
}

TEST(TelnetFilterTest, WillIsRefusedWithDont) {
  const Filtered f = Filter(kWill + kTtype + kWill + kNaws);
  EXPECT_EQ(f.data, "");
  EXPECT_EQ(f.reply, kDont + kTtype + kDont + kNaws);
}

TEST(TelnetFilterTest, WontAndDontAreNeverAnswered) {
  const Filtered f = Filter(kWont + kEcho + kDont + kSga + "x");
  EXPECT_EQ(f.data, "x");
  EXPECT_EQ(f.reply, "");
}

TEST(TelnetFilterTest, EachVerbAndOptionIsAnsweredOnce) {
  const Filtered f =
      Filter(kDo + kEcho + kDo + kEcho + kWill + kEcho + kWill + kEcho + kDo + kSga + kDo + kEcho);
  EXPECT_EQ(f.reply, kWont + kEcho + kDont + kEcho + kWont + kSga);
}

TEST(TelnetFilterTest, RepeatedRequestsCannotFloodReplies) {
  std::string in;
  for (int round = 0; round < 100; ++round) {
    for (int option = 0; option < 256; ++option) {
      in += kDo + static_cast<char>(option) + kWill + static_cast<char>(option);
    }
  }
  const Filtered f = Filter(in);
  EXPECT_EQ(f.data, "");
  EXPECT_EQ(f.reply.size(), 2u * 256 * 3) << "one refusal per verb and option, ever";
}

TEST(TelnetFilterTest, OptionFfIsAnOptionNotAnEscape) {
  const Filtered f = Filter(kDo + kIac + "x");
  EXPECT_EQ(f.data, "x");
  EXPECT_EQ(f.reply, kWont + kIac);
}

TEST(TelnetFilterTest, TwoByteCommandsAreRemoved) {
  // NOP, DM, BRK, IP, AO, AYT, EC, EL, GA, a stray SE, and a byte that is no command.
  std::string in = "a";
  for (const char command :
       {'\xf1', '\xf2', '\xf3', '\xf4', '\xf5', '\xf6', '\xf7', '\xf8', '\xf9', '\xf0', 'z'}) {
    in += kIac + command;
  }
  in += "b";
  const Filtered f = Filter(in);
  EXPECT_EQ(f.data, "ab");
  EXPECT_EQ(f.reply, "");
}

TEST(TelnetFilterTest, SubnegotiationIsRemoved) {
  const Filtered f = Filter("x" + kSb + kTtype + std::string("\0xterm", 6) + kSe + "y");
  EXPECT_EQ(f.data, "xy");
  EXPECT_EQ(f.reply, "");
}

TEST(TelnetFilterTest, OnlyIacSeEndsASubnegotiation) {
  // IAC IAC inside is an escaped 0xFF, a bare SE byte is data of the subnegotiation, and other
  // commands inside do not end it.
  const Filtered f =
      Filter(kSb + kNaws + kIac + kIac + "\xf0" + "still" + kDo + kEcho + "in" + kSe + "out");
  EXPECT_EQ(f.data, "out");
  EXPECT_EQ(f.reply, "");
}

TEST(TelnetFilterTest, LongSubnegotiationIsDroppedUntilIacSe) {
  const Filtered f = Filter("a" + kSb + kTtype + std::string(1 << 20, 'x') + kSe + "b");
  EXPECT_EQ(f.data, "ab");
  EXPECT_EQ(f.reply, "");
  EXPECT_LE(sizeof(TelnetFilter), 128u) << "nothing of it is buffered";
}

TEST(TelnetFilterTest, CrNulIsCr) {
  EXPECT_EQ(Filter(std::string("a\r\0b", 4)).data, "a\rb");
  EXPECT_EQ(Filter(std::string("\r\r\0", 3)).data, "\r\r");
  EXPECT_EQ(Filter("a\r\nb").data, "a\r\nb");
  EXPECT_EQ(Filter("a\rb").data, "a\rb");
  EXPECT_EQ(Filter(std::string("a\0b", 3)).data, std::string("a\0b", 3)) << "NUL alone is data";
  EXPECT_EQ(Filter({"a\r", std::string_view("\0b", 2)}).data, "a\rb") << "across reads";
}

TEST(TelnetFilterTest, EverySplitPointGivesTheSameResult) {
  const std::string input = "he" + kIac + kIac + "llo\r" + std::string(1, '\0') + kDo + kEcho +
                            kWill + kSga + "x" + kSb + kTtype + kIac + kIac + "abc" + kSe + "\r\n" +
                            kDont + kEcho + kIac + "\xf1" + kDo + kEcho + "end";
  const Filtered whole = Filter(input);
  EXPECT_EQ(whole.data, "he\xffllo\rx\r\nend");
  EXPECT_EQ(whole.reply, kWont + kEcho + kDont + kSga);
  const std::string_view in(input);
  for (std::size_t i = 0; i <= in.size(); ++i) {
    for (std::size_t j = i; j <= in.size(); ++j) {
      const std::vector<std::string_view> chunks{in.substr(0, i), in.substr(i, j - i),
                                                 in.substr(j)};
      EXPECT_EQ(Filter(chunks), whole) << "split at " << i << " and " << j;
      EXPECT_EQ(FilterInPlace(chunks), whole) << "in place, split at " << i << " and " << j;
    }
  }
  std::vector<std::string_view> bytes;
  for (std::size_t i = 0; i < in.size(); ++i) bytes.push_back(in.substr(i, 1));
  EXPECT_EQ(Filter(bytes), whole);
  EXPECT_EQ(FilterInPlace(bytes), whole);
}

TEST(TelnetFilterTest, FeedInPlaceMovesDataToTheFront) {
  TelnetFilter filter;
  std::string reply;
  std::string buf = "a" + kIac + kIac + "b" + kDo + kEcho + "c\r" + std::string(1, '\0') + "d";
  const std::size_t n = filter.FeedInPlace(buf, &reply);
  EXPECT_EQ(buf.substr(0, n),
            "a\xff"
            "bc\rd");
  EXPECT_EQ(reply, kWont + kEcho);
}

TEST(TelnetFilterTest, FeedAppendsToWhatIsThere) {
  TelnetFilter filter;
  std::string data = "kept";
  std::string reply = "r";
  filter.Feed("x" + kDo + kEcho + "y", &data, &reply);
  EXPECT_EQ(data, "keptxy");
  EXPECT_EQ(reply, "r" + kWont + kEcho);
}

TEST(TelnetFilterTest, EachConnectionAnswersForItself) {
  TelnetFilter a;
  TelnetFilter b;
  std::string data;
  std::string reply_a;
  std::string reply_b;
  a.Feed(kDo + kEcho, &data, &reply_a);
  b.Feed(kDo + kEcho, &data, &reply_b);
  EXPECT_EQ(reply_a, kWont + kEcho);
  EXPECT_EQ(reply_b, kWont + kEcho);
}

}  // namespace
}  // namespace greenline::protocol
