package resolver_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/graylane/graylane/fallback"
	"github.com/graylane/graylane/registry"
	"github.com/graylane/graylane/resolver"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// lanes3 starts service with one instance in each of prod, gray and v3
// (names "<service>-<lane>").
func (f *fleet) lanes3(service string) {
	for _, lane := range []string{"", "gray", "v3"} {
		name := service + "-" + lane
		if lane == "" {
			name = service + "-prod"
		}
		f.start(service, lane, name, 0)
	}
}

func TestRoutesByLane(t *testing.T) {
	f := newFleet(t)
	for _, svc := range []string{"a", "b", "c"} {
		f.lanes3(svc)
	}
	clients := map[string]interface{}{}
	_ = clients
	for _, svc := range []string{"a", "b", "c"} {
		client := f.dial(svc, nil)
		t.Run(svc, func(t *testing.T) {
			// The first call of a lane may fall back while its instance connects
			// (failover timeout 0): wait until every lane is connected.
			for _, lane := range []string{"gray", "v3"} {
				eventually(t, "lane "+lane, func() result { return call(client, lane) }, servedBy(svc+"-"+lane))
			}
			before := map[string]int64{}
			for _, lane := range []string{"prod", "gray", "v3"} {
				before[lane] = f.insts[svc+"-"+lane].calls.Load()
			}
			for range 50 {
				r := call(client, "")
				require.NoError(t, r.err)
				assert.Equal(t, svc+"-prod", r.served, "untagged goes to prod")
				assert.Empty(t, r.reason)
			}
			for _, lane := range []string{"gray", "v3", "prod"} {
				for range 20 {
					r := call(client, lane)
					require.NoError(t, r.err)
					assert.Equal(t, svc+"-"+lane, r.served, "tagged %s", lane)
					assert.Empty(t, r.reason, "no fallback")
				}
			}
			assert.Equal(t, int64(20), f.insts[svc+"-gray"].calls.Load()-before["gray"], "no untagged call reached gray")
			assert.Equal(t, int64(20), f.insts[svc+"-v3"].calls.Load()-before["v3"], "no untagged call reached v3")
			assert.Equal(t, int64(70), f.insts[svc+"-prod"].calls.Load()-before["prod"])
		})
	}
}

func TestFallbackNoInstances(t *testing.T) {
	f := newFleet(t)
	f.start("reviews", "", "reviews-prod", 0)
	f.start("reviews", "v3", "reviews-v3", 0)
	client := f.dial("reviews", nil)
	eventually(t, "v3 connected", func() result { return call(client, "v3") }, servedBy("reviews-v3"))

	for _, lane := range []string{"gray", "some-unknown-lane"} {
		r := call(client, lane)
		require.NoError(t, r.err)
		assert.Equal(t, "reviews-prod", r.served)
		assert.Equal(t, "noinstances", r.reason)
	}
}

func TestFallbackUnavailable(t *testing.T) {
	t.Run("not serving", func(t *testing.T) {
		f := newFleet(t)
		f.start("reviews", "", "reviews-prod", 0)
		gray := f.start("reviews", "gray", "reviews-gray", 0)
		client := f.dial("reviews", nil, resolver.WithHealthCheck(""))
		eventually(t, "gray connected", func() result { return call(client, "gray") }, servedBy("reviews-gray"))

		gray.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
		r := eventually(t, "gray not serving", func() result { return call(client, "gray") }, servedBy("reviews-prod"))
		assert.Equal(t, "unavailable", r.reason)

		gray.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
		eventually(t, "gray back", func() result { return call(client, "gray") }, servedBy("reviews-gray"))
	})
	t.Run("registry says not serving", func(t *testing.T) {
		f := newFleet(t)
		f.start("reviews", "", "reviews-prod", 0)
		gray := f.start("reviews", "gray", "reviews-gray", 0)
		client := f.dial("reviews", nil)
		eventually(t, "gray connected", func() result { return call(client, "gray") }, servedBy("reviews-gray"))
		inst := gray.reg.Instance()
		inst.Health = registry.NotServing
		require.NoError(t, gray.reg.Update(context.Background(), inst))
		r := eventually(t, "gray drained", func() result { return call(client, "gray") }, servedBy("reviews-prod"))
		assert.Equal(t, "unavailable", r.reason)
	})
	t.Run("stopped", func(t *testing.T) {
		f := newFleet(t)
		f.start("reviews", "", "reviews-prod", 0)
		gray := f.start("reviews", "gray", "reviews-gray", 0)
		client := f.dial("reviews", nil)
		eventually(t, "gray connected", func() result { return call(client, "gray") }, servedBy("reviews-gray"))
		gray.srv.Stop() // crashed: still registered
		r := eventually(t, "gray down", func() result { return call(client, "gray") }, servedBy("reviews-prod"))
		assert.Equal(t, "unavailable", r.reason)
		for range 20 {
			r := call(client, "gray")
			require.NoError(t, r.err)
			assert.Equal(t, "reviews-prod", r.served)
		}
	})
}

