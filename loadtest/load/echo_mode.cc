// echo_mode.cc: `greenline-load echo`, lines sent to an echo server and checked byte for byte on
// their way back, closed loop (--pipeline lines in flight per connection) or open loop (--rate
// lines per second in total, on a fixed schedule).
//
// Threads. W worker threads (--threads, at most --conns), each with its own asio::io_context
// (concurrency hint 1: one thread runs it) owning the connections i with i % W == w; nothing is
// shared between workers while the load runs, so there are no locks on the hot path. The main
// thread is the controller: it resolves, starts the connects, then fixes the timeline (t0: load
// starts; window_start = t0 + warmup; window_end = window_start + duration) before the load
// starts, so every worker decides "does this count" by comparing its own timestamps with the
// constants. It sleeps to each edge and takes WindowProbe Start/Stop there, then posts Finish to
// each worker and joins them. A HardStop armed around the whole run ends the process (exit 3) if
// anything overruns; a server that accepts and never answers does not, since nothing waits on it.
//
// Line content. Line `seq` of connection `conn` is size - 1 payload bytes then LF. The payload is
// the first size - 1 bytes of: 10 hex digits of seq (least significant first, so even a short
// line changes with every seq), 6 hex digits of conn, then a slice of a fixed pseudo-random
// alphanumeric pattern starting at (7 seq + 13 conn) mod 256. Any byte can be regenerated from
// (conn, seq, offset), so the checker compares whatever chunk the server's reads and writes cut
// against the expected bytes with memcmp, without keeping what was sent. A lost, duplicated,
// reordered or crossed line shows as a mismatch at its first differing byte.
//
// Per connection state (owned by its worker thread): `sent` lines handed to a write, `received`
// lines fully echoed and checked, `recv_off` bytes of line `received` seen so far; one write in
// flight at a time (the lines that come due meanwhile go out together when it completes: a
// connection's due lines always leave in one write), one read in flight always. Buffers are
// allocated once per connection; the hot path (read, check, record, refill, write) allocates
// nothing (Asio recycles its handler memory per thread).
//
// Closed loop: the send time of each in-flight line sits in a ring of --pipeline slots (slot
// seq % pipeline is free once line seq - pipeline came back). Latency = time the chunk completing
// the line was read - time its write was issued.
// Open loop (wrk2's method against coordinated omission): connection i's line s is due at
// t0 + s * P + i * P / conns, where P = conns / rate; the due times of one worker's connections
// therefore come round robin, so a cursor (connection, seq) walks them in order and one timer per
// worker sleeps until the next one. Latency = read time - *intended* time, whatever delayed the
// send (a write still in flight because the server does not read, or the client itself). A
// client that cannot keep its own schedule (its timer firing late: CPU-bound) makes the latency
// figures the client's, so the lateness is measured and reported (schedule_lag_*_us,
// client_behind_schedule when its p99 exceeds 1 ms).
//
// Errors (kinds): "mismatch" (a byte differs, or bytes nobody sent arrive: the connection stops),
// "closed early" (EOF or reset before the window's end), "io error" (any other socket error),
// "connect failed" (that connection is left out; none at all is exit 3), "no response" (at the
// end, a connection that read nothing during the window although a line had been waiting for at
// least half the window: the stuck server case; the exit status is then 1).
//
// Rejected: per-connection timers in open loop (a timer wait per line, and the timerfd rearmed
// each time); a fixed-period tick (its granularity would be added to every open-loop latency);
// keeping the sent bytes in a ring to compare (a copy per line for nothing: they are derivable);
// reading with async_wait + a per-thread buffer (less memory, but it depends on Asio delivering
// edge-triggered readiness to a late waiter; per-connection read buffers are sized to what can be
// in flight instead).
#include <sys/resource.h>

#include <algorithm>
#include <asio/connect.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <latch>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "loadtest/load/modes.h"

