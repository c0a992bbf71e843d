package propagation_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/baggage"
	otelprop "go.opentelemetry.io/otel/propagation"

	"github.com/graylane/graylane/httpmw"
	"github.com/graylane/graylane/propagation"
	"github.com/graylane/graylane/tag"
)

// allDialects lists every preset with the header a client of that system
// sends to mark a request as "gray".
var allDialects = []struct {
	d    propagation.Dialect
	sent http.Header
}{
	{propagation.DialectASM, http.Header{"X-Asm-Prefer-Tag": {"gray"}}},
	{propagation.DialectOpenSergo, http.Header{"X-Opensergo-Traffic": {"gray"}}},
	{propagation.DialectMSE, http.Header{"X-Mse-Tag": {"gray"}}},
	{propagation.DialectPolaris, http.Header{"Service-Lane": {"gray"}}},
	{propagation.DialectSignadot, http.Header{"Baggage": {"user=alice,sd-routing-key=gray"}}},
	{propagation.DialectKitex, http.Header{"Rpc-Persist-Traffic-Tag": {"gray"}}},
}

func presets() []propagation.Dialect {
	out := make([]propagation.Dialect, len(allDialects))
	for i, c := range allDialects {
		out[i] = c.d
	}
	return out
}

func TestDialectPresetsRead(t *testing.T) {
	p := newProp(t, propagation.WithDialects(presets()...))
	for _, c := range allDialects {
		t.Run(c.d.Name(), func(t *testing.T) {
			got, src := p.ReadHeader(context.Background(), c.sent)
			assert.Equal(t, "gray", got.String())
			assert.Equal(t, propagation.SourceDialect, src)

			md := map[string][]string{}
			for k, v := range c.sent {
				md[strings.ToLower(k)] = v
			}
			got, src = p.ReadMetadata(context.Background(), func(k string) []string { return md[k] })
			assert.Equal(t, "gray", got.String(), "metadata")
			assert.Equal(t, propagation.SourceDialect, src, "metadata")

			got, src = p.ReadHeader(context.Background(), c.sent)
			assert.Equal(t, "gray", got.String())
			assert.Equal(t, propagation.SourceDialect, src)

			// Extract, as an OpenTelemetry propagator.
			ctx := p.Extract(context.Background(), otelprop.HeaderCarrier(c.sent))
			tg, ok := tag.FromContext(ctx)
			require.True(t, ok)
			assert.Equal(t, "gray", tg.String())
		})
	}
}

func newProp(t testing.TB, opts ...propagation.Option) *propagation.Propagator {
	t.Helper()
	p, err := propagation.New(append([]propagation.Option{propagation.WithOwnTag("")}, opts...)...)
	require.NoError(t, err)
	return p
}

// TestDialectRoundTrip writes the tag in each dialect and reads it back with
// a propagator that reads that dialect only, over every carrier kind.
func TestDialectRoundTrip(t *testing.T) {
	gray := tag.MustParse("gray")
	for _, c := range allDialects {
		t.Run(c.d.Name(), func(t *testing.T) {
			w := newProp(t, propagation.WithWriteDialects(c.d))
			r := newProp(t, propagation.WithDialects(c.d), propagation.WithSources(propagation.SourceDialect))

			h := http.Header{"Baggage": {"user=alice"}}
			assert.False(t, w.HeaderCarries(h, gray))
			w.InjectHeader(h, gray)
			assert.True(t, w.HeaderCarries(h, gray), "%v", h)
			assert.Equal(t, "gray", h.Get("X-Traffic-Tag"), "graylane's own header is written too")
			assert.Contains(t, h.Get("Baggage"), "user=alice", "other members kept")
			got, src := r.ReadHeader(context.Background(), h)
			assert.Equal(t, gray, got, "%v", h)
			assert.Equal(t, propagation.SourceDialect, src)

			md := map[string][]string{}
			w.InjectMetadata(md, gray)
			assert.True(t, w.MetadataCarries(func(k string) []string { return md[k] }, gray))
			got, _ = r.ReadMetadata(context.Background(), func(k string) []string { return md[k] })
			assert.Equal(t, gray, got, "%v", md)

			carrier := otelprop.MapCarrier{}
			w.Inject(tag.NewContext(context.Background(), gray), carrier)
			got, _ = tag.FromContext(r.Extract(context.Background(), carrier))
			assert.Equal(t, gray, got, "%v", carrier)
			for _, f := range w.Fields() {
				assert.Contains(t, carrier, f, "Fields lists what Inject writes")
			}
			assert.Len(t, carrier, len(w.Fields()))
		})
	}
}

