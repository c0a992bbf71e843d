package httpmw_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/graylane/graylane/httpmw"
	"github.com/graylane/graylane/propagation"
	"github.com/graylane/graylane/registry"
	"github.com/graylane/graylane/routing"
	"github.com/graylane/graylane/tag"
)

type nopWriter struct{ h http.Header }

func (w nopWriter) Header() http.Header         { return w.h }
func (w nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w nopWriter) WriteHeader(int)             {}

// sink keeps the handler from being optimised away.
var sink tag.Tag

var consume = http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
	sink, _ = tag.FromContext(r.Context())
})

type minimalKey struct{}

// minimal is the baseline: the least a hand-written tag middleware does.
func minimal(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if v := r.Header.Get("X-Traffic-Tag"); v != "" {
			r = r.WithContext(context.WithValue(r.Context(), minimalKey{}, v))
		}
		next.ServeHTTP(w, r)
	})
}

func bigBaggage() string {
	var b strings.Builder
	for i := range 63 {
		b.WriteString("member")
		b.WriteByte(byte('a' + i%26))
		b.WriteByte(byte('a' + i/26))
		b.WriteByte('=')
		b.WriteString(strings.Repeat("v", 119))
		b.WriteByte(',')
	}
	b.WriteString("traffic-tag=gray")
	return b.String()
}

// BenchmarkInbound measures the server middleware against the minimal
// hand-written middleware (impl=minimal). Compare with benchstat -col /impl.
func BenchmarkInbound(b *testing.B) {
	p, err := propagation.New(propagation.WithOwnTag(""))
	if err != nil {
		b.Fatal(err)
	}
	gl := httpmw.NewHandler(consume, httpmw.WithPropagator(p))
	base := minimal(consume)
	cases := []struct {
		name string
		h    http.Header
	}{
		{"path=header", http.Header{"X-Traffic-Tag": {"gray"}, "Accept": {"*/*"}, "User-Agent": {"bench"}}},
		{"path=absent", http.Header{"Accept": {"*/*"}, "User-Agent": {"bench"}}},
		{"path=baggage", http.Header{"Baggage": {"user=alice,traffic-tag=gray,region=eu"}, "Accept": {"*/*"}}},
		{"path=hostile-baggage", http.Header{"Baggage": {bigBaggage()}, "Accept": {"*/*"}}},
	}
	w := nopWriter{http.Header{}}
	for _, c := range cases {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header = c.h
		b.Run(c.name+"/impl=graylane", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				gl.ServeHTTP(w, req)
			}
		})
		if c.name == "path=header" || c.name == "path=absent" {
			b.Run(c.name+"/impl=minimal", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					base.ServeHTTP(w, req)
				}
			})
		}
	}
}

// BenchmarkOutbound measures the transport against the baseline of a
// request clone plus Header.Set (impl=clone-set), over a base RoundTripper
// that does nothing.
func BenchmarkOutbound(b *testing.B) {
	nop := roundTripFunc(func(r *http.Request) (*http.Response, error) { return nil, nil })
	tr := httpmw.NewTransport(nop, httpmw.WithPropagator(newProp(b)))
	cloneSet := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if t, ok := tag.FromContext(r.Context()); ok {
			r = r.Clone(r.Context())
			r.Header.Set("X-Traffic-Tag", t.String())
		}
		return nop(r)
	})
	mk := func(ctx context.Context, h http.Header) *http.Request {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://reviews/reviews/0", nil)
		if err != nil {
			b.Fatal(err)
		}
		req.Header = h
		return req
	}
	std := func() http.Header {
		return http.Header{"Accept": {"application/json"}, "User-Agent": {"bench"}, "X-Request-Id": {"abc"}}
	}
	tagged := mk(grayCtx(), std())
	untagged := mk(context.Background(), std())
	h := std()
	h.Set("X-Traffic-Tag", "gray")
	already := mk(grayCtx(), h)

	run := func(name string, rt http.RoundTripper, req *http.Request) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = rt.RoundTrip(req)
			}
		})
	}
	run("tag=yes/impl=graylane", tr, tagged)
	run("tag=yes/impl=clone-set", cloneSet, tagged)
	run("tag=no/impl=graylane", tr, untagged)
	run("tag=no/impl=clone-set", cloneSet, untagged)
	run("tag=already/impl=graylane", tr, already)
}

// BenchmarkRouting measures the routing transport (impl=routing) against
// the injecting transport alone (impl=inject) on the same tagged request,
// over a base RoundTripper that does nothing: the difference is the cost
// of picking an instance and rewriting the URL.
func BenchmarkRouting(b *testing.B) {
	reg := registry.NewMemory()
	defer reg.Close()
	for i, lane := range []string{"", "gray", "gray"} {
		in := registry.Instance{Service: "reviews", Addr: fmt.Sprintf("127.0.0.1:%d", 9000+i)}
		if lane != "" {
			in.Tag = tag.MustParse(lane)
		}
		if _, err := reg.Register(context.Background(), in); err != nil {
			b.Fatal(err)
		}
	}
	router := routing.NewRouter(reg, nil)
	defer router.Close()
	nop := roundTripFunc(func(r *http.Request) (*http.Response, error) { return nil, nil })
	p := newProp(b)
	impls := map[string]http.RoundTripper{
		"inject":  httpmw.NewTransport(nop, httpmw.WithPropagator(p)),
		"routing": httpmw.NewTransport(nop, httpmw.WithPropagator(p), httpmw.WithRouting(router)),
	}
	for _, lane := range []string{"gray", "v3"} {
		req, err := http.NewRequestWithContext(tag.NewContext(context.Background(), tag.MustParse(lane)),
			http.MethodGet, "http://reviews/reviews/0", nil)
		if err != nil {
			b.Fatal(err)
		}
		req.Header = http.Header{"Accept": {"application/json"}, "User-Agent": {"bench"}, "X-Request-Id": {"abc"}}
		if _, err := impls["routing"].RoundTrip(req); err != nil { // the first call starts the watch
			b.Fatal(err)
		}
		for _, name := range []string{"routing", "inject"} {
			rt := impls[name]
			b.Run("lane="+lane+"/impl="+name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := rt.RoundTrip(req); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
