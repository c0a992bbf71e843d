package ingress_test

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/graylane/graylane/ingress"
	"github.com/graylane/graylane/propagation"
)

// TestConnectionCannotDropTheTag puts the gateway in front of a plain
// httputil.ReverseProxy, on loopback, and has a client name the headers the
// gateway sets in its Connection header, which makes a proxy drop them as
// hop-by-hop. The service behind must still get the gateway's tag in every
// place the gateway writes it, and the client's other tokens must work.
func TestConnectionCannotDropTheTag(t *testing.T) {
	seen := make(chan http.Header, 1)
	backend := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Clone()
	}))
	defer backend.Close()
	target, err := url.Parse(backend.URL)
	require.NoError(t, err)

	prop, err := propagation.New(propagation.WithOwnTag(""), propagation.WithBaggageInjection(),
		propagation.WithWriteDialects(propagation.DialectASM, propagation.DialectMSE))
	require.NoError(t, err)
	rs := mustParse(t, "default: gray\nrules: []\n")
	gw := httptest.NewServer(ingress.Middleware(rs, ingress.WithPropagator(prop))(httputil.NewSingleHostReverseProxy(target)))
	defer gw.Close()
	client := gw.Client()
	defer client.CloseIdleConnections()

	tests := []struct {
		name       string
		connection []string
		headers    http.Header
	}{
		{"tag header", []string{"close, X-Traffic-Tag"}, nil},
		{"every header the gateway writes", []string{"x-traffic-tag, Baggage", "X-ASM-PREFER-TAG,x-mse-tag, keep-alive"}, nil},
		{"spelled otherwise", []string{"X_Traffic_Tag, baggage"}, nil},
		{"with other baggage", []string{"baggage"}, http.Header{"Baggage": {"user=alice"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, gw.URL+"/", nil)
			require.NoError(t, err)
			for k, v := range tt.headers {
				req.Header[k] = v
			}
			req.Header["Connection"] = tt.connection
			resp, err := client.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
			h := <-seen
			assert.Equal(t, "gray", h.Get("X-Traffic-Tag"))
			assert.Equal(t, "gray", h.Get("X-Asm-Prefer-Tag"))
			assert.Equal(t, "gray", h.Get("X-Mse-Tag"))
			assert.Contains(t, h.Get("Baggage"), "traffic-tag=gray")
			if tt.headers != nil {
				assert.Contains(t, h.Get("Baggage"), "user=alice")
			}
		})
	}
}

func TestGuardConnectionKeepsOtherTokens(t *testing.T) {
	rs := mustParse(t, "default: gray\nrules: []\n")
	var seen http.Header
	h := ingress.Middleware(rs)(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { seen = r.Header.Clone() }))
	tests := []struct {
		in, want []string
	}{
		{[]string{"close"}, []string{"close"}},
		{[]string{"Upgrade, X-Traffic-Tag", "x-graylane-route"}, []string{"Upgrade"}},
		{[]string{"x-traffic-tag", " , baggage"}, nil},
		{[]string{"x-traffic-tags, X-Other"}, []string{"x-traffic-tags, X-Other"}},
	}
	for _, tt := range tests {
		r := request(http.MethodGet, "/", http.Header{"Connection": tt.in})
		h.ServeHTTP(httptest.NewRecorder(), r)
		assert.Equal(t, tt.want, seen["Connection"], "%q", tt.in)
	}
}
