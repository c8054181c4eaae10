// TCP for goroutines: Go's net package, on the runtime's netpoller (io_uring, or epoll).
//
//   auto [ln, err] = greenline::net::Listen("tcp", "0.0.0.0:7007");
//   if (err) return Fail(err.String());
//   for (;;) {
//     auto [conn, aerr] = ln.Accept();                 // parks this goroutine, not the thread
//     if (aerr) { if (aerr.closed()) break; continue; }
//     greenline::Go([conn] {                            // a goroutine per connection
//       char buf[4096];
//       for (;;) {
//         auto [n, rerr] = conn.Read(buf, sizeof buf);  // parks in "IO wait"
//         if (n > 0 && conn.Write(buf, n).err) break;  // writes all of it, or fails
//         if (rerr) break;                              // EOF, reset, closed, timeout
//       }
//       conn.Close();
//     });
//   }
//
// Overview
//   - Every call that waits parks the calling goroutine with wait reason "IO wait", a running-class
//     wait (runtime/HACKING.md): an idle server is never reported as deadlocked. The worker thread
//     runs other goroutines meanwhile.
//   - Conn and Listener are handles: copies share one socket, and any goroutine may use them at
//     the same time (one reader and one writer at once, as in Go; concurrent readers are allowed
//     and served one after the other). Close() from any goroutine wakes a blocked Read, Write or
//     Accept with a closed() error. The socket is closed when Close() is called, or when the last
//     handle goes away. A handle kept past the Run() that opened it is closed for the runtimes
//     that follow: every call but Close fails with closed().
//   - Errors are values (`if (err)` means Go's `err != nil`): EOF, "use of closed network
//     connection", timeout (a deadline passed), connection reset, refused, and other errnos are
//     told apart by the predicates below. String() prints them as Go does:
//     "read tcp 127.0.0.1:7007->127.0.0.1:41234: connection reset by peer".
//   - Deadlines as Go's SetReadDeadline/SetWriteDeadline: an absolute time on the steady clock;
//     a call waiting past it returns a timeout() error, and so does every later call until the
//     deadline is moved. The zero time_point means no deadline. A deadline may be set from any
//     goroutine, also while a call waits.
//   - Names: "tcp", "tcp4", "tcp6". Addresses "host:port" or "[v6]:port"; an empty host listens on
//     every address (IPv6 and IPv4 where the system allows). Names that need a DNS lookup are
//     resolved with getaddrinfo on the blocking pool (greenline/goroutine.h: Blocking), so a
//     slow resolver stalls only the calling goroutine.
//   - Sockets: SO_REUSEADDR on listeners, TCP_NODELAY on connections (Go's defaults),
//     close-on-exec; non-blocking under epoll, blocking under io_uring (the kernel waits there).
//     The descriptor limit is raised to the hard limit when the runtime starts.
//
// From where: from goroutines. (From a plain thread every call fails with an error saying so.)
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "greenline/goroutine.h"

namespace greenline::net {

namespace internal {
struct NetFd;
}

// A point on the steady clock (CLOCK_MONOTONIC); the zero value means "no deadline".
using Deadline = std::chrono::steady_clock::time_point;

// An error value; empty (false) means success.
class Error {
 public:
  enum class Kind : uint8_t {
    kNone,
    kEof,         // the peer closed its side: Go's io.EOF
    kClosed,      // the call raced with or followed Close(): net.ErrClosed
    kTimeout,     // a deadline passed: os.ErrDeadlineExceeded ("i/o timeout")
    kReset,       // ECONNRESET
    kRefused,     // ECONNREFUSED
    kPipe,        // EPIPE: writing after the peer closed
    kResolve,     // an address could not be parsed or resolved
    kInvalid,     // a bad argument (network name, address syntax), or not called from a goroutine
    kSys,         // any other errno (errnum())
    kWouldBlock,  // TryRead only: nothing to read yet (EAGAIN)
  };

  Error() = default;
  // From an errno value (the kind is derived: ECONNRESET is kReset, ...). `op` is Go's Op ("read",
  // "write", "accept", "dial", "listen", "close"), `detail` the address part, may be empty.
  static Error FromErrno(int errnum, std::string_view op, std::string_view detail = {});
  static Error Make(Kind kind, std::string_view op, std::string_view detail = {},
                    std::string_view message = {}, int errnum = 0);
  static Error Eof() { return Error(Kind::kEof); }
  static Error WouldBlock() { return Error(Kind::kWouldBlock); }

  explicit operator bool() const { return kind_ != Kind::kNone; }
  Kind kind() const { return kind_; }
  bool eof() const { return kind_ == Kind::kEof; }
  bool closed() const { return kind_ == Kind::kClosed; }
  bool timeout() const { return kind_ == Kind::kTimeout; }
  bool reset() const { return kind_ == Kind::kReset; }
  bool would_block() const { return kind_ == Kind::kWouldBlock; }
  int errnum() const { return errnum_; }  // the errno behind it, 0 if none
  // Go's text: "EOF", or "op tcp local->remote: message".
  std::string String() const;

