// Chan<T>: Go's channels for goroutines, with Go's semantics, and Select over them.
//
//   auto jobs = greenline::MakeChan<Job>(64);      // make(chan Job, 64)
//   auto done = greenline::MakeChan<int>();        // make(chan int)
//   greenline::Go([=]() mutable {
//     for (Job j : jobs) handle(std::move(j));     // for j := range jobs
//     done.Send(1);
//   });
//   jobs.Send(Job{...});
//   jobs.Close();
//   done.Recv();
//
// Overview
//   - A Chan<T> is a handle, like Go's chan: copies share one channel; a default-constructed
//     handle is the nil channel. Channels are freed when the last handle goes. Operations do not
//     change the handle, so they are const: a lambda can capture a channel by value without
//     `mutable`.
//   - Unbuffered channels (MakeChan<T>() or capacity 0) are rendezvous: a send completes when a
//     receiver takes the value. Buffered channels hold up to Cap() values.
//   - Waiting senders and receivers are served in FIFO order; values from one sender arrive in
//     the order sent; nothing is lost or duplicated.
//   - Values are moved, never copied: move-only types work. T must be nothrow-move-constructible
//     (values move under the channel's lock).
//   - Close(): receivers drain what is buffered, then get the zero value with ok == false; every
//     waiting receiver wakes. A send on a closed channel (or a waiting sender when it closes),
//     closing a closed channel and closing a nil channel throw greenline::RuntimeError with Go's
//     message: Go's panics (greenline/runtime_error.h).
//   - Nil channel: Send and Recv block forever; never ready in Select; TrySend/TryRecv fail.
//
// Blocking: a goroutine waiting in Send, Recv or Select is parked with Go's wait reason ("chan
// send", "chan receive", "select", "chan send (nil chan)", ...). These are blocking-class waits:
// only another goroutine can end them, so if every goroutine waits like this the runtime reports
// the deadlock (fatal error: all goroutines are asleep - deadlock!).
//
// From where: blocking operations (Send, Recv, RecvOk, iteration, a Select without default) only
// from a goroutine (elsewhere: a fatal error). TrySend, TryRecv, Close, Len, Cap, and a Select with
// a DefaultCase from any thread.
#pragma once

#include <concepts>
#include <cstddef>
#include <iterator>
#include <memory>
#include <new>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>

#include "greenline/internal/chan_core.h"
#include "greenline/runtime_error.h"

namespace greenline {

template <class T>
class Chan;

// make(chan T, capacity).
template <class T>
Chan<T> MakeChan(size_t capacity = 0);

namespace internal {

// Raw storage for one T that a channel may construct a value into.
template <class T>
class Slot {
 public:
  Slot() = default;
  Slot(const Slot&) = delete;
  Slot& operator=(const Slot&) = delete;
  void* raw() { return storage_; }
  T* get() { return std::launder(reinterpret_cast<T*>(storage_)); }
  // Moves the constructed value out and destroys it.
  T Take() {
    T* p = get();
    T v(std::move(*p));
    p->~T();
    return v;
  }

 private:
  alignas(T) unsigned char storage_[sizeof(T)];
};

}  // namespace internal

template <class T>
class Chan {
  static_assert(std::is_nothrow_move_constructible_v<T>,
                "Chan<T> needs a T that moves without throwing (values move under a lock)");
  static_assert(std::is_object_v<T> && !std::is_const_v<T>, "Chan<T> needs a non-const object T");

 public:
  using value_type = T;

  // The nil channel.
  Chan() = default;

  // Sends `value`, waiting until a receiver takes it (unbuffered) or there is room (buffered).
  // Blocks (from a goroutine only). Throws RuntimeError("send on closed channel").
  void Send(T value) const { internal::ChanSend(core_.get(), &value, true); }

  // Sends without waiting: true if delivered or buffered. On false, `value` is left untouched
  // (a move-only value is not lost). Throws RuntimeError on a closed channel, as Go's
  // `select { case ch <- v: default: }` panics. Any thread.
  bool TrySend(T&& value) const { return internal::ChanSend(core_.get(), &value, false); }
  bool TrySend(const T& value) const {
    T copy(value);
    return internal::ChanSend(core_.get(), &copy, false);
  }

  // v := <-ch. Waits for a value; on a closed, drained channel returns T{} (Go's zero value).
  // Blocks (from a goroutine only).
  T Recv() const requires std::default_initializable<T> {
    std::optional<T> v = RecvOk();
    return v ? std::move(*v) : T{};
  }

