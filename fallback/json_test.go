package fallback_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/graylane/graylane/fallback"
	"github.com/graylane/graylane/tag"
)

const specJSON = `{"mode":"loose","base":"prod","reasons":["noinstances","unavailable"],"failoverTimeout":"250ms",
 "chains":{"dev-alice":["dev","prod"]},"lanes":{"gray":{"mode":"strict"}},
 "services":{"reviews":{"mode":"strict","reasons":["noinstances"],"failoverTimeout":"1s","chains":{},"lanes":{}}}}`

func mustMarshal(t testing.TB, p *fallback.Policy) string {
	t.Helper()
	b, err := p.MarshalJSON()
	require.NoError(t, err)
	return string(b)
}

func TestParseJSONSpecExample(t *testing.T) {
	p, err := fallback.ParseJSON([]byte(specJSON))
	require.NoError(t, err)

	assert.Equal(t, "prod", p.Base())
	top := p.Service("details")
	assert.Equal(t, fallback.Loose, top.Mode("dev"))
	assert.Equal(t, fallback.Strict, top.Mode("gray"))
	assert.Equal(t, []string{"dev", "prod"}, top.Chain("dev-alice"))
	assert.Equal(t, 250*time.Millisecond, top.FailoverTimeout())
	assert.True(t, top.Falls(fallback.Unavailable))

	reviews := p.Service("reviews")
	assert.Equal(t, fallback.Strict, reviews.Mode("dev"))
	assert.Equal(t, []string{"dev", "prod"}, reviews.Chain("dev-alice"))
	assert.Equal(t, time.Second, reviews.FailoverTimeout())
	assert.True(t, reviews.Falls(fallback.NoInstances))
	assert.False(t, reviews.Falls(fallback.Unavailable))

	assert.Equal(t,
		`{"mode":"loose","base":"prod","reasons":["noinstances","unavailable"],"failoverTimeout":"250ms",`+
			`"chains":{"dev-alice":["dev","prod"]},"lanes":{"gray":{"mode":"strict"}},`+
			`"services":{"reviews":{"mode":"strict","reasons":["noinstances"],"failoverTimeout":"1s"}}}`,
		mustMarshal(t, p))
}

func TestParseJSONEmptyIsDefault(t *testing.T) {
	for _, in := range []string{`{}`, ` { } `, "{}\n"} {
		p, err := fallback.ParseJSON([]byte(in))
		require.NoError(t, err, in)
		assert.Equal(t, mustMarshal(t, fallback.Default()), mustMarshal(t, p))
		assert.Equal(t, behaviour(fallback.Default()), behaviour(p))
	}
	assert.Equal(t, `{"mode":"loose","base":"prod","reasons":["noinstances","unavailable"],"failoverTimeout":"0s"}`,
		mustMarshal(t, fallback.Default()))
}

func TestParseJSONReasons(t *testing.T) {
	tests := []struct {
		in      string
		service string
		noInst  bool
		unavail bool
	}{
		{`{"reasons":[]}`, "x", false, false},
		{`{"reasons":null}`, "x", true, true},
		{`{"reasons":["unavailable","unavailable"]}`, "x", false, true},
		{`{"reasons":[],"services":{"a":{"reasons":["noinstances"]}}}`, "a", true, false},
		{`{"reasons":["noinstances"],"services":{"a":{"reasons":[]}}}`, "a", false, false},
		{`{"reasons":["noinstances"],"services":{"a":{"reasons":null}}}`, "a", true, false},
		{`{"reasons":["noinstances"],"services":{"a":{}}}`, "a", true, false},
		{`{"reasons":["noinstances"],"services":{"a":null}}`, "a", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			p, err := fallback.ParseJSON([]byte(tt.in))
			require.NoError(t, err)
			s := p.Service(tt.service)
			assert.Equal(t, tt.noInst, s.Falls(fallback.NoInstances))
			assert.Equal(t, tt.unavail, s.Falls(fallback.Unavailable))
			roundTrip(t, p)
		})
	}
}

func TestParseJSONErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string // substrings of the error
	}{
		{"empty input", ``, []string{"empty"}},
		{"blank input", "  \n", []string{"empty"}},
		{"null", `null`, []string{"null"}},
		{"array", `[]`, []string{"wrong type for the policy: want an object, found a JSON array"}},
		{"string", `"loose"`, []string{"wrong type for the policy: want an object, found a JSON string"}},
		{"truncated", `{"mode":"loose"`, []string{"policy JSON: unexpected end of input"}},
		{"syntax error", `{"mode":}`, []string{"policy JSON: invalid character '}'", "at byte 9"}},
		{"trailing data", `{} {}`, []string{"unexpected data after the top-level object"}},
		{"trailing garbage", `{}x`, []string{"unexpected data"}},
		{"unknown field", `{"mod":"loose"}`, []string{`unknown field "mod"`}},
		{"unknown service field", `{"services":{"a":{"failover":"1s"}}}`, []string{`unknown field "failover"`}},
		{"unknown lane field", `{"lanes":{"gray":{"mode":"strict","weight":1}}}`, []string{`unknown field "weight"`}},
		{"lane without mode", `{"lanes":{"gray":{}}}`, []string{`lanes: lane "gray": field "mode" is required`}},
		{"service lane without mode", `{"services":{"a":{"lanes":{"gray":{"mode":null}}}}}`, []string{`service "a": lanes: lane "gray": field "mode" is required`}},
		{"unknown mode", `{"mode":"lenient"}`, []string{`unknown mode "lenient"`, `"loose" and "strict"`}},
		{"mode of wrong type", `{"mode":1}`, []string{"wrong type in field mode: want a string, found a JSON number at byte 9"}},
		{"chain of wrong type", `{"chains":{"a":"prod"}}`, []string{"wrong type in field chains: want an array of strings, found a JSON string"}},
		{"chain entry of wrong type", `{"chains":{"a":[1]}}`, []string{"wrong type in field chains: want a string, found a JSON number"}},
		{"services of wrong type", `{"services":[]}`, []string{"wrong type in field services: want an object, found a JSON array"}},
		{"unknown lane mode", `{"services":{"s":{"lanes":{"gray":{"mode":"Strict"}}}}}`, []string{`fallback: service "s": lanes: lane "gray": mode: unknown mode "Strict"; allowed are "loose" and "strict"`}},
		{"unknown reason", `{"reasons":["noavailabled"]}`, []string{`fallback: reasons: unknown reason "noavailabled"; allowed are "noinstances" and "unavailable"`}},
		{"reason that cannot fall back", `{"reasons":["matched"]}`, []string{"reason matched cannot allow fallback"}},
		{"bad duration", `{"failoverTimeout":"soon"}`, []string{"failoverTimeout", `"soon"`}},
		{"duration as a number", `{"failoverTimeout":250}`, []string{"wrong type in field failoverTimeout: want a string, found a JSON number"}},
		{"empty duration", `{"failoverTimeout":""}`, []string{"failoverTimeout"}},
		{"negative duration", `{"failoverTimeout":"-1s"}`, []string{"failover timeout -1s is negative"}},
		{"service bad duration", `{"services":{"a":{"failoverTimeout":"1 s"}}}`, []string{`service "a": failoverTimeout`}},
		{"invalid base", `{"base":"prod!"}`, []string{"base lane: invalid tag"}},
		{"empty base", `{"base":""}`, []string{"base lane: invalid tag: empty"}},
		{"base in service", `{"services":{"a":{"base":"stable"}}}`, []string{`service "a": the base lane is set for every service at once`}},
		{"nested services", `{"services":{"a":{"services":{"b":{}}}}}`, []string{`service "a": services cannot be nested`}},
		{"empty service name", `{"services":{"":{}}}`, []string{"service name is empty"}},
		{"bad chain", `{"chains":{"dev-alice":["dev"]}}`, []string{`chain of lane "dev-alice" ["dev"] must end with the base lane "prod"`}},
		{"null chain", `{"chains":{"dev-alice":null}}`, []string{`chain of lane "dev-alice" is empty`}},
		{"chain of base", `{"chains":{"prod":["prod"]}}`, []string{"the base lane has no fallback chain"}},
		{"cycle", `{"chains":{"a":["b","a","prod"]}}`, []string{"contains the lane itself"}},
		{"chain against the base", `{"base":"stable","chains":{"a":["prod"]}}`, []string{`must end with the base lane "stable"`}},
		{"several problems", `{"failoverTimeout":"-1s","lanes":{"a":{}},"chains":{"b":[]},"services":{"s":{"failoverTimeout":"x","mode":"strict","chains":{"c":["d"]}}}}`, []string{
			`lanes: lane "a": field "mode" is required`,
			`service "s": failoverTimeout: time: invalid duration "x"`,
			"failover timeout -1s is negative",
			`chain of lane "b" is empty`,
			`service "s": chain of lane "c" ["d"] must end with the base lane "prod"`,
		}},
		{"several option problems", `{"failoverTimeout":"-1s","chains":{"b":[]}}`, []string{
			"failover timeout -1s is negative",
			`chain of lane "b" is empty`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := fallback.ParseJSON([]byte(tt.in))
			require.Error(t, err)
			assert.Nil(t, p)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}

			// UnmarshalJSON reports the same error (it never sees the
			// top-level syntax errors json.Unmarshal catches first).
			var q fallback.Policy
			if json.Valid([]byte(tt.in)) && strings.TrimSpace(tt.in) != "null" {
				assert.EqualError(t, q.UnmarshalJSON([]byte(tt.in)), err.Error())
			}
		})
	}

	_, err := fallback.ParseJSON([]byte(`{"base":"a b"}`))
	assert.ErrorIs(t, err, tag.ErrInvalid)
}