 private:
  explicit Error(Kind kind) : kind_(kind) {}
  Kind kind_ = Kind::kNone;
  int errnum_ = 0;
  std::shared_ptr<const std::string> text_;  // set only for errors that carry op and address
};

// A socket address (IPv4 or IPv6).
class Addr {
 public:
  Addr() = default;
  Addr(const sockaddr* sa, socklen_t len);
  // "127.0.0.1:7007", "[::1]:7007"; "" for an empty address.
  std::string String() const;
  int family() const { return storage_.ss_family; }
  uint16_t port() const;
  bool empty() const { return len_ == 0; }
  const sockaddr* sockaddr_ptr() const { return reinterpret_cast<const sockaddr*>(&storage_); }
  socklen_t size() const { return len_; }

 private:
  sockaddr_storage storage_{};
  socklen_t len_ = 0;
};

// What Read and Write return: bytes moved and the error that stopped them (Go's (n, err)).
struct IoResult {
  size_t n = 0;
  Error err;
};

// A TCP connection.
class Conn {
 public:
  Conn() = default;  // an invalid handle: every call returns a kInvalid error
  bool valid() const { return fd_ != nullptr; }

  // Reads up to `len` bytes into `buf`; parks until at least one byte, EOF, an error or the read
  // deadline. n > 0 and an error may come together only as Go's do (never with EOF here: a read
  // that got bytes returns them, and the next one reports EOF).
  IoResult Read(void* buf, size_t len) const;
  // Read() that does not wait for the socket: a would_block() error where Read() would wait for
  // data. (Under io_uring with every provided buffer in use, the read goes into `buf` in the
  // kernel and parks as Read() does, the stack kept: rare, and over once buffers are back.)
  IoResult TryRead(void* buf, size_t len) const;
  // For a goroutine started with GoHibernating: what a step returns, after TryRead() said
  // would_block(), to wait for this connection without a stack. The next step runs once a read
  // may not park (data, EOF, an error, Close, the read deadline), possibly at once. The Conn must
  // stay alive until then: keep it in the goroutine's state. One reader at a time, as for Read().
  Resume ResumeWhenReadable() const;
  // Writes all `len` bytes, parking as the socket's buffer fills (partial writes are completed);
  // n < len only with an error (reset, closed, timeout: n bytes did go out).
  IoResult Write(const void* buf, size_t len) const;
  IoResult Write(std::string_view s) const { return Write(s.data(), s.size()); }

  // Closes the connection: blocked and later calls fail with closed(). The descriptor is released
  // once calls still inside the kernel have returned. Closing twice is an error (closed()).
  Error Close() const;
  // shutdown(SHUT_RD) / shutdown(SHUT_WR): half-close (CloseWrite sends FIN; the peer reads EOF).
  Error CloseRead() const;
  Error CloseWrite() const;

  Error SetDeadline(Deadline t) const;  // both
  Error SetReadDeadline(Deadline t) const;
  Error SetWriteDeadline(Deadline t) const;

  Addr LocalAddr() const;
  Addr RemoteAddr() const;
  // The descriptor, for setsockopt and the like (not for reading or writing around the poller).
  int Fd() const;

  explicit Conn(std::shared_ptr<internal::NetFd> fd) : fd_(std::move(fd)) {}

 private:
  std::shared_ptr<internal::NetFd> fd_;
};

// A listening TCP socket.
class Listener {
 public:
  Listener() = default;
  bool valid() const { return fd_ != nullptr; }

  // Waits for and returns the next connection. When the process runs out of descriptors
  // (EMFILE/ENFILE) it does not fail or spin: it backs off (5 ms doubling to 1 s, as Go's
  // http.Server), turns the connection away politely with a reserved descriptor, logs once per
  // episode, and goes on when descriptors free up. Other errors are returned.
  std::pair<Conn, Error> Accept() const;
  // Stops listening: a blocked Accept returns a closed() error.
  Error Close() const;
  Addr LocalAddr() const;
  int Fd() const;

  explicit Listener(std::shared_ptr<internal::NetFd> fd) : fd_(std::move(fd)) {}

 private:
  std::shared_ptr<internal::NetFd> fd_;
};

// Options for Listen beyond Go's defaults.
struct ListenOptions {
  int backlog = 4096;  // clipped by net.core.somaxconn
  bool reuse_port = false;
};

// net.Listen: "tcp", "tcp4" or "tcp6"; "host:port" (":0" picks a free port).
std::pair<Listener, Error> Listen(std::string_view network, std::string_view address,
                                  const ListenOptions& options = {});
// net.Dial: connects, parking until connected, refused, or the deadline (zero: none, but the
// kernel's SYN retries still end it).
std::pair<Conn, Error> Dial(std::string_view network, std::string_view address,
                            Deadline deadline = {});

// Which poller the running runtime uses ("io_uring" or "epoll") and why it was chosen, as logged at
// start-up. Empty when no runtime runs.
std::string PollerName();
std::string PollerReason();

}  // namespace greenline::net
