package httpmw_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/graylane/graylane/httpmw"
	"github.com/graylane/graylane/receipt"
	"github.com/graylane/graylane/registry"
	"github.com/graylane/graylane/routing"
	"github.com/graylane/graylane/tag"
)

// secGet sends a GET to url with the headers h and returns the response,
// its body read and closed.
func secGet(t *testing.T, client *http.Client, url string, h http.Header) (*http.Response, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

// TestReceiptFromDownstreamIsBounded: a downstream that answers with a huge
// route receipt, on every one of several calls, cannot grow the caller's
// receipt past receipt.MaxHops.
func TestReceiptFromDownstreamIsBounded(t *testing.T) {
	huge := strings.Repeat("svc=down;inst=x;lane=prod, ", 1000)
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set(receipt.Header, huge)
	}))
	defer down.Close()

	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	out := &http.Client{Transport: httpmw.NewTransport(tr, httpmw.WithReceiptHosts(strings.TrimPrefix(down.URL, "http://")))}
	front := httptest.NewServer(httpmw.NewHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for range 10 {
			req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, down.URL, nil)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			resp, err := out.Do(req)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			resp.Body.Close()
		}
		fmt.Fprint(w, len(receipt.FromContext(r.Context()).Hops()))
	}), httpmw.WithRouteReceipt(receipt.Self{Service: "front", Instance: "front-0", Lane: "prod"})))
	defer front.Close()

	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	resp, body := secGet(t, client, front.URL, http.Header{"X-Graylane-Route": {receipt.Ask}})
	assert.Equal(t, fmt.Sprint(receipt.MaxHops), body)
	hops, err := receipt.Parse(resp.Header.Get(receipt.Header))
	require.NoError(t, err)
	require.NotEmpty(t, hops)
	assert.LessOrEqual(t, len(hops), receipt.MaxHops)
	assert.Equal(t, "front", hops[0].Service)
}

// TestReceiptIgnoresForgedRequestValues: the caller name and fallback
// reason a request claims are recorded only when they are well-formed
// (a service name, a known fallback reason, one value).
func TestReceiptIgnoresForgedRequestValues(t *testing.T) {
	srv := httptest.NewServer(httpmw.NewHandler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}),
		httpmw.WithRouteReceipt(receipt.Self{Service: "svc", Instance: "svc-0", Lane: "prod"})))
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()

	tests := []struct {
		name           string
		h              http.Header
		from, fallback string
	}{
		{"well-formed", http.Header{"X-Graylane-Route": {"caller"}, "X-Graylane-Fallback": {"noinstances"}}, "caller", "noinstances"},
		{"bad caller", http.Header{"X-Graylane-Route": {"<script>alert(1)</script>"}}, "", ""},
		{"unknown reason", http.Header{"X-Graylane-Route": {"1"}, "X-Graylane-Fallback": {"pwned"}}, "", ""},
		{"not a fallback", http.Header{"X-Graylane-Route": {"1"}, "X-Graylane-Fallback": {"matched"}}, "", ""},
		{"two reasons", http.Header{"X-Graylane-Route": {"1"}, "X-Graylane-Fallback": {"noinstances", "unavailable"}}, "", ""},
		{"long caller", http.Header{"X-Graylane-Route": {strings.Repeat("a", 10000)}}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, _ := secGet(t, client, srv.URL, tt.h)
			hops, err := receipt.Parse(resp.Header.Get(receipt.Header))
			require.NoError(t, err)
			require.Len(t, hops, 1)
			assert.Equal(t, tt.from, hops[0].From)
			assert.Equal(t, tt.fallback, hops[0].Fallback)
		})
	}
}

// TestNoReceiptUnlessEnabled: without WithRouteReceipt, asking for a
// receipt gets nothing; with it, a request that does not ask gets nothing
// either, even when the server keeps receipts for every request.
func TestNoReceiptUnlessEnabled(t *testing.T) {
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	nop := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})

	off := httptest.NewServer(httpmw.NewHandler(nop))
	defer off.Close()
	resp, _ := secGet(t, client, off.URL, http.Header{"X-Graylane-Route": {receipt.Ask}})
	assert.NotContains(t, resp.Header, "X-Graylane-Route")

	always := httptest.NewServer(httpmw.NewHandler(nop,
		httpmw.WithRouteReceipt(receipt.Self{Service: "svc", Instance: "svc-0", Lane: "prod", Always: true})))
	defer always.Close()
	resp, _ = secGet(t, client, always.URL, nil)
	assert.NotContains(t, resp.Header, "X-Graylane-Route")
}

// TestRoutedCallDropsCallerFallbackHeader: a fallback reason copied from
// an inbound request onto an outbound one is not passed on by the routing
// transport: the next hop sees only the reason of its own routing.
func TestRoutedCallDropsCallerFallbackHeader(t *testing.T) {
	got := make(chan []string, 1)
	inst := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		got <- r.Header["X-Graylane-Fallback"]
	}))
	defer inst.Close()
	reg := registry.NewMemory()
	defer reg.Close()
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	_, err := reg.Register(ctx, registry.Instance{Service: "svc", Addr: inst.Listener.Addr().String(), Tag: tag.MustParse("gray")})
	require.NoError(t, err)
	router := routing.NewRouter(reg, nil)
	defer router.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: httpmw.NewTransport(tr, httpmw.WithRouting(router))}

	req, err := http.NewRequestWithContext(tag.NewContext(ctx, tag.MustParse("gray")), http.MethodGet, "http://svc/", nil)
	require.NoError(t, err)
	req.Header.Set("X-Graylane-Fallback", "noinstances")
	resp, err := client.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Empty(t, <-got, "matched lane: no fallback header")
	assert.Equal(t, []string{"noinstances"}, req.Header["X-Graylane-Fallback"], "the caller's request is not modified")
}
