package ingress_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/baggage"

	"github.com/graylane/graylane/ingress"
	"github.com/graylane/graylane/propagation"
	"github.com/graylane/graylane/tag"
)

// seen is what the handler behind the gateway sees of a request.
type seen struct {
	Outcome  string
	Rule     string
	Tag      string // from the decision
	CtxTag   string // from tag.FromContext
	Stripped string
	Trusted  bool
	Proxied  bool
	Header   http.Header
	CtxBag   string // OpenTelemetry baggage in the context
}

// echo answers with what it sees, as JSON.
var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	d, ok := ingress.DecisionFromContext(r.Context())
	if !ok {
		http.Error(w, "no decision in the context", http.StatusInternalServerError)
		return
	}
	ct, _ := tag.FromContext(r.Context())
	_ = json.NewEncoder(w).Encode(seen{
		Outcome: d.Outcome.String(), Rule: d.RuleName, Tag: d.Tag.String(), CtxTag: ct.String(),
		Stripped: d.Stripped.String(), Trusted: d.Trusted, Proxied: d.Proxied,
		Header: r.Header, CtxBag: baggage.FromContext(r.Context()).String(),
	})
})

// call sends a GET with headers h to url and decodes what echo saw.
func call(t *testing.T, client *http.Client, url string, h http.Header) seen {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var s seen
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&s))
	return s
}

