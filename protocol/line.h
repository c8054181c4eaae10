// LineFramer: splits a byte stream into lines, holding at most one line's worth of bytes.
//
// Both services speak lines ending with LF; telnet sends CRLF, nc sends LF. A line's length is
// counted without its terminator ("\n" or "\r\n"), so with max_line = 4096 a line of 4096 bytes
// followed by CRLF is accepted and one of 4097 bytes followed by LF is not. The framer never holds
// more than max_line + 2 bytes (the longest acceptable line and its CRLF), whatever the peer
// sends: a line that cannot fit is reported as too long as soon as its first excess byte arrives,
// and the framer stays in that state (the connection is to be closed; reading further would only
// let a peer make us scan an endless line).
//
// Zero extra copies: the caller reads from the socket straight into Space(), tells the framer how
// much arrived with Commit(), and takes lines out with Next() as views into the same buffer. Bytes
// move only when a partial line is shifted to the front to make room, once per Space() at most.
//
//   LineFramer framer(4096);
//   for (;;) {
//     LineFramer::Line line;
//     LineFramer::Status s;
//     while ((s = framer.Next(&line)) == LineFramer::Status::kLine) Handle(line);
//     if (s == LineFramer::Status::kTooLong) { Reply("! line too long ..."); break; }
//     std::span<char> space = framer.Space();          // never empty after kNeedMore
//     auto [n, err] = conn.Read(space.data(), space.size());
//     if (n > 0) framer.Commit(n);
//     if (err) { Handle(framer.Rest()); break; }       // EOF: the unterminated tail, if any
//   }
//
// Memory: there is no buffer until the first Space(); it starts small (kInitialCapacity, or less
// when max_line is smaller) and doubles, up to max_line + 2, only when a partial line fills it, and
// Trim() frees it while it holds nothing. Chat lines are short, and a server with 100,000 mostly
// idle connections should not pin a buffer for each of them.
//
// Not thread-safe: one framer belongs to one connection's goroutine.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string_view>

namespace greenline::protocol {

class LineFramer {
 public:
  // Capacity of a fresh framer's buffer (clamped to max_line + 2).
  static constexpr std::size_t kInitialCapacity = 512;

  enum class Status {
    kLine,      // *out holds the next complete line.
    kNeedMore,  // every complete line has been returned: read more into Space().
    kTooLong,   // a line exceeds max_line; sticky: every later Next() says so too.
  };

  struct Line {
    std::string_view content;     // the line without its terminator; any bytes, NULs included
    std::string_view terminator;  // "\n" or "\r\n"
  };

  // max_line: the longest acceptable line in bytes, terminator excluded.
  explicit LineFramer(std::size_t max_line);
  LineFramer(const LineFramer&) = delete;
  LineFramer& operator=(const LineFramer&) = delete;
  LineFramer(LineFramer&&) noexcept = default;
  LineFramer& operator=(LineFramer&&) noexcept = default;

  // Where the caller may write newly received bytes. Non-empty whenever the last Next() returned
  // kNeedMore (call Next() until it does before reading again). May move buffered bytes and grow
  // the buffer: invalidates the views of earlier lines.
  std::span<char> Space();

  // n bytes were written at the start of the last Space() (n <= its size).
  void Commit(std::size_t n);

  // The next complete line, if any. The views in *out stay valid until the next call to Space()
  // or Trim(): Next() moves no bytes, so the lines it returns between two Space() calls lie back
  // to back in the buffer, each line's terminator followed by the next line (echo writes them
  // back with one call, without copying).
  Status Next(Line* out);

  // Frees the buffer if it holds no bytes (the next Space() allocates a small one again): for a
  // connection going idle. Keeps it otherwise.
  void Trim();

  // The bytes received but not yet returned as a line. After Next() returned kNeedMore, this is
  // the unterminated partial line (at most max_line + 1 bytes), which echo returns as is at EOF.
  std::string_view Rest() const { return {buf_.get() + begin_, end_ - begin_}; }

  // Rest().size().
  std::size_t Buffered() const { return end_ - begin_; }

  // The buffer's current size (0 before the first Space() and after Trim()); never more than
  // max_line + 2.
  std::size_t Capacity() const { return capacity_; }

  std::size_t max_line() const { return max_line_; }

 private:
  std::size_t max_line_;
  std::unique_ptr<char[]> buf_;
  std::size_t capacity_;
  // buf_[begin_, end_) is received and not yet returned; buf_[begin_, scanned_) is known to hold
  // no LF, so a line trickling in byte by byte is scanned once, not once per byte.
  std::size_t begin_ = 0;
  std::size_t scanned_ = 0;
  std::size_t end_ = 0;
  bool too_long_ = false;
};

}  // namespace greenline::protocol
