package ingress_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/graylane/graylane/ingress"
	"github.com/graylane/graylane/tag"
)

// twentyRules is a realistic rule set: nineteen rules of every kind that a
// typical request does not match, then one that matches x-group: testers.
func twentyRules(tb testing.TB) *ingress.Rules {
	var b strings.Builder
	b.WriteString("lanes: [gray, blue]\ntrust: {peers: [10.0.0.0/8], lanes: [gray]}\nrules:\n")
	for i := range 19 {
		fmt.Fprintf(&b, "  - name: r%d\n    lane: blue\n    match:\n", i)
		switch i % 6 {
		case 0:
			fmt.Fprintf(&b, "      header: {x-tenant: {exact: tenant-%d}}\n", i)
		case 1:
			fmt.Fprintf(&b, "      header: {user-agent: {prefix: \"BookApp/%d.\"}}\n", i)
		case 2:
			fmt.Fprintf(&b, "      header: {user-agent: {regex: \"BookApp/%d\\\\.[0-9]+ .*\"}}\n", i)
		case 3:
			fmt.Fprintf(&b, "      cookie: {beta-%d: {present: true}}\n", i)
		case 4:
			fmt.Fprintf(&b, "      query: {lane: {exact: lane-%d}}\n", i)
		case 5:
			fmt.Fprintf(&b, "      pathPrefix: /admin/%d/\n      method: [POST]\n", i)
		}
	}
	b.WriteString("  - name: testers\n    lane: gray\n    match:\n      header: {x-group: {exact: testers}}\n")
	rs, err := ingress.Parse("bench.yaml", []byte(b.String()))
	if err != nil {
		tb.Fatal(err)
	}
	if rs.Len() != 20 {
		tb.Fatal(rs.Len())
	}
	return rs
}

// typicalRequest is a browser's request to an API, from an untrusted
// client; with testers true it matches the last rule.
func typicalRequest(testers bool) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/api/books/7?page=2&sort=title", nil)
	r.RemoteAddr = "198.51.100.23:51234"
	r.Header = http.Header{
		"Accept":          {"application/json"},
		"Accept-Encoding": {"gzip, deflate, br"},
		"Accept-Language": {"en-GB,en;q=0.9"},
		"User-Agent":      {"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"},
		"Cookie":          {"session=8f14e45fceea167a5a36dedd4bea2543; theme=dark"},
		"X-Request-Id":    {"4bf92f3577b34da6a3ce929d0e0e4736"},
		"X-User-Id":       {"user-4711"},
	}
	if testers {
		r.Header["X-Group"] = []string{"testers"}
	}
	return r
}

// BenchmarkEvaluate measures evaluating 20 rules on a typical request, when
// the last rule matches and when none does, beside the baseline of a
// hand-written check of one header (impl=one-header-check). Compare with
//
//	benchstat -col /impl
func BenchmarkEvaluate(b *testing.B) {
	rs := twentyRules(b)
	for _, c := range []struct {
		name    string
		testers bool
		want    string
	}{{"match=last", true, "gray"}, {"match=none", false, ""}} {
		r := typicalRequest(c.testers)
		b.Run("rules=20/"+c.name+"/impl=graylane", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if d := rs.Evaluate(r); d.Tag.String() != c.want {
					b.Fatal(d)
				}
			}
		})
		b.Run("rules=20/"+c.name+"/impl=one-header-check", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				lane := ""
				if r.Header.Get("X-Group") == "testers" {
					lane = "gray"
				}
				if lane != c.want {
					b.Fatal(lane)
				}
			}
		})
	}
}

type nopWriter struct{ h http.Header }

func (w nopWriter) Header() http.Header         { return w.h }
func (w nopWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w nopWriter) WriteHeader(int)             {}

var sink tag.Tag

type laneKey struct{}

// BenchmarkMiddleware measures the whole gateway on a typical untrusted
// request with 20 rules: the trust check, stripping, the rules, writing the
// tag into the headers and the context, and the decision into the context
// and the (no-op) counter. Baselines: a bare handler call (impl=bare) and a
// hand-written middleware that checks one header and puts a lane into the
// context (impl=one-header-middleware).
func BenchmarkMiddleware(b *testing.B) {
	consume := http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		sink, _ = tag.FromContext(r.Context())
	})
	gw := ingress.Middleware(twentyRules(b))(consume)
	oneHeader := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("X-Group") == "testers" {
				r.Header.Set("X-Traffic-Tag", "gray")
				r = r.WithContext(context.WithValue(r.Context(), laneKey{}, "gray"))
			}
			next.ServeHTTP(w, r)
		})
	}(consume)
	w := nopWriter{http.Header{}}
	for _, c := range []struct {
		name    string
		testers bool
	}{{"match=last", true}, {"match=none", false}} {
		r := typicalRequest(c.testers)
		run := func(impl string, h http.Handler) {
			b.Run("rules=20/"+c.name+"/impl="+impl, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					h.ServeHTTP(w, r)
					delete(r.Header, "X-Traffic-Tag") // as it came in
				}
			})
		}
		run("graylane", gw)
		run("bare", consume)
		run("one-header-middleware", oneHeader)
	}
}
