package propagation_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/baggage"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/graylane/graylane/internal/metrictest"
	"github.com/graylane/graylane/propagation"
	"github.com/graylane/graylane/tag"
)

// rejections reads the rejection counter, keyed "source/reason".
func rejections(t *testing.T, r *sdkmetric.ManualReader) map[string]int64 {
	t.Helper()
	return metrictest.Counts(t, r, propagation.RejectedMetric, propagation.AttrSource, propagation.AttrReason)
}

func newMetered(t *testing.T, opts ...propagation.Option) (*propagation.Propagator, *sdkmetric.ManualReader) {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	p, err := propagation.New(append([]propagation.Option{propagation.WithMeterProvider(mp), propagation.WithOwnTag("")}, opts...)...)
	require.NoError(t, err)
	return p, reader
}

func members(n int, size int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		k := "k" + strings.Repeat("x", 3) + string(rune('a'+i%26)) + string(rune('a'+i/26))
		b.WriteString(k + "=")
		b.WriteString(strings.Repeat("v", size-len(k)-1))
	}
	return b.String()
}

func TestReadHeaderSources(t *testing.T) {
	tests := []struct {
		name    string
		opts    []propagation.Option
		header  http.Header
		ctxBag  string // OpenTelemetry baggage in the context
		want    string
		wantSrc propagation.Source
	}{
		{name: "nothing", header: http.Header{}, want: "", wantSrc: propagation.SourceNone},
		{name: "header", header: http.Header{"X-Traffic-Tag": {"gray"}}, want: "gray", wantSrc: propagation.SourceHeader},
		{name: "baggage", header: http.Header{"Baggage": {"a=1,traffic-tag=gray;p=1,b=2"}}, want: "gray", wantSrc: propagation.SourceBaggage},
		{name: "header beats baggage", header: http.Header{"X-Traffic-Tag": {"gray"}, "Baggage": {"traffic-tag=v3"}}, want: "gray", wantSrc: propagation.SourceHeader},
		{name: "baggage beats own", opts: []propagation.Option{propagation.WithOwnTag("v3")}, header: http.Header{"Baggage": {"traffic-tag=gray"}}, want: "gray", wantSrc: propagation.SourceBaggage},
		{name: "own", opts: []propagation.Option{propagation.WithOwnTag("v3")}, header: http.Header{}, want: "v3", wantSrc: propagation.SourceOwn},
		{name: "invalid header falls to baggage", header: http.Header{"X-Traffic-Tag": {"no way"}, "Baggage": {"traffic-tag=gray"}}, want: "gray", wantSrc: propagation.SourceBaggage},
		{name: "context baggage", header: http.Header{}, ctxBag: "traffic-tag=gray", want: "gray", wantSrc: propagation.SourceBaggage},
		{name: "header baggage beats context baggage", header: http.Header{"Baggage": {"traffic-tag=v3"}}, ctxBag: "traffic-tag=gray", want: "v3", wantSrc: propagation.SourceBaggage},
		{name: "custom names", opts: []propagation.Option{propagation.WithHeader("X-Lane"), propagation.WithBaggageMember("lane")},
			header: http.Header{"X-Lane": {"gray"}, "X-Traffic-Tag": {"v3"}}, want: "gray", wantSrc: propagation.SourceHeader},
		{name: "custom baggage key", opts: []propagation.Option{propagation.WithBaggageMember("lane")},
			header: http.Header{"Baggage": {"traffic-tag=v3,lane=gray"}}, want: "gray", wantSrc: propagation.SourceBaggage},
		{name: "baggage off", opts: []propagation.Option{propagation.WithBaggageMember("")},
			header: http.Header{"Baggage": {"traffic-tag=gray"}}, want: "", wantSrc: propagation.SourceNone},
		{name: "order baggage first", opts: []propagation.Option{propagation.WithSources(propagation.SourceBaggage, propagation.SourceHeader)},
			header: http.Header{"X-Traffic-Tag": {"gray"}, "Baggage": {"traffic-tag=v3"}}, want: "v3", wantSrc: propagation.SourceBaggage},
		{name: "own first", opts: []propagation.Option{propagation.WithOwnTag("v3"), propagation.WithSources(propagation.SourceOwn, propagation.SourceHeader)},
			header: http.Header{"X-Traffic-Tag": {"gray"}}, want: "v3", wantSrc: propagation.SourceOwn},
		{name: "header only", opts: []propagation.Option{propagation.WithSources(propagation.SourceHeader)},
			header: http.Header{"Baggage": {"traffic-tag=v3"}}, want: "", wantSrc: propagation.SourceNone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := propagation.New(append([]propagation.Option{propagation.WithOwnTag("")}, tt.opts...)...)
			require.NoError(t, err)
			ctx := context.Background()
			if tt.ctxBag != "" {
				b, err := baggage.Parse(tt.ctxBag)
				require.NoError(t, err)
				ctx = baggage.ContextWithBaggage(ctx, b)
			}
			got, src := p.ReadHeader(ctx, tt.header)
			assert.Equal(t, tt.want, got.String())
			assert.Equal(t, tt.wantSrc, src)

			// The metadata form (lower-case keys) agrees.
			md := map[string][]string{}
			for k, v := range tt.header {
				md[strings.ToLower(k)] = v
			}
			got, src = p.ReadMetadata(ctx, func(k string) []string { return md[k] })
			assert.Equal(t, tt.want, got.String(), "metadata")
			assert.Equal(t, tt.wantSrc, src, "metadata")
		})
	}
}

