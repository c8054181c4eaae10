// uring_echo: the floor for the netpoller benchmark (loadtest/netpoll_bench/README.md). A raw,
// single-threaded io_uring TCP echo server in C: no fibers, no scheduler, no allocation per
// message. Whatever greenline spends per echoed line above this is the price of its runtime.
//
//   uring_echo [--port N] [--buffers N] [--buffer-size BYTES]
//
// Prints "uring_echo: listening on port N (...)" once listening, and exits 0 on SIGINT/SIGTERM.
//
// Design
//   - One ring, one thread. A multishot accept on the listener; per connection one multishot recv
//     that takes its buffers from one provided-buffer ring (group kBufferGroup). The buffer ring is
//     allocated with posix_memalign and registered with io_uring_register_buf_ring (liburing 2.3
//     has no io_uring_setup_buf_ring).
//   - Echo without a copy: a received chunk is sent straight from its provided buffer, and the
//     buffer goes back to the ring when its send has completed. Buffers are recycled in a batch per
//     pass over the CQ (one release store of the ring's tail).
//   - At most one send in flight per connection, and chunks wait in a per-connection FIFO threaded
//     through the buffers themselves (next_[bid]): two sends in flight on one stream socket could
//     complete out of order when the first one has to wait for socket space. A partial send
//     resubmits the rest of the same buffer.
//   - Multishot requests end with a CQE without IORING_CQE_F_MORE (the ring ran out of buffers:
//     -ENOBUFS; CQ overflow; an error). The accept is re-armed at once. A recv that ended with
//     -ENOBUFS waits on a stalled list until sends return buffers (re-arming at once would spin on
//     ENOBUFS while every buffer sits in a send queue); one that ended with data is re-armed at
//     once; one that ended with EOF or an error closes the connection.
//   - A connection is closed only when nothing of it is in the kernel (no recv armed, no send in
//     flight), so a descriptor number is never reused while a CQE for its old connection may still
//     come: user_data is just (op << 32 | fd). An error on a send shuts the socket down, which ends
//     the armed recv with EOF, and the close follows.
//   - IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN when the kernel takes them (6.1+):
//     completions run only when we wait for them, with no task-work interrupts in between. Else a
//     plain ring. TCP_NODELAY on accepted sockets, as greenline (and Go) set it.
//
// Rejected: a copy into a per-send buffer (one memcpy per chunk that greenline's Read/Write path
// does not pay either: both sides copy once into and once out of the kernel); registered files
// and IORING_SETUP_SQPOLL (a second busy CPU, not a floor for a one-worker runtime).
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum {
  kBufferGroup = 1,
  kRingEntries = 4096,
  kCqEntries = 16384,
};

enum Op { kOpAccept = 1, kOpRecv = 2, kOpSend = 3 };

// One connection, indexed by its descriptor. Owned by the one thread.
struct Conn {
  bool open;
  bool recv_armed;    // a multishot recv is in the kernel
  bool send_busy;     // a send is in the kernel (for the head of the queue)
  bool closing;       // EOF or an error: close once nothing below holds the descriptor
  bool stalled;       // on the stalled list (its recv ended with ENOBUFS): stays open till woken
  int head, tail;     // FIFO of buffer ids to send, -1 when empty (linked through next_)
  uint32_t head_off;  // bytes of the head buffer already sent
  int next_stalled;   // stalled list link (a descriptor), -1 at the end
};

static struct io_uring ring_;
static struct io_uring_buf_ring* buf_ring_;
static char* buf_base_;
static unsigned buf_count_ = 1024;
static unsigned buf_size_ = 4096;
static int* next_;          // per buffer id: the next buffer in its connection's send FIFO, or -1
static uint32_t* len_;      // per buffer id: bytes received into it
static unsigned recycled_;  // buffers added to the ring since the last tail advance
static struct Conn* conns_;
static int conns_cap_;
static int stalled_head_ = -1;
static int listen_fd_ = -1;
static volatile sig_atomic_t stop_;

static void OnSignal(int sig) {
  (void)sig;
  stop_ = 1;
}

static void Die(const char* what, int err) {
  fprintf(stderr, "uring_echo: %s: %s\n", what, strerror(err));
  exit(1);
}

