// The blocking pool: OS threads that run calls which would block a worker (Blocking()).
//
// The calling goroutine parks with wait reason "syscall" (running-class: the kernel, not another
// goroutine, will end the wait, so such goroutines never count towards a deadlock). Its job is
// queued only from the park's commit, once the goroutine is fully switched out, so a fast job
// cannot Ready() it half-parked. The job record lives on the parked goroutine's stack.
//
// Threads are created on demand, up to kMaxBlockingThreads: whenever the queued jobs outnumber the
// idle threads (counting a thread as idle until it has taken a job would let two quick submits
// share one thread, and a job waiting on the other would wait forever).
//
// Stopping (Run's end): queued jobs are dropped with their abandoned goroutines, idle threads exit
// and are joined (so nothing of ours is left running, or holding a lock, when the program forks or
// starts another runtime), and threads still inside a job are detached to finish it on their own: a
// goroutine blocked forever in read(2) must not keep the program from ending, as it would not in
// Go. Each job carries the
// generation of the runtime that submitted it; a job that finishes after its runtime stopped does
// not Ready() anything. StopBlockingPool() says whether such jobs remain, so Run() keeps their
// stacks mapped.
#include <list>
#include <thread>

#include "greenline/goroutine.h"
#include "runtime/base/fatal.h"
#include "runtime/base/os_mutex.h"
#include "runtime/sched/internal/sched.h"
#include "runtime/sched/park.h"

namespace greenline::internal {
namespace {

constexpr int kMaxBlockingThreads = 64;

struct Job {
  void (*fn)(void*);
  void* arg;
  G* g;
  uint64_t generation;
  Job* next;
};

struct PoolThreadRecord;

struct Pool {
  OsMutex mu;
  std::list<PoolThreadRecord> threads_of_generation GL_GUARDED_BY(mu);
  OsCondVar cv;
  Job* head GL_GUARDED_BY(mu) = nullptr;
  Job* tail GL_GUARDED_BY(mu) = nullptr;
  int queued GL_GUARDED_BY(mu) = 0;
  int idle GL_GUARDED_BY(mu) = 0;             // threads waiting for a job
  int threads GL_GUARDED_BY(mu) = 0;          // threads of this generation
  int busy GL_GUARDED_BY(mu) = 0;             // threads inside a job, any generation
  uint64_t generation GL_GUARDED_BY(mu) = 1;  // bumped when a runtime stops
};

Pool g_pool;

struct PoolThreadRecord {
  std::thread thread;
  bool busy GL_GUARDED_BY(g_pool.mu) = false;  // inside a job
};

void PoolThread(uint64_t generation, PoolThreadRecord* self) {
  pthread_setname_np(pthread_self(), "greenline-blk");
  OsMutexLock lock(g_pool.mu);
  for (;;) {
    while (g_pool.head == nullptr && g_pool.generation == generation) {
      ++g_pool.idle;
      g_pool.cv.Wait(g_pool.mu);
      if (g_pool.generation == generation) --g_pool.idle;  // a stop resets the count
    }
    if (g_pool.generation != generation) {
      // Our runtime stopped. A wakeup meant for the next runtime's threads goes on to them.
      if (g_pool.head != nullptr) g_pool.cv.NotifyOne();
      return;
    }
    Job* job = g_pool.head;
    g_pool.head = job->next;
    if (g_pool.head == nullptr) g_pool.tail = nullptr;
    --g_pool.queued;
    ++g_pool.busy;
    self->busy = true;  // a stop now detaches us instead of joining
    lock.Unlock();
    G* g = job->g;  // read before fn: once readied, the job's stack frame may be gone
    uint64_t job_generation = job->generation;
    job->fn(job->arg);
    lock.Lock();
    --g_pool.busy;
    // After a stop `self` belongs to nobody (the stop detached us and dropped the list): only
    // touch it while our generation is current.
    if (job_generation == g_pool.generation) self->busy = false;
    // Ready only into the runtime that submitted the job, and only while it runs: the scheduler's
    // stop sequence bumps the generation under this lock before it tears anything down.
    if (job_generation == g_pool.generation) Ready(g);
  }
}

bool SubmitJob(G*, void* arg) {
  Job* job = static_cast<Job*>(arg);
  OsMutexGuard lock(g_pool.mu);
  job->generation = g_pool.generation;
  job->next = nullptr;
  if (g_pool.tail != nullptr) {
    g_pool.tail->next = job;
  } else {
    g_pool.head = job;
  }
  g_pool.tail = job;
  ++g_pool.queued;
  if (g_pool.queued > g_pool.idle && g_pool.threads < kMaxBlockingThreads) {
    ++g_pool.threads;
    PoolThreadRecord& record = g_pool.threads_of_generation.emplace_back();
    record.thread = std::thread(&PoolThread, g_pool.generation, &record);
  } else {
    g_pool.cv.NotifyOne();
  }
  return true;
}

}  // namespace

__attribute__((noinline)) void RunBlocking(void (*fn)(void*), void* arg) {
  G* g = CurrentG();
  if (g == nullptr) {
    fn(arg);
    return;
  }
  Job job{fn, arg, g, 0, nullptr};
  Park(WaitReason::kSyscall, &SubmitJob, &job);
}

bool StopBlockingPool() {
  std::list<PoolThreadRecord> threads;
  bool busy;
  {
    OsMutexGuard lock(g_pool.mu);
    ++g_pool.generation;  // idle threads leave; finishing jobs no longer Ready anything
    g_pool.head = g_pool.tail = nullptr;
    g_pool.queued = 0;
    g_pool.threads = 0;
    g_pool.idle = 0;
    busy = g_pool.busy > 0;
    threads.swap(g_pool.threads_of_generation);
    for (PoolThreadRecord& t : threads) {
      if (t.busy) t.thread.detach();
    }
    g_pool.cv.NotifyAll();
  }
  for (PoolThreadRecord& t : threads) {
    if (t.thread.joinable()) t.thread.join();
  }
  return busy;
}

}  // namespace greenline::internal
