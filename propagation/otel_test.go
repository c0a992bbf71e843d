package propagation_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/baggage"
	otelprop "go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/graylane/graylane/propagation"
	"github.com/graylane/graylane/tag"
)

// TestCompositeOrders runs the propagator inside OpenTelemetry's composite
// propagator, before and after TraceContext and Baggage: nobody's fields
// are clobbered in either order.
func TestCompositeOrders(t *testing.T) {
	gl, err := propagation.New(propagation.WithBaggageInjection(), propagation.WithOwnTag(""))
	require.NoError(t, err)
	orders := map[string][]otelprop.TextMapPropagator{
		"graylane last":  {otelprop.TraceContext{}, otelprop.Baggage{}, gl},
		"graylane first": {gl, otelprop.TraceContext{}, otelprop.Baggage{}},
	}
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		SpanID:     trace.SpanID{1, 2, 3, 4, 5, 6, 7, 8},
		TraceFlags: trace.FlagsSampled,
		TraceState: must(trace.ParseTraceState("vendor=x")),
	})
	bag := must(baggage.Parse("user=alice,region=eu"))

	for name, ps := range orders {
		t.Run(name, func(t *testing.T) {
			prop := otelprop.NewCompositeTextMapPropagator(ps...)
			assert.ElementsMatch(t, []string{"traceparent", "tracestate", "baggage", "x-traffic-tag"}, prop.Fields())

			ctx := trace.ContextWithRemoteSpanContext(context.Background(), sc)
			ctx = baggage.ContextWithBaggage(ctx, bag)
			ctx = tag.NewContext(ctx, tag.MustParse("gray"))
			h := http.Header{}
			prop.Inject(ctx, otelprop.HeaderCarrier(h))

			assert.Equal(t, "00-0102030405060708090a0b0c0d0e0f10-0102030405060708-01", h.Get("traceparent"))
			assert.Equal(t, "vendor=x", h.Get("tracestate"))
			assert.Equal(t, "gray", h.Get("x-traffic-tag"))
			outBag := must(baggage.Parse(h.Get("baggage")))
			assert.Equal(t, "alice", outBag.Member("user").Value())
			assert.Equal(t, "eu", outBag.Member("region").Value())
			if name == "graylane last" {
				assert.Equal(t, "gray", outBag.Member("traffic-tag").Value(), "member added to the baggage Baggage{} wrote")
			}

			// And back: everything arrives on the other side.
			got := prop.Extract(context.Background(), otelprop.HeaderCarrier(h))
			assert.Equal(t, sc.TraceID(), trace.SpanContextFromContext(got).TraceID())
			assert.Equal(t, "vendor=x", trace.SpanContextFromContext(got).TraceState().String())
			assert.Equal(t, "alice", baggage.FromContext(got).Member("user").Value())
			gt, ok := tag.FromContext(got)
			require.True(t, ok)
			assert.Equal(t, "gray", gt.String())
		})
	}
}

func TestExtractFromBaggageOnly(t *testing.T) {
	gl, err := propagation.New(propagation.WithOwnTag(""))
	require.NoError(t, err)
	for _, ps := range [][]otelprop.TextMapPropagator{{otelprop.Baggage{}, gl}, {gl, otelprop.Baggage{}}} {
		prop := otelprop.NewCompositeTextMapPropagator(ps...)
		ctx := prop.Extract(context.Background(), otelprop.MapCarrier{"baggage": "a=1,traffic-tag=gray"})
		got, ok := tag.FromContext(ctx)
		require.True(t, ok)
		assert.Equal(t, "gray", got.String())
		assert.Equal(t, "1", baggage.FromContext(ctx).Member("a").Value())
	}
}

func TestExtractNothingReturnsParent(t *testing.T) {
	gl, err := propagation.New(propagation.WithOwnTag(""))
	require.NoError(t, err)
	type key struct{}
	ctx := context.WithValue(context.Background(), key{}, 1)
	assert.Equal(t, ctx, gl.Extract(ctx, otelprop.MapCarrier{"x-traffic-tag": "bad tag"}))

	c := otelprop.MapCarrier{}
	gl.Inject(ctx, c)
	assert.Empty(t, c, "no tag, nothing written")
}

func TestInjectMapCarrier(t *testing.T) {
	gl, err := propagation.New(propagation.WithBaggageInjection())
	require.NoError(t, err)
	c := otelprop.MapCarrier{"baggage": "a=1,traffic-tag=v3"}
	gl.Inject(tag.NewContext(context.Background(), tag.MustParse("gray")), c)
	assert.Equal(t, otelprop.MapCarrier{"baggage": "a=1,traffic-tag=gray", "x-traffic-tag": "gray"}, c)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