// TestBadInput feeds hostile and malformed values: each must be ignored (or
// chosen per the documented rule), never panic, and be counted.
func TestBadInput(t *testing.T) {
	big := members(64, 128) // 64 members, 8 KiB
	require.Len(t, big, 64*128+63)
	tests := []struct {
		name   string
		header http.Header
		want   string
		counts map[string]int64
	}{
		{name: "invalid characters", header: http.Header{"X-Traffic-Tag": {"gr ay"}}, counts: map[string]int64{"header/invalid": 1}},
		{name: "64 characters", header: http.Header{"X-Traffic-Tag": {strings.Repeat("a", 64)}}, counts: map[string]int64{"header/invalid": 1}},
		{name: "63 characters", header: http.Header{"X-Traffic-Tag": {strings.Repeat("a", 63)}}, want: strings.Repeat("a", 63)},
		{name: "empty", header: http.Header{"X-Traffic-Tag": {""}}, counts: map[string]int64{"header/invalid": 1}},
		{name: "same value twice", header: http.Header{"X-Traffic-Tag": {"gray", "gray"}}, want: "gray"},
		{name: "different values", header: http.Header{"X-Traffic-Tag": {"gray", "v3"}}, counts: map[string]int64{"header/ambiguous": 1}},
		{name: "different values fall to baggage", header: http.Header{"X-Traffic-Tag": {"gray", "v3"}, "Baggage": {"traffic-tag=v3"}}, want: "v3", counts: map[string]int64{"header/ambiguous": 1}},
		{name: "invalid among valid", header: http.Header{"X-Traffic-Tag": {"-x", "gray"}}, want: "gray", counts: map[string]int64{"header/invalid": 1}},
		{name: "comma-joined", header: http.Header{"X-Traffic-Tag": {"gray, v3"}}, counts: map[string]int64{"header/invalid": 1}},
		{name: "non-UTF-8 header", header: http.Header{"X-Traffic-Tag": {"gr\xffay"}}, counts: map[string]int64{"header/invalid": 1}},
		{name: "malformed baggage", header: http.Header{"Baggage": {"=;;,,traffic-tag;=x,traffic-tag"}}},
		{name: "baggage member without value", header: http.Header{"Baggage": {"traffic-tag="}}, counts: map[string]int64{"baggage/invalid": 1}},
		{name: "baggage bad value", header: http.Header{"Baggage": {"traffic-tag=gr ay"}}, counts: map[string]int64{"baggage/invalid": 1}},
		{name: "baggage percent-encoded", header: http.Header{"Baggage": {"traffic-tag=%67r%61y"}}, want: "gray"},
		{name: "baggage broken escape", header: http.Header{"Baggage": {"traffic-tag=gr%4"}}, counts: map[string]int64{"baggage/invalid": 1}},
		{name: "baggage bad hex", header: http.Header{"Baggage": {"traffic-tag=gr%zzay"}}, counts: map[string]int64{"baggage/invalid": 1}},
		{name: "baggage non-UTF-8 escape", header: http.Header{"Baggage": {"traffic-tag=gr%FFay"}}, counts: map[string]int64{"baggage/invalid": 1}},
		{name: "baggage escaped space", header: http.Header{"Baggage": {"traffic-tag=gr%20ay"}}, counts: map[string]int64{"baggage/invalid": 1}},
		{name: "baggage OWS and properties", header: http.Header{"Baggage": {" a=1 ,\t traffic-tag \t= gray ;prop=1;x , b=2"}}, want: "gray"},
		{name: "baggage similar keys", header: http.Header{"Baggage": {"traffic-tag2=v3,xtraffic-tag=v3,traffic-tag-x=v3"}}},
		{name: "baggage duplicates agree", header: http.Header{"Baggage": {"traffic-tag=gray,traffic-tag=gray"}}, want: "gray"},
		{name: "baggage duplicates differ", header: http.Header{"Baggage": {"traffic-tag=gray", "traffic-tag=v3"}}, counts: map[string]int64{"baggage/ambiguous": 1}},
		{name: "baggage over several lines", header: http.Header{"Baggage": {"a=1", "b=2,traffic-tag=gray"}}, want: "gray"},
		{name: "8 KiB 64 members, tag last", header: http.Header{"Baggage": {members(63, 128) + ",traffic-tag=gray"}}, want: "gray"},
		{name: "empty members do not count", header: http.Header{"Baggage": {members(63, 100) + ",,, ,\t,traffic-tag=gray"}}, want: "gray"},
		{name: "tag as the 65th member", header: http.Header{"Baggage": {members(64, 100) + ",traffic-tag=gray"}}},
		{name: "over 8 KiB", header: http.Header{"Baggage": {big + ",traffic-tag=gray"}}, counts: map[string]int64{"baggage/oversize": 1}},
		{name: "over 8 KiB across lines", header: http.Header{"Baggage": {"traffic-tag=gray", big}}, counts: map[string]int64{"baggage/oversize": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, reader := newMetered(t)
			var got tag.Tag
			require.NotPanics(t, func() { got, _ = p.ReadHeader(context.Background(), tt.header) })
			assert.Equal(t, tt.want, got.String())
			counts := tt.counts
			if counts == nil {
				counts = map[string]int64{}
			}
			assert.Equal(t, counts, rejections(t, reader))
		})
	}
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name string
		opts []propagation.Option
		env  string
		want string
	}{
		{name: "reserved header", opts: []propagation.Option{propagation.WithHeader("grpc-tag")}, want: "reserved by gRPC"},
		{name: "binary header", opts: []propagation.Option{propagation.WithHeader("tag-bin")}, want: "binary"},
		{name: "bad header byte", opts: []propagation.Option{propagation.WithHeader("x tag")}, want: "offset 1"},
		{name: "empty header", opts: []propagation.Option{propagation.WithHeader("")}, want: "empty name"},
		{name: "bad baggage key", opts: []propagation.Option{propagation.WithBaggageMember("a=b")}, want: "not a valid baggage key"},
		{name: "bad own tag", opts: []propagation.Option{propagation.WithOwnTag("-x")}, want: "own tag: invalid tag"},
		{name: "bad env tag", env: "bad tag", want: "GRAYLANE_TAG: invalid tag"},
		{name: "duplicate source", opts: []propagation.Option{propagation.WithSources(propagation.SourceHeader, propagation.SourceHeader)}, want: "listed twice"},
		{name: "unknown source", opts: []propagation.Option{propagation.WithSources(propagation.Source(9))}, want: "unknown source"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(propagation.OwnTagEnv, tt.env)
			_, err := propagation.New(tt.opts...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestOwnTagFromEnv(t *testing.T) {
	t.Setenv(propagation.OwnTagEnv, "gray")
	p, err := propagation.New()
	require.NoError(t, err)
	assert.Equal(t, "gray", p.OwnTag().String())
	got, src := p.ReadHeader(context.Background(), http.Header{})
	assert.Equal(t, "gray", got.String())
	assert.Equal(t, propagation.SourceOwn, src)

	p, err = propagation.New(propagation.WithOwnTag(""))
	require.NoError(t, err)
	assert.True(t, p.OwnTag().IsZero(), "WithOwnTag overrides the environment")
}

func TestInjectHeader(t *testing.T) {
	gray := tag.MustParse("gray")
	p, err := propagation.New()
	require.NoError(t, err)

	h := http.Header{"X-Traffic-Tag": {"old", "older"}, "Baggage": {"a=1"}}
	assert.False(t, p.HeaderCarries(h, gray))
	p.InjectHeader(h, gray)
	assert.Equal(t, http.Header{"X-Traffic-Tag": {"gray"}, "Baggage": {"a=1"}}, h, "baggage untouched without baggage injection")
	assert.True(t, p.HeaderCarries(h, gray))

	p.InjectHeader(h, tag.Tag{})
	assert.Equal(t, []string{"gray"}, h["X-Traffic-Tag"], "the zero tag writes nothing")
	assert.True(t, p.HeaderCarries(http.Header{}, tag.Tag{}))

	pb, err := propagation.New(propagation.WithBaggageInjection())
	require.NoError(t, err)
	h = http.Header{"X-Traffic-Tag": {"gray"}, "Baggage": {"a=1"}}
	assert.False(t, pb.HeaderCarries(h, gray))
	pb.InjectHeader(h, gray)
	assert.Equal(t, []string{"a=1,traffic-tag=gray"}, h["Baggage"])
	assert.True(t, pb.HeaderCarries(h, gray))

	md := map[string][]string{"baggage": {"traffic-tag=v3;p, b=2"}}
	pb.InjectMetadata(md, gray)
	assert.Equal(t, map[string][]string{"x-traffic-tag": {"gray"}, "baggage": {"traffic-tag=gray, b=2"}}, md)
	assert.True(t, pb.MetadataCarries(func(k string) []string { return md[k] }, gray))
}

// TestInjectBaggageLimits checks that the member never breaks the W3C limits
// and that the tag header carries the tag when the member cannot fit.
func TestInjectBaggageLimits(t *testing.T) {
	gray := tag.MustParse("gray")
	p, err := propagation.New(propagation.WithBaggageInjection())
	require.NoError(t, err)

	full := members(64, 16)
	h := http.Header{"Baggage": {full}}
	p.InjectHeader(h, gray)
	assert.Equal(t, []string{full}, h["Baggage"], "a 65th member is not added")
	assert.Equal(t, []string{"gray"}, h["X-Traffic-Tag"])

	h = http.Header{"Baggage": {full[:strings.LastIndexByte(full, ',')] + ",traffic-tag=v3"}}
	p.InjectHeader(h, gray)
	assert.True(t, strings.HasSuffix(h.Get("Baggage"), ",traffic-tag=gray"), "replacing keeps the count: %q", h.Get("Baggage"))

	nearly := members(40, 204) // 40*204+39 = 8199 bytes
	h = http.Header{"Baggage": {nearly[:8180] + ",traffic-tag=v3"}}
	p.InjectHeader(h, gray)
	for _, v := range h["Baggage"] {
		assert.NotContains(t, v, "traffic-tag=v3", "a stale member is removed when the new one cannot fit")
		assert.LessOrEqual(t, len(v), propagation.MaxBaggageBytes)
	}
	assert.Equal(t, []string{"gray"}, h["X-Traffic-Tag"])
}

func TestSourceString(t *testing.T) {
	assert.Equal(t, "header", propagation.SourceHeader.String())
	assert.Equal(t, "baggage", propagation.SourceBaggage.String())
	assert.Equal(t, "own", propagation.SourceOwn.String())
	assert.Equal(t, "none", propagation.SourceNone.String())
	assert.Equal(t, "Source(9)", propagation.Source(9).String())
}

func TestFields(t *testing.T) {
	p, err := propagation.New()
	require.NoError(t, err)
	assert.Equal(t, []string{"x-traffic-tag"}, p.Fields())
	p, err = propagation.New(propagation.WithBaggageInjection())
	require.NoError(t, err)
	assert.Equal(t, []string{"x-traffic-tag", "baggage"}, p.Fields())
}
