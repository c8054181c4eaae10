// What the runtime's composition root (run/run.cc) needs from the signal module
// (greenline/signal.h, runtime/signal/signal.cc): ending what Notify set up when a Run() ends.
// Not for applications.
#pragma once

#include "runtime/base/runtime_internal.h"

namespace greenline::internal {

// Ends every Notify of the Run() that has just ended, as if each channel had been Stopped: the
// saved dispositions come back, the channels are let go, and the signal socket's poll descriptor
// (and the reference the discarded delivery goroutine may hold on it) is released. Called by Run()
// once RunScheduler has returned (no worker, pool thread or goroutine is left). Does not block.
void EndSignalNotify();

}  // namespace greenline::internal
