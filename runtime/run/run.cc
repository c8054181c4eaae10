// greenline::Run and Main (greenline/runtime.h): the runtime's composition root.
//
// The scheduler depends on nothing above it, so something has to put the pieces together: the
// netpoller backend the workers sleep in (netpoll/), and the report of a panic that escapes a
// goroutine (panic/); and once the scheduler has stopped, something has to end what the modules
// above it hold for one Run (signal/: Notify's dispositions, channels and socket). This file, the
// top of the runtime's module stack, does only that:
//
//   base <- fiber <- sched <- (netpoll, chan, sync, panic) <- (net, signal) <- run
#include <cstdlib>
#include <string>
#include <utility>

#include "greenline/panic.h"
#include "greenline/runtime.h"
#include "runtime/netpoll/netpoll.h"
#include "runtime/sched/start.h"
#include "runtime/signal/notify.h"

namespace greenline {

void Run(std::function<void()> main_goroutine, const Options& options) {
  // Chosen (and, when forced and unavailable, refused with a fatal error) before any thread starts.
  std::unique_ptr<internal::Netpoll> netpoll = internal::NewNetpoll(options.poller);
  internal::SchedulerDeps deps;
  deps.pollers = netpoll.get();
  deps.unrecovered_panic = &internal::ReportUnrecoveredPanic;
  internal::RunScheduler(std::move(main_goroutine), options, deps);
  internal::EndSignalNotify();
}

void Main(std::function<void()> main_goroutine, const Options& options) {
  Run(std::move(main_goroutine), options);
  std::exit(0);
}

}  // namespace greenline