namespace greenline::load {

namespace {

using Clock = std::chrono::steady_clock;
using asio::ip::tcp;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

Clock::time_point ToTimePoint(int64_t ns) {
  return Clock::time_point(
      std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(ns)));
}

enum ErrorKind { kMismatch, kClosedEarly, kIoError, kConnectFailed, kNoResponse, kNumKinds };
constexpr const char* kKindNames[kNumKinds] = {"mismatch", "closed early", "io error",
                                               "connect failed", "no response"};

constexpr int kMinSize = 2;
constexpr int kMaxSize = 1 << 20;
constexpr int64_t kMaxPipelineBytes = int64_t{64} << 20;
constexpr size_t kHeaderBytes = 16;
constexpr size_t kPatternSpread = 256;
// Connects in flight per worker: enough to open thousands in a blink, few enough not to
// overflow the server's listen backlog (a dropped SYN costs a 1 s retransmit).
constexpr size_t kMaxConnecting = 128;
// Open loop: a connection's write buffer (lines due at once beyond it wait for the next write).
constexpr size_t kOpenLoopBufferBytes = 4096;
// Open loop: a timer firing this late (p99, in the window) means the client missed its schedule.
constexpr int64_t kBehindScheduleNs = 1'000'000;

struct EchoOptions {
  int conns = 100;
  int size = 64;
  int pipeline = 1;
  double rate = 0;
};

// The bytes of every line (see the essay). Immutable once built; shared by the workers.
class Lines {
 public:
  explicit Lines(size_t size) : size_(size), payload_(size - 1) {
    static constexpr char kAlphabet[] =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    pattern_.resize(payload_ + kPatternSpread);
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    for (char& c : pattern_) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      c = kAlphabet[x % (sizeof kAlphabet - 1)];
    }
  }

  size_t size() const { return size_; }

  // Writes line (conn, seq), size() bytes, at dst.
  void Write(uint32_t conn, uint64_t seq, char* dst) const {
    char h[kHeaderBytes];
    Header(conn, seq, h);
    size_t hn = std::min(kHeaderBytes, payload_);
    std::memcpy(dst, h, hn);
    if (payload_ > kHeaderBytes) {
      std::memcpy(dst + kHeaderBytes, pattern_.data() + Offset(conn, seq), payload_ - kHeaderBytes);
    }
    dst[payload_] = '\n';
  }

  // Compares data[0, n) with bytes [from, from + n) of line (conn, seq); returns the index of the
  // first differing byte, or n.
  size_t Check(uint32_t conn, uint64_t seq, size_t from, const char* data, size_t n) const {
    const size_t end = from + n;
    size_t i = from;
    const size_t header_end = std::min(kHeaderBytes, payload_);
    if (i < header_end) {
      char h[kHeaderBytes];
      Header(conn, seq, h);
      for (size_t stop = std::min(end, header_end); i < stop; ++i) {
        if (data[i - from] != h[i]) return i - from;
      }
    }
    if (i < end && i < payload_) {
      size_t stop = std::min(end, payload_);
      const char* want = pattern_.data() + Offset(conn, seq) + (i - kHeaderBytes);
      if (std::memcmp(data + (i - from), want, stop - i) != 0) {
        for (size_t k = 0;; ++k) {
          if (data[i - from + k] != want[k]) return i - from + k;
        }
      }
      i = stop;
    }
    if (i < end && data[i - from] != '\n') return i - from;
    return n;
  }

  // The expected byte at `offset` of line (conn, seq), for messages.
  char ByteAt(uint32_t conn, uint64_t seq, size_t offset) const {
    if (offset >= payload_) return '\n';
    if (offset < kHeaderBytes) {
      char h[kHeaderBytes];
      Header(conn, seq, h);
      return h[offset];
    }
    return pattern_[Offset(conn, seq) + offset - kHeaderBytes];
  }

 private:
  static void Header(uint32_t conn, uint64_t seq, char* out) {
    static constexpr char kHex[] = "0123456789abcdef";
    for (int i = 0; i < 10; ++i, seq >>= 4) out[i] = kHex[seq & 15];
    for (int i = 10; i < 16; ++i, conn >>= 4) out[i] = kHex[conn & 15];
  }
  static size_t Offset(uint32_t conn, uint64_t seq) {
    return (seq * 7 + uint64_t{conn} * 13) % kPatternSpread;
  }

