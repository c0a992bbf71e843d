package resolver

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/balancer"
	grpcresolver "google.golang.org/grpc/resolver"
)

// buildReady builds the graylane balancer over eps with cfg, on a
// ClientConn whose SubConns connect at once, and waits until every
// endpoint is ready.
func buildReady(t *testing.T, eps []grpcresolver.Endpoint, cfg *LBConfig) (*tagBalancer, *fakeCC) {
	t.Helper()
	cc := &fakeCC{ready: make(chan struct{}, 1)}
	b := balancer.Get(BalancerName).Build(cc, balancer.BuildOptions{}).(*tagBalancer)
	t.Cleanup(b.Close)
	update(t, b, eps, cfg)
	for {
		<-cc.ready
		cc.mu.Lock()
		p := cc.picker
		cc.mu.Unlock()
		if allReady(p, BalancerName, len(eps)) {
			return b, cc
		}
	}
}

func update(t *testing.T, b *tagBalancer, eps []grpcresolver.Endpoint, cfg *LBConfig) {
	t.Helper()
	require.NoError(t, b.UpdateClientConnState(balancer.ClientConnState{
		ResolverState:  grpcresolver.State{Endpoints: eps},
		BalancerConfig: cfg,
	}))
}

func idleFor(d time.Duration) *LBConfig {
	dd := Duration(d)
	return &LBConfig{LaneIdleTimeout: &dd}
}

func (b *tagBalancer) isParked(lane string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.parked[lane]
}

func (b *tagBalancer) sweepArmed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sweep != nil
}

// TestSweepFollowsConfig: a shorter idle timeout in a new config takes
// effect at once (the sweep armed with the old one is re-armed), and "0s"
// turns parking off, also for a sweep already armed.
func TestSweepFollowsConfig(t *testing.T) {
	eps := endpoints(4, 2) // lanes prod and lane-1
	b, _ := buildReady(t, eps, idleFor(time.Hour))
	require.True(t, b.sweepArmed())

	update(t, b, eps, idleFor(20*time.Millisecond))
	require.Eventually(t, func() bool { return b.isParked("lane-1") }, 10*time.Second, time.Millisecond,
		"the new idle timeout was not applied")
	assert.False(t, b.isParked("prod"), "the base lane never parks")

	// Wake the lane, then turn parking off: the armed sweep parks nothing.
	b.wake("lane-1")
	require.False(t, b.isParked("lane-1"))
	update(t, b, eps, idleFor(0))
	assert.False(t, b.sweepArmed(), "a sweep is armed with parking off")
	b.sweepIdle() // as if a timer armed before had fired
	assert.False(t, b.isParked("lane-1"), "a lane parked with laneIdleTimeout 0s")
}

// TestParseConfig: the balancer's config is a JSON object of LBConfig's
// fields; bad durations and policies are errors naming the key.
func TestParseConfig(t *testing.T) {
	bb := balancer.Get(BalancerName).(balancer.ConfigParser)
	cfg, err := bb.ParseConfig([]byte(`{"policy":{"chains":{"dev":["prod"]}},"laneIdleTimeout":"0s","laneWakeTimeout":"250ms","other":1}`))
	require.NoError(t, err)
	c := cfg.(*LBConfig)
	assert.Equal(t, time.Duration(0), c.idleTimeout())
	assert.Equal(t, 250*time.Millisecond, c.wakeTimeout())
	assert.Equal(t, []string{"dev", "prod"}, append([]string{"dev"}, c.policy().Service("x").Chain("dev")...))

	cfg, err = bb.ParseConfig(nil)
	require.NoError(t, err)
	assert.Equal(t, DefaultLaneIdleTimeout, cfg.(*LBConfig).idleTimeout())
	assert.Equal(t, DefaultLaneWakeTimeout, cfg.(*LBConfig).wakeTimeout())

	for in, want := range map[string]string{
		`{"laneIdleTimeout":"-1s"}`:         "non-negative",
		`{"laneWakeTimeout":30}`:            "duration string",
		`{"policy":{"mode":"sideways"}}`:    "sideways",
		`[]`:                                "cannot unmarshal",
		`{"policy":{"chains":{"a":["a"]}}}`: "chain",
	} {
		_, err := bb.ParseConfig([]byte(in))
		require.Error(t, err, in)
		assert.Contains(t, err.Error(), want, in)
		assert.Contains(t, err.Error(), BalancerName, in)
	}
}
