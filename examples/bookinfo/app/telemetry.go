package app

// The demo's OpenTelemetry: one MeterProvider per process, whose metrics
// the admin server's /metrics serves in the Prometheus text format (through
// OpenTelemetry's Prometheus exporter and promhttp) and the lane map reads;
// and a TracerProvider, whose spans otelhttp and otelgrpc make around every
// hop. Exporting happens when Prometheus scrapes or a batch of spans is
// full, never on the request path: graylane's counters are atomic adds
// read by observable instruments at collection time.

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	otelpropagation "go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// CardinalityLimit is the most series one metric keeps; the series beyond
// it add up in one labelled otel_metric_overflow="true". OpenTelemetry's
// default, 2,000, is what the routing decisions of 20 services in 100
// lanes already reach (a series per service, requested tag, lane and
// reason; graylane counts tags that are no lane as one, "(unknown)", so
// the number is bounded by the fleet, not by clients).
const CardinalityLimit = 20000

// TelemetryConfig says where the spans go.
type TelemetryConfig struct {
	// SpanExporter receives the spans of every hop. nil: no tracing, and
	// no cost for it.
	SpanExporter sdktrace.SpanExporter
	// SyncSpans exports each span when it ends instead of in batches (for
	// tests and the stdout exporter).
	SyncSpans bool
	// ServiceName is the resource's service.name (default "bookinfo").
	ServiceName string
	// Readers are more readers of the metrics, besides the Prometheus
	// exporter and the lane map's.
	Readers []sdkmetric.Reader
}

// DefaultTelemetry returns the Telemetry of the process, without tracing:
// that of every System started with none. One MeterProvider per process,
// as OpenTelemetry intends: graylane's gRPC balancer keeps its counters
// per MeterProvider for the life of the process.
var DefaultTelemetry = sync.OnceValues(func() (*Telemetry, error) { return NewTelemetry(TelemetryConfig{}) })

// Telemetry is a process's OpenTelemetry providers.
type Telemetry struct {
	mp      *sdkmetric.MeterProvider
	reader  *sdkmetric.ManualReader // the lane map's
	prom    *prometheus.Registry
	metrics http.Handler
	tp      trace.TracerProvider
	sdkTP   *sdktrace.TracerProvider // nil without tracing
	prop    otelpropagation.TextMapPropagator
}

// NewTelemetry returns the providers of a process. Shutdown flushes and
// stops them.
func NewTelemetry(c TelemetryConfig) (*Telemetry, error) {
	if c.ServiceName == "" {
		c.ServiceName = "bookinfo"
	}
	res := resource.NewSchemaless(attribute.String("service.name", c.ServiceName))
	t := &Telemetry{
		reader: sdkmetric.NewManualReader(),
		prom:   prometheus.NewRegistry(),
		prop:   otelpropagation.NewCompositeTextMapPropagator(otelpropagation.TraceContext{}, otelpropagation.Baggage{}),
		tp:     noop.NewTracerProvider(),
	}
	exp, err := otelprom.New(otelprom.WithRegisterer(t.prom), otelprom.WithoutScopeInfo())
	if err != nil {
		return nil, err
	}
	t.prom.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	opts := []sdkmetric.Option{sdkmetric.WithResource(res), sdkmetric.WithReader(exp), sdkmetric.WithReader(t.reader),
		sdkmetric.WithCardinalityLimit(CardinalityLimit)}
	for _, r := range c.Readers {
		opts = append(opts, sdkmetric.WithReader(r))
	}
	t.mp = sdkmetric.NewMeterProvider(opts...)
	t.metrics = promhttp.HandlerFor(laneLabels{t.prom}, promhttp.HandlerOpts{})
	if c.SpanExporter != nil {
		var proc sdktrace.SpanProcessor
		if c.SyncSpans {
			proc = sdktrace.NewSimpleSpanProcessor(c.SpanExporter)
		} else {
			proc = sdktrace.NewBatchSpanProcessor(c.SpanExporter)
		}
		t.sdkTP = sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithSpanProcessor(proc),
			sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())))
		t.tp = t.sdkTP
	}
	return t, nil
}

// MeterProvider is where every graylane metric of the process and
// productpage's request_result go.
func (t *Telemetry) MeterProvider() metric.MeterProvider { return t.mp }

// TracerProvider makes the spans of every hop (a no-op one without an
// exporter).
func (t *Telemetry) TracerProvider() trace.TracerProvider { return t.tp }

// Propagator carries the trace context (W3C traceparent) and baggage.
func (t *Telemetry) Propagator() otelpropagation.TextMapPropagator { return t.prop }

// MetricsHandler serves every metric in the Prometheus text format.
func (t *Telemetry) MetricsHandler() http.Handler { return t.metrics }

// Shutdown flushes the spans not yet exported and stops the providers.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	var errs []error
	if t.sdkTP != nil {
		errs = append(errs, t.sdkTP.Shutdown(ctx))
	}
	errs = append(errs, t.mp.Shutdown(ctx))
	return errors.Join(errs...)
}

// collect reads the current value of every metric, for the lane map.
func (t *Telemetry) collect(ctx context.Context) (metricdata.ResourceMetrics, error) {
	var rm metricdata.ResourceMetrics
	err := t.reader.Collect(ctx, &rm)
	return rm, err
}

// laneLabels shows graylane's metrics with the label names a Prometheus
// user expects. graylane's attributes are namespaced, as OpenTelemetry
// recommends (graylane.service, graylane.tag, graylane.lane,
// graylane.reason), and the exporter turns the dots into underscores; in
// a metric whose name already says graylane_, the label drops the prefix:
// graylane_route_decisions_total{service="reviews",tag="gray",lane="prod",reason="noinstances"}.
// The renaming happens at scrape time, on the scrape's copy.
type laneLabels struct{ g prometheus.Gatherer }

func (l laneLabels) Gather() ([]*dto.MetricFamily, error) {
	mfs, err := l.g.Gather()
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "graylane_") {
			continue
		}
		for _, m := range mf.Metric {
			for _, lp := range m.Label {
				if name, ok := strings.CutPrefix(lp.GetName(), "graylane_"); ok && name != "" {
					lp.Name = &name
				}
			}
			slices.SortFunc(m.Label, func(a, b *dto.LabelPair) int { return strings.Compare(a.GetName(), b.GetName()) })
		}
	}
	return mfs, err
}
