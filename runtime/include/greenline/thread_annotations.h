// Lock contracts the compiler checks: clang's thread-safety analysis (-Wthread-safety), as Abseil's
// thread_annotations.h and marl's use it. A field says which lock guards it, a function says which
// locks it needs, takes or gives back, and clang proves each access and each path against that.
// The tsan preset (clang) turns the checks on as errors (GREENLINE_THREAD_SAFETY_ANALYSIS); g++
// ignores the attributes. runtime/HACKING.md ("Shared fields") says how to annotate a new lock.
//
//   SpinLock lock_;
//   int count_ GL_GUARDED_BY(lock_);
//   void AddLocked(int n) GL_REQUIRES(lock_);   // caller holds lock_
//   void Park() GL_RELEASE(lock_);              // gives it back, on every path
//
// The analysis cannot express "releases the lock on some paths": a function either always or never
// releases what its caller holds. Code that must hand a lock to a context switch (a park's commit
// unlocks it on the next goroutine) says so with GL_RELEASE on the parking call.
#pragma once

#if defined(__clang__)
#define GL_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define GL_THREAD_ANNOTATION(x)
#endif

// A type that is a lock (a capability named `x`, "mutex" for ours).
#define GL_CAPABILITY(x) GL_THREAD_ANNOTATION(capability(x))
// An RAII guard: takes in its constructor, gives back in its destructor.
#define GL_SCOPED_CAPABILITY GL_THREAD_ANNOTATION(scoped_lockable)
// A field read or written only with `x` held; a pointer whose pointee is.
#define GL_GUARDED_BY(x) GL_THREAD_ANNOTATION(guarded_by(x))
#define GL_PT_GUARDED_BY(x) GL_THREAD_ANNOTATION(pt_guarded_by(x))
// The caller must hold (REQUIRES) or must not hold (EXCLUDES) these.
#define GL_REQUIRES(...) GL_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define GL_EXCLUDES(...) GL_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
// The function takes (ACQUIRE) or gives back (RELEASE) these, on every path. With no argument, on
// a lock's own methods: the lock itself (clang then does not look inside, which is how a lock's
// implementation stays out of the analysis).
#define GL_ACQUIRE(...) GL_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define GL_RELEASE(...) GL_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
// The same for a reader's hold (RWMutex's RLock), and a release of either kind (a guard's
// destructor).
#define GL_ACQUIRE_SHARED(...) GL_THREAD_ANNOTATION(acquire_shared_capability(__VA_ARGS__))
#define GL_RELEASE_SHARED(...) GL_THREAD_ANNOTATION(release_shared_capability(__VA_ARGS__))
#define GL_RELEASE_GENERIC(...) GL_THREAD_ANNOTATION(release_generic_capability(__VA_ARGS__))
// Takes them when it returns `ret` (try_lock).
#define GL_TRY_ACQUIRE(...) GL_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
#define GL_TRY_ACQUIRE_SHARED(...) GL_THREAD_ANNOTATION(try_acquire_shared_capability(__VA_ARGS__))
// Returns the lock named `x` (an accessor).
#define GL_RETURN_CAPABILITY(x) GL_THREAD_ANNOTATION(lock_returned(x))
// Checks at run time that it is held; the analysis then assumes it is.
#define GL_ASSERT_CAPABILITY(x) GL_THREAD_ANNOTATION(assert_capability(x))
// Opts one function out, with a comment saying why: a lock handed over a context switch, a lock
// behind a function pointer (runtime/HACKING.md says when it is acceptable).
#define GL_NO_THREAD_SAFETY_ANALYSIS GL_THREAD_ANNOTATION(no_thread_safety_analysis)