func TestUnmarshalJSON(t *testing.T) {
	var cfg struct {
		Policy  fallback.Policy  `json:"policy"`
		Pointer *fallback.Policy `json:"pointer"`
		Missing fallback.Policy  `json:"missing"`
	}
	err := json.Unmarshal([]byte(`{"policy":{"mode":"strict"},"pointer":{"base":"stable"},"missing":null}`), &cfg)
	require.NoError(t, err)
	assert.Equal(t, fallback.Strict, cfg.Policy.Service("x").Mode("gray"))
	require.NotNil(t, cfg.Pointer)
	assert.Equal(t, "stable", cfg.Pointer.Base())
	assert.Equal(t, behaviour(fallback.Default()), behaviour(&cfg.Missing), "null leaves the zero Policy, which is the default")

	out, err := json.Marshal(&cfg.Policy)
	require.NoError(t, err)
	assert.JSONEq(t, `{"mode":"strict","base":"prod","reasons":["noinstances","unavailable"],"failoverTimeout":"0s"}`, string(out))

	err = json.Unmarshal([]byte(`{"policy":{"mode":"strict","bogus":true}}`), &cfg)
	assert.ErrorContains(t, err, `unknown field "bogus"`)
}

func TestJSONRoundTrip(t *testing.T) {
	policies := map[string][]fallback.Option{
		"default": nil,
		"everything": {
			fallback.WithMode(fallback.Strict),
			fallback.WithBase("stable"),
			fallback.WithReasons(fallback.Unavailable),
			fallback.WithFailoverTimeout(1500 * time.Millisecond),
			fallback.WithChain("dev-alice", "dev", "qa", "stable"),
			fallback.WithChain("dev-bob", "dev", "stable"),
			fallback.WithLaneMode("gray", fallback.Loose),
			fallback.WithLaneMode("stable", fallback.Strict),
			fallback.WithService("reviews",
				fallback.WithMode(fallback.Loose),
				fallback.WithReasons(),
				fallback.WithFailoverTimeout(0),
				fallback.WithChain("dev-alice", "stable"),
				fallback.WithLaneMode("canary", fallback.Strict),
			),
			fallback.WithService("ratings"),
			fallback.WithService("details", fallback.WithFailoverTimeout(time.Hour+time.Nanosecond)),
		},
		"no reasons":   {fallback.WithReasons()},
		"huge timeout": {fallback.WithFailoverTimeout(time.Duration(1<<63 - 1))},
	}
	for name, opts := range policies {
		t.Run(name, func(t *testing.T) {
			roundTrip(t, mustPolicy(t, opts...))
		})
	}
}

// roundTrip checks that p survives MarshalJSON and ParseJSON unchanged.
func roundTrip(t *testing.T, p *fallback.Policy) {
	t.Helper()
	b := mustMarshal(t, p)
	q, err := fallback.ParseJSON([]byte(b))
	require.NoError(t, err, b)
	assert.Equal(t, b, mustMarshal(t, q))
	assert.Equal(t, behaviour(p, "reviews", "ratings", "details"), behaviour(q, "reviews", "ratings", "details"))
}

