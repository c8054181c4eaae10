// defer/panic/recover (see panic.h for the contract): Go's panic.go, on C++ exceptions.
//
// A panic is a C++ exception in flight: Panic() throws PanicException (value + the raiser's
// backtrace), Goexit() throws GoexitSignal, and any other exception is a panic whose value is the
// exception itself. Each Frame that the exception reaches catches it and runs its deferred calls
// through RunDefersPanicking, with an ActivePanic record (Go's _panic) on its own stack, linked
// from the goroutine (G::panic) so that Recover() can find it:
//   - each deferred call runs inside a try block: if it throws, the new exception replaces the
//     panic (the old one is written into `history`, marked "[recovered]" if it had been), and the
//     remaining deferred calls run for the new one, as Go's do;
//   - Recover() stops the panic only when called directly by the deferred call now running: the
//     call goes through Defer::InvokeForPanic, which records its frame address, and Recover checks
//     that its caller's saved frame pointer is that frame (every build keeps frame pointers);
//   - once recovered, the frame's remaining deferred calls run as on a normal return, and Frame
//     returns R{}; otherwise the panic is rethrown to the next Frame out (the original exception
//     object, unless a replacement chain must be carried: then a PanicException with `history`).
// Everything that runs for a panic runs inside a catch handler, so the C++ runtime's per-thread
// exception state is live while deferred calls block: the scheduler moves it with the goroutine.
//
// Rejected: deferred calls as destructors (a panic from a destructor during unwinding is
// std::terminate, and Go requires that it replace the first); a thread_local "current panic"
// (goroutines migrate); recovering by return-address matching (breaks with inlining more often
// than frame pointers do).
#include "greenline/panic.h"

#include <cxxabi.h>
#include <unistd.h>

#include <cstdlib>

#include "greenline/runtime_error.h"
#include "runtime/base/backtrace.h"
#include "runtime/base/fatal.h"
#include "runtime/sched/park.h"

