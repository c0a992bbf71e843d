package productpage_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/graylane/graylane/examples/bookinfo/faults"
)

func TestMetrics(t *testing.T) {
	e := newEnv(t, setup{})
	r := e.get(t, "/metrics")
	require.Equal(t, http.StatusOK, r.status)
	assert.Contains(t, r.header.Get("Content-Type"), "text/plain; version=0.0.4; charset=utf-8")

	e.get(t, "/productpage")
	e.get(t, "/productpage")
	e.get(t, "/api/v1/products/abc")
	e.get(t, "/api/v1/products/0/ratings")
	require.NoError(t, e.detailsFaults.Set(faults.Fault{Abort: 503, Times: 1}))
	e.get(t, "/productpage")

	assert.Contains(t, e.get(t, "/metrics").body, `# HELP request_result_total Results of the calls productpage made, by destination app and response code.
# TYPE request_result_total counter
request_result_total{destination_app="details",response_code="200"} 2
request_result_total{destination_app="details",response_code="400"} 1
request_result_total{destination_app="details",response_code="503"} 1
request_result_total{destination_app="ratings",response_code="200"} 1
request_result_total{destination_app="reviews",response_code="200"} 3
`)
}
