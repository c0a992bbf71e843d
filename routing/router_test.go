package routing_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/graylane/graylane/fallback"
	"github.com/graylane/graylane/internal/metrictest"
	"github.com/graylane/graylane/registry"
	"github.com/graylane/graylane/routing"
	"github.com/graylane/graylane/tag"
)

const defaultTestTimeout = 10 * time.Second

// registerAll registers instances in reg, named after their lanes.
func registerAll(t *testing.T, reg registry.Registry, insts ...registry.Instance) {
	t.Helper()
	for _, in := range insts {
		_, err := reg.Register(context.Background(), in)
		require.NoError(t, err)
	}
}

func prodAndGray() []registry.Instance {
	return []registry.Instance{
		{Service: "svc", Addr: "127.0.0.1:1", Name: "prod-0"},
		{Service: "svc", Addr: "127.0.0.1:2", Name: "gray-0", Tag: tag.MustParse("gray")},
	}
}

// TestRouterFailedInstanceTimeout: an instance reported as failed is
// skipped (its lane falls back, "unavailable") for the failed-instance
// timeout, then chosen again without any news from the registry.
func TestRouterFailedInstanceTimeout(t *testing.T) {
	const skip = 100 * time.Millisecond
	reg := registry.NewMemory()
	defer reg.Close()
	registerAll(t, reg, prodAndGray()...)
	r := routing.NewRouter(reg, nil, routing.WithFailedInstanceTimeout(skip))
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
	registry.Registry
	open, total atomic.Int64
}

func (c *watchCounter) Watch(ctx context.Context, service string) (registry.Watcher, error) {
	w, err := c.Registry.Watch(ctx, service)
	if err != nil {
		return nil, err
	}
	c.open.Add(1)
	c.total.Add(1)
	return &countedWatcher{Watcher: w, c: c}, nil
}

type countedWatcher struct {
	registry.Watcher
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
	mem := registry.NewMemory()
	defer mem.Close()
	registerAll(t, mem, prodAndGray()...)
	reg := &watchCounter{Registry: mem}
	r := routing.NewRouter(reg, nil, routing.WithServiceIdleTimeout(idle))
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

func TestRouterTelemetry(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	reg := registry.NewMemory()
	defer reg.Close()
	_, err := reg.Register(context.Background(), registry.Instance{Service: "svc", Addr: "10.0.0.1:80"})
	require.NoError(t, err)
	router := routing.NewRouter(reg, nil, routing.WithMeterProvider(mp))
	defer router.Close()
	for range 2 {
		_, err := router.Route(context.Background(), "svc", tag.MustParse("gray"))
		require.NoError(t, err)
	}
	// gray has no instance and no policy of its own: it counts as unknown.
	assert.Equal(t, map[string]int64{routing.UnknownTag + ">prod:noinstances": 2, ">prod:untagged": 0, "prod>prod:matched": 0},
		metrictest.Decisions(t, reader, "svc"))
}