func newClient(t *testing.T) *http.Client {
	c := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

const baseRules = `
rules:
  - name: testers
    lane: blue
    match: {header: {x-group: testers}}
`

func TestTrustBoundary(t *testing.T) {
	mse, err := propagation.New(propagation.WithOwnTag(""), propagation.WithDialects(propagation.DialectMSE, propagation.DialectSignadot))
	require.NoError(t, err)
	mseWriter, err := propagation.New(propagation.WithOwnTag(""), propagation.WithWriteDialects(propagation.DialectMSE))
	require.NoError(t, err)
	tokenTrust := ingress.WithTrustFunc(func(r *http.Request) bool { return r.Header.Get("X-Internal-Token") == "s3cret" })

	tests := []struct {
		name     string
		trust    string // YAML trust section
		opts     []ingress.Option
		h        http.Header
		outcome  string
		tag      string
		stripped string
		trusted  bool
		check    func(t *testing.T, s seen)
	}{
		{name: "untrusted tag stripped", h: http.Header{"X-Traffic-Tag": {"gray"}},
			outcome: "default", tag: "", stripped: "untrusted",
			check: func(t *testing.T, s seen) { assert.Empty(t, s.Header.Get("X-Traffic-Tag")) }},
		{name: "untrusted tag stripped, then a rule assigns", h: http.Header{"X-Traffic-Tag": {"gray"}, "X-Group": {"testers"}},
			outcome: "rule", tag: "blue", stripped: "untrusted",
			check: func(t *testing.T, s seen) { assert.Equal(t, []string{"blue"}, s.Header["X-Traffic-Tag"]) }},
		{name: "untrusted baggage member stripped, others kept", h: http.Header{"Baggage": {"user=alice,traffic-tag=gray,region=eu"}},
			outcome: "default", stripped: "untrusted",
			check: func(t *testing.T, s seen) { assert.Equal(t, []string{"user=alice,region=eu"}, s.Header["Baggage"]) }},
		{name: "untrusted invalid tag stripped too", h: http.Header{"X-Traffic-Tag": {"<script>"}},
			outcome: "default", stripped: "untrusted",
			check: func(t *testing.T, s seen) { assert.NotContains(t, s.Header, "X-Traffic-Tag") }},
		{name: "untrusted dialects stripped", opts: []ingress.Option{ingress.WithPropagator(mse)},
			h:       http.Header{"X-Mse-Tag": {"gray"}, "Baggage": {"sd-routing-key=gray"}},
			outcome: "default", stripped: "untrusted",
			check: func(t *testing.T, s seen) {
				assert.NotContains(t, s.Header, "X-Mse-Tag")
				assert.NotContains(t, s.Header, "Baggage")
			}},
		{name: "untrusted dialect replaced by the rule's lane", opts: []ingress.Option{ingress.WithPropagator(mseWriter)},
			h:       http.Header{"X-Mse-Tag": {"gray"}, "X-Group": {"testers"}},
			outcome: "rule", tag: "blue", stripped: "untrusted",
			check: func(t *testing.T, s seen) { assert.Equal(t, []string{"blue"}, s.Header["X-Mse-Tag"]) }},
		{name: "untrusted receipt header stripped", h: http.Header{"X-Graylane-Route": {"1"}},
			outcome: "default", stripped: "none",
			check: func(t *testing.T, s seen) { assert.NotContains(t, s.Header, "X-Graylane-Route") }},
		{name: "no tag, nothing stripped", h: http.Header{"Accept": {"*/*"}}, outcome: "default", stripped: "none"},

		{name: "trusted peer kept", trust: "{peers: [127.0.0.1]}", h: http.Header{"X-Traffic-Tag": {"blue"}, "X-Group": {"nobody"}},
			outcome: "kept", tag: "blue", stripped: "none", trusted: true},
		{name: "trusted tag beats the rules", trust: "{peers: [127.0.0.0/8], lanes: [gray]}",
			h:       http.Header{"X-Traffic-Tag": {"gray"}, "X-Group": {"testers"}},
			outcome: "kept", tag: "gray", stripped: "none", trusted: true},
		{name: "trusted receipt header kept", trust: "{peers: [127.0.0.1]}", h: http.Header{"X-Graylane-Route": {"1"}},
			outcome: "default", stripped: "none", trusted: true,
			check: func(t *testing.T, s seen) { assert.Equal(t, "1", s.Header.Get("X-Graylane-Route")) }},
		{name: "trusted dialect kept, rewritten as graylane's", trust: "{peers: [127.0.0.1], lanes: [gray]}",
			opts: []ingress.Option{ingress.WithPropagator(mse)}, h: http.Header{"X-Mse-Tag": {"gray"}},
			outcome: "kept", tag: "gray", stripped: "none", trusted: true,
			check: func(t *testing.T, s seen) {
				assert.Equal(t, []string{"gray"}, s.Header["X-Traffic-Tag"])
				assert.NotContains(t, s.Header, "X-Mse-Tag")
			}},
		{name: "trusted baggage kept, others kept", trust: "{peers: [127.0.0.1], lanes: [gray]}",
			h:       http.Header{"Baggage": {"user=alice,traffic-tag=gray"}},
			outcome: "kept", tag: "gray", stripped: "none", trusted: true,
			check: func(t *testing.T, s seen) {
				assert.Equal(t, []string{"gray"}, s.Header["X-Traffic-Tag"])
				assert.Equal(t, []string{"user=alice"}, s.Header["Baggage"])
			}},
		{name: "non-allowlisted lane stripped from a trusted peer", trust: "{peers: [127.0.0.1], lanes: [gray]}",
			h:       http.Header{"X-Traffic-Tag": {"blue"}},
			outcome: "default", tag: "", stripped: "not_allowed", trusted: true,
			check: func(t *testing.T, s seen) { assert.NotContains(t, s.Header, "X-Traffic-Tag") }},
		{name: "unknown lane not allowed by default", trust: "{peers: [127.0.0.1]}", h: http.Header{"X-Traffic-Tag": {"purple"}},
			outcome: "default", stripped: "not_allowed", trusted: true},
		{name: "not allowed, then the rules decide", trust: "{peers: [127.0.0.1], lanes: [gray]}",
			h:       http.Header{"X-Traffic-Tag": {"purple"}, "X-Group": {"testers"}},
			outcome: "rule", tag: "blue", stripped: "not_allowed", trusted: true},
		{name: "prefix allowlist", trust: "{peers: [127.0.0.1], lanes: [dev-*]}", h: http.Header{"X-Traffic-Tag": {"dev-alice"}},
			outcome: "kept", tag: "dev-alice", stripped: "none", trusted: true},
		{name: "any lane", trust: "{peers: [127.0.0.1], lanes: ['*']}", h: http.Header{"X-Traffic-Tag": {"whatever"}},
			outcome: "kept", tag: "whatever", stripped: "none", trusted: true},
		{name: "trusted but invalid", trust: "{peers: [127.0.0.1]}", h: http.Header{"X-Traffic-Tag": {"a b"}},
			outcome: "default", stripped: "invalid", trusted: true},
		{name: "trusted by function", opts: []ingress.Option{tokenTrust},
			h:       http.Header{"X-Traffic-Tag": {"blue"}, "X-Internal-Token": {"s3cret"}},
			outcome: "kept", tag: "blue", stripped: "none", trusted: true},
		{name: "function says no", opts: []ingress.Option{tokenTrust},
			h:       http.Header{"X-Traffic-Tag": {"blue"}, "X-Internal-Token": {"guess"}},
			outcome: "default", stripped: "untrusted"},
		{name: "other peer not trusted", trust: "{peers: [10.0.0.0/8]}", h: http.Header{"X-Traffic-Tag": {"blue"}},
			outcome: "default", stripped: "untrusted"},

		// The gateway's peer (127.0.0.1) as a load balancer in front of it.
		{name: "client behind a trusted proxy", trust: "{peers: [203.0.113.0/24], proxies: [127.0.0.1]}",
			h:       http.Header{"X-Traffic-Tag": {"blue"}, "X-Forwarded-For": {"203.0.113.7"}},
			outcome: "kept", tag: "blue", stripped: "none", trusted: true,
			check: func(t *testing.T, s seen) { assert.True(t, s.Proxied) }},
		{name: "through two proxies", trust: "{peers: [203.0.113.0/24], proxies: [127.0.0.1, 10.0.0.0/8]}",
			h:       http.Header{"X-Traffic-Tag": {"blue"}, "X-Forwarded-For": {"203.0.113.7, 10.1.2.3"}},
			outcome: "kept", tag: "blue", stripped: "none", trusted: true},
		{name: "over several header lines", trust: "{peers: [203.0.113.0/24], proxies: [127.0.0.1, 10.0.0.0/8]}",
			h:       http.Header{"X-Traffic-Tag": {"blue"}, "X-Forwarded-For": {"203.0.113.7", "10.1.2.3:4711"}},
			outcome: "kept", tag: "blue", stripped: "none", trusted: true},
		{name: "spoofed entry left of the real client", trust: "{peers: [203.0.113.0/24], proxies: [127.0.0.1]}",
			h:       http.Header{"X-Traffic-Tag": {"blue"}, "X-Forwarded-For": {"203.0.113.7, 198.51.100.1"}},
			outcome: "default", stripped: "untrusted",
			check: func(t *testing.T, s seen) { assert.True(t, s.Proxied) }},
		{name: "client not trusted behind a proxy", trust: "{peers: [203.0.113.0/24], proxies: [127.0.0.1]}",
			h:       http.Header{"X-Traffic-Tag": {"blue"}, "X-Forwarded-For": {"198.51.100.1"}},
			outcome: "default", stripped: "untrusted"},
		{name: "malformed forwarded-for", trust: "{peers: [203.0.113.0/24], proxies: [127.0.0.1]}",
			h:       http.Header{"X-Traffic-Tag": {"blue"}, "X-Forwarded-For": {"203.0.113.7, unknown"}},
			outcome: "default", stripped: "untrusted"},
		{name: "proxy without forwarded-for is the client", trust: "{peers: [127.0.0.1], proxies: [127.0.0.1]}",
			h:       http.Header{"X-Traffic-Tag": {"blue"}},
			outcome: "kept", tag: "blue", stripped: "none", trusted: true},
		{name: "forwarded-for ignored from a peer that is no proxy", trust: "{peers: [203.0.113.0/24]}",
			h:       http.Header{"X-Traffic-Tag": {"blue"}, "X-Forwarded-For": {"203.0.113.7"}},
			outcome: "default", stripped: "untrusted",
			check: func(t *testing.T, s seen) { assert.False(t, s.Proxied) }},
	}
	client := newClient(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			yaml := "lanes: [gray]\n" + baseRules
			if tt.trust != "" {
				yaml += "trust: " + tt.trust + "\n"
			}
			rs := mustParse(t, yaml)
			srv := httptest.NewServer(ingress.Middleware(rs, tt.opts...)(echo))
			defer srv.Close()

			s := call(t, client, srv.URL, tt.h)
			assert.Equal(t, tt.outcome, s.Outcome, "outcome")
			assert.Equal(t, tt.tag, s.Tag, "tag")
			assert.Equal(t, tt.tag, s.CtxTag, "the context carries the decision's tag")
			assert.Equal(t, tt.stripped, s.Stripped, "stripped")
			assert.Equal(t, tt.trusted, s.Trusted, "trusted")
			if tt.tag != "" {
				assert.Equal(t, []string{tt.tag}, s.Header["X-Traffic-Tag"], "the header carries the decision's tag")
			} else {
				assert.NotContains(t, s.Header, "X-Traffic-Tag")
			}
			if tt.check != nil {
				tt.check(t, s)
			}
		})
	}
}

