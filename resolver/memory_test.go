package resolver_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/graylane/graylane/resolver"
	"github.com/graylane/graylane/tag"
)

func inst(service, addr, lane string) resolver.Instance {
	in := resolver.Instance{Service: service, Addr: addr}
	if lane != "" {
		in.Tag = tag.MustParse(lane)
	}
	return in
}

func next(t *testing.T, w resolver.Watcher) []resolver.Instance {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	got, err := w.Next(ctx)
	require.NoError(t, err)
	return got
}

func addrs(insts []resolver.Instance) []string {
	out := []string{}
	for _, in := range insts {
		out = append(out, in.Addr+"/"+in.Lane("prod"))
	}
	return out
}

func TestMemoryWatch(t *testing.T) {
	ctx := context.Background()
	m := resolver.NewMemory()
	defer m.Close()

	w, err := m.Watch(ctx, "reviews")
	require.NoError(t, err)
	defer w.Close()
	assert.Empty(t, next(t, w), "the first Next returns the current, empty, set at once")

	r1, err := m.Register(ctx, inst("reviews", "10.0.0.2:1", ""))
	require.NoError(t, err)
	assert.Equal(t, []string{"10.0.0.2:1/prod"}, addrs(next(t, w)))

	r2, err := m.Register(ctx, resolver.Instance{Service: "reviews", Addr: "10.0.0.1:1", Tag: tag.MustParse("gray"), Metadata: map[string]string{"v": "2"}})
	require.NoError(t, err)
	got := next(t, w)
	assert.Equal(t, []string{"10.0.0.1:1/gray", "10.0.0.2:1/prod"}, addrs(got), "sorted by address")
	assert.Equal(t, "2", got[0].Metadata["v"])

	_, err = m.Register(ctx, inst("reviews", "10.0.0.1:1", "v3"))
	assert.ErrorIs(t, err, resolver.ErrDuplicate)

	upd := r2.Instance()
	upd.Tag = tag.MustParse("v3")
	require.NoError(t, r2.Update(ctx, upd))
	assert.Equal(t, []string{"10.0.0.1:1/v3", "10.0.0.2:1/prod"}, addrs(next(t, w)))
	assert.ErrorIs(t, r2.Update(ctx, inst("reviews", "10.0.0.9:1", "")), resolver.ErrInvalidInstance, "address is fixed")

	require.NoError(t, r1.Deregister(ctx))
	require.NoError(t, r1.Deregister(ctx), "idempotent")
	assert.Equal(t, []string{"10.0.0.1:1/v3"}, addrs(next(t, w)))
	assert.Equal(t, "10.0.0.2:1", r1.Instance().Addr, "the last registered instance, after Deregister too")
	assert.ErrorIs(t, r1.Update(ctx, r1.Instance()), resolver.ErrNotRegistered)

	// Another service's changes do not wake this watcher.
	_, err = m.Register(ctx, inst("ratings", "10.0.0.3:1", ""))
	require.NoError(t, err)
	ctxShort, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	_, err = w.Next(ctxShort)
	assert.ErrorIs(t, err, context.DeadlineExceeded)

	assert.Equal(t, []string{"ratings", "reviews"}, m.Services())
	assert.Len(t, m.Instances("reviews"), 1)

	require.NoError(t, w.Close())
	_, err = w.Next(ctx)
	assert.ErrorIs(t, err, resolver.ErrClosed)
}

// TestMemorySlowWatcher: registrations never wait for a watcher that does
// not read, and the watcher then gets the last state in one step.
func TestMemorySlowWatcher(t *testing.T) {
	ctx := context.Background()
	m := resolver.NewMemory()
	defer m.Close()
	w, err := m.Watch(ctx, "svc")
	require.NoError(t, err)
	defer w.Close()
	next(t, w)

	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 1000 {
			_, err := m.Register(ctx, inst("svc", fmt.Sprintf("10.0.%d.%d:80", i/256, i%256), ""))
			require.NoError(t, err)
		}
	}()
	select {
	case <-done:
	case <-time.After(defaultTestTimeout):
		t.Fatal("registration blocked on a watcher that does not read")
	}
	assert.Len(t, next(t, w), 1000, "the watcher skips to the last set")
}

