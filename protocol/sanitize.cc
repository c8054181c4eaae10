#include "protocol/sanitize.h"

#include <cstdint>

namespace greenline::protocol {
namespace {

constexpr int32_t kIllFormed = -1;
constexpr int32_t kEsc = 0x1B;
constexpr int32_t kBel = 0x07;
constexpr int32_t kCan = 0x18;
constexpr int32_t kSub = 0x1A;
constexpr int32_t kDel = 0x7F;
constexpr char kReplacement[] = "\xEF\xBF\xBD";  // U+FFFD

// Decodes the character at s[i] (i < s.size()) into *cp and returns its length in bytes. An
// ill-formed sequence gives kIllFormed and the length of its maximal subpart: the longest prefix
// that Table 3-7 allows to continue, at least one byte.
std::size_t DecodeUtf8(std::string_view s, std::size_t i, int32_t* cp) {
  const auto b0 = static_cast<uint8_t>(s[i]);
  if (b0 < 0x80) {
    *cp = b0;
    return 1;
  }
  // Continuation bytes to come, and the range allowed for the first of them (the others are
  // always 80..BF). The narrow ranges exclude overlongs (E0, F0), surrogates (ED) and code points
  // above U+10FFFF (F4).
  int more;
  uint8_t lo = 0x80;
  uint8_t hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    more = 1;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    more = 2;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    more = 3;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    *cp = kIllFormed;  // 80..C1 (continuation or overlong lead) and F5..FF never start one
    return 1;
  }
  int32_t value = b0 & (0x3F >> more);
  std::size_t len = 1;
  for (int k = 0; k < more; ++k) {
    if (i + len >= s.size()) {
      *cp = kIllFormed;
      return len;
    }
    const auto b = static_cast<uint8_t>(s[i + len]);
    if (b < lo || b > hi) {
      *cp = kIllFormed;
      return len;
    }
    value = (value << 6) | (b & 0x3F);
    ++len;
    lo = 0x80;
    hi = 0xBF;
  }
  *cp = value;
  return len;
}

// Where an escape sequence being removed stands.
enum class Seq {
  kNone,          // in text
  kEsc,           // after ESC
  kIntermediate,  // after ESC and intermediate bytes (0x20..0x2F): a final byte ends it
  kCsi,           // after ESC [ or U+009B: parameters and intermediates until a final byte
  kString,        // in OSC, DCS, SOS, PM or APC: until BEL or ST
  kStringEsc,     // in a string, after ESC: a backslash completes ST
};

bool IsC0OrDel(int32_t cp) { return (cp >= 0 && cp < 0x20) || cp == kDel; }

}  // namespace

void AppendSanitizedText(std::string_view line, std::string* out) {
  Seq seq = Seq::kNone;
  std::size_t i = 0;
  while (i < line.size()) {
    int32_t cp;
    const std::size_t len = DecodeUtf8(line, i, &cp);
    // A character that ends a malformed sequence without belonging to it is read again as text.
    bool consumed = true;
    switch (seq) {
      case Seq::kNone:
        if (cp == kEsc) {
          seq = Seq::kEsc;
        } else if (cp == 0x9B) {
          seq = Seq::kCsi;
        } else if (cp == 0x9D || cp == 0x90 || cp == 0x98 || cp == 0x9E || cp == 0x9F) {
          seq = Seq::kString;
        } else if (cp == kIllFormed) {
          out->append(kReplacement, 3);
        } else if (cp == '\t') {
          out->push_back(' ');
        } else if (!IsC0OrDel(cp) && !(cp >= 0x80 && cp <= 0x9F)) {
          out->append(line.substr(i, len));
        }
        break;
      case Seq::kEsc:
        if (cp == '[') {
          seq = Seq::kCsi;
        } else if (cp == ']' || cp == 'P' || cp == 'X' || cp == '^' || cp == '_') {
          seq = Seq::kString;
        } else if (cp >= 0x20 && cp <= 0x2F) {
          seq = Seq::kIntermediate;
        } else if ((cp >= 0x30 && cp <= 0x7E) || cp == kCan || cp == kSub) {
          seq = Seq::kNone;
        } else if (!IsC0OrDel(cp)) {
          seq = Seq::kNone;  // not an escape sequence: ESC alone is dropped, the rest is text
          consumed = false;
        }  // ESC restarts; other C0 and DEL are dropped and the sequence goes on, as on a VT
        break;
      case Seq::kIntermediate:
      case Seq::kCsi: {
        // CSI takes parameters (0x30..0x3F) then intermediates; an ESC sequence only
        // intermediates. Neither parser checks the order: it only matters for where text resumes.
        const int32_t last_middle = seq == Seq::kCsi ? 0x3F : 0x2F;
        if (cp == kEsc) {
          seq = Seq::kEsc;
        } else if ((cp > last_middle && cp <= 0x7E) || cp == kCan || cp == kSub) {
          seq = Seq::kNone;
        } else if (cp >= 0x20 && cp <= last_middle) {
          // still inside
        } else if (!IsC0OrDel(cp)) {
          seq = Seq::kNone;
          consumed = false;
        }
        break;
      }
      case Seq::kString:
        if (cp == kBel || cp == 0x9C || cp == kCan || cp == kSub) {
          seq = Seq::kNone;
        } else if (cp == kEsc) {
          seq = Seq::kStringEsc;
        }
        break;
      case Seq::kStringEsc:
        if (cp == '\\') {
          seq = Seq::kNone;
        } else {
          seq = Seq::kEsc;  // ESC ends the string and starts a sequence of its own, as in xterm
          consumed = false;
        }
        break;
    }
    if (consumed) i += len;
  }
}

std::string SanitizeText(std::string_view line) {
  std::string out;
  out.reserve(line.size());
  AppendSanitizedText(line, &out);
  return out;
}

bool ValidName(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength) return false;
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace greenline::protocol
