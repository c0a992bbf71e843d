package propagation_test

import (
	"context"
	"net/http"
	"net/textproto"
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/baggage"

	"github.com/graylane/graylane/propagation"
	"github.com/graylane/graylane/tag"
)

// FuzzDialectRead feeds one value, in the place of one dialect (chosen by
// index among the presets), to a propagator that reads every dialect. It
// checks that reading never panics and yields either nothing or a valid tag
// that agrees with the value, that the tag survives a write and a read in
// that dialect, and that Strip leaves nothing to read.
func FuzzDialectRead(f *testing.F) {
	for i := range allDialects {
		for _, v := range []string{"gray", "", "gr ay", "a/b", "/x", "group/gray", "g/r/ay", "%67ray", "gray;p=1", "x,y", "sd-routing-key=gray", "\xff"} {
			f.Add(uint8(i), v)
		}
	}
	ds := presets()
	reader, err := propagation.New(propagation.WithOwnTag(""), propagation.WithDialects(ds...),
		propagation.WithSources(propagation.SourceDialect))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, i uint8, v string) {
		d := ds[int(i)%len(ds)]
		h := http.Header{}
		if d.Header() != "" {
			h[textproto.CanonicalMIMEHeaderKey(d.Header())] = []string{v}
		} else {
			h["Baggage"] = []string{d.BaggageMember() + "=" + v}
		}
		got, src := reader.ReadHeader(context.Background(), h)
		if got.IsZero() {
			if src != propagation.SourceNone {
				t.Fatalf("no tag but source %v", src)
			}
			return
		}
		if !tag.Valid(got.String()) {
			t.Fatalf("%v: invalid tag %q from %q", d, got, v)
		}
		switch {
		case d == propagation.DialectPolaris:
			if v != got.String() && !strings.HasPrefix(v, got.String()+"/") {
				t.Fatalf("polaris: %q read as %q", v, got)
			}
		case d.Header() != "":
			if v != got.String() {
				t.Fatalf("%v: %q read as %q", d, v, got)
			}
		default:
			if b, err := baggage.Parse(h.Get("Baggage")); err == nil {
				if want := b.Member(d.BaggageMember()).Value(); want != got.String() {
					t.Fatalf("%v: %q read as %q, OpenTelemetry says %q", d, v, got, want)
				}
			}
		}

		w, err := propagation.New(propagation.WithOwnTag(""), propagation.WithWriteDialects(d))
		if err != nil {
			t.Fatal(err)
		}
		out := http.Header{}
		w.InjectHeader(out, got)
		if back, _ := reader.ReadHeader(context.Background(), out); back != got {
			t.Fatalf("%v: wrote %q as %v, read back %q", d, got, out, back)
		}

		reader.Strip(h)
		if left, _ := reader.ReadHeader(context.Background(), h); !left.IsZero() {
			t.Fatalf("%v: %q left after Strip: %v", d, left, h)
		}
	})
}

// FuzzStrip checks that stripping the baggage header removes every tag
// member, wherever it is and however loosely keyed (see looselyKeyed), and
// keeps every other non-empty member, in order.
func FuzzStrip(f *testing.F) {
	for _, s := range baggageSeeds {
		f.Add(s)
	}
	f.Add("sd-routing-key=a, traffic-tag=b ,c=d")
	p, err := propagation.New(propagation.WithOwnTag(""), propagation.WithDialects(propagation.DialectSignadot))
	if err != nil {
		f.Fatal(err)
	}
	keys := []string{"traffic-tag", "sd-routing-key"}
	f.Fuzz(func(t *testing.T, s string) {
		h := http.Header{"Baggage": {s}}
		removed := p.Strip(h)
		out := strings.Join(h["Baggage"], ",")
		var want, got []string
		for m := range strings.SplitSeq(s, ",") {
			if strings.TrimSpace(m) != "" && !looselyKeyed(m, keys) {
				want = append(want, m)
			}
		}
		if removed {
			for m := range strings.SplitSeq(out, ",") {
				if out != "" {
					got = append(got, m)
				}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("%q stripped to %q, want members %q", s, out, want)
			}
		} else if out != s {
			t.Fatalf("%q changed to %q but Strip reported nothing removed", s, out)
		}
		for m := range strings.SplitSeq(out, ",") {
			if looselyKeyed(m, keys) {
				t.Fatalf("%q: member %q left in %q", s, m, out)
			}
		}
	})
}
