// Fuzzes protocol/telnet.h against a reference: the streaming filter, fed in input-chosen chunks,
// must produce exactly what a plain whole-input reading of RFC 854 produces (so no IAC command
// leaks into the data, and every 0xFF in it comes from IAC IAC), and its replies must be refusals
// only, each (verb, option) at most once. FeedInPlace must agree with Feed. Header: chunking
// (2 bytes).
#include <set>
#include <string>

#include "protocol/telnet.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

using greenline::protocol::fuzz::Check;
namespace t = greenline::protocol::telnet;

// The whole input at once, by index: a different shape from the filter's state machine, for the
// same rules (telnet.h). An incomplete command at the end is dropped, as the filter holds it.
void Reference(std::string_view in, std::string* data, std::string* reply) {
  bool answered[2][256] = {};
  bool in_sb = false;
  std::size_t i = 0;
  const auto at = [&](std::size_t k) { return static_cast<unsigned char>(in[k]); };
  while (i < in.size()) {
    const unsigned char c = at(i);
    if (in_sb) {
      if (c != t::kIac) {
        ++i;
      } else if (i + 1 < in.size()) {
        in_sb = at(i + 1) != t::kSe;
        i += 2;
      } else {
        break;
      }
    } else if (c == t::kIac) {
      if (i + 1 >= in.size()) break;
      const unsigned char command = at(i + 1);
      if (command == t::kIac) {
        data->push_back(static_cast<char>(t::kIac));
      } else if (command == t::kSb) {
        in_sb = true;
      } else if (command >= t::kWill) {
        if (i + 2 >= in.size()) break;
        const unsigned char option = at(i + 2);
        const bool is_do = command == t::kDo;
        if ((is_do || command == t::kWill) && !answered[is_do][option]) {
          answered[is_do][option] = true;
          reply->push_back(static_cast<char>(t::kIac));
          reply->push_back(static_cast<char>(is_do ? t::kWont : t::kDont));
          reply->push_back(static_cast<char>(option));
        }
        ++i;
      }
      i += 2;
    } else if (c == '\r') {
      data->push_back('\r');
      i += i + 1 < in.size() && in[i + 1] == '\0' ? 2 : 1;
    } else {
      data->push_back(static_cast<char>(c));
      ++i;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  greenline::protocol::fuzz::FuzzInput input(data, size, 2);
  greenline::protocol::TelnetFilter filter;
  greenline::protocol::TelnetFilter in_place;
  std::string out;
  std::string reply;
  std::string in_place_out;
  std::string in_place_reply;
  std::string buf;
  for (std::string_view chunk = input.NextChunk(); !chunk.empty(); chunk = input.NextChunk()) {
    filter.Feed(chunk, &out, &reply);
    buf.assign(chunk);
    const std::size_t n = in_place.FeedInPlace(buf, &in_place_reply);
    Check(n <= chunk.size(), "in place: more data than input");
    in_place_out.append(buf, 0, n);
  }
  Check(in_place_out == out && in_place_reply == reply, "FeedInPlace differs from Feed");
  std::string want_out;
  std::string want_reply;
  Reference(input.payload(), &want_out, &want_reply);
  Check(out == want_out, "data differs from the reference");
  Check(reply == want_reply, "reply differs from the reference");
  Check(out.size() <= input.payload().size(), "data longer than the input");
  Check(reply.size() % 3 == 0 && reply.size() <= 2 * 256 * 3, "reply is not a few refusals");
  std::set<std::string> seen;
  for (std::size_t i = 0; i < reply.size(); i += 3) {
    const auto verb = static_cast<unsigned char>(reply[i + 1]);
    Check(static_cast<unsigned char>(reply[i]) == t::kIac && (verb == t::kWont || verb == t::kDont),
          "reply other than WONT or DONT");
    Check(seen.insert(reply.substr(i, 3)).second, "the same refusal twice");
  }
  return 0;
}
