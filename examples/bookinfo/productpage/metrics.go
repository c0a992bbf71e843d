package productpage

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
)

// metrics counts the results of the calls productpage makes, by the
// service called and the HTTP status of the result, and serves them in the
// Prometheus text format.
type metrics struct {
	mu     sync.Mutex
	counts map[resultKey]uint64
}

type resultKey struct {
	app  string
	code int
}

func newMetrics() *metrics {
	return &metrics{counts: make(map[resultKey]uint64)}
}

func (m *metrics) inc(app string, code int) {
	m.mu.Lock()
	m.counts[resultKey{app, code}]++
	m.mu.Unlock()
}

// ServeHTTP writes the request_result counter, one sample per service and
// status, sorted.
func (m *metrics) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	m.mu.Lock()
	keys := make([]resultKey, 0, len(m.counts))
	for k := range m.counts {
		keys = append(keys, k)
	}
	values := make([]uint64, len(keys))
	slices.SortFunc(keys, func(a, b resultKey) int {
		return cmp.Or(cmp.Compare(a.app, b.app), cmp.Compare(a.code, b.code))
	})
	for i, k := range keys {
		values[i] = m.counts[k]
	}
	m.mu.Unlock()

	var b strings.Builder
	b.WriteString("# HELP request_result_total Results of the calls productpage made, by destination app and response code.\n")
	b.WriteString("# TYPE request_result_total counter\n")
	for i, k := range keys {
		fmt.Fprintf(&b, "request_result_total{destination_app=%q,response_code=\"%d\"} %d\n", k.app, k.code, values[i])
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	_, _ = w.Write([]byte(b.String()))
}
