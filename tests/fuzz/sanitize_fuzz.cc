// Fuzzes protocol/sanitize.h: the payload, cut into input-chosen chunks, is sanitized chunk by
// chunk as lines, and each result must be valid UTF-8 (checked by an independent decoder) with no
// C0, DEL or C1, at most 3 times the input's size, a fixed point of SanitizeText, unchanged when
// the input was already safe, and the same when appended to existing text. Header: chunking
// (2 bytes).
#include <string>

#include "protocol/sanitize.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

using greenline::protocol::AppendSanitizedText;
using greenline::protocol::SanitizeText;
using greenline::protocol::fuzz::Check;

// True if `s` is well-formed UTF-8 (RFC 3629: shortest form, no surrogates, at most U+10FFFF)
// without control characters (C0, DEL, C1). Decodes by value, not by Unicode's byte table, so it
// does not share the sanitizer's mistakes.
bool IsSafeText(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    std::size_t len;
    uint32_t cp;
    if (b0 < 0x80) {
      len = 1;
      cp = b0;
    } else if ((b0 & 0xE0) == 0xC0) {
      len = 2;
      cp = b0 & 0x1F;
    } else if ((b0 & 0xF0) == 0xE0) {
      len = 3;
      cp = b0 & 0x0F;
    } else if ((b0 & 0xF8) == 0xF0) {
      len = 4;
      cp = b0 & 0x07;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    for (std::size_t k = 1; k < len; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (b & 0x3F);
    }
    static constexpr uint32_t kMinForLength[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMinForLength[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F)) return false;
    i += len;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  greenline::protocol::fuzz::FuzzInput input(data, size, 2);
  const std::string whole = SanitizeText(input.payload());
  Check(IsSafeText(whole), "output of the whole input is not safe text");
  for (std::string_view line = input.NextChunk(); !line.empty(); line = input.NextChunk()) {
    const std::string out = SanitizeText(line);
    Check(IsSafeText(out), "output is not safe text");
    Check(out.size() <= 3 * line.size(), "output more than 3 times the input");
    Check(SanitizeText(out) == out, "not idempotent");
    Check(!IsSafeText(line) || out == line, "safe text was changed");
    std::string appended = "prefix ";
    AppendSanitizedText(line, &appended);
    Check(appended == "prefix " + out, "appending differs from SanitizeText");
  }
  return 0;
}
