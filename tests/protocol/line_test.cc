// Tests for protocol/line.h: lines end with LF or CRLF and come out byte-exact (binary and NULs
// included); the same lines come out whatever the read boundaries; the length limit holds exactly
// at its edge (max_line bytes plus CRLF fits, one more does not), is reported as soon as the first
// excess byte arrives and is sticky; and the framer never holds more than max_line + 2 bytes,
// whatever arrives.
#include "protocol/line.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

namespace greenline::protocol {
namespace {

using Status = LineFramer::Status;
using namespace std::string_literals;

// What a framer made of a stream: each line's content and terminator, and how it ended.
struct Framed {
  std::vector<std::pair<std::string, std::string>> lines;
  bool too_long = false;
  std::string rest;

  bool operator==(const Framed&) const = default;
};

// Takes every complete line out of the framer.
void Drain(LineFramer& framer, Framed* out) {
  LineFramer::Line line;
  Status s;
  while ((s = framer.Next(&line)) == Status::kLine) {
    out->lines.emplace_back(std::string(line.content), std::string(line.terminator));
  }
  out->too_long = s == Status::kTooLong;
  if (s == Status::kNeedMore) out->rest = std::string(framer.Rest());
}

// Writes `bytes` as the socket would, in as many reads as Space() needs, draining after each and
// checking the framer's bounds all along.
void Push(LineFramer& framer, std::string_view bytes, Framed* out) {
  while (!bytes.empty() && !out->too_long) {
    std::span<char> space = framer.Space();
    ASSERT_FALSE(space.empty()) << "Space() is empty after kNeedMore";
    const std::size_t n = std::min(space.size(), bytes.size());
    std::memcpy(space.data(), bytes.data(), n);
    framer.Commit(n);
    bytes.remove_prefix(n);
    ASSERT_LE(framer.Buffered(), framer.max_line() + 2);
    ASSERT_LE(framer.Capacity(), framer.max_line() + 2);
    Drain(framer, out);
  }
}

Framed Frame(std::size_t max_line, const std::vector<std::string_view>& chunks) {
  LineFramer framer(max_line);
  Framed out;
  for (const std::string_view chunk : chunks) Push(framer, chunk, &out);
  return out;
}

Framed FrameWhole(std::size_t max_line, std::string_view bytes) { return Frame(max_line, {bytes}); }

Framed FrameByteByByte(std::size_t max_line, std::string_view bytes) {
  std::vector<std::string_view> chunks;
  for (std::size_t i = 0; i < bytes.size(); ++i) chunks.push_back(bytes.substr(i, 1));
  return Frame(max_line, chunks);
}

using Lines = std::vector<std::pair<std::string, std::string>>;

TEST(LineFramerTest, NextBeforeAnyBytesOrAfterTrimNeedsMore) {
  // A reader may ask for lines before it ever read (chat's reader does, each step): no buffer yet.
  LineFramer f(16);
  LineFramer::Line line;
  EXPECT_EQ(f.Next(&line), LineFramer::Status::kNeedMore);
  EXPECT_EQ(f.Capacity(), 0u);
  std::span<char> space = f.Space();
  std::memcpy(space.data(), "a\n", 2);
  f.Commit(2);
  ASSERT_EQ(f.Next(&line), LineFramer::Status::kLine);
  EXPECT_EQ(line.content, "a");
  EXPECT_EQ(f.Next(&line), LineFramer::Status::kNeedMore);
  f.Trim();
  EXPECT_EQ(f.Capacity(), 0u);
  EXPECT_EQ(f.Next(&line), LineFramer::Status::kNeedMore);
}

TEST(LineFramerTest, SplitsLfAndCrlfLines) {
  const Framed f = FrameWhole(100, "a\nbb\r\nccc\n");
  EXPECT_EQ(f.lines, (Lines{{"a", "\n"}, {"bb", "\r\n"}, {"ccc", "\n"}}));
  EXPECT_FALSE(f.too_long);
  EXPECT_EQ(f.rest, "");
}

TEST(LineFramerTest, EmptyLinesAreLines) {
  EXPECT_EQ(FrameWhole(100, "\n\r\n\n").lines, (Lines{{"", "\n"}, {"", "\r\n"}, {"", "\n"}}));
}

TEST(LineFramerTest, OnlyTheCrBeforeTheLfIsTerminator) {
  EXPECT_EQ(FrameWhole(100, "a\rb\n\r\r\n").lines, (Lines{{"a\rb", "\n"}, {"\r", "\r\n"}}));
}

TEST(LineFramerTest, BinaryBytesComeOutExact) {
  const std::string line = "\0\x01\xff\x80\x1b[2J\0\r\0"s;
  const Framed f = FrameWhole(100, line + "\n" + line + "\r\n");
  EXPECT_EQ(f.lines, (Lines{{line, "\n"}, {line, "\r\n"}}));
}

TEST(LineFramerTest, RestIsTheUnterminatedTail) {
  const Framed f = FrameWhole(100, "abc\nde\r");
  EXPECT_EQ(f.lines, (Lines{{"abc", "\n"}}));
  EXPECT_EQ(f.rest, "de\r");
}

TEST(LineFramerTest, EverySplitPointGivesTheSameLines) {
  const std::string input = "hello\r\nworld\n\nbin\0\xff\r\x80\n\r\nlast partial"s;
  const Framed whole = FrameWhole(16, input);
  ASSERT_EQ(whole.lines.size(), 5u);
  EXPECT_EQ(whole.rest, "last partial");
  for (std::size_t i = 0; i <= input.size(); ++i) {
    for (std::size_t j = i; j <= input.size(); ++j) {
      const std::string_view in(input);
      EXPECT_EQ(Frame(16, {in.substr(0, i), in.substr(i, j - i), in.substr(j)}), whole)
          << "split at " << i << " and " << j;
    }
  }
  EXPECT_EQ(FrameByteByByte(16, input), whole);
}

TEST(LineFramerTest, LineOfExactlyMaxBytesFitsWithEitherTerminator) {
  const std::string max(10, 'x');
  for (const std::string terminator : {"\n", "\r\n"}) {
    const std::string input = max + terminator + "y\n";
    const Lines want{{max, terminator}, {"y", "\n"}};
    EXPECT_EQ(FrameWhole(10, input).lines, want) << terminator.size();
    EXPECT_EQ(FrameByteByByte(10, input).lines, want) << terminator.size();
    EXPECT_FALSE(FrameByteByByte(10, input).too_long);
  }
}

TEST(LineFramerTest, LineOfMaxPlusOneBytesIsTooLongWithEitherTerminator) {
  const std::string over(11, 'x');
  for (const std::string terminator : {"\n", "\r\n"}) {
    const std::string input = "ok\n" + over + terminator + "never\n";
    for (const Framed& f : {FrameWhole(10, input), FrameByteByByte(10, input)}) {
      EXPECT_EQ(f.lines, (Lines{{"ok", "\n"}})) << terminator.size();
      EXPECT_TRUE(f.too_long) << terminator.size();
    }
  }
}

TEST(LineFramerTest, TooLongIsReportedAtTheFirstExcessByte) {
  LineFramer framer(10);
  Framed f;
  Push(framer, std::string(10, 'x'), &f);
  EXPECT_FALSE(f.too_long);
  // Byte 11 may be the CR of a CRLF ending a 10-byte line...
  Push(framer, "\r", &f);
  EXPECT_FALSE(f.too_long);
  EXPECT_EQ(framer.Buffered(), 11u);
  // ...but anything after it that is not the LF cannot end an acceptable line.
  Push(framer, "x", &f);
  EXPECT_TRUE(f.too_long);

  LineFramer other(10);
  Framed g;
  Push(other, std::string(11, 'x'), &g);
  EXPECT_TRUE(g.too_long) << "11 bytes not ending in CR are over the limit without a terminator";
}

TEST(LineFramerTest, TooLongIsSticky) {
  LineFramer framer(4);
  Framed f;
  Push(framer, "abcdef", &f);
  ASSERT_TRUE(f.too_long);
  LineFramer::Line line;
  EXPECT_EQ(framer.Next(&line), Status::kTooLong);
  EXPECT_EQ(framer.Next(&line), Status::kTooLong);
}

TEST(LineFramerTest, ZeroMaxLineAcceptsOnlyEmptyLines) {
  EXPECT_EQ(FrameByteByByte(0, "\n\r\n").lines, (Lines{{"", "\n"}, {"", "\r\n"}}));
  EXPECT_TRUE(FrameWhole(0, "a").too_long);
  EXPECT_TRUE(FrameWhole(0, "\r\r").too_long);
}

TEST(LineFramerTest, NeverHoldsMoreThanMaxPlusTwoBytes) {
  // An endless line: reported, and the buffer never grew past the bound (Push checks it).
  const Framed endless = FrameWhole(4096, std::string(1 << 20, 'a'));
  EXPECT_TRUE(endless.too_long);
  EXPECT_TRUE(endless.lines.empty());

  // Many lines of every length up to the limit, written in odd-sized pieces.
  std::string input;
  for (std::size_t len = 0; len <= 300; ++len) {
    input.append(len, 'a' + len % 26).append(len % 2 ? "\r\n" : "\n");
  }
  std::vector<std::string_view> chunks;
  for (std::size_t at = 0, size = 1; at < input.size(); at += size, size = size * 7 % 613 + 1) {
    chunks.push_back(std::string_view(input).substr(at, size));
  }
  const Framed f = Frame(300, chunks);
  EXPECT_FALSE(f.too_long);
  ASSERT_EQ(f.lines.size(), 301u);
  EXPECT_EQ(f.lines[300],
            (std::pair<std::string, std::string>{std::string(300, 'a' + 300 % 26), "\n"}));
}

TEST(LineFramerTest, BufferStartsSmallAndGrowsOnlyForLongLines) {
  LineFramer framer(4096);
  EXPECT_EQ(framer.Capacity(), 0u) << "no buffer before the first read";
  framer.Space();
  EXPECT_EQ(framer.Capacity(), LineFramer::kInitialCapacity);
  Framed f;
  for (int i = 0; i < 1000; ++i) Push(framer, "a short chat line\r\n", &f);
  EXPECT_EQ(framer.Capacity(), LineFramer::kInitialCapacity) << "short lines never grow it";
  Push(framer, std::string(3000, 'x'), &f);
  EXPECT_GE(framer.Capacity(), 3001u);
  Push(framer, std::string(1096, 'x') + "\r\n", &f);
  EXPECT_EQ(framer.Capacity(), 4098u);
  EXPECT_FALSE(f.too_long);
  EXPECT_EQ(f.lines.back().first, std::string(4096, 'x'));

  LineFramer small(10);
  EXPECT_EQ(small.Space().size(), 12u) << "a small limit caps the first buffer too";
}

TEST(LineFramerTest, TrimFreesOnlyAnEmptyBuffer) {
  LineFramer framer(4096);
  Framed f;
  Push(framer, "one\ntw", &f);
  framer.Trim();
  EXPECT_EQ(framer.Capacity(), LineFramer::kInitialCapacity) << "a partial line is kept";
  EXPECT_EQ(framer.Rest(), "tw");
  Push(framer, "o\n", &f);
  framer.Trim();
  EXPECT_EQ(framer.Capacity(), 0u);
  EXPECT_EQ(framer.Buffered(), 0u);
  Push(framer, "three\r\n", &f);
  ASSERT_EQ(f.lines.size(), 3u);
  EXPECT_EQ(f.lines[1].first, "two");
  EXPECT_EQ(f.lines[2], (std::pair<std::string, std::string>{"three", "\r\n"}));
}

TEST(LineFramerTest, LinesTakenBetweenReadsLieBackToBack) {
  LineFramer framer(100);
  std::span<char> space = framer.Space();
  std::memcpy(space.data(), "a\nbb\r\nccc\npartial", 17);
  framer.Commit(17);
  LineFramer::Line first, line;
  ASSERT_EQ(framer.Next(&first), LineFramer::Status::kLine);
  const char* expect = first.terminator.data() + first.terminator.size();
  while (framer.Next(&line) == LineFramer::Status::kLine) {
    EXPECT_EQ(line.content.data(), expect);
    expect = line.terminator.data() + line.terminator.size();
  }
  EXPECT_EQ(std::string_view(first.content.data(), expect - first.content.data()),
            "a\nbb\r\nccc\n");
  EXPECT_EQ(first.content, "a") << "views stay valid until the next Space()";
}

TEST(LineFramerTest, LinesAreViewsOfTheReadBuffer) {
  LineFramer framer(100);
  std::span<char> space = framer.Space();
  std::memcpy(space.data(), "one\ntwo\n", 8);
  framer.Commit(8);
  LineFramer::Line line;
  ASSERT_EQ(framer.Next(&line), Status::kLine);
  EXPECT_EQ(line.content.data(), space.data()) << "no copy between the read and the line";
  ASSERT_EQ(framer.Next(&line), Status::kLine);
  EXPECT_EQ(line.content.data(), space.data() + 4);
  EXPECT_EQ(framer.Next(&line), Status::kNeedMore);
  EXPECT_EQ(framer.Buffered(), 0u);
}

TEST(LineFramerTest, PartialLineMovesToTheFrontForTheNextRead) {
  LineFramer framer(8);  // a 10-byte buffer
  std::span<char> space = framer.Space();
  ASSERT_EQ(space.size(), 10u);
  std::memcpy(space.data(), "abcd\nefgh", 9);
  framer.Commit(9);
  LineFramer::Line line;
  ASSERT_EQ(framer.Next(&line), Status::kLine);
  ASSERT_EQ(framer.Next(&line), Status::kNeedMore);
  space = framer.Space();
  EXPECT_EQ(space.size(), 6u) << "the 4-byte partial line moved to the front";
  EXPECT_EQ(framer.Rest(), "efgh");
  std::memcpy(space.data(), "ijkl\n", 5);
  framer.Commit(5);
  ASSERT_EQ(framer.Next(&line), Status::kLine);
  EXPECT_EQ(line.content, "efghijkl");
}

}  // namespace
}  // namespace greenline::protocol
