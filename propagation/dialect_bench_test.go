package propagation_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/graylane/graylane/propagation"
)

// BenchmarkReadDialect measures reading the tag from a dialect, after the
// graylane header and baggage member were looked for in vain, beside the
// baseline of reading graylane's own header (impl=own-header). Compare with
//
//	benchstat -col /impl
func BenchmarkReadDialect(b *testing.B) {
	p := newProp(b, propagation.WithDialects(presets()...))
	ctx := context.Background()
	base := http.Header{"X-Traffic-Tag": {"gray"}, "Accept": {"*/*"}, "Baggage": {"user=alice"}}
	b.Run("impl=own-header", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if t, _ := p.ReadHeader(ctx, base); t.String() != "gray" {
				b.Fatal(t)
			}
		}
	})
	for _, c := range allDialects {
		h := c.sent.Clone()
		h.Set("Accept", "*/*")
		if h.Get("Baggage") == "" {
			h.Set("Baggage", "user=alice")
		}
		b.Run("impl="+c.d.Name(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if t, _ := p.ReadHeader(ctx, h); t.String() != "gray" {
					b.Fatal(t)
				}
			}
		})
	}
}
