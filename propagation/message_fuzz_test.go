package propagation_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/graylane/graylane/propagation"
	"github.com/graylane/graylane/tag"
)

// FuzzReadMessage checks that reading message headers never panics, only
// ever yields a valid tag, and reads what ReadHeader reads from the same
// values in HTTP headers: one set of rules for every carrier.
func FuzzReadMessage(f *testing.F) {
	for _, s := range baggageSeeds {
		f.Add("gray", "", s)
	}
	f.Add("gray", "v3", "")
	f.Add("gr@y", "", "traffic-tag=v3")
	f.Add("", "", "")
	p, err := propagation.New(propagation.WithOwnTag(""), propagation.WithDialects(propagation.DialectASM))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, v1, v2, bag string) {
		m := propagation.MessageHeader{}
		h := http.Header{}
		for _, v := range []string{v1, v2} {
			if v != "" {
				m["x-traffic-tag"] = append(m["x-traffic-tag"], v)
				h["X-Traffic-Tag"] = append(h["X-Traffic-Tag"], v)
			}
		}
		if bag != "" {
			m["baggage"] = []string{bag}
			h["Baggage"] = []string{bag}
			m["x-asm-prefer-tag"] = []string{bag}
			h["X-Asm-Prefer-Tag"] = []string{bag}
		}
		got, src := p.ReadMessage(context.Background(), m)
		want, wsrc := p.ReadHeader(context.Background(), h)
		if got != want || src != wsrc {
			t.Fatalf("message %v: %q from %v; HTTP: %q from %v", m, got, src, want, wsrc)
		}
		if !got.IsZero() && !tag.Valid(got.String()) {
			t.Fatalf("invalid tag %q", got)
		}
	})
}
