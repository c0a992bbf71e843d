package ingress_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/graylane/graylane/ingress"
)

// TestWatchRejectsOversizedFile: a rule file that grows past MaxFileSize
// while it is watched is rejected, and the rules in force stay.
func TestWatchRejectsOversizedFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "rules.yaml")
	write := func(data string) {
		tmp := filepath.Join(dir, "rules.tmp")
		require.NoError(t, os.WriteFile(tmp, []byte(data), 0o600))
		require.NoError(t, os.Rename(tmp, path))
	}
	write("rules:\n  - {name: small, lane: gray, match: {header: {x-n: '1'}}}\n")

	errs := make(chan error, 4)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w, err := ingress.Watch(ctx, path, ingress.WithInterval(10*time.Millisecond),
		ingress.WithOnReload(func(_ *ingress.Rules, err error) { errs <- err }),
		ingress.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	defer w.Close()

	write("# " + strings.Repeat("x", ingress.MaxFileSize) + "\nrules: []\n")
	select {
	case err := <-errs:
		require.Error(t, err)
		assert.Contains(t, err.Error(), "file is larger than")
	case <-time.After(10 * time.Second):
		t.Fatal("no reload reported")
	}
	d := w.Rules().Evaluate(request("GET", "/", http.Header{"X-N": {"1"}}))
	assert.Equal(t, "small", d.RuleName, "the rules in force stay")
}

// TestUntrustedClientCannotChooseLane: whatever an untrusted client puts in
// the places a tag is read from, the lane comes from the rules alone, and
// neither the tag nor a receipt request reaches the service behind.
func TestUntrustedClientCannotChooseLane(t *testing.T) {
	rs, err := ingress.Parse("r.yaml", []byte("lanes: [gray]\ntrust: {peers: [192.0.2.1], lanes: ['*']}\nrules: []\n"))
	require.NoError(t, err)
	var seen http.Header
	h := ingress.Middleware(rs)(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { seen = r.Header }))
	for _, hdr := range []http.Header{
		{"X-Traffic-Tag": {"gray"}},
		{"X-Traffic-Tag": {"gray", "gray"}},
		{"Baggage": {"traffic-tag=gray"}},
		{"Baggage": {strings.Repeat("k=v,", 3000) + "traffic-tag=gray"}},
		{"Baggage": {"a=1", " traffic-tag = gray ;p"}},
		{"X-Graylane-Route": {"1"}},
	} {
		r := request("GET", "/", hdr)
		r.RemoteAddr = "198.51.100.7:4711"
		r.Header.Set("X-Forwarded-For", "192.0.2.1")
		h.ServeHTTP(httptest.NewRecorder(), r)
		assert.NotContains(t, seen, "X-Traffic-Tag", "%v", hdr)
		assert.NotContains(t, seen, "X-Graylane-Route", "%v", hdr)
		for _, v := range seen["Baggage"] {
			assert.NotContains(t, v, "traffic-tag", "%v", hdr)
		}
	}
}

// TestEdgeStripsFoldedNames: header names written with '_' instead of '-'
// (which servers in other languages may read as the same header) are
// stripped from untrusted clients like the real ones, and so is the
// fallback header, which only graylane's routing clients send.
func TestEdgeStripsFoldedNames(t *testing.T) {
	rules, err := ingress.Compile(ingress.Config{})
	require.NoError(t, err)
	var seen http.Header
	h := ingress.Middleware(rules)(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { seen = r.Header.Clone() }))
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.RemoteAddr = "203.0.113.9:4000"
	req.Header["X_Traffic_Tag"] = []string{"gray"}
	req.Header["x_traffic_tag"] = []string{"gray"}
	req.Header["X_graylane_ROUTE"] = []string{"1"}
	req.Header["X-Graylane-Fallback"] = []string{"noinstances"}
	req.Header["X_Graylane_Fallback"] = []string{"noinstances"}
	req.Header["X_Other_Thing"] = []string{"kept"}
	h.ServeHTTP(httptest.NewRecorder(), req)
	assert.Equal(t, http.Header{"X_Other_Thing": {"kept"}}, seen)
}
