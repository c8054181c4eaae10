// TCP for goroutines on the netpoller (runtime/netpoll): addresses, errors as values, sockets,
// and Go's descriptor discipline. See net.h for the contract.
//
// A Conn or Listener handle shares one NetFd. Every call takes a PollDesc reference for its
// duration (failing with ErrClosed once Close has begun), and readers (and writers) go one at a
// time through a goroutine mutex, as Go's fdMutex serialises them: the poller parks at most one
// reader and one writer per socket. Close wakes both; the descriptor is closed when the last call
// (or, with io_uring, the last operation in the kernel) lets go of it.
#include "greenline/net.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <vector>

#include "greenline/goroutine.h"
#include "greenline/log.h"
#include "greenline/mutex.h"
#include "runtime/base/os_mutex.h"
#include "runtime/netpoll/netpoll.h"

namespace greenline::net {

using greenline::internal::AcquirePollDesc;
using greenline::internal::ClosePollDesc;
using greenline::internal::CurrentNetpoll;
using greenline::internal::kErrClosing;
using greenline::internal::kErrDeadline;
using greenline::internal::Netpoll;
using greenline::internal::OrphanPollDesc;
using greenline::internal::OsMutex;
using greenline::internal::OsMutexGuard;
using greenline::internal::PollDesc;
using greenline::internal::ReleasePollDesc;

namespace internal {

struct NetFd {
  PollDesc* pd = nullptr;
  bool listener = false;
  Addr local;
  Addr remote;
  greenline::Mutex rmu;  // one reader (or accepter) at a time
  greenline::Mutex wmu;  // one writer at a time

  ~NetFd() {
    if (ClosePollDesc(pd)) ReleasePollDesc(pd);
    OrphanPollDesc(pd);
  }

  // "tcp 127.0.0.1:7007->127.0.0.1:41234" (Go's OpError Net + Source->Addr).
  std::string Detail() const {
    std::string d = "tcp ";
    if (listener) return d + local.String();
    return d + local.String() + "->" + remote.String();
  }
};

}  // namespace internal

namespace {

using internal::NetFd;

// Go's errno texts are strerror's, lower-cased.
std::string ErrnoText(int errnum) {
  std::string s = std::strerror(errnum);
  if (!s.empty()) s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
  return s;
}

Error Invalid(std::string_view op, std::string_view message) {
  return Error::Make(Error::Kind::kInvalid, op, "", message);
}

Error NotGoroutine(std::string_view op) {
  return Invalid(op, "not called from a goroutine (see greenline/net.h)");
}

// An operation's result code (a negated errno or kErr*) as an Error.
Error OpError(int code, std::string_view op, const NetFd& f) {
  if (code == kErrClosing) {
    return Error::Make(Error::Kind::kClosed, op, f.Detail(), "use of closed network connection");
  }
  if (code == kErrDeadline)
    return Error::Make(Error::Kind::kTimeout, op, f.Detail(), "i/o timeout");
  return Error::FromErrno(code, op, f.Detail());
}

Error Closed(std::string_view op, const NetFd& f) { return OpError(kErrClosing, op, f); }

// socket(2) type flags for the running backend's socket mode.
int SockFlags() {
  return SOCK_CLOEXEC | (CurrentNetpoll()->NonBlockingSockets() ? SOCK_NONBLOCK : 0);
}

Addr SockName(int fd, bool peer) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  int rc = peer ? getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len)
                : getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  if (rc != 0) return Addr();
  return Addr(reinterpret_cast<sockaddr*>(&ss), len);
}