  size_t size_;
  size_t payload_;
  std::string pattern_;
};

// What every worker reads and nobody writes once the load starts (set by the controller before
// it posts Start: the post orders the writes before the reads).
struct Plan {
  tcp::endpoint endpoint;
  std::string target;  // "host:port" for messages
  EchoOptions echo;
  double connect_timeout = 5;
  const Lines* lines = nullptr;
  bool open_loop = false;
  double period_ns = 0;      // open loop: between two lines of one connection
  double phase_step_ns = 0;  // open loop: between connection i's schedule and i + 1's
  int64_t t0 = 0, window_start = 0, window_end = 0;
};

struct Conn {
  explicit Conn(asio::io_context& io) : sock(io), timer(io) {}
  tcp::socket sock;
  asio::steady_timer timer;  // the connect timeout
  uint32_t id = 0;
  double phase_ns = 0;  // open loop: offset of this connection's schedule from t0
  bool connected = false;
  bool connect_done = false;  // the connect handler ran (a timer expiring after it does nothing)
  bool timed_out = false;     // the connect timer fired first
  bool dead = false;          // stopped (error, or the end): no handler touches it again
  bool writing = false;       // a write is in flight
  bool dirty = false;         // open loop: on the worker's list of connections with lines due
  uint64_t sent = 0;          // lines handed to a write
  uint64_t scheduled = 0;     // open loop: lines whose intended time has passed
  uint64_t received = 0;      // lines echoed in full and checked
  size_t recv_off = 0;        // bytes of line `received` seen so far
  int64_t last_read_ns = 0;   // 0: never read
  int64_t dead_at_ns = INT64_MAX;
  size_t wcap_lines = 0;
  size_t rcap = 0;
  std::unique_ptr<char[]> wbuf;
  std::unique_ptr<char[]> rbuf;
  std::unique_ptr<int64_t[]> sent_at;  // closed loop: ring of --pipeline send times
};

class Worker {
 public:
  Worker(const Plan& plan, std::vector<uint32_t> ids, std::latch& connected)
      : plan_(plan), connected_latch_(connected), timer_(io_) {
    for (uint32_t id : ids) {
      auto c = std::make_unique<Conn>(io_);
      c->id = id;
      c->phase_ns = plan.phase_step_ns * id;
      conns_.push_back(std::move(c));
    }
    dirty_.reserve(conns_.size());
    thread_ = std::thread([this] { io_.run(); });
  }

  ~Worker() { Join(); }

  void Join() {
    if (thread_.joinable()) thread_.join();
  }

  // Controller side: each posts to the worker's thread.
  void PostConnect() {
    asio::post(io_, [this] { ConnectMore(); });
  }
  void PostStart() {
    asio::post(io_, [this] { Start(); });
  }
  void PostFinish() {
    asio::post(io_, [this] { Finish(); });
  }
  void PostStop() {
    asio::post(io_, [this] {
      for (auto& c : conns_) Close(*c);
      work_.reset();
      io_.stop();
    });
  }

  // Read by the progress thread while the load runs.
  uint64_t CompletedSoFar() const { return completed_.load(std::memory_order_relaxed); }
  uint64_t ErrorsSoFar() const { return errors_seen_.load(std::memory_order_relaxed); }

  // Results: read by the controller once the thread has been joined.
  size_t Connected() const { return connected_; }
  const std::string& FirstError() const { return first_error_; }
  const Histogram& latency() const { return latency_; }
  const Histogram& schedule_lag() const { return schedule_lag_; }
  uint64_t units() const { return units_; }
  uint64_t errors(int kind) const { return errors_[kind]; }
  uint64_t lines_sent_window() const { return lines_sent_window_; }
  uint64_t lines_sent_total() const { return lines_sent_total_; }
  uint64_t in_flight_at_end() const { return in_flight_at_end_; }
  size_t alive_at_window_start() const { return alive_at_window_start_; }

 private:
  // ---- connect phase -------------------------------------------------------------------------

