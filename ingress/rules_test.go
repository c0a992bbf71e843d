package ingress_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/graylane/graylane/ingress"
)

func TestMatchers(t *testing.T) {
	type hdr = http.Header
	tests := []struct {
		name   string
		match  ingress.Match
		method string
		target string
		h      http.Header
		want   bool
	}{
		// Headers.
		{"header exact", ingress.Match{Header: map[string]ingress.Condition{"x-group": ingress.Exact("testers")}}, "GET", "/", hdr{"X-Group": {"testers"}}, true},
		{"header exact differs", ingress.Match{Header: map[string]ingress.Condition{"x-group": ingress.Exact("testers")}}, "GET", "/", hdr{"X-Group": {"Testers"}}, false},
		{"header exact absent", ingress.Match{Header: map[string]ingress.Condition{"x-group": ingress.Exact("testers")}}, "GET", "/", nil, false},
		{"header exact empty value", ingress.Match{Header: map[string]ingress.Condition{"x-group": ingress.Exact("")}}, "GET", "/", hdr{"X-Group": {""}}, true},
		{"header name in any case", ingress.Match{Header: map[string]ingress.Condition{"X-GROUP": ingress.Exact("a")}}, "GET", "/", hdr{"X-Group": {"a"}}, true},
		{"header one of several values", ingress.Match{Header: map[string]ingress.Condition{"x-group": ingress.Exact("b")}}, "GET", "/", hdr{"X-Group": {"a", "b"}}, true},
		{"header prefix", ingress.Match{Header: map[string]ingress.Condition{"user-agent": ingress.Prefix("BookApp/3.")}}, "GET", "/", hdr{"User-Agent": {"BookApp/3.2 (iOS)"}}, true},
		{"header prefix no", ingress.Match{Header: map[string]ingress.Condition{"user-agent": ingress.Prefix("BookApp/3.")}}, "GET", "/", hdr{"User-Agent": {"BookApp/2.9"}}, false},
		{"header regex whole value", ingress.Match{Header: map[string]ingress.Condition{"x-user": ingress.Regex(`u[0-9]+`)}}, "GET", "/", hdr{"X-User": {"u42"}}, true},
		{"header regex is anchored", ingress.Match{Header: map[string]ingress.Condition{"x-user": ingress.Regex(`u[0-9]+`)}}, "GET", "/", hdr{"X-User": {"xu42x"}}, false},
		{"header regex alternation anchored", ingress.Match{Header: map[string]ingress.Condition{"x-user": ingress.Regex(`a|b`)}}, "GET", "/", hdr{"X-User": {"ab"}}, false},
		{"header present", ingress.Match{Header: map[string]ingress.Condition{"x-debug": ingress.Present()}}, "GET", "/", hdr{"X-Debug": {""}}, true},
		{"header present missing", ingress.Match{Header: map[string]ingress.Condition{"x-debug": ingress.Present()}}, "GET", "/", nil, false},
		{"header absent", ingress.Match{Header: map[string]ingress.Condition{"x-debug": ingress.Absent()}}, "GET", "/", nil, true},
		{"header absent there", ingress.Match{Header: map[string]ingress.Condition{"x-debug": ingress.Absent()}}, "GET", "/", hdr{"X-Debug": {"1"}}, false},

		// Cookies.
		{"cookie exact", ingress.Match{Cookie: map[string]ingress.Condition{"beta": ingress.Exact("1")}}, "GET", "/", hdr{"Cookie": {"a=b; beta=1; c=d"}}, true},
		{"cookie name case-sensitive", ingress.Match{Cookie: map[string]ingress.Condition{"beta": ingress.Exact("1")}}, "GET", "/", hdr{"Cookie": {"Beta=1"}}, false},
		{"cookie quoted value", ingress.Match{Cookie: map[string]ingress.Condition{"beta": ingress.Exact("1")}}, "GET", "/", hdr{"Cookie": {`beta="1"`}}, true},
		{"cookie in a second line", ingress.Match{Cookie: map[string]ingress.Condition{"beta": ingress.Exact("1")}}, "GET", "/", hdr{"Cookie": {"a=b", "beta=1"}}, true},
		{"cookie repeated, one matches", ingress.Match{Cookie: map[string]ingress.Condition{"beta": ingress.Exact("1")}}, "GET", "/", hdr{"Cookie": {"beta=0; beta=1"}}, true},
		{"cookie prefix", ingress.Match{Cookie: map[string]ingress.Condition{"uid": ingress.Prefix("staff-")}}, "GET", "/", hdr{"Cookie": {"uid=staff-7"}}, true},
		{"cookie regex", ingress.Match{Cookie: map[string]ingress.Condition{"uid": ingress.Regex(`[0-9]{3}`)}}, "GET", "/", hdr{"Cookie": {"uid=123"}}, true},
		{"cookie regex no", ingress.Match{Cookie: map[string]ingress.Condition{"uid": ingress.Regex(`[0-9]{3}`)}}, "GET", "/", hdr{"Cookie": {"uid=1234"}}, false},
		{"cookie present", ingress.Match{Cookie: map[string]ingress.Condition{"beta": ingress.Present()}}, "GET", "/", hdr{"Cookie": {"beta="}}, true},
		{"cookie present missing", ingress.Match{Cookie: map[string]ingress.Condition{"beta": ingress.Present()}}, "GET", "/", hdr{"Cookie": {"betamax=1"}}, false},
		{"cookie absent", ingress.Match{Cookie: map[string]ingress.Condition{"beta": ingress.Absent()}}, "GET", "/", hdr{"Cookie": {"a=1"}}, true},
		{"cookie absent no header", ingress.Match{Cookie: map[string]ingress.Condition{"beta": ingress.Absent()}}, "GET", "/", nil, true},
		{"cookie absent there", ingress.Match{Cookie: map[string]ingress.Condition{"beta": ingress.Absent()}}, "GET", "/", hdr{"Cookie": {"a=1; beta=0"}}, false},
		{"cookie exact second of two", ingress.Match{Cookie: map[string]ingress.Condition{"beta": ingress.Exact("1")}}, "GET", "/", hdr{"Cookie": {"beta=0; beta=1"}}, true},
		{"cookie malformed", ingress.Match{Cookie: map[string]ingress.Condition{"beta": ingress.Exact("1")}}, "GET", "/", hdr{"Cookie": {";;=;beta;;"}}, false},

		// Query parameters.
		{"query exact", ingress.Match{Query: map[string]ingress.Condition{"lane": ingress.Exact("gray")}}, "GET", "/?a=1&lane=gray", nil, true},
		{"query exact no", ingress.Match{Query: map[string]ingress.Condition{"lane": ingress.Exact("gray")}}, "GET", "/?lane=blue", nil, false},
		{"query decoded", ingress.Match{Query: map[string]ingress.Condition{"user name": ingress.Exact("a b")}}, "GET", "/?user+name=a%20b", nil, true},
		{"query repeated", ingress.Match{Query: map[string]ingress.Condition{"x": ingress.Exact("2")}}, "GET", "/?x=1&x=2", nil, true},
		{"query prefix", ingress.Match{Query: map[string]ingress.Condition{"v": ingress.Prefix("3.")}}, "GET", "/?v=3.1", nil, true},
		{"query regex", ingress.Match{Query: map[string]ingress.Condition{"v": ingress.Regex(`3\.[0-9]`)}}, "GET", "/?v=3.1", nil, true},
		{"query present without value", ingress.Match{Query: map[string]ingress.Condition{"debug": ingress.Present()}}, "GET", "/?debug", nil, true},
		{"query present missing", ingress.Match{Query: map[string]ingress.Condition{"debug": ingress.Present()}}, "GET", "/?debugger=1", nil, false},
		{"query absent", ingress.Match{Query: map[string]ingress.Condition{"debug": ingress.Absent()}}, "GET", "/", nil, true},
		{"query absent there", ingress.Match{Query: map[string]ingress.Condition{"debug": ingress.Absent()}}, "GET", "/?a=1&debug", nil, false},
		{"query absent, escaped name there", ingress.Match{Query: map[string]ingress.Condition{"debug": ingress.Absent()}}, "GET", "/?de%62ug=1", nil, false},
		{"query exact second of two", ingress.Match{Query: map[string]ingress.Condition{"debug": ingress.Exact("1")}}, "GET", "/?debug=0&debug=1", nil, true},
		{"query bad escape skipped", ingress.Match{Query: map[string]ingress.Condition{"x": ingress.Exact("1")}}, "GET", "/?x=%zz&x=1", nil, true},
		{"query semicolon pair skipped", ingress.Match{Query: map[string]ingress.Condition{"x": ingress.Exact("1;y=2")}}, "GET", "/?x=1;y=2", nil, false},

		// Path and method.
		{"path prefix", ingress.Match{PathPrefix: "/api/"}, "GET", "/api/books", nil, true},
		{"path prefix no", ingress.Match{PathPrefix: "/api/"}, "GET", "/apix", nil, false},
		{"path prefix decoded", ingress.Match{PathPrefix: "/api/"}, "GET", "/api%2Fbooks", nil, true},
		{"method", ingress.Match{Method: []string{"post", "PUT"}}, "POST", "/", nil, true},
		{"method no", ingress.Match{Method: []string{"POST"}}, "GET", "/", nil, false},

		// All conditions hold (AND).
		{"and: all hold", ingress.Match{PathPrefix: "/api/", Method: []string{"GET"},
			Header: map[string]ingress.Condition{"x-a": ingress.Exact("1"), "x-b": ingress.Present()},
			Cookie: map[string]ingress.Condition{"c": ingress.Exact("3")}, Query: map[string]ingress.Condition{"q": ingress.Exact("4")}},
			"GET", "/api/x?q=4", hdr{"X-A": {"1"}, "X-B": {"2"}, "Cookie": {"c=3"}}, true},
		{"and: one fails", ingress.Match{PathPrefix: "/api/", Method: []string{"GET"},
			Header: map[string]ingress.Condition{"x-a": ingress.Exact("1"), "x-b": ingress.Present()},
			Cookie: map[string]ingress.Condition{"c": ingress.Exact("3")}, Query: map[string]ingress.Condition{"q": ingress.Exact("4")}},
			"GET", "/api/x?q=5", hdr{"X-A": {"1"}, "X-B": {"2"}, "Cookie": {"c=3"}}, false},
		{"empty match: everything", ingress.Match{}, "DELETE", "/anything", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, err := ingress.Compile(ingress.Config{Rules: []ingress.Rule{{Name: "r", Lane: "gray", Match: tt.match}}})
			require.NoError(t, err)
			d := rs.Evaluate(request(tt.method, tt.target, tt.h))
			if tt.want {
				assert.Equal(t, ingress.OutcomeRule, d.Outcome)
				assert.Equal(t, "gray", d.Tag.String())
				assert.Equal(t, 0, d.Rule)
				assert.Equal(t, "r", d.RuleName)
			} else {
				assert.Equal(t, ingress.OutcomeDefault, d.Outcome)
				assert.True(t, d.Tag.IsZero())
				assert.Equal(t, -1, d.Rule)
			}
		})
	}
}

