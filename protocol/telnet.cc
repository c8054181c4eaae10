#include "protocol/telnet.h"

#include <cstring>

namespace greenline::protocol {

using telnet::kDo;
using telnet::kDont;
using telnet::kIac;
using telnet::kSb;
using telnet::kSe;
using telnet::kWill;
using telnet::kWont;

void TelnetFilter::Feed(std::string_view in, std::string* data, std::string* reply) {
  const std::size_t old = data->size();
  data->resize(old + in.size());
  data->resize(old + Filter(in.data(), in.size(), data->data() + old, reply));
}

std::size_t TelnetFilter::FeedInPlace(std::span<char> chunk, std::string* reply) {
  return Filter(chunk.data(), chunk.size(), chunk.data(), reply);
}

std::size_t TelnetFilter::Filter(const char* in, std::size_t n, char* out, std::string* reply) {
  // i reads, o writes, o <= i throughout: every byte is read before anything is written at its
  // place, which is what lets out be in. Runs of plain data move in one piece: this is the path
  // every chat line takes.
  std::size_t i = 0;
  std::size_t o = 0;
  while (i < n) {
    const auto c = static_cast<unsigned char>(in[i]);
    switch (state_) {
      case State::kCr:
        state_ = State::kData;
        if (c == 0) {
          ++i;
          break;
        }
        [[fallthrough]];
      case State::kData: {
        std::size_t j = i;
        while (j < n && in[j] != static_cast<char>(kIac) && in[j] != '\r') ++j;
        if (out + o != in + i) std::memmove(out + o, in + i, j - i);
        o += j - i;
        i = j;
        if (i < n) {
          if (in[i] == '\r') {
            out[o++] = '\r';
            state_ = State::kCr;
          } else {
            state_ = State::kIac;
          }
          ++i;
        }
        break;
      }
      case State::kIac:
        ++i;
        if (c == kIac) {
          out[o++] = static_cast<char>(kIac);
          state_ = State::kData;
        } else if (c == kSb) {
          state_ = State::kSb;
        } else if (c == kWill || c == kWont || c == kDo || c == kDont) {
          verb_ = c;
          state_ = State::kVerb;
        } else {
          state_ = State::kData;  // a two-byte command, or not a command at all: dropped
        }
        break;
      case State::kVerb: {
        ++i;
        state_ = State::kData;
        std::bitset<256>* refused = verb_ == kDo ? &refused_do_ : &refused_will_;
        if ((verb_ == kDo || verb_ == kWill) && !refused->test(c)) {
          refused->set(c);
          const char answer[3] = {static_cast<char>(kIac),
                                  static_cast<char>(verb_ == kDo ? kWont : kDont),
                                  static_cast<char>(c)};
          reply->append(answer, 3);
        }
        break;
      }
      case State::kSb: {
        // Skip to the next IAC in one step.
        const void* iac = std::memchr(in + i, kIac, n - i);
        if (iac == nullptr) {
          i = n;
        } else {
          i = static_cast<const char*>(iac) - in + 1;
          state_ = State::kSbIac;
        }
        break;
      }
      case State::kSbIac:
        ++i;
        state_ = c == kSe ? State::kData : State::kSb;
        break;
    }
  }
  return o;
}

}  // namespace greenline::protocol
