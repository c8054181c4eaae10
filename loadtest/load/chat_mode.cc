// chat_mode.cc: greenline-load's `chat` mode, the fan-out benchmark of a chat server.
//
// What it measures. N users join R rooms (user i is nick lu<i>, in room #lr<i % R>) and each sends
// --rate messages per second; the server delivers each message to every other member of the
// sender's room. The figures are deliveries per second, the delivery latency (send to receipt),
// and correctness: every message sent must reach every other member of its room exactly once and in
// the order sent. A healthy run has zero lost, duplicated and reordered deliveries; anything else
// is an error (exit 1), not a statistic.
//
// The run, in phases (the main thread drives them, the load threads do all the I/O):
//   1. Handshake. Each user connects, reads the welcome line, sends `/nick lu<i>` and waits for
//      `* <old> is now known as lu<i>`, sends `/join lr<k>` and waits for `* lu<i> joined #lr<k>`
//      (the joiner is sent its own join line). Other `* ` lines are ignored; a `! ` line, a closed
//      connection or a refused connect ends the run (exit 3, with the line or the reason). At most
//      kHandshakesInFlight users per thread handshake at once, so a large --users does not turn
//      into a SYN flood against the listen backlog. A watchdog on the main thread ends the run if
//      no user makes a step of progress for --connect-timeout seconds: never a hang.
//   2. Barrier: no message is sent before every user has joined, so every message has a known
//      audience (room members - 1).
//   3. Sending, open loop. User j's messages are due at start + phase_j + n / rate, phase_j random
//      in [0, 1/rate): evenly spread, randomly phased. A message is sent when due whatever came
//      back, and the timestamp it carries is its *intended* send time, not the time the client got
//      round to it: a client that falls behind cannot hide the server's stall (coordinated
//      omission, as wrk2 avoids it). The text is `m <seq> <send_ns> <padding>`, --size bytes with
//      its LF.
//   4. Window: warmup, then --duration measured. Deliveries are counted, and their latency
//      recorded, when they are *received* inside the window. Sending stops at the window's end.
//   5. Drain: up to 5 s until every receiver has every message sent (warmup's included), cut
//      short after 1 s in which nothing at all arrived (a server that owes deliveries and sends
//      nothing for a second has lost them, as far as a chat benchmark is concerned; and a run
//      with a loss then ends in 1 s, not 5). Then lost = expected - received, expected = the sum
//      over messages sent of (room members - 1).
//
// Receiving. A receiver parses `[#room] lu<s>: m <seq> <send_ns> ...` in place in its read buffer
// (no allocation per line) and keeps, per sender of its room, the next sequence number it expects:
//   seq == next      in order;
//   seq  > next      a gap: seq - next are missing (counted as seen, for the progress line; the
//                    report's `lost` is the end-of-run figure, expected - received);
//   seq == next - 1  a repeat: duplicated;
//   seq  < next - 1  an old message late: reordered (a duplicate of an older message looks the
//                    same; a healthy run has neither, so the two need not be told apart).
// That is one uint32 per (receiver, sender) pair of a room: 1,000 users in one room are 1M pairs,
// 4 MB. `! ` lines during the run are errors of kind "the text" (`! too slow`, `! rate limited`),
// a connection the server closes is "closed early".
//
// Threads and ownership. ThreadCount(common) load threads, each with its own io_context
// (concurrency hint 1) and the users i with i % threads == t; a user's socket, buffers and counters
// are owned by its thread. The main thread reads only the atomics of ThreadStats (single writer,
// relaxed: they feed the progress line and the drain's "all received?" check) and, after a
// thread's `sending_done` (release/acquire), its users' sent counts. Everything else (histograms,
// error maps) is read after the threads are joined.
//
// Hot path. Each read fills a fixed buffer; complete lines are parsed where they are and the tail
// moved to the front; the clock is read once per read, not per line. Sends go straight to the
// socket with a non-blocking send(); only when the socket buffer is full is the rest queued in the
// user's pending buffer (reused, so no allocation in steady state) and flushed when writable.
// Asio recycles the memory of its per-operation handlers per thread.
//
// Rejected: a timer per user (N timer heap entries and N wake-ups where one per thread walks the
// users in phase order: the phases are sorted once, the due times are then monotonic); counting
// deliveries at send time (a delivery belongs to the window in which it arrives); async_write for
// every message (a completion handler per message, where a direct send() almost always succeeds).
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>
#include <asio.hpp>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "loadtest/load/modes.h"