  // v, ok := <-ch: the value, or nullopt (ok == false) once the channel is closed and drained.
  // Blocks (from a goroutine only).
  std::optional<T> RecvOk() const {
    internal::Slot<T> slot;
    internal::RecvResult r = internal::ChanRecv(core_.get(), slot.raw(), true);
    if (!r.ok) return std::nullopt;
    return std::optional<T>(slot.Take());
  }

  // A receive without waiting: the value if one was ready, else nullopt; *closed (if given) tells
  // a closed, drained channel from one that is merely empty. Any thread.
  std::optional<T> TryRecv(bool* closed = nullptr) const {
    internal::Slot<T> slot;
    internal::RecvResult r = internal::ChanRecv(core_.get(), slot.raw(), false);
    if (closed != nullptr) *closed = r.selected && !r.ok;
    if (!r.ok) return std::nullopt;
    return std::optional<T>(slot.Take());
  }

  // close(ch). Throws RuntimeError("close of closed channel" / "close of nil channel"). Any
  // thread; never blocks.
  void Close() const { internal::ChanClose(core_.get()); }

  // len(ch) and cap(ch): buffered values now (a snapshot) and the capacity; 0 for nil.
  size_t Len() const { return core_ ? core_->count.load(std::memory_order_relaxed) : 0; }
  size_t Cap() const { return core_ ? core_->cap : 0; }

  // False for the nil channel.
  explicit operator bool() const { return core_ != nullptr; }
  friend bool operator==(const Chan& a, const Chan& b) { return a.core_ == b.core_; }

  // for (T v : ch): receives until the channel is closed and drained (Go's `for v := range ch`).
  class Iterator {
   public:
    using value_type = T;
    using difference_type = std::ptrdiff_t;
    Iterator() = default;
    explicit Iterator(const Chan* ch) : ch_(ch) { ++*this; }
    // The received value, to move from: `for (T v : ch)` works for move-only T too.
    T&& operator*() { return std::move(*value_); }
    Iterator& operator++() {
      value_ = ch_->RecvOk();
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const Iterator& it, std::default_sentinel_t) { return !it.value_; }

   private:
    const Chan* ch_ = nullptr;
    std::optional<T> value_;
  };
  Iterator begin() const { return Iterator(this); }
  std::default_sentinel_t end() const { return {}; }

  // For Select and the runtime's own modules.
  internal::ChanCore* core() const { return core_.get(); }

 private:
  template <class U>
  friend Chan<U> MakeChan(size_t capacity);
  explicit Chan(std::shared_ptr<internal::ChanCore> core) : core_(std::move(core)) {}

  std::shared_ptr<internal::ChanCore> core_;
};

template <class T>
Chan<T> MakeChan(size_t capacity) {
  return Chan<T>(internal::NewChan(&internal::kElemOps<T>, capacity));
}

// ---- select ------------------------------------------------------------------------------------
//
//   int got = greenline::Select(
//       greenline::RecvCase(in, [&](Msg m, bool ok) { ... }),   // case m, ok := <-in:
//       greenline::SendCase(out, std::move(reply), [&] { ... }), // case out <- reply:
//       greenline::RecvCase(greenline::After(1s), [&] { ... }),  // case <-time.After(time.Second):
//       greenline::DefaultCase([&] { ... }));                    // default:
//
// Select waits until one case can proceed, then runs exactly that case's handler and returns its
// index (counting cases from 0 in argument order). When several are ready, one is chosen uniformly
// at random. With a DefaultCase it never waits: the default runs when no other case is ready. A
// Select with no cases (`Select()`, Go's `select {}`) blocks forever (wait reason "select (no
// cases)"); one whose channels are all nil blocks forever too ("select"). A chosen send on a
// closed channel throws RuntimeError("send on closed channel").
//
// Handlers: RecvCase takes f(T value, bool ok), f(T value) or f() (the first two need a
// default-constructible T: a closed channel hands them T{}); SendCase and DefaultCase take f(). A
// SendCase's value is moved out only if its case is chosen. Blocking (without a default) only from
// a goroutine; with a default, from any thread.
//
// Case objects refer to their channel and value without owning them: build them in the Select
// call itself, as above (temporaries such as After(1s) live until the call returns), not ahead of
// it. Go evaluates a select's channel and value expressions left to right; C++ evaluates function
// arguments in an unspecified order, so expressions with side effects belong before the call.

template <class T, class F>
class RecvCaseOf {
 public:
  RecvCaseOf(internal::ChanCore* c, F f) : c_(c), f_(std::move(f)) {}
  internal::SelectCase Describe() { return {c_, slot_.raw(), false}; }
  void Run(bool ok) {
    if constexpr (std::is_invocable_v<F&, T, bool>) {
      if (ok) {
        f_(slot_.Take(), true);
      } else {
        f_(T{}, false);
      }
    } else if constexpr (std::is_invocable_v<F&, T>) {
      if (ok) {
        f_(slot_.Take());
      } else {
        f_(T{});
      }
    } else {
      static_assert(std::is_invocable_v<F&>, "RecvCase handler: f(T, bool), f(T) or f()");
      if (ok) slot_.get()->~T();
      f_();
    }
  }