// Splits "host:port" / "[host]:port". False on bad syntax.
bool SplitHostPort(std::string_view address, std::string* host, std::string* port) {
  if (!address.empty() && address.front() == '[') {
    size_t close = address.find(']');
    if (close == std::string_view::npos || close + 1 >= address.size() ||
        address[close + 1] != ':') {
      return false;
    }
    *host = std::string(address.substr(1, close - 1));
    *port = std::string(address.substr(close + 2));
  } else {
    size_t colon = address.rfind(':');
    if (colon == std::string_view::npos) return false;
    *host = std::string(address.substr(0, colon));
    if (host->find(':') != std::string::npos) return false;  // a bare IPv6 address needs [ ]
    *port = std::string(address.substr(colon + 1));
  }
  return !port->empty();
}

// The family a network name allows: AF_UNSPEC for "tcp". False for an unknown network.
bool NetworkFamily(std::string_view network, int* family) {
  if (network == "tcp") {
    *family = AF_UNSPEC;
  } else if (network == "tcp4") {
    *family = AF_INET;
  } else if (network == "tcp6") {
    *family = AF_INET6;
  } else {
    return false;
  }
  return true;
}

// Resolves host and port to addresses: numeric ones at once, names with getaddrinfo on the
// blocking pool. `passive`: an empty host means every local address (listen), else loopback.
Error Resolve(std::string_view op, std::string_view network, std::string_view address, bool passive,
              std::vector<Addr>* out) {
  int family = 0;
  if (!NetworkFamily(network, &family)) {
    return Error::Make(Error::Kind::kInvalid, op, std::string(network) + " " + std::string(address),
                       "unknown network " + std::string(network));
  }
  std::string host, port;
  if (!SplitHostPort(address, &host, &port)) {
    return Error::Make(Error::Kind::kResolve, op, "tcp " + std::string(address),
                       "address " + std::string(address) + ": missing port in address");
  }
  addrinfo hints{};
  hints.ai_family = family;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
  const char* h = host.empty() ? nullptr : host.c_str();
  if (h == nullptr && passive && family == AF_UNSPEC) {
    // Go's ":port" listens on IPv6 and IPv4 at once: "::" with IPV6_V6ONLY off, when the host
    // has IPv6; else 0.0.0.0.
    hints.ai_family = AF_INET6;
  }
  addrinfo* res = nullptr;
  int rc = getaddrinfo(h, port.c_str(), &hints, &res);
  if (rc == EAI_NONAME || rc == EAI_SERVICE || rc == EAI_FAMILY || rc == EAI_ADDRFAMILY) {
    if (h == nullptr && hints.ai_family == AF_INET6 && family == AF_UNSPEC) {
      hints.ai_family = AF_INET;  // no IPv6 here
      rc = getaddrinfo(h, port.c_str(), &hints, &res);
    }
  }
  if (rc == EAI_NONAME || rc == EAI_SERVICE) {
    // Not numeric: a name (or a service name). getaddrinfo may block: the blocking pool.
    hints.ai_flags &= ~(AI_NUMERICHOST | AI_NUMERICSERV);
    if (hints.ai_family == AF_INET6 && family == AF_UNSPEC) hints.ai_family = AF_UNSPEC;
    rc = greenline::Blocking([&] { return getaddrinfo(h, port.c_str(), &hints, &res); });
  }
  if (rc != 0) {
    std::string msg = rc == EAI_SYSTEM ? ErrnoText(errno) : gai_strerror(rc);
    for (auto& c : msg) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return Error::Make(Error::Kind::kResolve, op, "tcp " + std::string(address),
                       "lookup " + host + ": " + msg);
  }
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    out->emplace_back(ai->ai_addr, ai->ai_addrlen);
  }
  freeaddrinfo(res);
  if (out->empty()) {
    return Error::Make(Error::Kind::kResolve, op, "tcp " + std::string(address),
                       "no suitable address found");
  }
  return Error();
}

std::shared_ptr<NetFd> Wrap(int fd, bool listener, int* error) {
  greenline::internal::PollDesc* pd = greenline::internal::OpenPollDesc(fd, error);
  if (pd == nullptr) return nullptr;
  auto f = std::make_shared<NetFd>();
  f->pd = pd;
  f->listener = listener;
  return f;
}

