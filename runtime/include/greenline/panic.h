// defer, panic and recover: Go's semantics on C++ exceptions.
//
//   int Handle(Conn& c) {
//     return greenline::Frame([&](greenline::Defer& defer) {   // a Go function's body
//       defer([&] { c.Close(); });                             // defer c.Close()
//       defer([&] {                                            // defer func() {
//         if (greenline::PanicValue v = greenline::Recover()) {  //   if r := recover(); r != nil {
//           LogError("handler panicked: %s", v.String().c_str());
//         }
//       });
//       return Serve(c);
//     });
//   }
//
// Overview
//   - Frame(body) is the function boundary Go's defer and recover need: body(defer) runs, then the
//     calls deferred on `defer` run, last first, whether body returned or panicked. Frame returns
//     what body returned; after a recovered panic it returns R{} (Go's zero results), so R must be
//     default-constructible for a frame that may recover (or void). Frame<R>(body(defer, result))
//     is Go's named result: deferred calls may set what the frame returns, after a recover too.
//   - defer(f) defers f(): what f captures is its arguments, so [=] captures values now (Go's
//     `defer f(x)` evaluates x at the defer statement) and [&] refers to variables as they are
//     when f runs. defer.Call(f, args...) copies args now, exactly like Go's `defer f(args)`.
//     No allocation for the first few deferred calls of a frame (Go's open-coded defers).
//     Unlike Go's closures, a [&] capture does not keep a variable alive: deferred calls run
//     after body has returned, so they must not refer to body's own locals by reference. Declare
//     what they share outside the body (as in the example: `c` is the caller's), or capture by
//     value.
//   - Panic(v) panics with any value: a string, a number, a std::exception, an error-like object
//     (an Error() or String() method), any type. Unwinding runs every frame's deferred calls,
//     innermost first. A C++ exception thrown by anything else is a panic too, with the
//     exception as its value; so are the runtime's own (RuntimeError: "send on closed channel").
//   - Recover(), called by a deferred call while a panic unwinds its frame, stops the panic and
//     returns its value; the frame then returns normally. Anywhere else it returns an empty
//     PanicValue (Go's nil): outside a panic, during normal return, and in functions the
//     deferred call calls (Go: "recover was not called directly by a deferred function").
//     Deviation: a helper the compiler inlines into the deferred lambda counts as the deferred
//     call itself (frames are told apart by frame pointer); mark such helpers noinline.
//   - A panic raised by a deferred call while another unwinds replaces it; both show in the
//     report, as Go prints them ("panic: first [recovered]" when the first was recovered,
//     "\tpanic: second" for the one that replaced it).
//   - Goexit() runs every deferred call of the goroutine and ends it; Recover() returns nothing
//     during a Goexit, and nothing can stop it. On the main goroutine it ends main: the program
//     exits (Go instead waits for the other goroutines; see HACKING.md).
//   - An unrecovered panic ends the program as Go's does: "panic: <value>" (with any earlier
//     panics of the chain), "goroutine N [running]:" and the backtrace of where it was raised
//     (for exceptions not raised by Panic: where the goroutine's outermost frame caught it), exit
//     status 2.
//   - Deferred calls may block (channels, Sleep, I/O) while a panic unwinds, and the goroutine may
//     resume on another worker: the exception state moves with it (sched/scheduler.cc).
//
// C++ forces one shape: deferred calls are not destructors (a panic inside a destructor during
// unwinding would be std::terminate). Frame catches the panic, runs its deferred calls itself,
// each guarded, and rethrows unless one recovered.
//
// From where: anywhere, goroutine or plain thread (a plain thread keeps its own panic state).
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <new>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "greenline/goroutine.h"

