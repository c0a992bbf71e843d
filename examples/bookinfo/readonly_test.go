package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/graylane/graylane/examples/bookinfo/app"
	"github.com/graylane/graylane/registry"
)

// readOnly is a registry that cannot register, as Kubernetes' cannot.
type readOnly struct{ *registry.Memory }

func (readOnly) Register(context.Context, registry.Instance) (registry.Registration, error) {
	return nil, registry.ErrReadOnly
}

// TestReadOnlyRegistry: on a read-only registry the instances run without
// registering, and scaling, which the platform does there, is refused
// with an error that says so, in Go and in the admin API.
func TestReadOnlyRegistry(t *testing.T) {
	mem := registry.NewMemory()
	defer mem.Close()
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	sys, err := app.Start(ctx, app.Config{Deployments: []string{"details-v1", "reviews-v1"}, Registry: readOnly{mem},
		AdminAddr: "127.0.0.1:0", NoEvents: true, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	defer sys.Close(context.Background())

	err = sys.Scale(ctx, "details-v1", 2)
	require.ErrorIs(t, err, app.ErrPlatformScaled)
	assert.Contains(t, err.Error(), "kubectl scale deployment")

	resp, err := http.Post(sys.AdminURL()+"/api/deployments/reviews-v1/scale?replicas=0", "", nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	var body map[string]string
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	assert.Contains(t, body["error"], "listed by Kubernetes (read-only registry)")
	for _, d := range sys.Deployments() {
		if d.Name == "details-v1" || d.Name == "reviews-v1" {
			assert.Len(t, d.Instances, 1, d.Name) // still running: nothing was scaled
		}
	}
}