func TestDialectWritesReplace(t *testing.T) {
	gray := tag.MustParse("gray")
	p := newProp(t, propagation.WithWriteDialects(propagation.DialectMSE, propagation.DialectSignadot))
	h := http.Header{"X-Mse-Tag": {"v3", "v4"}, "Baggage": {"sd-routing-key=v3,a=1"}}
	p.InjectHeader(h, gray)
	assert.Equal(t, http.Header{
		"X-Traffic-Tag": {"gray"},
		"X-Mse-Tag":     {"gray"},
		"Baggage":       {"sd-routing-key=gray,a=1"},
	}, h)
	assert.Equal(t, []string{"x-traffic-tag", "x-mse-tag", "baggage"}, p.Fields())
	assert.Equal(t, []propagation.Dialect{propagation.DialectMSE, propagation.DialectSignadot}, p.WriteDialects())
	assert.Empty(t, p.Dialects(), "writing a dialect does not read it")
}

func TestDialectPrecedence(t *testing.T) {
	tests := []struct {
		name    string
		opts    []propagation.Option
		h       http.Header
		want    string
		wantSrc propagation.Source
	}{
		{"graylane header first", nil,
			http.Header{"X-Traffic-Tag": {"a"}, "Baggage": {"traffic-tag=b"}, "X-Mse-Tag": {"c"}}, "a", propagation.SourceHeader},
		{"graylane baggage before dialects", nil,
			http.Header{"Baggage": {"traffic-tag=b,sd-routing-key=d"}, "X-Mse-Tag": {"c"}}, "b", propagation.SourceBaggage},
		{"dialects in the order given", nil,
			http.Header{"Baggage": {"sd-routing-key=d"}, "X-Mse-Tag": {"c"}}, "c", propagation.SourceDialect},
		{"a later dialect when an earlier one is invalid", nil,
			http.Header{"Baggage": {"sd-routing-key=d"}, "X-Mse-Tag": {"c c"}}, "d", propagation.SourceDialect},
		{"dialect before own", []propagation.Option{propagation.WithOwnTag("own")},
			http.Header{"X-Mse-Tag": {"c"}}, "c", propagation.SourceDialect},
		{"own when nothing else", []propagation.Option{propagation.WithOwnTag("own")},
			http.Header{}, "own", propagation.SourceOwn},
		{"placed first by WithSources", []propagation.Option{propagation.WithSources(propagation.SourceDialect, propagation.SourceHeader)},
			http.Header{"X-Traffic-Tag": {"a"}, "X-Mse-Tag": {"c"}}, "c", propagation.SourceDialect},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := append([]propagation.Option{propagation.WithDialects(propagation.DialectMSE, propagation.DialectSignadot)}, tt.opts...)
			p := newProp(t, opts...)
			got, src := p.ReadHeader(context.Background(), tt.h)
			assert.Equal(t, tt.want, got.String())
			assert.Equal(t, tt.wantSrc, src)
		})
	}
}

