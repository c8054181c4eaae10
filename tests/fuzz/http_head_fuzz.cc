// Fuzzes protocol/http.h as the server drives it. The payload arrives in input-chosen chunks; the
// head framer runs over the growing buffer as server/http.cc runs it (skipped empty lines dropped,
// each whole head consumed and the next pipelined one framed at once, stop at kTooLarge), and each
// answer must equal a line-by-line reference's and lie within the buffer. Each framed head, and the
// whole payload as one head, goes to ParseRequestHead in a buffer of exactly its size (ASan then
// catches a read past it); a parse must fail with 400 or 505 and a reason, or yield a request whose
// every part satisfies RFC 9112's grammar and this server's rules (tokens, one Host on 1.1,
// agreeing digit-only Content-Lengths). PlanRequest must answer only 405 or 413, and the response
// head formatted for that request, with a content type and headers taken from the raw head lines
// (CR, bad names and framing headers included), must be CRLF lines only, with one status line, one
// Content-Length (none for 204 and 304) that is the body's, no Transfer-Encoding, and the one
// Connection the keep-alive decision calls for. HttpDate must agree with gmtime_r. Header: chunking
// (2 bytes), max_header_bytes (byte 2: 8192 when its top bit is set, else 4 times its low 7 bits),
// byte 3: bit 0 keeps skipped bytes in the buffer (the framer must answer the same), bits 1-3 pick
// the handler's status.
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "protocol/http.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

namespace http = greenline::protocol;
using greenline::protocol::fuzz::Check;
using greenline::protocol::fuzz::FuzzInput;
using Status = http::HttpHeadFramer::Status;

bool IsTcharRef(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c != '\0' && std::strchr("!#$%&'*+-.^_`|~", c) != nullptr);
}

bool IsTokenRef(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!IsTcharRef(c)) return false;
  }
  return true;
}

std::string LowerRef(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + ('a' - 'A'));
  }
  return out;
}

// The framer's rules written line by line, over the whole buffer at once.
http::HttpHeadFramer::Frame ReferenceFrame(std::string_view in, std::size_t max) {
  http::HttpHeadFramer::Frame f;
  for (;;) {
    if (in.substr(f.skip).starts_with('\n')) {
      f.skip += 1;
    } else if (in.substr(f.skip).starts_with("\r\n")) {
      f.skip += 2;
    } else {
      break;
    }
  }
  const std::string_view rest = in.substr(f.skip);
  // The head ends with the first empty line ("" or "\r" before its LF) after the request line.
  std::size_t line_end = rest.find('\n');
  while (line_end != std::string_view::npos) {
    const std::size_t next = rest.find('\n', line_end + 1);
    if (next == std::string_view::npos) break;
    const std::string_view line = rest.substr(line_end + 1, next - line_end - 1);
    if (line.empty() || line == "\r") {
      if (next + 1 > max) {
        f.status = Status::kTooLarge;
      } else {
        f.status = Status::kComplete;
        f.length = next + 1;
      }
      return f;
    }
    line_end = next;
  }
  f.status = rest.size() >= max ? Status::kTooLarge : Status::kNeedMore;
  return f;
}

// The head's lines without their LF, for a response built from them.
std::vector<std::string_view> RawLines(std::string_view head) {
  std::vector<std::string_view> lines;
  while (!head.empty()) {
    const std::size_t nl = head.find('\n');
    lines.push_back(head.substr(0, nl));
    if (nl == std::string_view::npos) break;
    head.remove_prefix(nl + 1);
  }
  return lines;
}

