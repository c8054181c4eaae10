// Package runtime_bench is the Go twin of ../runtime_bench.cc: the same three benchmarks with the
// same unit definitions (../README.md), run on one P (GOMAXPROCS=1, -cpu=1) by ../compare.sh.
//
// Each benchmark does b.N units in one run, so ns/op is the cost of one unit:
//
//	BenchmarkYieldPingPong  two goroutines, one calling runtime.Gosched ceil(N/2) times and the
//	                        other floor(N/2) times; ns/op = per switch.
//	BenchmarkSpawnJoin      wg.Add(N), N goroutines that each call wg.Done(), one wg.Wait();
//	                        after one untimed round of the same N; ns/op = per goroutine.
//	BenchmarkSleepWake      time.Sleep(time.Nanosecond), N times; ns/op = per sleep.
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
