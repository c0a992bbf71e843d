package receipt_test

import (
	"context"
	"strings"
	"sync"
	"testing"

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
		// Whatever parsed re-encodes to text that parses to the same hops.
		again, err := receipt.Parse(receipt.Encode(hops))
		if err != nil {
			t.Fatalf("re-parse of %q: %v", receipt.Encode(hops), err)
		}
		if len(hops) == 0 {
			return
		}
		for i := range hops {
			if hops[i] != again[i] {
				t.Fatalf("round trip changed %#v into %#v", hops[i], again[i])
			}
		}
	})
}