void CheckRequest(std::string_view head, const http::HttpRequest& req) {
  Check(IsTokenRef(req.method), "the method is not a token");
  Check(req.version == "HTTP/1.0" || req.version == "HTTP/1.1", "a version other than 1.0/1.1");
  Check(!req.target.empty(), "empty target");
  for (const char c : req.target) {
    const auto u = static_cast<unsigned char>(c);
    Check(u > 0x20 && u < 0x7f, "a space, control or non-ASCII byte in the target");
  }
  const std::string_view line = head.substr(0, head.find('\n'));
  Check(line.starts_with(req.method + " " + req.target + " HTTP/1."),
        "the request line is not method SP target SP version");
  Check(!req.path.empty(), "empty path");
  if (req.path == "*") {
    Check(req.target == "*" && req.query.empty(), "a '*' path from another target");
  } else {
    Check(req.path[0] == '/', "a path not starting with '/'");
    Check(req.path == "/" || req.target.find(req.path) != std::string::npos,
          "a path that is not in the target");
  }
  Check(req.path.find_first_of("?#") == std::string::npos, "'?' or '#' in the path");
  Check(req.query.find('#') == std::string::npos, "'#' in the query");
  Check(req.headers.size() < RawLines(head).size(), "more headers than lines");
  int hosts = 0;
  const std::string* length = nullptr;
  for (const auto& [name, value] : req.headers) {
    Check(IsTokenRef(name), "a header name that is not a token");
    for (const char c : value) {
      const auto u = static_cast<unsigned char>(c);
      Check((u >= 0x20 || u == '\t') && u != 0x7f, "a control byte in a header value");
    }
    Check(value.empty() || (value.front() != ' ' && value.front() != '\t' && value.back() != ' ' &&
                            value.back() != '\t'),
          "an untrimmed header value");
    const std::string lower = LowerRef(name);
    const std::string* first = nullptr;
    for (const auto& [n, v] : req.headers) {
      if (LowerRef(n) == lower) {
        first = &v;
        break;
      }
    }
    Check(req.FindHeader(name) == first, "FindHeader does not find the first of its name");
    if (lower == "host") ++hosts;
    if (lower == "content-length") {
      Check(!value.empty() && value.size() <= 18 &&
                value.find_first_not_of("0123456789") == std::string::npos,
            "a Content-Length that is not 1 to 18 digits");
      Check(length == nullptr || *length == value, "conflicting Content-Lengths");
      length = &value;
    }
  }
  Check(hosts <= 1, "more than one Host");
  Check(req.version == "HTTP/1.0" || hosts == 1, "HTTP/1.1 without a Host");
}

// Checks the head AppendResponseHead wrote for `resp`.
void CheckResponseHead(std::string_view out, const http::HttpResponse& resp,
                       const http::ResponseHeadParams& params) {
  Check(out.ends_with("\r\n\r\n") && out.find("\r\n\r\n") == out.size() - 4,
        "the response head does not end at its first empty line");
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (out[i] == '\n') Check(i > 0 && out[i - 1] == '\r', "a bare LF in the response head");
    if (out[i] == '\r') Check(i + 1 < out.size() && out[i + 1] == '\n', "a bare CR");
  }
  const std::string status_line = "HTTP/1.1 " + std::to_string(resp.status) + " " +
                                  std::string(http::StatusText(resp.status)) + "\r\n";
  Check(out.starts_with(status_line), "a wrong status line");
  int lengths = 0, connections = 0;
  std::string_view rest = out.substr(status_line.size(), out.size() - status_line.size() - 2);
  while (!rest.empty()) {
    const std::size_t crlf = rest.find("\r\n");
    const std::string_view line = rest.substr(0, crlf);
    rest.remove_prefix(crlf + 2);
    const std::size_t colon = line.find(": ");
    Check(colon != std::string_view::npos, "a header line without \": \"");
    const std::string name = LowerRef(line.substr(0, colon));
    const std::string_view value = line.substr(colon + 2);
    Check(IsTokenRef(name), "a header name that is not a token");
    Check(name != "transfer-encoding", "Transfer-Encoding in a response");
    if (name == "content-length") {
      ++lengths;
      Check(value == std::to_string(resp.body.size()), "a Content-Length that is not the body's");
    }
    if (name == "connection") {
      ++connections;
      Check(params.keep_alive ? value == "keep-alive" : value == "close", "a wrong Connection");
    }
  }
  const bool bodiless = resp.status == 204 || resp.status == 304;
  Check(lengths == (bodiless ? 0 : 1), "not one Content-Length (none for 204 and 304)");
  Check(connections == (!params.keep_alive || params.request_version == "HTTP/1.0" ? 1 : 0),
        "Connection missing or needless");
  const std::string_view body = http::ResponseBody(resp, false);
  Check(bodiless ? body.empty() : body == resp.body, "ResponseBody is not the body");
  Check(http::ResponseBody(resp, true).empty(), "a body for HEAD");
}

