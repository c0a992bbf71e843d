package ingress_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/graylane/graylane/ingress"
	"github.com/graylane/graylane/internal/metrictest"
)

func newMeter(t *testing.T) (*sdkmetric.MeterProvider, *sdkmetric.ManualReader) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	return mp, reader
}

func TestDecisionTelemetry(t *testing.T) {
	mp, reader := newMeter(t)
	rs := mustParse(t, `
lanes: [gray]
trust: {peers: [127.0.0.1], lanes: [gray, dev-*]}
rules:
  - name: testers
    lane: blue
    match: {header: {x-group: testers}}
`)
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := httptest.NewServer(ingress.Middleware(rs, ingress.WithMeterProvider(mp), ingress.WithLogger(logger))(echo))
	defer srv.Close()
	client := newClient(t)

	call(t, client, srv.URL, http.Header{"X-Group": {"testers"}})
	call(t, client, srv.URL, http.Header{"X-Group": {"testers"}, "X-Traffic-Tag": {"purple"}})
	call(t, client, srv.URL, http.Header{"X-Traffic-Tag": {"gray"}})
	call(t, client, srv.URL, http.Header{"X-Traffic-Tag": {"dev-alice"}})
	call(t, client, srv.URL, http.Header{"X-Traffic-Tag": {"dev-bob"}})
	call(t, client, srv.URL, nil)

	got := metrictest.Counts(t, reader, ingress.DecisionsMetric, ingress.AttrOutcome, ingress.AttrRule, ingress.AttrLane, ingress.AttrStripped)
	assert.Equal(t, map[string]int64{
		"rule/testers/blue/none":        1,
		"rule/testers/blue/not_allowed": 1,
		"kept//gray/none":               1,
		"kept//other/none":              2, // dev lanes are not known lanes: bounded cardinality
		"default///none":                1,
	}, got)
	assert.Contains(t, logs.String(), `level=DEBUG msg="graylane: ingress decision" outcome=rule rule=testers tag=blue stripped=not_allowed trusted=true`)
}

func TestDecisionSpanAttributes(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	traced := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx, span := tp.Tracer("test").Start(r.Context(), "gateway")
			defer span.End()
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
	rs := mustParse(t, baseRules)
	srv := httptest.NewServer(traced(ingress.Middleware(rs)(echo)))
	defer srv.Close()
	call(t, newClient(t), srv.URL, http.Header{"X-Group": {"testers"}, "X-Traffic-Tag": {"gray"}})

	spans := rec.Ended()
	require.Len(t, spans, 1)
	attrs := map[attribute.Key]attribute.Value{}
	for _, kv := range spans[0].Attributes() {
		attrs[kv.Key] = kv.Value
	}
	assert.Equal(t, "rule", attrs[ingress.AttrOutcome].AsString())
	assert.Equal(t, "testers", attrs[ingress.AttrRule].AsString())
	assert.Equal(t, "blue", attrs["graylane.tag"].AsString())
	assert.Equal(t, "untrusted", attrs[ingress.AttrStripped].AsString())
	assert.False(t, attrs[ingress.AttrTrusted].AsBool())
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a server.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
