package resolver_test

import (
	"context"
	"errors"
	"net"
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
	"github.com/graylane/graylane/resolver"
	"github.com/graylane/graylane/tag"
)

// failingRegistry delivers the sets of an inner registry, then fails.
type failingRegistry struct {
	resolver.Registry
	fail chan struct{}
}

type failingWatcher struct {
	resolver.Watcher
	fail chan struct{}
}

func (r failingRegistry) Watch(ctx context.Context, service string) (resolver.Watcher, error) {
	w, err := r.Registry.Watch(ctx, service)
	return failingWatcher{w, r.fail}, err
}

func (w failingWatcher) Next(ctx context.Context) ([]resolver.Instance, error) {
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
	cc, err := grpc.NewClient("graylane:///not a service", append(resolver.DialOptions(resolver.NewMemory(), nil),
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
	dyn := resolver.NewDynamicPolicy(nil)
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

// slowListener hands each accepted connection over after a delay: the
// instance stays connecting that long.
type slowListener struct {
	net.Listener
	delay time.Duration
}

func (l slowListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		time.Sleep(l.delay) // the fault being injected: a slow handshake
	}
	return c, err
}

func startSlow(t *testing.T, f *fleet, lane, name string, delay time.Duration) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	in := &instance{f: f, name: name, service: "svc"}
	in.srv = grpc.NewServer()
	testgrpc.RegisterTestServiceServer(in.srv, in)
	go in.srv.Serve(slowListener{lis, delay})
	t.Cleanup(in.srv.Stop)
	_, err = f.reg.Register(context.Background(), resolver.Instance{Service: "svc", Addr: lis.Addr().String(), Name: name, Tag: tag.MustParse(lane)})
	require.NoError(t, err)
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
		startSlow(t, f, "gray", "slow-gray", delay)
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
		startSlow(t, f, "gray", "slow-gray", delay)
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
		startSlow(t, f, "gray", "slow-gray", 5*time.Second)
		r := eventually(t, "timeout", func() result { return call(client, "gray") }, func(r result) bool { return r.reason == "unavailable" })
		assert.Equal(t, "prod", r.served)
	})
}
