package fallback_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/graylane/graylane/fallback"
	"github.com/graylane/graylane/tag"
)

func TestDefault(t *testing.T) {
	built := mustPolicy(t)
	var nilPolicy *fallback.Policy
	for name, p := range map[string]*fallback.Policy{
		"Default":   fallback.Default(),
		"NewPolicy": built,
		"nil":       nilPolicy,
		"zero":      {},
	} {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, "prod", p.Base())
			s := p.Service("reviews")
			require.NotNil(t, s)
			assert.Equal(t, "prod", s.Base())
			assert.Equal(t, fallback.Loose, s.Mode("gray"))
			assert.Equal(t, fallback.Loose, s.Mode(""))
			assert.Equal(t, []string{"prod"}, s.Chain("gray"))
			assert.Equal(t, []string{"prod"}, s.Chain("not a lane"))
			assert.Nil(t, s.Chain("prod"))
			assert.Zero(t, s.FailoverTimeout())
			assert.True(t, s.Falls(fallback.NoInstances))
			assert.True(t, s.Falls(fallback.Unavailable))
			assert.False(t, s.Falls(fallback.Matched))
			assert.False(t, s.Falls(fallback.Untagged))
			assert.False(t, s.Falls(fallback.Reason(200)))
		})
	}

	var nilView *fallback.ServicePolicy
	assert.Equal(t, "prod", nilView.Base())
	assert.Equal(t, []string{"prod"}, nilView.Chain("gray"))
	assert.Equal(t, fallback.Loose, nilView.Mode("gray"))
	assert.True(t, nilView.Falls(fallback.NoInstances))
	assert.Zero(t, nilView.FailoverTimeout())

	assert.NotSame(t, fallback.Default(), fallback.Default(), "each caller gets its own Policy")
}

func TestOptions(t *testing.T) {
	p := mustPolicy(t,
		fallback.WithMode(fallback.Strict),
		fallback.WithBase("stable"),
		fallback.WithChain("dev-alice", "dev", "stable"),
		fallback.WithReasons(fallback.Unavailable, fallback.Unavailable),
		fallback.WithFailoverTimeout(250*time.Millisecond),
		fallback.WithLaneMode("dev-alice", fallback.Loose),
	)
	assert.Equal(t, "stable", p.Base())
	s := p.Service("reviews")
	assert.Equal(t, "stable", s.Base())
	assert.Equal(t, fallback.Strict, s.Mode("gray"))
	assert.Equal(t, fallback.Loose, s.Mode("dev-alice"))
	assert.Equal(t, []string{"dev", "stable"}, s.Chain("dev-alice"))
	assert.Equal(t, []string{"stable"}, s.Chain("dev"))
	assert.Equal(t, []string{"stable"}, s.Chain("prod"))
	assert.Nil(t, s.Chain("stable"))
	assert.False(t, s.Falls(fallback.NoInstances))
	assert.True(t, s.Falls(fallback.Unavailable))
	assert.Equal(t, 250*time.Millisecond, s.FailoverTimeout())
}

func TestOptionsLaterWins(t *testing.T) {
	p := mustPolicy(t,
		fallback.WithChain("dev-alice", "prod"),
		fallback.WithChain("dev-alice", "dev", "prod"),
		fallback.WithLaneMode("gray", fallback.Strict),
		fallback.WithLaneMode("gray", fallback.Loose),
		fallback.WithMode(fallback.Strict),
		fallback.WithMode(fallback.Loose),
		nil,
	)
	s := p.Service("x")
	assert.Equal(t, []string{"dev", "prod"}, s.Chain("dev-alice"))
	assert.Equal(t, fallback.Loose, s.Mode("gray"))
	assert.Equal(t, fallback.Loose, s.Mode("other"))
}

func TestNoReasons(t *testing.T) {
	s := mustPolicy(t, fallback.WithReasons()).Service("x")
	assert.False(t, s.Falls(fallback.NoInstances))
	assert.False(t, s.Falls(fallback.Unavailable))
	_, err := s.Decide("x", tagOf("gray"), lanes{"prod": ready}.state)
	assert.ErrorIs(t, err, fallback.ErrRejected)
	assert.ErrorContains(t, err, "fallback on noinstances is disabled")
}

