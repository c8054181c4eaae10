#include "protocol/line.h"

#include <algorithm>
#include <cassert>
#include <cstring>

namespace greenline::protocol {

LineFramer::LineFramer(std::size_t max_line) : max_line_(max_line), capacity_(0) {}

void LineFramer::Trim() {
  if (end_ != begin_ || buf_ == nullptr) return;
  buf_.reset();
  capacity_ = begin_ = scanned_ = end_ = 0;
}

std::span<char> LineFramer::Space() {
  if (buf_ == nullptr) {
    capacity_ = std::min(max_line_ + 2, kInitialCapacity);
    buf_.reset(new char[capacity_]);
  }
  // Shift the partial line to the front. Once per read at most, and only what is left after the
  // lines were taken out; in the common case (whole lines per read) nothing is left to move.
  if (begin_ > 0) {
    std::memmove(buf_.get(), buf_.get() + begin_, end_ - begin_);
    scanned_ -= begin_;
    end_ -= begin_;
    begin_ = 0;
  }
  // A partial line fills the buffer: grow towards max_line + 2. After kNeedMore, at most
  // max_line + 1 bytes are held, so the full-size buffer always has room for one more.
  const std::size_t limit = max_line_ + 2;
  if (end_ == capacity_ && capacity_ < limit) {
    const std::size_t grown = std::min(limit, capacity_ * 2);
    std::unique_ptr<char[]> bigger(new char[grown]);
    std::memcpy(bigger.get(), buf_.get(), end_);
    buf_ = std::move(bigger);
    capacity_ = grown;
  }
  return {buf_.get() + end_, capacity_ - end_};
}

void LineFramer::Commit(std::size_t n) {
  assert(n <= capacity_ - end_);
  end_ += std::min(n, capacity_ - end_);
}

LineFramer::Status LineFramer::Next(Line* out) {
  if (too_long_) return Status::kTooLong;
  // Nothing received (no buffer yet, or Trim() freed it): memchr must not see a null pointer.
  if (scanned_ == end_) return Status::kNeedMore;
  char* const buf = buf_.get();
  const void* lf = std::memchr(buf + scanned_, '\n', end_ - scanned_);
  if (lf != nullptr) {
    const std::size_t lf_at = static_cast<const char*>(lf) - buf;
    std::size_t content_end = lf_at;
    if (content_end > begin_ && buf[content_end - 1] == '\r') --content_end;
    if (content_end - begin_ > max_line_) {
      too_long_ = true;
      return Status::kTooLong;
    }
    out->content = {buf + begin_, content_end - begin_};
    out->terminator = {buf + content_end, lf_at + 1 - content_end};
    begin_ = scanned_ = lf_at + 1;
    return Status::kLine;
  }
  scanned_ = end_;
  // No LF yet. max_line + 1 bytes may still be a full line whose last byte is the CR of a CRLF;
  // anything more cannot become an acceptable line.
  const std::size_t held = end_ - begin_;
  if (held > max_line_ + 1 || (held == max_line_ + 1 && buf[end_ - 1] != '\r')) {
    too_long_ = true;
    return Status::kTooLong;
  }
  return Status::kNeedMore;
}

}  // namespace greenline::protocol
