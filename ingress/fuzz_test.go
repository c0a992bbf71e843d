package ingress_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"unicode/utf8"

	"go.opentelemetry.io/otel/baggage"

	"github.com/graylane/graylane/ingress"
	"github.com/graylane/graylane/tag"
)

// FuzzParse feeds arbitrary bytes to the rule file parser, as YAML and as
// JSON: it never panics, every error is a *FieldError, and rules it accepts
// evaluate requests without panicking and assign only valid tags.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"testdata/rules.yaml", "testdata/rules.json", "testdata/bad.yaml"} {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, strings.HasSuffix(name, ".json"))
	}
	for _, s := range []string{
		"", "rules: []", "{}", "[]", "rules: [{}]", "default: gray", "lanes: &a [x]\ntrust: {lanes: *a}",
		"rules: [{name: a, lane: b, percent: 99.99, sticky: {cookie: c, missing: random}}]",
		"rules: [{name: a, lane: b, match: {header: {x: {regex: '(a|b)*'}}, query: {q: {present: false}}}}]",
		"---\n---\n", "trust: {peers: ['::ffff:10.0.0.0/104', '::1'], proxies: [1.2.3.4/0]}",
		`{"rules": [{"name": "a", "lane": "b", "percent": 1e400}]}`, "rules:\n\t- x", "a: !!binary x",
	} {
		f.Add([]byte(s), strings.HasPrefix(s, "{"))
	}
	reqs := []*http.Request{
		request("GET", "/", nil),
		request("POST", "/api/x?q=1&lane=gray", http.Header{"X-A": {"1"}, "Cookie": {"c=1; uid=7"}, "X-User-Id": {"u"}}),
		request("GET", "/?%zz", http.Header{"Cookie": {";;=="}}),
	}
	f.Fuzz(func(t *testing.T, data []byte, isJSON bool) {
		name := "f.yaml"
		if isJSON {
			name = "f.json"
		}
		rs, err := ingress.Parse(name, data)
		if err != nil {
			if rs != nil {
				t.Fatal("rules and an error")
			}
			var fe *ingress.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("%T is not a *FieldError: %v", err, err)
			}
			if !strings.HasPrefix(err.Error(), name) {
				t.Fatalf("error does not name the file: %q", err)
			}
			return
		}
		for _, r := range reqs {
			d := rs.Evaluate(r)
			if !d.Tag.IsZero() && !tag.Valid(d.Tag.String()) {
				t.Fatalf("invalid tag %q", d.Tag)
			}
			if (d.Outcome == ingress.OutcomeRule) != (d.Rule >= 0) {
				t.Fatalf("decision %+v", d)
			}
		}
	})
}

// FuzzGateway sends requests with arbitrary cookies, query strings,
// X-Forwarded-For chains and tag headers through the gateway: it never
// panics, an untrusted client never keeps its tag, and the tag passed on is
// the decision's, in the header and the context.
func FuzzGateway(f *testing.F) {
	f.Add("uid=7; beta=1", "lane=gray&x=%41", "203.0.113.7", "gray", "user=1,traffic-tag=gray")
	f.Add(`uid="q"; ;=;`, "%zz&;&=&&", "unknown, 10.0.0.1", "-", "traffic-tag=%")
	f.Add("", "", "[::1]:80,203.0.113.9:1", "dev-x", "")
	f.Add("uid=", "lane", ",,", "a b", strings.Repeat("k=v,", 100))
	f.Add("", "", "203.0.113.7", "gray", "a=1,\u00a0traffic-tag=gray;p=1,b=2")
	f.Add("", "", "", "", "\u3000Traffic-Tag\u2028=gray")
	rs := mustParse(f, `
lanes: [gray]
trust: {peers: [203.0.113.0/24], proxies: [127.0.0.0/8, 10.0.0.0/8], lanes: [gray, dev-*]}
rules:
  - name: beta
    lane: gray
    match: {cookie: {beta: {present: true}}, query: {lane: {regex: "gr.y"}}}
  - name: sticky
    lane: blue
    percent: 50
    sticky: {cookie: uid, missing: random}
`)
	var got struct {
		d   ingress.Decision
		tag tag.Tag
		ok  bool
	}
	h := ingress.Middleware(rs)(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		got.d, got.ok = ingress.DecisionFromContext(r.Context())
		got.tag, _ = tag.FromContext(r.Context())
	}))
	f.Fuzz(func(t *testing.T, cookie, query, xff, clientTag, bag string) {
		r := &http.Request{
			Method:     "GET",
			URL:        &url.URL{Path: "/", RawQuery: query},
			Header:     http.Header{"Cookie": {cookie}, "X-Forwarded-For": {xff}, "X-Traffic-Tag": {clientTag}, "Baggage": {bag}},
			RemoteAddr: "127.0.0.1:4711",
		}
		h.ServeHTTP(httptest.NewRecorder(), r)
		if !got.ok {
			t.Fatal("no decision")
		}
		d := got.d
		if got.tag != d.Tag {
			t.Fatalf("context tag %q, decision %q", got.tag, d.Tag)
		}
		want := []string(nil)
		if !d.Tag.IsZero() {
			want = []string{d.Tag.String()}
		}
		if h := r.Header["X-Traffic-Tag"]; len(h) != len(want) || len(h) == 1 && h[0] != want[0] {
			t.Fatalf("header %q, decision %q", h, d.Tag)
		}
		if !d.Trusted && d.Outcome == ingress.OutcomeKept {
			t.Fatalf("untrusted client kept its tag: %+v", d)
		}
		if d.Outcome == ingress.OutcomeKept && d.Tag.String() != "gray" && !strings.HasPrefix(d.Tag.String(), "dev-") {
			t.Fatalf("kept a lane outside the allowlist: %+v", d)
		}
		for _, v := range r.Header["Baggage"] {
			if utf8.ValidString(v) {
				for m := range strings.SplitSeq(v, ",") {
					if k, _, ok := strings.Cut(m, "="); ok && strings.EqualFold(strings.TrimSpace(k), "traffic-tag") {
						t.Fatalf("baggage member left: %q", v)
					}
				}
			}
		}
		if b, _ := baggage.Parse(strings.Join(r.Header["Baggage"], ",")); b.Member("traffic-tag").Key() != "" {
			t.Fatalf("OpenTelemetry reads a tag member in %q", r.Header["Baggage"])
		}
	})
}