func TestStrict(t *testing.T) {
	f := newFleet(t)
	f.start("reviews", "", "reviews-prod", 0)
	policy, err := fallback.NewPolicy(fallback.WithLaneMode("gray", fallback.Strict))
	require.NoError(t, err)
	client := f.dial("reviews", policy)

	for _, opts := range [][]grpc.CallOption{nil, {grpc.WaitForReady(true)}} {
		r := call(client, "gray", opts...)
		require.Error(t, r.err)
		st := status.Convert(r.err)
		assert.Equal(t, codes.Unavailable, st.Code())
		assert.Contains(t, st.Message(), `service "reviews"`)
		assert.Contains(t, st.Message(), `tag "gray"`)
		assert.Contains(t, st.Message(), "noinstances")
		assert.Contains(t, st.Message(), "strict")
	}
	r := call(client, "v3")
	require.NoError(t, r.err, "other lanes stay loose")
	assert.Equal(t, "reviews-prod", r.served)

	strictAll, err := fallback.NewPolicy(fallback.WithMode(fallback.Strict))
	require.NoError(t, err)
	r = call(f.dial("reviews", strictAll), "made-up", grpc.WaitForReady(true))
	require.Error(t, r.err)
	assert.Contains(t, status.Convert(r.err).Message(), `tag "made-up"`, "an unknown tag is named in the error")
}

func TestChain(t *testing.T) {
	f := newFleet(t)
	f.start("svc", "", "svc-prod", 0)
	dev := f.start("svc", "dev", "svc-dev", 0)
	policy, err := fallback.NewPolicy(fallback.WithChain("dev-alice", "dev", "prod"))
	require.NoError(t, err)
	client := f.dial("svc", policy)
	r := eventually(t, "dev connected", func() result { return call(client, "dev-alice") }, servedBy("svc-dev"))
	assert.Equal(t, "noinstances", r.reason)

	alice := f.start("svc", "dev-alice", "svc-dev-alice", 0)
	r = eventually(t, "alice's lane", func() result { return call(client, "dev-alice") }, servedBy("svc-dev-alice"))
	assert.Empty(t, r.reason)

	alice.stop()
	dev.stop()
	r = eventually(t, "down to prod", func() result { return call(client, "dev-alice") }, servedBy("svc-prod"))
	assert.Equal(t, "noinstances", r.reason)
}

// TestReturnToLane: a -> b -> c where b has no gray instance. The gray
// request falls back to prod at b, and b's call to c goes back to gray.
func TestReturnToLane(t *testing.T) {
	f := newFleet(t)
	f.lanes3("a")
	f.start("b", "", "b-prod", 0)
	f.lanes3("c")
	f.chain("a", f.dial("b", nil))
	f.chain("b", f.dial("c", nil))
	client := f.dial("a", nil)
	r := eventually(t, "whole chain", func() result { return call(client, "gray") }, func(r result) bool {
		return r.err == nil && r.served == "a-gray>b-prod>c-gray"
	})
	assert.Empty(t, r.reason)
	r = call(client, "")
	require.NoError(t, r.err)
	assert.Equal(t, "a-prod>b-prod>c-prod", r.served)
}

func TestWeighted(t *testing.T) {
	f := newFleet(t)
	f.start("svc", "", "prod", 0)
	light := f.start("svc", "gray", "light", 1)
	heavy := f.start("svc", "gray", "heavy", 3)
	client := f.dial("svc", nil)
	eventually(t, "light", func() result { return call(client, "gray") }, servedBy("light"))
	eventually(t, "heavy", func() result { return call(client, "gray") }, servedBy("heavy"))
	l0, h0 := light.calls.Load(), heavy.calls.Load()
	for range 4000 {
		require.NoError(t, call(client, "gray").err)
	}
	l, h := light.calls.Load()-l0, heavy.calls.Load()-h0
	require.Equal(t, int64(4000), l+h)
	assert.InDelta(t, 1000, l, 200, "weight 1 gets 25%% ± 5%%")
	assert.InDelta(t, 3000, h, 200, "weight 3 gets 75%% ± 5%%")
}

