package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/graylane/graylane/examples/bookinfo/app"
	"github.com/graylane/graylane/fallback"
)

// adminDo sends a request to the admin server with the given Host and
// Origin headers, as a browser would after DNS rebinding.
func adminDo(t *testing.T, sys *app.System, method, path, host, origin string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, sys.AdminURL()+path, nil)
	require.NoError(t, err)
	if host != "" {
		req.Host = host
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
		req.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// TestAdminRefusesRebinding: a page of another site whose name resolves to
// loopback (DNS rebinding) sends same-origin requests with its own name in
// Host; the admin server refuses them, and answers to loopback names, its
// listen address and the names configured.
func TestAdminRefusesRebinding(t *testing.T) {
	sys := startSystem(t, app.Config{AdminHosts: []string{"admin.example.test"}})
	u, err := url.Parse(sys.AdminURL())
	require.NoError(t, err)
	port := u.Port()

	for _, tc := range []struct {
		method, path string
	}{
		{http.MethodPost, "/api/deployments/reviews-v2/scale?replicas=1"},
		{http.MethodPost, "/api/deployments/details-v1/fault?abort=503"},
		{http.MethodPost, "/api/lanes/gray/mode?mode=strict"},
		{http.MethodGet, "/api/deployments"},
		{http.MethodGet, "/metrics"},
		{http.MethodGet, "/"},
	} {
		evil := "rebind.evil.example:" + port
		code, body := adminDo(t, sys, tc.method, tc.path, evil, "http://"+evil)
		assert.Equal(t, http.StatusMisdirectedRequest, code, "%s %s: %s", tc.method, tc.path, body)
		assert.Contains(t, body, "rebind.evil.example")
	}
	for _, d := range sys.Deployments() {
		if d.Name == "reviews-v2" {
			assert.Zero(t, d.Replicas, "not scaled")
		}
		assert.Empty(t, d.Fault, d.Name)
	}
	assert.Empty(t, sys.StrictLanes())

	for _, host := range []string{"", "localhost:" + port, "LOCALHOST:" + port, "127.0.0.1:" + port, "[::1]:" + port, "admin.example.test:" + port, "admin.example.test"} {
		code, body := adminDo(t, sys, http.MethodGet, "/api/lanes", host, "")
		assert.Equal(t, http.StatusOK, code, "Host %q: %s", host, body)
	}
}

// TestAdminLaneModeUnknownLane: switching the mode of a lane the demo does
// not have is an error that says so, and changes nothing.
func TestAdminLaneModeUnknownLane(t *testing.T) {
	sys := startSystem(t, app.Config{})
	code, body := adminDo(t, sys, http.MethodPost, "/api/lanes/nosuch/mode?mode=strict", "", "")
	assert.Equal(t, http.StatusNotFound, code)
	var answer map[string]string
	require.NoError(t, json.Unmarshal([]byte(body), &answer))
	assert.Contains(t, answer["error"], `lane "nosuch"`)
	assert.Contains(t, answer["error"], "no such lane")
	assert.Empty(t, sys.StrictLanes())
	assert.ErrorIs(t, sys.SetLaneMode("nosuch", fallback.Strict), app.ErrUnknownLane)

	code, _ = adminDo(t, sys, http.MethodPost, "/api/lanes/gray/mode?mode=strict", "", "")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, []string{"gray"}, sys.StrictLanes())
	assert.False(t, strings.Contains(strings.Join(sys.StrictLanes(), ","), "nosuch"))
}
