package resolver_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/graylane/graylane/internal/metrictest"
	"github.com/graylane/graylane/routing"
	"github.com/graylane/graylane/tag"
)

// TestTelemetry: every decision of the gRPC balancer is counted, with the
// requested tag, the chosen lane and the reason; tags that are no lane are
// counted together; the active span gets the same attributes.
func TestTelemetry(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	otel.SetMeterProvider(mp) // the balancers report to the global provider

	f := newFleet(t)
	f.start("telemetry", "", "prod", 0)
	f.start("telemetry", "gray", "gray", 0)
	client := f.dial("telemetry", nil)
	eventually(t, "gray", func() result { return call(client, "gray") }, servedBy("gray"))
	before := metrictest.Decisions(t, reader, "telemetry")

	for range 3 {
		require.NoError(t, call(client, "gray").err)
		require.NoError(t, call(client, "").err)
	}
	for _, lane := range []string{"x1", "x2", "x3", "x4"} {
		require.NoError(t, call(client, lane).err)
	}
	after := metrictest.Decisions(t, reader, "telemetry")
	assert.Equal(t, int64(3), after["gray>gray:matched"]-before["gray>gray:matched"])
	assert.Equal(t, int64(3), after[">prod:untagged"]-before[">prod:untagged"])
	assert.Equal(t, int64(4), after[routing.UnknownTag+">prod:noinstances"]-before[routing.UnknownTag+">prod:noinstances"],
		"unknown tags share one series")
	for k := range after {
		assert.NotContains(t, k, "x1", "a tag that is no lane never becomes an attribute value")
	}

	// Span attributes, on the span of the call.
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	ctx, span := tp.Tracer("test").Start(tag.NewContext(context.Background(), tag.MustParse("v3")), "call")
	_, err := client.UnaryCall(ctx, nil)
	require.NoError(t, err)
	span.End()
	require.Len(t, rec.Ended(), 1)
	attrs := map[attribute.Key]string{}
	for _, kv := range rec.Ended()[0].Attributes() {
		attrs[kv.Key] = kv.Value.AsString()
	}
	assert.Equal(t, map[attribute.Key]string{
		routing.AttrService: "telemetry", routing.AttrTag: routing.UnknownTag,
		routing.AttrLane: "prod", routing.AttrReason: "noinstances",
	}, attrs)
}
