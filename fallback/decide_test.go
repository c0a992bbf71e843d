package fallback_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/graylane/graylane/fallback"
	"github.com/graylane/graylane/tag"
)

// lanes is the state of each lane of one service; a lane not listed is
// Absent.
type lanes map[string]State

type State = fallback.State

const (
	absent     = fallback.Absent
	notReady   = fallback.NotReady
	connecting = fallback.Connecting
	ready      = fallback.Ready
)

func (l lanes) state(lane string) State { return l[lane] }

func tagOf(s string) tag.Tag {
	if s == "" {
		return tag.Tag{}
	}
	return tag.MustParse(s)
}

func mustPolicy(t testing.TB, opts ...fallback.Option) *fallback.Policy {
	t.Helper()
	p, err := fallback.NewPolicy(opts...)
	require.NoError(t, err)
	return p
}

var aliceChain = fallback.WithChain("dev-alice", "dev", "prod")

// TestDecideTable lists the rows that matter, written out by hand.
func TestDecideTable(t *testing.T) {
	strict := fallback.WithMode(fallback.Strict)
	noUnavailable := fallback.WithReasons(fallback.NoInstances)
	never := fallback.WithReasons()

	type want struct {
		lane   string
		reason fallback.Reason
		wait   bool
		err    error // sentinel; nil for a Decision
	}
	tests := []struct {
		name  string
		opts  []fallback.Option
		tag   string
		lanes lanes
		want  want
	}{
		{"untagged goes to base", nil, "", lanes{"prod": ready, "gray": ready}, want{lane: "prod", reason: fallback.Untagged}},
		{"untagged waits for connecting base", nil, "", lanes{"prod": connecting}, want{lane: "prod", reason: fallback.Untagged, wait: true}},
		{"untagged never leaves base", nil, "", lanes{"gray": ready}, want{lane: "prod", reason: fallback.NoInstances, err: fallback.ErrNoInstance}},
		{"untagged with base not ready", nil, "", lanes{"prod": notReady}, want{lane: "prod", reason: fallback.Unavailable, err: fallback.ErrNoInstance}},
		{"untagged in strict mode still served by base", []fallback.Option{strict}, "", lanes{"prod": ready}, want{lane: "prod", reason: fallback.Untagged}},
		{"base tag is matched", nil, "prod", lanes{"prod": ready}, want{lane: "prod", reason: fallback.Matched}},
		{"base tag never falls back", []fallback.Option{aliceChain}, "prod", lanes{"dev": ready}, want{lane: "prod", reason: fallback.NoInstances, err: fallback.ErrNoInstance}},
		{"lane ready", nil, "gray", lanes{"gray": ready, "prod": ready}, want{lane: "gray", reason: fallback.Matched}},
		{"lane connecting waits", nil, "gray", lanes{"gray": connecting, "prod": ready}, want{lane: "gray", reason: fallback.Matched, wait: true}},
		{"lane absent falls back to base", nil, "gray", lanes{"prod": ready}, want{lane: "prod", reason: fallback.NoInstances}},
		{"lane not ready falls back to base", nil, "gray", lanes{"gray": notReady, "prod": ready}, want{lane: "prod", reason: fallback.Unavailable}},
		{"fallback waits for connecting base", nil, "gray", lanes{"prod": connecting}, want{lane: "prod", reason: fallback.NoInstances, wait: true}},
		{"nothing anywhere", nil, "gray", lanes{}, want{lane: "prod", reason: fallback.NoInstances, err: fallback.ErrNoInstance}},
		{"base not ready at end of chain", nil, "gray", lanes{"prod": notReady}, want{lane: "prod", reason: fallback.Unavailable, err: fallback.ErrNoInstance}},
		{"strict rejects absent lane", []fallback.Option{strict}, "gray", lanes{"prod": ready}, want{lane: "gray", reason: fallback.NoInstances, err: fallback.ErrRejected}},
		{"strict rejects unavailable lane", []fallback.Option{strict}, "gray", lanes{"gray": notReady, "prod": ready}, want{lane: "gray", reason: fallback.Unavailable, err: fallback.ErrRejected}},
		{"strict serves ready lane", []fallback.Option{strict}, "gray", lanes{"gray": ready}, want{lane: "gray", reason: fallback.Matched}},
		{"strict waits for connecting lane", []fallback.Option{strict}, "gray", lanes{"gray": connecting}, want{lane: "gray", reason: fallback.Matched, wait: true}},
		{"strict lane in loose policy", []fallback.Option{fallback.WithLaneMode("gray", fallback.Strict)}, "gray", lanes{"prod": ready}, want{lane: "gray", reason: fallback.NoInstances, err: fallback.ErrRejected}},
		{"loose lane in strict policy", []fallback.Option{strict, fallback.WithLaneMode("gray", fallback.Loose)}, "gray", lanes{"prod": ready}, want{lane: "prod", reason: fallback.NoInstances}},
		{"reason not allowed", []fallback.Option{noUnavailable}, "gray", lanes{"gray": notReady, "prod": ready}, want{lane: "gray", reason: fallback.Unavailable, err: fallback.ErrRejected}},
		{"other reason still allowed", []fallback.Option{noUnavailable}, "gray", lanes{"prod": ready}, want{lane: "prod", reason: fallback.NoInstances}},
		{"no reason allowed", []fallback.Option{never}, "gray", lanes{"prod": ready}, want{lane: "gray", reason: fallback.NoInstances, err: fallback.ErrRejected}},
		{"chain first step", []fallback.Option{aliceChain}, "dev-alice", lanes{"dev": ready, "prod": ready}, want{lane: "dev", reason: fallback.NoInstances}},
		{"chain to base", []fallback.Option{aliceChain}, "dev-alice", lanes{"dev-alice": notReady, "prod": ready}, want{lane: "prod", reason: fallback.Unavailable}},
		{"chain keeps the requested lane's reason", []fallback.Option{aliceChain}, "dev-alice", lanes{"dev": notReady, "prod": ready}, want{lane: "prod", reason: fallback.NoInstances}},
		{"chain waits for connecting step", []fallback.Option{aliceChain}, "dev-alice", lanes{"dev": connecting, "prod": ready}, want{lane: "dev", reason: fallback.NoInstances, wait: true}},
		{"chain step reason not allowed", []fallback.Option{aliceChain, noUnavailable}, "dev-alice", lanes{"dev": notReady, "prod": ready}, want{lane: "dev", reason: fallback.Unavailable, err: fallback.ErrRejected}},
		{"chain exhausted", []fallback.Option{aliceChain}, "dev-alice", lanes{"dev-alice": notReady, "dev": notReady}, want{lane: "prod", reason: fallback.NoInstances, err: fallback.ErrNoInstance}},
		{"chain lane requested directly uses its own chain", []fallback.Option{aliceChain}, "dev", lanes{"dev-alice": ready, "prod": ready}, want{lane: "prod", reason: fallback.NoInstances}},
		{"other base", []fallback.Option{fallback.WithBase("stable")}, "gray", lanes{"prod": ready, "stable": ready}, want{lane: "stable", reason: fallback.NoInstances}},
		{"prod is an ordinary lane under another base", []fallback.Option{fallback.WithBase("stable")}, "prod", lanes{"stable": ready}, want{lane: "stable", reason: fallback.NoInstances}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustPolicy(t, tt.opts...)
			got, err := p.Service("reviews").Decide("reviews", tagOf(tt.tag), tt.lanes.state)
			if tt.want.err == nil {
				require.NoError(t, err)
				assert.Equal(t, fallback.Decision{Lane: tt.want.lane, Reason: tt.want.reason, Wait: tt.want.wait}, got)
				return
			}
			require.ErrorIs(t, err, tt.want.err)
			assert.Zero(t, got)
			var e *fallback.Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, "reviews", e.Service)
			assert.Equal(t, tt.tag, e.Tag)
			assert.Equal(t, tt.want.lane, e.Lane)
			assert.Equal(t, tt.want.reason, e.Reason)
		})
	}
}

