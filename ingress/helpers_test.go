package ingress_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/graylane/graylane/ingress"
)

// mustParse parses a YAML rule set written in the test.
func mustParse(t testing.TB, yaml string) *ingress.Rules {
	t.Helper()
	rs, err := ingress.Parse("test.yaml", []byte(yaml))
	require.NoError(t, err)
	return rs
}

// request builds a request with the given method, target and headers.
func request(method, target string, h http.Header) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	for k, v := range h {
		r.Header[k] = v
	}
	return r
}
