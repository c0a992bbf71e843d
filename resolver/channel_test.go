package resolver_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"

	"github.com/graylane/graylane/fallback"
	"github.com/graylane/graylane/internal/metrictest"
	"github.com/graylane/graylane/registry"
	"github.com/graylane/graylane/resolver"
	"github.com/graylane/graylane/routing"
)

// TestClientsDoNotShareRotation: two channels to one service, called in
// turn, each go round all the instances of the lane: each channel keeps
// its own rotation.
func TestClientsDoNotShareRotation(t *testing.T) {
	f := newFleet(t)
	f.start("svc", "", "a", 0)
	f.start("svc", "", "b", 0)
	c1, c2 := f.dial("svc", nil), f.dial("svc", nil)
	// Each channel first connects to both instances: until then, the one
	// connected serves every call.
	for _, c := range []testgrpc.TestServiceClient{c1, c2} {
		eventually(t, "a", func() result { return call(c, "") }, servedBy("a"))
		eventually(t, "b", func() result { return call(c, "") }, servedBy("b"))
	}
	got := []map[string]int{{}, {}}
	for range 20 {
		for i, c := range []testgrpc.TestServiceClient{c1, c2} {
			r := call(c, "")
			require.NoError(t, r.err)
			got[i][r.served]++
		}
	}
	for i := range got {
		assert.Equal(t, map[string]int{"a": 10, "b": 10}, got[i], "channel %d", i+1)
	}
}

// TestIdleLaneParksPerChannel: a lane one channel uses does not keep it
// connected in another channel that does not.
func TestIdleLaneParksPerChannel(t *testing.T) {
	f := newFleet(t)
	f.start("svc", "", "prod", 0)
	gray := f.start("svc", "gray", "gray", 0)
	busy := f.dial("svc", nil, resolver.WithLaneIdleTimeout(0))
	idle := f.dial("svc", nil, resolver.WithLaneIdleTimeout(50_000_000)) // 50ms
	eventually(t, "busy", func() result { return call(busy, "gray") }, servedBy("gray"))
	eventually(t, "idle", func() result { return call(idle, "gray") }, servedBy("gray"))
	require.Equal(t, int64(2), gray.open.Load())
	for n := 0; gray.open.Load() > 1; n++ {
		require.NoError(t, call(busy, "gray").err)
		require.Less(t, n, 100000, "the idle channel's gray lane never parked")
	}
	assert.Equal(t, int64(1), gray.open.Load(), "the busy channel keeps its connection")
}

// TestStrictUnknownTagCounted: strict rejections of a tag that is no lane
// count in the decision counter.
func TestStrictUnknownTagCounted(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	f := newFleet(t)
	f.start("svc", "", "prod", 0)
	strict, err := fallback.NewPolicy(fallback.WithMode(fallback.Strict))
	require.NoError(t, err)
	c := f.dial("svc", strict, resolver.WithMeterProvider(mp))
	eventually(t, "prod", func() result { return call(c, "") }, servedBy("prod"))
	for range 5 {
		r := call(c, "nosuch")
		require.Error(t, r.err)
		assert.Contains(t, r.err.Error(), `tag "nosuch"`)
	}
	counts := metrictest.Counts(t, reader, routing.DecisionMetric, routing.AttrTag, routing.AttrLane, routing.AttrReason)
	assert.Equal(t, int64(5), counts[routing.UnknownTag+"//noinstances"])
}

// dialConn is dial for a test that needs the channel itself.
func (f *fleet) dialConn(service string, opts ...resolver.Option) *grpc.ClientConn {
	f.t.Helper()
	cc, err := grpc.NewClient("graylane:///"+service, append(resolver.DialOptions(f.reg, nil, opts...),
		grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	require.NoError(f.t, err)
	f.t.Cleanup(func() { cc.Close() })
	return cc
}

// waitState waits until cc reaches want.
func waitState(t *testing.T, cc *grpc.ClientConn, want connectivity.State) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	for s := cc.GetState(); s != want; s = cc.GetState() {
		if !cc.WaitForStateChange(ctx, s) {
			t.Fatalf("state %v, want %v", s, want)
		}
	}
}

// TestStateWhenNoneServing: a channel whose only instance is connected but
// not serving is not READY, since calls fail; it is READY again when the
// instance serves.
func TestStateWhenNoneServing(t *testing.T) {
	f := newFleet(t)
	prod := f.start("svc", "", "prod", 0)
	cc := f.dialConn("svc")
	cc.Connect()
	waitState(t, cc, connectivity.Ready)

	in := prod.reg.Instance()
	in.Health = registry.NotServing
	require.NoError(t, prod.reg.Update(context.Background(), in))
	waitState(t, cc, connectivity.TransientFailure)
	require.Equal(t, int64(1), prod.open.Load(), "the connection stays")

	in.Health = registry.Serving
	require.NoError(t, prod.reg.Update(context.Background(), in))
	waitState(t, cc, connectivity.Ready)
}

// flakyRegistry is a Registry whose first watch fails after its first set,
// with an error that is not ErrClosed.
type flakyRegistry struct {
	registry.Registry
	watches atomic.Int32
}

var errFlaky = errors.New("watch stream reset")

func (r *flakyRegistry) Watch(ctx context.Context, service string) (registry.Watcher, error) {
	n := r.watches.Add(1)
	switch {
	case n == 2:
		return nil, errFlaky // the first rewatch fails too
	case n > 2:
		return r.Registry.Watch(ctx, service)
	}
	w, err := r.Registry.Watch(ctx, service)
	if err != nil {
		return nil, err
	}
	return &flakyWatcher{Watcher: w}, nil
}

type flakyWatcher struct {
	registry.Watcher
	mu    sync.Mutex
	calls int
}

func (w *flakyWatcher) Next(ctx context.Context) ([]registry.Instance, error) {
	w.mu.Lock()
	w.calls++
	first := w.calls == 1
	w.mu.Unlock()
	if first {
		return w.Watcher.Next(ctx)
	}
	return nil, errFlaky
}

// TestResolverRewatches: after a watch fails, the resolver keeps the last
// state, watches again (with backoff, past a failed attempt) and follows
// the registry from then on.
func TestResolverRewatches(t *testing.T) {
	f := newFleet(t)
	f.start("svc", "", "prod", 0)
	reg := &flakyRegistry{Registry: f.reg}
	client := f.dialFrom(reg, "svc", nil)
	eventually(t, "prod", func() result { return call(client, "") }, servedBy("prod"))

	f.start("svc", "gray", "gray", 0) // registered after the watch failed
	eventually(t, "gray after rewatch", func() result { return call(client, "gray") }, servedBy("gray"))
	assert.GreaterOrEqual(t, reg.watches.Load(), int32(3))
}
