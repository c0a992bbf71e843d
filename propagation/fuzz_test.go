package propagation_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/baggage"

	"github.com/graylane/graylane/propagation"
	"github.com/graylane/graylane/tag"
)

var baggageSeeds = []string{
	"traffic-tag=gray",
	"a=1,traffic-tag=gray;p=1,b=2",
	" traffic-tag = gr%61y ",
	"traffic-tag=gray,traffic-tag=v3",
	"traffic-tag=%",
	"traffic-tag=%zz",
	",,,=,;",
	"traffic-tag",
	"traffic-tag2=x,xtraffic-tag=y",
	"traffic-tag=gr\xffay",
	strings.Repeat("k=v,", 70) + "traffic-tag=gray",
}

// FuzzReadBaggage checks the bounded scan never panics, only ever yields a
// valid tag, and agrees with OpenTelemetry's full parser whenever that parser
// accepts the whole header.
func FuzzReadBaggage(f *testing.F) {
	for _, s := range baggageSeeds {
		f.Add(s)
	}
	p, err := propagation.New(propagation.WithSources(propagation.SourceBaggage))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, _ := p.ReadHeader(context.Background(), http.Header{"Baggage": {s}})
		if got.IsZero() {
			return
		}
		if !tag.Valid(got.String()) {
			t.Fatalf("invalid tag %q from %q", got, s)
		}
		if b, err := baggage.Parse(s); err == nil {
			if want := b.Member("traffic-tag").Value(); want != got.String() {
				t.Fatalf("baggage %q: scan found %q, OpenTelemetry %q", s, got, want)
			}
		}
	})
}

// FuzzInjectBaggage checks that injecting the member keeps every other
// member, in order, never breaks the W3C limits it did not already break, and
// can be read back whenever it fits.
func FuzzInjectBaggage(f *testing.F) {
	for _, s := range baggageSeeds {
		f.Add(s, "gray")
	}
	f.Add("", "v3")
	p, err := propagation.New(propagation.WithBaggageInjection(), propagation.WithSources(propagation.SourceBaggage))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s, v string) {
		tg, ok := tag.Of(v)
		if !ok {
			return
		}
		h := http.Header{"Baggage": {s}}
		p.InjectHeader(h, tg)
		out := strings.Join(h["Baggage"], ",")
		if !slices.Equal(others(out), others(s)) {
			t.Fatalf("members changed: %q -> %q", s, out)
		}
		switch placed := tagMembers(out); len(placed) {
		case 0:
			if n, size := len(others(s)), len(strings.Join(others(s), ",")); n < propagation.MaxBaggageMembers && size+len(",traffic-tag=")+len(v) <= propagation.MaxBaggageBytes {
				t.Fatalf("member fits (%d members, %d bytes) but was not injected: %q -> %q", n, size, s, out)
			}
		case 1:
			if placed[0] != v {
				t.Fatalf("member %q, want %q", placed[0], v)
			}
			if out == s {
				return // already there: left as it was
			}
			if len(out) > propagation.MaxBaggageBytes || len(others(out))+1 > propagation.MaxBaggageMembers {
				t.Fatalf("injection broke the limits: %d bytes", len(out))
			}
			if got, _ := p.ReadHeader(context.Background(), h); got != tg {
				t.Fatalf("injected %q into %q but read back %q", v, out, got)
			}
		default:
			t.Fatalf("member duplicated: %q -> %q", s, out)
		}
	})
}

// tagMembers returns the trimmed values of the members keyed traffic-tag.
func tagMembers(s string) []string {
	var out []string
	for m := range strings.SplitSeq(s, ",") {
		k, v, ok := strings.Cut(m, "=")
		if ok && strings.TrimSpace(k) == "traffic-tag" {
			v, _, _ = strings.Cut(v, ";")
			out = append(out, strings.TrimSpace(v))
		}
	}
	return out
}

// others lists the non-empty members whose key is not the tag key. Keys
// and emptiness are judged as the reader does, trimming Unicode white space.
func others(s string) []string {
	var out []string
	for m := range strings.SplitSeq(s, ",") {
		k, _, _ := strings.Cut(m, "=")
		k = strings.TrimSpace(k)
		if strings.TrimSpace(m) == "" || (k == "traffic-tag" && strings.Contains(m, "=")) {
			continue
		}
		out = append(out, m)
	}
	return out
}
