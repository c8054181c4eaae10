#include "protocol/http.h"

#include <algorithm>
#include <cstdio>
#include <string>

namespace greenline::protocol {
namespace {

bool IsTchar(unsigned char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

bool IsToken(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return IsTchar(c); });
}

char Lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

bool StartsWithIgnoreCase(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && EqualsIgnoreCase(s.substr(0, prefix.size()), prefix);
}

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// True if the comma-separated list `value` ("keep-alive, Upgrade") holds `token`, ignoring case.
bool HasToken(std::string_view value, std::string_view token) {
  while (!value.empty()) {
    std::size_t comma = value.find(',');
    if (EqualsIgnoreCase(TrimOws(value.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

int Fail(std::string* error, int status, std::string_view why) {
  if (error != nullptr) *error = why;
  return status;
}

// Splits the request target into path and query (RFC 9112 3.2: origin-form "/p?q", absolute-form
// "http://host/p?q", which a server must accept, and asterisk-form "*"). False if it is none.
bool SplitTarget(std::string_view target, HttpRequest& req) {
  std::string_view rest;
  if (target.front() == '/') {
    rest = target;
  } else if (target == "*") {
    req.path = "*";
    return true;
  } else if (StartsWithIgnoreCase(target, "http://") || StartsWithIgnoreCase(target, "https://")) {
    std::string_view after = target.substr(target.find("//") + 2);
    std::size_t end = after.find_first_of("/?#");
    if (end == 0 || after.empty()) return false;  // no authority
    rest = end == std::string_view::npos ? std::string_view() : after.substr(end);
  } else {
    return false;
  }
  rest = rest.substr(0, rest.find('#'));  // a fragment is never sent; drop one if it is
  std::size_t q = rest.find('?');
  req.path = std::string(rest.substr(0, q));
  if (q != std::string_view::npos) req.query = std::string(rest.substr(q + 1));
  if (req.path.empty()) req.path = "/";  // "http://host" and "http://host?x" mean "/"
  return true;
}

// The length of the head at the start of `buf` (up to and including the empty line that ends it),
// or npos; lines before `from` have been searched already.
std::size_t FindHeadEnd(std::string_view buf, std::size_t from) {
  for (std::size_t i = buf.find('\n', from); i != std::string_view::npos;
       i = buf.find('\n', i + 1)) {
    if (i + 1 < buf.size() && buf[i + 1] == '\n') return i + 2;
    if (i + 2 < buf.size() && buf[i + 1] == '\r' && buf[i + 2] == '\n') return i + 3;
  }
  return std::string_view::npos;
}

// Headers that frame the response: the server's alone to set (a handler's would desynchronise the
// client).
bool IsFramingHeader(std::string_view name) {
  return EqualsIgnoreCase(name, "Content-Length") || EqualsIgnoreCase(name, "Transfer-Encoding") ||
         EqualsIgnoreCase(name, "Connection");
}

bool HasLineBreak(std::string_view s) { return s.find_first_of("\r\n") != std::string_view::npos; }

// 204 and 304 never carry a body, nor (204) a Content-Length (RFC 9110 8.6).
bool IsBodiless(int status) { return status == 204 || status == 304; }

}  // namespace

const std::string* HttpRequest::FindHeader(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (EqualsIgnoreCase(n, name)) return &v;
  }
  return nullptr;
}

HttpHeadFramer::Frame HttpHeadFramer::Next(std::string_view input) {
  Frame f;
  for (;;) {  // empty lines before a request line are ignored (RFC 9112 2.2)
    if (input.substr(f.skip, 2) == "\r\n") {
      f.skip += 2;
    } else if (f.skip < input.size() && input[f.skip] == '\n') {
      f.skip += 1;
    } else {
      break;
    }
  }
  // searched_ counts from the end of the empty lines. A caller that drops them sees new ones only
  // while nothing else has arrived (all it held was empty lines, or a lone CR): nothing searched
  // is lost by starting over. One that does not drop them gets a correct, slower search.
  if (f.skip > 0) searched_ = 0;
  const std::string_view rest = input.substr(f.skip);
  const std::size_t end = FindHeadEnd(rest, std::min(searched_, rest.size()));
  if (end != std::string_view::npos) {
    searched_ = 0;  // the next call frames the next request
    if (end > max_) {
      f.status = Status::kTooLarge;
    } else {
      f.status = Status::kComplete;
      f.length = end;
    }
    return f;
  }
  if (rest.size() >= max_) {  // a head would have to be longer
    searched_ = 0;
    f.status = Status::kTooLarge;
    return f;
  }
  searched_ = rest.size() >= 2 ? rest.size() - 2 : 0;  // a terminator may straddle the next read
  f.status = Status::kNeedMore;
  return f;
}

int ParseRequestHead(std::string_view head, HttpRequest& req, std::string* error) {
  req.method.clear();
  req.target.clear();
  req.path.clear();
  req.query.clear();
  req.version.clear();
  req.headers.clear();
  std::size_t pos = 0;
  // The next line without its terminator (LF, or CRLF); false at the end of `head`.
  auto next_line = [&](std::string_view* line) {
    std::size_t nl = head.find('\n', pos);
    if (nl == std::string_view::npos) return false;
    *line = head.substr(pos, nl - pos);
    if (!line->empty() && line->back() == '\r') line->remove_suffix(1);
    pos = nl + 1;
    return true;
  };

  // request-line = method SP request-target SP HTTP-version
  std::string_view line;
  if (!next_line(&line) || line.empty()) return Fail(error, 400, "no request line");
  for (unsigned char c : line) {
    if (c < 0x20 || c == 0x7f) return Fail(error, 400, "control character in the request line");
  }
  std::size_t sp1 = line.find(' ');
  std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    return Fail(error, 400, "the request line is not: method target version");
  }
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (!IsToken(method)) return Fail(error, 400, "bad method");
  if (target.empty()) return Fail(error, 400, "empty request target");
  for (unsigned char c : target) {
    if (c > 0x7e) return Fail(error, 400, "non-ASCII byte in the request target");
  }
  bool digits = version.size() == 8 && version[5] >= '0' && version[5] <= '9' &&
                version[6] == '.' && version[7] >= '0' && version[7] <= '9';
  if (!digits || version.substr(0, 5) != "HTTP/") return Fail(error, 400, "bad HTTP version");
  if (version[5] != '1') return Fail(error, 505, "only HTTP/1.x is served");
  req.method = std::string(method);
  req.target = std::string(target);
  // A later 1.x minor version is answered as 1.1, the highest we speak (RFC 9110 2.5).
  req.version = version[7] == '0' ? "HTTP/1.0" : "HTTP/1.1";
  if (!SplitTarget(target, req)) return Fail(error, 400, "bad request target");

  // field-line = field-name ":" OWS field-value OWS
  bool ended = false;
  while (next_line(&line)) {
    if (line.empty()) {
      ended = true;
      break;
    }
    if (line.front() == ' ' || line.front() == '\t') {
      return Fail(error, 400, "obsolete header line folding");
    }
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) return Fail(error, 400, "header line without a colon");
    std::string_view name = line.substr(0, colon);
    // No whitespace before the colon either (RFC 9112 5.1: a smuggling vector).
    if (!IsToken(name)) return Fail(error, 400, "bad header name");
    std::string_view value = TrimOws(line.substr(colon + 1));
    for (unsigned char c : value) {
      if ((c < 0x20 && c != '\t') || c == 0x7f) {
        return Fail(error, 400, "control character in a header value");
      }
    }
    req.headers.emplace_back(std::string(name), std::string(value));
  }
  if (!ended) return Fail(error, 400, "unterminated request head");

  int hosts = 0;
  const std::string* length = nullptr;
  for (const auto& [name, value] : req.headers) {
    if (EqualsIgnoreCase(name, "Host")) ++hosts;
    if (EqualsIgnoreCase(name, "Content-Length")) {
      bool number = !value.empty() && value.size() <= 18 &&
                    value.find_first_not_of("0123456789") == std::string::npos;
      if (!number) return Fail(error, 400, "bad Content-Length");
      if (length != nullptr && *length != value) return Fail(error, 400, "conflicting lengths");
      length = &value;
    }
  }
  if (hosts > 1) return Fail(error, 400, "more than one Host header");
  if (hosts == 0 && req.version == "HTTP/1.1") return Fail(error, 400, "HTTP/1.1 needs a Host");
  return 0;
}

RequestPlan PlanRequest(const HttpRequest& req) {
  RequestPlan plan;
  plan.head_only = req.method == "HEAD";
  const std::string* connection = req.FindHeader("Connection");
  plan.keep_alive = req.version == "HTTP/1.0"
                        ? connection != nullptr && HasToken(*connection, "keep-alive")
                        : connection == nullptr || !HasToken(*connection, "close");
  const std::string* length = req.FindHeader("Content-Length");
  if (req.FindHeader("Transfer-Encoding") != nullptr ||
      (length != nullptr && length->find_first_not_of('0') != std::string::npos)) {
    // The body is unread: it would be parsed as the next request.
    plan.answer = ErrorResponse(413, "this server accepts no request body");
    plan.keep_alive = false;
  } else if (req.method != "GET" && !plan.head_only) {
    plan.answer = ErrorResponse(405, "");
    plan.answer->headers.emplace_back("Allow", "GET, HEAD");
  }
  return plan;
}

std::string_view StatusText(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 204:
      return "No Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Content Too Large";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

bool IsFinalStatus(int status) { return status >= 200 && status <= 599; }

HttpResponse ErrorResponse(int status, std::string_view detail) {
  HttpResponse r;
  r.status = status;
  r.body = std::to_string(status) + " " + std::string(StatusText(status));
  if (!detail.empty()) r.body += ": " + std::string(detail);
  r.body += "\n";
  return r;
}

std::string HttpDate(std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  // The calendar of <chrono> rather than gmtime_r: the standard library alone, and no time_t
  // range to worry about.
  const sys_seconds s = floor<seconds>(t);
  const sys_days day = floor<days>(s);
  const year_month_day ymd(day);
  const hh_mm_ss<seconds> hms(s - day);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s, %02u %s %04d %02d:%02d:%02d GMT",
                kDays[weekday(day).c_encoding()], static_cast<unsigned>(ymd.day()),
                kMonths[static_cast<unsigned>(ymd.month()) - 1], static_cast<int>(ymd.year()),
                static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                static_cast<int>(hms.seconds().count()));
  return buf;
}

void AppendResponseHead(const HttpResponse& resp, const ResponseHeadParams& params,
                        std::string* out) {
  const bool bodiless = IsBodiless(resp.status);
  out->append("HTTP/1.1 ").append(std::to_string(resp.status)).append(" ");
  out->append(StatusText(resp.status)).append("\r\n");
  out->append("Server: ").append(params.server).append("\r\n");
  out->append("Date: ").append(params.date).append("\r\n");
  if (!bodiless) {
    if (!resp.content_type.empty() && !HasLineBreak(resp.content_type)) {
      out->append("Content-Type: ").append(resp.content_type).append("\r\n");
    }
    out->append("Content-Length: ").append(std::to_string(resp.body.size())).append("\r\n");
  }
  if (!params.keep_alive) {
    out->append("Connection: close\r\n");
  } else if (params.request_version == "HTTP/1.0") {
    out->append("Connection: keep-alive\r\n");  // 1.0 closes unless told otherwise
  }
  for (const auto& [name, value] : resp.headers) {
    if (!IsToken(name) || IsFramingHeader(name) || HasLineBreak(value)) continue;
    out->append(name).append(": ").append(value).append("\r\n");
  }
  out->append("\r\n");
}

std::string_view ResponseBody(const HttpResponse& resp, bool head_only) {
  if (head_only || IsBodiless(resp.status)) return {};
  return resp.body;
}

}  // namespace greenline::protocol