static struct io_uring_sqe* GetSqe(void) {
  struct io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  if (sqe == NULL) {
    // The SQ is full: hand it to the kernel and try again.
    int ret = io_uring_submit(&ring_);
    if (ret < 0) Die("io_uring_submit", -ret);
    sqe = io_uring_get_sqe(&ring_);
    if (sqe == NULL) Die("io_uring_get_sqe", EBUSY);
  }
  return sqe;
}

static uint64_t UserData(enum Op op, int fd) { return ((uint64_t)op << 32) | (uint32_t)fd; }

static struct Conn* ConnFor(int fd) {
  if (fd >= conns_cap_) {
    int cap = conns_cap_ ? conns_cap_ : 1024;
    while (cap <= fd) cap *= 2;
    struct Conn* grown = realloc(conns_, sizeof(*conns_) * (size_t)cap);
    if (grown == NULL) Die("realloc", ENOMEM);
    memset(grown + conns_cap_, 0, sizeof(*grown) * (size_t)(cap - conns_cap_));
    conns_ = grown;
    conns_cap_ = cap;
  }
  return &conns_[fd];
}

static void ArmAccept(void) {
  struct io_uring_sqe* sqe = GetSqe();
  io_uring_prep_multishot_accept(sqe, listen_fd_, NULL, NULL, SOCK_CLOEXEC);
  io_uring_sqe_set_data64(sqe, UserData(kOpAccept, listen_fd_));
}