 private:
  internal::ChanCore* c_;
  F f_;
  internal::Slot<T> slot_;
};

template <class T, class F>
class SendCaseOf {
 public:
  // Sends the caller's own object (moved from only if this case is chosen).
  SendCaseOf(internal::ChanCore* c, T* value, F f) : c_(c), value_(value), f_(std::move(f)) {}
  // Sends a converted or copied value the case owns.
  SendCaseOf(internal::ChanCore* c, std::in_place_t, T owned, F f)
      : c_(c), owned_(std::move(owned)), value_(&*owned_), f_(std::move(f)) {}
  SendCaseOf(const SendCaseOf&) = delete;
  SendCaseOf& operator=(const SendCaseOf&) = delete;
  internal::SelectCase Describe() { return {c_, value_, true}; }
  void Run(bool) { f_(); }

 private:
  internal::ChanCore* c_;
  std::optional<T> owned_;
  T* value_;
  F f_;
};

template <class F>
class DefaultCaseOf {
 public:
  explicit DefaultCaseOf(F f) : f_(std::move(f)) {}
  void Run() { f_(); }

 private:
  F f_;
};

struct NoOp {
  void operator()() const {}
};

// case v, ok := <-ch:
template <class T, class F = NoOp>
RecvCaseOf<T, F> RecvCase(const Chan<T>& ch, F f = {}) {
  return RecvCaseOf<T, F>(ch.core(), std::move(f));
}

// case ch <- value: a T the caller passes (an lvalue, or std::move(x)) is sent from where it is, so
// it is moved from only if this case is chosen (as with TrySend); anything else (a const T, a
// value of another type) is copied or converted into the case first.
template <class T, class V, class F = NoOp>
SendCaseOf<T, F> SendCase(const Chan<T>& ch, V&& value, F f = {}) {
  if constexpr (std::is_same_v<std::remove_reference_t<V>, T>) {
    return SendCaseOf<T, F>(ch.core(), &value, std::move(f));
  } else {
    return SendCaseOf<T, F>(ch.core(), std::in_place, T(std::forward<V>(value)), std::move(f));
  }
}

// default:
template <class F = NoOp>
DefaultCaseOf<F> DefaultCase(F f = {}) {
  return DefaultCaseOf<F>(std::move(f));
}

namespace internal {

template <class C>
struct IsDefaultCase : std::false_type {};
template <class F>
struct IsDefaultCase<DefaultCaseOf<F>> : std::true_type {};

}  // namespace internal

template <class... Cases>
int Select(Cases&&... cases) {
  constexpr int kDefaults = (0 + ... + internal::IsDefaultCase<std::decay_t<Cases>>::value);
  static_assert(kDefaults <= 1, "Select: at most one DefaultCase");
  constexpr int kN = static_cast<int>(sizeof...(Cases)) - kDefaults;
  auto all = std::forward_as_tuple(cases...);
  internal::SelectCase described[kN > 0 ? kN : 1];
  int index_of[kN > 0 ? kN : 1];  // channel case -> argument index
  int default_index = -1;
  {
    int k = 0, arg = 0;
    auto describe = [&](auto& c) {
      if constexpr (internal::IsDefaultCase<std::decay_t<decltype(c)>>::value) {
        default_index = arg;
      } else {
        described[k] = c.Describe();
        index_of[k++] = arg;
      }
      ++arg;
    };
    std::apply([&](auto&... c) { (describe(c), ...); }, all);
  }
  bool ok = false;
  int chosen = internal::SelectCases(described, kN, kDefaults == 0, &ok);
  int arg_chosen = chosen < 0 ? default_index : index_of[chosen];
  int arg = 0;
  auto run = [&](auto& c) {
    if (arg++ != arg_chosen) return;
    if constexpr (internal::IsDefaultCase<std::decay_t<decltype(c)>>::value) {
      c.Run();
    } else {
      c.Run(ok);
    }
  };
  std::apply([&](auto&... c) { (run(c), ...); }, all);
  return arg_chosen;
}

}  // namespace greenline
