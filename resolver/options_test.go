package resolver_test

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	grpcresolver "google.golang.org/grpc/resolver"
	"google.golang.org/grpc/serviceconfig"

	"github.com/graylane/graylane/fallback"
	"github.com/graylane/graylane/resolver"
	"github.com/graylane/graylane/tag"
)

// registerAll registers instances in reg, named after their lanes.
func registerAll(t *testing.T, reg resolver.Registry, insts ...resolver.Instance) {
	t.Helper()
	for _, in := range insts {
		_, err := reg.Register(context.Background(), in)
		require.NoError(t, err)
	}
}

func prodAndGray() []resolver.Instance {
	return []resolver.Instance{
		{Service: "svc", Addr: "127.0.0.1:1", Name: "prod-0"},
		{Service: "svc", Addr: "127.0.0.1:2", Name: "gray-0", Tag: tag.MustParse("gray")},
	}
}

// TestRouterFailedInstanceTimeout: an instance reported as failed is
// skipped (its lane falls back, "unavailable") for the failed-instance
// timeout, then chosen again without any news from the registry.
func TestRouterFailedInstanceTimeout(t *testing.T) {
	const skip = 100 * time.Millisecond
	reg := resolver.NewMemory()
	defer reg.Close()
	registerAll(t, reg, prodAndGray()...)
	r := resolver.NewRouter(reg, nil, resolver.WithFailedInstanceTimeout(skip))
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	gray := tag.MustParse("gray")

	route, err := r.Route(ctx, "svc", gray)
	require.NoError(t, err)
	require.Equal(t, "gray-0", route.Instance.Name)

	failedAt := time.Now()
	r.Failed(route.Instance)
	route, err = r.Route(ctx, "svc", gray)
	require.NoError(t, err)
	assert.Equal(t, "prod-0", route.Instance.Name)
	assert.Equal(t, fallback.Unavailable, route.Reason)

	require.Eventually(t, func() bool {
		route, err := r.Route(ctx, "svc", gray)
		return err == nil && route.Instance.Name == "gray-0"
	}, defaultTestTimeout, time.Millisecond)
	assert.GreaterOrEqual(t, time.Since(failedAt), skip, "the failed instance came back before its timeout")
}

// watchCounter is a Registry that counts the watches open on it.
type watchCounter struct {
	resolver.Registry
	open, total atomic.Int64
}

func (c *watchCounter) Watch(ctx context.Context, service string) (resolver.Watcher, error) {
	w, err := c.Registry.Watch(ctx, service)
	if err != nil {
		return nil, err
	}
	c.open.Add(1)
	c.total.Add(1)
	return &countedWatcher{Watcher: w, c: c}, nil
}

type countedWatcher struct {
	resolver.Watcher
	c    *watchCounter
	once sync.Once
}

func (w *countedWatcher) Close() error {
	w.once.Do(func() { w.c.open.Add(-1) })
	return w.Watcher.Close()
}

// TestRouterServiceIdleTimeout: a Router keeps watching a service while it
// routes calls to it, drops the watch once the service goes a whole idle
// period without calls, and watches it again for the next call.
func TestRouterServiceIdleTimeout(t *testing.T) {
	const idle = 50 * time.Millisecond
	mem := resolver.NewMemory()
	defer mem.Close()
	registerAll(t, mem, prodAndGray()...)
	reg := &watchCounter{Registry: mem}
	r := resolver.NewRouter(reg, nil, resolver.WithServiceIdleTimeout(idle))
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()

	for start := time.Now(); time.Since(start) < 4*idle; {
		_, err := r.Route(ctx, "svc", tag.Tag{})
		require.NoError(t, err)
		require.Equal(t, int64(1), reg.open.Load(), "a service in use lost its watch")
	}
	require.Eventually(t, func() bool { return reg.open.Load() == 0 }, defaultTestTimeout, time.Millisecond,
		"an idle service is still watched")

	route, err := r.Route(ctx, "svc", tag.Tag{})
	require.NoError(t, err)
	assert.Equal(t, "prod-0", route.Instance.Name)
	assert.Equal(t, int64(2), reg.total.Load())
}

// stateRecorder is a gRPC resolver.ClientConn that hands each state it is
// given to the test, and refuses them with refuse.
type stateRecorder struct {
	grpcresolver.ClientConn // the methods the resolver does not call
	states                  chan grpcresolver.State
	refuse                  error
}

func (c *stateRecorder) UpdateState(s grpcresolver.State) error {
	select {
	case c.states <- s:
	default: // the test reads the first one only
	}
	return c.refuse
}

func (c *stateRecorder) ReportError(error) {}

func (c *stateRecorder) ParseServiceConfig(string) *serviceconfig.ParseResult { return nil }

func mustURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	require.NoError(t, err)
	return u
}

// logRecorder is a slog.Handler that keeps the messages it receives.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecorder) WithGroup(string) slog.Handler            { return l }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, r.Message)
	return nil
}

func (l *logRecorder) all() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.msgs, "\n")
}

// TestResolverState: the resolver publishes one Endpoint per instance with
// its lane and name readable through EndpointLane and EndpointInstanceName,
// plus the plain Addresses for policies that read only those; a state the
// channel refuses is logged through WithResolverLogger.
func TestResolverState(t *testing.T) {
	reg := resolver.NewMemory()
	defer reg.Close()
	registerAll(t, reg, prodAndGray()...)
	logs := &logRecorder{}
	b := resolver.NewBuilder(reg, resolver.WithResolverLogger(slog.New(logs)))
	cc := &stateRecorder{states: make(chan grpcresolver.State, 1), refuse: errors.New("no thanks")}
	r, err := b.Build(grpcresolver.Target{URL: *mustURL(t, "graylane:///svc")}, cc, grpcresolver.BuildOptions{})
	require.NoError(t, err)
	defer r.Close()

	var s grpcresolver.State
	select {
	case s = <-cc.states:
	case <-time.After(defaultTestTimeout):
		t.Fatal("no state published")
	}
	var got []string
	for _, ep := range s.Endpoints {
		require.Len(t, ep.Addresses, 1)
		got = append(got, ep.Addresses[0].Addr+" "+resolver.EndpointInstanceName(ep)+" "+resolver.EndpointLane(ep))
	}
	assert.ElementsMatch(t, []string{"127.0.0.1:1 prod-0 ", "127.0.0.1:2 gray-0 gray"}, got)
	var addrs []string
	for _, a := range s.Addresses {
		addrs = append(addrs, a.Addr)
	}
	assert.ElementsMatch(t, []string{"127.0.0.1:1", "127.0.0.1:2"}, addrs)

	// The refusal is logged once UpdateState has returned: close the
	// resolver, which waits for its goroutine, before reading the log.
	r.Close()
	assert.Contains(t, logs.all(), "update not accepted")
}
