#include "greenline/state.h"

namespace greenline {

std::string_view GStatusName(GStatus status) {
  switch (status) {
    case GStatus::kIdle:
      return "idle";
    case GStatus::kRunnable:
      return "runnable";
    case GStatus::kRunning:
      return "running";
    case GStatus::kWaiting:
      return "waiting";
    case GStatus::kDead:
      return "dead";
  }
  return "?";
}

std::string_view WaitReasonName(WaitReason reason) {
  switch (reason) {
    case WaitReason::kNone:
      return "";
    case WaitReason::kSleep:
      return "sleep";
    case WaitReason::kIOWait:
      return "IO wait";
    case WaitReason::kSyscall:
      return "syscall";
    case WaitReason::kTimerGoroutineIdle:
      return "timer goroutine (idle)";
    case WaitReason::kChanReceive:
      return "chan receive";
    case WaitReason::kChanSend:
      return "chan send";
    case WaitReason::kChanReceiveNilChan:
      return "chan receive (nil chan)";
    case WaitReason::kChanSendNilChan:
      return "chan send (nil chan)";
    case WaitReason::kSelect:
      return "select";
    case WaitReason::kSelectNoCases:
      return "select (no cases)";
    case WaitReason::kSyncMutexLock:
      return "sync.Mutex.Lock";
    case WaitReason::kSyncRWMutexRLock:
      return "sync.RWMutex.RLock";
    case WaitReason::kSyncRWMutexLock:
      return "sync.RWMutex.Lock";
    case WaitReason::kSyncWaitGroupWait:
      return "sync.WaitGroup.Wait";
    case WaitReason::kSyncCondWait:
      return "sync.Cond.Wait";
    case WaitReason::kSemacquire:
      return "semacquire";
    case WaitReason::kSyncNotifierWait:
      return "sync.Notifier.Wait";
    case WaitReason::kCount:
      break;
  }
  return "?";
}

}  // namespace greenline
