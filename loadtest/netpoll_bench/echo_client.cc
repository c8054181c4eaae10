// echo_client: the load client of the netpoller benchmark (bench.sh, README.md). One thread, plain
// epoll and non-blocking sockets, nothing of greenline's runtime: the same client drives every
// server, pinned to a CPU of its own.
//
//   netpoll_echo_client --port 7100 --conns 100 --size 64 --pipeline 1 --warmup 2 --duration 10
//                       [--stat-cpu 0] [--stat-pid PID]
//
// What it does
//   - Opens --conns connections and keeps --pipeline lines in flight on each: a line goes out as
//     soon as an echoed one has come back (closed loop), so the server sees as much load as it can
//     answer. Lines are --size bytes, the last one LF. New lines of one connection go out in one
//     write.
//   - Every echoed byte is checked: line k of connection c has a fixed content made from (c, k),
//     so the client regenerates what it expects, wherever the server split or merged its chunks. A
//     mismatch, a connection closed early, or a socket error counts as an error; any error makes
//     the exit status 1.
//   - The measured window starts after --warmup seconds and lasts --duration seconds. Only lines
//     whose echo completed inside the window count. With --stat-cpu N the client reads /proc/stat's
//     `cpuN` line itself at the window's two edges, so the CPU sample brackets exactly the lines
//     counted (a script sleeping in parallel could not align them to better than its own wake-ups).
//
// Output: one line on stdout, key=value pairs, for bench.sh:
//   lines=N seconds=S lines_per_sec=R errors=E conns=C size=B pipeline=P
//   [cpu=N clk_tck=T busy_jiffies=J idle_jiffies=I steal_jiffies=S ns_per_line=X]
//   [proc_jiffies=J proc_ns_per_line=X]
// busy = user + nice + system + irq + softirq (guest time is already inside user and nice); idle
// and iowait are idle; steal (the hypervisor ran someone else) is reported apart, not counted: it
// is not work this CPU did for the server. Diagnostics go to stderr.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "loadtest/load/proc_stat.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Flags {
  std::string host = "127.0.0.1";
  int port = 7100;
  int conns = 100;
  int size = 64;
  int pipeline = 1;
  double duration = 10;
  double warmup = 2;
  int stat_cpu = -1;
  int stat_pid = -1;
};

using greenline::load::CpuSample;
using greenline::load::ReadCpuSample;
using greenline::load::ReadProcessJiffies;

// The content of line `seq` of connection `conn`: "<seq> <conn> " in fixed-width decimal, then
// letters that also depend on seq, then LF (truncated from the left part when size is small).
void MakeLine(int conn, uint64_t seq, int size, char* out) {
  char head[32];
  int n = snprintf(head, sizeof head, "%012" PRIu64 " %06d ", seq, conn);
  for (int j = 0; j < size - 1; ++j)
    out[j] = j < n ? head[j] : static_cast<char>('A' + (seq + static_cast<uint64_t>(j)) % 26);
  out[size - 1] = '\n';
}

struct Conn {
  int fd = -1;
  int id = 0;
  uint64_t sent = 0;      // lines queued for sending (fully or partly written)
  uint64_t received = 0;  // lines echoed back and checked
  std::string out;        // bytes not yet written
  size_t out_off = 0;
  std::vector<char> partial;  // the echoed line being assembled
  bool want_out = false;      // EPOLLOUT is armed
  bool dead = false;
};

class Client {
 public:
  explicit Client(const Flags& f) : f_(f), expect_(f.size), line_(f.size) {}

  int Run();

 private:
  bool Connect(const sockaddr_storage& addr, socklen_t len);
  void Fill(Conn& c);
  void Flush(Conn& c);
  void OnReadable(Conn& c);
  void Fail(Conn& c, const std::string& why);
  void UpdateEvents(Conn& c, bool want_out);

  const Flags& f_;
  int ep_ = -1;
  std::vector<Conn> conns_;
  std::vector<char> expect_, line_;
  uint64_t total_lines_ = 0;  // lines echoed since the start
  uint64_t errors_ = 0;
  int live_ = 0;
  bool sending_ = true;  // false once the window is over: no new lines
};

void Client::Fail(Conn& c, const std::string& why) {
  if (c.dead) return;
  if (errors_ < 10) fprintf(stderr, "echo_client: conn %d: %s\n", c.id, why.c_str());
  ++errors_;
  c.dead = true;
  --live_;
  epoll_ctl(ep_, EPOLL_CTL_DEL, c.fd, nullptr);
  close(c.fd);
  c.fd = -1;
}

