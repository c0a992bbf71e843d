package propagation_test

import (
	"context"
	"fmt"
	"net/http"

	"github.com/graylane/graylane/propagation"
)

// A service in a fleet where an MSE-instrumented gateway marks requests
// with x-mse-tag, and Kitex services downstream route on persistent
// metainfo: it reads both formats and writes the Kitex one besides its own.
func ExampleWithDialects() {
	p, err := propagation.New(propagation.WithOwnTag(""),
		propagation.WithDialects(propagation.DialectMSE, propagation.DialectKitex),
		propagation.WithWriteDialects(propagation.DialectKitex))
	if err != nil {
		panic(err)
	}
	in := http.Header{"X-Mse-Tag": {"gray"}}
	t, src := p.ReadHeader(context.Background(), in)
	fmt.Println("read", t, "from", src)

	out := http.Header{}
	p.InjectHeader(out, t)
	fmt.Println("x-traffic-tag:", out.Get("x-traffic-tag"))
	fmt.Println("rpc-persist-traffic-tag:", out.Get("rpc-persist-traffic-tag"))
	// Output:
	// read gray from dialect
	// x-traffic-tag: gray
	// rpc-persist-traffic-tag: gray
}

// Strip removes every place the propagator reads a tag from, and keeps the
// other baggage members.
func ExamplePropagator_Strip() {
	p, err := propagation.New(propagation.WithDialects(propagation.DialectSignadot))
	if err != nil {
		panic(err)
	}
	h := http.Header{
		"X-Traffic-Tag": {"gray"},
		"Baggage":       {"user=alice,sd-routing-key=gray,traffic-tag=gray"},
	}
	fmt.Println(p.Strip(h), h)
	// Output: true map[Baggage:[user=alice]]
}