  void ConnectMore() {
    while (connecting_ < kMaxConnecting && next_connect_ < conns_.size()) {
      Connect(*conns_[next_connect_++]);
    }
    if (connects_done_ == conns_.size() && !connect_phase_over_) {
      connect_phase_over_ = true;
      // Only the connected take part from here on. The others are kept (not destroyed): a connect
      // timer that expired as its connect failed may still have its handler queued.
      auto failed =
          std::stable_partition(conns_.begin(), conns_.end(),
                                [](const std::unique_ptr<Conn>& c) { return c->connected; });
      std::move(failed, conns_.end(), std::back_inserter(failed_conns_));
      conns_.erase(failed, conns_.end());
      connected_ = conns_.size();
      connected_latch_.count_down();
    }
  }

  void Connect(Conn& c) {
    ++connecting_;
    c.timer.expires_after(std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(plan_.connect_timeout)));
    c.timer.async_wait([&c](const asio::error_code& ec) {
      // Cancelled, or expired just as the connect ended (cancel() cannot stop a handler that is
      // already queued): the connect's outcome stands.
      if (ec || c.connect_done) return;
      c.timed_out = true;
      asio::error_code ignored;
      c.sock.close(ignored);
    });
    c.sock.async_connect(plan_.endpoint, [this, &c](asio::error_code ec) {
      c.connect_done = true;
      c.timer.cancel();
      --connecting_;
      ++connects_done_;
      if (c.timed_out) ec = asio::error::timed_out;
      if (ec) {
        AddError(kConnectFailed, "cannot connect to " + plan_.target + ": " + ec.message());
        asio::error_code ignored;
        c.sock.close(ignored);
      } else {
        c.connected = true;
        asio::error_code ignored;
        c.sock.set_option(tcp::no_delay(true), ignored);
        Prepare(c);
      }
      ConnectMore();
    });
  }

  void Prepare(Conn& c) {
    const size_t size = plan_.lines->size();
    const size_t pipeline = static_cast<size_t>(plan_.echo.pipeline);
    if (plan_.open_loop) {
      c.wcap_lines = std::max<size_t>(1, kOpenLoopBufferBytes / size);
      c.rcap = std::max(kOpenLoopBufferBytes, size);
    } else {
      c.wcap_lines = pipeline;
      c.rcap = std::clamp<size_t>(pipeline * size, 4096, 65536);
      c.sent_at = std::make_unique<int64_t[]>(pipeline);
    }
    c.wbuf = std::make_unique<char[]>(c.wcap_lines * size);
    c.rbuf = std::make_unique<char[]>(c.rcap);
  }

  // ---- load ------------------------------------------------------------------------------------

  void Start() {
    for (auto& c : conns_) {
      Read(*c);
      if (!plan_.open_loop) Flush(*c);
    }
    if (plan_.open_loop && !conns_.empty()) Tick();
  }

  // The line (conn, seq) was due / was sent at.
  int64_t SentAt(const Conn& c, uint64_t seq) const {
    if (plan_.open_loop) return Due(c, seq);
    return c.sent_at[seq % static_cast<uint64_t>(plan_.echo.pipeline)];
  }
  int64_t Due(const Conn& c, uint64_t seq) const {
    return plan_.t0 + static_cast<int64_t>(static_cast<double>(seq) * plan_.period_ns + c.phase_ns);
  }

  bool InWindow(int64_t t) const { return t >= plan_.window_start && t < plan_.window_end; }

  // Open loop: marks every line due by now, writes each connection's due lines, and sleeps
  // until the next line is due.
  void Tick() {
    const int64_t now = NowNs();
    int64_t due = Due(*conns_[cursor_conn_], cursor_seq_);
    if (due <= now && InWindow(now)) schedule_lag_.Record(now - due);
    while (due <= now) {
      Conn& c = *conns_[cursor_conn_];
      if (!c.dead) {
        c.scheduled = cursor_seq_ + 1;
        if (!c.dirty) {
          c.dirty = true;
          dirty_.push_back(&c);
        }
      }
      if (++cursor_conn_ == conns_.size()) {
        cursor_conn_ = 0;
        ++cursor_seq_;
      }
      due = Due(*conns_[cursor_conn_], cursor_seq_);
    }
    for (Conn* c : dirty_) {
      c->dirty = false;
      Flush(*c);
    }
    dirty_.clear();
    timer_.expires_at(ToTimePoint(due));
    timer_.async_wait([this](const asio::error_code& ec) {
      if (!ec && !finished_) Tick();
    });
  }

  // Writes the lines the connection owes, if no write is in flight: closed loop, up to
  // --pipeline in flight; open loop, every line due.
  void Flush(Conn& c) {
    if (c.writing || c.dead) return;
    uint64_t n = plan_.open_loop
                     ? c.scheduled - c.sent
                     : static_cast<uint64_t>(plan_.echo.pipeline) - (c.sent - c.received);
    n = std::min<uint64_t>(n, c.wcap_lines);
    if (n == 0) return;
    const int64_t now = NowNs();
    const size_t size = plan_.lines->size();
    char* out = c.wbuf.get();
    for (uint64_t k = 0; k < n; ++k) {
      uint64_t seq = c.sent + k;
      plan_.lines->Write(c.id, seq, out + k * size);
      if (!plan_.open_loop) c.sent_at[seq % static_cast<uint64_t>(plan_.echo.pipeline)] = now;
    }
    c.sent += n;
    lines_sent_total_ += n;
    if (InWindow(now)) lines_sent_window_ += n;
    c.writing = true;
    asio::async_write(c.sock, asio::buffer(out, n * size),
                      [this, &c](const asio::error_code& ec, size_t) {
                        c.writing = false;
                        if (c.dead) return;
                        if (ec) {
                          SocketError(c, ec);
                          return;
                        }
                        Flush(c);
                      });
  }

  void Read(Conn& c) {
    c.sock.async_read_some(asio::buffer(c.rbuf.get(), c.rcap),
                           [this, &c](const asio::error_code& ec, size_t n) {
                             if (c.dead) return;
                             if (ec) {
                               SocketError(c, ec);
                               return;
                             }
                             if (OnData(c, n)) Read(c);
                           });
  }

  // Checks and accounts `n` bytes just read; false if the connection stopped.
  bool OnData(Conn& c, size_t n) {
    const int64_t now = NowNs();
    const bool counted = InWindow(now);
    const size_t size = plan_.lines->size();
    const char* p = c.rbuf.get();
    c.last_read_ns = now;
    uint64_t done = 0;
    while (n > 0) {
      if (c.received == c.sent) {
        Mismatch(c, now, p[0], "a byte after every line sent had come back");
        return false;
      }
      size_t k = std::min(n, size - c.recv_off);
      size_t bad = plan_.lines->Check(c.id, c.received, c.recv_off, p, k);
      if (bad != k) {
        Mismatch(c, now, p[bad], nullptr, c.recv_off + bad);
        return false;
      }
      c.recv_off += k;
      p += k;
      n -= k;
      if (c.recv_off == size) {
        if (counted) {
          latency_.Record(now - SentAt(c, c.received));
          ++units_;
        }
        ++c.received;
        c.recv_off = 0;
        ++done;
      }
    }
    if (done > 0) {
      completed_.fetch_add(done, std::memory_order_relaxed);
      if (!plan_.open_loop) Flush(c);
    }
    return true;
  }

  void Mismatch(Conn& c, int64_t now, char got, const char* what, size_t offset = 0) {
    if (now < plan_.window_end) {
      char msg[256];
      if (what != nullptr) {
        std::snprintf(msg, sizeof msg, "mismatch on connection %u: %s (0x%02x)", c.id, what,
                      static_cast<unsigned char>(got));
      } else {
        char want = plan_.lines->ByteAt(c.id, c.received, offset);
        std::snprintf(msg, sizeof msg,
                      "mismatch on connection %u, line %llu, byte %zu: expected 0x%02x, got 0x%02x",
                      c.id, static_cast<unsigned long long>(c.received), offset,
                      static_cast<unsigned char>(want), static_cast<unsigned char>(got));
      }
      AddError(kMismatch, msg);
    }
    Stop(c, now);
  }

  void SocketError(Conn& c, const asio::error_code& ec) {
    const int64_t now = NowNs();
    if (ec == asio::error::operation_aborted) return;
    if (now < plan_.window_end && !finished_) {
      bool closed = ec == asio::error::eof || ec == asio::error::connection_reset ||
                    ec == asio::error::broken_pipe;
      if (closed) {
        AddError(kClosedEarly, "connection " + std::to_string(c.id) + " closed by the server (" +
                                   ec.message() + ") before the end");
      } else {
        AddError(kIoError, "connection " + std::to_string(c.id) + ": " + ec.message());
      }
    }
    Stop(c, now);
  }

  void Stop(Conn& c, int64_t now) {
    if (c.dead) return;
    c.dead_at_ns = now;
    Close(c);
  }

  static void Close(Conn& c) {
    c.dead = true;
    asio::error_code ignored;
    c.timer.cancel();
    c.sock.close(ignored);
  }

  void AddError(int kind, const std::string& message) {
    ++errors_[kind];
    errors_seen_.fetch_add(1, std::memory_order_relaxed);
    if (first_error_.empty()) first_error_ = message;
  }

  // After the window: the end-of-run accounting, then the connections close and the loop ends.
  void Finish() {
    finished_ = true;
    timer_.cancel();
    const int64_t half_window = (plan_.window_end - plan_.window_start) / 2;
    for (auto& c : conns_) {
      in_flight_at_end_ += c->sent - c->received;
      if (c->dead_at_ns >= plan_.window_start) ++alive_at_window_start_;
      if (!c->dead && c->sent > c->received && c->last_read_ns < plan_.window_start &&
          SentAt(*c, c->received) < plan_.window_start + half_window) {
        AddError(kNoResponse, "connection " + std::to_string(c->id) +
                                  ": no echo during the whole window (the server is stuck)");
      }
      Close(*c);
    }
    work_.reset();
    io_.stop();
  }

  const Plan& plan_;
  std::latch& connected_latch_;
  asio::io_context io_{1};
  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(io_);
  asio::steady_timer timer_;  // open loop: the next line due
  std::vector<std::unique_ptr<Conn>> conns_;
  std::vector<std::unique_ptr<Conn>> failed_conns_;  // connect failed: closed, kept till the end
  std::vector<Conn*> dirty_;

  // Owned by the worker thread.
  size_t next_connect_ = 0, connecting_ = 0, connects_done_ = 0, connected_ = 0;
  bool connect_phase_over_ = false;
  bool finished_ = false;
  size_t cursor_conn_ = 0;
  uint64_t cursor_seq_ = 0;
  Histogram latency_;
  Histogram schedule_lag_;
  uint64_t units_ = 0;
  uint64_t errors_[kNumKinds] = {};
  uint64_t lines_sent_window_ = 0, lines_sent_total_ = 0, in_flight_at_end_ = 0;
  size_t alive_at_window_start_ = 0;
  std::string first_error_;

  // Written by the worker, read by the progress thread: relaxed, they are only displayed. On
  // their own cache lines so that the worker's hot writes do not bounce the controller's reads.
  alignas(64) std::atomic<uint64_t> completed_{0};
  std::atomic<uint64_t> errors_seen_{0};

  std::thread thread_;  // last: started once every member above exists
};

