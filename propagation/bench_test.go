package propagation_test

import (
	"context"
	"net/http"
	"testing"

	"go.opentelemetry.io/otel/baggage"

	"github.com/graylane/graylane/propagation"
	"github.com/graylane/graylane/tag"
)

// Baggage inputs: a typical header and a hostile one at the W3C limits
// (64 members, 8 KiB) with the tag member last.
var bagInputs = []struct {
	name string
	val  string
}{
	{"members=3", "user=alice,traffic-tag=gray,region=eu"},
	{"members=64/bytes=8K", members(63, 128) + ",traffic-tag=gray"},
}

// BenchmarkReadBaggage compares the bounded scan for the tag member with
// the baseline OpenTelemetry's baggage.Parse on the same header. Compare with
//
//	benchstat -col /impl
func BenchmarkReadBaggage(b *testing.B) {
	p, err := propagation.New(propagation.WithSources(propagation.SourceBaggage))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for _, in := range bagInputs {
		if len(in.val) > propagation.MaxBaggageBytes {
			b.Fatalf("%s: %d bytes", in.name, len(in.val))
		}
		h := http.Header{"Baggage": {in.val}}
		b.Run(in.name+"/impl=graylane", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if t, _ := p.ReadHeader(ctx, h); t.String() != "gray" {
					b.Fatal(t)
				}
			}
		})
		b.Run(in.name+"/impl=otel-parse", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				bag, _ := baggage.Parse(h.Get("Baggage"))
				if bag.Member("traffic-tag").Value() != "gray" {
					b.Fatal("no member")
				}
			}
		})
	}
}

// BenchmarkInjectMessage writes the tag into the headers of an outgoing
// message that already carries a trace header, against setting the same
// header by hand (the baseline): the cost of InjectMessage is the
// difference.
func BenchmarkInjectMessage(b *testing.B) {
	p, err := propagation.New()
	if err != nil {
		b.Fatal(err)
	}
	gray := tag.MustParse("gray")
	h := propagation.MessageHeader{"traceparent": {"00-x"}}
	b.Run("impl=baseline", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			delete(h, "x-traffic-tag")
			h["x-traffic-tag"] = []string{gray.String()}
		}
	})
	b.Run("impl=graylane", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			delete(h, "x-traffic-tag")
			p.InjectMessage(h, gray)
		}
	})
}
