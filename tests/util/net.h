// Helpers for the network tests (tests/net/): whether this kernel and build can run the io_uring
// poller, the descriptor limit, byte streams that show loss and reordering, reading exactly n
// bytes, connected pairs, and an echo server goroutine.
#pragma once

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "greenline/net.h"
#include "greenline/runtime.h"
#include "greenline/wait_group.h"

namespace greenline::testing {

// Why the io_uring poller cannot run here, or "" if it can: a build without liburing, qemu-user,
// or a raw io_uring_setup probe failing (ENOSYS: no io_uring; EPERM: seccomp or
// kernel.io_uring_disabled).
std::string UringUnavailableReason();

// False only when io_uring_setup does not exist (ENOSYS) or runs under qemu-user.
bool KernelHasIoUring();

// What net::PollerName() reports for a forced backend.
const char* PollerNameOf(PollerKind kind);

// Test-name suffix for a PollerKind parameter: "Epoll", "IoUring".
std::string PollerParamName(const ::testing::TestParamInfo<PollerKind>& info);

// An address from its text, port 40000: a peer for handlers tested without a socket. Fails the
// test when `ip` does not parse.
net::Addr AddrV4(const char* ip);
net::Addr AddrV6(const char* ip);

// Raises the soft RLIMIT_NOFILE to the hard limit; returns the soft limit now.
rlim_t RaiseNofileToHard();

// Descriptors open in this process now (/proc/self/fd), and a listing of them for messages.
int CountOpenFds();
std::string DescribeOpenFds();

// True when a TCP socket can be bound to [::1].
bool HostHasIpv6Loopback();

// A free TCP port on 127.0.0.1 (bound and released with raw sockets: nothing listens on it).
uint16_t UnusedLoopbackPort();

// Stream `seed`'s bytes [offset, offset + len): neither periodic on small powers of two nor the
// same across seeds, so lost, duplicated, reordered or crossed bytes show.
void FillPattern(uint64_t seed, uint64_t offset, void* buf, size_t len);
// Index of the first byte of `buf` that is not stream `seed`'s byte at offset + index; len if none.
size_t PatternMismatch(uint64_t seed, uint64_t offset, const void* buf, size_t len);

// Reads exactly `len` bytes. False if a read failed first (*err says why; EOF if the stream ended).
bool ReadFull(const net::Conn& conn, void* buf, size_t len, net::Error* err = nullptr);

// Writes back everything it reads until EOF or an error, then closes the connection. With
// `yield`, yields between each read and its write (so the goroutine migrates between workers).
void EchoConn(const net::Conn& conn, bool yield = false);

// Starts a goroutine accepting on `ln` until it is closed, echoing each connection (EchoConn) on a
// goroutine of its own. `done` is Add()ed for each of these goroutines and Done() as each ends:
// Close the listener and the clients, then Wait on it, before the runtime stops. Accept errors
// other than closed() fail the test.
void GoEchoServer(const net::Listener& ln, WaitGroup& done, bool yield = false);

struct ConnPair {
  net::Conn client;  // dialed
  net::Conn server;  // accepted
};
// Listens on `address`, dials it, accepts, and closes the listener. From a goroutine; on failure
// it adds a test failure and returns invalid handles.
ConnPair MakeConnPair(std::string_view address = "127.0.0.1:0");

}  // namespace greenline::testing