func TestWithService(t *testing.T) {
	opts := []fallback.Option{
		fallback.WithService("reviews",
			fallback.WithMode(fallback.Strict),
			fallback.WithChain("dev-bob", "dev", "prod"),
			fallback.WithLaneMode("gray", fallback.Loose),
		),
		// Top-level options given after WithService still reach the service.
		fallback.WithFailoverTimeout(time.Second),
		fallback.WithChain("dev-alice", "dev", "prod"),
		fallback.WithLaneMode("canary", fallback.Strict),
		fallback.WithService("reviews", fallback.WithReasons(fallback.NoInstances)),
		fallback.WithService("ratings", fallback.WithChain("dev-alice", "prod"), fallback.WithFailoverTimeout(0)),
	}
	p := mustPolicy(t, opts...)

	reviews := p.Service("reviews")
	assert.Equal(t, fallback.Strict, reviews.Mode("other"))
	assert.Equal(t, fallback.Loose, reviews.Mode("gray"))
	assert.Equal(t, fallback.Strict, reviews.Mode("canary"), "inherited lane mode")
	assert.Equal(t, []string{"dev", "prod"}, reviews.Chain("dev-bob"))
	assert.Equal(t, []string{"dev", "prod"}, reviews.Chain("dev-alice"), "inherited chain")
	assert.Equal(t, time.Second, reviews.FailoverTimeout(), "inherited timeout")
	assert.True(t, reviews.Falls(fallback.NoInstances), "second WithService adds up")
	assert.False(t, reviews.Falls(fallback.Unavailable))

	ratings := p.Service("ratings")
	assert.Equal(t, fallback.Loose, ratings.Mode("other"))
	assert.Equal(t, []string{"prod"}, ratings.Chain("dev-alice"), "overridden chain")
	assert.Zero(t, ratings.FailoverTimeout())
	assert.True(t, ratings.Falls(fallback.Unavailable))

	other := p.Service("details")
	assert.Equal(t, fallback.Loose, other.Mode("other"))
	assert.Equal(t, []string{"prod"}, other.Chain("dev-bob"))
	assert.Equal(t, []string{"dev", "prod"}, other.Chain("dev-alice"))
	assert.Same(t, other, p.Service("productpage"), "services without overrides share one view")
	assert.Same(t, reviews, p.Service("reviews"))
}

func TestServiceNoAllocs(t *testing.T) {
	p := mustPolicy(t, fallback.WithService("reviews", fallback.WithMode(fallback.Strict)))
	var s *fallback.ServicePolicy
	assert.Zero(t, testing.AllocsPerRun(100, func() { s = p.Service("reviews") }))
	assert.Zero(t, testing.AllocsPerRun(100, func() { s = p.Service("details") }))
	assert.NotNil(t, s)
}

func TestChainIsNotAliased(t *testing.T) {
	fallbacks := []string{"dev", "prod"}
	opt := fallback.WithChain("dev-alice", fallbacks...)
	fallbacks[0] = "qa"
	s := mustPolicy(t, opt).Service("x")
	c := s.Chain("dev-alice")
	assert.Equal(t, []string{"dev", "prod"}, c)

	// Appending to a returned chain cannot write into the policy's storage.
	_ = append(c, "extra")
	_ = append(s.Chain("gray"), "extra")
	assert.Equal(t, []string{"dev", "prod"}, s.Chain("dev-alice"))
	assert.Equal(t, []string{"prod"}, s.Chain("gray"))

	// The same option builds independent policies.
	assert.Equal(t, c, mustPolicy(t, opt).Service("x").Chain("dev-alice"))
}