// A descriptor kept open to be given up when accept fails with EMFILE, so the listener can take
// the waiting connection and close it (the client sees the connection closed at once instead of
// hanging in the backlog), the trick of libuv, nginx and Go's http servers' users.
struct Reserve {
  OsMutex mu;
  int fd GL_GUARDED_BY(mu) = -1;
};
Reserve& TheReserve() {
  static Reserve* r = new Reserve();
  return *r;
}
void EnsureReserve() {
  Reserve& r = TheReserve();
  OsMutexGuard lock(r.mu);
  if (r.fd < 0) r.fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

// Accepts and closes every connection waiting on `lfd`, using the reserve. Returns how many.
int TurnAwayWaiting(int lfd) {
  Reserve& r = TheReserve();
  OsMutexGuard lock(r.mu);
  if (r.fd >= 0) {
    close(r.fd);
    r.fd = -1;
  }
  int n = 0;
  for (;;) {
    pollfd p{lfd, POLLIN, 0};  // the listener may be in blocking mode (io_uring)
    if (poll(&p, 1, 0) != 1 || !(p.revents & POLLIN)) break;
    int c = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c < 0) break;
    close(c);
    ++n;
  }
  r.fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  return n;
}

// Close for both handle kinds: wakes blocked calls; the descriptor closes with the last reference.
Error CloseNetFd(const std::shared_ptr<NetFd>& fd, const char* invalid) {
  if (!fd) return Invalid("close", invalid);
  if (!ClosePollDesc(fd->pd)) return Closed("close", *fd);
  ReleasePollDesc(fd->pd);  // the owner's reference
  return Error();
}

template <class Fn>
auto WithRef(NetFd* f, Fn fn) -> decltype(fn()) {
  if (!AcquirePollDesc(f->pd)) return static_cast<decltype(fn())>(kErrClosing);
  auto r = fn();
  ReleasePollDesc(f->pd);
  return r;
}

}  // namespace

// ---- Error -------------------------------------------------------------------------------------

Error Error::FromErrno(int errnum, std::string_view op, std::string_view detail) {
  Kind kind = Kind::kSys;
  switch (errnum) {
    case ECONNRESET:
      kind = Kind::kReset;
      break;
    case ECONNREFUSED:
      kind = Kind::kRefused;
      break;
    case EPIPE:
      kind = Kind::kPipe;
      break;
    case EINVAL:
      kind = Kind::kInvalid;
      break;
    default:
      break;
  }
  return Make(kind, op, detail, ErrnoText(errnum), errnum);
}

Error Error::Make(Kind kind, std::string_view op, std::string_view detail, std::string_view message,
                  int errnum) {
  Error e(kind);
  e.errnum_ = errnum;
  std::string text(op);
  if (!detail.empty()) {
    text += ' ';
    text += detail;
  }
  if (!message.empty()) {
    if (!text.empty()) text += ": ";
    text += message;
  }
  e.text_ = std::make_shared<const std::string>(std::move(text));
  return e;
}

std::string Error::String() const {
  if (kind_ == Kind::kNone) return "<nil>";
  if (kind_ == Kind::kEof && text_ == nullptr) return "EOF";
  return text_ != nullptr ? *text_ : std::string("error");
}

// ---- Addr --------------------------------------------------------------------------------------

Addr::Addr(const sockaddr* sa, socklen_t len) {
  if (len > sizeof storage_) len = sizeof storage_;
  std::memcpy(&storage_, sa, len);
  len_ = len;
}

uint16_t Addr::port() const {
  if (storage_.ss_family == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
  }
  if (storage_.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
  }
  return 0;
}

