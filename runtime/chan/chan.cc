// Channels and select: Go's chan.go and select.go, on our park/ready.
//
// A channel (ChanCore, Go's hchan) is a ring buffer of `cap` slots plus two FIFO queues of
// waiting goroutines (Waiter, Go's sudog), all under one spinlock. The element type is erased:
// ElemOps moves and destroys a T, so values are moved, never copied, and move-only types work.
//
// Send, receive and close follow chansend, chanrecv and closechan:
//   - send: closed -> RuntimeError; a receiver waiting -> move the value straight into its slot
//     and ready it (no trip through the buffer); room in the buffer -> move it there; otherwise
//     queue a Waiter pointing at the sender's value and park. A receiver that takes the value, or
//     close, readies the sender; `success` tells which.
//   - receive: closed and drained -> the zero value, ok = false; a sender waiting -> for an
//     unbuffered channel take its value directly; for a full buffer take the head and move the
//     sender's value into the freed tail slot (FIFO order is kept); values buffered -> take the
//     head; otherwise queue a Waiter pointing at the receiver's raw slot and park.
//   - close: marks the channel closed and readies every waiter: receivers with success = false
//     (they return the zero value), senders with success = false (they throw).
// Waiters are served strictly in arrival order, so values from one sender are never reordered.
//
// Invariants (under the lock): if recvq is not empty the buffer is empty; if sendq is not empty
// the buffer is full (or cap == 0); a closed channel has an empty sendq and recvq.
//
// The park protocol (sched/park.h) makes the queue-then-park sequence safe: the waiter is queued
// under the channel lock, and the lock is released by the park's commit, after the goroutine's
// registers are saved, so no other thread can ready a goroutine that is still switching out.
// Whoever completes a waiter reads waiter->g before unlocking and readies it after: the Waiter
// lives on the parked goroutine's stack, which stays put until that Ready.
//
// Select (SelectCases, Go's selectgo): cases are polled in a random order (Go's rule: when several
// are ready each is equally likely, so none starves), with every involved channel locked in
// address order (one global order: no deadlock between selects). If none is ready, the goroutine
// queues one Waiter per case, all sharing one SelectState, and parks; the commit unlocks every
// channel. A goroutine completing a select's waiter must first claim the select (CAS on
// SelectState::done, Go's selectDone); a waiter whose select is already claimed is dropped from
// the queue and skipped. The woken select relocks every channel and takes its other waiters out.
//
// Rejected: a lock-free queue per channel (Go keeps a lock too: the lock is cheap next to the
// switch, and close/select need all-or-nothing state changes); one global lock for select (Go's
// lock-order approach scales with channels).
#include <algorithm>
#include <cstdint>
#include <memory>

#include "greenline/internal/chan_core.h"
#include "greenline/runtime_error.h"
#include "runtime/base/fatal.h"
#include "runtime/sched/park.h"

