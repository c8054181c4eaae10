// idle_mode.cc: greenline-load's `idle` mode: many idle connections, what they cost the server.
//
// What it measures. It opens --conns connections to an echo server and holds them, idle, for
// --hold seconds. It reports the connect rate (and each connect's latency, in the histogram), the
// server's resident memory before the first connect and after the last (after a 1 s settle) and
// so the growth per connection, and whether the server still answers: after the hold, --sample
// random connections each send a line and must get it back byte for byte (the server is an echo
// server: greenline's :7007 or an echo peer).
//
// --service chat measures what an idle chat user costs (greenline's :7070 or the Go chat peer):
// connection i reads its welcome, sends "/join #idle-(i / --room-size)" and counts as opened once
// it has read its own "* NICK joined ROOM"; the connect deadline covers this handshake. Once all
// are in, everything the server sent them (the notices of later joiners) is read until it has been
// quiet for 0.5 s, so the RSS is that of connections with nothing queued. The sample sends "/join"
// of its own room and must read "! already in ROOM".
//
// --slope-from N reads RSS a second time: after the first N connections are open (and, for chat,
// drained) and settled. The growth from there to --conns, per connection, is the slope: what one
// more idle connection costs once the allocator has what the first N (and their join storm) made
// it keep.
//
// Phases:
//   1. Limits. RLIMIT_NOFILE's soft limit is raised to the hard one. If --conns plus a margin
//      (kFdMargin: stdio, the io_contexts' epoll and eventfds, the /metrics request) does not fit,
//      the run stops before connecting with a message saying how many would fit (exit 2, a usage
//      error: the request cannot be carried out as asked). We do not silently cap: a figure "per
//      connection at 100,000" measured at 19,936 would be mislabelled. --conns 0 asks for as many
//      as fit.
//   2. RSS before: /proc/<--server-pid>/status VmRSS, or process_resident_memory_bytes from
//      --metrics-url (a tiny blocking HTTP/1.1 GET with Connection: close).
//   3. Connect. Connection i is bound to source address 127.0.0.(2 + i % A) before connecting: one
//      source address has one ephemeral port range (~28,000 ports) per destination, so 100,000+
//      connections need several. IP_BIND_ADDRESS_NO_PORT defers the port choice to connect(), where
//      the kernel can pick by the full 4-tuple instead of reserving a port at bind(). `auto` is one
//      address per 5,000 connections, far below the ~28,000 ports a range holds: connect() looks
//      for a free port by probing the range, and the probing grows with how full it is. Measured
//      here (19,000 connections to one server port): one source address, 12 s of client system
//      CPU and 800 connects/s; four, 0.6 s and 8,500/s. Addresses cost nothing (127/8 is all
//      loopback), so auto spends them freely. Connects run
//      on ThreadCount threads (an io_context each, concurrency hint 1) with at most
//      kConnectsInFlight in flight in all, so the server's listen backlog is not overrun (a SYN
//      dropped on a full backlog costs a 1 s retransmit and would make the connect rate a
//      measure of the backlog). Each connect has a deadline of --connect-timeout. The first connect
//      failing before any succeeded ends the run (exit 3: nothing listening, refused, ...); later
//      failures are errors by kind ("connect: <reason>") and the run goes on with what opened.
//   4. Chat: drain. Settle 1 s, RSS after; then the rest of --hold. (With --slope-from, phases 3
//      and 4 first run for the first N connections, then for the rest.) Nothing runs during the
//      hold: the load threads are stopped and the connections are plain descriptors.
//   5. Check. Every connection is peeked (recv MSG_PEEK | MSG_DONTWAIT): EOF or a reset is "closed
//      early", bytes the server sent unasked are an error of kind their first line (e.g. "! server
//      full"). Then --sample random live connections send a line each, all at once, and poll() for
//      the echoes with a deadline of --connect-timeout: sample_ok of sample_checked.
//
// Report: units "connections" (opened), the window is the connect phase (so per_second is the
// connect rate, and --stat-cpu's server CPU is per connection established), latency is connect
// latency. Extra: conns_opened, connect_per_second, sample_ok, sample_checked, rss_before_bytes,
// rss_after_bytes, rss_per_conn_bytes (null when no RSS source was given or it could not be read
// after the connects: rss_error says why), conns_at_slope_from, rss_at_slope_from_bytes,
// rss_slope_bytes_per_conn (null without --slope-from), source_addrs, nofile_limit.
//
// Rejected: an asio read kept pending on every held connection to notice a close as it happens (an
// operation and its state per connection, and a running event loop that the RSS figure of the
// *server* does not need; a close is as well found by one peek per connection at the end);
// binding without IP_BIND_ADDRESS_NO_PORT (bind() then reserves an ephemeral port for every
// destination, and the range runs out at ~28,000 per source address even though the 4-tuples
// would be unique).
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <asio.hpp>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "loadtest/load/modes.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