std::string Addr::String() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (storage_.ss_family == AF_INET) {
    auto* sin = reinterpret_cast<const sockaddr_in*>(&storage_);
    inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof buf);
    return std::string(buf) + ":" + std::to_string(port());
  }
  if (storage_.ss_family == AF_INET6) {
    auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&storage_);
    if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
      // Go prints an IPv4 peer of a dual-stack socket as IPv4.
      inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12], buf, sizeof buf);
      return std::string(buf) + ":" + std::to_string(port());
    }
    inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof buf);
    return "[" + std::string(buf) + "]:" + std::to_string(port());
  }
  return "";
}

// ---- Conn --------------------------------------------------------------------------------------

namespace {
IoResult ReadImpl(NetFd* f, void* buf, size_t len, bool park) {
  if (f == nullptr) return {0, Invalid("read", "invalid connection")};
  if (!greenline::internal::OnGoroutine()) return {0, NotGoroutine("read")};
  if (!AcquirePollDesc(f->pd)) return {0, Closed("read", *f)};
  if (len == 0) {
    ReleasePollDesc(f->pd);
    return {0, Error()};
  }
  f->rmu.Lock();
  Netpoll* np = CurrentNetpoll();
  ssize_t n = park ? np->Read(f->pd, buf, len) : np->TryRead(f->pd, buf, len);
  f->rmu.Unlock();
  ReleasePollDesc(f->pd);
  if (n > 0) return {static_cast<size_t>(n), Error()};
  if (n == 0) return {0, Error::Eof()};
  if (n == -EAGAIN && !park) return {0, Error::WouldBlock()};
  return {0, OpError(static_cast<int>(-n), "read", *f)};
}

// A hibernating goroutine's Resume wait on a connection (ResumeWhenReadable). Its state holds the
// Conn, so `f` and its PollDesc are alive; a closed one only makes the wait return.
void HibernateUntilReadable(void* arg) {
  auto* f = static_cast<NetFd*>(arg);
  // Closed, or from an earlier runtime: the next step's read says so.
  if (!AcquirePollDesc(f->pd)) return;
  ReleasePollDesc(f->pd);
  CurrentNetpoll()->HibernateRead(f->pd);
}
}  // namespace

IoResult Conn::Read(void* buf, size_t len) const { return ReadImpl(fd_.get(), buf, len, true); }

IoResult Conn::TryRead(void* buf, size_t len) const { return ReadImpl(fd_.get(), buf, len, false); }

Resume Conn::ResumeWhenReadable() const {
  if (!fd_) return Resume{[](void*) {}, nullptr};  // the step's next read reports it
  return Resume{&HibernateUntilReadable, fd_.get()};
}

IoResult Conn::Write(const void* buf, size_t len) const {
  if (!fd_) return {0, Invalid("write", "invalid connection")};
  if (!greenline::internal::OnGoroutine()) return {0, NotGoroutine("write")};
  NetFd* f = fd_.get();
  if (!AcquirePollDesc(f->pd)) return {0, Closed("write", *f)};
  f->wmu.Lock();
  size_t written = 0;
  int rc = len == 0 ? 0 : CurrentNetpoll()->Write(f->pd, buf, len, &written);
  f->wmu.Unlock();
  ReleasePollDesc(f->pd);
  if (rc == 0) return {written, Error()};
  return {written, OpError(-rc, "write", *f)};
}

Error Conn::Close() const { return CloseNetFd(fd_, "invalid connection"); }

namespace {
Error Shutdown(const std::shared_ptr<NetFd>& fd, int how, std::string_view op) {
  if (!fd) return Invalid(op, "invalid connection");
  int rc = WithRef(fd.get(), [&] { return shutdown(fd->pd->fd, how) == 0 ? 0 : -errno; });
  if (rc == 0) return Error();
  return OpError(rc == greenline::internal::kErrClosing ? rc : -rc, op, *fd);
}

Error SetDeadlineOn(const std::shared_ptr<NetFd>& fd, net::Deadline t, char mode) {
  if (!fd) return Invalid("set deadline", "invalid connection");
  if (!AcquirePollDesc(fd->pd)) return Closed("set deadline", *fd);
  int64_t when =
      t == greenline::net::Deadline{}
          ? 0
          : std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  if (t != greenline::net::Deadline{} && when <= 0) when = 1;  // a time before the clock's epoch
  greenline::internal::SetPollDeadline(fd->pd, when, mode);
  ReleasePollDesc(fd->pd);
  return Error();
}
}  // namespace

