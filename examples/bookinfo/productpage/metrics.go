package productpage

import (
	"context"
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// ResultMetric is the OpenTelemetry name of the counter of the results of
// the calls productpage makes; Prometheus shows it as request_result_total,
// with the labels destination_app and response_code, as the original
// Bookinfo does.
const ResultMetric = "request_result"

const scopeName = "github.com/graylane/graylane/examples/bookinfo/productpage"

// metrics counts the results of the calls productpage makes, by the
// service called and the HTTP status of the result.
type metrics struct {
	counter metric.Int64Counter
	serve   http.Handler
}

// newMetrics records on mp and serves h at /metrics. With no mp, it makes
// a MeterProvider of its own, read by a Prometheus exporter that h (when
// nil) serves.
func newMetrics(mp metric.MeterProvider, h http.Handler) (*metrics, error) {
	if mp == nil {
		reg := prometheus.NewRegistry()
		exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo(), otelprom.WithoutTargetInfo())
		if err != nil {
			return nil, err
		}
		mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
		if h == nil {
			h = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
		}
	}
	if h == nil {
		h = http.NotFoundHandler()
	}
	c, err := mp.Meter(scopeName).Int64Counter(ResultMetric,
		metric.WithDescription("Results of the calls productpage made, by destination app and response code."))
	if err != nil {
		return nil, err
	}
	return &metrics{counter: c, serve: h}, nil
}

func (m *metrics) inc(ctx context.Context, app string, code int) {
	m.counter.Add(context.WithoutCancel(ctx), 1, metric.WithAttributes(
		attribute.String("destination_app", app), attribute.String("response_code", strconv.Itoa(code))))
}

func (m *metrics) ServeHTTP(w http.ResponseWriter, r *http.Request) { m.serve.ServeHTTP(w, r) }
