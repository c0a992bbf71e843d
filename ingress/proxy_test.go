package ingress_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/graylane/graylane/fallback"
	"github.com/graylane/graylane/ingress"
	"github.com/graylane/graylane/tag"
)

// resolving is a RoundTripper standing in for a routing transport: it sends
// every request for the logical host to backend, and records the tag of
// the request's context.
type resolving struct {
	backend *url.URL
	base    http.RoundTripper
	tags    chan string
}

func (rt *resolving) RoundTrip(req *http.Request) (*http.Response, error) {
	t, _ := tag.FromContext(req.Context())
	rt.tags <- t.String()
	r2 := req.Clone(req.Context())
	r2.URL.Scheme, r2.URL.Host = rt.backend.Scheme, rt.backend.Host
	return rt.base.RoundTrip(r2)
}

type backendSaw struct {
	Host, Path, Tag, XFF, XFHost, XFProto string
}

func newBackend(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(backendSaw{
			Host: r.Host, Path: r.URL.Path, Tag: r.Header.Get("X-Traffic-Tag"),
			XFF: r.Header.Get("X-Forwarded-For"), XFHost: r.Header.Get("X-Forwarded-Host"), XFProto: r.Header.Get("X-Forwarded-Proto"),
		})
	}))
	t.Cleanup(srv.Close)
	return srv
}

var quiet = ingress.WithLogger(slog.New(slog.DiscardHandler))

func TestReverseProxy(t *testing.T) {
	backend := newBackend(t)
	bu, err := url.Parse(backend.URL)
	require.NoError(t, err)
	base := &http.Transport{}
	defer base.CloseIdleConnections()
	target, err := url.Parse("http://productpage/v1")
	require.NoError(t, err)

	tests := []struct {
		name    string
		trust   string
		h       http.Header
		wantTag string
		wantXFF string
	}{
		{"tag assigned by a rule", "", http.Header{"X-Group": {"testers"}}, "blue", "127.0.0.1"},
		{"client tag stripped", "", http.Header{"X-Traffic-Tag": {"gray"}}, "", "127.0.0.1"},
		{"client's forwarded-for dropped", "", http.Header{"X-Forwarded-For": {"203.0.113.7"}}, "", "127.0.0.1"},
		{"forwarded-for of a trusted proxy kept", "{proxies: [127.0.0.1]}", http.Header{"X-Forwarded-For": {"203.0.113.7"}}, "", "203.0.113.7, 127.0.0.1"},
		{"trusted client behind a proxy", "{proxies: [127.0.0.1], peers: [203.0.113.0/24]}",
			http.Header{"X-Forwarded-For": {"203.0.113.7"}, "X-Traffic-Tag": {"blue"}}, "blue", "203.0.113.7, 127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			yaml := baseRules
			if tt.trust != "" {
				yaml += "trust: " + tt.trust + "\n"
			}
			rt := &resolving{backend: bu, base: base, tags: make(chan string, 1)}
			gw := httptest.NewServer(ingress.Middleware(mustParse(t, yaml))(ingress.NewReverseProxy(target, rt, quiet)))
			defer gw.Close()

			req, err := http.NewRequest(http.MethodGet, gw.URL+"/books/7", nil)
			require.NoError(t, err)
			for k, v := range tt.h {
				req.Header[k] = v
			}
			resp, err := newClient(t).Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
			var saw backendSaw
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&saw))

			assert.Equal(t, tt.wantTag, <-rt.tags, "the transport sees the tag in the context")
			assert.Equal(t, tt.wantTag, saw.Tag, "the tag is forwarded in the header")
			assert.Equal(t, "productpage", saw.Host)
			assert.Equal(t, "/v1/books/7", saw.Path)
			assert.Equal(t, tt.wantXFF, saw.XFF)
			assert.Equal(t, strings.TrimPrefix(gw.URL, "http://"), saw.XFHost)
			assert.Equal(t, "http", saw.XFProto)
		})
	}
}

// TestReverseProxyInjectsTag checks that the proxy writes the context's tag
// even when the headers lost it on the way.
func TestReverseProxyInjectsTag(t *testing.T) {
	backend := newBackend(t)
	target, err := url.Parse(backend.URL)
	require.NoError(t, err)
	base := &http.Transport{}
	defer base.CloseIdleConnections()
	proxy := ingress.NewReverseProxy(target, base, quiet)
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Del("X-Traffic-Tag")
		proxy.ServeHTTP(w, r)
	})
	gw := httptest.NewServer(ingress.Middleware(mustParse(t, baseRules))(inner))
	defer gw.Close()

	resp := get(t, gw.URL, http.Header{"X-Group": {"testers"}})
	var saw backendSaw
	require.NoError(t, json.Unmarshal([]byte(resp.body), &saw))
	assert.Equal(t, "blue", saw.Tag)
}

type failing struct{ err error }

func (f failing) RoundTrip(*http.Request) (*http.Response, error) { return nil, f.err }

func TestReverseProxyErrors(t *testing.T) {
	noInstance := &fallback.Error{Service: "reviews", Tag: "gray", Lane: "prod", Reason: fallback.NoInstances, Err: fallback.ErrNoInstance}
	rejected := &fallback.Error{Service: "reviews", Tag: "gray", Lane: "gray", Reason: fallback.Unavailable, Mode: fallback.Strict, Err: fallback.ErrRejected}
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantBody   string
	}{
		{"no instance", fmt.Errorf("httpmw: route: %w", noInstance), http.StatusServiceUnavailable, noInstance.Error()},
		{"strict rejection", rejected, http.StatusServiceUnavailable, rejected.Error()},
		{"bare sentinel", fmt.Errorf("reviews has nothing\nat all: %w", fallback.ErrNoInstance), http.StatusServiceUnavailable,
			"reviews has nothing at all: graylane: no instance in any lane that may serve the call"},
		{"other transport error", errors.New("dial tcp 10.0.0.5:9080: connect: connection refused"), http.StatusBadGateway,
			"graylane: bad gateway: no response from productpage"},
		{"deadline", fmt.Errorf("read: %w", context.DeadlineExceeded), http.StatusGatewayTimeout,
			"graylane: gateway timeout: no response from productpage in time"},
	}
	target, err := url.Parse("http://productpage")
	require.NoError(t, err)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs syncBuffer
			proxy := ingress.NewReverseProxy(target, failing{tt.err}, ingress.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
			gw := httptest.NewServer(ingress.Middleware(mustParse(t, baseRules))(proxy))
			defer gw.Close()
			resp := get(t, gw.URL, nil)
			assert.Equal(t, tt.wantStatus, resp.status)
			assert.Equal(t, tt.wantBody+"\n", resp.body, "one line naming the cause")
			assert.Equal(t, "text/plain; charset=utf-8", resp.header.Get("Content-Type"))
			assert.Contains(t, logs.String(), "graylane: proxy error")
			assert.Contains(t, logs.String(), fmt.Sprintf("status=%d", tt.wantStatus))
		})
	}
	assert.Contains(t, noInstance.Error(), `service "reviews"`)
}

type response struct {
	status int
	header http.Header
	body   string
}

func get(t *testing.T, url string, h http.Header) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := newClient(t).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return response{status: resp.StatusCode, header: resp.Header, body: string(b)}
}