// behaviour describes everything Decide depends on, for the lanes and
// services p mentions in its JSON form plus a few others.
func behaviour(p *fallback.Policy, services ...string) string {
	var c struct {
		Chains   map[string][]string `json:"chains"`
		Lanes    map[string]any      `json:"lanes"`
		Services map[string]struct {
			Chains map[string][]string `json:"chains"`
			Lanes  map[string]any      `json:"lanes"`
		} `json:"services"`
	}
	b, _ := p.MarshalJSON()
	_ = json.Unmarshal(b, &c)
	laneSet := []string{"", "prod", "stable", "other", "gray"}
	add := func(chains map[string][]string, lanes map[string]any) {
		for l, ch := range chains {
			laneSet = append(laneSet, l)
			laneSet = append(laneSet, ch...)
		}
		for l := range lanes {
			laneSet = append(laneSet, l)
		}
	}
	add(c.Chains, c.Lanes)
	services = append(services, "unnamed")
	for name, s := range c.Services {
		services = append(services, name)
		add(s.Chains, s.Lanes)
	}
	slices.Sort(laneSet)
	laneSet = slices.Compact(laneSet)
	slices.Sort(services)
	services = slices.Compact(services)

	var out strings.Builder
	fmt.Fprintf(&out, "base=%s\n", p.Base())
	for _, name := range services {
		s := p.Service(name)
		fmt.Fprintf(&out, "%s: base=%s timeout=%s noinstances=%t unavailable=%t\n",
			name, s.Base(), s.FailoverTimeout(), s.Falls(fallback.NoInstances), s.Falls(fallback.Unavailable))
		for _, l := range laneSet {
			fmt.Fprintf(&out, "  %q: mode=%s chain=%q\n", l, s.Mode(l), s.Chain(l))
		}
	}
	return out.String()
}

func FuzzParseJSON(f *testing.F) {
	for _, seed := range []string{
		specJSON,
		`{}`,
		`{"mode":"strict"}`,
		`{"reasons":[]}`,
		`{"base":"stable","chains":{"a":["b","stable"]}}`,
		`{"lanes":{"gray":{"mode":"strict"}},"services":{"x":{"lanes":{"gray":{"mode":"loose"}}}}}`,
		`{"services":{"x":{"reasons":[],"failoverTimeout":"1h2m3.5s"}}}`,
		`{"failoverTimeout":"9223372036854775807ns"}`,
		`{"chains":{"a":["a","prod"]}}`,
		`{"mode":"loose","mode":"strict"}`,
		`null`,
		`[`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		p, err := fallback.ParseJSON(in)
		if err != nil {
			if p != nil {
				t.Fatalf("ParseJSON(%q) returned both a policy and an error", in)
			}
			if err.Error() == "" {
				t.Fatalf("ParseJSON(%q): empty error message", in)
			}
			return
		}
		b1, err := p.MarshalJSON()
		if err != nil {
			t.Fatalf("MarshalJSON after ParseJSON(%q): %v", in, err)
		}
		q, err := fallback.ParseJSON(b1)
		if err != nil {
			t.Fatalf("ParseJSON(%s) (re-marshalled from %q): %v", b1, in, err)
		}
		b2, err := q.MarshalJSON()
		if err != nil {
			t.Fatalf("MarshalJSON of %s: %v", b1, err)
		}
		if string(b1) != string(b2) {
			t.Fatalf("round trip changed the JSON:\n%s\n%s", b1, b2)
		}

		// Whatever parses can route without panicking.
		for _, svc := range []string{"", "reviews", "x"} {
			for _, tg := range []string{"", "prod", "gray", "a"} {
				for _, st := range []State{absent, notReady, connecting, ready} {
					d, err := p.Service(svc).Decide(svc, tagOf(tg), func(string) State { return st })
					if err == nil && d.Lane == "" {
						t.Fatalf("empty lane in decision %+v", d)
					}
					var e *fallback.Error
					if err != nil && !errors.As(err, &e) {
						t.Fatalf("Decide error of type %T: %v", err, err)
					}
				}
			}
		}
	})
}
