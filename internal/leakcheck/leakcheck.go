// Package leakcheck tells whether a test left goroutines or live heap
// behind: take a Snapshot before it starts anything, close everything, then
// Check against the snapshot.
package leakcheck

import (
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// Snapshot is the number of goroutines and the live heap at one moment.
type Snapshot struct {
	Goroutines int
	Heap       uint64
}

// LiveHeap returns the heap in use after a full collection. The second
// cycle frees what sync.Pools kept as victims of the first.
func LiveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// Take returns the goroutine count once it has stopped changing for 50ms
// (within 2s: goroutines of an earlier test may still be ending), and the
// live heap.
func Take() Snapshot {
	n, since := runtime.NumGoroutine(), time.Now()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); <-tick.C {
		if m := runtime.NumGoroutine(); m != n {
			n, since = m, time.Now()
		} else if time.Since(since) >= 50*time.Millisecond {
			break
		}
	}
	return Snapshot{Goroutines: n, Heap: LiveHeap()}
}

// Check waits, within 10s, for the goroutine count to return to the
// baseline's, then checks the live heap against it with heapSlack. Call it
// after everything the test started has been closed, outside the function
// that held it, so that none of it is still reachable.
func Check(t testing.TB, base Snapshot, heapSlack uint64) {
	t.Helper()
	start := time.Now()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	n := runtime.NumGoroutine()
	for deadline := start.Add(10 * time.Second); n > base.Goroutines && time.Now().Before(deadline); n = runtime.NumGoroutine() {
		<-tick.C
	}
	waited := time.Since(start)
	heap := LiveHeap()
	t.Logf("goroutines %d before, %d after (back within %v); heap %.2f MiB before, %.2f MiB after (%+.1f KiB, slack %d KiB)",
		base.Goroutines, n, waited.Round(time.Millisecond), MiB(base.Heap), MiB(heap), KiB(heap, base.Heap), heapSlack>>10)
	if n > base.Goroutines {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines left over:\n%s", n-base.Goroutines, buf[:runtime.Stack(buf, true)])
	}
	assert.LessOrEqual(t, heap, base.Heap+heapSlack, "live heap did not return to the baseline")
}

// MiB returns b in MiB.
func MiB(b uint64) float64 { return float64(b) / (1 << 20) }

// KiB returns a-b in KiB, signed.
func KiB(a, b uint64) float64 { return (float64(a) - float64(b)) / 1024 }
