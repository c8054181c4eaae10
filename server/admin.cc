#include "server/admin.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "greenline/dump.h"
#include "greenline/goroutine.h"

namespace greenline::server {
namespace {

constexpr size_t kMaxDumpBytes = 64 << 20;

constexpr const char* kIndex =
    "greenline admin endpoint\n"
    "\n"
    "/healthz           200 ok while serving, 503 once shutting down\n"
    "/metrics           Prometheus metrics (text format 0.0.4)\n"
    "/debug/goroutines  goroutine dump (loopback clients only, unless opened by the operator)\n"
    "/                  live status page, in a browser (loopback clients only, unless opened)\n"
    "/status.json       the status page's data\n";

// The status page's headers: its scripts come from this server only (no inline script, no other
// origin), it may not be framed, and nothing is sniffed into another type.
void PageHeaders(HttpResponse* r, std::string_view cache_control) {
  r->headers.emplace_back("Content-Security-Policy",
                          "default-src 'self'; style-src 'self' 'unsafe-inline'; "
                          "frame-ancestors 'none'; base-uri 'none'; form-action 'none'");
  r->headers.emplace_back("X-Content-Type-Options", "nosniff");
  r->headers.emplace_back("Cache-Control", std::string(cache_control));
}

HttpResponse Asset(std::string_view body, const char* content_type,
                   std::string_view cache_control) {
  HttpResponse r;
  r.content_type = content_type;
  r.body = std::string(body);
  PageHeaders(&r, cache_control);
  return r;
}

// The page's icon: a green dot.
constexpr std::string_view kIcon =
    "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 16 16\">"
    "<circle cx=\"8\" cy=\"8\" r=\"7\" fill=\"#2f9e6f\"/></svg>\n";

// True when the request's Host names this machine by "localhost", its host name or an IP literal,
// or is absent (HTTP/1.0). The loopback-only routes check it too: a page from another site that
// rebinds its own name to 127.0.0.1 ("DNS rebinding") reaches us from a loopback peer, but its
// requests carry that name as Host.
bool LocalHostHeader(const HttpRequest& req) {
  const std::string* header = req.FindHeader("Host");
  if (header == nullptr) return true;
  std::string_view host = *header;
  if (!host.empty() && host.front() == '[') return host.find(']') != std::string_view::npos;
  if (size_t colon = host.rfind(':'); colon != std::string_view::npos) host = host.substr(0, colon);
  if (host.empty()) return false;
  std::string lower(host);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "localhost") return true;
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) == 0) {
    std::string own(name);
    for (char& c : own) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (lower == own) return true;  // Debian maps it to 127.0.1.1
  }
  return lower.find_first_not_of("0123456789.") == std::string::npos;  // an IPv4 literal
}

// The `since` of "since=SEQ" in a query string; 0 when absent or not a number.
uint64_t SinceParam(std::string_view query) {
  for (size_t at = 0; at <= query.size();) {
    size_t end = query.find('&', at);
    if (end == std::string_view::npos) end = query.size();
    std::string_view part = query.substr(at, end - at);
    if (part.rfind("since=", 0) == 0) {
      uint64_t v = 0;
      for (char c : part.substr(6)) {
        if (c < '0' || c > '9' || v > (UINT64_MAX - 9) / 10) return 0;
        v = v * 10 + static_cast<uint64_t>(c - '0');
      }
      return v;
    }
    at = end + 1;
  }
  return 0;
}

