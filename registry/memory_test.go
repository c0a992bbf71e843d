package registry_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/graylane/graylane/registry"
	"github.com/graylane/graylane/registry/registrytest"
)

// TestMemoryContract: Memory keeps the Registry contract.
func TestMemoryContract(t *testing.T) {
	registrytest.Run(t, func(t *testing.T) registry.Registry {
		m := registry.NewMemory()
		t.Cleanup(func() { m.Close() })
		return m
	})
}

// TestMemoryInspect: Services and Instances show what is registered now.
func TestMemoryInspect(t *testing.T) {
	ctx := context.Background()
	m := registry.NewMemory()
	defer m.Close()
	assert.Empty(t, m.Services())
	_, err := m.Register(ctx, registrytest.Inst("reviews", "10.0.0.2:1", ""))
	require.NoError(t, err)
	r, err := m.Register(ctx, registrytest.Inst("reviews", "10.0.0.1:1", "gray"))
	require.NoError(t, err)
	_, err = m.Register(ctx, registrytest.Inst("ratings", "10.0.0.3:1", ""))
	require.NoError(t, err)
	assert.Equal(t, []string{"ratings", "reviews"}, m.Services())
	assert.Equal(t, []string{"10.0.0.1:1/gray", "10.0.0.2:1/prod"}, registrytest.Addrs(m.Instances("reviews")))
	require.NoError(t, r.Deregister(ctx))
	assert.Equal(t, []string{"10.0.0.2:1/prod"}, registrytest.Addrs(m.Instances("reviews")))
	assert.Empty(t, m.Instances("nosuch"))
}

func TestInstanceValidate(t *testing.T) {
	tests := []struct {
		in   registry.Instance
		want string
	}{
		{registry.Instance{Service: "reviews", Addr: "127.0.0.1:80"}, ""},
		{registry.Instance{Service: "", Addr: "127.0.0.1:80"}, "service name"},
		{registry.Instance{Service: "bad name", Addr: "127.0.0.1:80"}, "service name"},
		{registry.Instance{Service: "reviews", Addr: "127.0.0.1"}, "not host:port"},
		{registry.Instance{Service: "reviews", Addr: ":80"}, "not host:port"},
		{registry.Instance{Service: "reviews", Addr: "a/b:80"}, "not host:port"},
		{registry.Instance{Service: "reviews", Addr: "host:http"}, "not host:port"},
		{registry.Instance{Service: "reviews", Addr: "host:0"}, "not host:port"},
		{registry.Instance{Service: "reviews", Addr: "host:70000"}, "not host:port"},
		{registry.Instance{Service: "reviews", Addr: "[::1]:80"}, ""},
		{registry.Instance{Service: "reviews", Addr: "reviews-0.reviews.svc:9080"}, ""},
		{registry.Instance{Service: "reviews", Addr: "a:1", Weight: registry.MaxWeight + 1}, "weight"},
		{registry.Instance{Service: "reviews", Addr: "a:1", Health: 7}, "unknown health"},
	}
	for _, tt := range tests {
		err := tt.in.Validate()
		if tt.want == "" {
			assert.NoError(t, err)
			continue
		}
		assert.ErrorIs(t, err, registry.ErrInvalidInstance)
		assert.ErrorContains(t, err, tt.want)
		_, err = registry.NewMemory().Register(context.Background(), tt.in)
		assert.ErrorIs(t, err, registry.ErrInvalidInstance)
	}
	in := registry.Instance{Service: "s", Addr: "a:1"}
	assert.Equal(t, "a:1", in.DisplayName())
	assert.Equal(t, uint32(1), in.EffectiveWeight())
	assert.Equal(t, "prod", in.Lane("prod"))
	assert.Equal(t, "serving", registry.Serving.String())
	assert.Equal(t, "notserving", registry.NotServing.String())
}

// TestMemoryForgetsEmptyServices: watching names that never get an
// instance leaves nothing behind once the watchers are closed.
func TestMemoryForgetsEmptyServices(t *testing.T) {
	ctx := context.Background()
	m := registry.NewMemory()
	defer m.Close()
	for i := range 100 {
		w, err := m.Watch(ctx, fmt.Sprintf("nosuch-%d", i))
		require.NoError(t, err)
		require.NoError(t, w.Close())
	}
	r, err := m.Register(ctx, registrytest.Inst("svc", "10.0.0.1:80", ""))
	require.NoError(t, err)
	assert.Equal(t, []string{"svc"}, m.Services())
	require.NoError(t, r.Deregister(ctx))
	assert.Empty(t, m.Services())
	assert.ErrorIs(t, r.Update(ctx, r.Instance()), registry.ErrNotRegistered)
}
