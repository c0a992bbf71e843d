package propagation_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/baggage"
	otelprop "go.opentelemetry.io/otel/propagation"

	"github.com/graylane/graylane/propagation"
)

// unicodeSpaces are the runes strings.TrimSpace trims, besides ' ' and '\t'.
var unicodeSpaces = []rune{'\n', '\v', '\f', '\r', 0x85, 0xa0, 0x1680,
	0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a,
	0x2028, 0x2029, 0x202f, 0x205f, 0x3000}

// lenientProp reads and strips graylane's member and the dialects' baggage
// keys: Signadot's and one of its own.
func lenientProp(t testing.TB) *propagation.Propagator {
	own, err := propagation.BaggageDialect("mine", "Lane_Key")
	require.NoError(t, err)
	return newProp(t, propagation.WithDialects(propagation.DialectSignadot, own))
}

var lenientKeys = []string{"traffic-tag", "sd-routing-key", "Lane_Key"}

// TestStripLenientReaders sends, as an untrusted client would, baggage
// members that some reader downstream takes for a tag member though they
// are no W3C member with the tag key, and checks that Strip removes them,
// keeps the decoys, and leaves nothing that OpenTelemetry's parser or
// graylane's reader (through the headers or otelhttp's context) reads.
func TestStripLenientReaders(t *testing.T) {
	p := lenientProp(t)
	type tc struct {
		name, in, want string
	}
	var tests []tc
	for _, r := range unicodeSpaces {
		sp := string(r)
		tests = append(tests,
			tc{fmt.Sprintf("%U before the key", r), sp + "traffic-tag=gray", ""},
			tc{fmt.Sprintf("%U around the key, property, decoys", r), "a=1," + sp + "traffic-tag" + sp + "=gray;p=1,b=2", "a=1,b=2"},
			tc{fmt.Sprintf("%U before a dialect key", r), "c=3," + sp + "sd-routing-key=gray", "c=3"},
		)
	}
	tests = append(tests, []tc{
		{"BOM", "\ufefftraffic-tag=gray", ""},
		{"zero width space", "\u200btraffic-tag=gray", ""},
		{"control characters", "\x00\x1ftraffic-tag\x1c=gray", ""},
		{"upper case", "Traffic-Tag=gray", ""},
		{"shouting", "TRAFFIC-TAG=gray,SD-ROUTING-KEY=x", ""},
		{"kelvin sign", "sd-routing-\u212aey=gray", ""},
		{"dotless i", "traff\u0131c-tag=gray", ""},
		{"long s", "\u017fd-routing-key=gray", ""},
		{"underscore", "traffic_tag=gray", ""},
		{"dialect key in other case", "lane-key=gray", ""},
		{"percent-encoded key", "traffic%2Dtag=gray", ""},
		{"percent-encoded space", "%20traffic-tag=gray", ""},
		{"percent-encoded twice", "%2574raffic-tag=gray", ""},
		{"property before the value", "traffic-tag;p=1=gray", ""},
		{"decoy before and after", "traffic-tag-x=1,\u00a0traffic-tag=gray,xtraffic-tag=2", "traffic-tag-x=1,xtraffic-tag=2"},
		{"decoy of the same key", "traffic-tag=prod,\u3000traffic-tag=gray", ""},
		{"value with spaces", "traffic-tag=\u00a0gray\u00a0", ""},
		{"no value is no member", "traffic-tag", "traffic-tag"},
		{"other keys kept", "traffic=1,tag=2,k=traffic-tag", "traffic=1,tag=2,k=traffic-tag"},
	}...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{"Baggage": {tt.in}}
			assert.Equal(t, tt.in != tt.want, p.Strip(h))
			assert.Equal(t, tt.want, strings.Join(h["Baggage"], ","))
			assertNoTagLeft(t, p, h)

			md := map[string][]string{"baggage": {tt.in}}
			p.StripMetadata(md)
			assert.Equal(t, tt.want, strings.Join(md["baggage"], ","), "metadata")
		})
	}
}

// assertNoTagLeft checks that no reader finds a tag member in h.
func assertNoTagLeft(t testing.TB, p *propagation.Propagator, h http.Header) {
	t.Helper()
	all := strings.Join(h.Values("Baggage"), ",")
	bag, _ := baggage.Parse(all) // keeps the members that parse
	for _, m := range bag.Members() {
		for _, k := range lenientKeys {
			if strings.EqualFold(m.Key(), k) {
				t.Fatalf("OpenTelemetry reads member %q=%q from %q", m.Key(), m.Value(), all)
			}
		}
	}
	if got, src := p.ReadHeader(context.Background(), h); !got.IsZero() {
		t.Fatalf("graylane reads %q from %v in %q", got, src, all)
	}
	// A service behind otelhttp: OpenTelemetry's propagator first.
	ctx := otelprop.Baggage{}.Extract(context.Background(), otelprop.HeaderCarrier(h))
	if got, src := p.ReadHeader(ctx, http.Header{}); !got.IsZero() {
		t.Fatalf("graylane reads %q from %v of the OpenTelemetry context of %q", got, src, all)
	}
}