// refPolicy is the configuration space of TestDecideExhaustive.
type refPolicy struct {
	mode      fallback.Mode // top-level mode
	aliceMode *fallback.Mode
	reasons   []fallback.Reason
}

func (c refPolicy) options() []fallback.Option {
	opts := []fallback.Option{aliceChain, fallback.WithMode(c.mode), fallback.WithReasons(c.reasons...)}
	if c.aliceMode != nil {
		opts = append(opts, fallback.WithLaneMode("dev-alice", *c.aliceMode))
	}
	return opts
}

type refResult struct {
	d       fallback.Decision
	err     *fallback.Error
	visited []string
}

// reference decides a hop the simple way: build the full path of lanes the
// request may take, then walk it.
func reference(c refPolicy, service, requested string, st lanes) refResult {
	const base = "prod"
	var path []string
	switch requested {
	case "", base:
		path = []string{base}
	case "dev-alice":
		path = []string{"dev-alice", "dev", base}
	default:
		path = []string{requested, base}
	}
	mode := c.mode
	if requested == "dev-alice" && c.aliceMode != nil {
		mode = *c.aliceMode
	}
	allowed := func(r fallback.Reason) bool { return slices.Contains(c.reasons, r) }

	var first fallback.Reason // the reason the requested lane could not serve
	for i, lane := range path {
		visited := path[:i+1]
		s := st[lane]
		if s == ready || s == connecting {
			r := first
			if i == 0 {
				r = fallback.Matched
				if requested == "" {
					r = fallback.Untagged
				}
			}
			return refResult{d: fallback.Decision{Lane: lane, Reason: r, Wait: s == connecting}, visited: visited}
		}
		miss := fallback.Unavailable
		if s == absent {
			miss = fallback.NoInstances
		}
		if i == 0 {
			first = miss
		}
		fail := func(sentinel error) refResult {
			return refResult{err: &fallback.Error{Service: service, Tag: requested, Lane: lane, Reason: miss, Mode: mode, Err: sentinel}, visited: visited}
		}
		switch {
		case i == len(path)-1:
			return fail(fallback.ErrNoInstance)
		case i == 0 && mode == fallback.Strict:
			return fail(fallback.ErrRejected)
		case !allowed(miss):
			return fail(fallback.ErrRejected)
		}
	}
	panic("unreachable")
}