Error Conn::CloseRead() const { return Shutdown(fd_, SHUT_RD, "close read"); }
Error Conn::CloseWrite() const { return Shutdown(fd_, SHUT_WR, "close write"); }
Error Conn::SetDeadline(net::Deadline t) const { return SetDeadlineOn(fd_, t, 'b'); }
Error Conn::SetReadDeadline(net::Deadline t) const { return SetDeadlineOn(fd_, t, 'r'); }
Error Conn::SetWriteDeadline(net::Deadline t) const { return SetDeadlineOn(fd_, t, 'w'); }
Addr Conn::LocalAddr() const { return fd_ ? fd_->local : Addr(); }
Addr Conn::RemoteAddr() const { return fd_ ? fd_->remote : Addr(); }
int Conn::Fd() const { return fd_ ? fd_->pd->fd : -1; }

// ---- Listener ----------------------------------------------------------------------------------

std::pair<Conn, Error> Listener::Accept() const {
  if (!fd_) return {Conn(), Invalid("accept", "invalid listener")};
  if (!greenline::internal::OnGoroutine()) return {Conn(), NotGoroutine("accept")};
  NetFd* f = fd_.get();
  int64_t backoff_ms = 0;
  for (;;) {
    if (!AcquirePollDesc(f->pd)) return {Conn(), Closed("accept", *f)};
    sockaddr_storage ss{};
    socklen_t sl = sizeof ss;
    f->rmu.Lock();
    int fd = CurrentNetpoll()->Accept(f->pd, reinterpret_cast<sockaddr*>(&ss), &sl);
    if (fd == -EMFILE || fd == -ENFILE) {
      // Out of descriptors: turn the waiting connections away rather than leave them hanging,
      // then back off (5 ms doubling to 1 s, as Go's http.Server) and try again. Under rmu, so
      // no other Accept here re-arms the backend's accept meanwhile: with io_uring the listener
      // is in blocking mode, and an accept4 that lost its connection to one would block.
      int turned = TurnAwayWaiting(f->pd->fd);
      f->rmu.Unlock();
      ReleasePollDesc(f->pd);
      if (backoff_ms == 0) {
        Logf(LogLevel::kWarn,
             "net: accept on %s: %s; turning connections away (%d now) and retrying",
             f->local.String().c_str(), ErrnoText(-fd).c_str(), turned);
      }
      backoff_ms = backoff_ms == 0 ? 5 : std::min<int64_t>(backoff_ms * 2, 1000);
      greenline::Sleep(std::chrono::milliseconds(backoff_ms));
      continue;
    }
    f->rmu.Unlock();
    ReleasePollDesc(f->pd);
    if (fd < 0) return {Conn(), OpError(-fd, "accept", *f)};
    if (backoff_ms != 0) {
      Logf(LogLevel::kInfo, "net: accept on %s: descriptors available again",
           f->local.String().c_str());
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int err = 0;
    auto c = Wrap(fd, false, &err);
    if (c == nullptr) {
      close(fd);
      return {Conn(), OpError(-err, "accept", *f)};
    }
    c->local = SockName(fd, false);
    c->remote = Addr(reinterpret_cast<sockaddr*>(&ss), sl);
    return {Conn(std::move(c)), Error()};
  }
}

Error Listener::Close() const { return CloseNetFd(fd_, "invalid listener"); }

Addr Listener::LocalAddr() const { return fd_ ? fd_->local : Addr(); }
int Listener::Fd() const { return fd_ ? fd_->pd->fd : -1; }

// ---- Listen, Dial ------------------------------------------------------------------------------

std::pair<Listener, Error> Listen(std::string_view network, std::string_view address,
                                  const ListenOptions& options) {
  if (CurrentNetpoll() == nullptr) return {Listener(), Invalid("listen", "no runtime running")};
  std::vector<Addr> addrs;
  if (Error e = Resolve("listen", network, address, /*passive=*/true, &addrs))
    return {Listener(), e};
  const Addr& a = addrs.front();
  std::string detail = "tcp " + std::string(address);
  int fd = socket(a.family(), SOCK_STREAM | SockFlags(), 0);
  if (fd < 0) return {Listener(), Error::FromErrno(errno, "listen", detail)};
  auto fail = [&](const char* syscall) {
    int e = errno;
    close(fd);
    Error err = Error::FromErrno(e, "listen", detail);
    return std::pair<Listener, Error>{
        Listener(),
        Error::Make(err.kind(), "listen", detail, std::string(syscall) + ": " + ErrnoText(e), e)};
  };
  int one = 1, zero = 0;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) return fail("setsockopt");
  if (options.reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
    return fail("setsockopt");
  }
  if (a.family() == AF_INET6 && network == "tcp") {
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);  // dual stack where allowed
  }
  if (bind(fd, a.sockaddr_ptr(), a.size()) != 0) return fail("bind");
  if (listen(fd, options.backlog) != 0) return fail("listen");
  EnsureReserve();
  int err = 0;
  auto f = Wrap(fd, true, &err);
  if (f == nullptr) {
    errno = -err;
    return fail("register");
  }
  f->local = SockName(fd, false);
  return {Listener(std::move(f)), Error()};
}

