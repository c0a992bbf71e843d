package propagation_test

import (
	"context"
	"fmt"
	"net/http"

	otelprop "go.opentelemetry.io/otel/propagation"

	"github.com/graylane/graylane/propagation"
	"github.com/graylane/graylane/tag"
)

func Example() {
	p, err := propagation.New(propagation.WithOwnTag(""))
	if err != nil {
		panic(err)
	}

	// Inbound: the tag arrives in W3C baggage.
	in := http.Header{"Baggage": {"user=alice,traffic-tag=gray"}}
	t, src := p.ReadHeader(context.Background(), in)
	fmt.Println("read", t, "from", src)

	// Outbound: it leaves in the tag header.
	out := http.Header{}
	p.InjectHeader(out, t)
	fmt.Println("x-traffic-tag:", out.Get("x-traffic-tag"))
	// Output:
	// read gray from baggage
	// x-traffic-tag: gray
}

// The Propagator is an OpenTelemetry TextMapPropagator: register it after
// TraceContext and Baggage, and every instrumented client and server carries
// the tag too.
func ExamplePropagator_Inject() {
	p, err := propagation.New(propagation.WithBaggageInjection())
	if err != nil {
		panic(err)
	}
	prop := otelprop.NewCompositeTextMapPropagator(otelprop.TraceContext{}, otelprop.Baggage{}, p)
	// otel.SetTextMapPropagator(prop) makes it global.

	carrier := otelprop.MapCarrier{}
	prop.Inject(tag.NewContext(context.Background(), tag.MustParse("gray")), carrier)
	fmt.Println(carrier["x-traffic-tag"], carrier["baggage"])
	// Output: gray traffic-tag=gray
}

// Bad values are skipped, not errors: here an invalid header gives way to
// the baggage member.
func ExamplePropagator_ReadHeader_badInput() {
	p, err := propagation.New(propagation.WithOwnTag(""))
	if err != nil {
		panic(err)
	}
	h := http.Header{"X-Traffic-Tag": {"gray; drop table"}, "Baggage": {"traffic-tag=v3"}}
	t, src := p.ReadHeader(context.Background(), h)
	fmt.Println(t, src)
	// Output: v3 baggage
}