static void ArmRecv(int fd) {
  struct io_uring_sqe* sqe = GetSqe();
  io_uring_prep_recv_multishot(sqe, fd, NULL, 0, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = kBufferGroup;
  io_uring_sqe_set_data64(sqe, UserData(kOpRecv, fd));
  conns_[fd].recv_armed = true;
}

static void SubmitSend(int fd) {
  struct Conn* c = &conns_[fd];
  int bid = c->head;
  struct io_uring_sqe* sqe = GetSqe();
  io_uring_prep_send(sqe, fd, buf_base_ + (size_t)bid * buf_size_ + c->head_off,
                     len_[bid] - c->head_off, MSG_NOSIGNAL);
  io_uring_sqe_set_data64(sqe, UserData(kOpSend, fd));
  c->send_busy = true;
}

// Gives buffer `bid` back to the kernel; made visible by the tail advance after the CQ pass.
static void Recycle(int bid) {
  io_uring_buf_ring_add(buf_ring_, buf_base_ + (size_t)bid * buf_size_, buf_size_,
                        (unsigned short)bid, io_uring_buf_ring_mask(buf_count_), (int)recycled_);
  recycled_++;
}

static void MaybeClose(int fd) {
  struct Conn* c = &conns_[fd];
  if (!c->closing || c->recv_armed || c->send_busy || c->stalled) return;
  while (c->head >= 0) {  // chunks that will never be sent
    int bid = c->head;
    c->head = next_[bid];
    Recycle(bid);
  }
  close(fd);
  c->open = false;
}

static void StartClosing(int fd, bool shut) {
  struct Conn* c = &conns_[fd];
  if (!c->closing && shut) shutdown(fd, SHUT_RDWR);  // ends the armed recv with EOF
  c->closing = true;
  MaybeClose(fd);
}

static void OnAccept(const struct io_uring_cqe* cqe) {
  if (!(cqe->flags & IORING_CQE_F_MORE) && !stop_) ArmAccept();
  if (cqe->res < 0) {
    if (cqe->res != -ECANCELED) fprintf(stderr, "uring_echo: accept: %s\n", strerror(-cqe->res));
    return;
  }
  int fd = cqe->res;
  struct Conn* c = ConnFor(fd);
  memset(c, 0, sizeof(*c));
  c->open = true;
  c->head = c->tail = -1;
  c->next_stalled = -1;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  ArmRecv(fd);
}

static void OnRecv(int fd, const struct io_uring_cqe* cqe) {
  struct Conn* c = &conns_[fd];
  bool more = (cqe->flags & IORING_CQE_F_MORE) != 0;
  if (!more) c->recv_armed = false;
  if (cqe->res > 0) {
    int bid = (int)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
    len_[bid] = (uint32_t)cqe->res;
    next_[bid] = -1;
    if (c->closing) {
      Recycle(bid);
    } else {
      if (c->tail >= 0) {
        next_[c->tail] = bid;
      } else {
        c->head = bid;
        c->head_off = 0;
      }
      c->tail = bid;
      if (!c->send_busy) SubmitSend(fd);
    }
    if (!more && !c->closing) ArmRecv(fd);
  } else if (cqe->res == -ENOBUFS && !c->closing) {
    if (!c->stalled) {
      c->stalled = true;
      c->next_stalled = stalled_head_;
      stalled_head_ = fd;
    }
  } else if (!more) {  // EOF, an error, or cancelled
    StartClosing(fd, false);
  }
  MaybeClose(fd);
}

static void OnSend(int fd, const struct io_uring_cqe* cqe) {
  struct Conn* c = &conns_[fd];
  c->send_busy = false;
  if (cqe->res < 0) {
    StartClosing(fd, true);
    return;
  }
  int bid = c->head;
  c->head_off += (uint32_t)cqe->res;
  if (c->head_off < len_[bid]) {  // partial: send the rest of the same buffer
    SubmitSend(fd);
    return;
  }
  c->head = next_[bid];
  c->head_off = 0;
  if (c->head < 0) c->tail = -1;
  Recycle(bid);
  if (c->head >= 0 && !c->closing) SubmitSend(fd);
  MaybeClose(fd);
}

// After buffers came back: re-arm the receives that ran out of them.
static void WakeStalled(void) {
  int fd = stalled_head_;
  stalled_head_ = -1;
  while (fd >= 0) {
    struct Conn* c = &conns_[fd];
    int next = c->next_stalled;
    c->stalled = false;
    c->next_stalled = -1;
    if (c->closing) {
      MaybeClose(fd);  // a send failed while it waited here
    } else if (!c->recv_armed) {
      ArmRecv(fd);
    }
    fd = next;
  }
}

static void SetupRing(void) {
  struct io_uring_params p;
  memset(&p, 0, sizeof p);
  p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
  p.cq_entries = kCqEntries;
  int ret = io_uring_queue_init_params(kRingEntries, &ring_, &p);
  const char* mode = "SINGLE_ISSUER|DEFER_TASKRUN";
  if (ret == -EINVAL) {  // kernels before 6.1
    memset(&p, 0, sizeof p);
    p.flags = IORING_SETUP_CQSIZE;
    p.cq_entries = kCqEntries;
    ret = io_uring_queue_init_params(kRingEntries, &ring_, &p);
    mode = "plain";
  }
  if (ret < 0) Die("io_uring_queue_init_params", -ret);
  fprintf(stderr, "uring_echo: ring set up (%s)\n", mode);

  size_t ring_bytes = sizeof(struct io_uring_buf) * buf_count_;
  void* mem = NULL;
  if (posix_memalign(&mem, 4096, ring_bytes) != 0) Die("posix_memalign", ENOMEM);
  memset(mem, 0, ring_bytes);
  buf_ring_ = mem;
  struct io_uring_buf_reg reg;
  memset(&reg, 0, sizeof reg);
  reg.ring_addr = (unsigned long)(uintptr_t)buf_ring_;
  reg.ring_entries = buf_count_;
  reg.bgid = kBufferGroup;
  ret = io_uring_register_buf_ring(&ring_, &reg, 0);
  if (ret < 0) Die("io_uring_register_buf_ring (needs Linux 5.19)", -ret);
  io_uring_buf_ring_init(buf_ring_);

  buf_base_ = malloc((size_t)buf_count_ * buf_size_);
  next_ = malloc(sizeof(*next_) * buf_count_);
  len_ = malloc(sizeof(*len_) * buf_count_);
  if (buf_base_ == NULL || next_ == NULL || len_ == NULL) Die("malloc", ENOMEM);
  for (unsigned i = 0; i < buf_count_; i++) Recycle((int)i);
  io_uring_buf_ring_advance(buf_ring_, (int)recycled_);
  recycled_ = 0;
}

static int Listen(int port) {
  int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int family = AF_INET6;
  if (fd < 0) {
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    family = AF_INET;
  }
  if (fd < 0) Die("socket", errno);
  int one = 1, zero = 0;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  int ret;
  if (family == AF_INET6) {  // dual-stack, as greenline's Listen("tcp", ":port")
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    struct sockaddr_in6 a;
    memset(&a, 0, sizeof a);
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_any;
    a.sin6_port = htons((uint16_t)port);
    ret = bind(fd, (struct sockaddr*)&a, sizeof a);
  } else {
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    a.sin_port = htons((uint16_t)port);
    ret = bind(fd, (struct sockaddr*)&a, sizeof a);
  }
  if (ret < 0) Die("bind", errno);
  if (listen(fd, 4096) < 0) Die("listen", errno);
  return fd;
}

static int BoundPort(int fd) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  getsockname(fd, (struct sockaddr*)&ss, &len);
  if (ss.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6*)&ss)->sin6_port);
  return ntohs(((struct sockaddr_in*)&ss)->sin_port);
}