func TestDialectBadInput(t *testing.T) {
	all := propagation.WithDialects(presets()...)
	tests := []struct {
		name   string
		h      http.Header
		ctxBag string
		want   string
		counts map[string]int64
	}{
		{name: "invalid asm", h: http.Header{"X-Asm-Prefer-Tag": {"gr ay"}}, counts: map[string]int64{"asm/invalid": 1}},
		{name: "ambiguous mse", h: http.Header{"X-Mse-Tag": {"gray", "v3"}}, counts: map[string]int64{"mse/ambiguous": 1}},
		{name: "repeated value", h: http.Header{"X-Mse-Tag": {"gray", "gray"}}, want: "gray"},
		{name: "invalid falls to the next dialect", h: http.Header{"X-Asm-Prefer-Tag": {"-"}, "X-Mse-Tag": {"v3"}}, want: "v3", counts: map[string]int64{"asm/invalid": 1}},
		{name: "polaris group and rule", h: http.Header{"Service-Lane": {"gray/rule1"}}, want: "gray"},
		{name: "polaris empty group", h: http.Header{"Service-Lane": {"/gray"}}, counts: map[string]int64{"polaris/invalid": 1}},
		{name: "polaris two slashes", h: http.Header{"Service-Lane": {"a/b/gray"}}, counts: map[string]int64{"polaris/invalid": 1}},
		{name: "polaris empty rule", h: http.Header{"Service-Lane": {"gray/"}}, counts: map[string]int64{"polaris/invalid": 1}},
		{name: "signadot escaped", h: http.Header{"Baggage": {"sd-routing-key=%67ray"}}, want: "gray"},
		{name: "signadot broken escape", h: http.Header{"Baggage": {"sd-routing-key=%g"}}, counts: map[string]int64{"signadot/invalid": 1}},
		{name: "signadot empty", h: http.Header{"Baggage": {"sd-routing-key="}}, counts: map[string]int64{"signadot/invalid": 1}},
		{name: "signadot ambiguous", h: http.Header{"Baggage": {"sd-routing-key=a,sd-routing-key=b"}}, counts: map[string]int64{"signadot/ambiguous": 1}},
		{name: "signadot oversize", h: http.Header{"Baggage": {"sd-routing-key=gray," + strings.Repeat("k=v,", 2100)}},
			counts: map[string]int64{"baggage/oversize": 1, "signadot/oversize": 1}},
		{name: "signadot from context baggage", h: http.Header{}, ctxBag: "sd-routing-key=gray", want: "gray"},
		{name: "kitex invalid", h: http.Header{"Rpc-Persist-Traffic-Tag": {"a b"}}, counts: map[string]int64{"kitex/invalid": 1}},
		{name: "graylane invalid, dialect valid", h: http.Header{"X-Traffic-Tag": {"<x>"}, "X-Opensergo-Traffic": {"Gray"}}, want: "Gray",
			counts: map[string]int64{"header/invalid": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, reader := newMetered(t, all)
			ctx := context.Background()
			if tt.ctxBag != "" {
				ctx = baggage.ContextWithBaggage(ctx, must(baggage.Parse(tt.ctxBag)))
			}
			var got tag.Tag
			require.NotPanics(t, func() { got, _ = p.ReadHeader(ctx, tt.h) })
			assert.Equal(t, tt.want, got.String())
			counts := tt.counts
			if counts == nil {
				counts = map[string]int64{}
			}
			assert.Equal(t, counts, rejections(t, reader))
		})
	}
}