// TestTrustStripsContextBaggage puts OpenTelemetry baggage with a tag
// member into the context before the gateway (as otelhttp would): the
// member is removed, the others kept.
func TestTrustStripsContextBaggage(t *testing.T) {
	outer := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			bag, err := baggage.Parse(r.Header.Get("Baggage"))
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			next.ServeHTTP(w, r.WithContext(baggage.ContextWithBaggage(r.Context(), bag)))
		})
	}
	rs := mustParse(t, baseRules)
	srv := httptest.NewServer(outer(ingress.Middleware(rs)(echo)))
	defer srv.Close()
	s := call(t, newClient(t), srv.URL, http.Header{"Baggage": {"user=alice,traffic-tag=gray"}})
	assert.Equal(t, "untrusted", s.Stripped)
	assert.Equal(t, "user=alice", s.CtxBag)
	assert.Equal(t, "", s.CtxTag)
}

// TestMasksOuterTag checks that a tag put into the context before the
// gateway does not survive it.
func TestMasksOuterTag(t *testing.T) {
	outer := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r.WithContext(tag.NewContext(r.Context(), tag.MustParse("gray"))))
		})
	}
	srv := httptest.NewServer(outer(ingress.Middleware(mustParse(t, baseRules))(echo)))
	defer srv.Close()
	s := call(t, newClient(t), srv.URL, nil)
	assert.Equal(t, "", s.CtxTag)
}

