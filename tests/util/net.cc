#include "tests/util/net.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <linux/io_uring.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "greenline/goroutine.h"
#include "tests/util/child_process.h"

namespace greenline::testing {

namespace {

// -errno of io_uring_setup(1), or 0 if a ring could be set up (and was closed again).
int ProbeIoUringSetup() {
  io_uring_params params{};
  long fd = syscall(__NR_io_uring_setup, 1, &params);
  if (fd < 0) return -errno;
  close(static_cast<int>(fd));
  return 0;
}

uint64_t Mix(uint64_t x) {  // splitmix64's finaliser
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

// Stream `seed`'s 8 bytes at [8 * index, 8 * index + 8).
uint64_t PatternWord(uint64_t seed, uint64_t index) {
  return Mix((seed * 0x9e3779b97f4a7c15ULL) ^ index);
}

}  // namespace

std::string UringUnavailableReason() {
#ifndef GREENLINE_TEST_HAVE_URING
  return "this build has no liburing (epoll only)";
#else
  if (UnderQemu()) return "qemu-user answers io_uring_setup with ENOSYS";
  int err = ProbeIoUringSetup();
  if (err == 0) return "";
  return std::string("io_uring_setup failed: ") + std::strerror(-err) +
         (err == -ENOSYS  ? " (no io_uring in this kernel)"
          : err == -EPERM ? " (seccomp or kernel.io_uring_disabled)"
                          : "");
#endif
}

bool KernelHasIoUring() { return !UnderQemu() && ProbeIoUringSetup() != -ENOSYS; }

const char* PollerNameOf(PollerKind kind) {
  return kind == PollerKind::kIoUring ? "io_uring" : kind == PollerKind::kEpoll ? "epoll" : "";
}

std::string PollerParamName(const ::testing::TestParamInfo<PollerKind>& info) {
  return info.param == PollerKind::kIoUring ? "IoUring"
         : info.param == PollerKind::kEpoll ? "Epoll"
                                            : "Auto";
}

rlim_t RaiseNofileToHard() {
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  return rl.rlim_cur;
}

int CountOpenFds() {
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) return -1;
  int n = 0;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(d);
  return n - 1;  // the directory's own descriptor
}

std::string DescribeOpenFds() {
  std::string out;
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    char target[256] = {};
    std::string path = std::string("/proc/self/fd/") + e->d_name;
    ssize_t n = readlink(path.c_str(), target, sizeof target - 1);
    out += std::string(e->d_name) + " -> " + (n > 0 ? std::string(target, n) : "?") + "\n";
  }
  closedir(d);
  return out;
}

bool HostHasIpv6Loopback() {
  int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in6 sa{};
  sa.sin6_family = AF_INET6;
  sa.sin6_addr = in6addr_loopback;
  bool ok = bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
  close(fd);
  return ok;
}

uint16_t UnusedLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sa;
  uint16_t port = 0;
  if (fd >= 0 && bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) == 0) {
    port = ntohs(sa.sin_port);
  }
  if (fd >= 0) close(fd);
  return port;
}

void FillPattern(uint64_t seed, uint64_t offset, void* buf, size_t len) {
  auto* p = static_cast<uint8_t*>(buf);
  for (size_t i = 0; i < len;) {
    uint64_t pos = offset + i;
    uint64_t word = PatternWord(seed, pos / 8);
    for (uint64_t b = pos % 8; b < 8 && i < len; ++b, ++i)
      p[i] = static_cast<uint8_t>(word >> (8 * b));
  }
}

size_t PatternMismatch(uint64_t seed, uint64_t offset, const void* buf, size_t len) {
  const auto* p = static_cast<const uint8_t*>(buf);
  for (size_t i = 0; i < len;) {
    uint64_t pos = offset + i;
    uint64_t word = PatternWord(seed, pos / 8);
    for (uint64_t b = pos % 8; b < 8 && i < len; ++b, ++i) {
      if (p[i] != static_cast<uint8_t>(word >> (8 * b))) return i;
    }
  }
  return len;
}

bool ReadFull(const net::Conn& conn, void* buf, size_t len, net::Error* err) {
  auto* p = static_cast<char*>(buf);
  size_t got = 0;
  while (got < len) {
    net::IoResult r = conn.Read(p + got, len - got);
    got += r.n;
    if (r.err && got < len) {
      if (err != nullptr) *err = r.err;
      return false;
    }
  }
  return true;
}

void EchoConn(const net::Conn& conn, bool yield) {
  char buf[4096];
  for (;;) {
    net::IoResult r = conn.Read(buf, sizeof buf);
    if (yield) Yield();
    if (r.n > 0 && conn.Write(buf, r.n).err) break;
    if (r.err) break;
  }
  conn.Close();
}

void GoEchoServer(const net::Listener& ln, WaitGroup& done, bool yield) {
  done.Add(1);
  Go([ln, &done, yield] {
    for (;;) {
      // Not a structured binding: clang 14 (the TSan build) cannot capture one in a lambda.
      std::pair<net::Conn, net::Error> accepted = ln.Accept();
      const net::Conn& conn = accepted.first;
      const net::Error& err = accepted.second;
      if (err) {
        EXPECT_TRUE(err.closed()) << "accept: " << err.String();
        break;
      }
      done.Add(1);
      Go([conn, &done, yield] {
        EchoConn(conn, yield);
        done.Done();
      });
      Yield();  // a burst of connections would keep this goroutine running for milliseconds
    }
    done.Done();
  });
}

ConnPair MakeConnPair(std::string_view address) {
  std::pair<net::Listener, net::Error> listened = net::Listen("tcp", address);
  const net::Listener& ln = listened.first;
  if (listened.second) {
    ADD_FAILURE() << "listen " << address << ": " << listened.second.String();
    return {};
  }
  ConnPair pair;
  net::Error accept_err;
  WaitGroup accepted;
  accepted.Add(1);
  Go([&, ln] {
    std::tie(pair.server, accept_err) = ln.Accept();
    accepted.Done();
  });
  auto [client, dial_err] = net::Dial("tcp", ln.LocalAddr().String());
  if (dial_err) {
    ADD_FAILURE() << "dial " << ln.LocalAddr().String() << ": " << dial_err.String();
    ln.Close();  // ends the Accept
  }
  accepted.Wait();
  ln.Close();
  if (accept_err && !dial_err) ADD_FAILURE() << "accept: " << accept_err.String();
  if (dial_err || accept_err) return {};
  pair.client = client;
  return pair;
}

net::Addr AddrV4(const char* ip) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(40000);
  EXPECT_EQ(inet_pton(AF_INET, ip, &sa.sin_addr), 1) << ip;
  return net::Addr(reinterpret_cast<const sockaddr*>(&sa), sizeof sa);
}

net::Addr AddrV6(const char* ip) {
  sockaddr_in6 sa{};
  sa.sin6_family = AF_INET6;
  sa.sin6_port = htons(40000);
  EXPECT_EQ(inet_pton(AF_INET6, ip, &sa.sin6_addr), 1) << ip;
  return net::Addr(reinterpret_cast<const sockaddr*>(&sa), sizeof sa);
}

}  // namespace greenline::testing