HttpResponse Text(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

// Reads the dump back from `fd` (written at offset 0..size), at most kMaxDumpBytes of it.
std::string ReadBack(int fd) {
  off_t size = lseek(fd, 0, SEEK_END);
  if (size < 0) return "goroutine dump: lseek: " + std::string(std::strerror(errno)) + "\n";
  size_t want = std::min<size_t>(static_cast<size_t>(size), kMaxDumpBytes);
  std::string out(want, '\0');
  size_t got = 0;
  while (got < want) {
    ssize_t n = pread(fd, out.data() + got, want - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  out.resize(got);
  if (static_cast<size_t>(size) > want) {
    out += "\n... dump cut at " + std::to_string(kMaxDumpBytes >> 20) + " MiB of " +
           std::to_string(size) + " bytes\n";
  }
  return out;
}

// On a blocking-pool thread: the dump walks every goroutine, and asks each worker running one for
// its stack (waiting up to 200 ms per worker).
std::string DumpToString() {
  // A memfd, not a pipe: the dump is written whole before anything reads it, and a pipe would
  // block the writer once 64 KiB are in it. A memory file never blocks; it holds the dump once.
  int fd = memfd_create("greenline-goroutine-dump", MFD_CLOEXEC);
  FILE* tmp = nullptr;
  if (fd < 0) {
    // Old kernels and some emulators lack memfd_create: an unlinked temporary file does the same.
    tmp = std::tmpfile();
    if (tmp == nullptr) return "goroutine dump: no memfd nor temporary file\n";
    fd = fileno(tmp);
  }
  WriteGoroutineDump(fd);
  std::string out = ReadBack(fd);
  if (tmp != nullptr) {
    std::fclose(tmp);
  } else {
    close(fd);
  }
  return out;
}

}  // namespace

bool IsLoopback(const net::Addr& addr) {
  if (addr.empty()) return false;
  if (addr.family() == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(addr.sockaddr_ptr());
    return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
  }
  if (addr.family() == AF_INET6) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(addr.sockaddr_ptr());
    if (IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr)) return true;
    return IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr) && sin6->sin6_addr.s6_addr[12] == 127;
  }
  return false;
}

std::string GoroutineDumpText() {
  return Blocking([] { return DumpToString(); });
}

HttpHandler MakeAdminHandler(Metrics& metrics, const AdminOptions& options) {
  return [&metrics, options](const HttpRequest& req) -> HttpResponse {
    bool shutting_down = options.shutting_down != nullptr && options.shutting_down->load();
    if (req.path == "/healthz") {
      return shutting_down ? Text(503, "shutting down\n") : Text(200, "ok\n");
    }
    if (req.path == "/metrics") {
      metrics.shutting_down.Set(shutting_down ? 1 : 0);
      HttpResponse r = Text(200, Blocking([&metrics] { return metrics.RenderPrometheus(); }));
      r.content_type = "text/plain; version=0.0.4; charset=utf-8";
      return r;
    }
    if (req.path == "/debug/goroutines") {
      if (!options.debug_goroutines_public && (!IsLoopback(req.peer) || !LocalHostHeader(req))) {
        return Text(403,
                    "403 Forbidden: the goroutine dump is served to loopback clients only; the "
                    "operator can open it to all\n");
      }
      return Text(200, GoroutineDumpText());
    }
    bool status_path =
        req.path == "/" || req.path == "/status.json" || req.path.rfind("/static/", 0) == 0;
    if (options.status != nullptr && status_path) {
      if (!options.status_public && (!IsLoopback(req.peer) || !LocalHostHeader(req))) {
        return Text(403,
                    "403 Forbidden: the status page is served to loopback clients asking for "
                    "localhost or an IP address only; the operator can open it to all "
                    "(--status-public)\n");
      }
      if (req.path == "/") return Asset(StatusPageHtml(), "text/html; charset=utf-8", "no-cache");
      if (req.path == "/static/status.js") {
        return Asset(StatusPageScript(), "text/javascript; charset=utf-8", "no-cache");
      }
      if (req.path == "/static/chart.min.js") {
        return Asset(ChartJs(), "text/javascript; charset=utf-8", "no-cache");
      }
      if (req.path == "/static/icon.svg") return Asset(kIcon, "image/svg+xml", "max-age=86400");
      if (req.path == "/status.json") {
        return Asset(options.status->Json(SinceParam(req.query)), "application/json", "no-store");
      }
    }
    if (req.path == "/") return Text(200, kIndex);
    return Text(404, "404 Not Found: " + req.path + "\n" + kIndex);
  };
}

}  // namespace greenline::server