func TestReceiptHeaderOption(t *testing.T) {
	rs := mustParse(t, baseRules)
	client := newClient(t)
	srv := httptest.NewServer(ingress.Middleware(rs, ingress.WithReceiptHeader("X-Debug-Route"))(echo))
	defer srv.Close()
	s := call(t, client, srv.URL, http.Header{"X-Debug-Route": {"1"}, "X-Graylane-Route": {"1"}, "X_debug_route": {"1"}})
	assert.NotContains(t, s.Header, "X-Debug-Route")
	assert.NotContains(t, s.Header, "X_debug_route")
	assert.NotContains(t, s.Header, "X-Graylane-Route", "the default header is stripped too")

	srv2 := httptest.NewServer(ingress.Middleware(rs, ingress.WithReceiptHeader(""))(echo))
	defer srv2.Close()
	s = call(t, client, srv2.URL, http.Header{"X-Graylane-Route": {"1"}})
	assert.NotContains(t, s.Header, "X-Graylane-Route", "the default header is always stripped")
}

func TestMiddlewareNilSource(t *testing.T) {
	assert.PanicsWithValue(t, "ingress: Middleware needs a Source (a *Rules or a *Watcher), got nil", func() { ingress.Middleware(nil) })
	var rs *ingress.Rules
	assert.Panics(t, func() { ingress.Middleware(rs) })
}

func TestDecisionFromContextEmpty(t *testing.T) {
	d, ok := ingress.DecisionFromContext(context.Background())
	assert.False(t, ok)
	assert.Equal(t, -1, d.Rule)
	d, ok = ingress.DecisionFromContext(ingress.NewContext(context.Background(), ingress.Decision{Outcome: ingress.OutcomeKept, Rule: -1}))
	assert.True(t, ok)
	assert.Equal(t, ingress.OutcomeKept, d.Outcome)
}