// TestDecideExhaustive checks Decide against reference for every
// combination of lane states, requested tag, mode and reason set.
func TestDecideExhaustive(t *testing.T) {
	allStates := []State{absent, notReady, connecting, ready}
	laneNames := []string{"dev-alice", "dev", "prod", "other"}
	tags := []string{"", "dev-alice", "dev", "prod", "other"}
	strict, loose := fallback.Strict, fallback.Loose
	reasonSets := [][]fallback.Reason{
		{},
		{fallback.NoInstances},
		{fallback.Unavailable},
		{fallback.NoInstances, fallback.Unavailable},
	}

	var configs []refPolicy
	for _, mode := range []fallback.Mode{loose, strict} {
		for _, am := range []*fallback.Mode{nil, &loose, &strict} {
			for _, rs := range reasonSets {
				configs = append(configs, refPolicy{mode: mode, aliceMode: am, reasons: rs})
			}
		}
	}

	n := 0
	for _, c := range configs {
		sp := mustPolicy(t, c.options()...).Service("ratings")
		for combo := range 1 << (2 * len(laneNames)) {
			st := lanes{}
			for i, l := range laneNames {
				st[l] = allStates[(combo>>(2*i))&3]
			}
			for _, tg := range tags {
				var visited []string
				got, err := sp.Decide("ratings", tagOf(tg), func(lane string) State {
					visited = append(visited, lane)
					return st[lane]
				})
				want := reference(c, "ratings", tg, st)
				where := fmt.Sprintf("config %+v aliceMode=%v, tag %q, states %v", c, deref(c.aliceMode), tg, st)
				assert.Equal(t, want.visited, visited, where)
				if want.err == nil {
					if assert.NoError(t, err, where) {
						assert.Equal(t, want.d, got, where)
					}
				} else {
					var e *fallback.Error
					if assert.ErrorAs(t, err, &e, where) {
						assert.Equal(t, want.err, e, where)
					}
					assert.Zero(t, got, where)
				}
				n++
			}
		}
	}
	t.Logf("%d decisions checked", n)
}