func TestStripHeaderSpellings(t *testing.T) {
	p := newProp(t, propagation.WithDialects(propagation.DialectASM, propagation.DialectSignadot))
	tests := []struct {
		name string
		in   http.Header
		want http.Header
	}{
		{"underscores", http.Header{"X_traffic_tag": {"gray"}}, http.Header{}},
		{"dots", http.Header{"X.traffic.tag": {"gray"}}, http.Header{}},
		{"not canonical", http.Header{"x-traffic-tag": {"gray"}, "X-ASM-PREFER-TAG": {"gray"}}, http.Header{}},
		{"mixed", http.Header{"X-Asm_Prefer.Tag": {"gray"}}, http.Header{}},
		{"baggage not canonical", http.Header{"baggage": {"a=1,traffic-tag=gray"}, "BAGGAGE": {"sd-routing-key=x"}},
			http.Header{"baggage": {"a=1"}}},
		{"similar names kept", http.Header{"X-Traffic-Tags": {"gray"}, "X-Traffic": {"gray"}, "Baggages": {"traffic-tag=gray"}},
			http.Header{"X-Traffic-Tags": {"gray"}, "X-Traffic": {"gray"}, "Baggages": {"traffic-tag=gray"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.in.Clone()
			p.Strip(h)
			assert.Equal(t, tt.want, h)
		})
	}
}

func TestStripContextLenient(t *testing.T) {
	p := lenientProp(t)
	bag, err := baggage.Parse("a=1,Traffic-Tag=gray,lane-key=x,SD-Routing-Key=y")
	require.NoError(t, err)
	ctx := p.StripContext(baggage.ContextWithBaggage(context.Background(), bag))
	assert.Equal(t, "a=1", baggage.FromContext(ctx).String())
}

// TestReadTrimsLikeOpenTelemetry checks that graylane's reader trims keys
// and values as OpenTelemetry's parser does, so that a service reads the
// same tag with or without otelhttp in front.
func TestReadTrimsLikeOpenTelemetry(t *testing.T) {
	p := newProp(t, propagation.WithSources(propagation.SourceBaggage))
	for _, r := range unicodeSpaces {
		sp := string(r)
		in := "a=1," + sp + "traffic-tag" + sp + "=" + sp + "gray" + sp + ";p=1"
		bag, err := baggage.Parse(in)
		require.NoError(t, err, "%q", in)
		require.Equal(t, "gray", bag.Member("traffic-tag").Value())
		got, _ := p.ReadHeader(context.Background(), http.Header{"Baggage": {in}})
		assert.Equal(t, "gray", got.String(), "%U", r)
	}
}

// FuzzStripThenOpenTelemetry is differential: whatever the client sends,
// after Strip neither OpenTelemetry's baggage parser nor graylane's reader
// (directly, or from the context OpenTelemetry's propagator fills) finds a
// member with graylane's or a dialect's key, in any case.
func FuzzStripThenOpenTelemetry(f *testing.F) {
	for _, s := range baggageSeeds {
		f.Add(s, "")
	}
	for _, r := range unicodeSpaces {
		f.Add("a=1,"+string(r)+"traffic-tag=gray;p=1,b=2", string(r)+"sd-routing-key=x")
	}
	for _, s := range []string{"\ufefftraffic-tag=gray", "Traffic-Tag=gray", "traffic%2Dtag=gray", "sd-routing-\u212aey=gray",
		"traff\u0131c-tag=gray", "traffic_tag=gray", "lane-key=x", "traffic-tag;p=1=gray", "traffic-tag=prod,\u3000traffic-tag=gray"} {
		f.Add(s, "x=1")
	}
	p := lenientProp(f)
	f.Fuzz(func(t *testing.T, line1, line2 string) {
		h := http.Header{"Baggage": {line1, line2}}
		p.Strip(h)
		assertNoTagLeft(t, p, h)
		for _, line := range h["Baggage"] {
			for m := range strings.SplitSeq(line, ",") {
				if looselyKeyed(m, lenientKeys) {
					t.Fatalf("member %q left in %q", m, h["Baggage"])
				}
			}
		}
	})
}

// looselyKeyed is the test's own reading of a member key, the loosest the
// test knows: trimmed of spaces, controls and invisible characters,
// percent-decoded, case-folded both ways, '_' read as '-'.
func looselyKeyed(m string, keys []string) bool {
	i := strings.IndexAny(m, "=;")
	if i < 0 || !strings.Contains(m, "=") {
		return false
	}
	trim := func(s string) string {
		return strings.TrimFunc(s, func(r rune) bool {
			return r <= ' ' || r == 0x7f || unicode.IsSpace(r) || strings.ContainsRune("\u180e\u200b\u200c\u200d\u2060\ufeff", r)
		})
	}
	k := trim(m[:i])
	for range 3 {
		d, err := url.PathUnescape(k)
		if err != nil || d == k {
			break
		}
		k = trim(d)
	}
	k = strings.Map(func(r rune) rune {
		if r == '_' {
			return '-'
		}
		return unicode.ToLower(unicode.ToUpper(r))
	}, k)
	for _, want := range keys {
		if k == strings.ReplaceAll(strings.ToLower(want), "_", "-") || strings.EqualFold(k, want) {
			return true
		}
	}
	return false
}