namespace greenline::load {
namespace {

using Clock = std::chrono::steady_clock;
using tcp = asio::ip::tcp;

constexpr int kConnectsInFlight = 256;  // in all threads
constexpr uint64_t kFdMargin = 64;
constexpr int kConnsPerSourceAddr = 5'000;  // --source-addrs auto (see the essay: not 28,000)
constexpr double kSettleSeconds = 1;
constexpr size_t kMaxHandshakeLine = 64 * 1024;  // chat: a longer line fails the handshake
constexpr double kDrainQuietSeconds = 0.5;       // chat: the server has sent all when this quiet
constexpr double kDrainMaxSeconds = 60;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

struct IdleOptions {
  int conns = 1000;
  double hold = 10;
  int sample = 100;
  std::string source_addrs = "auto";
  std::string metrics_url;
  std::string service = "echo";  // echo or chat
  int room_size = 100;           // chat: connections per room
  int slope_from = 0;            // RSS also at this many connections: the slope from there
};

// Set by the first connect that fails before any succeeded; read by the main thread.
struct Failure {
  std::mutex mu;
  std::string message;  // guarded by mu
  std::atomic<bool> failed{false};
  void Set(std::string m) {
    std::lock_guard<std::mutex> lock(mu);
    if (failed.load(std::memory_order_relaxed)) return;
    message = std::move(m);
    failed.store(true, std::memory_order_release);
  }
};

// Connections opened so far, in all threads: tells the first failure (fatal) from later ones.
std::atomic<uint64_t> g_opened{0};

// One connect thread: connections i with i % threads == t.
class Connector {
 public:
  // `chat`: each connection also joins a room (see the essay); it counts as opened once it is in.
  Connector(tcp::endpoint endpoint, int in_flight, Failure& failure, int64_t timeout_ns, bool chat)
      : io_(1),
        tick_(io_),
        endpoint_(endpoint),
        in_flight_max_(in_flight),
        failure_(failure),
        timeout_ns_(timeout_ns),
        chat_(chat) {}

  // `room`: chat's room for this connection, "#name".
  void Add(uint32_t source, std::string room) {
    conns_.push_back(std::make_unique<Conn>(io_));
    conns_.back()->source = source;
    conns_.back()->room = std::move(room);
  }
  // Makes Run() open this thread's connections up to (not including) its `limit`-th. Called before
  // the thread starts: a Stop() from then on is never undone by the restart.
  void Prepare(size_t limit) {
    limit_ = std::min(limit, conns_.size());
    io_.restart();
    asio::post(io_, [this] {
      while (in_flight_.size() < static_cast<size_t>(in_flight_max_) && next_ < limit_ &&
             !failure_.failed.load(std::memory_order_relaxed)) {
        StartNext();
      }
      Tick();
    });
  }
  void Run() { io_.run(); }
  void Stop() { io_.stop(); }

  // Written by the load thread, read by the main thread (relaxed: progress and "all done").
  std::atomic<uint64_t> opened{0};
  std::atomic<uint64_t> finished{0};  // opened or failed
  std::atomic<int64_t> last_done_ns{0};
  // Read after the thread ends.
  Histogram latency;
  std::map<std::string, uint64_t> errors;

  // After the thread ended: the open sockets' descriptors (and chat rooms).
  template <typename F>
  void ForEachOpen(F f) const {
    for (const auto& c : conns_) {
      if (c->open) f(c->socket.native_handle(), c->room);
    }
  }
  void CloseAll() { conns_.clear(); }

 private:
  struct Conn {
    explicit Conn(asio::io_context& io) : socket(io) {}
    tcp::socket socket;
    uint32_t source = 0;  // host order; 0: no bind
    std::string room;     // chat
    std::string in;       // chat: what the handshake has read and not yet parsed
    std::string out;      // chat: the /join line being written
    std::string joined;   // chat: the line that says this connection is in its room
    int64_t started = 0;
    bool timed_out = false;
    bool open = false;
  };

  // Starts the next connect; one that fails at once (socket, bind) is counted and the next one is
  // tried, so that the chain of connects (each completion starts one) never breaks: a broken chain
  // would leave connections never started and the main thread waiting for them.
  void StartNext() {
    while (next_ < limit_ && !failure_.failed.load(std::memory_order_relaxed)) {
      if (TryStart(conns_[next_++].get())) return;
    }
  }