namespace greenline {

namespace internal {

// A panic value of some type, and how Go would print it.
struct PanicBox {
  virtual ~PanicBox() = default;
  virtual const std::type_info& type() const = 0;
  virtual const void* get() const = 0;
  virtual std::string Format() const = 0;
};

std::string DemangledName(const std::type_info& type);
std::string FormatException(const std::exception_ptr& e);

template <class T>
concept HasError = requires(const T& v) {
  { v.Error() } -> std::convertible_to<std::string>;
};
template <class T>
concept HasString = requires(const T& v) {
  { v.String() } -> std::convertible_to<std::string>;
};
template <class T>
concept Streamable = requires(std::ostream& os, const T& v) {
  os << v;
};

// Go's printpanicval, for C++ types: text as it is, numbers and bools as Go prints them,
// exceptions by what(), Error() then String() methods, else "(Type) value" or "(Type) address".
template <class T>
std::string FormatPanicValue(const T& v) {
  if constexpr (std::is_same_v<T, std::exception_ptr>) {
    return FormatException(v);
  } else if constexpr (std::is_same_v<T, bool>) {
    return v ? "true" : "false";
  } else if constexpr (std::is_convertible_v<const T&, std::string_view>) {
    return std::string(std::string_view(v));
  } else if constexpr (std::is_arithmetic_v<T>) {
    std::ostringstream os;
    os << +v;
    return os.str();
  } else if constexpr (std::is_base_of_v<std::exception, T>) {
    return v.what();
  } else if constexpr (HasError<T>) {
    return std::string(v.Error());
  } else if constexpr (HasString<T>) {
    return std::string(v.String());
  } else if constexpr (Streamable<T>) {
    std::ostringstream os;
    os << "(" << DemangledName(typeid(T)) << ") " << v;
    return os.str();
  } else {
    std::ostringstream os;
    os << "(" << DemangledName(typeid(T)) << ") " << static_cast<const void*>(&v);
    return os.str();
  }
}

template <class T>
struct PanicBoxOf final : PanicBox {
  explicit PanicBoxOf(T v) : value(std::move(v)) {}
  const std::type_info& type() const override { return typeid(T); }
  const void* get() const override { return &value; }
  std::string Format() const override { return FormatPanicValue(value); }
  T value;
};

}  // namespace internal

// Go's `any` holding a panic value; empty is Go's nil (Recover() found no panic to stop).
class PanicValue {
 public:
  PanicValue() = default;
  template <class T>
  static PanicValue Of(T&& value) {
    PanicValue p;
    p.box_ = std::make_shared<internal::PanicBoxOf<std::decay_t<T>>>(std::forward<T>(value));
    return p;
  }

  bool has_value() const { return box_ != nullptr; }
  explicit operator bool() const { return has_value(); }

  // The value if it is a T (a panic raised with a T), else nullptr.
  template <class T>
  const T* As() const {
    return box_ && box_->type() == typeid(T) ? static_cast<const T*>(box_->get()) : nullptr;
  }
  // For a C++ exception that became a panic (thrown by anything but Panic): the exception.
  std::exception_ptr Exception() const {
    const std::exception_ptr* e = As<std::exception_ptr>();
    return e != nullptr ? *e : nullptr;
  }
  // The value as Go prints it in "panic: ..." ("<nil>" when empty).
  std::string String() const { return box_ ? box_->Format() : "<nil>"; }
  const std::type_info& type() const { return box_ ? box_->type() : typeid(void); }