void Client::UpdateEvents(Conn& c, bool want_out) {
  if (c.want_out == want_out) return;
  epoll_event ev{};
  ev.events = want_out ? (EPOLLIN | EPOLLOUT) : EPOLLIN;
  ev.data.u32 = static_cast<uint32_t>(c.id);
  epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &ev);
  c.want_out = want_out;
}

// Queues new lines up to the pipeline depth and writes them.
void Client::Fill(Conn& c) {
  if (c.dead) return;
  while (sending_ && c.sent - c.received < static_cast<uint64_t>(f_.pipeline)) {
    MakeLine(c.id, c.sent++, f_.size, line_.data());
    c.out.append(line_.data(), line_.size());
  }
  Flush(c);
}

void Client::Flush(Conn& c) {
  while (c.out_off < c.out.size()) {
    ssize_t n = send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        UpdateEvents(c, true);
        return;
      }
      Fail(c, std::string("send: ") + strerror(errno));
      return;
    }
    c.out_off += static_cast<size_t>(n);
  }
  c.out.clear();
  c.out_off = 0;
  UpdateEvents(c, false);
}

void Client::OnReadable(Conn& c) {
  char buf[16384];
  for (;;) {
    ssize_t n = recv(c.fd, buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) Fail(c, std::string("recv: ") + strerror(errno));
      break;
    }
    if (n == 0) {
      Fail(c, "server closed the connection");
      break;
    }
    const char* p = buf;
    size_t left = static_cast<size_t>(n);
    while (left > 0) {
      size_t want = static_cast<size_t>(f_.size) - c.partial.size();
      size_t take = left < want ? left : want;
      c.partial.insert(c.partial.end(), p, p + take);
      p += take;
      left -= take;
      if (c.partial.size() < static_cast<size_t>(f_.size)) break;
      if (c.received >= c.sent) {
        Fail(c, "echoed a line that was never sent");
        return;
      }
      MakeLine(c.id, c.received, f_.size, expect_.data());
      if (memcmp(c.partial.data(), expect_.data(), expect_.size()) != 0) {
        Fail(c, "line " + std::to_string(c.received) + " came back different: '" +
                    std::string(c.partial.data(), c.partial.size() - 1) + "'");
        return;
      }
      c.partial.clear();
      ++c.received;
      ++total_lines_;
    }
    if (static_cast<size_t>(n) < sizeof buf) break;  // drained (saves the EAGAIN round trip)
  }
  Fill(c);
}

bool Client::Connect(const sockaddr_storage& addr, socklen_t len) {
  for (int i = 0; i < f_.conns; ++i) {
    int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, reinterpret_cast<const sockaddr*>(&addr), len) < 0) {
      fprintf(stderr, "echo_client: connect %s:%d: %s\n", f_.host.c_str(), f_.port,
              strerror(errno));
      return false;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    Conn& c = conns_[static_cast<size_t>(i)];
    c.fd = fd;
    c.id = i;
    c.partial.reserve(static_cast<size_t>(f_.size));
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = static_cast<uint32_t>(i);
    epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);
    ++live_;
  }
  return true;
}

