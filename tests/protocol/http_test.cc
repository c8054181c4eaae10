// Tests for protocol/http.h: the head framer finds the same head however the bytes arrive (split
// terminators, bare LFs, leading empty lines, pipelined requests behind it) and holds the size cap
// exactly at its edge; the parser takes the request line, the target forms, header syntax, the
// Host and Content-Length rules and the versions; PlanRequest decides keep-alive, HEAD, 405 and
// 413; and the response head comes out byte for byte, with the framing headers the server's alone,
// CR/LF-carrying headers dropped, 204 and 304 bodiless, and the Date in IMF-fixdate.
#include "protocol/http.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

namespace greenline::protocol {
namespace {

using namespace std::chrono_literals;
using Status = HttpHeadFramer::Status;

// ---- HttpHeadFramer ---------------------------------------------------------------------------

// Feeds `input` to a fresh framer `chunk` bytes at a time, dropping the bytes it says to skip, as
// the server does; returns the first answer that is not kNeedMore (or the last kNeedMore), with
// *consumed set to the bytes dropped before it.
HttpHeadFramer::Frame FrameInChunks(std::string_view input, std::size_t max, std::size_t chunk,
                                    std::size_t* consumed) {
  HttpHeadFramer framer(max);
  std::string buf;
  *consumed = 0;
  std::size_t fed = 0;
  for (;;) {
    HttpHeadFramer::Frame f = framer.Next(buf);
    if (f.status != Status::kNeedMore) return f;
    buf.erase(0, f.skip);
    *consumed += f.skip;
    if (fed == input.size()) return f;
    const std::string_view more = input.substr(fed, chunk);
    buf.append(more);
    fed += more.size();
  }
}

TEST(HttpHeadFramerTest, FramesOneHeadAndLeavesThePipelinedRequestBehindIt) {
  const std::string first = "GET /a HTTP/1.1\r\nHost: e\r\n\r\n";
  const std::string second = "GET /b HTTP/1.1\r\nHost: e\r\n\r\n";
  const std::string input = first + second;
  HttpHeadFramer framer(8192);
  HttpHeadFramer::Frame f = framer.Next(input);
  EXPECT_EQ(f.status, Status::kComplete);
  EXPECT_EQ(f.skip, 0u);
  EXPECT_EQ(f.length, first.size());
  f = framer.Next(std::string_view(input).substr(first.size()));
  EXPECT_EQ(f.status, Status::kComplete) << "the framer frames the next request at once";
  EXPECT_EQ(f.length, second.size());
}

TEST(HttpHeadFramerTest, AHeadEndsWithAnEmptyLineInAnyMixOfLfAndCrlf) {
  HttpHeadFramer framer(8192);
  for (const std::string head : {"GET / HTTP/1.0\n\n", "GET / HTTP/1.0\r\n\n",
                                 "GET / HTTP/1.0\n\r\n", "GET / HTTP/1.1\r\nHost: e\n\r\n"}) {
    HttpHeadFramer::Frame f = framer.Next(head + "rest");
    EXPECT_EQ(f.status, Status::kComplete) << head;
    EXPECT_EQ(f.length, head.size()) << head;
  }
  // A CR alone is no line end, and CR CR LF is not an empty line.
  EXPECT_EQ(framer.Next("GET / HTTP/1.0\r\r").status, Status::kNeedMore);
  EXPECT_EQ(framer.Next("GET / HTTP/1.0\n\r\r\n").status, Status::kNeedMore);
}

TEST(HttpHeadFramerTest, EmptyLinesBeforeTheRequestLineAreSkipped) {
  HttpHeadFramer framer(8192);
  HttpHeadFramer::Frame f = framer.Next("\r\n\n\r\nGET / HTTP/1.0\r\n\r\n");
  EXPECT_EQ(f.status, Status::kComplete);
  EXPECT_EQ(f.skip, 5u);
  EXPECT_EQ(f.length, 18u);
  // Empty lines alone: skipped, and more is needed. A lone CR may be the start of one: kept.
  f = framer.Next("\r\n\r\n\r");
  EXPECT_EQ(f.status, Status::kNeedMore);
  EXPECT_EQ(f.skip, 4u);
  // A CR that starts anything else is not skipped (the parser refuses it).
  f = framer.Next("\rGET / HTTP/1.0\r\n\r\n");
  EXPECT_EQ(f.status, Status::kComplete);
  EXPECT_EQ(f.skip, 0u);
}

TEST(HttpHeadFramerTest, SkippedEmptyLinesDoNotCountAgainstTheLimit) {
  const std::string head = "GET / HTTP/1.0\r\n\r\n";
  HttpHeadFramer framer(head.size());
  HttpHeadFramer::Frame f = framer.Next(std::string(1000, '\n') + head);
  EXPECT_EQ(f.status, Status::kComplete);
  EXPECT_EQ(f.skip, 1000u);
  EXPECT_EQ(f.length, head.size());
}

TEST(HttpHeadFramerTest, TheSameHeadIsFoundWhateverTheReadBoundaries) {
  const std::string input = "\r\n\nGET /x HTTP/1.1\r\nHost: e\r\nX-A: 1\n\r\nGET /next";
  const std::size_t head = input.find("GET /next") - 3;
  for (std::size_t chunk = 1; chunk <= input.size(); ++chunk) {
    std::size_t consumed = 0;
    HttpHeadFramer::Frame f = FrameInChunks(input, 8192, chunk, &consumed);
    ASSERT_EQ(f.status, Status::kComplete) << "chunk " << chunk;
    EXPECT_EQ(consumed + f.skip, 3u) << "chunk " << chunk;
    EXPECT_EQ(f.length, head) << "chunk " << chunk;
  }
}

TEST(HttpHeadFramerTest, ACallerThatKeepsTheSkippedBytesGetsTheSameAnswer) {
  const std::string input = "\r\n\r\nGET / HTTP/1.1\r\nHost: e\r\n\r\n";
  HttpHeadFramer framer(8192);
  HttpHeadFramer::Frame f;
  for (std::size_t n = 0; n <= input.size(); ++n)
    f = framer.Next(std::string_view(input).substr(0, n));
  EXPECT_EQ(f.status, Status::kComplete);
  EXPECT_EQ(f.skip, 4u);
  EXPECT_EQ(f.length, input.size() - 4);
}

TEST(HttpHeadFramerTest, TheLimitHoldsAtItsEdge) {
  const std::string head = "GET / HTTP/1.1\r\nHost: e\r\nX-Pad: aaaa\r\n\r\n";
  std::size_t consumed = 0;
  // A head of exactly max bytes fits, also when more bytes follow it.
  EXPECT_EQ(FrameInChunks(head + "GET", head.size(), 7, &consumed).status, Status::kComplete);
  // One byte less: too large, whether the whole head is there or not.
  HttpHeadFramer framer(head.size() - 1);
  EXPECT_EQ(framer.Next(head).status, Status::kTooLarge);
  EXPECT_EQ(FrameInChunks(head, head.size() - 1, 1, &consumed).status, Status::kTooLarge);
  // No end in sight: more is needed below the limit, and at it the head could only be longer.
  HttpHeadFramer small(10);
  EXPECT_EQ(small.Next("GET / HTT").status, Status::kNeedMore);
  HttpHeadFramer::Frame f = small.Next("GET / HTTP");
  EXPECT_EQ(f.status, Status::kTooLarge);
  EXPECT_EQ(f.length, 0u);
}

// ---- ParseRequestHead -------------------------------------------------------------------------

TEST(ParseRequestHeadTest, ParsesRequestLineTargetAndHeaders) {
  HttpRequest req;
  std::string error;
  ASSERT_EQ(ParseRequestHead("GET /metrics?a=1&b=2 HTTP/1.1\r\nHost: example\r\n"
                             "X-Thing:   spaced value \t\r\nAccept: */*\r\n\r\n",
                             req, &error),
            0)
      << error;
  EXPECT_EQ(req.method, "GET");
  EXPECT_EQ(req.target, "/metrics?a=1&b=2");
  EXPECT_EQ(req.path, "/metrics");
  EXPECT_EQ(req.query, "a=1&b=2");
  EXPECT_EQ(req.version, "HTTP/1.1");
  ASSERT_EQ(req.headers.size(), 3u);
  EXPECT_EQ(req.headers[1].first, "X-Thing");
  EXPECT_EQ(req.headers[1].second, "spaced value");
  ASSERT_NE(req.FindHeader("x-thing"), nullptr) << "header names match ignoring case";
  EXPECT_EQ(*req.FindHeader("HOST"), "example");
  EXPECT_EQ(req.FindHeader("Cookie"), nullptr);
}

TEST(ParseRequestHeadTest, AcceptsBareLineFeedsAndAbsoluteFormTargets) {
  HttpRequest req;
  ASSERT_EQ(ParseRequestHead("HEAD http://example:9070/healthz?x HTTP/1.1\nHost: e\n\n", req), 0);
  EXPECT_EQ(req.method, "HEAD");
  EXPECT_EQ(req.path, "/healthz");
  EXPECT_EQ(req.query, "x");
  ASSERT_EQ(ParseRequestHead("GET http://example HTTP/1.0\r\n\r\n", req), 0);
  EXPECT_EQ(req.path, "/") << "an absolute-form target without a path means /";
  EXPECT_EQ(req.version, "HTTP/1.0") << "HTTP/1.0 needs no Host";
  ASSERT_EQ(ParseRequestHead("GET / HTTP/1.7\r\nHost: e\r\n\r\n", req), 0);
  EXPECT_EQ(req.version, "HTTP/1.1") << "a later 1.x is answered as 1.1";
  ASSERT_EQ(ParseRequestHead("OPTIONS * HTTP/1.1\r\nHost: e\r\n\r\n", req), 0);
  EXPECT_EQ(req.path, "*") << "asterisk-form";
}

TEST(ParseRequestHeadTest, RejectsMalformedHeadsWith400) {
  const char* bad[] = {
      "\r\n\r\n",                                                // no request line
      "GET /\r\nHost: e\r\n\r\n",                                // no version
      "GET  / HTTP/1.1\r\nHost: e\r\n\r\n",                      // two spaces
      "GET / HTTP/1.1 extra\r\nHost: e\r\n\r\n",                 // four parts
      "G(T / HTTP/1.1\r\nHost: e\r\n\r\n",                       // not a token
      "GET metrics HTTP/1.1\r\nHost: e\r\n\r\n",                 // not origin-form
      "GET / HTTP/1.1\r\nHost: e\r\nNo colon here\r\n\r\n",      // header without a colon
      "GET / HTTP/1.1\r\nHost: e\r\nBad Name: x\r\n\r\n",        // space in a name
      "GET / HTTP/1.1\r\nHost : e\r\n\r\n",                      // space before the colon
      "GET / HTTP/1.1\r\nHost: e\r\nX: a\r\n folded\r\n\r\n",    // obsolete folding
      "GET / HTTP/1.1\r\nHost: e\r\nX: a\x01z\r\n\r\n",          // control in a value
      "GET /\x7f HTTP/1.1\r\nHost: e\r\n\r\n",                   // control in the target
      "GET / HTTP/1.1\r\n\r\n",                                  // 1.1 without Host
      "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",            // two Hosts
      "GET / HTTP/1.1\r\nHost: e\r\nContent-Length: x\r\n\r\n",  // bad length
      "GET / HTTP/1.1\r\nHost: e\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: e\r\n",  // unterminated
      "GET / HTTX/1.1\r\nHost: e\r\n\r\n",
      "GET / HTTP/11\r\nHost: e\r\n\r\n",
      "GET http:// HTTP/1.1\r\nHost: e\r\n\r\n",          // absolute form without an authority
      "CONNECT example:443 HTTP/1.1\r\nHost: e\r\n\r\n",  // authority form
  };
  for (const char* head : bad) {
    HttpRequest req;
    std::string error;
    EXPECT_EQ(ParseRequestHead(head, req, &error), 400) << head;
    EXPECT_FALSE(error.empty()) << head;
  }
}

TEST(ParseRequestHeadTest, AnswersOtherHttpVersionsWith505) {
  HttpRequest req;
  EXPECT_EQ(ParseRequestHead("GET / HTTP/2.0\r\nHost: e\r\n\r\n", req), 505);
  EXPECT_EQ(ParseRequestHead("PRI * HTTP/2.0\r\n\r\n", req), 505);
  EXPECT_EQ(ParseRequestHead("GET / HTTP/0.9\r\n\r\n", req), 505);
}

TEST(ParseRequestHeadTest, AReusedRequestKeepsNothingOfTheLastOne) {
  HttpRequest req;
  ASSERT_EQ(ParseRequestHead("GET /a?q HTTP/1.1\r\nHost: e\r\nX: 1\r\n\r\n", req), 0);
  ASSERT_EQ(ParseRequestHead("GET /b HTTP/1.0\r\n\r\n", req), 0);
  EXPECT_EQ(req.path, "/b");
  EXPECT_EQ(req.query, "");
  EXPECT_TRUE(req.headers.empty());
}

// ---- PlanRequest ------------------------------------------------------------------------------

RequestPlan Plan(std::string_view head) {
  HttpRequest req;
  std::string error;
  EXPECT_EQ(ParseRequestHead(head, req, &error), 0) << head << ": " << error;
  return PlanRequest(req);
}

TEST(PlanRequestTest, Http11KeepsTheConnectionUnlessToldToClose) {
  EXPECT_TRUE(Plan("GET / HTTP/1.1\r\nHost: e\r\n\r\n").keep_alive);
  EXPECT_FALSE(Plan("GET / HTTP/1.1\r\nHost: e\r\nConnection: close\r\n\r\n").keep_alive);
  EXPECT_FALSE(Plan("GET / HTTP/1.1\r\nHost: e\r\nconnection: Upgrade, CLOSE\r\n\r\n").keep_alive)
      << "a token of the list, in any case";
  EXPECT_TRUE(Plan("GET / HTTP/1.1\r\nHost: e\r\nConnection: closed\r\n\r\n").keep_alive);
}

TEST(PlanRequestTest, Http10ClosesUnlessAskedToKeepAlive) {
  EXPECT_FALSE(Plan("GET / HTTP/1.0\r\n\r\n").keep_alive);
  EXPECT_TRUE(Plan("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive);
  EXPECT_FALSE(Plan("GET / HTTP/1.0\r\nConnection: close\r\n\r\n").keep_alive);
}

TEST(PlanRequestTest, GetAndHeadGoToTheHandler) {
  RequestPlan get = Plan("GET / HTTP/1.1\r\nHost: e\r\nContent-Length: 000\r\n\r\n");
  EXPECT_FALSE(get.answer) << "an empty body is no body";
  EXPECT_FALSE(get.head_only);
  RequestPlan head = Plan("HEAD / HTTP/1.1\r\nHost: e\r\n\r\n");
  EXPECT_FALSE(head.answer);
  EXPECT_TRUE(head.head_only);
}

TEST(PlanRequestTest, OtherMethodsGet405WithAllowAndKeepTheConnection) {
  for (const std::string method : {"POST", "PUT", "DELETE", "OPTIONS", "get"}) {
    RequestPlan plan = Plan(method + " / HTTP/1.1\r\nHost: e\r\n\r\n");
    ASSERT_TRUE(plan.answer) << method;
    EXPECT_EQ(plan.answer->status, 405) << method;
    EXPECT_EQ(plan.answer->body, "405 Method Not Allowed\n");
    ASSERT_EQ(plan.answer->headers.size(), 1u);
    EXPECT_EQ(plan.answer->headers[0].first, "Allow");
    EXPECT_EQ(plan.answer->headers[0].second, "GET, HEAD");
    EXPECT_TRUE(plan.keep_alive) << method;
  }
}

TEST(PlanRequestTest, ARequestAnnouncingABodyGets413AndClose) {
  for (const char* head : {
           "GET / HTTP/1.1\r\nHost: e\r\nContent-Length: 5\r\n\r\n",
           "POST / HTTP/1.1\r\nHost: e\r\nTransfer-Encoding: chunked\r\n\r\n",
           "HEAD / HTTP/1.1\r\nHost: e\r\ntransfer-encoding: identity\r\n\r\n",
       }) {
    RequestPlan plan = Plan(head);
    ASSERT_TRUE(plan.answer) << head;
    EXPECT_EQ(plan.answer->status, 413) << head;
    EXPECT_EQ(plan.answer->body, "413 Content Too Large: this server accepts no request body\n");
    EXPECT_FALSE(plan.keep_alive) << "the unread body would be read as the next request";
  }
}

// ---- Statuses, errors, dates ------------------------------------------------------------------

TEST(HttpStatusTest, StatusTextNamesTheCodesTheServerSends) {
  EXPECT_EQ(StatusText(200), "OK");
  EXPECT_EQ(StatusText(431), "Request Header Fields Too Large");
  EXPECT_EQ(StatusText(503), "Service Unavailable");
  EXPECT_EQ(StatusText(299), "Unknown");
}

TEST(HttpStatusTest, FinalStatusesAre200To599) {
  EXPECT_FALSE(IsFinalStatus(199));
  EXPECT_TRUE(IsFinalStatus(200));
  EXPECT_TRUE(IsFinalStatus(599));
  EXPECT_FALSE(IsFinalStatus(600));
  EXPECT_FALSE(IsFinalStatus(-200));
}

TEST(HttpStatusTest, ErrorResponseSaysTheStatusAndTheDetail) {
  HttpResponse r = ErrorResponse(400, "no request line");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body, "400 Bad Request: no request line\n");
  EXPECT_EQ(r.content_type, "text/plain; charset=utf-8");
  EXPECT_TRUE(r.headers.empty());
  EXPECT_EQ(ErrorResponse(404, "").body, "404 Not Found\n");
}

TEST(HttpDateTest, FormatsImfFixdateInUtcToTheSecondBelow) {
  using std::chrono::sys_days;
  using std::chrono::system_clock;
  using namespace std::chrono;
  EXPECT_EQ(HttpDate(sys_days{1994y / November / 6} + 8h + 49min + 37s + 999ms),
            "Sun, 06 Nov 1994 08:49:37 GMT")
      << "RFC 9110's example";
  EXPECT_EQ(HttpDate(system_clock::time_point{}), "Thu, 01 Jan 1970 00:00:00 GMT");
  EXPECT_EQ(HttpDate(system_clock::time_point{} - 1ms), "Wed, 31 Dec 1969 23:59:59 GMT");
  EXPECT_EQ(HttpDate(sys_days{2000y / February / 29} + 23h + 59min + 59s),
            "Tue, 29 Feb 2000 23:59:59 GMT");
  EXPECT_EQ(HttpDate(sys_days{2038y / January / 19} + 3h + 14min + 8s),
            "Tue, 19 Jan 2038 03:14:08 GMT")
      << "past a 32-bit time_t";
}

// ---- AppendResponseHead, ResponseBody ---------------------------------------------------------

std::string Head(const HttpResponse& resp, std::string_view version = "HTTP/1.1",
                 bool keep_alive = true) {
  std::string out;
  AppendResponseHead(resp, {version, keep_alive, "greenline/1.2.3", "DATE"}, &out);
  return out;
}

HttpResponse Ok(std::string body) {
  HttpResponse r;
  r.body = std::move(body);
  return r;
}

TEST(AppendResponseHeadTest, WritesTheStatusLineAndFramingHeadersExactly) {
  EXPECT_EQ(Head(Ok("abc")),
            "HTTP/1.1 200 OK\r\n"
            "Server: greenline/1.2.3\r\n"
            "Date: DATE\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            "Content-Length: 3\r\n"
            "\r\n");
  std::string out = "kept";
  AppendResponseHead(Ok(""), {"HTTP/1.1", true, "s", "d"}, &out);
  EXPECT_EQ(out,
            "keptHTTP/1.1 200 OK\r\nServer: s\r\nDate: d\r\n"
            "Content-Type: text/plain; charset=utf-8\r\nContent-Length: 0\r\n\r\n")
      << "appends";
}

TEST(AppendResponseHeadTest, ConnectionSaysCloseOrKeepAliveToHttp10) {
  const std::string close = Head(Ok("x"), "HTTP/1.1", false);
  EXPECT_NE(close.find("\r\nConnection: close\r\n"), std::string::npos) << close;
  EXPECT_EQ(Head(Ok("x"), "HTTP/1.1", true).find("Connection"), std::string::npos)
      << "1.1 keeps the connection by default";
  const std::string keep10 = Head(Ok("x"), "HTTP/1.0", true);
  EXPECT_NE(keep10.find("\r\nConnection: keep-alive\r\n"), std::string::npos) << keep10;
  const std::string close10 = Head(Ok("x"), "HTTP/1.0", false);
  EXPECT_NE(close10.find("\r\nConnection: close\r\n"), std::string::npos) << close10;
  EXPECT_NE(Head(Ok("x"), "", false).find("\r\nConnection: close\r\n"), std::string::npos)
      << "an unparsed request's answer closes";
}

TEST(AppendResponseHeadTest, HandlerHeadersCannotBreakTheFraming) {
  HttpResponse r = Ok("abc");
  r.headers = {{"Content-Length", "999"},
               {"transfer-encoding", "chunked"},
               {"CONNECTION", "keep-alive"},
               {"X-Injected", "a\r\nX-Evil: 1"},
               {"X-Lf", "a\nb"},
               {"X-Cr", "a\rb"},
               {"Bad Name", "x"},
               {"", "x"},
               {"X-Fine", "yes"},
               {"X-Empty", ""}};
  EXPECT_EQ(Head(r),
            "HTTP/1.1 200 OK\r\nServer: greenline/1.2.3\r\nDate: DATE\r\n"
            "Content-Type: text/plain; charset=utf-8\r\nContent-Length: 3\r\n"
            "X-Fine: yes\r\nX-Empty: \r\n\r\n");
  r.headers.clear();
  r.content_type = "text/html\r\nX-Evil: 1";
  EXPECT_EQ(Head(r).find("Content-Type"), std::string::npos) << "a broken content type is dropped";
  r.content_type = "";
  EXPECT_EQ(Head(r).find("Content-Type"), std::string::npos) << "an empty one is not sent";
}

TEST(AppendResponseHeadTest, NoContentAndNotModifiedCarryNoBodyNorLength) {
  for (int status : {204, 304}) {
    HttpResponse r = Ok("ignored");
    r.status = status;
    const std::string head = Head(r);
    EXPECT_TRUE(head.starts_with("HTTP/1.1 " + std::to_string(status) + " ")) << head;
    EXPECT_EQ(head.find("Content-Length"), std::string::npos) << head;
    EXPECT_EQ(head.find("Content-Type"), std::string::npos) << head;
    EXPECT_EQ(ResponseBody(r, false), "") << status;
  }
}

TEST(AppendResponseHeadTest, HeadAnnouncesTheLengthOfGetButSendsNoBody) {
  HttpResponse r = Ok("HEAD /x\n");
  EXPECT_NE(Head(r).find("\r\nContent-Length: 8\r\n"), std::string::npos);
  EXPECT_EQ(ResponseBody(r, /*head_only=*/true), "");
  EXPECT_EQ(ResponseBody(r, /*head_only=*/false), "HEAD /x\n");
}

TEST(AppendResponseHeadTest, AnUnknownStatusIsFormattedAsGiven) {
  HttpResponse r = Ok("");
  r.status = 299;
  EXPECT_TRUE(Head(r).starts_with("HTTP/1.1 299 Unknown\r\n"));
}

}  // namespace
}  // namespace greenline::protocol
