package propagation_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/baggage"

	"github.com/graylane/graylane/propagation"
)

func TestStrip(t *testing.T) {
	p := newProp(t,
		propagation.WithDialects(propagation.DialectASM, propagation.DialectSignadot),
		propagation.WithWriteDialects(propagation.DialectMSE))
	tests := []struct {
		name    string
		in      http.Header
		want    http.Header
		removed bool
	}{
		{"nothing", http.Header{"Accept": {"*/*"}}, http.Header{"Accept": {"*/*"}}, false},
		{"tag header", http.Header{"X-Traffic-Tag": {"gray", "v3"}, "Accept": {"*/*"}}, http.Header{"Accept": {"*/*"}}, true},
		{"invalid values too", http.Header{"X-Traffic-Tag": {"<bad>"}}, http.Header{}, true},
		{"read dialect", http.Header{"X-Asm-Prefer-Tag": {"gray"}}, http.Header{}, true},
		{"written dialect", http.Header{"X-Mse-Tag": {"gray"}}, http.Header{}, true},
		{"other dialect kept", http.Header{"Service-Lane": {"gray"}}, http.Header{"Service-Lane": {"gray"}}, false},
		{"baggage members", http.Header{"Baggage": {"a=1, traffic-tag=gray;p ,b=2", "sd-routing-key=x,c=3"}},
			http.Header{"Baggage": {"a=1,b=2", "c=3"}}, true},
		{"baggage only tag members", http.Header{"Baggage": {"traffic-tag=gray", "sd-routing-key=x"}}, http.Header{}, true},
		{"baggage without tag members untouched", http.Header{"Baggage": {"a=1,,b=2"}}, http.Header{"Baggage": {"a=1,,b=2"}}, false},
		{"similar keys kept", http.Header{"Baggage": {"traffic-tag2=x,xtraffic-tag=y"}}, http.Header{"Baggage": {"traffic-tag2=x,xtraffic-tag=y"}}, false},
		{"member past the 64th", http.Header{"Baggage": {strings.Repeat("k=v,", 100) + "traffic-tag=gray"}},
			http.Header{"Baggage": {strings.TrimSuffix(strings.Repeat("k=v,", 100), ",")}}, true},
		{"oversized baggage", http.Header{"Baggage": {"traffic-tag=gray," + strings.Repeat("k=v,", 2100) + "z=1"}},
			http.Header{"Baggage": {strings.Repeat("k=v,", 2100) + "z=1"}}, true},
		{"malformed member kept", http.Header{"Baggage": {"traffic-tag,=x"}}, http.Header{"Baggage": {"traffic-tag,=x"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.in.Clone()
			assert.Equal(t, tt.removed, p.Strip(h))
			assert.Equal(t, tt.want, h)
			got, _ := p.ReadHeader(context.Background(), h)
			assert.True(t, got.IsZero(), "nothing left to read")

			md := map[string][]string{}
			for k, v := range tt.in {
				md[strings.ToLower(k)] = append([]string(nil), v...)
			}
			assert.Equal(t, tt.removed, p.StripMetadata(md))
			wantMD := map[string][]string{}
			for k, v := range tt.want {
				wantMD[strings.ToLower(k)] = v
			}
			assert.Equal(t, wantMD, md, "metadata")
		})
	}
}

func TestStripBaggageOff(t *testing.T) {
	p := newProp(t, propagation.WithBaggageMember(""))
	h := http.Header{"Baggage": {"traffic-tag=gray"}, "X-Traffic-Tag": {"gray"}}
	assert.True(t, p.Strip(h))
	assert.Equal(t, http.Header{"Baggage": {"traffic-tag=gray"}}, h, "a member p never reads is not p's to remove")
}

func TestStripContext(t *testing.T) {
	p := newProp(t, propagation.WithDialects(propagation.DialectSignadot))
	ctx := context.Background()
	assert.Equal(t, ctx, p.StripContext(ctx), "no baggage")

	ctx = baggage.ContextWithBaggage(ctx, must(baggage.Parse("a=1")))
	assert.Equal(t, ctx, p.StripContext(ctx), "no tag member")

	ctx = baggage.ContextWithBaggage(ctx, must(baggage.Parse("a=1,traffic-tag=gray,sd-routing-key=v3")))
	got, _ := p.ReadHeader(ctx, http.Header{})
	require.Equal(t, "gray", got.String(), "the context baggage is a source")
	stripped := p.StripContext(ctx)
	assert.Equal(t, "a=1", baggage.FromContext(stripped).String())
	got, _ = p.ReadHeader(stripped, http.Header{})
	assert.True(t, got.IsZero())
}

func BenchmarkStrip(b *testing.B) {
	p := newProp(b, propagation.WithDialects(propagation.DialectASM, propagation.DialectSignadot))
	b.Run("nothing", func(b *testing.B) {
		h := http.Header{"Accept": {"*/*"}, "Baggage": {"user=alice,region=eu"}, "User-Agent": {"bench"}}
		b.ReportAllocs()
		for b.Loop() {
			if p.Strip(h) {
				b.Fatal("stripped")
			}
		}
	})
	b.Run("tag", func(b *testing.B) {
		h := http.Header{"Accept": {"*/*"}, "Baggage": {"user=alice,region=eu"}}
		tagged := []string{"gray"}
		b.ReportAllocs()
		for b.Loop() {
			h["X-Traffic-Tag"] = tagged // as it came in
			if !p.Strip(h) {
				b.Fatal("kept")
			}
		}
	})
	b.Run("baggage-member", func(b *testing.B) {
		h := http.Header{"Accept": {"*/*"}}
		bag := []string{"user=alice,traffic-tag=gray,region=eu"}
		b.ReportAllocs()
		for b.Loop() {
			h["Baggage"] = bag
			if !p.Strip(h) {
				b.Fatal("kept")
			}
		}
	})
}
