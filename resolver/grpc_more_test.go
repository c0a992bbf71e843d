package resolver_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"

	"github.com/graylane/graylane/fallback"
	"github.com/graylane/graylane/registry"
	"github.com/graylane/graylane/resolver"
)

// failingRegistry delivers the sets of an inner registry, then fails.
type failingRegistry struct {
	registry.Registry
	fail chan struct{}
}

type failingWatcher struct {
	registry.Watcher
	fail chan struct{}
}

func (r failingRegistry) Watch(ctx context.Context, service string) (registry.Watcher, error) {
	w, err := r.Registry.Watch(ctx, service)
	return failingWatcher{w, r.fail}, err
}

func (w failingWatcher) Next(ctx context.Context) ([]registry.Instance, error) {
	select {
	case <-w.fail:
		return nil, errors.New("registry unreachable")
	default:
	}
	return w.Watcher.Next(ctx)
}

func TestResolverErrorKeepsLastState(t *testing.T) {
	f := newFleet(t)
	f.start("svc", "", "prod", 0)
	f.start("svc", "gray", "gray", 0)
	fail := make(chan struct{})
	cc, err := grpc.NewClient("graylane:///svc", append(resolver.DialOptions(failingRegistry{f.reg, fail}, nil),
		grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	require.NoError(t, err)
	defer cc.Close()
	client := testgrpc.NewTestServiceClient(cc)
	eventually(t, "gray", func() result { return call(client, "gray") }, servedBy("gray"))

	close(fail)
	f.start("svc", "v3", "v3", 0) // wakes the watcher, which now fails
	for range 20 {
		assert.Equal(t, "gray", call(client, "gray").served)
		assert.Equal(t, "prod", call(client, "").served)
	}
}

func TestBuilderRejectsBadTarget(t *testing.T) {
	cc, err := grpc.NewClient("graylane:///not a service", append(resolver.DialOptions(registry.NewMemory(), nil),
		grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	require.NoError(t, err) // the resolver is built on the first call
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	_, err = testgrpc.NewTestServiceClient(cc).UnaryCall(ctx, &testgrpc.SimpleRequest{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "service name")
}

func TestDynamicPolicyGRPC(t *testing.T) {
	f := newFleet(t)
	f.start("svc", "", "prod", 0)
	dyn := fallback.NewDynamic(nil)
	client := f.dial("svc", nil, resolver.WithDynamicPolicy(dyn))
	assert.Equal(t, result{served: "prod", reason: "noinstances"}, call(client, "gray"))

	strict, err := fallback.NewPolicy(fallback.WithLaneMode("gray", fallback.Strict))
	require.NoError(t, err)
	dyn.Store(strict)
	r := eventually(t, "strict", func() result { return call(client, "gray") }, func(r result) bool { return r.err != nil })
	assert.Equal(t, codes.Unavailable, status.Code(r.err))

	dyn.Store(nil)
	eventually(t, "loose again", func() result { return call(client, "gray") }, servedBy("prod"))
}

// TestFailoverTimeout: a lane that is still connecting is waited for up to
// the failover timeout; with the default of 0 the call falls back at once.
func TestFailoverTimeout(t *testing.T) {
	const delay = 300 * time.Millisecond
	t.Run("waits", func(t *testing.T) {
		f := newFleet(t)
		f.start("svc", "", "prod", 0)
		policy, err := fallback.NewPolicy(fallback.WithFailoverTimeout(5 * time.Second))
		require.NoError(t, err)
		client := f.dial("svc", policy)
		require.Equal(t, "prod", call(client, "").served) // the channel is up
		f.startSlow("svc", "gray", "slow-gray", 0, delay)
		start := time.Now()
		// Until the balancer hears of the new instance, calls go to prod
		// (noinstances); from then on they wait for it.
		r := eventually(t, "gray known", func() result { return call(client, "gray") }, func(r result) bool { return r.reason != "noinstances" })
		require.NoError(t, r.err)
		assert.Equal(t, "slow-gray", r.served, "the connecting lane is waited for, not fallen back from")
		assert.GreaterOrEqual(t, time.Since(start), delay/2)
	})
	t.Run("zero falls back at once", func(t *testing.T) {
		f := newFleet(t)
		f.start("svc", "", "prod", 0)
		client := f.dial("svc", nil)
		require.Equal(t, "prod", call(client, "").served)
		f.startSlow("svc", "gray", "slow-gray", 0, delay)
		r := eventually(t, "gray seen connecting", func() result { return call(client, "gray") },
			func(r result) bool { return r.reason == "unavailable" })
		assert.Equal(t, "prod", r.served)
		eventually(t, "gray ready", func() result { return call(client, "gray") }, servedBy("slow-gray"))
	})
	t.Run("expires", func(t *testing.T) {
		f := newFleet(t)
		f.start("svc", "", "prod", 0)
		policy, err := fallback.NewPolicy(fallback.WithFailoverTimeout(100 * time.Millisecond))
		require.NoError(t, err)
		client := f.dial("svc", policy)
		require.Equal(t, "prod", call(client, "").served)
		f.startSlow("svc", "gray", "slow-gray", 0, time.Second)
		r := eventually(t, "timeout", func() result { return call(client, "gray") }, func(r result) bool { return r.reason == "unavailable" })
		assert.Equal(t, "prod", r.served)
	})
}

// TestLaneWakeTimeout: the first call for a parked lane wakes it and waits
// up to the wake timeout for a connection. When the lane's handshake takes
// longer than that, the call falls back ("unavailable") while the lane
// reconnects, and the lane serves again once it has.
func TestLaneWakeTimeout(t *testing.T) {
	const handshake = 300 * time.Millisecond
	for _, c := range []struct {
		name  string
		wake  time.Duration
		first result
	}{
		{"longer than the handshake", 5 * time.Second, result{served: "gray"}},
		{"shorter than the handshake", 0, result{served: "prod", reason: "unavailable"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFleet(t)
			f.start("svc", "", "prod", 0)
			gray := f.start("svc", "gray", "gray", 0)
			client := f.dial("svc", nil, resolver.WithLaneIdleTimeout(50*time.Millisecond), resolver.WithLaneWakeTimeout(c.wake))
			eventually(t, "gray", func() result { return call(client, "gray") }, servedBy("gray"))
			for n := 0; gray.open.Load() > 0; n++ { // the base lane busy, gray idle: gray parks
				require.NoError(t, call(client, "").err)
				require.Less(t, n, 100000, "gray never parked")
			}

			gray.handshake.Store(int64(handshake))
			start := time.Now()
			assert.Equal(t, c.first, call(client, "gray"))
			if c.first.served == "gray" {
				assert.GreaterOrEqual(t, time.Since(start), handshake, "served before the handshake ended")
			}
			eventually(t, "gray back", func() result { return call(client, "gray") }, servedBy("gray"))
		})
	}
}
