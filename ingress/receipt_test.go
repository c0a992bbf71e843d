package ingress_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/graylane/graylane/httpmw"
	"github.com/graylane/graylane/ingress"
	"github.com/graylane/graylane/receipt"
)

// TestRenamedReceiptHeaderEndToEnd: services answer route receipts on a
// renamed header, and the edge is told its name. An untrusted client gets
// no receipt on either the renamed or the default header; a trusted one
// gets it on the renamed header, with the edge's decision in it.
func TestRenamedReceiptHeaderEndToEnd(t *testing.T) {
	svc := httpmw.NewHandler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok") }),
		httpmw.WithRouteReceipt(receipt.Self{Service: "front", Instance: "front-0", Lane: "prod", Header: "x-qa-route"}))
	rs := mustParse(t, "default: gray\nrules: []\n")
	trusted := func(r *http.Request) bool { return r.Header.Get("X-Tester") == "yes" }
	edge := httptest.NewServer(ingress.Middleware(rs, ingress.WithReceiptHeader("x-qa-route"), ingress.WithTrustFunc(trusted))(svc))
	defer edge.Close()
	client := edge.Client()
	defer client.CloseIdleConnections()

	get := func(h http.Header) *http.Response {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, edge.URL, nil)
		require.NoError(t, err)
		for k, v := range h {
			req.Header[k] = v
		}
		resp, err := client.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp
	}
	for _, h := range []http.Header{
		{"X-Qa-Route": {receipt.Ask}},
		{"X-Graylane-Route": {receipt.Ask}},
		{"X_qa_route": {receipt.Ask}, "X-Qa-Route": {receipt.Ask}, "X-Graylane-Route": {receipt.Ask}},
	} {
		resp := get(h)
		assert.Empty(t, resp.Header.Values("X-Qa-Route"), "%v", h)
		assert.Empty(t, resp.Header.Values(receipt.Header), "%v", h)
	}

	resp := get(http.Header{"X-Qa-Route": {receipt.Ask}, "X-Tester": {"yes"}})
	hops, err := receipt.Parse(resp.Header.Get("X-Qa-Route"))
	require.NoError(t, err)
	require.Len(t, hops, 1)
	assert.Equal(t, "front", hops[0].Service)
	assert.Equal(t, "gray", hops[0].Tag)
	assert.NotEmpty(t, hops[0].Note, "the edge's decision")
}
