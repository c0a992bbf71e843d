package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/graylane/graylane/examples/bookinfo/app"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	code := m.Run()
	closeKube() // the API server the Kubernetes tests share
	if code == 0 {
		if err := goleak.Find(goleak.IgnoreTopFunction("k8s.io/klog/v2.(*flushDaemon).run.func1")); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func TestHelpDocumentsFlags(t *testing.T) {
	var out, errOut bytes.Buffer
	assert.Equal(t, 0, run([]string{"-h"}, &out, &errOut))
	for _, flag := range []string{"-gateway-addr", "-admin-addr", "-replicas", "-strict", "-log-level", "-rules", "-trust", "-gray-percent", "-trace", "-otlp-endpoint", "-admin-host"} {
		assert.Contains(t, errOut.String(), flag)
	}
	assert.Contains(t, errOut.String(), "reviews-v2 (gray, 0)")

	errOut.Reset()
	assert.Equal(t, 0, runLoad([]string{"-h"}, &out, &errOut))
	for _, flag := range []string{"-rate", "-duration", "-tagged", "-concurrency", "-url"} {
		assert.Contains(t, errOut.String(), flag)
	}
}

func TestBadFlags(t *testing.T) {
	tests := map[string][]string{
		"unknown deployment": {"-replicas", "reviews-v9=1"},
		"bad count":          {"-replicas", "reviews-v2=-1"},
		"base lane strict":   {"-strict", "prod"},
		"bad lane":           {"-strict", "gr ay"},
		"bad level":          {"-log-level", "loud"},
		"bad percent":        {"-gray-percent", "120"},
		"bad trace":          {"-trace", "file"},
		"two exporters":      {"-trace", "stdout", "-otlp-endpoint", "127.0.0.1:4317"},
	}
	for name, args := range tests {
		t.Run(name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			assert.Equal(t, 2, run(args, &out, &errOut))
			assert.NotEmpty(t, strings.TrimSpace(errOut.String()))
		})
	}
}

// lockedBuffer is a bytes.Buffer for a logger written from several
// goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestLogsCarryTheLane: what the demo logs about a request carries the
// request's tag: here the gateway's warning about a gray request that
// strict mode refused.
func TestLogsCarryTheLane(t *testing.T) {
	var buf lockedBuffer
	ctx := context.Background()
	sys, err := app.Start(ctx, app.Config{
		GatewayAddr: "127.0.0.1:0", StrictLanes: []string{"gray"},
		Logger: newLogger(&buf, slog.LevelWarn),
	})
	require.NoError(t, err)
	defer sys.Close(ctx)
	req, err := http.NewRequest(http.MethodGet, sys.GatewayURL()+"/productpage", nil)
	require.NoError(t, err)
	req.Header.Set("x-traffic-tag", "gray")
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	var line string
	for l := range strings.Lines(buf.String()) {
		if strings.Contains(l, "proxy error") {
			line = l
		}
	}
	require.NotEmpty(t, line, "the refusal is logged:\n%s", buf.String())
	assert.Contains(t, line, "graylane.tag=gray")
}
