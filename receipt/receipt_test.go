package receipt_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/graylane/graylane/receipt"
)

func TestEncodeParseRoundTrip(t *testing.T) {
	hops := []receipt.Hop{
		{Service: "productpage", Instance: "productpage-v1-0", Lane: "prod", Tag: "gray"},
		{Service: "reviews", Instance: "reviews v2, #0; odd=name", Lane: "gray", Tag: "gray", From: "productpage"},
		{Service: "ratings", Instance: "10.0.0.1:9000", Lane: "prod", Tag: "gray", Fallback: "noinstances", From: "reviews"},
		{Service: "details", Tag: "gray", From: "productpage", Error: `graylane: service "details", tag "gray": strict`},
	}
	s := receipt.Encode(hops)
	assert.Equal(t, "svc=productpage;inst=productpage-v1-0;lane=prod;tag=gray, "+
		"svc=reviews;inst=reviews%20v2%2C%20%230%3B%20odd%3Dname;lane=gray;tag=gray;from=productpage, "+
		"svc=ratings;inst=10.0.0.1:9000;lane=prod;tag=gray;fallback=noinstances;from=reviews, "+
		"svc=details;tag=gray;from=productpage;error=graylane:%20service%20%22details%22%2C%20tag%20%22gray%22:%20strict", s)
	got, err := receipt.Parse(s)
	require.NoError(t, err)
	assert.Equal(t, hops, got)
}

func TestParseBadInput(t *testing.T) {
	tests := []struct {
		in      string
		hops    int
		wantErr string
	}{
		{"", 0, ""},
		{" , ,", 0, ""},
		{"svc=a;unknown=x", 1, ""},
		{"svc=a, garbage", 1, "not key=value"},
		{"svc=a, lane=gray", 1, "has no svc"},
		{"svc=a%zz", 0, "bad escape"},
		{"svc=a%4", 0, "bad escape"},
		{strings.Repeat("svc=a,", 100), receipt.MaxHops, ""},
		{strings.Repeat("x", receipt.MaxLen+10), 0, "not key=value"},
	}
	for _, tt := range tests {
		t.Run(tt.in[:min(len(tt.in), 20)], func(t *testing.T) {
			hops, err := receipt.Parse(tt.in)
			assert.Len(t, hops, tt.hops)
			if tt.wantErr == "" {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, receipt.ErrMalformed)
				assert.Contains(t, err.Error(), tt.wantErr)
			}
		})
	}
}

func TestReceiptConcurrentAddAndLimit(t *testing.T) {
	r := receipt.New(receipt.Hop{Service: "front"}, true)
	ctx := receipt.NewContext(context.Background(), r)
	require.Same(t, r, receipt.FromContext(ctx))
	assert.Nil(t, receipt.FromContext(context.Background()))

	var wg sync.WaitGroup
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				receipt.FromContext(ctx).Add(receipt.Hop{Service: "s", Instance: string(rune('a' + i))})
			}
		}()
	}
	wg.Wait()
	hops := r.Hops()
	assert.Len(t, hops, receipt.MaxHops)
	assert.Equal(t, "front", hops[0].Service)
	assert.Equal(t, "front", r.Owner().Service)
	assert.True(t, r.Expose())
}

func FuzzParse(f *testing.F) {
	f.Add("svc=reviews;inst=reviews-v2-0;lane=gray;tag=gray;from=productpage")
	f.Add("svc=a%20b, svc=c;fallback=noinstances")
	f.Add("svc=%zz")
	f.Add(",,;;==")
	f.Fuzz(func(t *testing.T, s string) {
		hops, _ := receipt.Parse(s)
		if len(hops) > receipt.MaxHops {
			t.Fatalf("%d hops", len(hops))
		}
		// Whatever parsed re-encodes, within the limits, to text that
		// parses to the same hops (values cut to MaxValue, hops that do
		// not fit left out at the end).
		enc := receipt.Encode(hops)
		if len(enc) > receipt.MaxLen {
			t.Fatalf("Encode wrote %d bytes", len(enc))
		}
		again, err := receipt.Parse(enc)
		if err != nil {
			t.Fatalf("re-parse of %q: %v", enc, err)
		}
		if len(again) > len(hops) {
			t.Fatalf("%d hops came back from %d", len(again), len(hops))
		}
		for i := range again {
			if want := clipped(hops[i]); want != again[i] {
				t.Fatalf("round trip changed %#v into %#v", want, again[i])
			}
		}
	})
}

// clipped is h as Encode writes it: every value cut to MaxValue bytes.
func clipped(h receipt.Hop) receipt.Hop {
	c := func(v string) string {
		if len(v) <= receipt.MaxValue {
			return v
		}
		cut := receipt.MaxValue
		for cut > 0 && !utf8.RuneStart(v[cut]) {
			cut--
		}
		return v[:cut]
	}
	return receipt.Hop{Service: c(h.Service), Instance: c(h.Instance), Lane: c(h.Lane), Tag: c(h.Tag), Fallback: c(h.Fallback), From: c(h.From), Error: c(h.Error)}
}

func TestEncodeStaysWithinLimits(t *testing.T) {
	long := receipt.Hop{Service: "svc", Error: strings.Repeat("!", 3000)}
	enc := receipt.Encode([]receipt.Hop{long})
	hops, err := receipt.Parse(enc)
	require.NoError(t, err)
	require.Len(t, hops, 1)
	assert.Len(t, hops[0].Error, receipt.MaxValue, "a long value is cut")

	many := make([]receipt.Hop, 100)
	for i := range many {
		many[i] = receipt.Hop{Service: "svc", Instance: strings.Repeat("é", 100), From: "front"}
	}
	enc = receipt.Encode(many)
	assert.LessOrEqual(t, len(enc), receipt.MaxLen)
	hops, err = receipt.Parse(enc)
	require.NoError(t, err, "what Encode writes always parses")
	assert.NotEmpty(t, hops)
	assert.Less(t, len(hops), 100, "hops that do not fit are left out, whole")
	for _, h := range hops {
		assert.True(t, utf8.ValidString(h.Instance))
	}
}
