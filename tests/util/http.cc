#include "tests/util/http.h"

#include <strings.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <limits>
#include <sstream>

#include "greenline/goroutine.h"
#include "tests/util/net.h"

namespace greenline::testing {

namespace {

using std::chrono::steady_clock;

bool SameName(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

std::string HttpReply::Header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (SameName(n, name)) return v;
  }
  return "";
}

bool HttpReply::HasHeader(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (SameName(n, name)) return true;
  }
  return false;
}

std::string GetRequest(std::string_view path, std::string_view extra, std::string_view method) {
  return std::string(method) + " " + std::string(path) + " HTTP/1.1\r\nHost: localhost\r\n" +
         std::string(extra) + "\r\n";
}

HttpClient::HttpClient(const std::string& address) {
  std::pair<net::Conn, net::Error> r = net::Dial("tcp", address);
  EXPECT_FALSE(r.second) << "dial " << address << ": " << r.second.String();
  if (!r.second) conn_ = r.first;
}

bool HttpClient::Send(std::string_view raw) {
  if (!conn_.valid()) return false;
  net::IoResult w = conn_.Write(raw);
  return !w.err;
}

HttpReply HttpClient::Receive(bool head, std::chrono::milliseconds limit) {
  HttpReply reply;
  if (!conn_.valid()) {
    reply.error = "not connected";
    return reply;
  }
  conn_.SetReadDeadline(steady_clock::now() + limit);
  // Reads more into buf_; false (with reply.error) if the stream ended first.
  auto fill = [&] {
    char chunk[4096];
    net::IoResult r = conn_.Read(chunk, sizeof chunk);
    buf_.append(chunk, r.n);
    if (r.n == 0 && r.err) {
      reply.error = "read: " + r.err.String() + " (had " + std::to_string(buf_.size()) + " bytes)";
      return false;
    }
    return true;
  };
  size_t end;
  while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
    if (!fill()) return reply;
  }
  std::string head_text = buf_.substr(0, end + 2);
  buf_.erase(0, end + 4);
  size_t eol = head_text.find("\r\n");
  std::string status_line = head_text.substr(0, eol);
  // "HTTP/1.1 200 OK"
  size_t sp = status_line.find(' ');
  if (sp == std::string::npos) {
    reply.error = "bad status line: " + status_line;
    return reply;
  }
  reply.version = status_line.substr(0, sp);
  reply.status = std::atoi(status_line.c_str() + sp + 1);
  for (size_t at = eol + 2; at < head_text.size();) {
    size_t next = head_text.find("\r\n", at);
    std::string line = head_text.substr(at, next - at);
    at = next + 2;
    size_t colon = line.find(':');
    if (colon == std::string::npos) {
      reply.error = "bad header line: " + line;
      return reply;
    }
    size_t v = line.find_first_not_of(' ', colon + 1);
    reply.headers.emplace_back(line.substr(0, colon), v == std::string::npos ? "" : line.substr(v));
  }
  size_t length = head || !reply.HasHeader("Content-Length")
                      ? 0
                      : std::strtoull(reply.Header("Content-Length").c_str(), nullptr, 10);
  while (buf_.size() < length) {
    if (!fill()) return reply;
  }
  reply.body = buf_.substr(0, length);
  buf_.erase(0, length);
  reply.ok = true;
  conn_.SetReadDeadline({});
  return reply;
}

bool HttpClient::AwaitClose(std::chrono::milliseconds limit, steady_clock::duration* waited) {
  steady_clock::time_point start = steady_clock::now();
  conn_.SetReadDeadline(start + limit);
  char chunk[4096];
  for (;;) {
    net::IoResult r = conn_.Read(chunk, sizeof chunk);
    if (r.err) {
      if (waited != nullptr) *waited = steady_clock::now() - start;
      return !r.err.timeout();
    }
  }
}

namespace {

// Hand-written, not std::regex: libstdc++'s regex matcher recurses per character and overflows a
// goroutine's stack (64 KiB) on a long line in the ASan build.
bool IsNameStart(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':';
}
bool IsNameChar(char c) { return IsNameStart(c) || std::isdigit(static_cast<unsigned char>(c)); }

// Consumes a metric (or, without colons, label) name at the front of `s`; "" if there is none.
std::string_view TakeName(std::string_view& s, bool colons) {
  size_t n = 0;
  while (n < s.size() && (n == 0 ? IsNameStart(s[n]) : IsNameChar(s[n])) &&
         (colons || s[n] != ':')) {
    ++n;
  }
  std::string_view name = s.substr(0, n);
  s.remove_prefix(n);
  return name;
}

// Consumes `{label="value",...}`; false if malformed.
bool TakeLabels(std::string_view& s) {
  s.remove_prefix(1);  // '{'
  for (;;) {
    if (TakeName(s, false).empty() || s.substr(0, 2) != "=\"") return false;
    s.remove_prefix(2);
    for (;;) {
      if (s.empty()) return false;
      if (s[0] == '\\') {
        if (s.size() < 2) return false;
        s.remove_prefix(2);
      } else if (s[0] == '"') {
        s.remove_prefix(1);
        break;
      } else {
        s.remove_prefix(1);
      }
    }
    if (!s.empty() && s[0] == ',') {
      s.remove_prefix(1);
      continue;
    }
    if (s.empty() || s[0] != '}') return false;
    s.remove_prefix(1);
    return true;
  }
}

bool ParseValue(std::string_view s, double* value) {
  std::string text(s);
  if (text == "NaN" || text == "+Inf" || text == "-Inf") {
    *value = std::strtod(text.c_str(), nullptr);
    return true;
  }
  char* end = nullptr;
  *value = std::strtod(text.c_str(), &end);
  return !text.empty() && end == text.c_str() + text.size();
}

}  // namespace

