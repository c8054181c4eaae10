// The seam between the scheduler and the netpoller: what the scheduler asks of a poller backend,
// and the little it tells one. For runtime/netpoll (the backends) and the runtime's composition
// root (run/run.cc), not for applications.
//
// A worker with nothing to run sleeps in its WorkerPoller, which also brings it completed I/O; the
// scheduler calls nothing else to sleep or wake a worker. A backend (io_uring or epoll) implements
// PollerBackend: one WorkerPoller per worker, owned by the backend. In return the scheduler gives a
// backend two things, through this header and park.h alone (never through sched/internal/):
//   - CurrentWorkerPoller(): the poller of the worker the calling thread runs, so an operation
//     started by a goroutine is queued where that goroutine runs;
//   - Ready(g) (park.h): a goroutine whose I/O is done becomes runnable; from a worker's thread it
//     goes to that worker's queue (the goroutine follows its connection).
#pragma once

#include <cstdint>
#include <string>

#include "runtime/base/runtime_internal.h"

namespace greenline::internal {

// A worker's side of the poller. Every call but Wake() comes from the owning worker's thread.
class WorkerPoller {
 public:
  virtual ~WorkerPoller() = default;
  // Called once on the worker's own thread before it runs anything.
  virtual void Start() {}
  // Called on the worker's thread when it stops: gives up whatever is still in the kernel.
  virtual void Stop() {}
  // Sleeps until Wake(), I/O, or CLOCK_MONOTONIC reaching `deadline_ns` (0: none); handles what
  // arrived (readying goroutines onto this worker's queue). May return spuriously.
  virtual void Wait(int64_t deadline_ns) = 0;
  // Without sleeping: submits queued work and handles what has arrived. True if it readied any.
  virtual bool Poll() = 0;
  // Cheap test: something to submit or reap (Poll would do work).
  virtual bool Pending() const = 0;
  // Any thread: makes a Wait that is sleeping (or about to) return.
  virtual void Wake() = 0;
};

// A poller backend as the scheduler sees it. It outlives the scheduler's run.
class PollerBackend {
 public:
  virtual ~PollerBackend() = default;
  // One line for the start-up log: which backend, and why it was chosen.
  virtual std::string Describe() const = 0;
  // The poller for worker `worker` (0 .. workers-1), made before any worker thread starts and
  // owned by the backend.
  virtual WorkerPoller* NewWorkerPoller(int worker) = 0;
  // Every worker's poller is made and none has started: sockets may be opened from now on.
  virtual void WorkersStarting() = 0;
  // Every worker has stopped and so has the blocking pool: nothing of this run may reach the
  // pollers any more (handles still open belong to no running runtime from now on).
  virtual void WorkersStopped() = 0;
};

// The poller of the worker whose thread calls this, or nullptr on any other thread. Like
// CurrentWorker(), not cached across a switch: a goroutine may resume on another worker.
WorkerPoller* CurrentWorkerPoller();

// Whether another goroutine waits to run on the calling worker's queue (false off a worker): an
// operation that could be queued for the batch the worker submits when its queue runs dry, or
// done with a system call of its own now, is worth batching only when there is a batch to join.
bool CurrentWorkerHasRunnable();

}  // namespace greenline::internal