std::pair<Conn, Error> Dial(std::string_view network, std::string_view address,
                            net::Deadline deadline) {
  if (CurrentNetpoll() == nullptr) return {Conn(), Invalid("dial", "no runtime running")};
  if (!greenline::internal::OnGoroutine()) return {Conn(), NotGoroutine("dial")};
  std::vector<Addr> addrs;
  if (Error e = Resolve("dial", network, address, /*passive=*/false, &addrs)) return {Conn(), e};
  std::string detail = "tcp " + std::string(address);
  Error last;
  for (const Addr& a : addrs) {
    int fd = socket(a.family(), SOCK_STREAM | SockFlags(), 0);
    if (fd < 0) return {Conn(), Error::FromErrno(errno, "dial", detail)};
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int err = 0;
    auto f = Wrap(fd, false, &err);
    if (f == nullptr) {
      close(fd);
      return {Conn(), Error::FromErrno(-err, "dial", detail)};
    }
    if (deadline != net::Deadline{}) {
      if (Error e = SetDeadlineOn(f, deadline, 'w')) return {Conn(), e};
    }
    int rc = WithRef(f.get(),
                     [&] { return CurrentNetpoll()->Connect(f->pd, a.sockaddr_ptr(), a.size()); });
    if (rc == 0) {
      if (deadline != net::Deadline{}) SetDeadlineOn(f, net::Deadline{}, 'w');
      f->local = SockName(fd, false);
      f->remote = SockName(fd, true);
      if (f->remote.empty()) f->remote = a;
      return {Conn(std::move(f)), Error()};
    }
    int code = -rc;
    if (code == kErrDeadline) {
      last = Error::Make(Error::Kind::kTimeout, "dial", detail, "i/o timeout");
      break;
    }
    Error e = Error::FromErrno(code, "dial", detail);
    last = Error::Make(e.kind(), "dial", detail, "connect: " + ErrnoText(code), code);
    // f's destructor closes the socket; try the next address.
  }
  return {Conn(), last};
}

std::string PollerName() {
  auto* np = CurrentNetpoll();
  return np != nullptr ? np->name() : "";
}

std::string PollerReason() {
  auto* np = CurrentNetpoll();
  return np != nullptr ? np->Describe() : "";
}

}  // namespace greenline::net