void RaiseNofile() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

void SleepUntilNs(int64_t t) { std::this_thread::sleep_until(ToTimePoint(t)); }

int RunEcho(const CommonOptions& common, const EchoOptions& opt) {
  const int port = common.port > 0 ? common.port : 7007;
  const std::string target = common.host + ":" + std::to_string(port);
  RaiseNofile();

  Plan plan;
  plan.echo = opt;
  plan.target = target;
  plan.connect_timeout = common.connect_timeout;
  {
    asio::io_context io;
    tcp::resolver resolver(io);
    asio::error_code ec;
    auto results = resolver.resolve(common.host, std::to_string(port), ec);
    if (ec || results.empty()) {
      std::fprintf(stderr, "greenline-load: cannot resolve %s: %s\n", common.host.c_str(),
                   ec ? ec.message().c_str() : "no address");
      return kExitFailed;
    }
    plan.endpoint = results.begin()->endpoint();
  }
  const Lines lines(static_cast<size_t>(opt.size));
  plan.lines = &lines;
  plan.open_loop = opt.rate > 0;
  if (plan.open_loop) {
    plan.period_ns = 1e9 * opt.conns / opt.rate;
    plan.phase_step_ns = 1e9 / opt.rate;
  }

  const int threads = std::min(ThreadCount(common), opt.conns);
  HardStop hard_stop(common.connect_timeout + common.warmup + common.duration + 10, "echo run");

  // Connect phase.
  std::latch connected(threads);
  std::vector<std::unique_ptr<Worker>> workers;
  for (int w = 0; w < threads; ++w) {
    std::vector<uint32_t> ids;
    for (int i = w; i < opt.conns; i += threads) ids.push_back(static_cast<uint32_t>(i));
    workers.push_back(std::make_unique<Worker>(plan, std::move(ids), connected));
  }
  for (auto& w : workers) w->PostConnect();
  connected.wait();
  size_t n_connected = 0;
  std::string first_error;
  for (auto& w : workers) {
    n_connected += w->Connected();
    if (first_error.empty()) first_error = w->FirstError();
  }
  if (n_connected == 0) {
    for (auto& w : workers) w->PostStop();
    workers.clear();
    std::fprintf(stderr, "greenline-load: %s\n", first_error.c_str());
    return kExitFailed;
  }
  if (n_connected < static_cast<size_t>(opt.conns)) {
    std::fprintf(stderr, "greenline-load: %zu of %d connections failed (%s); running with %zu\n",
                 opt.conns - n_connected, opt.conns, first_error.c_str(), n_connected);
  }

  // The timeline, fixed before the load starts (see the essay).
  plan.t0 = NowNs() + 1'000'000;
  plan.window_start = plan.t0 + static_cast<int64_t>(common.warmup * 1e9);
  plan.window_end = plan.window_start + static_cast<int64_t>(common.duration * 1e9);
  for (auto& w : workers) w->PostStart();

  uint64_t last_count = 0;
  double last_time = 0;
  Progress progress(common.quiet, [&](double seconds) {
    uint64_t count = 0, errors = 0;
    for (auto& w : workers) {
      count += w->CompletedSoFar();
      errors += w->ErrorsSoFar();
    }
    double rate = seconds > last_time ? (count - last_count) / (seconds - last_time) : 0;
    last_count = count;
    last_time = seconds;
    int64_t now = NowNs();
    const char* phase = now < plan.window_start ? "warmup"
                        : now < plan.window_end ? "measuring"
                                                : "ending";
    char buf[200];
    std::snprintf(buf, sizeof buf, "echo %5.1fs %-9s %s lines/s  %zu conns  %llu errors", seconds,
                  phase, FormatCount(rate).c_str(), n_connected,
                  static_cast<unsigned long long>(errors));
    return std::string(buf);
  });

  WindowProbe probe(common.stat_cpu, common.server_pid);
  SleepUntilNs(plan.window_start);
  probe.Start();
  SleepUntilNs(plan.window_end);
  probe.Stop();
  for (auto& w : workers) w->PostFinish();
  for (auto& w : workers) w->Join();
  progress.Stop();
  hard_stop.Cancel();

  Report report;
  report.mode = "echo";
  report.settings = {{"host", common.host},     {"port", port},
                     {"threads", threads},      {"conns", opt.conns},
                     {"size", opt.size},        {"pipeline", opt.pipeline},
                     {"rate", opt.rate},        {"duration", common.duration},
                     {"warmup", common.warmup}, {"connect_timeout", common.connect_timeout}};
  report.window_seconds = (plan.window_end - plan.window_start) / 1e9;
  report.rate_unit = "lines";
  report.probe = &probe;
  for (int k = 0; k < kNumKinds; ++k) report.errors[kKindNames[k]] = 0;
  uint64_t sent_window = 0, sent_total = 0, in_flight = 0;
  size_t alive_at_start = 0;
  Histogram lag;
  first_error.clear();
  for (auto& w : workers) {
    report.latency.Merge(w->latency());
    lag.Merge(w->schedule_lag());
    report.units += w->units();
    for (int k = 0; k < kNumKinds; ++k) report.errors[kKindNames[k]] += w->errors(k);
    sent_window += w->lines_sent_window();
    sent_total += w->lines_sent_total();
    in_flight += w->in_flight_at_end();
    alive_at_start += w->alive_at_window_start();
    if (first_error.empty()) first_error = w->FirstError();
  }
  if (alive_at_start == 0) {
    std::fprintf(stderr,
                 "greenline-load: the server closed every connection before the window opened "
                 "(%s)\n",
                 first_error.c_str());
    return kExitFailed;
  }
  report.extra = {{"conns", n_connected},
                  {"size", opt.size},
                  {"pipeline", opt.pipeline},
                  {"rate", opt.rate},
                  {"lines_sent", sent_window},
                  {"lines_sent_total", sent_total},
                  {"lines_in_flight_at_end", in_flight}};
  if (plan.open_loop) {
    report.extra["achieved_rate"] =
        report.window_seconds > 0 ? report.units / report.window_seconds : 0.0;
    report.extra["schedule_lag_p99_us"] = lag.ValueAtPercentile(99) / 1e3;
    report.extra["schedule_lag_max_us"] = lag.Max() / 1e3;
    report.extra["client_behind_schedule"] = lag.ValueAtPercentile(99) > kBehindScheduleNs;
  }
  if (!first_error.empty()) std::fprintf(stderr, "greenline-load: %s\n", first_error.c_str());
  if (plan.open_loop && lag.ValueAtPercentile(99) > kBehindScheduleNs) {
    std::fprintf(stderr,
                 "greenline-load: the client fell behind its schedule (p99 lateness %s): the run "
                 "is client-bound\n",
                 FormatNanos(static_cast<double>(lag.ValueAtPercentile(99))).c_str());
  }
  return Emit(report, common);
}

}  // namespace