func TestRetagKeepsConnection(t *testing.T) {
	f := newFleet(t)
	f.start("svc", "", "prod", 0)
	in := f.start("svc", "gray", "moving", 0)
	client := f.dial("svc", nil)
	eventually(t, "gray", func() result { return call(client, "gray") }, servedBy("moving"))
	require.Equal(t, int64(1), in.accepted.Load())

	in.retag("v3")
	eventually(t, "now v3", func() result { return call(client, "v3") }, servedBy("moving"))
	r := call(client, "gray")
	assert.Equal(t, "prod", r.served)
	assert.Equal(t, "noinstances", r.reason)
	assert.Equal(t, int64(1), in.accepted.Load(), "a retag does not reconnect")
	assert.Equal(t, int64(1), in.open.Load())
}

// TestScaleUnderLoad scales a lane 0 -> 1 -> 0 while calls keep flowing,
// taking the instance down the polite way (deregister, then stop): no call
// fails.
func TestScaleUnderLoad(t *testing.T) {
	f := newFleet(t)
	f.start("svc", "", "prod", 0)
	client := f.dial("svc", nil)
	var (
		stop          = make(chan struct{})
		wg            sync.WaitGroup
		failed, total atomic.Int64
		errMu         sync.Mutex
		firstErr      error
		progress      = make(chan struct{}, 1)
	)
	// waitCalls returns once the load has made n more calls.
	waitCalls := func(n int64) {
		target := total.Load() + n
		for total.Load() < target {
			<-progress
		}
	}
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for lane := 0; ; lane++ {
				select {
				case <-stop:
					return
				default:
				}
				r := call(client, []string{"gray", ""}[lane%2])
				total.Add(1)
				select {
				case progress <- struct{}{}:
				default:
				}
				if r.err != nil {
					failed.Add(1)
					errMu.Lock()
					firstErr = errors.Join(firstErr, r.err)
					errMu.Unlock()
				}
			}
		}()
	}
	for round := range 3 {
		gray := f.start("svc", "gray", "gray", 0)
		eventually(t, "gray up", func() result { return call(client, "gray") }, servedBy("gray"))
		waitCalls(100)
		gray.stop()
		eventually(t, "gray gone", func() result { return call(client, "gray") }, servedBy("prod"))
		waitCalls(100)
		t.Logf("round %d: %d calls so far", round, total.Load())
	}
	close(stop)
	wg.Wait()
	assert.Zero(t, failed.Load(), "failed calls: %v", firstErr)
	assert.Greater(t, total.Load(), int64(600))
}

// TestIdleLaneParks: a lane without calls closes its connections, and the
// next call for it wakes it up and is served by it, not by fallback.
func TestIdleLaneParks(t *testing.T) {
	f := newFleet(t)
	prod := f.start("svc", "", "prod", 0)
	gray := f.start("svc", "gray", "gray", 0)
	client := f.dial("svc", nil, resolver.WithLaneIdleTimeout(50_000_000)) // 50ms
	eventually(t, "gray", func() result { return call(client, "gray") }, servedBy("gray"))
	require.Equal(t, int64(1), gray.open.Load())

	// Keep the base lane busy while gray idles: only gray parks.
	deadline := 0
	for gray.open.Load() > 0 {
		require.NoError(t, call(client, "").err)
		deadline++
		require.Less(t, deadline, 100000, "gray never parked")
	}
	assert.Equal(t, int64(1), prod.open.Load(), "the base lane never parks")

	r := call(client, "gray")
	require.NoError(t, r.err)
	assert.Equal(t, "gray", r.served, "a woken lane serves the call")
	assert.Empty(t, r.reason)
	assert.Equal(t, int64(2), gray.accepted.Load())
}

func TestNoInstanceAnywhere(t *testing.T) {
	f := newFleet(t)
	client := f.dial("nothing", nil)
	r := call(client, "")
	require.Error(t, r.err)
	assert.Equal(t, codes.Unavailable, status.Code(r.err))

	// A wait-for-ready call waits for an instance instead of failing.
	done := make(chan result, 1)
	go func() { done <- call(client, "gray", grpc.WaitForReady(true)) }()
	f.start("nothing", "", "late", 0)
	r = <-done
	require.NoError(t, r.err)
	assert.Equal(t, "late", r.served)
	assert.True(t, strings.HasPrefix(r.reason, "noinstances"))
}