func TestMemoryConcurrent(t *testing.T) {
	ctx := context.Background()
	m := resolver.NewMemory()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range 200 {
				r, err := m.Register(ctx, inst("svc", fmt.Sprintf("10.%d.0.%d:80", g, i), ""))
				require.NoError(t, err)
				if i%2 == 0 {
					require.NoError(t, r.Deregister(ctx))
				}
			}
		}()
		go func() {
			defer wg.Done()
			w, err := m.Watch(ctx, "svc")
			require.NoError(t, err)
			defer w.Close()
			// Whatever it skips, a watcher always ends on the last state.
			for len(next(t, w)) != 400 {
			}
		}()
	}
	wg.Wait()
	assert.Len(t, m.Instances("svc"), 400)

	w, err := m.Watch(ctx, "svc")
	require.NoError(t, err)
	require.NoError(t, m.Close())
	_, err = w.Next(ctx)
	assert.ErrorIs(t, err, resolver.ErrClosed)
	_, err = m.Register(ctx, inst("svc", "10.9.9.9:80", ""))
	assert.ErrorIs(t, err, resolver.ErrClosed)
}

func TestInstanceValidate(t *testing.T) {
	tests := []struct {
		in   resolver.Instance
		want string
	}{
		{resolver.Instance{Service: "reviews", Addr: "127.0.0.1:80"}, ""},
		{resolver.Instance{Service: "", Addr: "127.0.0.1:80"}, "service name"},
		{resolver.Instance{Service: "bad name", Addr: "127.0.0.1:80"}, "service name"},
		{resolver.Instance{Service: "reviews", Addr: "127.0.0.1"}, "not host:port"},
		{resolver.Instance{Service: "reviews", Addr: ":80"}, "not host:port"},
		{resolver.Instance{Service: "reviews", Addr: "a/b:80"}, "not host:port"},
		{resolver.Instance{Service: "reviews", Addr: "host:http"}, "not host:port"},
		{resolver.Instance{Service: "reviews", Addr: "host:0"}, "not host:port"},
		{resolver.Instance{Service: "reviews", Addr: "host:70000"}, "not host:port"},
		{resolver.Instance{Service: "reviews", Addr: "[::1]:80"}, ""},
		{resolver.Instance{Service: "reviews", Addr: "reviews-0.reviews.svc:9080"}, ""},
		{resolver.Instance{Service: "reviews", Addr: "a:1", Weight: resolver.MaxWeight + 1}, "weight"},
		{resolver.Instance{Service: "reviews", Addr: "a:1", Health: 7}, "unknown health"},
	}
	for _, tt := range tests {
		err := tt.in.Validate()
		if tt.want == "" {
			assert.NoError(t, err)
			continue
		}
		assert.ErrorIs(t, err, resolver.ErrInvalidInstance)
		assert.ErrorContains(t, err, tt.want)
		_, err = resolver.NewMemory().Register(context.Background(), tt.in)
		assert.ErrorIs(t, err, resolver.ErrInvalidInstance)
	}
	in := resolver.Instance{Service: "s", Addr: "a:1"}
	assert.Equal(t, "a:1", in.DisplayName())
	assert.Equal(t, uint32(1), in.EffectiveWeight())
	assert.Equal(t, "prod", in.Lane("prod"))
	assert.Equal(t, "serving", resolver.Serving.String())
	assert.Equal(t, "notserving", resolver.NotServing.String())
}

// TestMemoryForgetsEmptyServices: watching names that never get an
// instance leaves nothing behind once the watchers are closed.
func TestMemoryForgetsEmptyServices(t *testing.T) {
	ctx := context.Background()
	m := resolver.NewMemory()
	defer m.Close()
	for i := range 100 {
		w, err := m.Watch(ctx, fmt.Sprintf("nosuch-%d", i))
		require.NoError(t, err)
		require.NoError(t, w.Close())
	}
	r, err := m.Register(ctx, inst("svc", "10.0.0.1:80", ""))
	require.NoError(t, err)
	assert.Equal(t, []string{"svc"}, m.Services())
	require.NoError(t, r.Deregister(ctx))
	assert.Empty(t, m.Services())
	assert.ErrorIs(t, r.Update(ctx, r.Instance()), resolver.ErrNotRegistered)
}