 private:
  std::shared_ptr<const internal::PanicBox> box_;
};

namespace internal {

// What Panic() throws: the value and the raiser's backtrace (captured before unwinding). Not a
// std::exception, so `catch (const std::exception&)` does not swallow panics by accident.
struct PanicException {
  PanicValue value;
  // Earlier panics this one replaced, as Go prints them ("panic: first [recovered]\n\t...").
  std::string history;
  uintptr_t pcs[48];
  int npcs = 0;
};

[[noreturn]] void ThrowPanic(PanicValue value);
// Records the frame of the deferred call now running for a panic (see Defer::InvokeForPanic).
void SetDeferFrame(void* frame);

// From a catch handler at a goroutine's entry: prints Go's report of the unrecovered panic being
// handled (the chain, "goroutine N [running]:", the backtrace) and exits with status 2.
[[noreturn]] void ReportUnrecoveredPanic(uint64_t goid);

// One deferred call: `run` calls the callable, `destroy` destroys (and frees) it; `mark` is the
// owning Defer's inline-storage level before it.
// (Trivial on purpose: a Defer's inline records are not zeroed on every Frame.)
struct DeferRecord {
  void (*run)(void* callable);
  void (*run_for_panic)(void* callable);  // the same, as Recover() needs it (Defer)
  void (*destroy)(void* callable);
  void* callable;
  size_t mark;
};

}  // namespace internal

// panic(v). Never returns.
template <class T>
[[noreturn]] void Panic(T&& value) {
  internal::ThrowPanic(PanicValue::Of(std::forward<T>(value)));
}

// recover(): the value of the panic unwinding the frame whose deferred call calls it (stopping
// that panic), or empty. See the overview.
PanicValue Recover();

// Go's debug.Stack() in a deferred call that recovers: the backtrace of where the panic now
// unwinding the caller's frame was raised, one "\t#N 0xPC function+off (binary)" line per frame
// (base/backtrace.h's FormatBacktrace). Deferred calls run after C++ has unwound the stack, so this
// is the stack Panic() saw, not the current one. For a C++ exception thrown by other code (no
// Panic() call captured its stack) and outside a panic: an empty string.
std::string PanicStack();

// runtime.Goexit(): runs the goroutine's deferred calls and ends it. Never returns.
[[noreturn]] void Goexit();

class Defer;
namespace internal {
// Runs `defers` after body panicked with the current exception: true if one of them recovered
// (the frame returns normally); otherwise rethrows the panic (or the one that replaced it).
bool RunDefersPanicking(Defer& defers);
}  // namespace internal

// The deferred calls of one Frame, last in first out.
class Defer {
 public:
  Defer() = default;
  Defer(const Defer&) = delete;
  Defer& operator=(const Defer&) = delete;
  ~Defer() {
    internal::DeferRecord r;
    while (PopNext(&r)) Release(r);  // only left when Frame itself is unwound by force
  }

  // defer f(): f runs when the frame ends.
  template <class F>
  __attribute__((always_inline)) void operator()(F&& f) {
    using Fn = std::decay_t<F>;
    internal::DeferRecord r;
    r.run = &Invoke<Fn>;
    r.run_for_panic = &InvokeForPanic<Fn>;
    r.mark = used_;
    size_t at = (used_ + alignof(Fn) - 1) & ~(alignof(Fn) - 1);
    if (alignof(Fn) <= alignof(std::max_align_t) && at + sizeof(Fn) <= kInlineBytes) {
      r.callable = ::new (bytes_ + at) Fn(std::forward<F>(f));
      // Most deferred lambdas capture pointers and references: nothing to destroy, no call.
      r.destroy = std::is_trivially_destructible_v<Fn> ? nullptr : &Destroy<Fn>;
      used_ = at + sizeof(Fn);
    } else {
      r.callable = new Fn(std::forward<F>(f));
      r.destroy = &Delete<Fn>;
    }
    Push(r);
  }

  // defer f(args...): the arguments are evaluated (copied) now, as Go evaluates them.
  template <class F, class... Args>
  void Call(F&& f, Args&&... args) {
    (*this)([f = std::forward<F>(f), tup = std::make_tuple(std::forward<Args>(args)...)]() mutable {
      std::apply(f, tup);
    });
  }

  // For Frame, after body returned: runs the deferred calls, last first. A deferred call that
  // panics starts a panic that the remaining ones see (they may recover it: then this returns
  // true and the frame returns its zero or named result); unrecovered, it propagates. Inline, so
  // the common frame costs a few direct calls.
  // The first call is peeled out of the loop: in a frame with one deferred call the compiler
  // then sees which call it is and calls it directly (Go's open-coded defers, in effect).
  __attribute__((always_inline)) bool RunReturning() {
    internal::DeferRecord r;
    bool recovered = false;
    if (!PopNext(&r)) return false;
    if (!RunOne(r, &recovered)) return recovered;
    while (PopNext(&r)) {
      if (!RunOne(r, &recovered)) return recovered;
    }
    return false;
  }

  // For Frame: takes the most recent deferred call; false when none is left.
  bool PopNext(internal::DeferRecord* out) {
    if (n_ == 0) return false;
    --n_;
    *out = n_ < kInlineRecords ? inline_[n_] : (*overflow_)[n_ - kInlineRecords];
    if (n_ >= kInlineRecords) overflow_->pop_back();
    return true;
  }
  // Destroys a callable PopNext returned, once it has run (or failed).
  void Release(const internal::DeferRecord& r) {
    if (r.destroy != nullptr) r.destroy(r.callable);
    used_ = r.mark;  // deferred calls end last-first, so the inline bytes are a stack
  }

