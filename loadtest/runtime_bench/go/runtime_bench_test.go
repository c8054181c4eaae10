// Package runtime_bench is the Go twin of ../runtime_bench.cc: the same benchmarks with the same
// unit definitions (../README.md), run by ../compare.sh.
//
// Each benchmark does b.N units in one run, so ns/op is the cost of one unit:
//
//	BenchmarkYieldPingPong   two goroutines, one calling runtime.Gosched ceil(N/2) times and the
//	                         other floor(N/2) times; ns/op = per switch.
//	BenchmarkSpawnJoin       wg.Add(N), N goroutines that each call wg.Done(), one wg.Wait();
//	                         after one untimed round of the same N; ns/op = per goroutine.
//	BenchmarkSleepWake       time.Sleep(time.Nanosecond), N times; ns/op = per sleep.
//	BenchmarkChanPingPong    the benchmark goroutine sends i on unbuffered channel a, an echo
//	                         goroutine receives it and sends it back on unbuffered channel c, N
//	                         times; then a is closed and the echo goroutine joined; ns/op = per
//	                         round trip. Run on one P and on two.
//	BenchmarkBufferedChan    a producer goroutine sends 0..N-1 into a channel of capacity 128, the
//	                         benchmark goroutine receives them, then joins the producer; ns/op =
//	                         per value.
//	BenchmarkSelectTwoReady  one value into each of two channels of capacity 1, a select over two
//	                         receive cases (Go picks one at random), a plain receive drains the
//	                         other; N times; ns/op = per select.
//	BenchmarkMutexContended  4 goroutines each lock a sync.Mutex, increment a shared counter and
//	                         unlock, N/4 times each (N in all); ns/op = per lock/unlock. Two Ps.
//	BenchmarkDefer           a non-inlined function deferring one closure that increments a
//	                         counter (no recover), called N times; ns/op = per call.
//
// Worker count: the benchmarks do not set it. compare.sh runs each with GOMAXPROCS=P and -cpu=P,
// P = the worker count of the C++ twin it is compared with (runtime_bench --procs=P): 1 for most;
// 2 for ChanPingPong as well (Go prints that line as BenchmarkChanPingPong-2) and for
// MutexContended only.
package runtime_bench

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

func BenchmarkYieldPingPong(b *testing.B) {
	n := b.N
	var wg sync.WaitGroup
	wg.Add(2)
	yielder := func(times int) {
		for i := 0; i < times; i++ {
			runtime.Gosched()
		}
		wg.Done()
	}
	go yielder((n + 1) / 2)
	go yielder(n / 2)
	wg.Wait()
}

func spawnJoin(n int) {
	var wg sync.WaitGroup
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func() { wg.Done() }()
	}
	wg.Wait()
}

func BenchmarkSpawnJoin(b *testing.B) {
	// Untimed warm-up round of the same N, as on the C++ side: both runtimes then run from
	// their steady state (goroutine and stack caches filled), not from a cold start.
	spawnJoin(b.N)
	b.ResetTimer()
	spawnJoin(b.N)
}

func BenchmarkSleepWake(b *testing.B) {
	for i := 0; i < b.N; i++ {
		time.Sleep(time.Nanosecond)
	}
}

func BenchmarkChanPingPong(b *testing.B) {
	n := b.N
	a := make(chan int64)
	c := make(chan int64)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		for v := range a {
			c <- v
		}
		wg.Done()
	}()
	var sum int64
	for i := 0; i < n; i++ {
		a <- int64(i)
		sum += <-c
	}
	close(a)
	wg.Wait()
	sink = sum
}

func BenchmarkBufferedChan(b *testing.B) {
	n := b.N
	ch := make(chan int64, 128)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		for i := 0; i < n; i++ {
			ch <- int64(i)
		}
		wg.Done()
	}()
	var sum int64
	for i := 0; i < n; i++ {
		sum += <-ch
	}
	wg.Wait()
	sink = sum
}

func BenchmarkSelectTwoReady(b *testing.B) {
	n := b.N
	a := make(chan int64, 1)
	c := make(chan int64, 1)
	var sum int64
	for i := 0; i < n; i++ {
		a <- int64(i)
		c <- int64(i)
		select {
		case v := <-a:
			sum += v
			sum += <-c
		case v := <-c:
			sum += v
			sum += <-a
		}
	}
	sink = sum
}

// sink keeps the sums the channel benchmarks compute alive (the C++ side: DoNotOptimize).
var sink int64

func BenchmarkMutexContended(b *testing.B) {
	const goroutines = 4
	n := b.N
	var mu sync.Mutex
	var counter int64
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		times := n / goroutines
		if g < n%goroutines {
			times++
		}
		wg.Add(1)
		go func() {
			for i := 0; i < times; i++ {
				mu.Lock()
				counter++
				mu.Unlock()
			}
			wg.Done()
		}()
	}
	wg.Wait()
	if counter != int64(n) {
		b.Fatalf("counter %d, want %d", counter, n)
	}
	sink = counter
}

//go:noinline
func deferOnce(x *int64) {
	defer func() { *x++ }()
}

func BenchmarkDefer(b *testing.B) {
	var x int64
	for i := 0; i < b.N; i++ {
		deferOnce(&x)
	}
	if x != int64(b.N) {
		b.Fatalf("counter %d, want %d", x, b.N)
	}
	sink = x
}