func deref(m *fallback.Mode) string {
	if m == nil {
		return "unset"
	}
	return m.String()
}

func TestDecideUnknownStateIsNotReady(t *testing.T) {
	sp := fallback.Default().Service("reviews")
	for _, s := range []State{4, 9, 255} {
		got, err := sp.Decide("reviews", tagOf("gray"), lanes{"gray": s, "prod": ready}.state)
		require.NoError(t, err)
		assert.Equal(t, fallback.Decision{Lane: "prod", Reason: fallback.Unavailable}, got)

		_, err = sp.Decide("reviews", tag.Tag{}, lanes{"prod": s}.state)
		var e *fallback.Error
		require.ErrorAs(t, err, &e)
		assert.Equal(t, fallback.Unavailable, e.Reason)
	}
}

func TestDecideNilState(t *testing.T) {
	got, err := fallback.Default().Service("x").Decide("x", tagOf("gray"), nil)
	require.Error(t, err)
	assert.Zero(t, got)
	var e *fallback.Error
	assert.False(t, errors.As(err, &e))
	assert.Contains(t, err.Error(), "nil")
}

func TestDecideNilReceivers(t *testing.T) {
	var p *fallback.Policy
	var sp *fallback.ServicePolicy
	for _, s := range []*fallback.ServicePolicy{sp, p.Service("x"), (&fallback.Policy{}).Service("x")} {
		got, err := s.Decide("x", tagOf("gray"), lanes{"prod": ready}.state)
		require.NoError(t, err)
		assert.Equal(t, fallback.Decision{Lane: "prod", Reason: fallback.NoInstances}, got)
	}
}

func TestErrorMessages(t *testing.T) {
	aliceStrict := fallback.WithLaneMode("dev-alice", fallback.Strict)
	tests := []struct {
		name  string
		opts  []fallback.Option
		tag   string
		lanes lanes
		want  string
	}{
		{
			"strict", []fallback.Option{fallback.WithMode(fallback.Strict)}, "gray", lanes{"prod": ready},
			`graylane: service "reviews", tag "gray": lane "gray" has no instances (noinstances) and strict mode forbids fallback`,
		},
		{
			"strict lane", []fallback.Option{aliceChain, aliceStrict}, "dev-alice", lanes{"dev-alice": notReady},
			`graylane: service "reviews", tag "dev-alice": lane "dev-alice" has no ready instance (unavailable) and strict mode forbids fallback`,
		},
		{
			"reason disabled", []fallback.Option{fallback.WithReasons(fallback.NoInstances)}, "gray", lanes{"gray": notReady, "prod": ready},
			`graylane: service "reviews", tag "gray": lane "gray" has no ready instance (unavailable) and fallback on unavailable is disabled`,
		},
		{
			"reason disabled on a chain step", []fallback.Option{aliceChain, fallback.WithReasons(fallback.NoInstances)}, "dev-alice", lanes{"dev": notReady, "prod": ready},
			`graylane: service "reviews", tag "dev-alice": fallback lane "dev" has no ready instance (unavailable) and fallback on unavailable is disabled`,
		},
		{
			"end of chain", nil, "gray", lanes{"prod": notReady},
			`graylane: service "reviews", tag "gray": no ready instance in lane "prod" (unavailable), the end of the fallback chain`,
		},
		{
			"end of chain, no instances", []fallback.Option{aliceChain}, "dev-alice", lanes{},
			`graylane: service "reviews", tag "dev-alice": no instances in lane "prod" (noinstances), the end of the fallback chain`,
		},
		{
			"untagged", nil, "", lanes{"gray": ready},
			`graylane: service "reviews", untagged request: no instances in lane "prod" (noinstances), and untagged requests never fall back`,
		},
		{
			"base tag", nil, "prod", lanes{"prod": notReady},
			`graylane: service "reviews", tag "prod": no ready instance in lane "prod" (unavailable), the base lane, which never falls back`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := mustPolicy(t, tt.opts...).Service("reviews").Decide("reviews", tagOf(tt.tag), tt.lanes.state)
			require.Error(t, err)
			assert.Equal(t, tt.want, err.Error())
		})
	}
}

