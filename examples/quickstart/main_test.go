package main

import (
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// TestQuickstart: untagged requests stay in prod; testers reach the gray
// frontend, whose call to the backend falls back to prod; a client cannot
// pick its lane by sending the tag header itself.
func TestQuickstart(t *testing.T) {
	defer goleak.VerifyNone(t)
	d, err := start(context.Background(), "127.0.0.1:0")
	require.NoError(t, err)
	defer d.close()
	get := func(h map[string]string) string {
		req, err := http.NewRequest(http.MethodGet, d.gateway+"/", nil)
		require.NoError(t, err)
		for k, v := range h {
			req.Header.Set(k, v)
		}
		client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := client.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return string(b)
	}
	assert.Equal(t, "frontend-v1 (prod) -> backend-v1 (prod)\n", get(nil))
	assert.Equal(t, "frontend-v2 (gray) -> backend-v1 (prod, fallback: noinstances)\n", get(map[string]string{"x-user-group": "testers"}))
	assert.Equal(t, "frontend-v1 (prod) -> backend-v1 (prod)\n", get(map[string]string{"x-traffic-tag": "gray"}), "a client's own tag is stripped at the edge")
}