  bool TryStart(Conn* c) {
    asio::error_code ec;
    c->socket.open(tcp::v4(), ec);
    if (ec) {
      Fail(c, "socket: " + ec.message());
      return false;
    }
    if (c->source != 0) {
      const int one = 1;
      ::setsockopt(c->socket.native_handle(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
                   sizeof(one));
      c->socket.bind(tcp::endpoint(asio::ip::address_v4(c->source), 0), ec);
      if (ec) {
        Fail(c, "bind " + asio::ip::address_v4(c->source).to_string() + ": " + ec.message());
        return false;
      }
    }
    c->started = NowNs();
    in_flight_.push_back(c);
    c->socket.async_connect(endpoint_, [this, c](const asio::error_code& e) { OnConnect(c, e); });
    return true;
  }

  void OnConnect(Conn* c, const asio::error_code& ec) {
    if (c->timed_out) {
      Done(c, "connect: timed out");
    } else if (ec) {
      Done(c, "connect: " + ec.message());
    } else if (chat_) {
      ReadLine(c);
    } else {
      Done(c, "");
    }
  }

  // Chat: the handshake reads lines until its welcome ("* welcome ...: you are NICK in #lobby
  // ..."), sends "/join ROOM", and reads lines until "* NICK joined ROOM". Other lines (the lobby's
  // comings and goings) are skipped.
  void ReadLine(Conn* c) {
    asio::async_read_until(
        c->socket, asio::dynamic_buffer(c->in, kMaxHandshakeLine), '\n',
        [this, c](const asio::error_code& ec, size_t n) {
          if (c->timed_out) return Done(c, "handshake: timed out");
          if (ec) return Done(c, "handshake: " + ec.message());
          std::string line = c->in.substr(0, n);
          c->in.erase(0, n);
          if (c->joined.empty()) {
            constexpr std::string_view kYouAre = "you are ";
            const size_t at = line.find(kYouAre);
            const size_t end = at == std::string::npos ? at : line.find(' ', at + kYouAre.size());
            if (!line.starts_with("* welcome") || end == std::string::npos) return ReadLine(c);
            const std::string nick = line.substr(at + kYouAre.size(), end - at - kYouAre.size());
            c->joined = "* " + nick + " joined " + c->room + "\r\n";
            c->out = "/join " + c->room + "\r\n";
            asio::async_write(c->socket, asio::buffer(c->out),
                              [this, c](const asio::error_code& e, size_t) {
                                if (c->timed_out) return Done(c, "handshake: timed out");
                                if (e) return Done(c, "handshake: " + e.message());
                                ReadLine(c);
                              });
            return;
          }
          if (line != c->joined) return ReadLine(c);
          // What came after the notice is drained with the rest, by descriptor.
          std::string().swap(c->out);
          std::string().swap(c->joined);
          Done(c, "");
        });
  }

  // The connection is open (`error` empty) or failed with `error`; the next one starts.
  void Done(Conn* c, const std::string& error) {
    in_flight_.erase(std::find(in_flight_.begin(), in_flight_.end(), c));
    const int64_t now = NowNs();
    if (!error.empty()) {
      Fail(c, error);
    } else {
      c->open = true;
      latency.Record(now - c->started);
      g_opened.fetch_add(1, std::memory_order_relaxed);
      opened.store(opened.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
      Finish(now);
    }
    StartNext();
  }

  void Fail(Conn* c, const std::string& kind) {
    asio::error_code ignored;
    c->socket.close(ignored);
    if (g_opened.load(std::memory_order_relaxed) == 0) {
      failure_.Set("cannot connect to " + endpoint_.address().to_string() + ":" +
                   std::to_string(endpoint_.port()) + ": " + kind);
    }
    ++errors[kind];
    Finish(NowNs());
  }

  void Finish(int64_t now) {
    last_done_ns.store(now, std::memory_order_relaxed);
    finished.store(finished.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  }

  // Every 50 ms: connects (and chat handshakes) past their deadline are cancelled (their handler
  // then counts them).
  void Tick() {
    const int64_t now = NowNs();
    for (Conn* c : in_flight_) {
      if (!c->timed_out && now - c->started > timeout_ns_) {
        c->timed_out = true;
        asio::error_code ignored;
        c->socket.cancel(ignored);
      }
    }
    if (finished.load(std::memory_order_relaxed) == limit_) return;
    tick_.expires_after(std::chrono::milliseconds(50));
    tick_.async_wait([this](const asio::error_code& ec) {
      if (!ec) Tick();
    });
  }

  asio::io_context io_;
  asio::steady_timer tick_;
  tcp::endpoint endpoint_;
  int in_flight_max_;
  Failure& failure_;
  int64_t timeout_ns_;
  bool chat_;
  std::vector<std::unique_ptr<Conn>> conns_;  // after io_: closed before it goes
  size_t next_ = 0;
  size_t limit_ = 0;  // this phase opens conns_[..limit_)
  std::vector<Conn*> in_flight_;
};

// --- /metrics ---------------------------------------------------------------------------------

// Reads `fd` to EOF (at most 64 MiB); false on error or timeout.
bool ReadAll(int fd, std::string& out) {
  char buf[16384];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n == 0) return true;
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    out.append(buf, n);
    if (out.size() > (64u << 20)) return false;
  }
}

std::string Dechunk(std::string_view body) {
  std::string out;
  while (!body.empty()) {
    const size_t eol = body.find("\r\n");
    if (eol == std::string_view::npos) break;
    const size_t len = std::strtoul(std::string(body.substr(0, eol)).c_str(), nullptr, 16);
    body.remove_prefix(eol + 2);
    if (len == 0 || len > body.size()) break;
    out.append(body.substr(0, len));
    body.remove_prefix(std::min(body.size(), len + 2));
  }
  return out;
}

// process_resident_memory_bytes from a Prometheus /metrics URL (http://host[:port]/path); nullopt
// with *why set if it cannot.
std::optional<uint64_t> FetchRss(const std::string& url, double timeout_s, std::string* why) {
  std::string_view u = url;
  if (!u.starts_with("http://")) {
    *why = "only http:// URLs are supported";
    return std::nullopt;
  }
  u.remove_prefix(7);
  const size_t slash = u.find('/');
  std::string_view hostport = u.substr(0, slash);
  const std::string path = slash == std::string_view::npos ? "/" : std::string(u.substr(slash));
  std::string host(hostport), port = "80";
  if (const size_t colon = hostport.rfind(':'); colon != std::string_view::npos) {
    host = std::string(hostport.substr(0, colon));
    port = std::string(hostport.substr(colon + 1));
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0) {
    *why = std::string("cannot resolve ") + host + ": " + gai_strerror(rc);
    return std::nullopt;
  }
  const int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout_s);
  tv.tv_usec = static_cast<suseconds_t>((timeout_s - std::floor(timeout_s)) * 1e6);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));  // bounds connect() too
  const bool connected = fd >= 0 && ::connect(fd, res->ai_addr, res->ai_addrlen) == 0;
  ::freeaddrinfo(res);
  std::string reply;
  const std::string request = "GET " + path + " HTTP/1.1\r\nHost: " + std::string(hostport) +
                              "\r\nConnection: close\r\n\r\n";
  const bool ok = connected &&
                  ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
                      static_cast<ssize_t>(request.size()) &&
                  ReadAll(fd, reply);
  if (fd >= 0) ::close(fd);
  if (!ok) {
    *why = "GET " + url + " failed: " + std::strerror(errno);
    return std::nullopt;
  }
  const size_t head_end = reply.find("\r\n\r\n");
  if (!reply.starts_with("HTTP/1.") || reply.size() < 12 || reply.compare(9, 3, "200") != 0 ||
      head_end == std::string::npos) {
    *why = "GET " + url + ": " + reply.substr(0, reply.find("\r\n"));
    return std::nullopt;
  }
  std::string head = reply.substr(0, head_end);
  for (char& ch : head) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  std::string body = reply.substr(head_end + 4);
  if (head.find("transfer-encoding: chunked") != std::string::npos) body = Dechunk(body);
  constexpr std::string_view kName = "process_resident_memory_bytes";
  size_t pos = 0;
  while (pos < body.size()) {
    size_t eol = body.find('\n', pos);
    if (eol == std::string::npos) eol = body.size();
    std::string_view line(body.data() + pos, eol - pos);
    pos = eol + 1;
    if (!line.starts_with(kName) || line.size() == kName.size()) continue;
    const char after = line[kName.size()];
    if (after != ' ' && after != '{') continue;
    size_t value_at = line[kName.size()] == '{' ? line.find('}') : kName.size();
    if (value_at == std::string_view::npos) continue;
    const std::string value(line.substr(value_at + 1));
    char* end = nullptr;
    const double v = std::strtod(value.c_str(), &end);
    if (end == value.c_str() || v < 0) continue;
    return static_cast<uint64_t>(std::llround(v));
  }
  *why = url + " has no process_resident_memory_bytes";
  return std::nullopt;
}

