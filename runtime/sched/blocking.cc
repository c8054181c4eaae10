// The blocking pool: OS threads that run calls which would block a worker (Blocking()).
//
// The calling goroutine parks with wait reason "syscall" (running-class: the kernel, not another
// goroutine, will end the wait, so such goroutines never count towards a deadlock). Its job is
// queued only from the park's commit, once the goroutine is fully switched out, so a fast job
// cannot Ready() it half-parked. Threads are created on demand, up to kMaxBlockingThreads, and
// live until the runtime stops (Run() waits for jobs in flight). The job record lives on the
// parked goroutine's stack.
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "runtime/base/fatal.h"
#include "runtime/sched/goroutine.h"
#include "runtime/sched/internal/sched.h"
#include "runtime/sched/park.h"

namespace greenline::internal {
namespace {

constexpr int kMaxBlockingThreads = 64;

struct Job {
  void (*fn)(void*);
  void* arg;
  G* g;
  Job* next;
};

struct Pool {
  std::mutex mu;
  std::condition_variable cv;
  Job* head = nullptr;               // guarded by mu
  Job* tail = nullptr;               // guarded by mu
  int idle = 0;                      // guarded by mu
  bool stop = false;                 // guarded by mu
  std::vector<std::thread> threads;  // guarded by mu
};

Pool g_pool;

void PoolThread() {
  pthread_setname_np(pthread_self(), "greenline-blk");
  std::unique_lock<std::mutex> lock(g_pool.mu);
  for (;;) {
    while (g_pool.head == nullptr && !g_pool.stop) {
      ++g_pool.idle;
      g_pool.cv.wait(lock);
      --g_pool.idle;
    }
    if (g_pool.head == nullptr) return;  // stopping, nothing left
    Job* job = g_pool.head;
    g_pool.head = job->next;
    if (g_pool.head == nullptr) g_pool.tail = nullptr;
    lock.unlock();
    G* g = job->g;  // read before fn: once readied, the job's stack frame may be gone
    job->fn(job->arg);
    Ready(g);
    lock.lock();
  }
}

bool SubmitJob(G*, void* arg) {
  Job* job = static_cast<Job*>(arg);
  std::lock_guard<std::mutex> lock(g_pool.mu);
  job->next = nullptr;
  if (g_pool.tail != nullptr) {
    g_pool.tail->next = job;
  } else {
    g_pool.head = job;
  }
  g_pool.tail = job;
  if (g_pool.idle == 0 && static_cast<int>(g_pool.threads.size()) < kMaxBlockingThreads) {
    g_pool.threads.emplace_back(&PoolThread);
  } else {
    g_pool.cv.notify_one();
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
  Job job{fn, arg, g, nullptr};
  Park(WaitReason::kSyscall, &SubmitJob, &job);
}

void StopBlockingPool() {
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(g_pool.mu);
    g_pool.stop = true;
    threads.swap(g_pool.threads);
  }
  g_pool.cv.notify_all();
  for (auto& t : threads) t.join();
  std::lock_guard<std::mutex> lock(g_pool.mu);
  g_pool.stop = false;
}

}  // namespace greenline::internal