namespace greenline::internal {

// ---- wait queues -------------------------------------------------------------------------------

void WaitQueue::PushBack(Waiter* w) {
  w->next = nullptr;
  w->prev = last_;
  if (last_ != nullptr) {
    last_->next = w;
  } else {
    first_ = w;
  }
  last_ = w;
  w->queued = true;
}

void WaitQueue::Remove(Waiter* w) {
  if (!w->queued) return;
  if (w->prev != nullptr) {
    w->prev->next = w->next;
  } else {
    first_ = w->next;
  }
  if (w->next != nullptr) {
    w->next->prev = w->prev;
  } else {
    last_ = w->prev;
  }
  w->next = w->prev = nullptr;
  w->queued = false;
}

Waiter* WaitQueue::PopClaimable() {
  while (Waiter* w = first_) {
    Remove(w);
    // A select's waiter: only the first case to claim the select may complete it. Relaxed is not
    // enough: the claim orders our writes to the waiter before the select's relock reads them;
    // acq_rel keeps it simple (the lock handoff orders them too).
    if (w->select != nullptr && w->select->done.exchange(true, std::memory_order_acq_rel)) continue;
    return w;
  }
  return nullptr;
}

// ---- channel lifetime --------------------------------------------------------------------------

namespace {

size_t RoundUp(size_t n, size_t to) { return (n + to - 1) / to * to; }

unsigned char* AllocBuffer(const ElemOps* ops, size_t cap) {
  if (cap == 0 || ops->size == 0) return nullptr;
  size_t stride = RoundUp(ops->size, ops->align);
  if (cap > (size_t{1} << 40) / stride) throw RuntimeError("makechan: size out of range");
  return static_cast<unsigned char*>(::operator new(cap* stride, std::align_val_t(ops->align)));
}

}  // namespace

ChanCore::ChanCore(const ElemOps* o, size_t c)
    : ops(o), cap(c), stride(RoundUp(o->size, o->align)), buf(AllocBuffer(o, c)) {}

ChanCore::~ChanCore() {
  size_t n = count.load(std::memory_order_relaxed);
  for (size_t i = 0, x = recvx; i < n; ++i, x = (x + 1) % cap) ops->destroy(Slot(x));
  if (buf != nullptr) ::operator delete(buf, std::align_val_t(ops->align));
}

std::shared_ptr<ChanCore> NewChan(const ElemOps* ops, size_t cap) {
  return std::make_shared<ChanCore>(ops, cap);
}

// ---- send, receive, close ----------------------------------------------------------------------

namespace {

G* GoroutineOrDie() {
  G* g = CurrentG();
  if (g == nullptr) {
    Fatal("runtime: blocking channel operation on a thread that is not a goroutine");
  }
  return g;
}

[[noreturn]] void BlockForever(WaitReason reason) {
  GoroutineOrDie();
  Park(reason, nullptr, nullptr);  // nothing can ready it: only the deadlock detector sees it
  Fatal("runtime: a goroutine blocked forever was readied");
}

// Completes a waiter with success; a select's waiter becomes its select's winner. Requires the
// channel lock. Returns the goroutine to ready once the lock is released.
G* Complete(Waiter* w, bool success) {
  w->success = success;
  if (w->select != nullptr) w->select->winner = w;
  return w->g;
}

// Moves the buffer's head into `dst` (raw storage). Requires count > 0.
void TakeHead(ChanCore* c, void* dst) GL_REQUIRES(c->lock) {
  void* head = c->Slot(c->recvx);
  c->ops->move_construct(dst, head);
  c->ops->destroy(head);
  if (++c->recvx == c->cap) c->recvx = 0;
}

// The parts of chansend/chanrecv that find a partner or the buffer ready, shared with select.
// Each requires c->lock and leaves it held; `*wake` gets a goroutine to ready after unlocking.

// Send of *elem when ready: to a waiting receiver, or into the buffer. False if it must wait.
bool TrySendLocked(ChanCore* c, void* elem, G** wake) GL_REQUIRES(c->lock) {
  if (Waiter* r = c->recvq.PopClaimable()) {
    c->ops->move_construct(r->elem, elem);
    *wake = Complete(r, true);
    return true;
  }
  size_t n = c->count.load(std::memory_order_relaxed);
  if (n < c->cap) {
    c->ops->move_construct(c->Slot(c->sendx), elem);
    if (++c->sendx == c->cap) c->sendx = 0;
    c->count.store(n + 1, std::memory_order_release);
    return true;
  }
  return false;
}

// Receive into `slot` when ready: from a waiting sender (directly or through the full buffer), or
// from the buffer. False if it must wait (open and empty); *ok false when closed and drained.
bool TryRecvLocked(ChanCore* c, void* slot, bool* ok, G** wake) GL_REQUIRES(c->lock) {
  if (Waiter* s = c->sendq.PopClaimable()) {
    if (c->cap == 0) {
      c->ops->move_construct(slot, s->elem);
    } else {
      // The buffer is full: its head goes to us, the sender's value to the freed tail slot.
      TakeHead(c, slot);
      c->ops->move_construct(c->Slot(c->sendx), s->elem);
      if (++c->sendx == c->cap) c->sendx = 0;
    }
    *wake = Complete(s, true);
    *ok = true;
    return true;
  }
  size_t n = c->count.load(std::memory_order_relaxed);
  if (n > 0) {
    TakeHead(c, slot);
    c->count.store(n - 1, std::memory_order_release);
    *ok = true;
    return true;
  }
  if (c->closed.load(std::memory_order_relaxed)) {
    *ok = false;
    return true;
  }
  return false;
}

void ReadyIf(G* g) {
  if (g != nullptr) Ready(g);
}

}  // namespace

bool ChanSend(ChanCore* c, void* elem, bool block) {
  if (c == nullptr) {
    if (!block) return false;
    BlockForever(WaitReason::kChanSendNilChan);
  }
  // Go's fast path: a full buffered channel that is open cannot take a non-blocking send. (Reads
  // without the lock can only be stale in the "not ready" direction that a racing caller could
  // have observed anyway.)
  if (!block && c->cap > 0 && !c->closed.load(std::memory_order_relaxed) &&
      c->count.load(std::memory_order_relaxed) == c->cap) {
    return false;
  }
  c->lock.lock();
  if (c->closed.load(std::memory_order_relaxed)) {
    c->lock.unlock();
    throw RuntimeError("send on closed channel");
  }
  G* wake = nullptr;
  if (TrySendLocked(c, elem, &wake)) {
    c->lock.unlock();
    ReadyIf(wake);
    return true;
  }
  if (!block) {
    c->lock.unlock();
    return false;
  }
  Waiter w;
  w.g = GoroutineOrDie();
  w.elem = elem;
  c->sendq.PushBack(&w);
  ParkUnlock(WaitReason::kChanSend, &c->lock);
  // Readied by a receiver (success) or by close.
  if (!w.success) throw RuntimeError("send on closed channel");
  return true;
}

RecvResult ChanRecv(ChanCore* c, void* slot, bool block) {
  if (c == nullptr) {
    if (!block) return {};
    BlockForever(WaitReason::kChanReceiveNilChan);
  }
  // Go's fast path: an open buffered channel with nothing in it has nothing for a non-blocking
  // receive. The order matters (Go's chanrecv says why): empty is read before open, with acquire
  // loads against the release stores made under the lock, so "empty, then open" means the channel
  // was open and empty when emptiness was seen, even on a weakly ordered CPU.
  if (!block && c->cap > 0 && c->count.load(std::memory_order_acquire) == 0 &&
      !c->closed.load(std::memory_order_acquire)) {
    return {};
  }
  c->lock.lock();
  G* wake = nullptr;
  bool ok = false;
  if (TryRecvLocked(c, slot, &ok, &wake)) {
    c->lock.unlock();
    ReadyIf(wake);
    return {true, ok};
  }
  if (!block) {
    c->lock.unlock();
    return {};
  }
  Waiter w;
  w.g = GoroutineOrDie();
  w.elem = slot;
  c->recvq.PushBack(&w);
  ParkUnlock(WaitReason::kChanReceive, &c->lock);
  return {true, w.success};
}

void ChanClose(ChanCore* c) {
  if (c == nullptr) throw RuntimeError("close of nil channel");
  c->lock.lock();
  if (c->closed.load(std::memory_order_relaxed)) {
    c->lock.unlock();
    throw RuntimeError("close of closed channel");
  }
  c->closed.store(true, std::memory_order_release);
  // Collect every waiter (they stay parked, so their nodes stay valid), then ready them unlocked.
  Waiter* list = nullptr;
  for (WaitQueue* q : {&c->recvq, &c->sendq}) {
    while (Waiter* w = q->PopClaimable()) {
      Complete(w, false);
      w->next = list;
      list = w;
    }
  }
  c->lock.unlock();
  while (list != nullptr) {
    Waiter* next = list->next;  // read first: the node dies once its goroutine runs
    Ready(list->g);
    list = next;
  }
}

// ---- select ------------------------------------------------------------------------------------

namespace {

// A few cases live on the stack; more go to the heap.
template <class T, int kInline = 8>
class SmallArray {
 public:
  SmallArray(const SmallArray&) = delete;
  SmallArray& operator=(const SmallArray&) = delete;
  explicit SmallArray(int n)
      : heap_(n > kInline ? std::make_unique<T[]>(static_cast<size_t>(n)) : nullptr),
        data_(heap_ ? heap_.get() : inline_) {}
  T& operator[](int i) { return data_[i]; }
  T* data() { return data_; }

