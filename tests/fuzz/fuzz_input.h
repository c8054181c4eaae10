// What the protocol fuzz targets share: an input's first bytes choose how its payload is cut into
// chunks, so libFuzzer explores read boundaries as it explores content, and a violated invariant
// aborts with a message (libFuzzer then saves the input as a crash).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace greenline::protocol::fuzz {

// Aborts with `what` when `ok` is false. Not assert(): it must hold in every build type.
inline void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz invariant violated: %s\n", what);
    std::abort();
  }
}

// An input as a header of `header_bytes` bytes (missing ones read as 0) and a payload fed in
// chunks. Byte 0 picks the largest chunk (1 to 4096 bytes, in powers of two), byte 1 seeds the
// sizes below it; every chunk is at least one byte, so the whole payload is always fed.
class FuzzInput {
 public:
  FuzzInput(const uint8_t* data, std::size_t size, std::size_t header_bytes) {
    const std::size_t h = header_bytes < size ? header_bytes : size;
    for (std::size_t i = 0; i < h && i < sizeof header_; ++i) header_[i] = data[i];
    payload_ = {reinterpret_cast<const char*>(data) + h, size - h};
    max_chunk_ = std::size_t{1} << (header_[0] % 13);
    state_ = 0x9E3779B9u ^ header_[1];
  }

  uint8_t header(std::size_t i) const { return header_[i]; }
  std::string_view payload() const { return payload_; }

  // The next chunk of the payload; empty once it is all fed.
  std::string_view NextChunk() {
    // xorshift32: cheap, deterministic for a given input, so a crash reproduces.
    state_ ^= state_ << 13;
    state_ ^= state_ >> 17;
    state_ ^= state_ << 5;
    std::size_t n = 1 + state_ % max_chunk_;
    if (n > payload_.size() - fed_) n = payload_.size() - fed_;
    const std::string_view chunk = payload_.substr(fed_, n);
    fed_ += n;
    return chunk;
  }

 private:
  uint8_t header_[4] = {};
  std::string_view payload_;
  std::size_t fed_ = 0;
  std::size_t max_chunk_;
  uint32_t state_;
};

}  // namespace greenline::protocol::fuzz