func TestNewPolicyErrors(t *testing.T) {
	tests := []struct {
		name       string
		opts       []fallback.Option
		want       []string // substrings of the error, in order
		invalidTag bool     // the error wraps tag.ErrInvalid
	}{
		{"invalid base", []fallback.Option{fallback.WithBase("pr od")}, []string{`fallback: base lane: invalid tag: "pr od"`}, true},
		{"empty base", []fallback.Option{fallback.WithBase("")}, []string{"fallback: base lane: invalid tag: empty"}, true},
		{"invalid chain lane", []fallback.Option{fallback.WithChain("dev alice", "prod")}, []string{`chain of lane "dev alice": invalid tag`}, true},
		{"invalid chain entry", []fallback.Option{fallback.WithChain("dev-alice", "de*v", "prod")}, []string{`chain of lane "dev-alice", entry 1: invalid tag: "de*v"`}, true},
		{"empty chain", []fallback.Option{fallback.WithChain("dev-alice")}, []string{`chain of lane "dev-alice" is empty; it must end with the base lane "prod"`}, false},
		{"chain not ending at base", []fallback.Option{fallback.WithChain("dev-alice", "dev")}, []string{`chain of lane "dev-alice" ["dev"] must end with the base lane "prod"`}, false},
		{"chain contains its lane", []fallback.Option{fallback.WithChain("dev-alice", "dev", "dev-alice", "prod")}, []string{`chain of lane "dev-alice" ["dev" "dev-alice" "prod"] contains the lane itself`}, false},
		{"chain with a duplicate", []fallback.Option{fallback.WithChain("dev-alice", "dev", "qa", "dev", "prod")}, []string{`lists "dev" twice`}, false},
		{"base twice", []fallback.Option{fallback.WithChain("dev-alice", "prod", "prod")}, []string{`lists "prod" twice`}, false},
		{"chain of the base lane", []fallback.Option{fallback.WithChain("prod", "dev")}, []string{`chain of lane "prod": the base lane has no fallback chain`}, false},
		{"chain checked against the final base", []fallback.Option{fallback.WithChain("dev", "prod"), fallback.WithBase("stable")}, []string{`chain of lane "dev" ["prod"] must end with the base lane "stable"`}, false},
		{"unknown mode", []fallback.Option{fallback.WithMode(fallback.Mode(7))}, []string{`fallback: unknown mode Mode(7); allowed are "loose" and "strict"`}, false},
		{"unknown lane mode", []fallback.Option{fallback.WithLaneMode("gray", fallback.Mode(9))}, []string{`mode of lane "gray": unknown mode Mode(9)`}, false},
		{"invalid lane-mode lane", []fallback.Option{fallback.WithLaneMode("", fallback.Strict)}, []string{`mode of lane "": invalid tag: empty`}, true},
		{"matched reason", []fallback.Option{fallback.WithReasons(fallback.Matched)}, []string{`reason matched cannot allow fallback; allowed are "noinstances" and "unavailable"`}, false},
		{"untagged reason", []fallback.Option{fallback.WithReasons(fallback.NoInstances, fallback.Untagged)}, []string{"reason untagged cannot allow fallback"}, false},
		{"unknown reason", []fallback.Option{fallback.WithReasons(fallback.Reason(9))}, []string{"reason Reason(9) cannot allow fallback"}, false},
		{"negative timeout", []fallback.Option{fallback.WithFailoverTimeout(-time.Second)}, []string{"failover timeout -1s is negative"}, false},
		{"empty service name", []fallback.Option{fallback.WithService("", fallback.WithMode(fallback.Strict))}, []string{"fallback: service name is empty"}, false},
		{"nested service", []fallback.Option{fallback.WithService("reviews", fallback.WithService("ratings"))}, []string{`fallback: service "reviews": services cannot be nested (WithService("ratings") inside it)`}, false},
		{"base in service", []fallback.Option{fallback.WithService("reviews", fallback.WithBase("stable"))}, []string{`fallback: service "reviews": the base lane is set for every service at once`}, false},
		{"service chain", []fallback.Option{fallback.WithBase("stable"), fallback.WithService("reviews", fallback.WithChain("dev", "prod"))}, []string{`fallback: service "reviews": chain of lane "dev" ["prod"] must end with the base lane "stable"`}, false},
		{"service mode", []fallback.Option{fallback.WithService("reviews", fallback.WithMode(3))}, []string{`fallback: service "reviews": unknown mode Mode(3)`}, false},
		{"service lane", []fallback.Option{fallback.WithService("reviews", fallback.WithLaneMode("-x", fallback.Strict))}, []string{`fallback: service "reviews": mode of lane "-x": invalid tag`}, true},
		{"service reasons and timeout", []fallback.Option{fallback.WithService("reviews", fallback.WithReasons(fallback.Matched), fallback.WithFailoverTimeout(-1))}, []string{
			`fallback: service "reviews": reason matched cannot allow fallback`,
			`fallback: service "reviews": failover timeout -1ns is negative`,
		}, false},
		{"all problems reported", []fallback.Option{
			fallback.WithService("b", fallback.WithChain("x", "y")),
			fallback.WithService("a", fallback.WithMode(5)),
			fallback.WithChain("dev", "dev", "prod"),
			fallback.WithMode(4),
			fallback.WithBase("pr/od"),
		}, []string{
			"fallback: base lane: invalid tag",
			"fallback: unknown mode Mode(4)",
			`fallback: chain of lane "dev" ["dev" "prod"] contains the lane itself`,
			`fallback: service "a": unknown mode Mode(5)`,
			`fallback: service "b": chain of lane "x" ["y"] must end with the base lane "pr/od"`,
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := fallback.NewPolicy(tt.opts...)
			require.Error(t, err)
			assert.Nil(t, p)
			msg := err.Error()
			lines := strings.Split(msg, "\n")
			require.Len(t, lines, len(tt.want), msg)
			for i, w := range tt.want {
				assert.Contains(t, lines[i], w)
			}
			assert.Equal(t, tt.invalidTag, errors.Is(err, tag.ErrInvalid), msg)
		})
	}
}

func TestConcurrentUse(t *testing.T) {
	p := mustPolicy(t, aliceChain, fallback.WithService("reviews", fallback.WithMode(fallback.Strict)))
	st := lanes{"dev": ready, "prod": ready}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			svc := []string{"reviews", "ratings"}[i%2]
			for range 200 {
				d, err := p.Service(svc).Decide(svc, tagOf("dev-alice"), st.state)
				if svc == "reviews" {
					assert.ErrorIs(t, err, fallback.ErrRejected)
				} else {
					assert.Equal(t, "dev", d.Lane)
				}
				_, err = p.MarshalJSON()
				assert.NoError(t, err)
				_ = p.Service(svc).Chain("dev-alice")
			}
		})
	}
	wg.Wait()
}