PrometheusText ParsePrometheusText(const std::string& text) {
  PrometheusText out;
  if (text.empty() || text.back() != '\n') out.problems.push_back("does not end with a newline");
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::string_view rest = line;
    if (rest.substr(0, 2) == "# ") {
      rest.remove_prefix(2);
      bool help = rest.substr(0, 5) == "HELP ";
      bool type = rest.substr(0, 5) == "TYPE ";
      rest.remove_prefix(std::min<size_t>(5, rest.size()));
      std::string name(TakeName(rest, true));
      if ((!help && !type) || name.empty() || rest.size() < 2 || rest[0] != ' ') {
        out.problems.push_back("a comment neither HELP nor TYPE: " + line);
      } else if (help) {
        if (!out.helps_.insert(name).second) out.problems.push_back("second HELP: " + line);
      } else {
        std::string kind(rest.substr(1));
        if (kind != "counter" && kind != "gauge" && kind != "untyped") {
          out.problems.push_back("unknown type: " + line);
        }
        if (!out.helps_.count(name)) out.problems.push_back("TYPE before HELP: " + line);
        if (!out.types_.emplace(name, kind).second) out.problems.push_back("second TYPE: " + line);
        if (kind == "counter" && (name.size() < 6 || name.substr(name.size() - 6) != "_total")) {
          out.problems.push_back("a counter not named *_total: " + line);
        }
      }
      continue;
    }
    std::string name(TakeName(rest, true));
    std::string_view labels_start = rest;
    bool ok = !name.empty() && (rest.empty() || rest[0] != '{' || TakeLabels(rest));
    std::string key = name + std::string(labels_start.substr(0, labels_start.size() - rest.size()));
    double value = 0;
    ok = ok && !rest.empty() && rest[0] == ' ' && ParseValue(rest.substr(1), &value);
    if (!ok) {
      out.problems.push_back("not HELP, TYPE or a sample: " + line);
      continue;
    }
    if (!out.types_.count(name)) out.problems.push_back("sample before its TYPE: " + line);
    if (!out.samples_.emplace(key, value).second) out.problems.push_back("second sample: " + line);
  }
  return out;
}

double PrometheusText::Value(const std::string& key, const char* file, int line) const {
  auto it = samples_.find(key);
  if (it == samples_.end()) {
    ADD_FAILURE_AT(file, line) << "no sample " << key;
    return std::numeric_limits<double>::quiet_NaN();
  }
  return it->second;
}

std::string PrometheusText::Type(const std::string& family, const char* file, int line) const {
  auto it = types_.find(family);
  if (it == types_.end()) {
    ADD_FAILURE_AT(file, line) << "no TYPE line for " << family;
    return "";
  }
  return it->second;
}

TestHttpServer::TestHttpServer(server::HttpHandler handler, const server::HttpOptions& options) {
  std::pair<net::Listener, net::Error> r = net::Listen("tcp", "127.0.0.1:0");
  EXPECT_FALSE(r.second) << "listen: " << r.second.String();
  if (r.second) {
    stopped_ = true;
    return;
  }
  listener_ = r.first;
  address_ = listener_.LocalAddr().String();
  returned_.Add(1);
  Go([this, handler = std::move(handler), options] {
    server::ServeHttp(listener_, handler, options);
    returned_.Done();
  });
}

void TestHttpServer::Stop() {
  if (stopped_) return;
  stopped_ = true;
  listener_.Close();
  returned_.Wait();
}

void PollerTest::SetUpTestSuite() {
  // The runtime keeps a spare descriptor for EMFILE for the life of the process: let it open now,
  // before a test counts descriptors.
  Options o;
  o.max_procs = 1;
  o.poller = PollerKind::kEpoll;
  greenline::Run([] { net::Listen("tcp", "127.0.0.1:0").first.Close(); }, o);
}

void PollerTest::SetUp() {
  if (GetParam() == PollerKind::kIoUring) {
    std::string why = UringUnavailableReason();
    if (!why.empty()) GTEST_SKIP() << "no io_uring poller here: " << why;
  }
  fds_before_ = CountOpenFds();
  fd_list_before_ = DescribeOpenFds();
}

void PollerTest::TearDown() {
  if (fds_before_ < 0) return;
  EXPECT_EQ(CountOpenFds(), fds_before_) << "descriptors left open after the runtime stopped.\n"
                                         << "before:\n"
                                         << fd_list_before_ << "after:\n"
                                         << DescribeOpenFds();
}

void PollerTest::RunNet(int procs, const std::function<void()>& body) {
  Options o;
  o.max_procs = procs;
  o.poller = GetParam();
  std::string poller;
  greenline::Run(
      [&] {
        poller = net::PollerName();
        body();
      },
      o);
  EXPECT_EQ(poller, PollerNameOf(GetParam()));
}

}  // namespace greenline::testing
