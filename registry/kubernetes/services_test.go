package kubernetes

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/graylane/graylane/registry"
)

// TestServices: the services of the namespace are those its EndpointSlices
// name, each once however many slices it has, sorted, with or without a
// ready endpoint; other namespaces' are not listed.
func TestServices(t *testing.T) {
	c, other := newCluster(t), newCluster(t)
	reg := c.registry(nil)
	got, err := reg.Services(bg)
	require.NoError(t, err)
	assert.Empty(t, got)

	c.pod("r1", nil, nil)
	c.slice("reviews-a", "reviews", "", 80, ep{ip: "10.0.0.1", pod: "r1"})
	c.slice("reviews-b", "reviews", "", 80, ep{ip: "10.0.0.2", pod: "r1"})
	c.slice("details-a", "details", "", 80, ep{ip: "10.0.0.3", notReady: true})
	c.slice("empty-a", "empty", "", 80)
	other.slice("ratings-a", "ratings", "", 80, ep{ip: "10.0.0.4"})
	got, err = reg.Services(bg)
	require.NoError(t, err)
	assert.Equal(t, []string{"details", "empty", "reviews"}, got)

	require.NoError(t, reg.Close())
	_, err = reg.Services(bg)
	assert.ErrorIs(t, err, registry.ErrClosed)
}