namespace greenline::internal {

namespace {

// One panic being handled by one Frame's deferred calls (Go's _panic).
struct ActivePanic {
  std::exception_ptr exc;  // what is unwinding
  PanicValue value;        // its value (empty for Goexit)
  std::string history;     // the panics it replaced, in Go's format
  bool goexit = false;
  bool recovered = false;
  bool replaced = false;        // exc is no longer the exception this frame caught
  void* defer_frame = nullptr;  // frame of Defer::InvokeForPanic for the call now running
  ActivePanic* link = nullptr;  // the panic an outer frame is handling meanwhile
};

ActivePanic** Slot() { return reinterpret_cast<ActivePanic**>(CurrentPanicSlot()); }

// Fills value/history/goexit from the exception now being handled.
void Classify(ActivePanic* p, const std::exception_ptr& e) {
  p->goexit = false;
  try {
    std::rethrow_exception(e);
  } catch (const PanicException& pe) {
    p->value = pe.value;
    p->history += pe.history;
  } catch (const GoexitSignal&) {
    p->goexit = true;
    p->value = PanicValue();
  } catch (...) {
    p->value = PanicValue::Of(e);
  }
}

// A deferred call threw while `p` was unwinding: the new exception replaces it (Go: the new panic
// aborts the old one, and the report shows both).
void Replace(ActivePanic* p, const std::exception_ptr& e) {
  if (!p->goexit) {
    p->history += (p->history.empty() ? "panic: " : "\tpanic: ") + p->value.String() +
                  (p->recovered ? " [recovered]" : "") + "\n";
  }
  p->exc = e;
  p->recovered = false;
  p->replaced = true;
  Classify(p, e);
}

// The stack of whoever called the function calling this one: from the return address in the
// caller's frame record up, by frame pointer.
__attribute__((noinline)) int BacktraceOfCaller(uintptr_t* pcs, int max) {
  auto* own = static_cast<uintptr_t*>(__builtin_frame_address(0));
  auto* caller = reinterpret_cast<uintptr_t*>(own[0]);
  return WalkFramePointers(caller[0], caller[1], reinterpret_cast<uintptr_t>(caller), UINTPTR_MAX,
                           pcs, max);
}

[[noreturn]] void Rethrow(ActivePanic* p) {
  if (!p->replaced || p->goexit || p->history.empty()) std::rethrow_exception(p->exc);
  // Carry the chain to the next frame (and to the report).
  PanicException out;
  out.value = p->value;
  out.history = p->history;
  try {
    std::rethrow_exception(p->exc);
  } catch (const PanicException& pe) {
    std::copy(pe.pcs, pe.pcs + pe.npcs, out.pcs);
    out.npcs = pe.npcs;
  } catch (...) {
  }
  throw out;
}

}  // namespace

std::string DemangledName(const std::type_info& type) {
  int status = 0;
  char* d = abi::__cxa_demangle(type.name(), nullptr, nullptr, &status);
  std::string name = status == 0 && d != nullptr ? d : type.name();
  std::free(d);
  return name;
}

std::string FormatException(const std::exception_ptr& e) {
  if (!e) return "<nil>";
  try {
    std::rethrow_exception(e);
  } catch (const RuntimeError& re) {
    return re.what();  // Go's run-time panics print their message alone
  } catch (const std::exception& ex) {
    return std::string(ex.what()) + " [" + DemangledName(typeid(ex)) + "]";
  } catch (const PanicException& pe) {
    return pe.value.String();
  } catch (...) {
    return "unknown C++ exception";
  }
}

__attribute__((noinline)) void ThrowPanic(PanicValue value) {
  PanicException e;
  e.value = std::move(value);
  // From our caller (Panic<T>, usually inlined into the panicking function) up the stack.
  e.npcs = BacktraceOfCaller(e.pcs, static_cast<int>(sizeof e.pcs / sizeof e.pcs[0]));
  throw e;
}

void ReportUnrecoveredPanic(uint64_t goid) {
  std::exception_ptr e = std::current_exception();
  ActivePanic p;
  Classify(&p, e);
  std::string text = p.history + (p.history.empty() ? "panic: " : "\tpanic: ") + p.value.String() +
                     "\n\ngoroutine " + std::to_string(goid) + " [running]:\n";
  WriteAll(STDERR_FILENO, text);
  try {
    std::rethrow_exception(e);
  } catch (const PanicException& pe) {
    WriteBacktrace(STDERR_FILENO, pe.pcs, pe.npcs);  // where Panic() was called
  } catch (...) {
    // Not raised by Panic(): its origin is gone; show where the goroutine caught it.
    uintptr_t pcs[48];
    WriteBacktrace(STDERR_FILENO, pcs, BacktraceOfCaller(pcs, 48));
  }
  _exit(2);
}

void SetDeferFrame(void* frame) {
  if (ActivePanic* p = *Slot()) p->defer_frame = frame;
}

bool RunDefersPanicking(Defer& defers) {
  ActivePanic p;
  p.exc = std::current_exception();
  Classify(&p, p.exc);
  ActivePanic** slot = Slot();
  p.link = *slot;
  *slot = &p;
  DeferRecord r;
  while (defers.PopNext(&r)) {
    try {
      r.run_for_panic(r.callable);
    } catch (...) {
      // The slot may have moved: a deferred call can migrate, but the G's slot is the G's.
      Replace(&p, std::current_exception());
    }
    defers.Release(r);
    slot = Slot();
    if (p.recovered) {
      *slot = p.link;
      defers.RunReturning();  // the rest run as on a normal return
      return true;
    }
  }
  *slot = p.link;
  Rethrow(&p);
}

}  // namespace greenline::internal

namespace greenline {

__attribute__((noinline)) PanicValue Recover() {
  auto* p = *internal::Slot();
  if (p == nullptr || p->goexit || p->recovered || p->defer_frame == nullptr) return {};
  // Our caller's frame record holds its caller's frame pointer: it must be InvokeForPanic's.
  void** own = static_cast<void**>(__builtin_frame_address(0));
  void** caller = static_cast<void**>(own[0]);
  if (caller == nullptr || caller[0] != p->defer_frame) return {};
  p->recovered = true;
  return p->value;
}

std::string PanicStack() {
  internal::ActivePanic* p = *internal::Slot();
  if (p == nullptr || p->goexit) return {};
  try {
    std::rethrow_exception(p->exc);
  } catch (const internal::PanicException& pe) {
    LoadSymbols();  // Run() loaded them already; a panic on a plain thread may be the first to ask
    return FormatBacktrace(pe.pcs, pe.npcs);
  } catch (...) {
  }
  return {};
}

void Goexit() { throw internal::GoexitSignal{}; }

}  // namespace greenline