// Parses `head` from a buffer of exactly its size, checks the result, and formats an answer.
void ParseAndAnswer(std::string_view head, int handler_status, std::string_view date) {
  // Not a view into the fuzzer's buffer, which goes on past the head: any read beyond it must land
  // outside the allocation for ASan to see it.
  const std::unique_ptr<char[]> exact(new char[head.size() == 0 ? 1 : head.size()]);
  std::memcpy(exact.get(), head.data(), head.size());
  const std::string_view copy(exact.get(), head.size());
  http::HttpRequest req;
  std::string error;
  const int status = http::ParseRequestHead(copy, req, &error);
  http::HttpRequest again;
  Check(http::ParseRequestHead(copy, again, nullptr) == status, "the error pointer changes things");
  http::HttpResponse resp;
  bool keep_alive = false;
  if (status != 0) {
    Check(status == 400 || status == 505, "a failed parse that is not 400 or 505");
    Check(!error.empty(), "a failed parse without a reason");
    resp = http::ErrorResponse(status, error);
  } else {
    CheckRequest(head, req);
    const http::RequestPlan plan = http::PlanRequest(req);
    Check(plan.head_only == (req.method == "HEAD"), "head_only is not HEAD");
    keep_alive = plan.keep_alive;
    if (plan.answer) {
      Check(plan.answer->status == 405 || plan.answer->status == 413, "a plan other than 405/413");
      Check(plan.answer->status != 413 || !plan.keep_alive, "keep-alive after a 413");
      Check(plan.answer->status != 405 || (req.method != "GET" && req.method != "HEAD"),
            "405 for GET or HEAD");
      resp = *plan.answer;
    } else {
      Check(req.method == "GET" || req.method == "HEAD", "a handler for another method");
      // A handler that echoes what it was sent, raw lines and all: the filter's work.
      resp.status = handler_status;
      resp.body = req.target;
      const std::vector<std::string_view> lines = RawLines(head);
      resp.content_type = std::string(lines.front());
      resp.headers = req.headers;
      for (const std::string_view line : lines) {
        const std::size_t colon = line.find(':');
        resp.headers.emplace_back(
            std::string(line.substr(0, colon)),
            colon == std::string_view::npos ? std::string() : std::string(line.substr(colon + 1)));
      }
    }
  }
  const http::ResponseHeadParams params{req.version, keep_alive, "greenline/0.0.0-fuzz", date};
  std::string out = "kept";
  http::AppendResponseHead(resp, params, &out);
  Check(out.starts_with("kept"), "AppendResponseHead replaced what was there");
  CheckResponseHead(std::string_view(out).substr(4), resp, params);
}

// HttpDate against gmtime_r, for a time within system_clock's range (about +-292 years).
std::string CheckedDate(std::string_view payload) {
  int64_t raw = 0;
  std::memcpy(&raw, payload.data(), std::min(payload.size(), sizeof raw));
  const int64_t seconds = raw % (int64_t{1} << 33);  // within +-272 years of 1970
  const std::chrono::system_clock::time_point t{std::chrono::seconds(seconds)};
  const std::string date = http::HttpDate(t);
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const time_t tt = static_cast<time_t>(seconds);
  struct tm tm {};
  gmtime_r(&tt, &tm);
  char want[64];
  std::snprintf(want, sizeof want, "%s, %02d %s %04d %02d:%02d:%02d GMT", kDays[tm.tm_wday],
                tm.tm_mday, kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                tm.tm_sec);
  Check(date == want, "HttpDate disagrees with gmtime_r");
  return date;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzInput input(data, size, 4);
  const std::size_t max = input.header(2) & 0x80 ? 8192 : 4 * std::size_t{input.header(2) & 0x7Fu};
  const bool keep_skipped = input.header(3) & 1;
  static constexpr int kStatuses[] = {200, 204, 304, 404, 500, 299, 503, 301};
  const int handler_status = kStatuses[(input.header(3) >> 1) & 7];
  const std::string date = CheckedDate(input.payload());

  // The server's loop: frame, parse what is whole, frame the rest before reading more.
  http::HttpHeadFramer framer(max);
  std::string buf;
  bool too_large = false;
  for (std::string_view chunk = input.NextChunk(); !chunk.empty() && !too_large;
       chunk = input.NextChunk()) {
    buf.append(chunk);
    for (;;) {
      const http::HttpHeadFramer::Frame f = framer.Next(buf);
      Check(f.skip + f.length <= buf.size(), "a frame beyond the buffer");
      const http::HttpHeadFramer::Frame want = ReferenceFrame(buf, max);
      Check(f.status == want.status, "a status other than the reference's");
      Check(f.skip == want.skip, "a skip other than the reference's");
      Check(f.length == want.length, "a length other than the reference's");
      if (f.status == Status::kNeedMore) {
        if (!keep_skipped) buf.erase(0, f.skip);
        break;
      }
      if (f.status == Status::kTooLarge) {
        too_large = true;
        break;
      }
      Check(f.length > 0 && f.length <= max, "a whole head of no bytes or over the limit");
      ParseAndAnswer(std::string_view(buf).substr(f.skip, f.length), handler_status, date);
      buf.erase(0, f.skip + f.length);
    }
  }
  // Unframed, as any caller of the parser may pass it.
  ParseAndAnswer(input.payload(), handler_status, date);
  return 0;
}