func TestRuleOrder(t *testing.T) {
	rs := mustParse(t, `
default: prod
rules:
  - name: vip
    lane: blue
    match: {header: {x-vip: "1"}}
  - name: testers
    lane: gray
    match: {header: {x-group: testers}}
  - name: api
    lane: green
    match: {pathPrefix: /api/}
`)
	tests := []struct {
		name     string
		target   string
		h        http.Header
		wantRule int
		wantLane string
	}{
		{"first rule", "/api/x", http.Header{"X-Vip": {"1"}, "X-Group": {"testers"}}, 0, "blue"},
		{"first matching wins over later ones", "/api/x", http.Header{"X-Group": {"testers"}}, 1, "gray"},
		{"last rule", "/api/x", nil, 2, "green"},
		{"none: default", "/", nil, -1, "prod"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := rs.Evaluate(request("GET", tt.target, tt.h))
			assert.Equal(t, tt.wantRule, d.Rule)
			assert.Equal(t, tt.wantLane, d.Tag.String())
			if tt.wantRule < 0 {
				assert.Equal(t, ingress.OutcomeDefault, d.Outcome)
			}
		})
	}
	assert.Equal(t, 3, rs.Len())
	assert.Equal(t, "prod", rs.Default().String())
	assert.Equal(t, []string{"blue", "gray", "green", "prod"}, rs.Lanes())
}