// --- the run ------------------------------------------------------------------------------------

uint64_t RaiseNofile() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
  if (rl.rlim_cur < rl.rlim_max) {
    rlimit want = rl;
    want.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &want) == 0) rl = want;
  }
  return rl.rlim_cur;
}

// Chat: reads what the server sent the open connections (the room notices of later joiners) until
// none has had anything for kDrainQuietSeconds. False if they were still receiving after
// kDrainMaxSeconds. Closed connections are left for the check after the hold to count.
template <typename Connectors>
bool DrainAll(const Connectors& connectors) {
  const int64_t deadline = NowNs() + static_cast<int64_t>(kDrainMaxSeconds * 1e9);
  int64_t quiet_since = NowNs();
  char buf[16384];
  while (NowNs() < deadline) {
    bool got = false;
    for (const auto& c : connectors) {
      c->ForEachOpen([&](int fd, const std::string&) {
        while (::recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0) got = true;
      });
    }
    if (got) quiet_since = NowNs();
    if (NowNs() - quiet_since >= static_cast<int64_t>(kDrainQuietSeconds * 1e9)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

int RunIdle(IdleOptions opt, const CommonOptions& common) {
  const bool chat = opt.service == "chat";
  const int port = common.port != 0 ? common.port : chat ? 7070 : 7007;
  const uint64_t nofile = RaiseNofile();
  const bool unlimited = nofile == 0 || nofile == RLIM_INFINITY;
  if (opt.conns == 0) {
    if (unlimited) {
      std::fprintf(stderr, "greenline-load idle: --conns 0 needs a finite RLIMIT_NOFILE\n");
      return kExitUsage;
    }
    opt.conns = static_cast<int>(std::min<uint64_t>(nofile - kFdMargin, 1u << 30));
  }
  if (!unlimited && static_cast<uint64_t>(opt.conns) + kFdMargin > nofile) {
    std::fprintf(stderr,
                 "greenline-load idle: --conns %d needs %llu descriptors but RLIMIT_NOFILE's hard "
                 "limit is %llu here (raise it, e.g. ulimit -Hn or LimitNOFILE=, or ask for at "
                 "most --conns %llu; --conns 0 takes that many)\n",
                 opt.conns, static_cast<unsigned long long>(opt.conns + kFdMargin),
                 static_cast<unsigned long long>(nofile),
                 static_cast<unsigned long long>(nofile > kFdMargin ? nofile - kFdMargin : 0));
    return kExitUsage;
  }

  tcp::endpoint endpoint;
  {
    asio::io_context io;
    tcp::resolver resolver(io);
    asio::error_code ec;
    auto results = resolver.resolve(tcp::v4(), common.host, std::to_string(port), ec);
    if (ec || results.empty()) {
      std::fprintf(stderr, "greenline-load idle: cannot resolve %s (IPv4): %s\n",
                   common.host.c_str(), ec ? ec.message().c_str() : "no address");
      return kExitFailed;
    }
    endpoint = results.begin()->endpoint();
  }

  int source_addrs = 0;
  if (opt.source_addrs == "auto") {
    // Loopback only: elsewhere 127.0.0.x cannot reach the server.
    source_addrs = endpoint.address().is_loopback()
                       ? (opt.conns + kConnsPerSourceAddr - 1) / kConnsPerSourceAddr
                       : 0;
  } else {
    char* end = nullptr;
    const long n = std::strtol(opt.source_addrs.c_str(), &end, 10);
    if (end == opt.source_addrs.c_str() || *end != '\0' || n < 0 || n > 65'000) {
      std::fprintf(stderr,
                   "greenline-load idle: --source-addrs must be 'auto' or a count (0: no bind)\n");
      return kExitUsage;
    }
    source_addrs = static_cast<int>(n);
  }

  // Every phase is bounded (connect deadlines, the sample's deadline); this is the last resort.
  HardStop hard_stop(30 + 5 * common.connect_timeout + opt.conns / 1000.0 + opt.hold +
                         (chat ? 2 * kDrainMaxSeconds : 0),
                     "idle");
  if (opt.slope_from >= opt.conns) {
    std::fprintf(stderr, "greenline-load idle: --slope-from must be below --conns\n");
    return kExitUsage;
  }

  // RSS before anything connects.
  std::string rss_why;
  auto read_rss = [&]() -> std::optional<uint64_t> {
    if (!opt.metrics_url.empty())
      return FetchRss(opt.metrics_url, common.connect_timeout, &rss_why);
    if (common.server_pid > 0) {
      if (auto r = ReadRss(common.server_pid)) return r->rss_bytes;
      rss_why = "cannot read /proc/" + std::to_string(common.server_pid) + "/status";
    }
    return std::nullopt;
  };
  const std::optional<uint64_t> rss_before = read_rss();
  if (!rss_before && !rss_why.empty()) {
    std::fprintf(stderr, "greenline-load idle: %s\n", rss_why.c_str());
    return kExitFailed;
  }

  const int nthreads = std::max(1, std::min(ThreadCount(common), opt.conns));
  const int per_thread = std::max(1, kConnectsInFlight / nthreads);
  Failure failure;
  g_opened.store(0);
  std::vector<std::unique_ptr<Connector>> threads_state;
  for (int t = 0; t < nthreads; ++t) {
    threads_state.push_back(std::make_unique<Connector>(
        endpoint, per_thread, failure, static_cast<int64_t>(common.connect_timeout * 1e9), chat));
  }
  const uint32_t first_source = 0x7F000002;  // 127.0.0.2
  for (int i = 0; i < opt.conns; ++i) {
    const uint32_t source = source_addrs > 0 ? first_source + i % source_addrs : 0;
    threads_state[i % nthreads]->Add(source,
                                     chat ? "#idle-" + std::to_string(i / opt.room_size) : "");
  }
  auto sum_opened = [&] {
    uint64_t s = 0;
    for (const auto& c : threads_state) s += c->opened.load(std::memory_order_relaxed);
    return s;
  };
  auto sum_finished = [&] {
    uint64_t s = 0;
    for (const auto& c : threads_state) s += c->finished.load(std::memory_order_acquire);
    return s;
  };

  std::atomic<int> phase{0};  // 0 connecting, 1 holding, 2 checking
  std::atomic<int64_t> hold_end{0};
  Progress progress(common.quiet, [&, last_t = 0.0, last_opened = uint64_t{0}](double t) mutable {
    char buf[200];
    const uint64_t o = sum_opened();
    const int ph = phase.load(std::memory_order_relaxed);
    if (ph == 0) {
      const double rate = t > last_t ? (o - last_opened) / (t - last_t) : 0;
      last_t = t;
      last_opened = o;
      std::snprintf(buf, sizeof(buf), "idle %5.1fs  opened %llu/%d  %s connects/s", t,
                    static_cast<unsigned long long>(o), opt.conns, FormatCount(rate).c_str());
    } else if (ph == 1) {
      const double left = std::max<double>(0, (hold_end.load() - NowNs()) / 1e9);
      std::snprintf(buf, sizeof(buf), "idle %5.1fs  holding %llu connections, %.0f s left", t,
                    static_cast<unsigned long long>(o), left);
    } else {
      std::snprintf(buf, sizeof(buf), "idle %5.1fs  checking %llu connections", t,
                    static_cast<unsigned long long>(o));
    }
    return std::string(buf);
  });

  WindowProbe probe(common.stat_cpu, common.server_pid);
  probe.Start();
  // Opens connections [0, upto) (those the threads hold below it); false if the run must stop.
  // Counts the time from the first connect to the last one done in connect_seconds.
  double connect_seconds = 0;
  auto connect_until = [&](int upto) {
    const int64_t start = NowNs();
    std::vector<std::thread> threads;
    for (int t = 0; t < nthreads; ++t) {
      // Thread t holds connections t, t + nthreads, ...: ceil((upto - t) / nthreads) are below.
      const size_t limit = upto > t ? static_cast<size_t>((upto - t + nthreads - 1) / nthreads) : 0;
      threads_state[t]->Prepare(limit);
      threads.emplace_back([c = threads_state[t].get()] { c->Run(); });
    }
    while (sum_finished() < static_cast<uint64_t>(upto) &&
           !failure.failed.load(std::memory_order_acquire)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    for (auto& c : threads_state) c->Stop();
    for (auto& t : threads) t.join();
    int64_t end = start;
    for (const auto& c : threads_state) end = std::max(end, c->last_done_ns.load());
    connect_seconds += (end - start) / 1e9;
    return !failure.failed.load(std::memory_order_acquire);
  };
  auto fail = [&] {
    progress.Stop();
    threads_state.clear();
    std::lock_guard<std::mutex> lock(failure.mu);
    std::fprintf(stderr, "greenline-load idle: %s\n", failure.message.c_str());
    return kExitFailed;
  };
  // Chat: what the joins sent is read, then the server is left to settle; RSS.
  bool drain_ok = true;
  auto settled_rss = [&]() -> int64_t {
    if (chat) drain_ok = DrainAll(threads_state) && drain_ok;
    std::this_thread::sleep_for(std::chrono::duration<double>(kSettleSeconds));
    if (!rss_before) return -1;
    rss_why.clear();
    // -1: unknown (a plain value: GCC 12 sees a maybe-uninitialized optional through the JSON
    // code).
    const int64_t rss = static_cast<int64_t>(read_rss().value_or(uint64_t(-1)));
    // The run goes on (the sample still counts); the report says why the growth is missing.
    if (rss < 0) std::fprintf(stderr, "greenline-load idle: %s\n", rss_why.c_str());
    return rss;
  };

  int64_t rss_at_slope_from = -1;
  uint64_t opened_at_slope_from = 0;
  if (opt.slope_from > 0) {
    if (!connect_until(opt.slope_from)) return fail();
    phase.store(1);
    rss_at_slope_from = settled_rss();
    opened_at_slope_from = sum_opened();
    phase.store(0);
  }
  if (!connect_until(opt.conns)) return fail();
  probe.Stop();
  const uint64_t opened = sum_opened();
  connect_seconds = std::max(1e-9, connect_seconds);

  // Settle, RSS after, the rest of the hold.
  phase.store(1);
  const int64_t hold_start = NowNs();
  hold_end.store(hold_start + static_cast<int64_t>(std::max(opt.hold, kSettleSeconds) * 1e9));
  const int64_t rss_after = settled_rss();
  std::this_thread::sleep_until(Clock::time_point(std::chrono::nanoseconds(hold_end.load())));
  phase.store(2);

  Report report;
  for (const auto& c : threads_state) {
    report.latency.Merge(c->latency);
    for (const auto& [kind, n] : c->errors) report.errors[kind] += n;
  }

  // Which connections are still open?
  std::vector<std::pair<int, std::string>> alive;  // descriptor, chat room
  alive.reserve(opened);
  if (!drain_ok) report.errors["drain: the server was still sending after 60 s"] += 1;
  for (const auto& c : threads_state) {
    c->ForEachOpen([&](int fd, const std::string& room) {
      char peek[128];
      const ssize_t n = ::recv(fd, peek, sizeof(peek), MSG_PEEK | MSG_DONTWAIT);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        alive.emplace_back(fd, room);
      } else if (n > 0) {
        std::string_view got(peek, n);
        got = got.substr(0, got.find_first_of("\r\n"));
        report.errors[got.starts_with("! ") ? std::string(got) : "unexpected data"] += 1;
      } else {
        report.errors["closed early"] += 1;
      }
    });
  }

  // The sample: each sends one line at once, then the answers are awaited together. Echo: the
  // line comes back. Chat: "/join" of the room it is in, answered "! already in ROOM".
  std::mt19937_64 rng(std::random_device{}());
  const size_t k = std::min<size_t>(static_cast<size_t>(std::max(0, opt.sample)), alive.size());
  for (size_t i = 0; i < k; ++i) {
    std::swap(alive[i], alive[i + rng() % (alive.size() - i)]);
  }
  struct Probe {
    int fd;
    std::string want, got;
    bool done = false;
  };
  std::vector<Probe> probes(k);
  std::vector<pollfd> pfds;
  uint64_t sample_ok = 0;
  for (size_t i = 0; i < k; ++i) {
    Probe& p = probes[i];
    p.fd = alive[i].first;
    std::string line;
    if (chat) {
      line = "/join " + alive[i].second + "\r\n";
      p.want = "! already in " + alive[i].second + "\r\n";
    } else {
      line = "idle sample " + std::to_string(i) + " " + std::to_string(rng()) + "\n";
      p.want = line;
    }
    if (::send(p.fd, line.data(), line.size(), MSG_NOSIGNAL | MSG_DONTWAIT) !=
        static_cast<ssize_t>(line.size())) {
      p.done = true;
      report.errors["sample: send failed"] += 1;
    }
  }
  const int64_t sample_deadline = NowNs() + static_cast<int64_t>(common.connect_timeout * 1e9);
  for (;;) {
    pfds.clear();
    std::vector<Probe*> waiting;
    for (Probe& p : probes) {
      if (!p.done) {
        pfds.push_back({p.fd, POLLIN, 0});
        waiting.push_back(&p);
      }
    }
    const int64_t left_ms = (sample_deadline - NowNs()) / 1'000'000;
    if (waiting.empty() || left_ms <= 0) break;
    if (::poll(pfds.data(), pfds.size(), static_cast<int>(left_ms)) < 0 && errno != EINTR) break;
    for (size_t i = 0; i < pfds.size(); ++i) {
      if (pfds[i].revents == 0) continue;
      Probe& p = *waiting[i];
      char buf[512];
      const ssize_t n = ::recv(p.fd, buf, sizeof(buf), MSG_DONTWAIT);
      if (n > 0) {
        p.got.append(buf, n);
        if (p.got.size() >= p.want.size()) {
          p.done = true;
          if (p.got == p.want) {
            ++sample_ok;
          } else {
            report.errors["sample: mismatch"] += 1;
          }
        }
      } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        p.done = true;
        report.errors["sample: closed"] += 1;
      }
    }
  }
  for (const Probe& p : probes) {
    if (!p.done) report.errors[chat ? "sample: no answer" : "sample: no echo"] += 1;
  }
  progress.Stop();
  threads_state.clear();  // closes every connection

  report.mode = "idle";
  report.settings = {{"host", common.host},
                     {"port", port},
                     {"threads", nthreads},
                     {"conns", opt.conns},
                     {"service", opt.service},
                     {"room_size", chat ? nlohmann::json(opt.room_size) : nlohmann::json()},
                     {"slope_from", opt.slope_from},
                     {"hold", opt.hold},
                     {"sample", opt.sample},
                     {"source_addrs", opt.source_addrs},
                     {"metrics_url", opt.metrics_url},
                     {"connect_timeout", common.connect_timeout}};
  report.window_seconds = connect_seconds;
  report.rate_unit = "connections";
  report.units = opened;
  report.probe = &probe;
  const nlohmann::json null;
  const bool have_rss = rss_before && rss_after >= 0;
  const double per_conn =
      have_rss && opened > 0 ? (static_cast<double>(rss_after) - static_cast<double>(*rss_before)) /
                                   static_cast<double>(opened)
                             : 0;
  // The slope: what each connection past --slope-from cost, once the first ones' traffic was over
  // (allocator retention after their join storm does not count).
  const bool have_slope = have_rss && rss_at_slope_from >= 0 && opened > opened_at_slope_from;
  const double slope = have_slope ? static_cast<double>(rss_after - rss_at_slope_from) /
                                        static_cast<double>(opened - opened_at_slope_from)
                                  : 0;
  report.extra = {
      {"conns_requested", opt.conns},
      {"conns_opened", opened},
      {"connect_per_second", static_cast<double>(opened) / connect_seconds},
      {"sample_ok", sample_ok},
      {"sample_checked", k},
      {"rss_before_bytes", rss_before ? nlohmann::json(*rss_before) : null},
      {"rss_after_bytes", rss_after >= 0 ? nlohmann::json(rss_after) : null},
      {"rss_per_conn_bytes", have_rss ? nlohmann::json(per_conn) : null},
      {"rss_at_slope_from_bytes",
       rss_at_slope_from >= 0 ? nlohmann::json(rss_at_slope_from) : null},
      {"conns_at_slope_from", opt.slope_from > 0 ? nlohmann::json(opened_at_slope_from) : null},
      {"rss_slope_bytes_per_conn", have_slope ? nlohmann::json(slope) : null},
      {"rss_error", rss_why.empty() ? null : nlohmann::json(rss_why)},
      {"rss_source", !opt.metrics_url.empty() ? "metrics"
                     : common.server_pid > 0  ? "pid"
                                              : "none"},
      {"source_addrs", source_addrs},
      {"nofile_limit", unlimited ? nlohmann::json(null) : nlohmann::json(nofile)}};
  return Emit(report, common);
}

}  // namespace

void AddIdleCommand(CLI::App& app, const CommonOptions& common, int& exit_code) {
  static IdleOptions opt;  // lives as long as the app's callbacks may run
  CLI::App* sub = app.add_subcommand(
      "idle", "many idle connections: connect rate, server RSS per connection, still answered?");
  sub->add_option("--conns", opt.conns, "connections to open and hold (0: as many as fit)")
      ->capture_default_str()
      ->check(CLI::Range(0, 100'000'000));
  sub->add_option("--hold", opt.hold, "seconds to hold them, all open")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1e7));
  sub->add_option("--service", opt.service,
                  "echo: plain connections to an echo server; chat: each reads its welcome, joins "
                  "room #idle-(i / --room-size) and drains what it is sent")
      ->capture_default_str()
      ->check(CLI::IsMember({"echo", "chat"}));
  sub->add_option("--room-size", opt.room_size, "chat: connections per room")
      ->capture_default_str()
      ->check(CLI::Range(1, 100'000'000));
  sub->add_option("--slope-from", opt.slope_from,
                  "also read RSS once this many are open and settled; report the growth per "
                  "connection from there to --conns (0: only from none)")
      ->capture_default_str()
      ->check(CLI::Range(0, 100'000'000));
  sub->add_option("--sample", opt.sample,
                  "connections checked after the hold (echo: a line echoed; chat: a /join "
                  "answered)")
      ->capture_default_str()
      ->check(CLI::Range(0, 100'000'000));
  sub->add_option("--source-addrs", opt.source_addrs,
                  "loopback source addresses 127.0.0.2.. to spread over ('auto': one per 5,000 "
                  "connections; 0: no bind)")
      ->capture_default_str();
  sub->add_option("--metrics-url", opt.metrics_url,
                  "the server's Prometheus /metrics URL, for its RSS (else --server-pid)");
  sub->callback([&common, &exit_code] { exit_code = RunIdle(opt, common); });
}

}  // namespace greenline::load