 private:
  T inline_[kInline];
  std::unique_ptr<T[]> heap_;
  T* data_;
};

// The distinct channels of a select, in lock (address) order. To the analysis, one lock that
// stands for all of theirs: it cannot name a set of locks chosen at run time, so the select says,
// channel by channel, that one it touches is in the set (Holds).
class GL_CAPABILITY("mutex") LockSet {
 public:
  LockSet(ChanCore** chans, int n) : chans_(chans), n_(n) {}
  void LockAll() GL_ACQUIRE() {
    for (int i = 0; i < n_; ++i) chans_[i]->lock.lock();
  }
  void UnlockAll() GL_RELEASE() {
    for (int i = n_ - 1; i >= 0; --i) chans_[i]->lock.unlock();
  }
  // `c` is one of the set's channels, so its lock is held while the set is.
  void Holds([[maybe_unused]] const ChanCore* c) const GL_REQUIRES(this)
      GL_ASSERT_CAPABILITY(c->lock) {}

 private:
  ChanCore** chans_;
  int n_;
};

// Parks the select and gives the set back, as ParkUnlock gives back one lock: the commit unlocks
// it once the goroutine is switched out. In reverse order, so the last lock released is chans[0],
// the first one pass 3 takes again: nothing touches the select's frame after that unlock until
// the goroutine runs (Go's selparkcommit relies on the same order). Unchecked: the analysis cannot
// follow a lock handed across a switch.
void ParkUnlockAll(LockSet* locks) GL_RELEASE(*locks) GL_NO_THREAD_SAFETY_ANALYSIS {
  Park(
      WaitReason::kSelect,
      [](G*, void* arg) GL_NO_THREAD_SAFETY_ANALYSIS {
        static_cast<LockSet*>(arg)->UnlockAll();
        return true;
      },
      locks);
}

}  // namespace

int SelectCases(SelectCase* cases, int n, bool block, bool* recv_ok) {
  *recv_ok = false;
  // Poll order: a uniformly random permutation of the non-nil cases (inside-out Fisher-Yates).
  SmallArray<int> poll(n);
  int npoll = 0;
  for (int i = 0; i < n; ++i) {
    if (cases[i].c == nullptr) continue;
    int j = static_cast<int>(CheapRandN(static_cast<uint32_t>(npoll + 1)));
    poll[npoll] = poll[j];
    poll[j] = i;
    ++npoll;
  }
  if (npoll == 0) {
    if (!block) return -1;
    BlockForever(n == 0 ? WaitReason::kSelectNoCases : WaitReason::kSelect);
  }
  SmallArray<ChanCore*> chans(npoll);
  for (int k = 0; k < npoll; ++k) chans[k] = cases[poll[k]].c;
  std::sort(chans.data(), chans.data() + npoll, std::less<ChanCore*>());
  LockSet locks{chans.data(),
                static_cast<int>(std::unique(chans.data(), chans.data() + npoll) - chans.data())};

  // Everything that may allocate or fail happens before the locks are taken: nothing may throw or
  // call malloc with every channel's spinlock held.
  SmallArray<Waiter> waiters(block ? n : 0);
  G* self = block ? GoroutineOrDie() : nullptr;

  // Pass 1: the first ready case in poll order.
  locks.LockAll();
  for (int k = 0; k < npoll; ++k) {
    int i = poll[k];
    SelectCase& sc = cases[i];
    locks.Holds(sc.c);
    G* wake = nullptr;
    if (sc.send) {
      if (sc.c->closed.load(std::memory_order_relaxed)) {
        locks.UnlockAll();
        throw RuntimeError("send on closed channel");
      }
      if (!TrySendLocked(sc.c, sc.elem, &wake)) continue;
    } else {
      if (!TryRecvLocked(sc.c, sc.elem, recv_ok, &wake)) continue;
    }
    locks.UnlockAll();
    ReadyIf(wake);
    return i;
  }
  if (!block) {
    locks.UnlockAll();
    return -1;
  }

  // Pass 2: wait on every case at once.
  SelectState state;
  for (int k = 0; k < npoll; ++k) {
    int i = poll[k];
    Waiter& w = waiters[i];
    w.g = self;
    w.elem = cases[i].elem;
    w.select = &state;
    w.case_index = i;
    locks.Holds(cases[i].c);
    (cases[i].send ? cases[i].c->sendq : cases[i].c->recvq).PushBack(&w);
  }
  ParkUnlockAll(&locks);

  // Pass 3: readied by the case that claimed us; take the others out of their queues.
  locks.LockAll();
  Waiter* winner = state.winner;
  for (int k = 0; k < npoll; ++k) {
    int i = poll[k];
    if (&waiters[i] == winner) continue;
    locks.Holds(cases[i].c);
    (cases[i].send ? cases[i].c->sendq : cases[i].c->recvq).Remove(&waiters[i]);
  }
  locks.UnlockAll();
  int chosen = winner->case_index;
  if (cases[chosen].send) {
    if (!winner->success) throw RuntimeError("send on closed channel");
  } else {
    *recv_ok = winner->success;
  }
  return chosen;
}

}  // namespace greenline::internal
