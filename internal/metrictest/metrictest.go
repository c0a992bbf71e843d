// Package metrictest reads OpenTelemetry counters in tests.
package metrictest

import (
	"context"
	"strings"
	"testing"

	"github.com/graylane/graylane/internal/lanes"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// Points collects r and returns the data points of the int64 counter
// named name. It fails the test if the metric is not an int64 sum.
func Points(tb testing.TB, r sdkmetric.Reader, name string) []metricdata.DataPoint[int64] {
	tb.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(tb, r.Collect(context.Background(), &rm))
	var out []metricdata.DataPoint[int64]
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			sum, ok := m.Data.(metricdata.Sum[int64])
			require.True(tb, ok, "%s is a %T, not an int64 sum", name, m.Data)
			out = append(out, sum.DataPoints...)
		}
	}
	return out
}

// Counts collects r and returns the int64 counter named name, one entry per
// combination of the values of keys joined with "/" (a key that a data
// point lacks counts as ""). Data points that agree on those values add
// up; with no keys, the whole count is under "". It fails the test if the
// metric is not an int64 sum.
func Counts(tb testing.TB, r sdkmetric.Reader, name string, keys ...attribute.Key) map[string]int64 {
	tb.Helper()
	out := map[string]int64{}
	parts := make([]string, len(keys))
	for _, dp := range Points(tb, r, name) {
		for i, k := range keys {
			v, _ := dp.Attributes.Value(k)
			parts[i] = v.AsString()
		}
		out[strings.Join(parts, "/")] += dp.Value
	}
	return out
}

// Decisions reads the routing decision counter of service, keyed
// "tag>lane:reason" (service names and lanes hold no "/").
func Decisions(tb testing.TB, r sdkmetric.Reader, service string) map[string]int64 {
	tb.Helper()
	out := map[string]int64{}
	all := Counts(tb, r, lanes.DecisionMetric, lanes.AttrService, lanes.AttrTag, lanes.AttrLane, lanes.AttrReason)
	for k, n := range all {
		if p := strings.Split(k, "/"); p[0] == service {
			out[p[1]+">"+p[2]+":"+p[3]] += n
		}
	}
	return out
}
