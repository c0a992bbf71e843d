package ingress_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/graylane/graylane/ingress"
	"github.com/graylane/graylane/tag"
)

const nilTestRules = `
lanes: [gray]
default: blue
trust:
  peers: [192.0.2.1]
rules:
  - name: header
    lane: gray
    match:
      header: {x-user: {regex: "u[0-9]+"}}
  - name: cookie
    lane: gray
    match:
      cookie: {beta: {present: true}}
  - name: sticky
    lane: gray
    percent: 50
    sticky: {header: x-user-id}
  - name: absent
    lane: gray
    match:
      header: {x-debug: {present: false}}
      query: {lane: gray}
`

// TestNilHeader checks that a request with a nil Header (one built by hand,
// not by net/http) is decided as a request without headers, by Evaluate and
// by the middleware, from a trusted and an untrusted client.
func TestNilHeader(t *testing.T) {
	rs := mustParse(t, nilTestRules)
	for _, target := range []string{"/", "/?lane=gray"} {
		r := httptest.NewRequest(http.MethodGet, target, nil)
		r.Header = nil
		var d ingress.Decision
		require.NotPanics(t, func() { d = rs.Evaluate(r) }, target)
		want := request(http.MethodGet, target, http.Header{})
		assert.Equal(t, rs.Evaluate(want), d, target)
	}

	for _, remote := range []string{"192.0.2.1:1234", "198.51.100.1:1234"} {
		var got tag.Tag
		var seen http.Header
		h := ingress.Middleware(rs)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got, _ = tag.FromContext(r.Context())
			seen = r.Header
		}))
		r := httptest.NewRequest(http.MethodGet, "/?lane=gray", nil)
		r.RemoteAddr = remote
		r.Header = nil
		require.NotPanics(t, func() { h.ServeHTTP(httptest.NewRecorder(), r) }, remote)
		assert.Equal(t, "gray", got.String(), remote)
		assert.Equal(t, []string{"gray"}, seen["X-Traffic-Tag"], "the tag is written for a proxy behind (%s)", remote)
	}
}
