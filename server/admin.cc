#include "server/admin.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <unistd.h>

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
    "/debug/goroutines  goroutine dump (loopback clients only, unless opened by the operator)\n";

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
      if (!options.debug_goroutines_public && !IsLoopback(req.peer)) {
        return Text(403,
                    "403 Forbidden: the goroutine dump is served to loopback clients only; the "
                    "operator can open it to all\n");
      }
      return Text(200, GoroutineDumpText());
    }
    if (req.path == "/") return Text(200, kIndex);
    return Text(404, "404 Not Found: " + req.path + "\n" + kIndex);
  };
}

}  // namespace greenline::server
