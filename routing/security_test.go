package routing

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/graylane/graylane/internal/metrictest"
	"github.com/graylane/graylane/registry"
	"github.com/graylane/graylane/tag"
)

// securityTestTimeout bounds each test of this file.
const securityTestTimeout = 10 * time.Second

// randomTag returns a valid tag that no test registers.
func randomTag(i int) tag.Tag {
	return tag.MustParse(fmt.Sprintf("r%d-%x", i, rand.Uint64()))
}

// TestRouterUnknownTagsDoNotGrowState: requests with thousands of
// different tags that are no lane fall back like one unknown tag: the
// decision counter has series only for the lanes in the registry, the
// untagged requests and "(unknown)".
func TestRouterUnknownTagsDoNotGrowState(t *testing.T) {
	reg := registry.NewMemory()
	defer reg.Close()
	ctx, cancel := context.WithTimeout(context.Background(), securityTestTimeout)
	defer cancel()
	for _, in := range []registry.Instance{
		{Service: "svc", Addr: "127.0.0.1:1"},
		{Service: "svc", Addr: "127.0.0.1:2", Tag: tag.MustParse("gray")},
	} {
		_, err := reg.Register(ctx, in)
		require.NoError(t, err)
	}
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	r := NewRouter(reg, nil, WithMeterProvider(mp))
	defer r.Close()

	const n = 2000
	for i := range n {
		rt, err := r.Route(ctx, "svc", randomTag(i))
		require.NoError(t, err)
		require.Equal(t, "prod", rt.Lane)
	}
	_, err := r.Route(ctx, "svc", tag.MustParse("gray"))
	require.NoError(t, err)
	_, err = r.Route(ctx, "svc", tag.Tag{})
	require.NoError(t, err)

	requested := metrictest.Counts(t, reader, DecisionMetric, AttrTag)
	assert.Equal(t, int64(n), requested[UnknownTag])
	assert.Equal(t, int64(1), requested["gray"])
	assert.Equal(t, int64(1), requested[""])
	for r := range requested {
		assert.Contains(t, []string{"", "prod", "gray", UnknownTag}, r, "a series per registry lane only")
	}

	r.mu.Lock()
	s := r.services["svc"]
	r.mu.Unlock()
	tb := s.table.Load()
	assert.Len(t, tb.lanes, 2, "lanes come from the registry only")
	routes := 0
	for range tb.byLane.All() {
		routes++
	}
	assert.LessOrEqual(t, routes, 2, "routes for the registry's lanes only")
}

// TestRouterMaxServices: a Router watches at most WithMaxServices
// services; a call for one more fails without watching it, and a name that
// is not a valid service name is refused before anything is watched.
func TestRouterMaxServices(t *testing.T) {
	reg := registry.NewMemory()
	defer reg.Close()
	ctx, cancel := context.WithTimeout(context.Background(), securityTestTimeout)
	defer cancel()
	for _, s := range []string{"a", "b", "c"} {
		_, err := reg.Register(ctx, registry.Instance{Service: s, Addr: "127.0.0.1:1"})
		require.NoError(t, err)
	}
	r := NewRouter(reg, nil, WithMaxServices(2))
	defer r.Close()

	for _, bad := range []string{"", "../etc", "a b", "-x", string(make([]byte, 100))} {
		_, err := r.Route(ctx, bad, tag.Tag{})
		assert.ErrorIs(t, err, registry.ErrInvalidInstance, "%q", bad)
	}
	for _, s := range []string{"a", "b"} {
		_, err := r.Route(ctx, s, tag.Tag{})
		require.NoError(t, err)
	}
	_, err := r.Route(ctx, "c", tag.Tag{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the most allowed")
	r.mu.Lock()
	defer r.mu.Unlock()
	assert.Len(t, r.services, 2)
}
