package registry_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/graylane/graylane/registry"
	"github.com/graylane/graylane/registry/registrytest"
)

func shortCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), registrytest.Timeout)
	t.Cleanup(cancel)
	return ctx
}

// TestLatestFirstSet: before the first Publish a Watcher waits; after it,
// every new Watcher gets the set at once, sorted by address.
func TestLatestFirstSet(t *testing.T) {
	var l registry.Latest
	w := l.Watch(nil)
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := w.Next(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded, "no set yet")

	assert.True(t, l.Publish([]registry.Instance{
		registrytest.Inst("svc", "10.0.0.2:1", ""), registrytest.Inst("svc", "10.0.0.1:1", "gray"),
	}))
	got, err := w.Next(shortCtx(t))
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.Equal(t, "10.0.0.1:1", got[0].Addr)

	w2 := l.Watch(nil)
	defer w2.Close()
	got2, err := w2.Next(shortCtx(t))
	require.NoError(t, err)
	assert.Equal(t, got, got2)
	insts, known := l.Instances()
	assert.True(t, known)
	assert.Equal(t, got, insts)
}

// TestLatestSameSet: publishing an equal set wakes no one.
func TestLatestSameSet(t *testing.T) {
	var l registry.Latest
	in := registrytest.Inst("svc", "10.0.0.1:1", "")
	in.Metadata = map[string]string{"k": "v"}
	require.True(t, l.Publish([]registry.Instance{in}))
	same := in
	same.Metadata = map[string]string{"k": "v"}
	assert.False(t, l.Publish([]registry.Instance{same}))
	changed := in
	changed.Metadata = map[string]string{"k": "w"}
	assert.True(t, l.Publish([]registry.Instance{changed}))
}

// TestLatestSlowWatcher: a Watcher that reads late gets the last set only.
func TestLatestSlowWatcher(t *testing.T) {
	var l registry.Latest
	w := l.Watch(nil)
	defer w.Close()
	for i := range 100 {
		l.Publish([]registry.Instance{registrytest.Inst("svc", "10.0.0.1:1", []string{"a", "b"}[i%2])})
	}
	got, err := w.Next(shortCtx(t))
	require.NoError(t, err)
	assert.Equal(t, "b", got[0].Tag.String())
}

// TestLatestReleased: closing a Watcher reports how many are left, once;
// Latest.Close ends the others without reporting.
func TestLatestReleased(t *testing.T) {
	var l registry.Latest
	var mu sync.Mutex
	var left []int
	release := func(n int) { mu.Lock(); left = append(left, n); mu.Unlock() }
	w1, w2, w3 := l.Watch(release), l.Watch(release), l.Watch(release)
	require.NoError(t, w1.Close())
	require.NoError(t, w1.Close())
	require.NoError(t, w2.Close())
	assert.Equal(t, []int{2, 1}, left)
	assert.Equal(t, 1, l.Watchers())

	l.Close()
	_, err := w3.Next(shortCtx(t))
	require.ErrorIs(t, err, registry.ErrClosed)
	require.NoError(t, w3.Close())
	assert.Equal(t, []int{2, 1}, left, "Latest.Close reports nothing")
	assert.False(t, l.Publish(nil))
	_, err = l.Watch(nil).Next(shortCtx(t))
	require.ErrorIs(t, err, registry.ErrClosed)
}

// TestLatestCloseWakesNext: a Next blocked in another goroutine returns
// ErrClosed when its Watcher closes.
func TestLatestCloseWakesNext(t *testing.T) {
	var l registry.Latest
	w := l.Watch(nil)
	errc := make(chan error, 1)
	go func() { _, err := w.Next(context.Background()); errc <- err }()
	require.NoError(t, w.Close())
	select {
	case err := <-errc:
		require.ErrorIs(t, err, registry.ErrClosed)
	case <-time.After(registrytest.Timeout):
		t.Fatal("Next did not return")
	}
}