 private:
  static constexpr int kInlineRecords = 4;
  static constexpr size_t kInlineBytes = 128;

  // Runs and releases one deferred call of a returning frame. If it panics, the remaining calls
  // run for that panic (from the catch handler: the panic is the current exception), and this
  // returns false with *recovered telling whether one of them recovered.
  __attribute__((always_inline)) bool RunOne(const internal::DeferRecord& r, bool* recovered) {
    try {
      r.run(r.callable);
    } catch (...) {
      Release(r);
      *recovered = internal::RunDefersPanicking(*this);
      return false;
    }
    Release(r);
    return true;
  }
  template <class Fn>
  static void Invoke(void* p) {
    (*static_cast<Fn*>(p))();
  }
  // Runs a deferred call while a panic unwinds. Recover() accepts a call from exactly the function
  // this one calls: so this records its own frame, and calls the callable's operator() through a
  // volatile member pointer, which the compiler cannot inline here.
  template <class Fn>
  __attribute__((noinline)) static void InvokeForPanic(void* p) {
    internal::SetDeferFrame(__builtin_frame_address(0));
    Fn& f = *static_cast<Fn*>(p);
    if constexpr (std::is_pointer_v<Fn>) {
      Fn volatile fn = f;
      fn();
    } else if constexpr (requires { &Fn::operator(); }) {
      auto volatile pm = &Fn::operator();
      (f.*pm)();
    } else {
      f();  // an overloaded or generic callable: Recover() in it may not see the panic
    }
    asm volatile("" ::: "memory");  // not a tail call: this frame stays under the callee's
  }
  template <class Fn>
  static void Destroy(void* p) {
    static_cast<Fn*>(p)->~Fn();
  }
  template <class Fn>
  static void Delete(void* p) {
    delete static_cast<Fn*>(p);
  }
  void Push(const internal::DeferRecord& r) {
    if (n_ < kInlineRecords) {
      inline_[n_] = r;
    } else {
      if (!overflow_) overflow_ = std::make_unique<std::vector<internal::DeferRecord>>();
      overflow_->push_back(r);
    }
    ++n_;
  }

  internal::DeferRecord inline_[kInlineRecords];
  std::unique_ptr<std::vector<internal::DeferRecord>> overflow_;  // records beyond the first few
  int n_ = 0;
  size_t used_ = 0;  // bytes_ in use
  alignas(std::max_align_t) unsigned char bytes_[kInlineBytes];
};

// A function with deferred calls: runs body(defer), then the deferred calls. Returns body's
// result, or R{} after a recovered panic. See the overview.
template <class F>
__attribute__((always_inline)) inline auto Frame(F&& body) -> std::invoke_result_t<F&, Defer&> {
  using R = std::invoke_result_t<F&, Defer&>;
  Defer defers;
  if constexpr (std::is_void_v<R>) {
    try {
      body(defers);
    } catch (...) {
      internal::RunDefersPanicking(defers);
      return;
    }
    defers.RunReturning();
  } else {
    std::optional<R> result;
    try {
      result.emplace(body(defers));
    } catch (...) {
      internal::RunDefersPanicking(defers);
      return R{};
    }
    if (defers.RunReturning()) return R{};
    return std::move(*result);
  }
}

// A function with deferred calls and a named result (Go's `func f() (result R)`): body(defer,
// result) runs with `result` starting as R{}; deferred calls may read and change it (capture it
// by reference), including after a Recover(), and Frame<R> returns it once they have run.
//
//   int r = greenline::Frame<int>([](greenline::Defer& defer, int& result) {
//     defer([&result] { result *= 7; });
//     result = 6;
//   });  // 42, as in the Go spec's example
template <class R, class F>
requires std::is_invocable_v<F&, Defer&, R&> R Frame(F&& body) {
  R result{};
  Defer defers;
  try {
    body(defers, result);
  } catch (...) {
    internal::RunDefersPanicking(defers);
    return result;
  }
  defers.RunReturning();
  return result;
}

}  // namespace greenline
