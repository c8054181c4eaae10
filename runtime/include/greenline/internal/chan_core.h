// The type-erased channel behind Chan<T> (Go's hchan), its waiters (Go's sudog) and the entry
// points the public templates call. Internal to runtime/chan; the algorithms and their invariants
// are in chan.cc's essay.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <new>
#include <utility>

#include "greenline/internal/spinlock.h"
#include "greenline/thread_annotations.h"

namespace greenline::internal {

struct G;

// How to move and destroy the element type: the one thing the core needs from T.
struct ElemOps {
  size_t size;
  size_t align;
  void (*move_construct)(void* dst, void* src);  // dst is raw storage; src stays a (moved-from) T
  void (*destroy)(void* p);
};

template <class T>
inline constexpr ElemOps kElemOps = {
    sizeof(T),
    alignof(T),
    [](void* dst, void* src) { ::new (dst) T(std::move(*static_cast<T*>(src))); },
    [](void* p) { static_cast<T*>(p)->~T(); },
};

struct ChanCore;
struct SelectState;

// One goroutine waiting in one channel's send or receive queue (Go's sudog). Lives on the waiting
// goroutine's stack from before it parks until it is readied (or, for a select, until the select
// has taken it out of every queue). Fields other than `g`, `select` and `case_index` are guarded
// by the lock of the channel whose queue holds it.
struct Waiter {
  G* g = nullptr;
  // Sender: the T to move from. Receiver: raw storage for a T, constructed by whoever completes
  // the operation (only when `success`).
  void* elem = nullptr;
  Waiter* next = nullptr;
  Waiter* prev = nullptr;
  SelectState* select = nullptr;  // non-null: one case of a select
  int case_index = -1;
  bool queued = false;  // in a queue now
  // Set by the goroutine that completes the wait: true when a value was exchanged, false when the
  // channel was closed.
  bool success = false;
};

// A select that parked: its cases race to complete it, and only the first to set `done` may.
struct SelectState {
  std::atomic<bool> done{false};  // Go's g.selectDone: CAS false -> true claims the select
  Waiter* winner = nullptr;       // written by the claimant before Ready (which publishes it)
};

// A FIFO of waiters, guarded by its channel's lock.
class WaitQueue {
 public:
  bool empty() const { return first_ == nullptr; }
  void PushBack(Waiter* w);
  // Takes out the first waiter that can still be completed: a select's waiter is skipped (and
  // taken out) when another case already claimed the select. Returns nullptr when none.
  Waiter* PopClaimable();
  // Takes `w` out if it is still queued.
  void Remove(Waiter* w);

 private:
  Waiter* first_ = nullptr;
  Waiter* last_ = nullptr;
};

// Go's hchan. Every field below `lock` is guarded by it, except where noted.
struct ChanCore {
  ChanCore(const ElemOps* ops, size_t cap);
  // Nobody waits on a channel being destroyed: a goroutine in Send, Recv or Select holds a Chan<T>
  // handle (Select's cases point at channels the call's own arguments keep alive).
  ~ChanCore();
  ChanCore(const ChanCore&) = delete;
  ChanCore& operator=(const ChanCore&) = delete;

  void* Slot(size_t i) { return buf + i * stride; }

  const ElemOps* const ops;
  const size_t cap;
  const size_t stride;       // ops->size rounded up to ops->align
  unsigned char* const buf;  // cap slots, nullptr when cap == 0

  SpinLock lock;
  size_t sendx GL_GUARDED_BY(lock) = 0;  // next slot to fill
  size_t recvx GL_GUARDED_BY(lock) = 0;  // next slot to drain
  // Buffered elements and the closed flag: written under lock (release), also read without it by
  // Len() (relaxed) and by the non-blocking fast paths (acquire), as Go's chanlen and `empty` do.
  std::atomic<size_t> count{0};
  std::atomic<bool> closed{false};
  WaitQueue recvq GL_GUARDED_BY(lock);
  WaitQueue sendq GL_GUARDED_BY(lock);
};

std::shared_ptr<ChanCore> NewChan(const ElemOps* ops, size_t cap);

// Sends *elem (moving from it only if the value was delivered or buffered). `c` null is a nil
// channel. Blocking: waits for room or a receiver; returns true. Non-blocking: returns false
// instead of waiting. Throws RuntimeError("send on closed channel").
bool ChanSend(ChanCore* c, void* elem, bool block);

struct RecvResult {
  bool selected = false;  // the receive happened (false only when non-blocking and not ready)
  bool ok = false;        // a value was constructed in the slot (false: closed and drained)
};
// Receives into raw storage `slot`. `c` null is a nil channel.
RecvResult ChanRecv(ChanCore* c, void* slot, bool block);

// Throws RuntimeError("close of nil channel") / ("close of closed channel").
void ChanClose(ChanCore* c);

// One case of a select: a send of *elem (moved from if chosen) or a receive into raw storage
// `elem`. `c` null is a nil channel: never ready.
struct SelectCase {
  ChanCore* c = nullptr;
  void* elem = nullptr;
  bool send = false;
};

// Go's selectgo. Returns the index of the chosen case, or -1 when `block` is false and no case is
// ready. *recv_ok tells whether a chosen receive got a value. Throws RuntimeError for a chosen
// send on a closed channel.
int SelectCases(SelectCase* cases, int n, bool block, bool* recv_ok);

}  // namespace greenline::internal
