package kubernetes

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/graylane/graylane/internal/leakcheck"
	"github.com/graylane/graylane/registry"
	"github.com/graylane/graylane/registry/registrytest"
)

// TestMemory10kPods measures a Registry following a namespace of 10,000
// Pods, all behind one Service of 100 EndpointSlices: the time from New to
// the first full set, and the live heap it holds per cached Pod (Pods,
// slices, indexes and the published set), which must stay under 2 KiB.
func TestMemory10kPods(t *testing.T) {
	c := newCluster(t)
	const pods, perSlice = 10000, 100
	start := time.Now()
	require.NoError(t, parallel(pods, 32, func(i int) error {
		labels := map[string]string{"app": "big", "version": "v1", "pod-template-hash": "7d9c5b6f4d"}
		if i%10 == 0 {
			labels[DefaultLaneLabel], labels["version"] = "gray", "v2"
		}
		return c.createPod(bg, fmt.Sprintf("big-7d9c5b6f4d-%05d", i), labels,
			map[string]string{"kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"})
	}))
	require.NoError(t, parallel(pods/perSlice, 8, func(s int) error {
		var eps []ep
		for i := s * perSlice; i < (s+1)*perSlice; i++ {
			eps = append(eps, ep{ip: fmt.Sprintf("10.%d.%d.%d", 100+i/62500, i/250%250, i%250+1), pod: fmt.Sprintf("big-7d9c5b6f4d-%05d", i)})
		}
		return c.putSlice(bg, fmt.Sprintf("big-%03d", s), "big", "", 8080, eps...)
	}))
	t.Logf("wrote %d pods and %d slices in %v", pods, pods/perSlice, time.Since(start).Round(time.Millisecond))

	before := leakcheck.LiveHeap()
	start = time.Now()
	reg := c.registry(nil)
	w := watchService(t, reg, "big")
	got, _ := registrytest.WaitFor(t, w, 2*time.Minute, "10,000 instances", func(s []registry.Instance) bool { return len(s) == pods })
	sync := time.Since(start)
	after := leakcheck.LiveHeap()
	perPod := float64(after-before) / pods
	t.Logf("10,000 pods: initial sync (New to the first full set) %v; live heap %.1f MiB, %.0f B per cached pod",
		sync.Round(time.Millisecond), float64(after-before)/(1<<20), perPod)
	assert.LessOrEqual(t, perPod, 2048.0)
	runtime.KeepAlive(got)
}