namespace greenline::load {
namespace {

using Clock = std::chrono::steady_clock;
using tcp = asio::ip::tcp;

constexpr size_t kReadBuffer =
    16 * 1024;  // > the longest line a default server sends (4 KiB + prefix)
constexpr int kHandshakesInFlight = 128;  // per thread
constexpr int kMaxSendBatch = 256;        // sends per timer wake-up before reads get a turn
constexpr size_t kMaxPending = 8 << 20;   // bytes queued for one user before it is an error
constexpr double kDrainSeconds = 5;
constexpr int64_t kDrainQuietNs =
    1'000'000'000;  // the drain also ends after 1 s without a delivery

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

Clock::time_point TimeOf(int64_t ns) {
  return Clock::time_point(
      std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(ns)));
}

void SleepUntilNs(int64_t ns) { std::this_thread::sleep_until(TimeOf(ns)); }

struct ChatOptions {
  int users = 100;
  int rooms = 1;
  double rate = 1.0;
  int size = 64;
};

// Increments a counter that only its load thread writes: a plain load and store (no locked
// instruction), relaxed because readers only want a recent value.
inline void Bump(std::atomic<uint64_t>& a, uint64_t n = 1) {
  a.store(a.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

// What a load thread publishes to the main thread while running (see the essay).
struct alignas(64) ThreadStats {
  std::atomic<uint64_t> steps{0};       // handshake steps done (the watchdog's progress)
  std::atomic<uint64_t> joined{0};      // users through the handshake
  std::atomic<uint64_t> dead{0};        // connections closed (by the server or an error)
  std::atomic<uint64_t> sent{0};        // messages sent (or queued to the socket)
  std::atomic<uint64_t> received{0};    // distinct messages received (in order or after a gap)
  std::atomic<uint64_t> deliveries{0};  // of which received inside the window
  std::atomic<uint64_t> gaps{0};        // missing as seen so far
  std::atomic<uint64_t> duplicated{0};
  std::atomic<uint64_t> reordered{0};
  std::atomic<uint64_t> errors{0};        // other errors (by kind in Worker::errors)
  std::atomic<bool> sending_done{false};  // release: the users' sent counts are final
};

// Set once by the first load thread that fails the run (handshake phase); read by the main thread.
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

// The schedule of the sending phase, fixed by the main thread before it posts the start.
struct Schedule {
  int64_t send_start = 0;
  int64_t window_start = 0;
  int64_t window_end = 0;  // also the end of sending
  double period_ns = 0;
};

// One user: owned by its load thread.
struct User {
  enum class State {
    kIdle,        // not connected yet (waiting for a handshake slot)
    kConnecting,  // async_connect in flight
    kWelcome,     // connected, waiting for the welcome line
    kNick,        // sent /nick, waiting for "* <old> is now known as lu<i>"
    kJoin,        // sent /join, waiting for "* lu<i> joined #lr<k>"
    kJoined,      // in its room: counts messages
    kDead,        // closed (by the server, an error, or the end of the run)
  };

  User(asio::io_context& io, int index, int rooms, int room_members)
      : socket(io), index(index), room(index % rooms), next_seq(room_members, 0) {
    nick = "lu" + std::to_string(index);
    nick_suffix = " is now known as " + nick;
    joined_line = "* " + nick + " joined #lr" + std::to_string(room);
    buf = std::make_unique<char[]>(kReadBuffer);
  }

  tcp::socket socket;
  int index;
  int room;
  State state = State::kIdle;
  std::string nick, nick_suffix, joined_line;
  std::unique_ptr<char[]> buf;
  size_t len = 0;       // bytes in buf
  std::string pending;  // bytes not yet accepted by the socket, from pending_off
  size_t pending_off = 0;
  bool write_waiting = false;      // an async_wait(write) is in flight
  std::vector<uint32_t> next_seq;  // per sender slot (sender index / rooms) of this room
  uint64_t seq = 0;                // next sequence number to send = messages sent
  double phase_ns = 0;
};

class Worker {
 public:
  Worker(const ChatOptions& opt, tcp::endpoint endpoint, Failure& failure)
      : io_(1), timer_(io_), opt_(opt), endpoint_(endpoint), failure_(failure) {}

  void AddUser(int index, int room_members) {
    users_.push_back(std::make_unique<User>(io_, index, opt_.rooms, room_members));
  }
  void Run() {
    auto guard = asio::make_work_guard(io_);
    io_.run();
  }
  void Stop() { io_.stop(); }

  // Posted from the main thread.
  void StartHandshakes() {
    asio::post(io_, [this] {
      for (int i = 0; i < kHandshakesInFlight && next_connect_ < users_.size(); ++i) ConnectNext();
    });
  }
  void StartSending(const Schedule& s, uint64_t seed) {
    asio::post(io_, [this, s, seed] {
      schedule_ = s;
      std::mt19937_64 rng(seed);
      std::uniform_real_distribution<double> phase(0, s.period_ns);
      for (auto& u : users_) {
        u->phase_ns = phase(rng);
        order_.push_back(u.get());
      }
      std::sort(order_.begin(), order_.end(),
                [](const User* a, const User* b) { return a->phase_ns < b->phase_ns; });
      ScheduleNext();
    });
  }

  ThreadStats stats;
  Histogram latency;                       // read after the thread ends
  std::map<std::string, uint64_t> errors;  // read after the thread ends

  // After stats.sending_done (acquire): messages sent per user index.
  template <typename F>
  void ForEachSent(F f) const {
    for (const auto& u : users_) f(u->index, u->seq);
  }

 private:
  void ConnectNext() {
    User* u = users_[next_connect_++].get();
    u->state = User::State::kConnecting;
    u->socket.async_connect(endpoint_, [this, u](const asio::error_code& ec) {
      if (ec) {
        failure_.Set("cannot connect to " + endpoint_.address().to_string() + ":" +
                     std::to_string(endpoint_.port()) + ": " + ec.message());
        return;
      }
      asio::error_code ignored;
      u->socket.set_option(tcp::no_delay(true), ignored);
      u->state = User::State::kWelcome;
      Bump(stats.steps);
      StartRead(u);
    });
  }

  void StartRead(User* u) {
    u->socket.async_read_some(
        asio::buffer(u->buf.get() + u->len, kReadBuffer - u->len),
        [this, u](const asio::error_code& ec, size_t n) { OnRead(u, ec, n); });
  }

  void OnRead(User* u, const asio::error_code& ec, size_t n) {
    if (u->state == User::State::kDead) return;
    if (ec) {
      if (u->state != User::State::kJoined) {
        failure_.Set(u->nick + " (connection " + std::to_string(u->index) +
                     "): the server closed the connection during the handshake" +
                     (ec == asio::error::eof ? std::string() : ": " + ec.message()));
      }
      Kill(u, "closed early");
      return;
    }
    const int64_t now = NowNs();
    u->len += n;
    char* const base = u->buf.get();
    char* p = base;
    char* const end = base + u->len;
    while (p < end) {
      char* nl = static_cast<char*>(std::memchr(p, '\n', end - p));
      if (nl == nullptr) break;
      size_t line_len = nl - p;
      if (line_len > 0 && p[line_len - 1] == '\r') --line_len;
      HandleLine(u, std::string_view(p, line_len), now);
      if (u->state == User::State::kDead) return;
      p = nl + 1;
    }
    const size_t rest = end - p;
    if (rest == kReadBuffer) {  // no line end in a full buffer: not a server we understand
      Error("line too long");
      u->len = 0;
    } else {
      if (rest > 0 && p != base) std::memmove(base, p, rest);
      u->len = rest;
    }
    StartRead(u);
  }

  void HandleLine(User* u, std::string_view line, int64_t now) {
    switch (u->state) {
      case User::State::kJoined:
        if (!line.empty() && line[0] == '[') {
          HandleMessage(u, line, now);
        } else if (line.starts_with("* ")) {
          // notices (joins, nick changes): not ours to count
        } else if (line.starts_with("! ")) {
          Error(std::string(line));
        } else {
          Error("unexpected line");
        }
        return;
      case User::State::kWelcome:
      case User::State::kNick:
      case User::State::kJoin:
        if (line.starts_with("! ")) {
          failure_.Set(u->nick + " (connection " + std::to_string(u->index) +
                       ") got during the handshake: " + std::string(line));
          Kill(u, nullptr);
          return;
        }
        if (u->state == User::State::kWelcome && line.starts_with("* welcome")) {
          u->state = User::State::kNick;
          Bump(stats.steps);
          Send(u, "/nick " + u->nick + "\n");
        } else if (u->state == User::State::kNick && line.starts_with("* ") &&
                   line.ends_with(u->nick_suffix)) {
          u->state = User::State::kJoin;
          Bump(stats.steps);
          Send(u, "/join lr" + std::to_string(u->room) + "\n");
        } else if (u->state == User::State::kJoin && line == u->joined_line) {
          u->state = User::State::kJoined;
          Bump(stats.steps);
          Bump(stats.joined);
          if (next_connect_ < users_.size()) ConnectNext();
        }
        return;
      default:
        return;
    }
  }

  // "[#lr<k>] lu<s>: m <seq> <send_ns> <padding>"
  void HandleMessage(User* u, std::string_view line, int64_t now) {
    const size_t close = line.find("] ");
    if (close == std::string_view::npos) return Error("unexpected line");
    const char* p = line.data() + close + 2;
    const char* const end = line.data() + line.size();
    if (end - p < 2 || p[0] != 'l' || p[1] != 'u') return Error("unexpected line");
    p += 2;
    uint32_t sender = 0;
    auto r = std::from_chars(p, end, sender);
    if (r.ec != std::errc() || end - r.ptr < 4 || std::memcmp(r.ptr, ": m ", 4) != 0) {
      return Error("unexpected line");
    }
    p = r.ptr + 4;
    uint64_t seq = 0;
    r = std::from_chars(p, end, seq);
    if (r.ec != std::errc() || r.ptr == end || *r.ptr != ' ') return Error("unparsable message");
    int64_t send_ns = 0;
    r = std::from_chars(r.ptr + 1, end, send_ns);
    if (r.ec != std::errc()) return Error("unparsable message");
    if (sender >= static_cast<uint32_t>(opt_.users) ||
        static_cast<int>(sender % opt_.rooms) != u->room || static_cast<int>(sender) == u->index) {
      return Error("message from outside the room");
    }
    uint32_t& next = u->next_seq[sender / opt_.rooms];
    if (seq >= next) {
      if (seq > next) Bump(stats.gaps, seq - next);
      next = static_cast<uint32_t>(seq + 1);
      Bump(stats.received);
      if (now >= schedule_.window_start && now < schedule_.window_end) {
        Bump(stats.deliveries);
        latency.Record(now - send_ns);
      }
    } else if (seq + 1 == next) {
      Bump(stats.duplicated);
    } else {
      Bump(stats.reordered);
    }
  }

  void Error(std::string kind) {
    ++errors[std::move(kind)];
    Bump(stats.errors);
  }

  // Marks `u` closed; counts `kind` (if any) once, when the run was under way.
  void Kill(User* u, const char* kind) {
    if (u->state == User::State::kDead) return;
    if (kind != nullptr && u->state == User::State::kJoined) Error(kind);
    u->state = User::State::kDead;
    Bump(stats.dead);
    asio::error_code ignored;
    u->socket.close(ignored);
  }

  // Writes `data` now if the socket takes it, else queues it behind what is pending. False if the
  // connection is gone.
  bool Send(User* u, std::string_view data) {
    if (u->state == User::State::kDead) return false;
    if (u->pending.size() == u->pending_off) {
      ssize_t n =
          ::send(u->socket.native_handle(), data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
          Kill(u, "closed early");
          return false;
        }
        n = 0;
      }
      if (static_cast<size_t>(n) == data.size()) return true;
      data.remove_prefix(n);
      u->pending.clear();
      u->pending_off = 0;
    }
    if (u->pending.size() - u->pending_off + data.size() > kMaxPending) {
      Error("client send backlog full");
      return false;
    }
    u->pending.append(data);
    if (!u->write_waiting) {
      u->write_waiting = true;
      u->socket.async_wait(tcp::socket::wait_write,
                           [this, u](const asio::error_code& ec) { OnWritable(u, ec); });
    }
    return true;
  }

  void OnWritable(User* u, const asio::error_code& ec) {
    u->write_waiting = false;
    if (u->state == User::State::kDead) return;
    if (ec) return Kill(u, "closed early");
    ssize_t n = ::send(u->socket.native_handle(), u->pending.data() + u->pending_off,
                       u->pending.size() - u->pending_off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return Kill(u, "closed early");
      n = 0;
    }
    u->pending_off += n;
    if (u->pending_off == u->pending.size()) {
      u->pending.clear();  // keeps the capacity
      u->pending_off = 0;
      return;
    }
    u->write_waiting = true;
    u->socket.async_wait(tcp::socket::wait_write,
                         [this, u](const asio::error_code& e) { OnWritable(u, e); });
  }

  // The sending phase: order_ is the users sorted by phase; message `round` of order_[slot_] is
  // due at send_start + phase + round * period, and these times only grow along (round, slot_).
  int64_t NextDue() const {
    return schedule_.send_start +
           static_cast<int64_t>(order_[slot_]->phase_ns +
                                static_cast<double>(round_) * schedule_.period_ns);
  }

  void ScheduleNext() {
    if (order_.empty() || NextDue() >= schedule_.window_end) {
      stats.sending_done.store(true, std::memory_order_release);
      return;
    }
    timer_.expires_at(TimeOf(NextDue()));
    timer_.async_wait([this](const asio::error_code& ec) {
      if (!ec) OnTimer();
    });
  }

  void OnTimer() {
    const int64_t now = NowNs();
    for (int batch = 0; batch < kMaxSendBatch; ++batch) {
      const int64_t due = NextDue();
      if (due > now || due >= schedule_.window_end) break;
      SendMessage(order_[slot_], due);
      if (++slot_ == order_.size()) {
        slot_ = 0;
        ++round_;
      }
    }
    ScheduleNext();
  }

  // "m <seq> <intended_ns> xxx...\n", --size bytes in all when the header fits.
  void SendMessage(User* u, int64_t intended_ns) {
    if (u->state != User::State::kJoined) return;
    char* const out = line_;
    char* p = out;
    *p++ = 'm';
    *p++ = ' ';
    p = std::to_chars(p, out + sizeof(line_), u->seq).ptr;
    *p++ = ' ';
    p = std::to_chars(p, out + sizeof(line_), intended_ns).ptr;
    *p++ = ' ';
    std::string_view line;
    const size_t header = p - out;
    const size_t want = static_cast<size_t>(opt_.size);
    if (want > header + 1) {
      if (padded_.size() != want) padded_.assign(want, 'x'), padded_.back() = '\n';
      std::memcpy(padded_.data(), out, header);
      line = padded_;
    } else {
      *p++ = '\n';
      line = std::string_view(out, p - out);
    }
    if (Send(u, line)) {
      ++u->seq;
      Bump(stats.sent);
    }
  }

  asio::io_context io_;
  asio::steady_timer timer_;
  const ChatOptions& opt_;
  tcp::endpoint endpoint_;
  Failure& failure_;
  std::vector<std::unique_ptr<User>> users_;  // after io_: sockets close before it goes
  size_t next_connect_ = 0;
  Schedule schedule_;
  std::vector<User*> order_;
  size_t slot_ = 0;
  uint64_t round_ = 0;
  char line_[64];
  std::string padded_;
};

// Members of room k: users i < n with i % rooms == k.
int RoomMembers(int users, int rooms, int k) { return users / rooms + (k < users % rooms ? 1 : 0); }

// Raises RLIMIT_NOFILE's soft limit to the hard one; returns the soft limit now in force.
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

int RunChat(const ChatOptions& opt, const CommonOptions& common) {
  const int port = common.port != 0 ? common.port : 7070;
  if (opt.rooms > opt.users) {
    std::fprintf(stderr, "greenline-load chat: --rooms %d exceeds --users %d\n", opt.rooms,
                 opt.users);
    return kExitUsage;
  }
  const uint64_t nofile = RaiseNofile();
  if (nofile != 0 && nofile != RLIM_INFINITY && static_cast<uint64_t>(opt.users) + 64 > nofile) {
    std::fprintf(stderr,
                 "greenline-load chat: --users %d needs about %d descriptors but RLIMIT_NOFILE is "
                 "%llu (its hard limit); raise it or lower --users\n",
                 opt.users, opt.users + 64, static_cast<unsigned long long>(nofile));
    return kExitUsage;
  }

  tcp::endpoint endpoint;
  {
    asio::io_context io;
    tcp::resolver resolver(io);
    asio::error_code ec;
    auto results = resolver.resolve(common.host, std::to_string(port), ec);
    if (ec || results.empty()) {
      std::fprintf(stderr, "greenline-load chat: cannot resolve %s: %s\n", common.host.c_str(),
                   ec ? ec.message().c_str() : "no address");
      return kExitFailed;
    }
    endpoint = results.begin()->endpoint();
  }

  // The watchdogs below end every phase; this is the last resort should one of them be wrong.
  HardStop hard_stop(30 + 3 * common.connect_timeout + opt.users / 100.0 + common.warmup +
                         common.duration + kDrainSeconds,
                     "chat");
  const int nthreads = std::max(1, std::min(ThreadCount(common), opt.users));
  Failure failure;
  std::vector<std::unique_ptr<Worker>> workers;
  for (int t = 0; t < nthreads; ++t)
    workers.push_back(std::make_unique<Worker>(opt, endpoint, failure));
  for (int i = 0; i < opt.users; ++i) {
    workers[i % nthreads]->AddUser(i, RoomMembers(opt.users, opt.rooms, i % opt.rooms));
  }

  auto sum = [&](std::atomic<uint64_t> ThreadStats::*field) {
    uint64_t s = 0;
    for (const auto& w : workers) s += (w->stats.*field).load(std::memory_order_relaxed);
    return s;
  };

  // 0: handshake, 1: sending, 2: drain.
  std::atomic<int> phase{0};
  Progress progress(
      common.quiet,
      [&, last_t = 0.0, last_deliveries = uint64_t{0}](double t) mutable -> std::string {
        char buf[256];
        const int ph = phase.load(std::memory_order_relaxed);
        if (ph == 0) {
          std::snprintf(buf, sizeof(buf), "chat %5.1fs  joining %llu/%d", t,
                        static_cast<unsigned long long>(sum(&ThreadStats::joined)), opt.users);
          return buf;
        }
        const uint64_t d = sum(&ThreadStats::received);
        const double rate = t > last_t ? (d - last_deliveries) / (t - last_t) : 0;
        last_t = t;
        last_deliveries = d;
        std::snprintf(buf, sizeof(buf),
                      "chat %5.1fs  %s deliveries/s  sent %s  gaps %llu  dup %llu  reord %llu  "
                      "errors %llu%s",
                      t, FormatCount(rate).c_str(),
                      FormatCount(static_cast<double>(sum(&ThreadStats::sent))).c_str(),
                      static_cast<unsigned long long>(sum(&ThreadStats::gaps)),
                      static_cast<unsigned long long>(sum(&ThreadStats::duplicated)),
                      static_cast<unsigned long long>(sum(&ThreadStats::reordered)),
                      static_cast<unsigned long long>(sum(&ThreadStats::errors)),
                      ph == 2 ? "  (draining)" : "");
        return buf;
      });

  std::vector<std::thread> threads;
  for (auto& w : workers) threads.emplace_back([&w] { w->Run(); });
  auto finish = [&] {
    for (auto& w : workers) w->Stop();
    for (auto& t : threads) t.join();
    progress.Stop();
  };
  for (auto& w : workers) w->StartHandshakes();

  // Handshake, with the watchdog.
  const int64_t stall_ns = static_cast<int64_t>(common.connect_timeout * 1e9);
  uint64_t last_steps = 0;
  int64_t last_progress = NowNs();
  for (;;) {
    if (failure.failed.load(std::memory_order_acquire)) {
      finish();
      std::lock_guard<std::mutex> lock(failure.mu);
      std::fprintf(stderr, "greenline-load chat: %s\n", failure.message.c_str());
      return kExitFailed;
    }
    if (sum(&ThreadStats::joined) == static_cast<uint64_t>(opt.users)) break;
    const uint64_t steps = sum(&ThreadStats::steps);
    const int64_t now = NowNs();
    if (steps != last_steps) {
      last_steps = steps;
      last_progress = now;
    } else if (now - last_progress > stall_ns) {
      finish();
      std::fprintf(stderr,
                   "greenline-load chat: handshake stalled: %llu of %d users joined, none made "
                   "progress for %.1f s (--connect-timeout)\n",
                   static_cast<unsigned long long>(sum(&ThreadStats::joined)), opt.users,
                   common.connect_timeout);
      return kExitFailed;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }

  // Barrier passed: everyone is in a room. Fix the schedule and start sending.
  Schedule s;
  s.period_ns = 1e9 / opt.rate;
  s.send_start = NowNs() + 20'000'000;  // every thread has got the post by then
  s.window_start = s.send_start + static_cast<int64_t>(common.warmup * 1e9);
  s.window_end = s.window_start + static_cast<int64_t>(common.duration * 1e9);
  std::random_device rd;
  for (auto& w : workers) w->StartSending(s, (static_cast<uint64_t>(rd()) << 32) | rd());
  phase.store(1, std::memory_order_relaxed);

  WindowProbe probe(common.stat_cpu, common.server_pid);
  SleepUntilNs(s.window_start);
  probe.Start();
  if (sum(&ThreadStats::dead) == static_cast<uint64_t>(opt.users)) {
    finish();
    std::fprintf(stderr, "greenline-load chat: the server closed every connection\n");
    return kExitFailed;
  }
  SleepUntilNs(s.window_end);
  probe.Stop();
  phase.store(2, std::memory_order_relaxed);

  // Drain: once every thread stopped sending, the audience of every message is known.
  const int64_t drain_end = NowNs() + static_cast<int64_t>(kDrainSeconds * 1e9);
  bool all_done = false;
  while (!all_done && NowNs() < drain_end) {
    all_done = true;
    for (const auto& w : workers) {
      if (!w->stats.sending_done.load(std::memory_order_acquire)) all_done = false;
    }
    if (!all_done) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  std::vector<uint64_t> sent_by(opt.users, 0);
  uint64_t messages_sent = 0, expected = 0;
  if (all_done) {
    for (const auto& w : workers) {
      w->ForEachSent([&](int i, uint64_t n) { sent_by[i] = n; });
    }
    for (int i = 0; i < opt.users; ++i) {
      messages_sent += sent_by[i];
      expected += sent_by[i] * (RoomMembers(opt.users, opt.rooms, i % opt.rooms) - 1);
    }
    uint64_t last_received = sum(&ThreadStats::received);
    int64_t last_arrival = NowNs();
    for (;;) {
      const uint64_t received = sum(&ThreadStats::received);
      const int64_t now = NowNs();
      if (received >= expected || now >= drain_end) break;
      if (received != last_received) {
        last_received = received;
        last_arrival = now;
      } else if (now - last_arrival > kDrainQuietNs) {
        break;  // nothing is coming any more: what is missing is lost
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
  finish();

  Report report;
  report.mode = "chat";
  report.settings = {{"host", common.host},     {"port", port},
                     {"threads", nthreads},     {"users", opt.users},
                     {"rooms", opt.rooms},      {"rate", opt.rate},
                     {"size", opt.size},        {"duration", common.duration},
                     {"warmup", common.warmup}, {"connect_timeout", common.connect_timeout}};
  report.window_seconds = static_cast<double>(s.window_end - s.window_start) / 1e9;
  report.rate_unit = "deliveries";
  report.probe = &probe;
  uint64_t received = 0, duplicated = 0, reordered = 0;
  for (const auto& w : workers) {
    report.latency.Merge(w->latency);
    for (const auto& [kind, n] : w->errors) report.errors[kind] += n;
    received += w->stats.received.load();
    duplicated += w->stats.duplicated.load();
    reordered += w->stats.reordered.load();
    report.units += w->stats.deliveries.load();
  }
  if (!all_done) {
    // A load thread never finished its sending (it cannot, short of a bug): say so.
    report.errors["sending did not finish"] += 1;
    for (const auto& w : workers) {
      w->ForEachSent([&](int i, uint64_t n) { sent_by[i] = n; });
    }
    for (int i = 0; i < opt.users; ++i) messages_sent += sent_by[i];
  }
  const uint64_t lost = expected > received ? expected - received : 0;
  report.errors["lost"] += lost;
  report.errors["duplicated"] += duplicated;
  report.errors["reordered"] += reordered;
  report.extra = {{"users", opt.users},
                  {"rooms", opt.rooms},
                  {"rate", opt.rate},
                  {"messages_sent", messages_sent},
                  {"deliveries", report.units},
                  {"received", received},
                  {"expected_deliveries", expected},
                  {"lost", lost},
                  {"duplicated", duplicated},
                  {"reordered", reordered},
                  {"delivery_rate", report.window_seconds > 0
                                        ? static_cast<double>(report.units) / report.window_seconds
                                        : 0.0}};
  workers.clear();  // closes the sockets
  return Emit(report, common);
}

}  // namespace

void AddChatCommand(CLI::App& app, const CommonOptions& common, int& exit_code) {
  static ChatOptions opt;  // lives as long as the app's callbacks may run
  CLI::App* sub = app.add_subcommand(
      "chat", "chat fan-out: users in rooms send messages; every delivery is checked and timed");
  sub->add_option("--users", opt.users, "users (connections)")
      ->capture_default_str()
      ->check(CLI::Range(1, 10'000'000));
  sub->add_option("--rooms", opt.rooms, "rooms (user i joins #lr<i % rooms>)")
      ->capture_default_str()
      ->check(CLI::Range(1, 10'000'000));
  sub->add_option("--rate", opt.rate, "messages per second per user (open loop)")
      ->capture_default_str()
      ->check(CLI::Range(1e-6, 1e9));
  sub->add_option("--size", opt.size, "message line length in bytes, LF included")
      ->capture_default_str()
      ->check(CLI::Range(8, 1 << 20));
  sub->callback([&common, &exit_code] { exit_code = RunChat(opt, common); });
}

}  // namespace greenline::load