static void Usage(FILE* out) {
  fprintf(out,
          "usage: uring_echo [--port N] [--buffers N] [--buffer-size BYTES]\n"
          "  --port N           TCP port (default 7100; 0 picks a free one)\n"
          "  --buffers N        provided buffers, a power of two <= 32768 (default 1024)\n"
          "  --buffer-size B    bytes per buffer (default 4096)\n");
}

static long ParseNumber(const char* flag, const char* s, long lo, long hi) {
  char* end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno != 0 || *s == '\0' || *end != '\0' || v < lo || v > hi) {
    fprintf(stderr, "uring_echo: %s: want a number in [%ld, %ld], got '%s'\n", flag, lo, hi, s);
    exit(2);
  }
  return v;
}

int main(int argc, char** argv) {
  int port = 7100;
  static const struct option kOptions[] = {
      {"port", required_argument, NULL, 'p'},
      {"buffers", required_argument, NULL, 'n'},
      {"buffer-size", required_argument, NULL, 's'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  int opt;
  while ((opt = getopt_long(argc, argv, "p:n:s:h", kOptions, NULL)) != -1) {
    switch (opt) {
      case 'p':
        port = (int)ParseNumber("--port", optarg, 0, 65535);
        break;
      case 'n':
        buf_count_ = (unsigned)ParseNumber("--buffers", optarg, 1, 32768);
        if ((buf_count_ & (buf_count_ - 1)) != 0) {
          fprintf(stderr, "uring_echo: --buffers must be a power of two\n");
          return 2;
        }
        break;
      case 's':
        buf_size_ = (unsigned)ParseNumber("--buffer-size", optarg, 1, 1 << 20);
        break;
      case 'h':
        Usage(stdout);
        return 0;
      default:
        Usage(stderr);
        return 2;
    }
  }
  if (optind != argc) {
    Usage(stderr);
    return 2;
  }

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = OnSignal;  // no SA_RESTART: the wait returns -EINTR
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  SetupRing();
  listen_fd_ = Listen(port);
  printf("uring_echo: listening on port %d (buffers %u x %u bytes)\n", BoundPort(listen_fd_),
         buf_count_, buf_size_);
  fflush(stdout);
  ArmAccept();

  while (!stop_) {
    int ret = io_uring_submit_and_wait(&ring_, 1);
    if (ret < 0 && ret != -EINTR && ret != -ETIME) Die("io_uring_submit_and_wait", -ret);
    struct io_uring_cqe* cqe;
    unsigned head, seen = 0;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      uint64_t data = io_uring_cqe_get_data64(cqe);
      int fd = (int)(uint32_t)data;
      switch ((enum Op)(data >> 32)) {
        case kOpAccept:
          OnAccept(cqe);
          break;
        case kOpRecv:
          OnRecv(fd, cqe);
          break;
        case kOpSend:
          OnSend(fd, cqe);
          break;
      }
      seen++;
    }
    io_uring_cq_advance(&ring_, seen);
    if (recycled_ > 0) {
      io_uring_buf_ring_advance(buf_ring_, (int)recycled_);
      recycled_ = 0;
      if (stalled_head_ >= 0) WakeStalled();
    }
  }

  // Exit: the kernel cancels whatever is still armed when the ring goes away.
  for (int fd = 0; fd < conns_cap_; fd++)
    if (conns_[fd].open) close(fd);
  close(listen_fd_);
  io_uring_queue_exit(&ring_);
  fprintf(stderr, "uring_echo: stopped\n");
  return 0;
}