int Client::Run() {
  addrinfo hints{}, *res = nullptr;
  hints.ai_socktype = SOCK_STREAM;
  std::string port = std::to_string(f_.port);
  if (int rc = getaddrinfo(f_.host.c_str(), port.c_str(), &hints, &res); rc != 0) {
    fprintf(stderr, "echo_client: %s: %s\n", f_.host.c_str(), gai_strerror(rc));
    return 1;
  }
  sockaddr_storage addr{};
  socklen_t addr_len = res->ai_addrlen;
  memcpy(&addr, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);

  ep_ = epoll_create1(EPOLL_CLOEXEC);
  conns_.resize(static_cast<size_t>(f_.conns));
  if (!Connect(addr, addr_len)) return 1;

  std::optional<CpuSample> cpu_start, cpu_end;
  std::optional<greenline::load::ProcessJiffies> proc_start, proc_end;
  const auto t0 = Clock::now();
  const auto window_start =
      t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(f_.warmup));
  const auto window_end = window_start + std::chrono::duration_cast<Clock::duration>(
                                             std::chrono::duration<double>(f_.duration));
  bool in_window = false;
  uint64_t lines_at_start = 0, lines_at_end = 0;
  Clock::time_point measured_start, measured_end;

  for (Conn& c : conns_) Fill(c);
  std::vector<epoll_event> events(static_cast<size_t>(f_.conns));
  for (;;) {
    const auto now = Clock::now();
    if (!in_window && now >= window_start) {
      // Both edges: the CPU sample first, then the line count and the clock, all between two
      // batches of events, so nothing is counted on one side and not the other.
      cpu_start = ReadCpuSample(f_.stat_cpu);
      proc_start = ReadProcessJiffies(f_.stat_pid);
      lines_at_start = total_lines_;
      measured_start = Clock::now();
      in_window = true;
    }
    if (in_window && now >= window_end) {
      cpu_end = ReadCpuSample(f_.stat_cpu);
      proc_end = ReadProcessJiffies(f_.stat_pid);
      lines_at_end = total_lines_;
      measured_end = Clock::now();
      break;
    }
    if (live_ == 0) break;
    const auto next_edge = in_window ? window_end : window_start;
    int timeout_ms =
        static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(next_edge - now).count());
    int n = epoll_wait(ep_, events.data(), static_cast<int>(events.size()), timeout_ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      perror("echo_client: epoll_wait");
      return 1;
    }
    for (int i = 0; i < n; ++i) {
      Conn& c = conns_[events[static_cast<size_t>(i)].data.u32];
      if (c.dead) continue;
      uint32_t ev = events[static_cast<size_t>(i)].events;
      if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) OnReadable(c);
      if (!c.dead && (ev & EPOLLOUT)) Flush(c);
    }
  }
  sending_ = false;
  for (Conn& c : conns_)
    if (!c.dead) close(c.fd);

  if (!in_window || lines_at_end == 0) {
    fprintf(stderr, "echo_client: no measured window (every connection failed?)\n");
    ++errors_;
    measured_end = measured_start = Clock::now();
  }
  if (f_.stat_pid >= 0 && (!proc_start || !proc_end)) {
    fprintf(stderr, "echo_client: cannot read /proc/%d/stat\n", f_.stat_pid);
    ++errors_;
  }
  const double seconds = std::chrono::duration<double>(measured_end - measured_start).count();
  const uint64_t lines = lines_at_end - lines_at_start;
  printf("lines=%" PRIu64 " seconds=%.3f lines_per_sec=%.0f errors=%" PRIu64
         " conns=%d size=%d pipeline=%d",
         lines, seconds, seconds > 0 ? static_cast<double>(lines) / seconds : 0.0, errors_,
         f_.conns, f_.size, f_.pipeline);
  const long tck = sysconf(_SC_CLK_TCK);
  const auto per_line = [&](uint64_t jiffies) {
    return lines > 0 ? static_cast<double>(jiffies) * (1e9 / static_cast<double>(tck)) /
                           static_cast<double>(lines)
                     : 0.0;
  };
  if (cpu_start && cpu_end) {
    const uint64_t busy = cpu_end->busy_jiffies - cpu_start->busy_jiffies;
    printf(" cpu=%d clk_tck=%ld busy_jiffies=%" PRIu64 " idle_jiffies=%" PRIu64
           " steal_jiffies=%" PRIu64 " ns_per_line=%.1f",
           f_.stat_cpu, tck, busy, cpu_end->idle_jiffies - cpu_start->idle_jiffies,
           cpu_end->steal_jiffies - cpu_start->steal_jiffies, per_line(busy));
  }
  if (proc_start && proc_end) {
    const uint64_t proc = proc_end->Total() - proc_start->Total();
    printf(" proc_jiffies=%" PRIu64 " proc_ns_per_line=%.1f", proc, per_line(proc));
  }
  printf("\n");
  return errors_ == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  CLI::App app{"Closed-loop line echo client for the netpoller benchmark (see README.md)."};
  app.add_option("--host", f.host, "server host");
  app.add_option("--port", f.port, "server port")->check(CLI::Range(1, 65535));
  app.add_option("--conns", f.conns, "connections")->check(CLI::Range(1, 1'000'000));
  app.add_option("--size", f.size, "bytes per line, the LF included")
      ->check(CLI::Range(2, 1 << 20));
  app.add_option("--pipeline", f.pipeline, "lines in flight per connection")
      ->check(CLI::Range(1, 1'000'000));
  app.add_option("--duration", f.duration, "measured seconds")->check(CLI::PositiveNumber);
  app.add_option("--warmup", f.warmup, "seconds before the measured window")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--stat-cpu", f.stat_cpu,
                 "sample /proc/stat's cpuN at the window's edges and report its busy time")
      ->check(CLI::Range(0, 4095));
  app.add_option("--stat-pid", f.stat_pid,
                 "also report this process's utime+stime over the window (a cross-check)")
      ->check(CLI::Range(1, 1 << 30));
  CLI11_PARSE(app, argc, argv);
  if (f.stat_cpu >= 0) {
    if (!ReadCpuSample(f.stat_cpu)) {
      fprintf(stderr, "echo_client: no cpu%d line in /proc/stat\n", f.stat_cpu);
      return 2;
    }
  }
  return Client(f).Run();
}