void AddEchoCommand(CLI::App& app, const CommonOptions& common, int& exit_code) {
  auto opt = std::make_shared<EchoOptions>();
  CLI::App* sub = app.add_subcommand(
      "echo",
      "echo load: lines sent to an echo server (greenline's --echo-addr, default port 7007), "
      "every echoed byte checked; closed loop, or open loop with --rate");
  sub->add_option("--conns", opt->conns, "connections")
      ->check(CLI::Range(1, 10'000'000))
      ->capture_default_str();
  sub->add_option("--size", opt->size, "line length in bytes, including the LF (2 to 1048576)")
      ->check(CLI::Range(kMinSize, kMaxSize))
      ->capture_default_str();
  sub->add_option("--pipeline", opt->pipeline,
                  "closed loop: lines in flight per connection (ignored with --rate)")
      ->check(CLI::Range(1, 65536))
      ->capture_default_str();
  sub->add_option("--rate", opt->rate,
                  "open loop: lines per second in total, spread evenly over the connections, each "
                  "sent at its intended time, latency measured from it; 0: closed loop")
      ->check(CLI::Validator(
          [](const std::string& v) -> std::string {
            // A tiny rate would make a send period beyond what int64 nanoseconds hold.
            double r = -1;
            try {
              r = std::stod(v);
            } catch (const std::exception&) {
            }
            return r == 0 || (r >= 0.001 && r <= 1e9) ? "" : "0 (closed loop) or 0.001 to 1e9";
          },
          "0 or 0.001..1e9"))
      ->capture_default_str();
  sub->footer(
      "Errors: mismatch (an echoed byte differs), closed early, io error, connect failed, no "
      "response (nothing echoed during the whole window).\nThe common options (--host, --port, "
      "--duration, --json, ...) are listed by 'greenline-load --help'.");
  sub->callback([&common, &exit_code, opt] {
    // Each connection's buffers hold its whole pipeline: keep that sane (CLI11 turns the throw
    // into a usage error, exit 2).
    if (int64_t{opt->pipeline} * opt->size > kMaxPipelineBytes) {
      throw CLI::ValidationError("--pipeline x --size",
                                 "more than 64 MiB in flight per connection");
    }
    exit_code = RunEcho(common, *opt);
  });
}

}  // namespace greenline::load