func TestDecisionString(t *testing.T) {
	rs := mustParse(t, "rules: [{name: testers, lane: gray, match: {header: {x-group: testers}}}]")
	d := rs.Evaluate(request("GET", "/", http.Header{"X-Group": {"testers"}}))
	assert.Equal(t, "rule 0 (testers) -> gray", d.String())
	d.Stripped = ingress.StrippedUntrusted
	assert.Equal(t, "rule 0 (testers) -> gray; client tag stripped: untrusted", d.String())
	assert.Equal(t, "default -> untagged", rs.Evaluate(request("GET", "/", nil)).String())
	assert.Equal(t, "kept", ingress.OutcomeKept.String())
	assert.Equal(t, "Outcome(9)", ingress.Outcome(9).String())
	assert.Equal(t, "not_allowed", ingress.StrippedNotAllowed.String())
	assert.Equal(t, "Stripped(9)", ingress.Stripped(9).String())
	assert.Equal(t, "regex", ingress.OpRegex.String())
	assert.Equal(t, "Op(0)", ingress.Op(0).String())
	assert.Equal(t, `prefix: "/a"`, ingress.Prefix("/a").String())
	assert.Equal(t, "present: false", ingress.Absent().String())
	assert.Equal(t, "random", ingress.MissingRandom.String())
}
