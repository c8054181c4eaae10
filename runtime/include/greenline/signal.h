// Go's os/signal for greenline: signals delivered on a channel.
//
//   auto stop = greenline::MakeChan<int>(2);            // one slot per signal watched
//   greenline::signal::Notify(stop, {SIGTERM, SIGINT});  // signal.Notify(stop, SIGTERM, SIGINT)
//   int sig = stop.Recv();                               // waits; not a deadlock
//   greenline::signal::Stop(stop);                       // signal.Stop(stop)
//
// Overview
//   - Notify(c, signals) installs a handler for each signal no channel watched before, saving the
//     disposition it replaces; from then on each of them arriving at the process is sent to `c`
//     (the signal's number) and to every other channel watching it. Stop(c) ends that, and a
//     signal that no channel watches any more gets its saved disposition back: SIGTERM kills the
//     process again (runtime/signal/signal.cc has the design).
//   - Delivery never blocks: a signal arriving while `c` is full is dropped for `c`, as in Go.
//     Give `c` a buffer, one slot per signal watched. A signal arriving again before the first one
//     was delivered is delivered once (the kernel, and Go, coalesce them too).
//   - Waiting for a signal is not a deadlock. Delivery runs on a goroutine the first Notify of a
//     Run() starts, which waits for the kernel ("IO wait", running-class, like Go's signal
//     goroutine in "syscall"); so `Notify(c, {SIGTERM}); c.Recv();` as the only thing a program
//     does just waits. The other side of the same coin, as in Go: while any channel watches a
//     signal, the deadlock detector does not report goroutines blocked elsewhere. Once the last
//     channel is Stopped the goroutine ends and the detector is back. It counts in NumGoroutine()
//     and shows in goroutine dumps, as Go's does.
//   - Notify lasts for the Run() it is called in: when Run() returns, every channel stops
//     receiving and every disposition Notify replaced comes back, as if each channel had been
//     Stopped. A later Run() starts with nothing watched.
//   - Signal masks: a notified signal must reach some thread that does not block it. The runtime's
//     threads block nothing of their own; they inherit the mask of the thread that called Run().
//     So that a program that blocked a signal there before Run() (the sigwait pattern) still gets
//     it, the delivery goroutine unblocks the watched signals on the worker it runs on. Stop does
//     not block them again (the workers, and their masks, end with the Run()).
//
// Refused signals. Notify throws greenline::RuntimeError, changing nothing, for:
//   - SIGKILL and SIGSTOP: they cannot be caught;
//   - SIGSEGV and SIGBUS: the runtime's, for stack overflow and fault reports;
//   - SIGURG: the runtime's, to capture a running goroutine's stack (dumps, the monitor);
//   - SIGQUIT: the runtime's goroutine dump (even with Options::sigquit_dump off: one meaning for
//     SIGQUIT in every greenline program);
//   - 32 and 33, which glibc keeps for itself (SIGRTMIN is 34), and numbers that are not signals;
//   - a nil channel, and an empty list (Go's Notify(c) means "every signal": name them here).
// RuntimeError, as Go panics for a nil channel: these are mistakes in the program, found the first
// time the line runs, and a panic says so there (the report names the signal and why) where an
// error value would be ignored and leave the program waiting for a signal that never comes.
//
// Channels. Notify keeps a handle to `c` until Stop(c) or the end of the Run(). Close `c` only
// after Stop(c): a signal delivered to a closed channel is a panic ("send on closed channel") on
// the delivery goroutine, which ends the program, as in Go.
//
// Name lookup: with `using namespace greenline;` at global scope, an unqualified call of the C
// function signal() is ambiguous with this namespace; write ::signal().
#pragma once

#include <initializer_list>

#include "greenline/chan.h"

namespace greenline::signal {

// Go's signal.Notify: relays each of `signals` arriving at the process to `c`, as the signal's
// number. Never blocks on `c`: a signal arriving while `c` is full is dropped for `c` (give it a
// buffer: one slot per signal watched). Several channels may watch one signal, each gets it;
// calling Notify again for `c` adds signals to those it watches. Throws RuntimeError for a refused
// signal (see above), a nil channel, an empty list, or no runtime running, before changing
// anything. Does not block. From a goroutine, or from any thread while the runtime runs.
void Notify(const Chan<int>& c, std::initializer_list<int> signals);

// Go's signal.Stop: once it returns, `c` receives no more signals. A signal no channel watches any
// more gets back the disposition it had before the first Notify for it. A channel that watches
// nothing (or the nil channel) is left alone. Does not block (it may wait for a delivery in
// progress, which never waits). From any thread.
void Stop(const Chan<int>& c);

}  // namespace greenline::signal
