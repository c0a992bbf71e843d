package etcd_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/graylane/graylane/registry"
	"github.com/graylane/graylane/registry/etcd"
	"github.com/graylane/graylane/registry/etcd/etcdtest"
	"github.com/graylane/graylane/registry/registrytest"
)

func TestServices(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	srv := etcdtest.Start(t)
	client := newClient(t, srv.Endpoint())
	reg, _ := newRegistry(t, client)
	other, _ := newRegistry(t, newClient(t, srv.Endpoint()), etcd.WithPrefix("/elsewhere"))

	names, err := reg.Services(ctx)
	require.NoError(t, err)
	assert.Empty(t, names)

	for _, in := range []registry.Instance{
		registrytest.Inst("reviews", "10.0.0.1:9080", ""),
		registrytest.Inst("reviews", "10.0.0.2:9080", "gray"),
		registrytest.Inst("ab", "10.0.0.3:9080", ""),
		registrytest.Inst("a", "10.0.0.4:9080", "gray"),
	} {
		_, err := reg.Register(ctx, in)
		require.NoError(t, err)
	}
	_, err = other.Register(ctx, registrytest.Inst("ratings", "10.0.0.5:9080", ""))
	require.NoError(t, err)
	for _, key := range []string{
		"/graylane/services/not a name/10.0.0.6:1", // invalid name
		"/graylane/services/noaddr",                // no address part
		"/graylane/services/details/",              // empty address
		"/graylane/services/details/10.0.0.7:1",    // a key another tool wrote, value not checked
	} {
		_, err := client.Put(ctx, key, "garbage")
		require.NoError(t, err)
	}

	names, err = reg.Services(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "ab", "details", "reviews"}, names)
	names, err = other.Services(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"ratings"}, names, "the prefix separates registries")

	srv.Stop()
	short, cancelShort := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancelShort()
	_, err = reg.Services(short)
	assert.Error(t, err, "etcd out of reach")

	reg.Close() // etcd is down: the revocation fails, the Registry closes all the same
	_, err = reg.Services(ctx)
	assert.ErrorIs(t, err, registry.ErrClosed)
}