func TestErrorHandBuilt(t *testing.T) {
	// An Error built by hand, with odd or missing fields, still prints.
	for _, e := range []*fallback.Error{
		{},
		{Service: "s", Tag: "t", Lane: "l", Reason: fallback.Reason(42), Err: errors.New("boom")},
		{Service: "s", Lane: "prod", Reason: fallback.Matched, Err: fallback.ErrNoInstance},
	} {
		assert.NotEmpty(t, e.Error())
		assert.Equal(t, e.Err, e.Unwrap())
	}
	assert.Contains(t, (&fallback.Error{Lane: "l", Err: errors.New("boom")}).Error(), "boom")
}

// TestDecideNoAllocs checks that no successful decision allocates.
func TestDecideNoAllocs(t *testing.T) {
	p := mustPolicy(t, aliceChain, fallback.WithService("reviews", fallback.WithMode(fallback.Strict)))
	tests := []struct {
		name    string
		service string
		tag     tag.Tag
		lanes   lanes
	}{
		{"matched", "ratings", tagOf("gray"), lanes{"gray": ready}},
		{"untagged", "ratings", tag.Tag{}, lanes{"prod": ready}},
		{"base tag", "ratings", tagOf("prod"), lanes{"prod": ready}},
		{"wait", "ratings", tagOf("gray"), lanes{"gray": connecting}},
		{"fallback to base", "ratings", tagOf("gray"), lanes{"prod": ready}},
		{"fallback through chain", "ratings", tagOf("dev-alice"), lanes{"dev": notReady, "prod": ready}},
		{"service override", "reviews", tagOf("gray"), lanes{"gray": ready}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			state := tt.lanes.state
			tg := tt.tag
			allocs := testing.AllocsPerRun(100, func() {
				d, err := p.Service(tt.service).Decide(tt.service, tg, state)
				if err != nil || d.Lane == "" {
					panic("unexpected decision")
				}
			})
			assert.Zero(t, allocs)
		})
	}
}

func BenchmarkDecide(b *testing.B) {
	p, err := fallback.NewPolicy(aliceChain)
	require.NoError(b, err)
	benches := []struct {
		name  string
		tag   tag.Tag
		lanes lanes
	}{
		{"matched", tagOf("gray"), lanes{"gray": ready, "prod": ready}},
		{"untagged", tag.Tag{}, lanes{"prod": ready}},
		{"fallback-to-base", tagOf("gray"), lanes{"prod": ready}},
		{"fallback-through-chain", tagOf("dev-alice"), lanes{"dev": notReady, "prod": ready}},
	}
	// baseline: the one lane-state lookup any router has to make.
	b.Run("baseline-state-lookup", func(b *testing.B) {
		state := lanes{"gray": ready}.state
		b.ReportAllocs()
		for b.Loop() {
			if state("gray") != ready {
				b.Fatal("not ready")
			}
		}
	})
	for _, bb := range benches {
		b.Run(bb.name, func(b *testing.B) {
			state := bb.lanes.state
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.Service("reviews").Decide("reviews", bb.tag, state); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