func TestDialectValidation(t *testing.T) {
	tests := []struct {
		name string
		opts []propagation.Option
		want string
	}{
		{"zero dialect", []propagation.Option{propagation.WithDialects(propagation.Dialect{})}, "the zero Dialect"},
		{"twice", []propagation.Option{propagation.WithDialects(propagation.DialectMSE, propagation.DialectMSE)}, `"mse" listed twice`},
		{"twice written", []propagation.Option{propagation.WithWriteDialects(propagation.DialectASM, propagation.DialectASM)}, `write dialects: dialect "asm" listed twice`},
		{"order without dialects", []propagation.Option{propagation.WithDialects(propagation.DialectMSE), propagation.WithSources(propagation.SourceHeader)},
			"SourceDialect is not listed"},
		{"own header", []propagation.Option{propagation.WithHeader("x-mse-tag"), propagation.WithDialects(propagation.DialectMSE)}, `uses the tag header "x-mse-tag"`},
		{"own member", []propagation.Option{propagation.WithBaggageMember("sd-routing-key"), propagation.WithDialects(propagation.DialectSignadot)},
			`uses the baggage member "sd-routing-key"`},
		{"same place", []propagation.Option{propagation.WithDialects(propagation.DialectMSE, must(propagation.HeaderDialect("mine", "X-Mse-Tag")))},
			`dialects "mse" and "mine" both use the header x-mse-tag`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := propagation.New(tt.opts...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}

	_, err := propagation.New(propagation.WithSources(propagation.SourceDialect))
	assert.NoError(t, err, "SourceDialect without dialects reads nothing, and is not an error")
	p, err := propagation.New(propagation.WithSources())
	require.NoError(t, err)
	got, src := p.ReadHeader(context.Background(), http.Header{"X-Traffic-Tag": {"gray"}})
	assert.True(t, got.IsZero(), "an empty source list reads nothing")
	assert.Equal(t, propagation.SourceNone, src)
}

func TestDialectConstructors(t *testing.T) {
	d, err := propagation.HeaderDialect("legacy", "X-Env-Tag")
	require.NoError(t, err)
	assert.Equal(t, "legacy", d.Name())
	assert.Equal(t, "x-env-tag", d.Header())
	assert.Equal(t, "", d.BaggageMember())
	assert.Equal(t, "legacy (header x-env-tag)", d.String())

	d, err = propagation.BaggageDialect("okteto", "okteto-divert")
	require.NoError(t, err)
	assert.Equal(t, "okteto-divert", d.BaggageMember())
	assert.Equal(t, "okteto (baggage member okteto-divert)", d.String())

	d, err = propagation.KitexDialect("LANE_NAME")
	require.NoError(t, err)
	assert.Equal(t, "rpc-persist-lane-name", d.Header())
	d, err = propagation.KitexDialect("TRAFFIC_TAG")
	require.NoError(t, err)
	assert.Equal(t, propagation.DialectKitex, d, "the preset is the key TRAFFIC_TAG")
	assert.Equal(t, "Dialect{}", propagation.Dialect{}.String())

	bad := []struct {
		err  error
		want string
	}{
		{second(propagation.HeaderDialect("header", "x-a")), "reserved"},
		{second(propagation.HeaderDialect("a b", "x-a")), `dialect name "a b"`},
		{second(propagation.HeaderDialect("a", "grpc-a")), "reserved by gRPC"},
		{second(propagation.HeaderDialect("a", "Baggage")), "use BaggageDialect"},
		{second(propagation.HeaderDialect("a", "x a")), "offset 1"},
		{second(propagation.BaggageDialect("a", "k=v")), "not a valid baggage key"},
		{second(propagation.BaggageDialect("own", "k")), "reserved"},
		{second(propagation.KitexDialect("")), "empty metainfo key"},
		{second(propagation.KitexDialect("A.B")), `byte '.' at offset 1`},
		{second(propagation.KitexDialect("X-BIN")), "binary"},
	}
	for _, b := range bad {
		require.Error(t, b.err)
		assert.Contains(t, b.err.Error(), b.want)
	}
}

func second[T any](_ T, err error) error { return err }

// TestDialectNextHop sends a request tagged in each dialect to a service,
// which calls the next one through graylane's Transport: the next hop gets
// the tag in graylane's header and in the dialect.
func TestDialectNextHop(t *testing.T) {
	type seen struct {
		header http.Header
		tag    string
	}
	got := make(chan seen, 1)
	for _, c := range allDialects {
		t.Run(c.d.Name(), func(t *testing.T) {
			// The next hop understands the dialect only.
			nextProp := newProp(t, propagation.WithDialects(c.d), propagation.WithSources(propagation.SourceDialect))
			next := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				tg, _ := nextProp.ReadHeader(r.Context(), r.Header)
				got <- seen{header: r.Header.Clone(), tag: tg.String()}
			}))
			defer next.Close()

			// The service in the middle reads every dialect and writes this one.
			mid := newProp(t, propagation.WithDialects(presets()...), propagation.WithWriteDialects(c.d))
			client := &http.Client{Transport: httpmw.NewTransport(&http.Transport{}, httpmw.WithPropagator(mid))}
			defer client.CloseIdleConnections()
			svc := httptest.NewServer(httpmw.NewHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, next.URL, nil)
				if err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
				resp, err := client.Do(req)
				if err != nil {
					http.Error(w, err.Error(), http.StatusBadGateway)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
			}), httpmw.WithPropagator(mid)))
			defer svc.Close()

			req, err := http.NewRequest(http.MethodGet, svc.URL, nil)
			require.NoError(t, err)
			for k, v := range c.sent {
				req.Header[k] = v
			}
			plain := &http.Client{Transport: &http.Transport{}}
			defer plain.CloseIdleConnections()
			resp, err := plain.Do(req)
			require.NoError(t, err)
			_ = resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)

			s := <-got
			assert.Equal(t, "gray", s.tag, "the next hop reads the dialect: %v", s.header)
			assert.Equal(t, "gray", s.header.Get("X-Traffic-Tag"))
		})
	}
}
