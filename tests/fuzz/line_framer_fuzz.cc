// Fuzzes protocol/line.h: feeds the payload through Space()/Commit() in input-chosen chunks and
// checks that the framer never holds more than max_line + 2 bytes, that Space() is never empty
// when it must not be, that the lines it returns plus its Rest() reassemble the input byte for
// byte, that every line respects the limit, and that kTooLong is reported exactly when the input
// really holds an overlong line. Header: chunking (2 bytes), then max_line (byte 2: 0..127, or
// 4096 when its top bit is set).
#include <algorithm>
#include <cstring>
#include <span>
#include <string>

#include "protocol/line.h"
#include "tests/fuzz/fuzz_input.h"

using greenline::protocol::LineFramer;
using greenline::protocol::fuzz::Check;
using greenline::protocol::fuzz::FuzzInput;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzInput input(data, size, 3);
  const std::size_t max_line = input.header(2) & 0x80 ? 4096 : input.header(2) & 0x7F;
  const std::string_view payload = input.payload();
  LineFramer framer(max_line);
  std::string reassembled;
  LineFramer::Status status = LineFramer::Status::kNeedMore;
  for (std::string_view chunk = input.NextChunk();
       !chunk.empty() && status != LineFramer::Status::kTooLong; chunk = input.NextChunk()) {
    while (!chunk.empty() && status != LineFramer::Status::kTooLong) {
      const std::span<char> space = framer.Space();
      Check(!space.empty(), "Space() is empty after kNeedMore");
      const std::size_t n = std::min(space.size(), chunk.size());
      std::memcpy(space.data(), chunk.data(), n);
      framer.Commit(n);
      chunk.remove_prefix(n);
      Check(framer.Buffered() <= max_line + 2, "holds more than max_line + 2 bytes");
      Check(framer.Capacity() <= max_line + 2, "buffer larger than max_line + 2 bytes");
      LineFramer::Line line;
      while ((status = framer.Next(&line)) == LineFramer::Status::kLine) {
        Check(line.content.size() <= max_line, "line over the limit");
        Check(line.terminator == "\n" || line.terminator == "\r\n", "bad terminator");
        Check(line.content.find('\n') == std::string_view::npos, "LF inside a line");
        Check(line.terminator == "\r\n" || !line.content.ends_with('\r'), "CRLF split");
        reassembled.append(line.content).append(line.terminator);
      }
    }
  }
  Check(payload.starts_with(reassembled), "lines are not the input");
  const std::string_view remainder = payload.substr(reassembled.size());
  const std::size_t lf = remainder.find('\n');
  if (status == LineFramer::Status::kTooLong) {
    // The line after the returned ones really is too long.
    if (lf != std::string_view::npos) {
      std::string_view content = remainder.substr(0, lf);
      if (content.ends_with('\r')) content.remove_suffix(1);
      Check(content.size() > max_line, "kTooLong for a line within the limit");
    } else {
      Check(remainder.size() > max_line + 1 ||
                (remainder.size() == max_line + 1 && !remainder.ends_with('\r')),
            "kTooLong for an unterminated line that could still fit");
    }
  } else {
    Check(lf == std::string_view::npos, "a complete line was not returned");
    Check(framer.Rest() == remainder, "Rest() is not the unterminated tail");
    Check(remainder.size() <= max_line + 1, "unterminated tail over the limit");
  }
  return 0;
}
